// The agent as a plain Node library: dials out to the control plane, keeps
// one bidirectional stream, runs terminals, and rides out disconnects by
// resuming its session (same session id, output resent from what the
// control plane holds). It never accepts connections and never imports
// electron: the desktop app and the headless `cmdop agent` both embed it.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import {
  AgentMessage,
  AgentServiceDefinition,
  ControlMessage,
  DEFAULT_TIMEOUTS,
  Encoded,
  HTTP2_WINDOW,
  MAX_AGENT_MESSAGE,
  isSignalName,
  typedClient,
  type DuplexCall,
  type Outgoing,
  type TypedClient,
} from '../../protocol';
import { createLogger, type Logger } from '../../lib/logger';
import { capabilities } from './capabilities';
import { loadIdentity } from './identity';
import { collectMetrics } from './metrics';
import { TerminalHost, WindowSizes } from './terminalHost';
import { FileService } from './files/service';
import { PrioritySender } from '../../lib/prioritySender';
import { hop, tracing } from '../../lib/hopTrace';
import { FIRST_ADDRESS_OPTION, LAST_ADDRESS_OPTION, LIST_CHANNEL_OPTIONS, registerListResolver } from '../../lib/listResolver';
import { LIST_SCHEME } from '../../lib/serverAddress';
import { collectWhenIdle } from '../../lib/idleCollector';
import { Backoff } from '../../protocol/backoff';

export interface AgentOptions {
  /**
   * Control plane address as gRPC dials it: HOST:PORT, or several as
   * parseServerList's target (`cmdop-list:///A,B`): each connect goes to
   * the first of them that answers.
   */
  server: string;
  /** The agent's credential (from enrollment), sent as a bearer token on every connect. */
  token?: string;
  /**
   * Channel credentials, asked for on every connect (a pinned certificate is
   * checked again each time). Rejecting with an error whose `fatal` is true
   * stops the agent (e.g. the server's certificate changed); any other
   * rejection is retried. Default: plaintext.
   */
  credentials?: () => Promise<grpc.ChannelCredentials>;
  /** Extra channel options (e.g. the SNI name for a pinned certificate). */
  channelOptions?: grpc.ChannelOptions;
  name: string;
  /** Where the agent keeps its identity. */
  stateDir: string;
  heartbeatIntervalS?: number;
  keepaliveS?: number;
  /** Reconnect backoff: first delay and cap, ms. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** A timer firing this much later than due means the machine slept. */
  sleepDetectMs?: number;
  windows?: WindowSizes;
  /** When set, file operations may touch only paths inside this directory (default: anywhere the user may). */
  fileRoot?: string;
  /**
   * The protocol this agent claims to speak (default PROTOCOL_VERSION). For
   * tests: an agent of an older release, which the control plane flags.
   */
  protocolVersion?: number;
  logger?: Logger;
}

export type AgentStatus = 'connecting' | 'connected' | 'offline' | 'suspended' | 'stopped';

/**
 * The longest wait between reconnects while the agent has a session to
 * resume: a control plane back from a restart keeps it only for its grace
 * period (30 s by default), and a restart takes about a second here, so
 * every agent should be back within a few seconds of it. The cost is one
 * refused connection per agent every 1-2 s while the control plane is down.
 */
export const RESUME_BACKOFF_MAX_MS = 2000;
/** How often the foreground process of each terminal is looked at (one /proc read per terminal). */
const FOREGROUND_POLL_MS = 1000;

const AgentClient = typedClient(AgentServiceDefinition);
/** The agent's Connect and Bulk calls: AgentMessage out (or one encoded once, protocol/fastEncode.ts), ControlMessage in. */
type AgentCall = DuplexCall<AgentMessage, ControlMessage>;

/** The agent channel's options: keepalive pings (a failed one drops the stream), message caps, HTTP/2 window. */
export function agentChannelOptions(keepaliveMs: number): grpc.ChannelOptions {
  return {
    'grpc.keepalive_time_ms': keepaliveMs,
    'grpc.keepalive_timeout_ms': Math.min(10_000, keepaliveMs),
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_receive_message_length': MAX_AGENT_MESSAGE,
    'grpc.max_send_message_length': MAX_AGENT_MESSAGE,
    'grpc-node.flow_control_window': HTTP2_WINDOW,
  };
}

/** The agent's Bulk call (proto: AgentService.Bulk), and whether the control plane has bound it. */
interface BulkStream {
  client: TypedClient<typeof AgentServiceDefinition>;
  call: AgentCall;
  ready: boolean;
}

/** Thrown (and emitted as 'fatal') when the control plane refuses the agent for good. */
export class AgentRefusedError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class Agent extends EventEmitter {
  status: AgentStatus = 'connecting';
  sessionId = '';
  /** The address (ip:port) the current stream is connected to: with several control planes, which one. */
  peer = '';
  /** The last thing that went wrong (a lost or failed stream, a refusal), for status displays; set before the 'status' event. */
  lastError: { message: string; atMs: number } | undefined;
  readonly agentId: string;
  readonly terminals = new Map<string, TerminalHost>();
  private resumeToken: Uint8Array = new Uint8Array();
  private client: TypedClient<typeof AgentServiceDefinition> | undefined;
  private call: AgentCall | undefined;
  /** Writes to `call`: file chunks wait behind terminal traffic. */
  private sender: PrioritySender<Outgoing<AgentMessage>> | undefined;
  /** The session's file traffic, on a connection of its own (proto: AgentService.Bulk). */
  private bulk: BulkStream | undefined;
  private bulkTimer: NodeJS.Timeout | undefined;
  private readonly bulkBackoff = new Backoff({ initialMs: 1000, maxMs: 30_000, jitter: false });
  /** The control plane has no Bulk call: file traffic stays on the main stream. */
  private bulkUnsupported = false;
  private creds: grpc.ChannelCredentials | undefined;
  private ready = false; // registered/resumed on the current stream
  private readonly backoff: Backoff;
  private connectSeq = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private foregroundTimer: NodeJS.Timeout | undefined;
  /** What each terminal's foreground was last reported as, on the current stream. */
  private reportedForeground = new Map<string, string>();
  private sleepTimer: NodeJS.Timeout | undefined;
  private heartbeatIntervalS: number;
  private orphaned: string[] = [];
  /** When this agent started (monotonic ms): its uptime, reported in register and resume. */
  private readonly startedAt = performance.now();
  private logger: Logger;
  private readonly files: FileService;
  /** `server` lists several control planes (lib/listResolver.ts). */
  private readonly isList: boolean;
  /** The address (ip:port) of the list entry the last stream was lost on, if any. */
  private lostOn: string | undefined;

  constructor(readonly opts: AgentOptions) {
    super();
    this.logger = opts.logger ?? createLogger('agent');
    this.backoff = new Backoff({ initialMs: opts.backoffInitialMs ?? 250, maxMs: opts.backoffMaxMs ?? 30_000 });
    this.agentId = loadIdentity(opts.stateDir).agentId;
    this.heartbeatIntervalS = opts.heartbeatIntervalS ?? DEFAULT_TIMEOUTS.heartbeatIntervalS;
    this.files = new FileService({ send: (m, bulk) => this.sendFile(m, bulk), root: opts.fileRoot, logger: this.logger.child({ part: 'files' }) });
    this.isList = opts.server.startsWith(`${LIST_SCHEME}:`);
    if (this.isList) registerListResolver();
  }

  /** Connects; resolves once the first session is registered, rejects if refused. */
  start(): Promise<void> {
    collectWhenIdle(); // memory back after a flood or a transfer (lib/idleCollector.ts), also in the desktop app
    return new Promise((resolve, reject) => {
      const onReady = () => {
        this.off('fatal', onFatal);
        resolve();
      };
      const onFatal = (e: Error) => {
        this.off('connected', onReady);
        reject(e);
      };
      this.once('connected', onReady);
      this.once('fatal', onFatal);
      this.connect();
      this.watchForSleep();
    });
  }

  async stop(): Promise<void> {
    this.status = 'stopped';
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeatTimer);
    clearInterval(this.foregroundTimer);
    clearInterval(this.sleepTimer);
    for (const t of this.terminals.values()) t.close();
    this.files.abortAll('the agent stopped');
    // Forgotten, not only half-closed: a message still arriving on it (a
    // control plane's drain, say) must not start the agent again.
    this.dropStream(true);
    this.client?.close();
    this.emit('status', this.status);
  }

  /** The machine is going to sleep: tell the control plane (GRACE_PERIOD now), then drop the stream. */
  suspend(reason = 'sleep'): void {
    if (this.status === 'stopped') return;
    // Half-close after the message rather than cancel, so it is not discarded in flight.
    const graceful = this.send({ msg: { $case: 'suspend', value: { reason } } });
    this.status = 'suspended';
    this.dropStream(graceful);
    clearTimeout(this.reconnectTimer);
    this.emit('status', this.status);
  }

  /** The machine woke up (or the network came back): reconnect now, no backoff. */
  resume(): void {
    if (this.status === 'stopped') return;
    this.backoff.reset();
    clearTimeout(this.reconnectTimer);
    this.dropStream();
    this.connect();
  }

  setBackground(background: boolean): void {
    this.send({ msg: { $case: 'background', value: { background } } });
  }

  // ---- connection

  private connect(): void {
    this.status = 'connecting';
    this.client?.close();
    this.client = undefined;
    const attempt = ++this.connectSeq;
    if (!this.opts.credentials) return this.openStream(grpc.credentials.createInsecure());
    this.opts.credentials().then(
      (creds) => {
        if (attempt === this.connectSeq && this.status === 'connecting') this.openStream(creds);
      },
      (e: Error & { fatal?: boolean }) => {
        if (attempt !== this.connectSeq || this.status !== 'connecting') return;
        if (e.fatal) {
          this.logger.error(e.message);
          this.lastError = { message: e.message, atMs: Date.now() };
          this.status = 'stopped';
          this.emit('fatal', e);
        } else {
          this.onStreamLost(e.message);
        }
      },
    );
  }

  private openStream(creds: grpc.ChannelCredentials): void {
    this.creds = creds;
    // A fresh channel per attempt: after a sleep the old one may sit in its own backoff.
    this.client = new AgentClient(this.opts.server, creds, this.channelOptions());
    const call = this.client.connect(this.metadata());
    this.call = call;
    this.sender = new PrioritySender(call);
    this.ready = false;
    call.on('data', (m) => {
      if (this.call === call) this.onMessage(m);
    });
    call.on('error', (e) => {
      if (this.call !== call) return;
      // A credential refused (revoked, unknown) is refused for good: retrying cannot help.
      if (e.code === grpc.status.UNAUTHENTICATED) this.refusedForGood('UNAUTHENTICATED', e.details || e.message);
      else this.onStreamLost(`${grpc.status[e.code] ?? e.code}: ${e.details || e.message}`);
    });
    call.on('end', () => {
      if (this.call === call) this.onStreamLost('the control plane closed the stream');
    });
    if (this.sessionId) {
      // Every terminal still held, exited ones included: their exit may not have arrived.
      const terminals = [...this.terminals.values()].map((t) => t.resumeInfo());
      call.write({
        msg: {
          $case: 'resume',
          value: {
            agentId: this.agentId,
            sessionId: this.sessionId,
            resumeToken: this.resumeToken,
            terminals,
            capabilities: this.capabilities(),
          },
        },
      });
    } else {
      const value = {
        agentId: this.agentId,
        name: this.opts.name,
        capabilities: this.capabilities(),
        orphanedTerminalIds: this.orphaned,
      };
      call.write({ msg: { $case: 'register', value } });
    }
  }

  private capabilities() {
    return capabilities(performance.now() - this.startedAt, this.opts.protocolVersion);
  }

  private channelOptions(): grpc.ChannelOptions {
    const keepaliveMs = (this.opts.keepaliveS ?? DEFAULT_TIMEOUTS.keepaliveS) * 1000;
    const list = this.isList ? { ...LIST_CHANNEL_OPTIONS, ...(this.lostOn ? { [LAST_ADDRESS_OPTION]: this.lostOn } : {}) } : {};
    return { ...agentChannelOptions(keepaliveMs), ...list, ...this.opts.channelOptions };
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.opts.token) md.set('authorization', `Bearer ${this.opts.token}`);
    return md;
  }

  private dropStream(graceful = false): void {
    this.closeBulk();
    this.bulkBackoff.reset();
    const call = this.call;
    this.call = undefined;
    this.sender?.close();
    this.sender = undefined;
    this.ready = false;
    clearInterval(this.heartbeatTimer);
    clearInterval(this.foregroundTimer);
    if (graceful) call?.end();
    else call?.cancel();
    for (const t of this.terminals.values()) t.onStreamLost();
    // Transfers do not survive the stream: the client resumes them (by offset or transfer id).
    this.files.abortAll('the stream to the control plane was lost');
  }

  private onStreamLost(reason: string): void {
    if (this.status === 'stopped' || this.status === 'suspended') return;
    const wasReady = this.ready;
    this.noteLostOn();
    this.dropStream();
    this.status = 'offline';
    this.lastError = { message: reason, atMs: Date.now() };
    this.emit('status', this.status);
    if (wasReady) this.logger.warn({ reason }, 'lost the control plane; reconnecting');
    else this.logger.debug({ reason }, 'connect failed');
    this.scheduleReconnect();
  }

  /** Over a list, the next attempt tries the replica this stream was on last (LAST_ADDRESS_OPTION). */
  private noteLostOn(): void {
    const peer = this.call?.getPeer();
    if (this.isList && peer && peer !== 'unknown') this.lostOn = peer;
  }

  private scheduleReconnect(): void {
    // With a session to resume, never wait long (RESUME_BACKOFF_MAX_MS); jittered, so many agents returning at once spread out.
    const delay = this.backoff.next(this.sessionId ? RESUME_BACKOFF_MAX_MS : undefined);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /**
   * A file message: on the Bulk stream once it is bound (all of them, so they
   * keep their order), else on the main stream, chunks behind terminal traffic.
   */
  private sendFile(msg: AgentMessage | Encoded, bulk = false): boolean {
    const b = this.bulk;
    if (b?.ready) {
      b.call.write(msg); // Encoded passes through the serializer (protocol/grpc.ts)
      return true;
    }
    return this.send(msg, bulk);
  }

  // ---- the Bulk stream

  /**
   * Opens the session's Bulk stream on a channel of its own: a local
   * subchannel pool gives it its own TCP connection, so file bytes in flight
   * never sit in the same socket buffers as a keystroke's echo.
   */
  private openBulk(): void {
    this.closeBulk();
    if (this.bulkUnsupported || !this.creds || !this.ready || !this.sessionId || this.status === 'stopped') return;
    // With several control planes, the one the main stream is on first: the Bulk stream belongs to its session.
    const peer = this.isList ? this.call?.getPeer() : undefined;
    const client = new AgentClient(this.opts.server, this.creds, {
      ...this.channelOptions(),
      'grpc.use_local_subchannel_pool': 1,
      ...(peer ? { [FIRST_ADDRESS_OPTION]: peer } : {}),
    });
    const call = client.bulk(this.metadata());
    const b: BulkStream = { client, call, ready: false };
    this.bulk = b;
    call.on('data', (m) => {
      if (this.bulk !== b) return;
      const msg = m.msg;
      if (msg?.$case === 'bulkReady') {
        b.ready = true;
        this.bulkBackoff.reset();
        // Messages already sent on the main stream could arrive after later ones sent here.
        // Each one stopped is answered (FileService.abortAll), so the control plane fails it and its client resumes.
        if (this.files.busy) this.files.abortAll('file transfers moved to their own connection', { answer: true });
        this.logger.debug('file traffic on its own connection');
      } else if (msg?.$case === 'refused') {
        this.bulkLost(b, `refused: ${msg.value.message}`);
      } else {
        this.onMessage(m); // an upload's chunks and done
      }
    });
    call.on('error', (e) => {
      if (e.code === grpc.status.UNIMPLEMENTED) {
        this.bulkUnsupported = true;
        this.logger.info('this control plane takes file traffic on the main stream only');
      }
      this.bulkLost(b, `${grpc.status[e.code] ?? e.code}: ${e.details || e.message}`);
    });
    call.on('end', () => this.bulkLost(b, 'the control plane closed the file stream'));
    call.write({ msg: { $case: 'bulkHello', value: { sessionId: this.sessionId, resumeToken: this.resumeToken } } });
  }

  /** The Bulk stream failed: transfers on it stop (clients resume them); it is opened again while the session lasts. */
  private bulkLost(b: BulkStream, reason: string): void {
    if (this.bulk !== b) return;
    this.closeBulk();
    if (b.ready) {
      this.logger.warn({ reason }, 'lost the file connection');
      this.files.abortAll(`the file connection was lost: ${reason}`);
    }
    if (this.bulkUnsupported || !this.ready || this.status === 'stopped') return;
    const delay = this.bulkBackoff.next();
    this.bulkTimer = setTimeout(() => this.openBulk(), delay);
  }

  private closeBulk(): void {
    clearTimeout(this.bulkTimer);
    const b = this.bulk;
    this.bulk = undefined;
    b?.call.cancel();
    b?.client.close();
  }

  /** `bulk`: a file chunk, or what must follow chunks (lib/prioritySender.ts). */
  private send(msg: AgentMessage | Encoded, bulk = false): boolean {
    if (!this.ready || !this.sender) return false;
    // Encoded passes through the serializer (protocol/grpc.ts).
    if (bulk) this.sender.sendBulk(msg);
    else this.sender.send(msg);
    return true;
  }

  private onMessage(m: ControlMessage): void {
    const msg = m.msg;
    if (!msg || this.status === 'stopped') return;
    switch (msg.$case) {
      case 'registered': {
        // A new session: terminals of an older one are gone with it.
        for (const t of this.terminals.values()) t.close();
        this.terminals.clear();
        this.orphaned = [];
        this.sessionId = msg.value.sessionId;
        this.resumeToken = msg.value.resumeToken;
        if (msg.value.heartbeatIntervalS && !this.opts.heartbeatIntervalS) {
          this.heartbeatIntervalS = msg.value.heartbeatIntervalS;
        }
        this.onReady();
        this.logger.info({ session: this.sessionId, name: this.opts.name }, 'registered');
        return;
      }
      case 'resumed': {
        this.onReady();
        for (const id of msg.value.closedTerminalIds) {
          this.terminals.get(id)?.close();
          this.terminals.delete(id);
        }
        for (const r of msg.value.terminals) this.terminals.get(r.terminalId)?.onResumed(r.fromSeq);
        this.logger.info({ session: this.sessionId }, 'resumed');
        return;
      }
      case 'refused': {
        const { code, message } = msg.value;
        if (this.sessionId && (code === 'NOT_FOUND' || code === 'PERMISSION_DENIED')) {
          // The session ended (the grace period ran out): start a new one and
          // say which terminals were lost with the old.
          this.logger.warn({ code }, `session ${this.sessionId} could not be resumed: ${message}`);
          this.orphaned = [...this.terminals.keys()];
          for (const t of this.terminals.values()) t.close();
          this.terminals.clear();
          this.sessionId = '';
          this.emit('session-ended', { reason: message, terminals: this.orphaned });
          this.backoff.reset();
          this.dropStream();
          this.connect();
          return;
        }
        this.refusedForGood(code, message);
        return;
      }
      case 'drain': {
        // The control plane is stopping or restarting: come back after the
        // delay it gave (each agent its own), to it or its successor. The
        // session waits in its grace period; nothing is lost meanwhile.
        const { reconnectAfterMs, reason } = msg.value;
        this.logger.info({ reconnectAfterMs, reason }, 'the control plane is going away; reconnecting');
        this.noteLostOn();
        this.dropStream(true);
        this.status = 'offline';
        this.emit('status', this.status);
        this.backoff.reset();
        clearTimeout(this.reconnectTimer);
        this.reconnectTimer = setTimeout(() => this.connect(), reconnectAfterMs);
        return;
      }
      case 'open': {
        const { terminalId, spec } = msg.value;
        try {
          const t = new TerminalHost(terminalId, spec!, {
            send: (out) => this.send(out),
            connected: () => this.ready,
          }, this.opts.windows);
          this.terminals.set(terminalId, t);
          t.whenGone(() => this.terminals.delete(terminalId));
          this.send({ msg: { $case: 'opened', value: { terminalId, ok: true, error: '', pid: t.pid } } });
        } catch (e) {
          const error = e instanceof Error ? e.message : String(e);
          this.send({ msg: { $case: 'opened', value: { terminalId, ok: false, error, pid: 0 } } });
        }
        return;
      }
      case 'input':
        if (tracing()) hop('agent.in', msg.value.commandId);
        this.terminal(msg.value.terminalId)?.input(msg.value.commandId, msg.value.data, msg.value.eof);
        return;
      case 'resize':
        this.terminal(msg.value.terminalId)?.resize(msg.value.cols, msg.value.rows);
        return;
      case 'signal':
        if (isSignalName(msg.value.signal)) this.terminal(msg.value.terminalId)?.signal(msg.value.signal);
        return;
      case 'close':
        this.terminal(msg.value.terminalId)?.close();
        return;
      case 'ack':
        this.terminals.get(msg.value.terminalId)?.onAck(msg.value.seq, msg.value.exit);
        return;
      case 'fileRequest':
      case 'fileChunk':
      case 'fileAck':
      case 'fileDone':
      case 'fileCancel':
        this.files.onMessage(msg);
        return;
      case 'snapshotRequest': {
        const t = this.terminal(msg.value.terminalId);
        t?.snapshot().then((s) => {
          if (s) this.send({ msg: { $case: 'snapshot', value: s } });
        });
        return;
      }
    }
  }

  /** The control plane will not take this agent (its credential, its name): stop and say why. */
  private refusedForGood(code: string, message: string): void {
    this.logger.error({ code }, `the control plane refused this agent: ${message}`);
    this.lastError = { message: `the control plane refused this agent (${code}): ${message}`, atMs: Date.now() };
    this.status = 'stopped';
    this.dropStream();
    this.emit('status', this.status);
    this.emit('fatal', new AgentRefusedError(code, message));
  }

  private terminal(id: string): TerminalHost | undefined {
    const t = this.terminals.get(id);
    if (!t) this.send({ msg: { $case: 'error', value: { terminalId: id, code: 'NOT_FOUND', message: 'no such terminal' } } });
    return t;
  }

  private onReady(): void {
    this.ready = true;
    this.peer = this.call?.getPeer() ?? '';
    this.backoff.reset();
    this.status = 'connected';
    this.startHeartbeats();
    this.startForegroundReports();
    this.openBulk();
    this.emit('status', this.status);
    this.emit('connected', this.sessionId);
  }

  private startHeartbeats(): void {
    clearInterval(this.heartbeatTimer);
    const beat = async () => {
      const m = await collectMetrics();
      this.send({ msg: { $case: 'heartbeat', value: { sessionId: this.sessionId, timestampMs: Date.now(), ...m } } });
    };
    void beat();
    this.heartbeatTimer = setInterval(() => void beat(), this.heartbeatIntervalS * 1000);
  }

  /**
   * Tells the control plane what runs in each terminal's foreground when it
   * changes, checked every FOREGROUND_POLL_MS (node-pty has no event for it),
   * and everything again on a new stream (a restarted control plane knows
   * nothing). A client asks before ending a terminal in which something runs.
   */
  private startForegroundReports(): void {
    clearInterval(this.foregroundTimer);
    this.reportedForeground.clear();
    const report = () => {
      for (const [id, t] of this.terminals) {
        const fg = t.foreground();
        if (this.reportedForeground.get(id) === fg) continue;
        if (this.send({ msg: { $case: 'foreground', value: { terminalId: id, process: fg } } })) this.reportedForeground.set(id, fg);
      }
      for (const id of this.reportedForeground.keys()) if (!this.terminals.has(id)) this.reportedForeground.delete(id);
    };
    report();
    this.foregroundTimer = setInterval(report, FOREGROUND_POLL_MS);
  }

  /**
   * The OS does not always announce a sleep. A one-second timer that fires
   * far too late means the process was frozen (lid closed, SIGSTOP): the
   * stream is probably dead, so reconnect at once instead of waiting for
   * keepalive to notice.
   */
  private watchForSleep(): void {
    const tickMs = 1000;
    const threshold = this.opts.sleepDetectMs ?? 5000;
    let last = Date.now();
    this.sleepTimer = setInterval(() => {
      const now = Date.now();
      const late = now - last - tickMs;
      last = now;
      if (late > threshold && this.status !== 'suspended' && this.status !== 'stopped') {
        this.logger.info({ lateMs: late }, 'woke from a sleep nobody announced; reconnecting');
        this.emit('wake', late);
        this.resume();
      }
    }, tickMs);
    this.sleepTimer.unref();
  }
}
