// The control plane process: the core (registry, sessions, relays, file
// routing, access: control-plane/core/) with its durable state in SQLite
// under the data dir, served on two ports by thin transports: gRPC for
// agents, the CLI and the SDK (transports/grpc/), and the web port for
// browsers (transports/http/webServer.ts: the console, its file transfers,
// its WebSocket gateway (transports/ws/), and the OAuth server).
import {
  DEFAULT_SERVER,
  DEFAULT_TIMEOUTS,
  PROTOCOL_VERSION,
  RELAY_BUFFER,
  type TokenKind,
} from '../protocol';
import { Registry } from './core/registry';
import path from 'node:path';
import fs from 'node:fs';
import { AuthRepo, OAuthModelsRepo, SessionsRepo, SigningKeysRepo, createOidcAdapter, createRateLimiter, openDb, type Db } from './db';
import { generateOAuthKeys, loadOrCreateOAuthKeys } from './oauth/keys';
import { Access, type Revocation } from './core/access';
import { LocalBus, NatsBus, type Bus } from './cluster/bus';
import { DEAD_MS, Replica } from './cluster/replica';
import { RevocationFeed } from './cluster/revocations';
import { randomUUID } from 'node:crypto';
import { AgentLinks } from './core/agentLink';
import { PeerForwarder } from './transports/peer/forwarder';
import { startPeerPort } from './transports/peer/server';
import { authCalls } from './core/authCalls';
import { ClientCalls } from './core/clientCalls';
import { isLoopback } from '../lib/serverAddress';
import { DEFAULT_RATE_LIMIT, createOAuthWeb, oauthIssuer, type OAuthWebOptions } from './oauth/web';
import { CLI_CLIENT_ID } from './oauth/provider';
import { accountsOf } from './auth/web';
import { createConsoleHandler } from './transports/http/consoleStatic';
import { createFileRoutes } from './transports/http/fileRoutes';
import { startWebServer } from './transports/http/webServer';
import { createGateway } from './transports/ws/gateway';
import { agentServiceHandlers } from './transports/grpc/agentService';
import { authServiceHandlers, clientServiceHandlers } from './transports/grpc/clientService';
import { ConnectionLimits, DEFAULT_CONNECTION_LIMITS } from './transports/grpc/connections';
import { startGrpcPort } from './transports/grpc/server';
import { createLogger, type Logger } from '../lib/logger';
import { collectWhenIdle } from '../lib/idleCollector';
import { Counters } from './core/counters';

const VERSION: string = require('../../package.json').version;
// Required only when metrics are asked for: prom-client stays unloaded otherwise (off by default; the desktop app embeds this).
const metricsModule = (): typeof import('./transports/metrics/metrics') => require('./transports/metrics/metrics');
const metricsPortModule = (): typeof import('./transports/metrics/server') => require('./transports/metrics/server');

export interface ControlPlaneOptions {
  /** HOST:PORT; port 0 picks a free one. */
  listen?: string;
  dataDir: string;
  /**
   * Where the durable state lives: a postgres:// URL (replicas share it), or
   * by default DATA_DIR/cmdop.sqlite.
   */
  store?: string;
  /** NATS server(s) for control events among replicas (nats://HOST:PORT[,...]); none: one control plane. */
  bus?: string;
  /**
   * Where other replicas forward their clients' calls for machines whose
   * agents are here (HOST:PORT; PeerService), and the secret every replica
   * of the cluster shares. Without it, a client must reach the replica its
   * machine's agent is on.
   */
  peer?: { listen: string; secret: string };
  gracePeriodS?: number;
  backgroundTimeoutS?: number;
  heartbeatTimeoutS?: number;
  clientTimeoutS?: number;
  heartbeatIntervalS?: number;
  /** How long a console upload waits for its machine to come back (default 60). */
  uploadResumeS?: number;
  /** Recent output kept per terminal, bytes. */
  relayBuffer?: number;
  /** TLS for gRPC and the web port (lib/tls/serverCertificate.ts loads or generates it). */
  tls?: { certPem: string; keyPem: string; fingerprint: string };
  /** Allow a non-loopback address without TLS (tokens then cross the network in clear). */
  insecure?: boolean;
  /** HOST:PORT of the web port (sign-in pages, OAuth endpoints); default: the gRPC port + 1. */
  webListen?: string;
  /** The web address people and clients use, if not the listen address. */
  publicUrl?: string;
  /** The built browser console (index.html + assets/); default dist/renderer. */
  consoleDir?: string;
  /** OAuth lifetimes and limits (tests shorten them). */
  oauth?: Pick<OAuthWebOptions, 'ttl' | 'pollIntervalS'> & { rateLimit?: { points: number; durationS: number } };
  /**
   * HOST:PORT where GET /metrics answers in the Prometheus text format
   * (transports/metrics/); none: no metrics port (the default). Never one
   * of the public ports.
   */
  metricsListen?: string;
  /** Bounds on gRPC connections (grpcConnections.ts; tests shorten the timeouts). */
  connectionLimits?: Partial<ConnectionLimits>;
  logger?: Logger;
}

export interface ControlPlane {
  /** HOST:PORT actually bound (grpcs://HOST:PORT with TLS): what clients pass as --server. */
  readonly address: string;
  readonly port: number;
  readonly registry: Registry;
  readonly sessions: SessionsRepo;
  readonly db: Db;
  readonly access: Access;
  /** DATA_DIR/admin.token: the first admin's token. */
  readonly adminTokenFile: string;
  /** This process as a replica: its id, and where other replicas forward to it ('' without --peer-listen). */
  readonly replica: { id: string; peerAddress: string };
  /** The web port's base URL as bound (sign-in pages, the console). */
  readonly webUrl: string;
  /** The OAuth issuer: the URL browsers use (publicUrl when given, else webUrl); the console lives at its root. */
  readonly issuer: string;
  /** http://HOST:PORT/metrics as bound ('' without metricsListen). */
  readonly metricsUrl: string;
  /**
   * Tokens for the program that embeds this control plane (the desktop app's
   * control-plane process, app/host/controlPlaneHost.ts): issued to the first
   * admin without a call, and revoked as `cmdop tokens revoke` does, its live
   * streams closed.
   */
  readonly adminTokens: {
    issue(kind: TokenKind, o: { name: string; machine?: string; expiresInS?: number }): Promise<{ id: string; token: string }>;
    /** Resolves to the number of streams closed. */
    revoke(id: string): Promise<number>;
  };
  close(): Promise<void>;
}

/** When draining, agents are told to come back spread over at most this (1 ms per agent, and 200 ms). */
const DRAIN_SPREAD_MAX_MS = 5000;

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (!m) throw new Error(`--listen must be HOST:PORT (got ${JSON.stringify(listen)})`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`port ${port} is out of range`);
  return { host: m[1] ?? m[2], port };
}

/**
 * --metrics-listen as HOST:PORT, refused when its port is one of the public
 * ones (the metrics port has no authentication and answers only /metrics).
 */
export function parseMetricsListen(listen: string, taken: { what: string; port: number }[]): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (!m) throw new Error(`--metrics-listen must be HOST:PORT, e.g. 127.0.0.1:9464 (got ${JSON.stringify(listen)})`);
  const { host, port } = parseListen(listen);
  const same = taken.find((t) => t.port !== 0 && t.port === port);
  if (same) {
    throw new Error(`--metrics-listen ${listen}: port ${port} is ${same.what}; metrics are served on a port of their own, never a public one (e.g. 127.0.0.1:9464)`);
  }
  return { host, port };
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const logger = opts.logger ?? createLogger('control-plane');
  collectWhenIdle(); // memory back after a burst (lib/idleCollector.ts), also when the desktop app embeds it
  const { host, port } = parseListen(opts.listen ?? DEFAULT_SERVER);
  if (!opts.tls && !opts.insecure && !isLoopback(host)) {
    throw new Error(
      `refusing to listen on ${host} without TLS: bearer tokens would cross the network in clear. ` +
        'Use --tls (a self-signed certificate clients pin), --tls-cert/--tls-key, or --insecure if something else encrypts the link',
    );
  }
  const timeouts = {
    heartbeatTimeoutS: opts.heartbeatTimeoutS ?? DEFAULT_TIMEOUTS.heartbeatTimeoutS,
    gracePeriodS: opts.gracePeriodS ?? DEFAULT_TIMEOUTS.gracePeriodS,
    backgroundTimeoutS: opts.backgroundTimeoutS ?? DEFAULT_TIMEOUTS.backgroundTimeoutS,
    heartbeatIntervalS: opts.heartbeatIntervalS ?? DEFAULT_TIMEOUTS.heartbeatIntervalS,
  };
  const clientTimeoutS = opts.clientTimeoutS ?? DEFAULT_TIMEOUTS.clientTimeoutS;
  const webListen = opts.webListen ? parseListen(opts.webListen) : { host, port: port === 0 ? 0 : port + 1 };
  const metricsListen = opts.metricsListen === undefined ? undefined : parseMetricsListen(opts.metricsListen, [
    { what: 'the gRPC port (--listen)', port },
    { what: 'the web port (--web-listen)', port: webListen.port },
    { what: 'the peer port (--peer-listen)', port: opts.peer ? parseListen(opts.peer.listen).port : 0 },
  ]);
  fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  // Opened and migrated (replicas starting together take turns: db/migrations.ts).
  const db = await openDb(opts.store ?? { sqliteFile: path.join(opts.dataDir, 'cmdop.sqlite') }).catch((e: Error) => {
    throw new Error(`cannot open the store: ${e.message}`);
  });
  const sessions = new SessionsRepo(db);
  // The bus for control events among replicas (NATS); one control plane alone has nobody to tell.
  const replicaId = randomUUID();
  const bus: Bus = opts.bus
    ? await NatsBus.connect({ servers: opts.bus, replicaId, cluster: 'cmdop', logger }).catch(async (e: Error) => {
        await db.close();
        throw new Error(`cannot reach the bus at ${opts.bus}: ${e.message}`);
      })
    : new LocalBus('local');
  const replica = new Replica(replicaId, sessions, bus, logger, db.engine === 'sqlite');
  await replica.announce();
  const counters = new Counters();
  const registry = new Registry({
    store: sessions,
    counters,
    timeouts,
    logger,
    relayBuffer: opts.relayBuffer ?? RELAY_BUFFER,
    replica: replica.id,
    replicaDeadMs: DEAD_MS,
    alone: db.engine === 'sqlite',
    onClaimed: (s) => bus.publish({ type: 'session-moved', sessionId: s.sessionId, machine: s.name, owner: replica.id, epoch: s.epoch }),
  });
  bus.onEvent((e) => {
    if (e.type === 'session-moved') registry.release(e.sessionId, e.epoch, 'another control plane replica took this session over');
  });
  // Sessions a previous run (or a dead replica) left open wait in their grace period for their agents.
  const taken = await registry.restore();
  replica.start(registry);
  if (taken.restored + taken.ended > 0) logger.info(taken, 'sessions left open by a previous run: restored in GRACE_PERIOD, or ended');
  const access = new Access(new AuthRepo(db), counters);
  const admin = await access.bootstrapAdmin(opts.dataDir);
  // The OAuth server's keys: a file under the data dir for one process; in
  // PostgreSQL for replicas, which must all sign and read the same (a file
  // made by an earlier single-node run is carried into the store once).
  const keys =
    db.engine === 'sqlite'
      ? loadOrCreateOAuthKeys(opts.dataDir)
      : await new SigningKeysRepo(db).loadOrCreate(() =>
          fs.existsSync(path.join(opts.dataDir, 'oauth-keys.json')) ? loadOrCreateOAuthKeys(opts.dataDir) : generateOAuthKeys(),
        );
  const oauthStore = createOidcAdapter(new OAuthModelsRepo(db));
  const rate = opts.oauth?.rateLimit ?? DEFAULT_RATE_LIMIT;
  if (admin.created) logger.info({ file: admin.file }, 'wrote a new admin token');

  // The web port first: the OAuth issuer is its bound address (or --public-url).
  let draining = false;
  const web = await startWebServer({ listen: webListen, tls: opts.tls, ready: () => !draining && replica.healthy, logger }).catch(async (e: Error) => {
    await db.close();
    throw new Error(`cannot start the web port on ${webListen.host}:${webListen.port}: ${e.message} (choose it with --web-listen)`);
  });
  const oauth = createOAuthWeb({
    adapter: oauthStore,
    keys,
    limiters: {
      userCode: createRateLimiter(db, { keyPrefix: 'user_code', points: rate.points, durationS: rate.durationS }),
      login: createRateLimiter(db, { keyPrefix: 'login', points: rate.points, durationS: rate.durationS }),
    },
    accounts: accountsOf(access.store),
    issuer: oauthIssuer(web.scheme, webListen.host, web.port, opts.publicUrl, logger),
    ttl: opts.oauth?.ttl,
    pollIntervalS: opts.oauth?.pollIntervalS,
    logger,
    onEvent: (e) =>
      access.store.audit({
        actor: e.user ?? 'anonymous',
        action: e.type === 'login' || e.type === 'login_failed' ? 'login' : e.type === 'rate_limited' ? 'rate-limited' : e.type.replace('_', '-'),
        ok: e.type === 'login' || e.type === 'device_approved',
        detail: e.detail ?? '',
        peer: e.ip,
        machine: '',
        terminalId: '',
        mode: 0,
        commandId: '',
      }),
  });
  access.setOAuthVerifier(async (token) => {
    const v = await oauth.verifyAccessToken(token);
    return v && { userId: v.userId, expiresAtMs: v.expiresAtMs };
  });

  // The core, and the transports over it.
  const forwarder = opts.peer ? new PeerForwarder(replica.id, opts.peer.secret) : undefined;
  const calls = new ClientCalls(registry, access, logger, clientTimeoutS, forwarder);
  const links = new AgentLinks(registry, access, logger);
  const serverInfo = () => ({
    version: VERSION,
    issuer: oauth.issuer,
    deviceAuthorizationEndpoint: `${oauth.issuer}/device/auth`,
    tokenEndpoint: `${oauth.issuer}/token`,
    revocationEndpoint: `${oauth.issuer}/token/revocation`,
    clientId: CLI_CLIENT_ID,
    webUrl: web.url,
    protocolVersion: PROTOCOL_VERSION,
    timeMs: Date.now(),
  });
  // A revocation cuts streams here and on every other replica: through the bus at once, through the store within a second.
  const revocations = new RevocationFeed(access, access.store, bus, logger);
  await revocations.start();
  const revoke = (r: Revocation) => revocations.revoke(r);
  const auth = authCalls({ access, registry, serverInfo, revoke });
  const gateway = createGateway({ access, calls, whoAmI: auth.whoAmI, logger });
  const fileRoutes = createFileRoutes({
    access,
    calls,
    uploadResumeMs: opts.uploadResumeS === undefined ? undefined : opts.uploadResumeS * 1000,
  });
  const consoleFiles = createConsoleHandler({ dir: opts.consoleDir, tls: Boolean(opts.tls), issuer: () => oauth.issuer });
  web.mount([fileRoutes.handle, consoleFiles], oauth.handle, [gateway.upgrade]);

  const metrics = metricsListen
    ? metricsModule().createMetrics({ registry, counters, version: VERSION, replica: replica.id })
    : undefined;
  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...opts.connectionLimits };
  const grpcPort = await startGrpcPort({
    host,
    port,
    tls: opts.tls,
    limits,
    services: {
      agent: agentServiceHandlers(links, access),
      client: clientServiceHandlers(calls, access),
      auth: authServiceHandlers(auth, access),
    },
    logger,
    observeCall: metrics?.observeCall,
  }).catch(async (e: Error) => {
    await web.close();
    await db.close();
    throw e;
  });
  const address = grpcPort.address;
  // The peer port last: once the others can find it (the store), every call it takes can be served.
  const peerPort = opts.peer
    ? await startPeerPort({ ...parseListen(opts.peer.listen), secret: opts.peer.secret, tls: opts.tls, calls, logger, observeCall: metrics?.observeCall }).catch(async (e: Error) => {
        await grpcPort.close(0);
        await web.close();
        await db.close();
        throw e;
      })
    : undefined;
  if (peerPort) await replica.advertise(peerPort.address, opts.tls?.certPem);
  // The metrics port: its own address, never one of the ports above (each replica serves its own).
  const metricsPort =
    metrics && metricsListen
      ? await metricsPortModule().startMetricsPort({ ...metricsListen, registry: metrics.registry, logger }).catch(async (e: Error) => {
          await peerPort?.close(0);
          await grpcPort.close(0);
          await web.close();
          await db.close();
          throw new Error(`cannot start the metrics port on ${opts.metricsListen}: ${e.message} (choose it with --metrics-listen)`);
        })
      : undefined;
  logger.info({ address, peer: peerPort?.address, metrics: metricsPort?.url, dataDir: opts.dataDir }, 'control plane listening');

  return {
    address,
    port: grpcPort.port,
    registry,
    sessions,
    db,
    access,
    adminTokenFile: admin.file,
    replica: { id: replica.id, peerAddress: replica.peerAddress },
    webUrl: web.url,
    issuer: oauth.issuer,
    metricsUrl: metricsPort?.url ?? '',
    adminTokens: {
      async issue(kind, o) {
        const t = await access.issue(kind, await access.firstAdmin(), o);
        return { id: t.row.id, token: t.token };
      },
      async revoke(id) {
        await access.store.revokeToken(id);
        return revoke({ kind: 'token', tokenId: id, reason: `token ${id} was revoked` });
      },
    },
    async close() {
      draining = true;
      await metricsPort?.close();
      calls.close();
      // Agents come back (to this process's successor), each after its own
      // delay; clients re-attach; the sessions stay open in the store.
      const n = registry.sessions().length;
      registry.drain('the control plane is restarting', Math.min(DRAIN_SPREAD_MAX_MS, 200 + n));
      await grpcPort.close(2000);
      await peerPort?.close(2000);
      forwarder?.close();
      gateway.close();
      fileRoutes.close();
      await web.close();
      await oauth.close();
      await registry.settled();
      revocations.stop();
      await replica.stop();
      await bus.close();
      await access.store.close();
      await db.close();
    },
  };
}
