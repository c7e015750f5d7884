// One agent's presence on the control plane: its stream (absent during the
// grace period), its state in the session state machine, and its terminals.
import { createHash, randomBytes } from 'node:crypto';
import {
  AgentMessage,
  Capabilities,
  ControlMessage,
  Encoded,
  Heartbeat,
  MachineInfo,
  SessionState,
  TerminalKind,
  TerminalOpened,
  TerminalSpec,
  checkSize,
} from '../../protocol';
import { ApiError, invalid, notFound, unavailable } from './errors';
import { heartbeatLate } from '../../protocol/liveness';
import { Backoff } from '../../protocol/backoff';
import type { AgentStream } from './ports';
import { FileRouter } from './fileRouter';
import { PrioritySender } from '../../lib/prioritySender';
import { TerminalRelay } from './relay';
import type { OpenSessionRow, SessionsRepo, TerminalRow } from '../db';
import { isDuplicateKey, isTransientStoreError } from '../db/transient';
import type { Logger } from '../../lib/logger';
import type { Counters } from './counters';
import { olderAgentNotice } from './versions';

/** How long a session write is retried through a broken link to the store (a PostgreSQL restart takes seconds). */
const STORE_RETRY_MS = 30_000;

/** The agent's Connect or Bulk stream, whatever carries it. */
export type AgentCall = AgentStream;

export interface SessionTimeouts {
  heartbeatTimeoutS: number;
  gracePeriodS: number;
  backgroundTimeoutS: number;
  heartbeatIntervalS: number;
}

export interface SessionDeps {
  store: SessionsRepo;
  timeouts: SessionTimeouts;
  logger: Logger;
  relayBuffer: number;
  onEnded(session: AgentSession): void;
  /** This replica's id: the owner it writes into the store for the sessions it holds. */
  replica: string;
  /** The store says another replica holds the session now (a fenced write changed nothing): stop serving it. */
  onLost(session: AgentSession, reason: string): void;
  /** The control plane's byte totals, for /metrics (core/counters.ts). */
  counters?: Counters;
}

const OPEN_TIMEOUT_MS = 10_000;
/**
 * Exited terminals stay listed, and re-attachable by a client that lost its
 * connection, this long (a client gives up re-attaching after 60 s) - and at
 * most MAX_EXITED of them per session, so a script looping over exec cannot
 * grow the control plane's memory.
 */
const EXITED_RETENTION_MS = 90_000;
const MAX_EXITED = 16;

/** Which state may follow which (docs/ARCHITECTURE.md, "4. The session state machine"). */
const ALLOWED: Record<SessionState, SessionState[]> = {
  [SessionState.SESSION_STATE_UNSPECIFIED]: [SessionState.PENDING],
  [SessionState.PENDING]: [SessionState.CONNECTED, SessionState.DISCONNECTED],
  [SessionState.CONNECTED]: [SessionState.BACKGROUND, SessionState.GRACE_PERIOD, SessionState.DISCONNECTED],
  [SessionState.BACKGROUND]: [SessionState.CONNECTED, SessionState.GRACE_PERIOD, SessionState.DISCONNECTED],
  [SessionState.GRACE_PERIOD]: [SessionState.CONNECTED, SessionState.DISCONNECTED],
  [SessionState.DISCONNECTED]: [],
  [SessionState.UNRECOGNIZED]: [],
};

export class AgentSession {
  state = SessionState.PENDING;
  stateReason = 'session created';
  stateSinceMs = Date.now();
  deadlineMs = 0;
  /** The agent's stream now; set through setStream(). */
  stream: AgentCall | null = null;
  /** Writes to `stream`: upload chunks wait behind terminal traffic (lib/prioritySender.ts). */
  private sender: PrioritySender<ControlMessage> | null = null;
  /** The agent's Bulk stream: its file traffic, on a connection of its own (proto: AgentService.Bulk). */
  private bulk: AgentCall | null = null;
  lastHeartbeat: Heartbeat | undefined;
  /** When the last heartbeat arrived, on this process's clock (the agent's timestamp is on its own). */
  private heartbeatAtMs = 0;
  /** The gap between the last two heartbeats of one stream: the agent's real interval, which it may set itself. */
  private heartbeatGapMs = 0;
  /** The next heartbeat is the first on a new stream: its gap says how long the agent was away, not its interval. */
  private heartbeatFirstOnStream = true;
  readonly terminals = new Map<string, TerminalRelay>();
  /** File operations in flight to this agent. */
  readonly files: FileRouter;
  readonly logger: Logger;
  private pendingOpens = new Map<
    string,
    { spec: TerminalSpec; resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  private stateTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** Stops watching for the revocation of the credential the agent last presented. */
  private unwatchCredential: (() => void) | undefined;
  /**
   * The session's writes to the store, one after another in the order they
   * were made (a transition never lands before the row it updates). The
   * session does not wait for them: its state is this object; the store is
   * what a restarted (or another) control plane takes it over from.
   */
  private writes: Promise<void> = Promise.resolve();
  /** The epoch this replica holds the session under (store: sessions.epoch); its writes count only while it is the store's. */
  epoch = 1;
  /** When the agent last sent its capabilities (register, resume), on this process's clock; 0: they came from the store. */
  private capabilitiesAtMs = 0;

  private constructor(
    readonly sessionId: string,
    readonly agentId: string,
    public name: string,
    public capabilities: Capabilities,
    /** SHA-256 of the resume token: all a control plane keeps of it, in memory and in the store. */
    readonly resumeHash: Buffer,
    private deps: SessionDeps,
  ) {
    this.logger = deps.logger.child({ machine: name, session: sessionId });
    this.files = new FileRouter(name, (m, bulk) => this.sendToAgent(m, bulk), deps.counters);
  }

  /** A new session (a registration), recorded in the store (with its agent) as PENDING. */
  static create(sessionId: string, agentId: string, name: string, capabilities: Capabilities, resumeHash: Buffer, deps: SessionDeps): AgentSession {
    const s = new AgentSession(sessionId, agentId, name, capabilities, resumeHash, deps);
    s.capabilitiesAtMs = Date.now();
    const { state, stateReason } = s;
    s.persistLater('create', async () => {
      // The agent's row first: the session refers to it.
      await deps.store.upsertAgent(agentId, name, capabilities);
      await deps.store.createSession(sessionId, agentId, name, resumeHash, state, stateReason, deps.replica);
    });
    return s;
  }

  /**
   * A session a previous run of the control plane left open, taken over
   * after a restart: it waits in GRACE_PERIOD for its agent to resume it
   * (a restart is just another grace period), with its terminals' relays
   * rebuilt empty; the agent still holds every byte not acknowledged.
   */
  static restore(row: OpenSessionRow, epoch: number, capabilities: Capabilities, terminals: TerminalRow[], deps: SessionDeps, reason: string): AgentSession {
    const s = new AgentSession(row.sessionId, row.agentId, row.name, capabilities, row.resumeHash, deps);
    s.epoch = epoch;
    s.state = row.state;
    s.stateReason = row.reason;
    s.stateSinceMs = row.updatedMs;
    for (const t of terminals) {
      const relay = new TerminalRelay(t.terminalId, t.spec, s, deps.relayBuffer, t.createdMs);
      relay.cols = t.cols;
      relay.rows = t.rows;
      relay.holdForRestore(t.operators);
      // An exec's output belongs to its caller, who re-attaches from its last byte.
      if (t.spec.kind === TerminalKind.EXEC) relay.holdForOwner(0);
      s.terminals.set(t.terminalId, relay);
    }
    if (row.state === SessionState.GRACE_PERIOD && row.deadlineMs > Date.now()) {
      // Already in its grace period: the deadline stands.
      s.deadlineMs = row.deadlineMs;
      s.stateTimer = setTimeout(() => s.transition(SessionState.DISCONNECTED, 'its grace period ran out'), row.deadlineMs - Date.now());
    } else {
      s.transition(SessionState.GRACE_PERIOD, reason);
    }
    return s;
  }

  /**
   * Queues a write to the store behind the session's earlier ones. One that
   * fails because the store's link broke (a database restart) is tried
   * again, in order, for up to STORE_RETRY_MS; any other failure is logged
   * (the session goes on).
   */
  private persistLater(what: string, write: () => Promise<void>): void {
    const attempt = async () => {
      const deadline = Date.now() + STORE_RETRY_MS;
      for (const backoff = new Backoff({ initialMs: 100, maxMs: 2000, jitter: false }); ; ) {
        try {
          return await write();
        } catch (err) {
          // A retried insert whose first attempt landed after all.
          if (backoff.attempts > 0 && isDuplicateKey(err)) return;
          if (!isTransientStoreError(err) || Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, backoff.next()));
        }
      }
    };
    this.writes = this.writes.then(attempt).catch((err: unknown) => this.logger.error({ err, what }, 'the store did not take a session write'));
  }

  /** Resolves once every write made so far has landed (or failed). */
  settled(): Promise<void> {
    return this.writes;
  }

  /** The relay's durable part (RelayHost). */
  persist(relay: TerminalRelay): void {
    if (this.state === SessionState.DISCONNECTED) return;
    const row = {
      sessionId: this.sessionId,
      terminalId: relay.id,
      spec: relay.spec,
      createdMs: relay.createdMs,
      cols: relay.cols,
      rows: relay.rows,
      operators: relay.persistedOperators,
    };
    this.persistLater('terminal', () => this.deps.store.putTerminal(row));
  }

  /**
   * The control plane is stopping (SIGTERM, a restart): the agent is told to
   * come back after `reconnectAfterMs` and its streams end; the session stays
   * open in the store for the next process. Clients are told to re-attach.
   */
  drain(reconnectAfterMs: number, reason: string): void {
    clearTimeout(this.stateTimer);
    clearTimeout(this.heartbeatTimer);
    this.unwatchCredential?.();
    for (const p of this.pendingOpens.values()) p.reject(unavailable(`${reason}: the terminal may not have opened; try again`));
    this.files.failAll(reason);
    const err = new ApiError('UNAVAILABLE', `${reason}: re-attach`, 'restarting');
    for (const relay of this.terminals.values()) relay.dispose(err);
    const call = this.stream;
    this.setStream(null);
    if (call && !call.closed) {
      call.write({ msg: { $case: 'drain', value: { reconnectAfterMs, reason } } });
      call.end();
    }
    this.bulk?.end();
    this.bulk = null;
  }

  // ---- RelayHost

  /** `bulk`: an upload's chunk, or what must follow its chunks. */
  sendToAgent(msg: ControlMessage | Encoded, bulk = false): boolean {
    if (bulk && this.bulk) {
      this.bulk.write(msg as ControlMessage);
      return true;
    }
    if (!this.sender) return false;
    // Encoded passes through the serializer (protocol/grpc.ts).
    if (bulk) this.sender.sendBulk(msg as ControlMessage);
    else this.sender.send(msg as ControlMessage);
    return true;
  }

  /** A Bulk stream for this session: from now on the agent's file messages come on it. */
  bindBulk(call: AgentCall): void {
    const old = this.bulk;
    this.bulk = call;
    if (old && old !== call) old.end();
    // Chunks already sent the other way could arrive after later ones sent on this stream.
    this.files.failAll('file transfers moved to a new connection');
    call.write({ msg: { $case: 'bulkReady', value: {} } });
  }

  /** The Bulk stream ended: what moved on it fails (clients resume), and file traffic falls back to the main stream. */
  bulkLost(call: AgentCall, reason: string): void {
    if (this.bulk !== call) return;
    this.bulk = null;
    this.files.failAll(reason);
  }

  /** A message on the Bulk stream: only file messages belong there. */
  onBulkMessage(m: AgentMessage): void {
    const msg = m.msg;
    if (msg?.$case === 'fileReply' || msg?.$case === 'fileChunk' || msg?.$case === 'fileAck' || msg?.$case === 'fileDone') {
      this.files.onAgentMessage(msg);
    } else {
      this.logger.warn({ kind: msg?.$case }, 'a message that is not a file message on the bulk stream: ignored');
    }
  }

  private setStream(call: AgentCall | null): void {
    this.sender?.close();
    this.stream = call;
    this.sender = call && new PrioritySender<ControlMessage>(call);
  }

  /** Watches the credential the agent presented on its latest stream (the previous watch ends). */
  setCredentialWatch(unwatch: () => void): void {
    this.unwatchCredential?.();
    if (this.state === SessionState.DISCONNECTED) unwatch();
    else this.unwatchCredential = unwatch;
  }

  /**
   * The agent's credential was revoked: its streams end now with the reason
   * (a `refused` the agent stops on), and the session with them.
   */
  credentialRevoked(reason: string): void {
    const refused = { msg: { $case: 'refused' as const, value: { code: 'UNAUTHENTICATED', message: reason } } };
    const err = new ApiError('UNAUTHENTICATED', reason);
    const calls = [this.stream, this.bulk];
    // Forgotten first: the streams' own 'error' handlers must not start a grace period.
    this.setStream(null);
    this.bulk = null;
    for (const call of calls) {
      if (!call || call.closed) continue;
      call.write(refused);
      call.fail(err);
    }
    this.transition(SessionState.DISCONNECTED, reason);
  }

  /** What the agent says of itself as it resumes (its uptime among them). */
  setCapabilities(caps: Capabilities): void {
    this.capabilities = caps;
    this.capabilitiesAtMs = Date.now();
  }

  /** How long the agent process has run, now (0: not connected, or it did not say). */
  agentUptimeMs(): number {
    if (!this.stream || !this.capabilitiesAtMs || !this.capabilities.uptimeMs) return 0;
    return this.capabilities.uptimeMs + (Date.now() - this.capabilitiesAtMs);
  }

  /** The control plane's byte totals, which this session's relays add to. */
  get counters(): Counters | undefined {
    return this.deps.counters;
  }

  agentConnected(): boolean {
    return this.stream !== null && this.state !== SessionState.DISCONNECTED;
  }

  // ---- state machine

  transition(to: SessionState, reason: string): void {
    const from = this.state;
    if (from === to) return;
    if (!ALLOWED[from].includes(to)) {
      this.logger.warn({ from: SessionState[from], to: SessionState[to], reason }, 'transition not allowed');
      return;
    }
    this.state = to;
    this.stateReason = reason;
    this.stateSinceMs = Date.now();
    clearTimeout(this.stateTimer);
    this.deadlineMs = 0;
    const t = this.deps.timeouts;
    if (to === SessionState.GRACE_PERIOD) {
      this.deadlineMs = Date.now() + t.gracePeriodS * 1000;
      this.stateTimer = setTimeout(
        () => this.transition(SessionState.DISCONNECTED, `grace period of ${t.gracePeriodS} s ran out`),
        t.gracePeriodS * 1000,
      );
    } else if (to === SessionState.BACKGROUND) {
      this.deadlineMs = Date.now() + t.backgroundTimeoutS * 1000;
      this.stateTimer = setTimeout(
        () => this.transition(SessionState.DISCONNECTED, `background for longer than ${t.backgroundTimeoutS} s`),
        t.backgroundTimeoutS * 1000,
      );
    }
    const deadline = this.deadlineMs;
    const fence = { owner: this.deps.replica, epoch: this.epoch };
    this.persistLater('transition', async () => {
      const held = await this.deps.store.transition(this.sessionId, from, to, reason, deadline, fence);
      // Another replica took the session over meanwhile: what happens to it is its business now.
      if (!held && to !== SessionState.DISCONNECTED) this.deps.onLost(this, 'another control plane replica holds this session now');
    });
    this.logger.info({ from: SessionState[from], to: SessionState[to], reason }, 'session state');
    const change = { msg: { $case: 'state' as const, value: { state: to, reason, deadlineMs: this.deadlineMs } } };
    if (to === SessionState.DISCONNECTED) {
      clearTimeout(this.heartbeatTimer);
      this.unwatchCredential?.();
      this.unwatchCredential = undefined;
      for (const p of this.pendingOpens.values()) p.reject(unavailable(`machine ${this.name} disconnected: ${reason}`));
      this.files.failAll(reason);
      for (const relay of this.terminals.values()) relay.endAll(change);
      const call = this.stream;
      this.setStream(null);
      call?.end();
      this.bulk?.end();
      this.bulk = null;
      this.deps.onEnded(this);
    } else {
      for (const relay of this.terminals.values()) relay.broadcast(change);
    }
  }

  /** A stream now carries this session (a registration or a resume). */
  bindStream(call: AgentCall): void {
    const old = this.stream;
    this.setStream(call);
    if (old && old !== call) {
      old.end();
      this.files.failAll('the agent reconnected on a new stream');
    }
    this.heartbeatFirstOnStream = true;
    this.resetHeartbeatTimer();
  }

  /** The stream ended or failed; the session waits out its grace period. */
  streamLost(call: AgentCall, reason: string): void {
    if (this.stream !== call) return;
    this.setStream(null);
    clearTimeout(this.heartbeatTimer);
    // A transfer cannot continue on another stream: the client resumes it.
    this.files.failAll(reason);
    if (this.state === SessionState.CONNECTED || this.state === SessionState.PENDING) {
      this.transition(SessionState.GRACE_PERIOD, reason);
    }
  }

  private resetHeartbeatTimer(): void {
    clearTimeout(this.heartbeatTimer);
    const s = this.deps.timeouts.heartbeatTimeoutS;
    this.heartbeatTimer = setTimeout(() => {
      const call = this.stream;
      if (!call) return;
      this.streamLost(call, `the agent stopped answering: no heartbeat for ${s} s`);
      call.end();
    }, s * 1000);
  }

  /** How often this agent's heartbeats come: as measured, else as it was told. */
  heartbeatIntervalMs(): number {
    return this.heartbeatGapMs || this.deps.timeouts.heartbeatIntervalS * 1000;
  }

  /**
   * Why the agent's stream ended, in words. A frozen or unplugged agent's
   * stream is usually ended by gRPC keepalive before the heartbeat timeout,
   * and then looks like any closed stream: late heartbeats tell the two
   * apart, so the user reads that the agent stopped answering.
   */
  lostReason(closed: string): string {
    const age = this.heartbeatAtMs ? Date.now() - this.heartbeatAtMs : 0;
    if (!heartbeatLate(age, this.heartbeatIntervalMs())) return closed;
    return `the agent stopped answering: no heartbeat for ${Math.round(age / 1000)} s`;
  }

  // ---- messages from the agent

  onMessage(m: AgentMessage): void {
    const msg = m.msg;
    if (!msg) return;
    switch (msg.$case) {
      case 'output':
        this.terminals.get(msg.value.terminalId)?.onOutput(msg.value);
        return;
      case 'exit': {
        const relay = this.terminals.get(msg.value.terminalId);
        if (!relay) {
          // A terminal this control plane does not know (its row was forgotten): nobody waits for it.
          this.sendToAgent({ msg: { $case: 'ack', value: { terminalId: msg.value.terminalId, seq: msg.value.finalSeq, exit: true } } });
          return;
        }
        const first = !relay.exit;
        // The relay tells the agent it may forget the exit once the operators have it (relay.maybeAckExit).
        relay.onExit(msg.value);
        if (first) this.retireExited(relay);
        return;
      }
      case 'snapshot':
        this.terminals.get(msg.value.terminalId)?.onSnapshot(msg.value);
        return;
      case 'opened':
        this.onOpened(msg.value);
        return;
      case 'heartbeat':
        if (msg.value.sessionId !== this.sessionId) {
          // Counts for nothing: it is not this session's heartbeat.
          this.logger.warn({ claimed: msg.value.sessionId }, 'heartbeat for an unknown session refused');
          return;
        }
        this.lastHeartbeat = msg.value;
        this.noteHeartbeat();
        this.resetHeartbeatTimer();
        return;
      case 'foreground': {
        const relay = this.terminals.get(msg.value.terminalId);
        if (relay) relay.foreground = msg.value.process.slice(0, 200);
        return;
      }
      case 'suspend': {
        const call = this.stream;
        if (call) this.streamLost(call, `agent suspended (${msg.value.reason || 'sleep'})`);
        return;
      }
      case 'background':
        if (msg.value.background) this.transition(SessionState.BACKGROUND, 'agent went to the background');
        else this.transition(SessionState.CONNECTED, 'agent came back to the foreground');
        return;
      case 'error':
        this.logger.warn({ terminal: msg.value.terminalId, code: msg.value.code }, msg.value.message);
        return;
      case 'register':
      case 'resume':
      case 'bulkHello':
        this.logger.warn('register/resume/bulk_hello on an established stream ignored');
        return;
      case 'fileReply':
      case 'fileChunk':
      case 'fileAck':
      case 'fileDone':
        this.files.onAgentMessage(msg);
        return;
    }
  }

  // ---- terminals

  private retireExited(relay: TerminalRelay): void {
    const forget = () => {
      if (relay.attachments.size === 0) this.forgetTerminal(relay.id);
      else setTimeout(forget, EXITED_RETENTION_MS).unref();
    };
    setTimeout(forget, EXITED_RETENTION_MS).unref();
    const exited = [...this.terminals.values()].filter((t) => t.exit && t.attachments.size === 0);
    for (const t of exited.slice(0, Math.max(0, exited.length - MAX_EXITED))) this.forgetTerminal(t.id);
  }

  private forgetTerminal(id: string): void {
    if (!this.terminals.delete(id)) return;
    if (this.state !== SessionState.DISCONNECTED) this.persistLater('forget terminal', () => this.deps.store.deleteTerminal(this.sessionId, id));
  }

  terminal(id: string): TerminalRelay {
    const relay = this.terminals.get(id);
    if (!relay) throw notFound(`no terminal ${JSON.stringify(id)} on machine ${this.name}`, 'terminal_not_found');
    return relay;
  }

  async openTerminal(spec: TerminalSpec): Promise<TerminalRelay> {
    if (!this.agentConnected()) throw unavailable(`cannot open a terminal now: ${this.whyAway()}`);
    const checked = validateSpec(spec);
    const id = randomBytes(4).toString('hex');
    const relay = new TerminalRelay(id, checked, this, this.deps.relayBuffer);
    if (checked.kind === TerminalKind.EXEC) relay.holdForOwner(0);
    this.terminals.set(id, relay);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(unavailable(`machine ${this.name} did not open the terminal within ${OPEN_TIMEOUT_MS / 1000} s`)),
          OPEN_TIMEOUT_MS,
        );
        this.pendingOpens.set(id, { spec: checked, resolve, reject, timer });
        this.sendToAgent({ msg: { $case: 'open', value: { terminalId: id, spec: checked } } });
      });
    } catch (e) {
      this.terminals.delete(id);
      throw e;
    } finally {
      const p = this.pendingOpens.get(id);
      if (p) clearTimeout(p.timer);
      this.pendingOpens.delete(id);
    }
    this.persist(relay);
    return relay;
  }

  /**
   * After a resume: an open caught in the cut is settled by whether the
   * agent has the terminal. If it has, only the answer was lost. If not, the
   * request itself was lost (the agent creates a terminal the moment the
   * request arrives, and keeps it until its exit is acknowledged), so it is
   * safe to send again.
   */
  isOpening(id: string): boolean {
    return this.pendingOpens.has(id);
  }

  settleOpens(agentHas: Set<string>): void {
    for (const [id, p] of this.pendingOpens) {
      if (agentHas.has(id)) p.resolve();
      else this.sendToAgent({ msg: { $case: 'open', value: { terminalId: id, spec: p.spec } } });
    }
  }

  private onOpened(o: TerminalOpened): void {
    const p = this.pendingOpens.get(o.terminalId);
    if (!p) return;
    if (o.ok) p.resolve();
    else p.reject(new ApiError('FAILED_PRECONDITION', `could not open the terminal: ${o.error}`));
  }

  closeTerminal(id: string): void {
    const relay = this.terminal(id);
    if (relay.exit) return;
    if (!this.sendToAgent({ msg: { $case: 'close', value: { terminalId: id } } })) {
      throw unavailable(`machine ${this.name} is not connected: the terminal was not closed`);
    }
  }

  private noteHeartbeat(): void {
    const now = Date.now();
    if (this.heartbeatAtMs && !this.heartbeatFirstOnStream) this.heartbeatGapMs = now - this.heartbeatAtMs;
    this.heartbeatFirstOnStream = false;
    this.heartbeatAtMs = now;
  }

  /** Why the agent cannot be reached now, in words (its state, the reason, what happens next). */
  whyAway(): string {
    if (this.state === SessionState.GRACE_PERIOD) {
      const left = Math.max(0, Math.ceil((this.deadlineMs - Date.now()) / 1000));
      return `machine ${this.name} is reconnecting (${this.stateReason}); its session is kept for ${left} s more`;
    }
    return `machine ${this.name} is ${SessionState[this.state]} (${this.stateReason})`;
  }

  info(): MachineInfo {
    return {
      agentId: this.agentId,
      name: this.name,
      capabilities: this.capabilities,
      state: this.state,
      stateReason: this.stateReason,
      stateSinceMs: this.stateSinceMs,
      sessionId: this.sessionId,
      graceDeadlineMs: this.deadlineMs,
      lastHeartbeat: this.lastHeartbeat,
      heartbeatAgeMs: this.heartbeatAtMs ? Date.now() - this.heartbeatAtMs : 0,
      heartbeatIntervalMs: this.heartbeatIntervalMs(),
      terminals: [...this.terminals.values()].map((t) => t.info()),
      agentUptimeMs: this.agentUptimeMs(),
      agentNotice: olderAgentNotice(this.capabilities),
    };
  }
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A terminal spec with defaults filled in, or INVALID_ARGUMENT saying what is wrong. */
export function validateSpec(spec: TerminalSpec | undefined): TerminalSpec {
  if (!spec) throw invalid('a terminal spec is required');
  const s: TerminalSpec = { ...spec, argv: [...spec.argv], env: { ...spec.env } };
  if (s.kind !== TerminalKind.SHELL && s.kind !== TerminalKind.EXEC) {
    throw invalid('terminal kind must be SHELL or EXEC');
  }
  if (s.kind === TerminalKind.EXEC && s.argv.length === 0 && !s.shellCommand) {
    throw invalid('exec needs a command (argv or shell_command)');
  }
  if (s.argv.some((a) => a.includes('\0')) || s.shellCommand.includes('\0')) {
    throw invalid('a command may not contain NUL bytes');
  }
  if (s.cols === 0 && s.rows === 0) {
    s.cols = 80;
    s.rows = 24;
  }
  const sizeError = checkSize(s.cols, s.rows);
  if (sizeError) throw invalid(sizeError);
  for (const k of Object.keys(s.env)) {
    if (!ENV_NAME.test(k)) throw invalid(`bad environment variable name ${JSON.stringify(k)}`);
  }
  if (s.title.length > 200) throw invalid('title is longer than 200 characters');
  return s;
}

export function newResumeToken(): Buffer {
  return randomBytes(32);
}

export function resumeHash(token: Uint8Array): Buffer {
  return createHash('sha256').update(token).digest();
}
