// Errors the core raises, with a typed code (a gRPC status name, which every
// transport maps in its own way: a gRPC status, a StreamError on the
// console's WebSocket, an HTTP status) and a typed reason for the cases a
// client acts on (protocol/errors.ts, shared with the SDK and the console).
// Nothing is ever matched by its text.
import type { ErrorCode, ErrorReason } from '../../protocol/errors';
export type { ErrorCode, ErrorReason } from '../../protocol/errors';

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly reason: ErrorReason = '',
  ) {
    super(message);
  }
}

/** Another replica of this control plane, as the store names it. */
export interface ReplicaRef {
  id: string;
  /** Where it takes forwarded calls (its --peer-listen address). */
  peer: string;
  /** Its peer port's certificate (PEM) when it has TLS ('' without): pinned by whoever forwards to it. */
  peerCert?: string;
}

/**
 * The machine's agent is on another live replica (`owner`): the call is
 * forwarded there (core/clientCalls.ts). A transport that sees this error
 * (a call already forwarded once) tells the client to retry.
 */
export class HeldElsewhere extends ApiError {
  constructor(
    readonly machine: string,
    readonly owner: ReplicaRef,
  ) {
    super('UNAVAILABLE', `machine ${machine} is connected to another control plane replica; try again`);
  }
}

export const notFound = (m: string, reason: ErrorReason = '') => new ApiError('NOT_FOUND', m, reason);
export const invalid = (m: string) => new ApiError('INVALID_ARGUMENT', m);
export const denied = (m: string) => new ApiError('PERMISSION_DENIED', m);
export const unauthenticated = (m: string) => new ApiError('UNAUTHENTICATED', m);
export const unavailable = (m: string, reason: ErrorReason = '') => new ApiError('UNAVAILABLE', m, reason);

/** Any thrown value as an ApiError; what was not one is INTERNAL. */
export function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  return new ApiError('INTERNAL', e instanceof Error ? e.message : String(e));
}

const CODES = new Set<string>([
  'INVALID_ARGUMENT', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'UNAUTHENTICATED', 'UNAVAILABLE',
  'FAILED_PRECONDITION', 'OUT_OF_RANGE', 'DEADLINE_EXCEEDED', 'RESOURCE_EXHAUSTED', 'DATA_LOSS', 'CANCELLED', 'INTERNAL',
]);

/** A code name as the agent sends it (FileReply.code), typed; an unknown one is INTERNAL. */
export function errorCode(name: string): ErrorCode {
  return CODES.has(name) ? (name as ErrorCode) : 'INTERNAL';
}

const REASONS = new Set<string>(['machine_not_found', 'terminal_not_found', 'session_disconnected', 'file_changed', 'stream_dropped', 'restarting']);

/** A reason as another replica sent it (`cmdop-reason`), typed; an unknown one is none. */
export function errorReason(name: string): ErrorReason {
  return REASONS.has(name) ? (name as ErrorReason) : '';
}

/** Refusals are audited: these codes mean "you may not" or "who are you". */
export function isRefusal(e: unknown): e is ApiError {
  return e instanceof ApiError && (e.code === 'UNAUTHENTICATED' || e.code === 'PERMISSION_DENIED');
}
