// The error vocabulary both ends share: a gRPC status name as the code, and
// a typed reason for the cases a client acts on. The control plane raises
// them (control-plane/core/errors.ts), every transport carries them (a gRPC
// status with `cmdop-reason` metadata, StreamError on the console's
// WebSocket, an HTTP status), and the SDK and the console read them back as
// these types. Nothing is ever matched by its text. Browser-safe.

/** gRPC's status names but OK: the code of every error. */
const CODE_NAMES = [
  'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE',
  'DATA_LOSS', 'UNAUTHENTICATED',
] as const;
export type ErrorCode = (typeof CODE_NAMES)[number];
const CODES: ReadonlySet<string> = new Set(CODE_NAMES);

const REASON_NAMES = [
  'machine_not_found',
  'terminal_not_found',
  'session_disconnected',
  // A download's file changed between attempts: start again from byte 0.
  'file_changed',
  // The control plane ended this one stream (a lost client heartbeat, a client gone): the connection is fine, re-attach.
  'stream_dropped',
  // The control plane is stopping or restarting: re-attach (to it or its successor).
  'restarting',
  '',
] as const;
/** Finer than the code: what a client does something about (sent as `cmdop-reason` on gRPC, `reason` elsewhere). */
export type ErrorReason = (typeof REASON_NAMES)[number];
const REASONS: ReadonlySet<string> = new Set(REASON_NAMES);

/** A code as received: one of ErrorCode, else UNKNOWN (a newer server's, or garbage). */
export function asErrorCode(s: string): ErrorCode {
  return CODES.has(s) ? (s as ErrorCode) : 'UNKNOWN';
}

/** A reason as received: one of ErrorReason, else '' (a newer server's reason this client does not act on). */
export function asErrorReason(s: string): ErrorReason {
  return REASONS.has(s) ? (s as ErrorReason) : '';
}
