// HAProxy (Debian's) in TCP mode in front of the replicas' gRPC ports, for
// `npm run cluster`: one address for agents and clients, as a load
// balancer in production would be (README, "Several control planes").
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { supervise, type Supervised } from './proc';

const CANDIDATES = ['/usr/sbin/haproxy', '/usr/bin/haproxy', '/usr/local/sbin/haproxy'];

/** HAProxy's path, or an Error saying how to install it. */
export function haproxyBin(): string {
  const found = CANDIDATES.find((p) => fs.existsSync(p));
  if (!found) throw new Error("HAProxy is not installed: install Debian's haproxy package (sudo apt-get install haproxy; .ci/run does)");
  return found;
}

export interface Backend {
  /** A name of HAProxy's syntax: letters, digits, - _ . : */
  name: string;
  /** HOST:PORT of its gRPC port. */
  address: string;
  /** Its web port, whose /readyz says whether it should get traffic. */
  webPort: number;
}

/** The configuration: plain text, so that a reader can compare it with their own. */
export function haproxyConfig(bind: string, backends: Backend[]): string {
  return [
    'global',
    '  maxconn 4000',
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    // Agents' and clients' streams live for hours; gRPC keepalives (25 s)
    // keep them busy, so an hour idle means the peer is gone.
    '  timeout client 1h',
    '  timeout server 1h',
    // A refused connection is tried again on another replica, before the
    // health check has marked the dead one down.
    '  retries 3',
    '  option redispatch 1',
    'listen cmdop',
    `  bind ${bind}`,
    // roundrobin rather than `first`: new connections spread over the
    // replicas, so a client often lands on a replica that does not hold its
    // machine and is forwarded to the owner (the path worth trying out).
    '  balance roundrobin',
    // The replica's own verdict, not just an open port: /readyz answers 503
    // while it drains (SIGTERM) or has lost its store.
    '  option httpchk GET /readyz',
    ...backends.map((b) => `  server ${b.name} ${b.address} check port ${b.webPort} inter 1s fall 2 rise 1`),
    '',
  ].join('\n');
}

function accepting(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Starts HAProxy on `bind` (HOST:PORT) before `backends`; resolves once it accepts connections. */
export async function startHaproxy(o: { bind: string; backends: Backend[]; dir: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Supervised> {
  const bin = haproxyBin();
  const cfg = path.join(o.dir, 'haproxy.cfg');
  fs.writeFileSync(cfg, haproxyConfig(o.bind, o.backends));
  // -db: in the foreground, not daemonised (we supervise it), its alerts on stderr (its log file).
  const p = supervise('HAProxy', bin, ['-db', '-f', cfg], { env: o.env, logFile: path.join(o.dir, 'haproxy.log') });
  const i = o.bind.lastIndexOf(':');
  const [host, port] = [o.bind.slice(0, i), Number(o.bind.slice(i + 1))];
  const deadline = Date.now() + (o.timeoutMs ?? 15_000);
  while (!(await accepting(host, port))) {
    if (p.proc.exitCode !== null || p.proc.signalCode !== null) throw new Error(`HAProxy exited before it listened on ${o.bind}:\n${p.tail()}`);
    if (Date.now() > deadline) {
      await p.stop('SIGKILL');
      throw new Error(`HAProxy did not listen on ${o.bind} within ${(o.timeoutMs ?? 15_000) / 1000} s:\n${p.tail()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return p;
}
