// Connecting to a control plane the way the product does, for the CLI, the
// desktop app and SDK users alike: the address (a list `A,B,C` too), TLS
// trust (the system CAs, or a self-signed certificate pinned on first use,
// sdk/trust/), and the bearer token (an explicit one, else CMDOP_TOKEN, else
// a stored sign-in kept fresh, else - on loopback only - the local control
// plane's admin.token, which is how `cmdop up` and `cmdop server --tls` need
// no sign-in for their own user). `connect()` does all of it in one call.
//
// Nothing here writes to the terminal: what a person should be told (a
// certificate pinned for the first time, one refused, a refresh that
// failed) goes to the caller's onFirstUse/onNotice; the CLI's print it
// (cli/connection.ts).
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CmdopClient } from './client';
import { resolveClientOptions } from './config';
import { ServerList, isLoopback, parseServerList } from '../lib/serverAddress';
import { Trust, grpcChannelCredentials, grpcChannelOptions, httpsAgent } from '../lib/tls/channelCredentials';
import { defaultDataDir, knownServersFile, loginsFile } from '../lib/paths';
import { PinMismatchError, resolveTrust } from './trust/firstUse';
import { KnownServers } from './trust/knownServers';
import { ListTrust, listChannelCredentials } from './trust/replicaTrust';
import { LoginStore, Logins, REFRESH_MARGIN_MS, StoredLogin, freshLogin } from './signin/logins';
import { OAuthClient } from './signin/oauthClient';

/** How a server's certificate is trusted, and who is told what. */
export interface TrustOptions {
  /** Where first-use pins are kept (default: the CLI's known_servers.json, so `cmdop trust` lists them). */
  knownServersFile?: string;
  /** A fingerprint the server must present, got out of band (default: CMDOP_TLS_FINGERPRINT). With a list, every entry. */
  fingerprint?: string;
  /**
   * A self-signed certificate was pinned for the first time: `server` is
   * the address as shown (grpcs://HOST:PORT), `fingerprint` its SHA-256, to
   * compare with the one the server printed at start-up.
   */
  onFirstUse?(server: string, fingerprint: string): void;
  /**
   * Something a person should hear about that is not the failure of a call:
   * a list entry refused for its certificate (each message once), or a
   * stored sign-in that could not be refreshed in the background.
   */
  onNotice?(message: string, cause: Error): void;
}

export interface Connection {
  /** The server as given. */
  server: string | readonly string[];
  /** One address, or several to try in order (`A,B,C`). */
  address: ServerList;
  /** TLS: how the server (with a list: the first entry that answered) is trusted; also used for its web port. */
  trust: Trust | undefined;
  /** TLS with a list: each entry's certificate, judged at every connection (sdk/trust/replicaTrust.ts). */
  listTrust?: ListTrust;
  credentials: grpc.ChannelCredentials;
  channelOptions: grpc.ChannelOptions;
  /** What it was resolved with; pinnedCredentials resolves again with the same. */
  trustOptions: TrustOptions;
}

/** Resolves TLS trust for an address (or a list): probes a TLS server, pins it on first use, refuses a changed certificate (PinMismatchError). */
export async function connectionTo(server: string | readonly string[], o: TrustOptions = {}): Promise<Connection> {
  const address = parseServerList(server);
  const base = { server, address, trustOptions: o };
  if (!address.tls) return { ...base, trust: undefined, credentials: grpc.credentials.createInsecure(), channelOptions: {} };
  const knownServers = new KnownServers(o.knownServersFile ?? knownServersFile());
  const expectedFingerprint = o.fingerprint ?? (process.env.CMDOP_TLS_FINGERPRINT || undefined);
  if (address.entries.length === 1) {
    const one = address.entries[0];
    const trust = await resolveTrust({
      host: one.host,
      port: one.port,
      knownServers,
      expectedFingerprint,
      onFirstUse: (fp) => o.onFirstUse?.(one.display, fp),
    });
    return { ...base, trust, credentials: grpcChannelCredentials(trust), channelOptions: grpcChannelOptions(trust, one.host) };
  }
  // Several: each entry pinned on its own, when it is first reached (a
  // replica that is down now is judged when the channel goes over to it).
  const told = new Set<string>();
  const listTrust = new ListTrust({
    knownServers,
    expectedFingerprint,
    onFirstUse: (a, fp) => o.onFirstUse?.(`grpcs://${a}`, fp),
    onRefused: (e) => {
      if (told.has(e.message)) return;
      told.add(e.message);
      o.onNotice?.(e.message, e);
    },
  });
  const trust = await listTrust.probeFirst(address.entries);
  return { ...base, trust, listTrust, credentials: listChannelCredentials(address.entries, listTrust), channelOptions: {} };
}

/**
 * The reconnect policy for a long-lived connection (an agent): channel
 * credentials checked again before every reconnect. A certificate that no
 * longer matches its pin is fatal (the PinMismatchError gets `fatal: true`,
 * and the agent stops and says why) rather than retried forever. With a
 * list, every connection to an entry is checked as it is made, and a
 * mismatch seen on any entry is fatal at the next reconnect.
 */
export function pinnedCredentials(conn: Connection): () => Promise<grpc.ChannelCredentials> {
  const fatal = (e: unknown) => {
    if (e instanceof PinMismatchError) (e as PinMismatchError & { fatal: boolean }).fatal = true;
    return Promise.reject(e);
  };
  const list = conn.listTrust;
  if (list) return () => (list.mismatch ? fatal(list.mismatch) : Promise.resolve(conn.credentials));
  return () => connectionTo(conn.server, conn.trustOptions).then((c) => c.credentials, fatal);
}

/** An OAuth client for the control plane's web port, trusting it as its gRPC port is trusted. */
export const oauthClientFor = (conn: Connection, clientId: string) =>
  new OAuthClient(clientId, conn.trust ? httpsAgent(conn.trust) : undefined);

/** Where the token comes from when none is given. */
export interface TokenOptions {
  /** Use this token, and look for none. */
  token?: string;
  /** Stored sign-ins (default: `cmdop login`'s file, lib/paths.ts loginsFile). */
  logins?: LoginStore;
  /** The local control plane's data dir, for its admin.token on loopback (default: CMDOP_DATA_DIR, else the one `cmdop up` uses). */
  dataDir?: string;
}

export interface TokenSource {
  token: string | undefined;
  /** Where it came from, for `whoami` and error messages. */
  source: 'option' | 'CMDOP_TOKEN' | 'login' | 'admin.token' | 'none';
  login?: StoredLogin;
}

const loginsOf = (o: TokenOptions): LoginStore => o.logins ?? new Logins(loginsFile());

/** The stored sign-in's access token, refreshed (under the lock) when it is close to expiry. */
const loginToken = (conn: Connection, store: LoginStore) =>
  freshLogin(store, conn.address.display, { oauth: (id) => oauthClientFor(conn, id), forgetRevoked: true });

/** The local control plane's admin token, for a loopback server only (with a list: every entry on loopback). */
function localAdminToken(address: ServerList, dataDir: string): string | undefined {
  if (!address.entries.every((e) => isLoopback(e.host))) return undefined;
  try {
    return fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The token to use on `conn`: the one given, else CMDOP_TOKEN, else a stored sign-in (refreshed if due), else admin.token on loopback. */
export async function tokenFor(conn: Connection, o: TokenOptions = {}): Promise<TokenSource> {
  if (o.token !== undefined) return { token: o.token, source: 'option' };
  if (process.env.CMDOP_TOKEN) return { token: process.env.CMDOP_TOKEN, source: 'CMDOP_TOKEN' };
  const login = await loginToken(conn, loginsOf(o));
  if (login) return { token: login.accessToken, source: 'login', login };
  const admin = localAdminToken(conn.address, o.dataDir ?? defaultDataDir());
  if (admin) return { token: admin, source: 'admin.token' };
  return { token: undefined, source: 'none' };
}

export interface ConnectOptions extends TrustOptions, TokenOptions {
  /**
   * HOST:PORT, or grpcs://HOST:PORT for TLS; several (an array, or
   * `A,B,C`) are tried in order. Default: CMDOP_SERVER, else the local
   * control plane `cmdop up` starts.
   */
  server?: string | readonly string[];
  /** Default machine for terminal calls (CMDOP_MACHINE). */
  machine?: string;
  /** Client heartbeat interval, ms. */
  heartbeatIntervalMs?: number;
  /** How long an attachment keeps trying to re-attach after losing its stream, ms. */
  reconnectTimeoutMs?: number;
}

/**
 * A client for a control plane, signed in, in one call: trust resolved
 * (a self-signed certificate pinned on first use, PinMismatchError when it
 * changed), and the token found (ConnectOptions, TokenOptions). With a
 * stored sign-in, the access token is refreshed in the background for as
 * long as the client is open (a failed refresh goes to onNotice).
 */
export async function connect(o: ConnectOptions = {}): Promise<CmdopClient> {
  const server = resolveClientOptions({ server: o.server }).server;
  const conn = await connectionTo(server, o);
  const src = await tokenFor(conn, o);
  const client = new CmdopClient({
    server: conn.address.display,
    credentials: conn.credentials,
    channelOptions: conn.channelOptions,
    machine: o.machine,
    token: src.token,
    heartbeatIntervalMs: o.heartbeatIntervalMs,
    reconnectTimeoutMs: o.reconnectTimeoutMs,
  });
  if (src.source === 'login') keepFresh(client, conn, src.login!, loginsOf(o), o.onNotice);
  return client;
}

/** Refreshes a stored sign-in's access token a minute before it expires, until the client is closed. */
function keepFresh(client: CmdopClient, conn: Connection, login: StoredLogin, store: LoginStore, onNotice: TrustOptions['onNotice']): void {
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  client.onClose(() => {
    closed = true;
    clearTimeout(timer);
  });
  const schedule = (l: StoredLogin) => {
    const due = Math.max(1000, l.accessExpiresMs - Date.now() - REFRESH_MARGIN_MS);
    timer = setTimeout(() => {
      loginToken(conn, store)
        .then((next) => {
          if (!next || closed) return;
          client.setToken(next.accessToken);
          schedule(next);
        })
        .catch((e: Error) => onNotice?.(e.message, e));
    }, due);
    timer.unref();
  };
  schedule(login);
}
