// What crosses the peer link besides the call itself: the cluster secret
// (the peer port admits only replicas of this cluster) and the caller the
// forwarding replica verified, as a ForwardedCaller in binary metadata.
import { Metadata } from '@grpc/grpc-js';
import { timingSafeEqual, createHash } from 'node:crypto';
import { ForwardedCaller } from '../../../protocol';
import type { Principal } from '../../core/access';
import { unauthenticated } from '../../core/errors';
import type { CallContext } from '../../core/ports';

const CALLER = 'cmdop-caller-bin';
const SCHEME = 'Cluster ';

/** The metadata of a call forwarded by `replica` for `ctx`'s caller. */
export function forwardMetadata(secret: string, replica: string, ctx: CallContext): Metadata {
  const p = ctx.principal;
  const md = new Metadata();
  md.set('authorization', SCHEME + secret);
  const caller: ForwardedCaller = {
    kind: p.kind,
    tokenId: p.tokenId,
    userId: p.user.id,
    userName: p.user.name,
    admin: p.user.admin,
    machine: p.machine,
    terminalId: p.terminalId,
    expiresMs: p.expiresMs,
    peer: ctx.peer,
    replica,
  };
  md.set(CALLER, Buffer.from(ForwardedCaller.encode(caller).finish()));
  return md;
}

// Compared as digests: equal lengths for timingSafeEqual, whatever was sent.
const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * The context of a forwarded call, once its secret is the cluster's. The
 * caller is taken as the forwarding replica verified it; the owner checks
 * its rights again (the grants are in the shared store) and audits what it
 * does under the client's own address.
 */
export function forwardedContext(md: Metadata, secret: string): CallContext {
  const auth = md.get('authorization')[0];
  if (typeof auth !== 'string' || !auth.startsWith(SCHEME) || !timingSafeEqual(digest(auth.slice(SCHEME.length)), digest(secret))) {
    throw unauthenticated('not a replica of this cluster (wrong or missing cluster secret)');
  }
  const raw = md.get(CALLER)[0];
  if (!Buffer.isBuffer(raw)) throw unauthenticated(`a forwarded call without ${CALLER}`);
  const c = ForwardedCaller.decode(raw);
  const principal: Principal = {
    kind: c.kind,
    tokenId: c.tokenId,
    // Forwarded callers never sign in with a password here: no hash crosses the link.
    user: { id: c.userId, name: c.userName, admin: c.admin, passwordHash: '', createdMs: 0 },
    machine: c.machine,
    terminalId: c.terminalId,
    expiresMs: c.expiresMs,
  };
  return { principal, peer: `${c.peer} via replica ${c.replica}`, forwardedBy: c.replica };
}
