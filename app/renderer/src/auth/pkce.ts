// Sign-in from the browser: OAuth 2.0 authorization code with PKCE (S256)
// against the control plane's own authorization server (same origin), as
// the public client `cmdop-console`. No client secret exists; the verifier,
// kept in sessionStorage between the redirect and the callback, is what
// proves the callback belongs to the page that started the sign-in, and
// `state` guards against a forged callback.
//
// The protocol work is oauth4webapi's: PKCE, the callback's checks (state,
// error, RFC 9207's `iss`), the token responses and the ID token's claims.
// What stays here is where things are kept and what the console calls.
import * as oauth from 'oauth4webapi';
import { newAuth, saveAuth, type StoredAuth } from './storage';

export const CLIENT_ID = 'cmdop-console';
const PENDING_KEY = 'cmdop.pkce';
const SCOPE = 'openid offline_access';

interface Pending {
  state: string;
  verifier: string;
  /** Where to return after sign-in (path only). */
  returnTo: string;
}

const client: oauth.Client = { client_id: CLIENT_ID, id_token_signed_response_alg: 'ES256' };
const noSecret = oauth.None();
/** http: only on loopback, where the browser allows the console at all (crypto.subtle needs a secure context). */
const insecure = () => ({ [oauth.allowInsecureRequests]: location.protocol === 'http:' });

let metadata: Promise<oauth.AuthorizationServer> | undefined;

/**
 * The authorization server, from its discovery document. Its endpoints are
 * taken on this page's origin, whatever public URL the issuer names (a TLS
 * proxy, a LAN address): the console and its server are one origin, so no
 * request needs CORS. The issuer stays as advertised, for the `iss` checks.
 */
function authorizationServer(): Promise<oauth.AuthorizationServer> {
  metadata ??= (async () => {
    const res = await fetch('/.well-known/openid-configuration', { credentials: 'omit', cache: 'no-store' });
    if (!res.ok) throw new Error(`the sign-in server's discovery document answered ${res.status}`);
    const doc = (await res.json()) as oauth.AuthorizationServer;
    const here = (p: string) => `${location.origin}${p}`;
    return { ...doc, token_endpoint: here('/token'), revocation_endpoint: here('/token/revocation'), authorization_endpoint: here('/auth') };
  })();
  metadata.catch(() => (metadata = undefined)); // try again next time
  return metadata;
}

export async function challengeOf(verifier: string): Promise<string> {
  if (!crypto.subtle) {
    // crypto.subtle exists only in secure contexts (https, or http on loopback).
    throw new Error('sign-in needs a secure page (https, or http on 127.0.0.1/localhost)');
  }
  return oauth.calculatePKCECodeChallenge(verifier);
}

export const redirectUri = (): string => `${location.origin}/callback`;

/** Sends the browser to the authorization endpoint. */
export async function beginSignIn(): Promise<void> {
  const pending: Pending = { state: oauth.generateRandomState(), verifier: oauth.generateRandomCodeVerifier(), returnTo: '/' };
  const challenge = await challengeOf(pending.verifier);
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const q = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: 'code',
    redirect_uri: redirectUri(),
    scope: SCOPE,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: pending.state,
  });
  location.assign(`/auth?${q.toString().replace(/\+/g, '%20')}`);
}

type Tokens = Pick<StoredAuth, 'accessToken' | 'refreshToken' | 'expiresAtMs' | 'source'>;

function tokensOf(t: oauth.TokenEndpointResponse): Tokens {
  return {
    accessToken: t.access_token,
    refreshToken: t.refresh_token,
    expiresAtMs: t.expires_in ? Date.now() + t.expires_in * 1000 : undefined,
    source: 'oauth',
  };
}

/** oauth4webapi's errors, in the words the console shows. */
function explained(e: unknown): Error {
  if (e instanceof oauth.ResponseBodyError) {
    return new Error(`sign-in failed: ${e.error}${e.error_description ? ` (${e.error_description})` : ''}`);
  }
  if (e instanceof oauth.AuthorizationResponseError) {
    return new Error(`sign-in was not completed: ${e.error}${e.error_description ? ` (${e.error_description})` : ''}`);
  }
  return e instanceof Error ? e : new Error(String(e));
}

/** On /callback: checks `state`, trades the code for tokens, stores them; returns where to go next. */
export async function completeSignIn(search: string): Promise<string> {
  const q = new URLSearchParams(search);
  const raw = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY); // one use, whatever happens
  const err = q.get('error');
  if (err) throw new Error(`sign-in was not completed: ${err}${q.get('error_description') ? ` (${q.get('error_description')})` : ''}`);
  if (!raw) throw new Error('no sign-in was started from this tab; start again');
  const pending = JSON.parse(raw) as Pending;
  if (!q.get('code')) throw new Error('the callback carries no code');
  if (q.get('state') !== pending.state) throw new Error('the callback does not match the sign-in this tab started (state differs)');
  try {
    const as = await authorizationServer();
    const params = oauth.validateAuthResponse(as, client, q, pending.state);
    const res = await oauth.authorizationCodeGrantRequest(as, client, noSecret, params, redirectUri(), pending.verifier, insecure());
    const auth = tokensOf(await oauth.processAuthorizationCodeResponse(as, client, res));
    saveAuth(newAuth(auth));
  } catch (e) {
    throw explained(e);
  }
  return pending.returnTo;
}

/**
 * A new access token from the refresh token (which rotates: the new one
 * replaces it). Callers make sure no other tab of this browser uses the same
 * refresh token at the same time (sharedSession.ts).
 */
export async function refreshAuth(a: StoredAuth): Promise<StoredAuth> {
  if (!a.refreshToken) throw new Error('no refresh token');
  let t: Tokens;
  try {
    const as = await authorizationServer();
    const res = await oauth.refreshTokenGrantRequest(as, client, noSecret, a.refreshToken, insecure());
    t = tokensOf(await oauth.processRefreshTokenResponse(as, client, res));
  } catch (e) {
    throw explained(e);
  }
  const next: StoredAuth = { ...a, ...t, refreshToken: t.refreshToken ?? a.refreshToken, gen: a.gen + 1 };
  saveAuth(next);
  return next;
}

/** Signing out: the refresh token is revoked at once (the access token lapses within minutes). */
export async function revokeAuth(a: StoredAuth): Promise<void> {
  if (!a.refreshToken) return;
  try {
    const as = await authorizationServer();
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, noSecret, a.refreshToken, { ...insecure(), additionalParameters: { token_type_hint: 'refresh_token' } }));
  } catch {
    // Signed out here all the same; the token lapses on its own.
  }
}
