// The control plane process: a gRPC server for agents and clients over the
// registry, with its durable state in SQLite under the data dir.
import * as grpc from '@grpc/grpc-js';
import type http2 from 'node:http2';
import {
  AgentServiceDefinition,
  AuthServiceDefinition,
  ClientServiceDefinition,
  DEFAULT_SERVER,
  DEFAULT_TIMEOUTS,
  HTTP2_WINDOW,
  MAX_AGENT_MESSAGE,
  RELAY_BUFFER,
  toGrpcService,
} from '../protocol';
import { agentServiceHandlers } from './transports/grpc/agentService';
import { clientServiceHandlers } from './transports/grpc/clientService';
import { Registry } from './core/registry';
import { Store } from './store';
import { Access } from './core/access';
import { AuthStore } from './auth/store';
import { authServiceHandlers } from './transports/grpc/authService';
import { isLoopback } from '../lib/serverAddress';
import { serverCredentials } from '../lib/tls';
import { startOAuthWeb, type OAuthWebOptions } from './oauth/web';
import { CLI_CLIENT_ID } from './oauth/provider';
import { accountsOf } from './auth/web';
import { createConsoleHandler } from './transports/http/consoleStatic';
import { createFileRoutes, type FileRoutes } from './transports/http/fileRoutes';
import { createGateway } from './transports/ws/gateway';
import { createLogger, type Logger } from '../lib/logger';
import { ConnectionLimits, DEFAULT_CONNECTION_LIMITS, connectionOptions, guardHandshakes, http2Settings } from './transports/grpc/connections';

const VERSION: string = require('../../package.json').version;

export interface ControlPlaneOptions {
  /** HOST:PORT; port 0 picks a free one. */
  listen?: string;
  dataDir: string;
  gracePeriodS?: number;
  backgroundTimeoutS?: number;
  heartbeatTimeoutS?: number;
  clientTimeoutS?: number;
  heartbeatIntervalS?: number;
  /** How long a console upload waits for its machine to come back (default 60). */
  uploadResumeS?: number;
  /** Recent output kept per terminal, bytes. */
  relayBuffer?: number;
  /** TLS for gRPC and the web port (lib/tls.ts loads or generates it). */
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
  oauth?: Pick<OAuthWebOptions, 'ttl' | 'rateLimit' | 'pollIntervalS'>;
  /** Bounds on gRPC connections (grpcConnections.ts; tests shorten the timeouts). */
  connectionLimits?: Partial<ConnectionLimits>;
  logger?: Logger;
}

export interface ControlPlane {
  /** HOST:PORT actually bound (grpcs://HOST:PORT with TLS): what clients pass as --server. */
  readonly address: string;
  readonly port: number;
  readonly registry: Registry;
  readonly store: Store;
  readonly access: Access;
  /** DATA_DIR/admin.token: the first admin's token. */
  readonly adminTokenFile: string;
  /** The web port's base URL as bound (sign-in pages, the console). */
  readonly webUrl: string;
  /** The OAuth issuer: the URL browsers use (publicUrl when given, else webUrl); the console lives at its root. */
  readonly issuer: string;
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

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const logger = opts.logger ?? createLogger('control-plane');
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
  const store = new Store(opts.dataDir);
  const registry = new Registry({ store, timeouts, logger, relayBuffer: opts.relayBuffer ?? RELAY_BUFFER });
  // Sessions a previous run left open wait in their grace period for their agents.
  const taken = registry.restore();
  if (taken.restored + taken.ended > 0) logger.info(taken, 'sessions left open by a previous run: restored in GRACE_PERIOD, or ended');
  const access = new Access(new AuthStore(store.database));
  const admin = access.bootstrapAdmin(opts.dataDir);
  if (admin.created) logger.info({ file: admin.file }, 'wrote a new admin token');

  // The web port: the browser console's files, sign-in pages, OAuth
  // endpoints, and the console's WebSocket gateway (set up below, once the
  // handlers exist).
  let gateway: ReturnType<typeof createGateway> | undefined;
  let fileRoutes: FileRoutes | undefined;
  let issuer: string | undefined;
  const consoleFiles = createConsoleHandler({ dir: opts.consoleDir, tls: Boolean(opts.tls), issuer: () => issuer });
  const webListen = opts.webListen ? parseListen(opts.webListen) : { host, port: port === 0 ? 0 : port + 1 };
  const web = await startOAuthWeb({
    db: store.database,
    dataDir: opts.dataDir,
    accounts: accountsOf(access.store),
    listen: webListen,
    tls: opts.tls,
    publicUrl: opts.publicUrl,
    ...opts.oauth,
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
    // /files/...: the console's file transfers (console/files.ts); then its pages.
    extraHandler: async (req, res) => (await fileRoutes?.handle(req, res)) || consoleFiles(req, res),
    onUpgrade: (req, socket, head) => gateway?.upgrade(req, socket, head) ?? false,
  }).catch((e: Error) => {
    store.close();
    throw new Error(`cannot start the web port on ${webListen.host}:${webListen.port}: ${e.message} (choose it with --web-listen)`);
  });
  issuer = web.issuer;
  access.setOAuthVerifier(async (token) => {
    const v = await web.verifyAccessToken(token);
    return v && { userId: v.userId, expiresAtMs: v.expiresAtMs };
  });

  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...opts.connectionLimits };
  const server = new grpc.Server({
    ...connectionOptions(limits),
    'grpc.max_receive_message_length': MAX_AGENT_MESSAGE,
    'grpc.max_send_message_length': MAX_AGENT_MESSAGE,
    // Agents ping every 25 s (keeps NAT mappings open); accept pings that
    // often, with or without calls, and ping back to find dead peers.
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 500,
    'grpc.http2.max_ping_strikes': 0,
    'grpc.keepalive_time_ms': DEFAULT_TIMEOUTS.keepaliveS * 1000,
    'grpc.keepalive_timeout_ms': 10_000,
  });
  // grpc-js has no server option for the HTTP/2 window a server advertises
  // (clients have 'grpc-node.flow_control_window'); it passes these options
  // to http2.createServer as they are.
  // noDelay: a keystroke's echo must not wait for Nagle's algorithm.
  // handshakeTimeout: a TLS connection must finish its handshake as soon as an HTTP/2 one (grpcConnections.ts).
  const http2Options = (
    server as unknown as { commonServerOptions: { settings?: http2.Settings; noDelay?: boolean; handshakeTimeout?: number } }
  ).commonServerOptions;
  http2Options.settings = { ...http2Options.settings, ...http2Settings(limits), initialWindowSize: HTTP2_WINDOW };
  http2Options.noDelay = true;
  http2Options.handshakeTimeout = limits.handshakeMs;
  server.addService(toGrpcService(AgentServiceDefinition), agentServiceHandlers(registry, access, logger));
  const clients = clientServiceHandlers(registry, access, logger, clientTimeoutS);
  server.addService(toGrpcService(ClientServiceDefinition), clients.handlers as any);
  const serverInfo = () => ({
    version: VERSION,
    issuer: web.issuer,
    deviceAuthorizationEndpoint: `${web.issuer}/device/auth`,
    tokenEndpoint: `${web.issuer}/token`,
    revocationEndpoint: `${web.issuer}/token/revocation`,
    clientId: CLI_CLIENT_ID,
    webUrl: web.url,
  });
  const auth = authServiceHandlers({ access, registry, serverInfo });
  server.addService(toGrpcService(AuthServiceDefinition), auth as any);
  gateway = createGateway({ access, handlers: clients.handlers as any, whoAmI: auth.whoAmI as any, logger });
  fileRoutes = createFileRoutes({
    access,
    registry,
    handlers: clients.handlers,
    uploadResumeMs: opts.uploadResumeS === undefined ? undefined : opts.uploadResumeS * 1000,
  });

  const bindHost = host.includes(':') ? `[${host}]` : host;
  const boundPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${bindHost}:${port}`, opts.tls ? serverCredentials(opts.tls) : grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(new Error(`cannot listen on ${bindHost}:${port}: ${err.message}`)) : resolve(p),
    ),
  );
  guardHandshakes(server, limits, logger);
  const address = opts.tls ? `grpcs://${bindHost}:${boundPort}` : `${bindHost}:${boundPort}`;
  logger.info({ address, dataDir: opts.dataDir }, 'control plane listening');

  return {
    address,
    port: boundPort,
    registry,
    store,
    access,
    adminTokenFile: admin.file,
    webUrl: web.url,
    issuer: web.issuer,
    async close() {
      clients.close();
      // Agents come back (to this process's successor), each after its own
      // delay; clients re-attach; the sessions stay open in the store.
      const n = registry.sessions().length;
      registry.drain('the control plane is restarting', Math.min(DRAIN_SPREAD_MAX_MS, 200 + n));
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
      gateway?.close();
      fileRoutes?.close();
      await web.close();
      access.store.flushAudit();
      store.close();
    },
  };
}
