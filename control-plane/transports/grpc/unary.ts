// A core unary call (core/unary.ts) as a grpc-js unary handler: the caller
// authenticated from the call's metadata (a refused one is audited or
// logged here: the core never saw the call), the core's error as a gRPC
// status.
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { asApiError } from '../../core/errors';
import type { UnaryCall } from '../../core/unary';
import type { Authenticator } from './streams';
import { grpcStatus } from './status';

export type GrpcUnary<Req, Res> = (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => void;

export function grpcUnary<Req, Res>(auth: Authenticator, action: string, fn: UnaryCall<Req, Res>): GrpcUnary<Req, Res> {
  return (call, cb) => {
    auth.authenticate(call as ServerUnaryCall<unknown, unknown>).then(
      (ctx) => fn(ctx, call.request).then((res) => cb(null, res), (e) => cb(grpcStatus(e))),
      (e) => {
        auth.refused(action, call as ServerUnaryCall<unknown, unknown>, asApiError(e));
        cb(grpcStatus(e));
      },
    );
  };
}
