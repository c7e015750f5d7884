// A core unary call (core/unary.ts) as a grpc-js unary handler: the caller
// authenticated from the call's metadata (a refused token is audited here:
// the core never saw the call), the core's error as a gRPC status.
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import type { Access } from '../../core/access';
import { isRefusal } from '../../core/errors';
import type { UnaryCall } from '../../core/unary';
import { callContext } from './streams';
import { grpcStatus } from './status';

export type GrpcUnary<Req, Res> = (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => void;

export function grpcUnary<Req, Res>(access: Access, action: string, fn: UnaryCall<Req, Res>): GrpcUnary<Req, Res> {
  return (call, cb) => {
    callContext(access, call as ServerUnaryCall<unknown, unknown>).then(
      (ctx) => fn(ctx, call.request).then((res) => cb(null, res), (e) => cb(grpcStatus(e))),
      (e) => {
        if (isRefusal(e)) {
          const machine = (call.request as { machine?: unknown })?.machine;
          access.audit(undefined, { action, ok: false, detail: e.message, peer: call.getPeer(), machine: typeof machine === 'string' ? machine : '' });
        }
        cb(grpcStatus(e));
      },
    );
  };
}
