// The one parser of control plane addresses, shared by the CLI, the SDK and
// the agent. A bare HOST:PORT is plaintext (loopback, `cmdop up`); a URL
// says whether to use TLS: grpcs:// or https:// (TLS), grpc:// or http://.
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

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
