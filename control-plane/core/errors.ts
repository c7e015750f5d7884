// Errors a handler can raise and the gRPC status each becomes. The names
// match the codes the SDK maps back to typed errors (sdk/errors.ts).
import { Metadata, status } from '@grpc/grpc-js';

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'PERMISSION_DENIED'
  | 'UNAUTHENTICATED'
  | 'UNAVAILABLE'
  | 'FAILED_PRECONDITION'
  | 'OUT_OF_RANGE'
  | 'DEADLINE_EXCEEDED'
  | 'RESOURCE_EXHAUSTED'
  | 'DATA_LOSS';

/** Finer than the status code; sent as `cmdop-reason` metadata for the SDK's typed errors. */
export type ErrorReason = 'machine_not_found' | 'terminal_not_found' | 'session_disconnected' | '';

export interface GrpcStatus {
  code: status;
  details: string;
  metadata?: Metadata;
}

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly reason: ErrorReason = '',
  ) {
    super(message);
  }

  toStatus(): GrpcStatus {
    const metadata = new Metadata();
    if (this.reason) metadata.set('cmdop-reason', this.reason);
    return { code: status[this.code], details: this.message, metadata };
  }
}

export const notFound = (m: string, reason: ErrorReason = '') => new ApiError('NOT_FOUND', m, reason);
export const invalid = (m: string) => new ApiError('INVALID_ARGUMENT', m);
export const denied = (m: string) => new ApiError('PERMISSION_DENIED', m);
export const unauthenticated = (m: string) => new ApiError('UNAUTHENTICATED', m);
export const unavailable = (m: string) => new ApiError('UNAVAILABLE', m);

/** Any thrown value as a gRPC status; unexpected errors become INTERNAL. */
export function toStatus(err: unknown): GrpcStatus {
  if (err instanceof ApiError) return err.toStatus();
  return { code: status.INTERNAL, details: err instanceof Error ? err.message : String(err) };
}
