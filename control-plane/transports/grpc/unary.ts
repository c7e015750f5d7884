// One wrapper for every unary call a client makes (clientService.ts,
// fileService.ts): authenticate, run, map errors to a gRPC status, audit refusals.
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { ApiError, toStatus } from '../../core/errors';
import type { Access, Principal } from '../../core/access';

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => void;

/**
 * Runs a unary handler for an authenticated caller and turns what it throws
 * into a gRPC status; refusals are audited.
 */
export function authedUnary<Req, Res>(
  access: Access,
  action: string,
  fn: (req: Req, p: Principal, peer: string) => Res | Promise<Res>,
): Unary<Req, Res> {
  return (call, cb) => {
    let principal: Principal | undefined;
    const peer = call.getPeer();
    access
      .authenticate(call.metadata)
      .then((p) => fn(call.request, (principal = p), peer))
      .then((res) => cb(null, res))
      .catch((e) => {
        if (e instanceof ApiError && (e.code === 'UNAUTHENTICATED' || e.code === 'PERMISSION_DENIED')) {
          const machine = (call.request as { machine?: unknown })?.machine;
          access.audit(principal, { action, ok: false, detail: e.message, peer, machine: typeof machine === 'string' ? machine : '' });
        }
        cb(toStatus(e));
      });
  };
}
