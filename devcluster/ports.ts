// A free loopback port, for the launchers here and the tests that start processes.
import fs from 'node:fs';
import net from 'node:net';

/** A loopback port nothing listens on right now (bound, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A free loopback port outside the kernel's ephemeral range, for a server
 * that is killed and started again on the same port. A port from freePort()
 * is ephemeral: between the kill and the restart, any outgoing connection
 * on the machine may take it as its local port, and the restart then fails
 * with EADDRINUSE for as long as that connection lives (seen under a full
 * test run: a desktop test's control plane retried for 50 s).
 */
export async function restartablePort(): Promise<number> {
  let low = 32768;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // Not Linux: Linux's default range start is as good a guess as any.
  }
  const floor = 20_000;
  for (let tries = 0; tries < 50; tries++) {
    const port = floor + Math.floor(Math.random() * Math.max(1, low - floor));
    if (await isFree(port)) return port;
  }
  throw new Error(`no free loopback port found between ${floor} and ${low}`);
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
