// Bounds and defaults both ends of the wire agree on. Flags may change the
// timeouts; the size limits are the contract.

/**
 * The wire protocol this build speaks, as agents and control planes tell
 * each other (Capabilities.protocol_version, ServerInfo.protocol_version).
 * proto/ changes only additively, so every pair still talks; the number says
 * what an older peer lacks. Raised when the agent-facing contract gains
 * something the control plane or its clients rely on:
 *   1  release 0.1.0 (proto/releases/0.1.0.binpb); its agents send no number
 *   2  agents report their protocol and uptime (issue 18)
 */
export const PROTOCOL_VERSION = 2;

/** The protocol a peer speaks from the number it sent: 0 (absent) is a peer from before the field, protocol 1. */
export const protocolOf = (sent: number | undefined): number => sent || 1;

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 7420;
export const DEFAULT_SERVER = `${DEFAULT_HOST}:${DEFAULT_PORT}`;

/** Largest output chunk the agent sends (it batches reads up to this). */
export const MAX_OUTPUT_CHUNK = 256 * 1024;
/** Largest single input a client may send; larger pastes are split by the client. */
export const MAX_INPUT_BYTES = 64 * 1024;
/** gRPC message size caps: agent stream (output chunks, snapshots) and clients. */
export const MAX_AGENT_MESSAGE = 8 * 1024 * 1024;
export const MAX_CLIENT_MESSAGE = 4 * 1024 * 1024;

/** File transfers move in chunks of this size range; the sender adapts within it. */
export const MIN_FILE_CHUNK = 64 * 1024;
export const MAX_FILE_CHUNK = 2 * 1024 * 1024;
/**
 * Most file bytes one transfer may have unacknowledged, and (on the agent)
 * all downloads together. A keystroke's echo shares the agent's stream with
 * file chunks, so this is the most it can wait behind: 4 MiB is ~35 ms at
 * 1 Gbit/s and lets a 1 Gbit/s link with a 30 ms round trip run at full
 * speed. On slower links the adaptive window (lib/chunkSizer.ts) keeps the
 * queue near 20 ms + one round trip, far below this cap.
 */
export const MAX_FILE_WINDOW = 4 * 1024 * 1024;
/**
 * An upload's bytes sent but not yet written by the agent: a window and the
 * chunk being sent. A client that ignores acknowledgements and sends past it
 * is refused, so the control plane never queues more than this of a file
 * ahead of the keystrokes going to the same agent.
 */
export const MAX_UPLOAD_IN_FLIGHT = MAX_FILE_WINDOW + MAX_FILE_CHUNK;

/**
 * Directory listings come in pages of this many entries (page_size 0), at
 * most LIST_MAX_PAGE: each page lstat()s only its own entries, so a huge
 * directory costs one readdir plus a page's worth of stat()s per reply.
 */
export const LIST_DEFAULT_PAGE = 1000;
export const LIST_MAX_PAGE = 5000;
/** A page token longer than this was not issued by an agent (a name is at most a few KiB). */
export const MAX_PAGE_TOKEN = 4096;

/**
 * Output the agent may have in flight beyond the control plane's ack while
 * connected. It is also how far the PTY can run ahead of the slowest
 * operator, so it bounds how long Ctrl-C takes to show during a flood.
 */
export const AGENT_WINDOW = 1024 * 1024;
/** Output the agent holds while it has no stream (grace period); then it stops reading. */
export const AGENT_OFFLINE_BUFFER = 16 * 1024 * 1024;
/** Recent output the control plane keeps per terminal for re-attach and observers. */
export const RELAY_BUFFER = 4 * 1024 * 1024;
/** The control plane acks the agent at least every this many bytes. */
export const ACK_STEP = 256 * 1024;

/**
 * HTTP/2 flow-control window per stream. The default (64 KiB) allows one
 * 64 KiB message per round trip between two event loops, which capped a
 * terminal at ~40 MB/s; our own windows (above) bound memory instead.
 */
export const HTTP2_WINDOW = 4 * 1024 * 1024;

export const MIN_COLS = 1;
export const MIN_ROWS = 1;
export const MAX_COLS = 2000;
export const MAX_ROWS = 1000;

export const SIGNALS = [
  'SIGINT', 'SIGTERM', 'SIGKILL', 'SIGHUP', 'SIGQUIT', 'SIGTSTP', 'SIGCONT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH',
] as const;
export type SignalName = (typeof SIGNALS)[number];

export function isSignalName(s: string): s is SignalName {
  return (SIGNALS as readonly string[]).includes(s);
}

/** A resize's size, or why it is refused. */
export function checkSize(cols: number, rows: number): string | undefined {
  if (!Number.isInteger(cols) || !Number.isInteger(rows)) return 'size must be whole numbers';
  if (cols < MIN_COLS || rows < MIN_ROWS) return `size ${cols}x${rows} is too small (at least ${MIN_COLS}x${MIN_ROWS})`;
  if (cols > MAX_COLS || rows > MAX_ROWS) return `size ${cols}x${rows} is too large (at most ${MAX_COLS}x${MAX_ROWS})`;
  return undefined;
}

export const DEFAULT_TIMEOUTS = {
  /** CONNECTED -> GRACE_PERIOD after this long without a heartbeat. */
  heartbeatTimeoutS: 60,
  /** GRACE_PERIOD -> DISCONNECTED. */
  gracePeriodS: 30,
  /** BACKGROUND -> DISCONNECTED. */
  backgroundTimeoutS: 3600,
  /** A client's stream is closed after this long without its heartbeat. */
  clientTimeoutS: 60,
  /** How often the agent and clients send heartbeats. */
  heartbeatIntervalS: 30,
  /** gRPC keepalive ping interval on the agent's channel. */
  keepaliveS: 25,
};

/** Machine and user names: what a shell, a URL and a file name all take as they are. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const nameError = (what: string, name: string): string | undefined =>
  NAME_PATTERN.test(name) ? undefined : `${what} ${JSON.stringify(name)} must be 1-63 letters, digits, '.', '_' or '-'`;

/** The browser gateway: path on the web port, and the WebSocket subprotocol (the token rides as `bearer.TOKEN`). */
export const GATEWAY_PATH = '/ws';
export const GATEWAY_PROTOCOL = 'cmdop.v1';
