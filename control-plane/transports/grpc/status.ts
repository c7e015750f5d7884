// The core's errors as gRPC statuses: the code by name, the message as the
// details, and the typed reason as `cmdop-reason` metadata (sdk/errors.ts
// reads it back into typed errors).
import { Metadata, status } from '@grpc/grpc-js';
import { asApiError } from '../../core/errors';

export interface GrpcStatus {
  code: status;
  details: string;
  metadata: Metadata;
}

/** Set on every status the core made: a replica forwarding a call tells them from its link's failures. */
export const CORE_ERROR_HEADER = 'cmdop-code';

export function grpcStatus(e: unknown): GrpcStatus {
  const err = asApiError(e);
  const metadata = new Metadata();
  metadata.set(CORE_ERROR_HEADER, err.code);
  if (err.reason) metadata.set('cmdop-reason', err.reason);
  return { code: status[err.code], details: err.message, metadata };
}
