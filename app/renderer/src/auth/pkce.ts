// Sign-in from the browser: OAuth 2.0 authorization code with PKCE (S256)
// against the control plane's own authorization server (same origin), as
// the public client `cmdop-console`. No client secret exists; the verifier,
// kept in sessionStorage between the redirect and the callback, is what
// proves the callback belongs to the page that started the sign-in, and
// `state` guards against a forged callback.
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

function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(bytes = 32): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

export async function challengeOf(verifier: string): Promise<string> {
  if (!crypto.subtle) {
    // crypto.subtle exists only in secure contexts (https, or http on loopback).
    throw new Error('sign-in needs a secure page (https, or http on 127.0.0.1/localhost)');
  }
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

export const redirectUri = (): string => `${location.origin}/callback`;

/** Sends the browser to the authorization endpoint. */
export async function beginSignIn(): Promise<void> {
  const pending: Pending = { state: randomString(16), verifier: randomString(48), returnTo: '/' };
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

interface TokenResponse {
  access_token: string;
  refresh_token?: string;
  expires_in?: number;
  error?: string;
  error_description?: string;
}

type Tokens = Pick<StoredAuth, 'accessToken' | 'refreshToken' | 'expiresAtMs' | 'source'>;

async function tokenRequest(form: Record<string, string>): Promise<Tokens> {
  const res = await fetch('/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(form).toString(),
    credentials: 'omit',
    cache: 'no-store',
  });
  let body: TokenResponse;
  try {
    body = (await res.json()) as TokenResponse;
  } catch {
    throw new Error(`the token endpoint answered ${res.status} without JSON`);
  }
  if (!res.ok || !body.access_token) {
    throw new Error(`sign-in failed: ${body.error ?? res.status}${body.error_description ? ` (${body.error_description})` : ''}`);
  }
  return {
    accessToken: body.access_token,
    refreshToken: body.refresh_token,
    expiresAtMs: body.expires_in ? Date.now() + body.expires_in * 1000 : undefined,
    source: 'oauth',
  };
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
  const code = q.get('code');
  if (!code) throw new Error('the callback carries no code');
  if (q.get('state') !== pending.state) throw new Error('the callback does not match the sign-in this tab started (state differs)');
  const auth = await tokenRequest({
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri(),
    client_id: CLIENT_ID,
    code_verifier: pending.verifier,
  });
  saveAuth(newAuth(auth));
  return pending.returnTo;
}

/**
 * A new access token from the refresh token (which rotates: the new one
 * replaces it). Callers make sure no other tab of this browser uses the same
 * refresh token at the same time (sharedSession.ts).
 */
export async function refreshAuth(a: StoredAuth): Promise<StoredAuth> {
  if (!a.refreshToken) throw new Error('no refresh token');
  const t = await tokenRequest({ grant_type: 'refresh_token', refresh_token: a.refreshToken, client_id: CLIENT_ID });
  const next: StoredAuth = { ...a, ...t, refreshToken: t.refreshToken ?? a.refreshToken, gen: a.gen + 1 };
  saveAuth(next);
  return next;
}

/** Signing out: the refresh token is revoked at once (the access token lapses within minutes). */
export async function revokeAuth(a: StoredAuth): Promise<void> {
  if (!a.refreshToken) return;
  await fetch('/token/revocation', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: a.refreshToken, token_type_hint: 'refresh_token', client_id: CLIENT_ID }).toString(),
    credentials: 'omit',
  }).catch(() => {});
}
