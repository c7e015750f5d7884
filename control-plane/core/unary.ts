// One wrapper for every unary call the core serves (clientCalls.ts,
// authCalls.ts): run it under the caller's context; a refusal is audited
// (with the machine the request names) and rethrown for the transport to
// turn into its own kind of error.
import type { Access, Principal } from './access';
import { isRefusal } from './errors';
import type { CallContext } from './ports';

/** A unary call as the core serves it: the request, its caller, the response. */
export type UnaryCall<Req, Res> = (ctx: CallContext, req: Req) => Promise<Res>;

export function auditedUnary<Req, Res>(
  access: Access,
  action: string,
  fn: (req: Req, p: Principal, peer: string) => Res | Promise<Res>,
): UnaryCall<Req, Res> {
  return async (ctx, req) => {
    try {
      return await fn(req, ctx.principal, ctx.peer);
    } catch (e) {
      if (isRefusal(e)) {
        const machine = (req as { machine?: unknown })?.machine;
        access.audit(ctx.principal, { action, ok: false, detail: e.message, peer: ctx.peer, machine: typeof machine === 'string' ? machine : '' });
      }
      throw e;
    }
  };
}
