// Worker thread: the headless xterms of every PTY terminal on this agent.
// Parsing terminal output is the one expensive step on the agent's output
// path; here it runs beside the main thread instead of in front of it.
import { parentPort } from 'node:worker_threads';
import { Terminal } from '@xterm/headless';
import { SerializeAddon } from '@xterm/addon-serialize';
import type { ScreenRequest, ScreenReply } from './screen';
import { writeBatch } from './screenFeed';
import { PendingSequence, serializeScreen } from './screenState';

const SCROLLBACK_LINES = 1000;
interface Screen {
  term: Terminal;
  serializer: SerializeAddon;
  /** The sequence the output last stopped inside of, if any. */
  pending: PendingSequence;
  /** Requests not handled yet, in the order they came; writes wait for the parser. */
  queue: ScreenRequest[];
  /** A batch is being parsed, or a flood's next batch is left to grow: the queue waits. */
  busy: boolean;
  /** Set while a flood's next batch is left to grow (see FLOOD_BATCH_MS). */
  growing?: NodeJS.Timeout;
}

/**
 * After a batch that had lines to skip (a flood), the next one waits this
 * long to grow: the lines the screen keeps (scrollback + 2 × rows) are
 * parsed once per batch, so bigger batches skip a larger share. Bounded by
 * the main thread's MAX_BACKLOG (2 MiB), under which a PTY at 100 MB/s stays
 * for ~20 ms; a request other than a write (a snapshot) ends the wait at once.
 */
const FLOOD_BATCH_MS = 10;

/** CMDOP_SCREEN_SKIP=0 parses every byte of a flood (to measure what skipping is worth). */
const SKIP_FLOOD_LINES = process.env.CMDOP_SCREEN_SKIP !== '0';
const screens = new Map<string, Screen>();
const port = parentPort!;
const reply = (m: ScreenReply, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

function create(cols: number, rows: number): Screen {
  // logLevel off: binary output makes the parser complain on every byte.
  const term = new Terminal({ cols, rows, scrollback: SCROLLBACK_LINES, allowProposedApi: true, logLevel: 'off' });
  const serializer = new SerializeAddon();
  // The addon is typed against @xterm/xterm's Terminal; the headless one has the same API.
  term.loadAddon(serializer as unknown as Parameters<Terminal['loadAddon']>[0]);
  return { term, serializer, pending: new PendingSequence(), queue: [], busy: false };
}

port.on('message', (m: ScreenRequest) => {
  if (m.type === 'open') {
    screens.set(m.id, create(m.cols, m.rows));
    return;
  }
  const s = screens.get(m.id);
  if (!s) {
    if (m.type === 'write') reply({ type: 'parsed', id: m.id, bytes: m.data.byteLength });
    else if (m.type === 'snapshot') reply({ type: 'snapshot', id: m.id, req: m.req, data: new Uint8Array(0), cols: 0, rows: 0 });
    return;
  }
  s.queue.push(m);
  if (m.type !== 'write' && s.growing) {
    clearTimeout(s.growing);
    s.growing = undefined;
    s.busy = false;
  }
  pump(m.id, s);
});

/**
 * Handles a screen's requests in order. Every write that arrived while the
 * previous batch was parsed becomes one batch (screenFeed.ts): a flood comes
 * in faster than it is parsed, so its batches grow until most of each is
 * lines that scroll away unseen, which are not parsed.
 */
function pump(id: string, s: Screen): void {
  while (!s.busy && s.queue.length) {
    const m = s.queue[0];
    if (m.type === 'write') {
      let n = 0;
      while (n < s.queue.length && s.queue[n].type === 'write') n++;
      const writes = s.queue.splice(0, n) as Extract<ScreenRequest, { type: 'write' }>[];
      const data = writes.length === 1 ? writes[0].data : Buffer.concat(writes.map((w) => w.data));
      s.busy = true;
      writeBatch(s.term, data, SCROLLBACK_LINES, (last, skipped) => {
        s.pending.update(s.term, last);
        reply({ type: 'parsed', id, bytes: data.byteLength });
        if (skipped > 0) {
          s.growing = setTimeout(() => {
            s.growing = undefined;
            s.busy = false;
            if (screens.get(id) === s) pump(id, s);
          }, FLOOD_BATCH_MS);
          return;
        }
        s.busy = false;
        if (screens.get(id) === s) pump(id, s);
      }, SKIP_FLOOD_LINES);
      return;
    }
    s.queue.shift();
    switch (m.type) {
      case 'resize':
        s.term.resize(m.cols, m.rows);
        break;
      case 'snapshot': {
        // Every write sent before the request is parsed (the queue keeps the
        // order), so this is the screen after exactly those bytes; a sequence
        // the output stopped inside of follows the screen as it came, so the
        // joiner's parser is where the operator's is.
        const data = Buffer.concat([Buffer.from(serializeScreen(s.term, s.serializer)), s.pending.data]);
        const out = new Uint8Array(data); // its own ArrayBuffer, transferred
        reply({ type: 'snapshot', id, req: m.req, data: out, cols: s.term.cols, rows: s.term.rows }, [out.buffer]);
        break;
      }
      case 'close':
        s.term.dispose();
        screens.delete(id);
        s.queue.length = 0;
        return;
    }
  }
}
