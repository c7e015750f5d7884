// The one parser of control plane addresses, shared by the CLI, the SDK and
// the agent. A bare HOST:PORT is plaintext (loopback, `cmdop up`); a URL
// says whether to use TLS: grpcs:// or https:// (TLS), grpc:// or http://.
// A comma-separated list (`A,B,C`) names several to try in order.
import { DEFAULT_SERVER } from '../protocol';

export interface ServerAddress {
  host: string;
  port: number;
  tls: boolean;
  /** HOST:PORT as gRPC dials it (IPv6 in brackets). */
  target: string;
  /** What the user typed, normalised; the key for pinned fingerprints and stored logins. */
  display: string;
}

const DEFAULT_PORT = Number(DEFAULT_SERVER.split(':')[1]);

export function parseServerAddress(input: string): ServerAddress {
  const s = input.trim();
  const url = /^([a-z]+):\/\/(.*?)\/?$/i.exec(s);
  let tls = false;
  let rest = s;
  if (url) {
    const scheme = url[1].toLowerCase();
    if (scheme === 'grpcs' || scheme === 'https') tls = true;
    else if (scheme !== 'grpc' && scheme !== 'http') {
      throw new Error(`server address ${JSON.stringify(input)}: scheme must be grpcs://, https://, grpc:// or http://`);
    }
    rest = url[2];
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(rest);
  if (!m || (!url && m[3] === undefined)) {
    throw new Error(`server address ${JSON.stringify(input)} must be HOST:PORT, or a URL such as grpcs://HOST:PORT`);
  }
  const host = m[1] ?? m[2];
  const port = m[3] === undefined ? DEFAULT_PORT : Number(m[3]);
  if (port < 1 || port > 65535) throw new Error(`server address ${JSON.stringify(input)}: port ${port} is out of range`);
  const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return { host, port, tls, target, display: tls ? `grpcs://${target}` : target };
}

/**
 * Several control planes to try in order (replicas, or one behind a load
 * balancer given once), parsed from `A,B,C`: each entry as by
 * parseServerAddress. A single address gives exactly what it gives alone
 * (target HOST:PORT, same display), so nothing changes for one address.
 */
export interface ServerList {
  /** The addresses in the order given; at least one. */
  entries: ServerAddress[];
  /** All entries use TLS, or none does. */
  tls: boolean;
  /**
   * What gRPC dials: HOST:PORT for one address, else
   * `cmdop-list:///H1:P1,H2:P2` (lib/listResolver.ts: pick_first over the
   * entries' addresses, in order).
   */
  target: string;
  /**
   * The entries' displays joined by commas: what the user typed, normalised;
   * the key for stored logins and agent credentials (one address: its
   * display, as before). Pins stay per entry (sdk/trust/replicaTrust.ts).
   */
  display: string;
}

/** The gRPC scheme of a target that lists several addresses (lib/listResolver.ts registers it). */
export const LIST_SCHEME = 'cmdop-list';

export function parseServerList(input: string | readonly string[]): ServerList {
  const parts = typeof input === 'string' ? input.split(',') : input.flatMap((s) => s.split(','));
  const shown = JSON.stringify(typeof input === 'string' ? input : input.join(','));
  if (parts.length === 1) {
    const a = parseServerAddress(parts[0]);
    return { entries: [a], tls: a.tls, target: a.target, display: a.display };
  }
  const entries: ServerAddress[] = [];
  const seen = new Map<string, string>();
  for (const part of parts) {
    if (part.trim() === '') throw new Error(`server list ${shown} has an empty entry (addresses are separated by single commas)`);
    const a = parseServerAddress(part);
    const key = a.target.toLowerCase();
    const before = seen.get(key);
    if (before !== undefined) throw new Error(`server list ${shown} names ${before} twice (as ${JSON.stringify(part.trim())} too)`);
    seen.set(key, a.display);
    entries.push(a);
  }
  const plain = entries.find((e) => !e.tls);
  const secure = entries.find((e) => e.tls);
  if (plain && secure) {
    throw new Error(
      `server list ${shown} mixes TLS and plaintext: ${secure.display} uses TLS, ${plain.display} does not. ` +
        `Write grpcs:// before every address, or before none`,
    );
  }
  return {
    entries,
    tls: !!secure,
    target: `${LIST_SCHEME}:///${entries.map((e) => e.target).join(',')}`,
    display: entries.map((e) => e.display).join(','),
  };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
