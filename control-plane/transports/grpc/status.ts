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

export function grpcStatus(e: unknown): GrpcStatus {
  const err = asApiError(e);
  const metadata = new Metadata();
  if (err.reason) metadata.set('cmdop-reason', err.reason);
  return { code: status[err.code], details: err.message, metadata };
}
