// Observers for the observer figure (issue 3), several per process: each is
// an SDK TerminalAttachment in OBSERVER mode from offset 0, on a connection
// of its own (like observers on different machines), checking every byte it
// gets (StreamChecker) until the terminal's exit. Run as a child of the bench
// (bench/observers.ts), over the IPC channel:
//
//   argv[2]: JSON { server, token, machine, count, blockBytes } (token: a bearer token for every attach stream)
//   parent -> child: { t: 'watch', terminalId } (attach `count` observers to it)
//                    { t: 'finish', terminalId } (report now, finished or not)
//   child -> parent: { t: 'ready' }; { t: 'attached', terminalId } once all are attached;
//                    { t: 'done', terminalId, observers: ObserverReport[], lags: number[] }
//                    once every one has the terminal's exit
import * as grpc from '@grpc/grpc-js';
import { AttachMode, ClientServiceDefinition, DEFAULT_TIMEOUTS, HTTP2_WINDOW, MAX_CLIENT_MESSAGE, toGrpcService } from '../protocol';
import { TerminalAttachment } from '../sdk';
import type { AttachCall, AttachTransport } from '../sdk/attachment';
import { StreamChecker, now } from './streamFormat';

export interface ObserverReport {
  bytes: number;
  badBytes: number;
  gaps: number;
  gapBytes: number;
  /** The terminal's final offset, from its exit; -1 when the exit never came. */
  finalSeq: number;
  firstAt: number;
  lastAt: number;
  blocksTimed: number;
  reconnects: number;
  error: string;
}

interface Config {
  server: string;
  token: string;
  machine: string;
  count: number;
  blockBytes: number;
}

const ClientServiceClient = grpc.makeGenericClientConstructor(toGrpcService(ClientServiceDefinition), 'ClientService');

const send = (m: object) => process.send?.(m);

/** The SDK client's channel options and metadata (sdk/client.ts), on a connection of its own. */
function transport(server: string, token: string): { t: AttachTransport; close(): void } {
  const metadata = () => {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    return md;
  };
  const c = new ClientServiceClient(server, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
    'grpc.max_receive_message_length': 8 * 1024 * 1024,
    'grpc.max_send_message_length': MAX_CLIENT_MESSAGE,
    'grpc.keepalive_time_ms': DEFAULT_TIMEOUTS.keepaliveS * 1000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc-node.flow_control_window': HTTP2_WINDOW,
  });
  return {
    t: {
      server,
      heartbeatIntervalMs: DEFAULT_TIMEOUTS.heartbeatIntervalS * 1000,
      reconnectTimeoutMs: 60_000,
      openStream: () => (c as any).attach(metadata()) as AttachCall,
    },
    close: () => c.close(),
  };
}

/** `count` observers on one terminal; resolves once all are attached, with a way to collect their reports. */
async function watch(cfg: Config, terminalId: string): Promise<{ done: Promise<void>; report(): { observers: ObserverReport[]; lags: number[] } }> {
  const reports: ObserverReport[] = [];
  const checkers: StreamChecker[] = [];
  const closers: (() => void)[] = [];
  const done: Promise<void>[] = [];
  for (let i = 0; i < cfg.count; i++) {
    const tr = transport(cfg.server, cfg.token);
    closers.push(tr.close);
    const checker = new StreamChecker(cfg.blockBytes);
    checkers.push(checker);
    const r: ObserverReport = {
      bytes: 0, badBytes: 0, gaps: 0, gapBytes: 0, finalSeq: -1, firstAt: 0, lastAt: 0, blocksTimed: 0, reconnects: 0, error: '',
    };
    reports.push(r);
    const a = await TerminalAttachment.start(tr.t, {
      machine: cfg.machine,
      terminalId,
      open: undefined,
      mode: AttachMode.OBSERVER,
      fromSeq: 0,
      acks: true,
    });
    closers.push(() => a.close());
    a.on('output', (data, chunk) => {
      const at = now();
      if (r.firstAt === 0) r.firstAt = at;
      r.lastAt = at;
      // `data` is the chunk minus any part already delivered (a re-attach overlap).
      checker.add(chunk.seq + chunk.data.length - data.length, data, at);
    });
    a.on('gap', (g) => {
      r.gaps++;
      r.gapBytes += g.toSeq - g.fromSeq;
    });
    a.on('reconnecting', () => r.reconnects++);
    done.push(
      a.done.then(
        (exit) => void (r.finalSeq = exit.finalSeq),
        (e: Error) => void (r.error = e.message),
      ),
    );
  }
  return {
    done: Promise.all(done).then(() => {}),
    report() {
      const lags: number[] = [];
      for (let i = 0; i < reports.length; i++) {
        const c = checkers[i];
        Object.assign(reports[i], { bytes: c.bytes, badBytes: c.badBytes, blocksTimed: c.blocksTimed });
        for (const l of c.lags) lags.push(Math.round(l * 100) / 100);
      }
      for (const close of closers) close();
      return { observers: reports, lags };
    },
  };
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2]) as Config;
  const watching = new Map<string, { report(): { observers: ObserverReport[]; lags: number[] } }>();
  const finish = (terminalId: string) => {
    const w = watching.get(terminalId);
    if (!w) return;
    watching.delete(terminalId);
    send({ t: 'done', terminalId, ...w.report() });
  };
  process.on('message', (m: { t: string; terminalId: string }) => {
    if (m.t === 'watch') {
      watch(cfg, m.terminalId).then(
        (w) => {
          watching.set(m.terminalId, w);
          send({ t: 'attached', terminalId: m.terminalId });
          void w.done.then(() => finish(m.terminalId));
        },
        (e: Error) => {
          process.stderr.write(`observers could not attach to ${m.terminalId}: ${e.stack ?? e.message}\n`);
          process.exit(1);
        },
      );
    } else if (m.t === 'finish') {
      finish(m.terminalId);
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ t: 'ready' });
}

main().catch((e: Error) => {
  process.stderr.write(`observer simulator failed: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
