// The typed channel between the desktop app's main process and its two
// server processes (app/host/controlPlaneHost.ts, app/host/agentHost.ts):
// every message either way, as one discriminated union per direction.
//
//   main → host   request {id, method, params}   answered by one reply {id}
//                 quit                           stop gracefully, then exit
//                                                (the SIGTERM of this channel)
//   host → main   reply {id, ok, result | error}
//                 event                          what the host reports unasked
//
// The same messages travel over Electron's utilityProcess port (structured
// clone) and over Node's child_process IPC (serialization 'advanced', the
// same clone): plain data only, no functions, no class instances. Types
// only: main and hosts import this file, nothing runs here.
import type { TokenKind } from '../../protocol';

/** A method's parameters and its result. */
type Call<P, R> = { params: P; result: R };

/** What the control-plane host answers (controlPlaneHost.ts). */
export interface ControlPlaneCalls {
  /** Start the embedded control plane; once per process. */
  start: Call<ControlPlaneStart, ControlPlaneReady>;
  /** A token of the first admin (the desktop's console token, the agent's one-time enrollment). */
  issueToken: Call<{ kind: TokenKind; name: string; machine?: string; expiresInS?: number }, { id: string; token: string }>;
  /** Revoke a token and close its live streams. */
  revokeToken: Call<{ id: string }, { streamsClosed: number }>;
}

export interface ControlPlaneStart {
  /** HOST:PORT; on a restart, the port the first process bound (so agents and windows find it again). */
  listen: string;
  dataDir: string;
  gracePeriodS: number;
  logLevel: string;
}

export interface ControlPlaneReady {
  /** What clients pass as --server. */
  address: string;
  /** listen with the port actually bound: what a restarted process listens on. */
  boundListen: string;
  issuer: string;
  adminTokenFile: string;
  pid: number;
  execArgv: string[];
}

/** What the agent host answers (agentHost.ts). */
export interface AgentCalls {
  /** Connect the agent; resolves once its first session is registered. Once per process. */
  start: Call<AgentStart, AgentReady>;
  /** The lid closed (or the user paused): GRACE_PERIOD now, the stream dropped. */
  suspend: Call<{ reason: string }, AgentStatusEvent>;
  /** Awake: reconnect at once. */
  resume: Call<Record<string, never>, AgentStatusEvent>;
}

export interface AgentStart {
  /** The control plane as the user named it (one address or a list); the host resolves its trust itself (sdk/connect.ts). */
  server: string | readonly string[];
  /** The agent's credential; the main process obtained it (the keychain lives there). */
  token: string;
  name: string;
  stateDir: string;
  logLevel: string;
}

export interface AgentReady {
  sessionId: string;
  pid: number;
  execArgv: string[];
}

export type AgentStatus = 'connecting' | 'connected' | 'offline' | 'suspended' | 'stopped';

export interface AgentStatusEvent {
  event: 'status';
  status: AgentStatus;
  sessionId: string;
}

/** What the agent host reports unasked. */
export type AgentEvent =
  | AgentStatusEvent
  /** The agent stopped for good (refused credential, changed certificate). */
  | { event: 'fatal'; message: string }
  /** A resume was refused: the previous session's terminals are gone. */
  | { event: 'session-ended'; reason: string; terminals: string[] };

/** The control-plane host reports nothing unasked. */
export type ControlPlaneEvent = never;

// ---- the wire

/** A table of calls: ControlPlaneCalls, AgentCalls. */
export type Methods<C> = { [M in keyof C]: Call<unknown, unknown> };

export type Request<C extends Methods<C>> = {
  [M in keyof C & string]: { type: 'request'; id: number; method: M; params: C[M]['params'] };
}[keyof C & string];

export type Reply =
  | { type: 'reply'; id: number; ok: true; result: unknown }
  | { type: 'reply'; id: number; ok: false; error: { message: string; name: string } };

export type ToHost<C extends Methods<C>> = Request<C> | { type: 'quit' };

export type FromHost<E> = Reply | { type: 'event'; body: E };

/** Exit codes a host uses, so the main process can say why. */
export const HOST_EXIT = { ok: 0, startFailed: 2, parentGone: 3 } as const;
