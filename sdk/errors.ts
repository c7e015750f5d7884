// Typed errors for SDK users. Every error the control plane returns maps to
// one of these; `code` is the gRPC status name, `reason` the finer cause.
import { Metadata, ServiceError, status } from '@grpc/grpc-js';
import { asErrorCode, asErrorReason, type ErrorCode, type ErrorReason } from '../protocol/errors';
export type { ErrorCode, ErrorReason } from '../protocol/errors';

export class CmdopError extends Error {
  /** The gRPC status name (protocol/errors.ts); an unknown one reads UNKNOWN. */
  readonly code: ErrorCode;
  /** Finer than the code, for what a caller acts on: machine_not_found, file_changed, restarting, ... ('' for none, or one this SDK does not know). */
  readonly reason: ErrorReason;
  constructor(message: string, code: string = 'UNKNOWN', reason: string = '') {
    super(message);
    this.name = new.target.name;
    this.code = asErrorCode(code);
    this.reason = asErrorReason(reason);
  }
}

export class MachineNotFoundError extends CmdopError {}
export class TerminalNotFoundError extends CmdopError {}
export class NotFoundError extends CmdopError {}
export class PermissionDeniedError extends CmdopError {}
/** No token, or one the control plane does not accept (unknown, expired, revoked). */
export class UnauthenticatedError extends PermissionDeniedError {}
export class InvalidArgumentError extends CmdopError {}
export class AlreadyExistsError extends CmdopError {}
/** The control plane cannot be reached, or the machine is not connected right now. */
export class UnavailableError extends CmdopError {}
/** A request that certainly did not reach the machine (safe to send again). */
export class NotDeliveredError extends UnavailableError {}
/** The machine's session ended (its grace period ran out): its terminals are gone. */
export class SessionDisconnectedError extends CmdopError {}
export class TimeoutError extends CmdopError {}
/** A file arrived damaged (its MD5 did not match); nothing was left under its name. */
export class DataLossError extends CmdopError {}
/** The machine cannot take it: disk full, too many transfers. */
export class ResourceExhaustedError extends CmdopError {}
/** The request does not fit the state of things: a directory where a file was meant, a file that changed. */
export class FailedPreconditionError extends CmdopError {}

function reasonOf(metadata: Metadata | undefined): string {
  const v = metadata?.get('cmdop-reason')[0];
  return typeof v === 'string' ? v : '';
}

/** The typed error for a status code name (as StreamError carries it) and message. */
export function errorFor(code: string, message: string, reason = ''): CmdopError {
  if (reason === 'machine_not_found') return new MachineNotFoundError(message, code, reason);
  if (reason === 'terminal_not_found') return new TerminalNotFoundError(message, code, reason);
  switch (code) {
    case 'NOT_FOUND':
      return new NotFoundError(message, code, reason);
    case 'PERMISSION_DENIED':
      return new PermissionDeniedError(message, code, reason);
    case 'UNAUTHENTICATED':
      return new UnauthenticatedError(message, code, reason);
    case 'INVALID_ARGUMENT':
    case 'OUT_OF_RANGE':
      return new InvalidArgumentError(message, code, reason);
    case 'ALREADY_EXISTS':
      return new AlreadyExistsError(message, code, reason);
    case 'UNAVAILABLE':
      return new UnavailableError(message, code, reason);
    case 'DEADLINE_EXCEEDED':
      return new TimeoutError(message, code, reason);
    case 'DATA_LOSS':
      return new DataLossError(message, code, reason);
    case 'RESOURCE_EXHAUSTED':
      return new ResourceExhaustedError(message, code, reason);
    case 'FAILED_PRECONDITION':
      return new FailedPreconditionError(message, code, reason);
    default:
      return new CmdopError(message, code, reason);
  }
}

export function fromServiceError(e: ServiceError, server: string): CmdopError {
  const code = status[e.code] ?? String(e.code);
  if (e.code === status.UNAVAILABLE && /ECONNREFUSED|No connection established|failed to connect/i.test(e.details)) {
    return new UnavailableError(`cannot reach the control plane at ${server}: ${e.details}`, code);
  }
  return errorFor(code, e.details || e.message, reasonOf(e.metadata));
}
