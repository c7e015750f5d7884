// What one process boundary costs on this machine before CMDOP does
// anything: the floor under the hop trace's figures (bench/hops.ts). A child
// node process echoes small messages back, over (1) a bare TCP socket with
// Nagle off and (2) a grpc-js bidirectional stream with identity
// serializers (no protobuf), the transport every CMDOP hop uses. Each round
// trip crosses two boundaries, so a boundary is about half of it.
//
// A keystroke's echo crosses four boundaries in CMDOP (client → control
// plane → agent, and back) and two in ssh, plus the PTY: these floors say
// how much of the echo target is left for CMDOP's own work.
//
// Run as a child (argv[2] === 'serve'), it prints the two ports and serves
// until stdin closes.
import net from 'node:net';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { percentile } from './stats';

const identity = {
  serialize: (b: Buffer) => b,
  deserialize: (b: Buffer) => b,
};
const ECHO: grpc.ServiceDefinition = {
  Echo: {
    path: '/floor.Floor/Echo',
    requestStream: true,
    responseStream: true,
    requestSerialize: identity.serialize,
    requestDeserialize: identity.deserialize,
    responseSerialize: identity.serialize,
    responseDeserialize: identity.deserialize,
  },
};

async function serve(): Promise<void> {
  const tcp = net.createServer({ noDelay: true }, (s) => s.on('data', (d) => s.write(d)));
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const server = new grpc.Server();
  // noDelay, as the control plane sets it (control-plane/transports/grpc/server.ts).
  (server as unknown as { commonServerOptions: { noDelay?: boolean } }).commonServerOptions.noDelay = true;
  server.addService(ECHO, {
    Echo: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (d: Buffer) => call.write(d));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  process.stdout.write(`${(tcp.address() as net.AddressInfo).port} ${port}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

export interface FloorResult {
  /** Round trips (ms) over bare TCP and over a grpc-js stream. */
  tcp: number[];
  grpc: number[];
}

/** `n` sequential round trips of a 32-byte message each way, after `warmup` untimed ones. */
async function pingPong(send: (b: Buffer) => void, onData: (cb: () => void) => void, n: number, warmup: number): Promise<number[]> {
  const out: number[] = [];
  const msg = Buffer.alloc(32, 0x61);
  for (let i = 0; i < warmup + n; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      onData(resolve);
      send(msg);
    });
    if (i >= warmup) out.push(performance.now() - t0);
    // A person types: a pause between keys, so each trip starts from idle event loops like a keystroke's does.
    await new Promise((r) => setTimeout(r, 2));
  }
  return out;
}

export async function measureBoundaryFloor(samples: number): Promise<FloorResult> {
  const child = spawn(process.execPath, [__filename, 'serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const ports = await new Promise<number[]>((resolve, reject) => {
      child.once('error', reject);
      child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim().split(' ').map(Number)));
    });
    const warmup = 50;

    const sock = net.connect({ host: '127.0.0.1', port: ports[0], noDelay: true });
    await new Promise<void>((r) => sock.once('connect', () => r()));
    let tcpWaiter: (() => void) | undefined;
    sock.on('data', () => tcpWaiter?.());
    const tcp = await pingPong((b) => sock.write(b), (cb) => (tcpWaiter = cb), samples, warmup);
    sock.destroy();

    const Client = grpc.makeGenericClientConstructor(ECHO, 'Floor');
    const client = new Client(`127.0.0.1:${ports[1]}`, grpc.credentials.createInsecure());
    const call = (client as unknown as { Echo(): grpc.ClientDuplexStream<Buffer, Buffer> }).Echo();
    let grpcWaiter: (() => void) | undefined;
    call.on('data', () => grpcWaiter?.());
    call.on('error', () => {});
    const g = await pingPong((b) => call.write(b), (cb) => (grpcWaiter = cb), samples, warmup);
    call.end();
    client.close();
    return { tcp, grpc: g };
  } finally {
    child.stdin!.end();
    child.kill();
  }
}

export function floorReport(r: FloorResult): string[] {
  const line = (label: string, xs: number[]) =>
    `  ${label}: round trip p50 ${percentile(xs, 50).toFixed(3)} p99 ${percentile(xs, 99).toFixed(3)} ms; ` +
    `one boundary ≈ ${(percentile(xs, 50) / 2).toFixed(3)} ms (p50 / 2)`;
  return [
    'Floor under the hops: two node processes on loopback, 32-byte messages, one at a time',
    line('bare TCP (noDelay)', r.tcp),
    line('grpc-js bidi stream', r.grpc),
    `  a keystroke crosses 4 boundaries in CMDOP (2 in ssh): 4 × grpc-js boundary = ${((percentile(r.grpc, 50) / 2) * 4).toFixed(2)} ms ` +
      `before any work of CMDOP's or the PTY's`,
  ];
}

if (require.main === module && process.argv[2] === 'serve') void serve();
