// How the CLI reaches a control plane: the address (--server, CMDOP_SERVER,
// else the local default), TLS trust (system CAs, or a self-signed
// certificate pinned on first use), and the bearer token (CMDOP_TOKEN, else a
// stored `cmdop login`, else - on loopback only - the local control plane's
// admin.token, which is how `cmdop up` needs no sign-in for its own user).
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import * as grpc from '@grpc/grpc-js';
import { CmdopClient } from '../sdk';
import { ServerList, isLoopback, parseServerList } from '../lib/serverAddress';
import { Trust, grpcChannelCredentials, grpcChannelOptions, httpsAgent } from '../lib/tls/channelCredentials';
import { PinMismatchError, resolveTrust } from '../sdk/trust/firstUse';
import { KnownServers } from '../sdk/trust/knownServers';
import { ListTrust, listChannelCredentials } from '../sdk/trust/replicaTrust';
import { defaultDataDir, knownServersFile, loginsFile } from './paths';
import { serverAddress } from './server-address';
import { Logins, StoredLogin } from './auth/logins';
import { OAuthClient, OAuthError } from './auth/oauthClient';

export interface Connection {
  /** One address, or several to try in order (`A,B,C`). */
  address: ServerList;
  /** TLS: how the server (with a list: the first entry that answered) is trusted; also used for its web port. */
  trust: Trust | undefined;
  /** TLS with a list: each entry's certificate, judged at every connection (sdk/trust/replicaTrust.ts). */
  listTrust?: ListTrust;
  credentials: grpc.ChannelCredentials;
  channelOptions: grpc.ChannelOptions;
}

const firstUse = (display: string, fp: string) =>
  process.stderr.write(
    `cmdop: first connection to ${display}: pinned its certificate SHA256 ${fp}\n` +
      `       (compare with the fingerprint the server printed; a different one later is refused)\n`,
  );

/** Resolves TLS trust for an address (or a list); prints a notice the first time a certificate is pinned. */
export async function connectionTo(addr: string): Promise<Connection> {
  const address = parseServerList(addr);
  if (!address.tls) return { address, trust: undefined, credentials: grpc.credentials.createInsecure(), channelOptions: {} };
  const knownServers = new KnownServers(knownServersFile());
  const expectedFingerprint = process.env.CMDOP_TLS_FINGERPRINT || undefined;
  if (address.entries.length === 1) {
    const one = address.entries[0];
    const trust = await resolveTrust({
      host: one.host,
      port: one.port,
      knownServers,
      expectedFingerprint,
      onFirstUse: (fp) => firstUse(one.display, fp),
    });
    return { address, trust, credentials: grpcChannelCredentials(trust), channelOptions: grpcChannelOptions(trust, one.host) };
  }
  // Several: each entry pinned on its own, when it is first reached (a
  // replica that is down now is judged when the channel goes over to it).
  const told = new Set<string>();
  const listTrust = new ListTrust({
    knownServers,
    expectedFingerprint,
    onFirstUse: (a, fp) => firstUse(`grpcs://${a}`, fp),
    onRefused: (e) => {
      if (told.has(e.message)) return;
      told.add(e.message);
      process.stderr.write(`cmdop: ${e.message}\n`);
    },
  });
  const trust = await listTrust.probeFirst(address.entries);
  return { address, trust, listTrust, credentials: listChannelCredentials(address.entries, listTrust), channelOptions: {} };
}

/**
 * For a long-lived agent: channel credentials checked again before every
 * reconnect. A certificate that no longer matches its pin is fatal (the
 * agent stops and says why) rather than retried forever. With a list, every
 * connection to an entry is checked as it is made, and a mismatch seen on
 * any entry stops the agent at its next reconnect.
 */
export function pinnedCredentials(conn: Connection, addr: string): () => Promise<grpc.ChannelCredentials> {
  const fatal = (e: unknown) => {
    if (e instanceof PinMismatchError) (e as PinMismatchError & { fatal: boolean }).fatal = true;
    return Promise.reject(e);
  };
  const list = conn.listTrust;
  if (list) return () => (list.mismatch ? fatal(list.mismatch) : Promise.resolve(conn.credentials));
  return () => connectionTo(addr).then((c) => c.credentials, fatal);
}

export const oauthClientFor = (conn: Connection, clientId: string) =>
  new OAuthClient(clientId, conn.trust ? httpsAgent(conn.trust) : undefined);

/** Refresh this long before an access token expires. */
const REFRESH_MARGIN_MS = 60_000;

/** The stored sign-in's access token, refreshed (under the lock) when it is close to expiry. */
async function loginToken(conn: Connection): Promise<StoredLogin | undefined> {
  const logins = new Logins(loginsFile());
  const key = conn.address.display;
  const first = logins.get(key);
  if (!first) return undefined;
  if (first.accessExpiresMs - Date.now() > REFRESH_MARGIN_MS) return first;
  return logins.locked(async () => {
    const cur = logins.get(key); // another process may have refreshed it meanwhile
    if (!cur) return undefined;
    if (cur.accessExpiresMs - Date.now() > REFRESH_MARGIN_MS) return cur;
    try {
      const t = await oauthClientFor(conn, cur.clientId).refresh(cur.tokenEndpoint, cur.refreshToken);
      const next = { ...cur, accessToken: t.accessToken, refreshToken: t.refreshToken, accessExpiresMs: Date.now() + t.expiresInS * 1000 };
      logins.set(key, next);
      return next;
    } catch (e) {
      if (e instanceof OAuthError && e.error === 'invalid_grant') {
        logins.set(key, undefined);
        throw new Error(`your sign-in to ${key} expired or was revoked: run \`cmdop login\` again`);
      }
      throw e;
    }
  });
}

/** The local control plane's admin token, for a loopback server only (with a list: every entry on loopback). */
function localAdminToken(address: ServerList): string | undefined {
  if (!address.entries.every((e) => isLoopback(e.host))) return undefined;
  try {
    return fs.readFileSync(path.join(defaultDataDir(), 'admin.token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export interface TokenSource {
  token: string | undefined;
  /** Where it came from, for `whoami` and error messages. */
  source: 'CMDOP_TOKEN' | 'login' | 'admin.token' | 'none';
  login?: StoredLogin;
}

export async function tokenFor(conn: Connection): Promise<TokenSource> {
  if (process.env.CMDOP_TOKEN) return { token: process.env.CMDOP_TOKEN, source: 'CMDOP_TOKEN' };
  const login = await loginToken(conn);
  if (login) return { token: login.accessToken, source: 'login', login };
  const admin = localAdminToken(conn.address);
  if (admin) return { token: admin, source: 'admin.token' };
  return { token: undefined, source: 'none' };
}

/**
 * A client for the command's --server, signed in. With a stored login the
 * access token is refreshed in the background for as long as the client
 * lives (connect and watch can run for days).
 */
export async function clientFor(cmd: Command, o: { machine?: string; token?: string } = {}): Promise<CmdopClient> {
  const conn = await connectionTo(serverAddress(cmd));
  const src = o.token !== undefined ? { token: o.token, source: 'CMDOP_TOKEN' as const } : await tokenFor(conn);
  const client = new CmdopClient({ server: conn.address.display, credentials: conn.credentials, channelOptions: conn.channelOptions, machine: o.machine, token: src.token });
  if (src.source === 'login') keepFresh(client, conn, src.login!);
  return client;
}

function keepFresh(client: CmdopClient, conn: Connection, login: StoredLogin): void {
  const due = Math.max(1000, login.accessExpiresMs - Date.now() - REFRESH_MARGIN_MS);
  const t = setTimeout(() => {
    loginToken(conn)
      .then((next) => {
        if (!next) return;
        client.setToken(next.accessToken);
        keepFresh(client, conn, next);
      })
      .catch((e: Error) => process.stderr.write(`cmdop: ${e.message}\n`));
  }, due);
  t.unref();
}
