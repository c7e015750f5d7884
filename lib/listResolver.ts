// Failover across several control plane addresses, inside grpc-js: a name
// resolver for `cmdop-list:///H1:P1,H2:P2` (lib/serverAddress.ts builds such
// targets) that looks up every entry (node:dns lookup, all its addresses)
// and hands grpc-js the addresses in the list's order. The channel's load
// balancer is grpc-js's default, pick_first: it connects to the first
// address that answers (starting the next one 250 ms after the previous if
// it neither answers nor refuses, happy eyeballs), uses it for every call,
// and when that connection drops it goes idle and starts again from the top
// of the list on the next call. So an agent's reconnect, an SDK re-attach or
// the next CLI call goes to the first entry alive, whichever call it is
// (unary, attach, files, auth), with no rotation code of our own.
//
// pick_first mixes IPv6 and IPv4 addresses (RFC 8305 interleaving), so with
// entries of both families the order alternates between them.
import * as dns from 'node:dns';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { LIST_SCHEME } from './serverAddress';

type GrpcUri = grpc.experimental.GrpcUri;
type Endpoint = grpc.experimental.Endpoint;
type ResolverListener = grpc.experimental.ResolverListener;

/** An entry of a list target: as written (its host may be a name), and the addresses it resolved to. */
interface Entry {
  host: string;
  port: number;
}

/** A name is looked up again at most this often (a drop asks for a new resolution each time). */
const MIN_RESOLVE_INTERVAL_MS = 2000;

/**
 * Which entry of a list target each resolved address belongs to, from the
 * last resolution of that target in this process: TLS over a list verifies
 * each connection against its own entry's pin (sdk/trust/replicaTrust.ts).
 */
const entryOfAddress = new Map<string, Map<string, number>>();

/** The index of the entry of `target` (a list target, as grpc-js prints it) that `ip:port` was resolved from. */
export function listEntryOf(target: string, ip: string, port: number): number | undefined {
  return entryOfAddress.get(target)?.get(addressKey(ip, port));
}

const addressKey = (ip: string, port: number) => (net.isIPv6(ip) ? `[${ip.toLowerCase()}]:${port}` : `${ip}:${port}`);

/** Parses the path of a list target into its entries; throws on a malformed one. */
function entriesOf(target: GrpcUri): Entry[] {
  return target.path.split(',').map((part) => {
    const hp = grpc.experimental.splitHostPort(part);
    if (!hp || hp.port === undefined) throw new Error(`malformed entry ${JSON.stringify(part)} in ${grpc.experimental.uriToString(target)}`);
    return { host: hp.host, port: hp.port };
  });
}

class ListResolver implements grpc.experimental.Resolver {
  private readonly entries: Entry[] = [];
  private readonly error: string | undefined;
  private readonly key: string;
  private pending = false;
  private lastStart = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Bumped by destroy(): a lookup that finishes after it is ignored. */
  private generation = 0;
  /** An address to put first (the Bulk channel's: the replica its session's main stream is on). */
  private readonly first: string | undefined;
  /** An address to put last (the agent's: the replica its stream was just lost on, which may be frozen). */
  private readonly last: string | undefined;

  constructor(
    target: GrpcUri,
    private readonly listener: ResolverListener,
    options: grpc.ChannelOptions,
  ) {
    this.key = grpc.experimental.uriToString(target);
    const first = options[FIRST_ADDRESS_OPTION];
    this.first = typeof first === 'string' ? first : undefined;
    const last = options[LAST_ADDRESS_OPTION];
    this.last = typeof last === 'string' ? last : undefined;
    try {
      this.entries = entriesOf(target);
    } catch (e) {
      this.error = (e as Error).message;
    }
  }

  updateResolution(): void {
    if (this.pending || this.timer) return;
    // Addresses only: nothing can have moved since the last result.
    if (this.lastStart > 0 && this.entries.every((e) => net.isIP(e.host))) return;
    const wait = this.lastStart + MIN_RESOLVE_INTERVAL_MS - Date.now();
    if (wait > 0) {
      // The channel already has the last result: pick_first starts over from
      // it on its own. A new lookup only matters if names moved.
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.updateResolution();
      }, wait);
      this.timer.unref();
      return;
    }
    this.resolve();
  }

  private resolve(): void {
    const generation = this.generation;
    if (this.error) {
      const error = this.error;
      process.nextTick(() => {
        if (generation === this.generation) this.listener(unavailable(error), {}, null, '');
      });
      return;
    }
    this.pending = true;
    this.lastStart = Date.now();
    Promise.all(
      this.entries.map((e) =>
        net.isIP(e.host)
          ? Promise.resolve({ addresses: [e.host], error: undefined })
          : dns.promises.lookup(e.host, { all: true }).then(
              (found) => ({ addresses: found.map((f) => f.address), error: undefined }),
              (err: NodeJS.ErrnoException) => ({ addresses: [] as string[], error: `${e.host}: ${err.code ?? err.message}` }),
            ),
      ),
    ).then((results) => {
      if (generation !== this.generation) return;
      this.pending = false;
      const map = new Map<string, number>();
      const endpoints: Endpoint[] = [];
      results.forEach((r, i) => {
        for (const ip of r.addresses) {
          const k = addressKey(ip, this.entries[i].port);
          if (map.has(k)) continue; // two entries, one address: the first keeps it
          map.set(k, i);
          endpoints.push({ addresses: [{ host: ip, port: this.entries[i].port }] });
        }
      });
      entryOfAddress.set(this.key, map);
      if (this.first) {
        const at = endpoints.findIndex((ep) => addressKey((ep.addresses[0] as { host: string }).host, (ep.addresses[0] as { port: number }).port) === this.first);
        if (at > 0) endpoints.unshift(...endpoints.splice(at, 1));
      }
      if (this.last) {
        const at = endpoints.findIndex((ep) => addressKey((ep.addresses[0] as { host: string }).host, (ep.addresses[0] as { port: number }).port) === this.last);
        if (at >= 0 && at < endpoints.length - 1) endpoints.push(...endpoints.splice(at, 1));
      }
      const failed = results.map((r) => r.error).filter((e): e is string => e !== undefined);
      const note = failed.length ? `not resolved: ${failed.join(', ')}` : '';
      if (endpoints.length === 0) this.listener(unavailable(`no address of ${this.key} could be resolved (${failed.join(', ')})`), {}, null, note);
      else this.listener(grpc.experimental.statusOrFromValue(endpoints), {}, null, note);
    });
  }

  destroy(): void {
    this.generation++;
    this.pending = false;
    this.lastStart = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  static getDefaultAuthority(target: GrpcUri): string {
    return target.path.split(',')[0];
  }
}

function unavailable(details: string) {
  return grpc.experimental.statusOrFromError<Endpoint[]>({ code: grpc.status.UNAVAILABLE, details, metadata: new grpc.Metadata() });
}

/**
 * A channel option (ours; grpc-js passes it through): the `ip:port` a list
 * target's resolver puts first. The agent's Bulk channel uses it so that its
 * file stream goes to the replica its session's main stream is on, and to
 * the others only if that one is gone.
 */
export const FIRST_ADDRESS_OPTION = 'cmdop.first_address';

/**
 * A channel option (ours): the `ip:port` a list target's resolver puts
 * last. A replica that is frozen (SIGSTOP, a stalled VM) still completes
 * TCP handshakes from its kernel's backlog, so pick_first takes it for
 * alive and the agent's next stream would hang there again until keepalive
 * gives up, forever; the agent puts the replica its stream was lost on last.
 */
export const LAST_ADDRESS_OPTION = 'cmdop.last_address';

let registered = false;

/** Registers the `cmdop-list:` scheme with grpc-js (once per process). Channels to a list target need it. */
export function registerListResolver(): void {
  if (registered) return;
  registered = true;
  grpc.experimental.registerResolver(LIST_SCHEME, ListResolver);
}

/**
 * Channel options for a list target. grpc-js backs off reconnecting each
 * address on its own (1 s, then x1.6 up to 120 s, timed from the start of
 * each attempt). While every entry is down (one replica dead, the next not
 * listening yet) that backoff grows, and a long-lived channel (the SDK's)
 * then fails its calls at once until its timer for the live address runs
 * out. Measured here (test/failover.test.ts, the next control plane
 * started 3 s after the kill, listening after 3.7-4.3 s): an SDK exec's
 * output back 5.4, 8.7 and 11.4 s after the kill with grpc-js's defaults,
 * 4.1-4.8 s with these.
 * It costs nothing once connected: pick_first does not dial the other
 * entries then. One address is left as it was: through a load balancer
 * (HAProxy) the balancer's own retries pace the attempts, and these made
 * no difference there.
 */
export const LIST_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 1000,
};
