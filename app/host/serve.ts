// The host side of the channel (channel.ts), the same under Electron and
// under Node: in a utilityProcess the parent is `process.parentPort`
// (messages arrive as {data}); under child_process.fork (tests, and the app
// run by plain Node) it is `process.send` and process 'message'. That
// difference lives here and nowhere else; the hosts only answer calls.
import { HOST_EXIT, type FromHost, type Methods, type ToHost } from './channel';

/** The part of Electron's ParentPort used here (this folder never imports electron). */
interface ParentPortLike {
  on(event: 'message', listener: (e: { data: unknown }) => void): unknown;
  postMessage(message: unknown): void;
}

interface Parent {
  send(m: unknown): void;
  onMessage(fn: (m: unknown) => void): void;
  /** The main process went away. Node: the IPC channel closed. Electron ends utility processes with the app. */
  onGone(fn: () => void): void;
}

function parent(): Parent {
  const port = (process as { parentPort?: ParentPortLike }).parentPort;
  if (port) {
    return { send: (m) => port.postMessage(m), onMessage: (fn) => port.on('message', (e) => fn(e.data)), onGone: () => {} };
  }
  const send = process.send?.bind(process);
  if (!send) throw new Error('a CMDOP host process is started by the desktop app (no parent channel here)');
  return {
    send: (m) => void send(m),
    onMessage: (fn) => process.on('message', fn),
    onGone: (fn) => process.once('disconnect', fn),
  };
}

export type Handlers<C extends Methods<C>> = { [M in keyof C]: (params: C[M]['params']) => Promise<C[M]['result']> };

/** After a quit, the host exits on its own within this even if stopping hangs (the main process kills it a little later anyway). */
const STOP_LIMIT_MS = 15_000;

/**
 * Answers the main process's calls with `handlers`; on quit, SIGTERM/SIGINT
 * or the parent gone, runs `stop` once and exits. Returns how to report events.
 */
export function serveHost<C extends Methods<C>, E>(handlers: Handlers<C>, stop: () => Promise<void>): { emit(body: E): void } {
  const p = parent();
  const send = (m: FromHost<E>) => {
    try {
      p.send(m);
    } catch {
      // The parent is gone; onGone ends this process.
    }
  };
  let stopping = false;
  const quit = (code: number) => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(code), STOP_LIMIT_MS).unref();
    stop().then(
      () => process.exit(code),
      (e: Error) => {
        process.stderr.write(`cmdop host: stopping failed: ${e.message}\n`);
        process.exit(code || 1);
      },
    );
  };
  p.onMessage((raw) => {
    const m = raw as ToHost<C>;
    if (m.type === 'quit') return quit(HOST_EXIT.ok);
    if (m.type !== 'request') return;
    const handler = handlers[m.method] as ((params: unknown) => Promise<unknown>) | undefined;
    if (!handler) return send({ type: 'reply', id: m.id, ok: false, error: { name: 'Error', message: `no method ${String(m.method)}` } });
    handler(m.params).then(
      (result) => send({ type: 'reply', id: m.id, ok: true, result }),
      (e: Error) => send({ type: 'reply', id: m.id, ok: false, error: { name: e?.name ?? 'Error', message: e?.message ?? String(e) } }),
    );
  });
  p.onGone(() => quit(HOST_EXIT.parentGone));
  process.once('SIGTERM', () => quit(HOST_EXIT.ok));
  process.once('SIGINT', () => quit(HOST_EXIT.ok));
  return { emit: (body) => send({ type: 'event', body }) };
}
