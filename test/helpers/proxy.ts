// A TCP proxy for tests, between an agent (or a client) and the control
// plane, that can cut every connection through it at any moment or refuse
// connections for a while: the network failures the session must survive.
import net from 'node:net';

export class CutProxy {
  cuts = 0;
  private blocked = false;
  private pairs = new Set<[net.Socket, net.Socket]>();
  private frozen = new Set<[net.Socket, net.Socket]>();

  private constructor(
    private server: net.Server,
    readonly address: string,
  ) {}

  static async start(target: string): Promise<CutProxy> {
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    let proxy!: CutProxy;
    const server = net.createServer((client) => {
      if (proxy.blocked) return client.destroy();
      const upstream = net.connect(port, host);
      const pair: [net.Socket, net.Socket] = [client, upstream];
      proxy.pairs.add(pair);
      const close = () => {
        proxy.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    proxy = new CutProxy(server, `127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    return proxy;
  }

  /** Connections open right now. */
  get open(): number {
    return this.pairs.size;
  }

  /** Cut every connection through the proxy; returns how many were cut. */
  cut(): number {
    const n = this.pairs.size;
    for (const [a, b] of [...this.pairs]) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
    this.cuts += n;
    return n;
  }

  /**
   * Stop forwarding on every open connection without closing it, as a dead
   * NAT mapping does: only keepalive can notice. New connections still work.
   */
  freeze(): number {
    const n = this.pairs.size;
    for (const pair of [...this.pairs]) {
      const [a, b] = pair;
      a.unpipe(b);
      b.unpipe(a);
      a.pause();
      b.pause();
      this.pairs.delete(pair); // a later cut() leaves them be: they are the dead ones
      this.frozen.add(pair);
    }
    return n;
  }

  /** Cut everything and refuse new connections until unblock(). */
  block(): void {
    this.blocked = true;
    this.cut();
  }

  unblock(): void {
    this.blocked = false;
  }

  close(): Promise<void> {
    this.block();
    for (const [a, b] of this.frozen) {
      a.destroy();
      b.destroy();
    }
    return new Promise((r) => this.server.close(() => r()));
  }
}
