// Worker thread: the headless xterms of every PTY terminal on this agent.
// Parsing terminal output is the one expensive step on the agent's output
// path; here it runs beside the main thread instead of in front of it.
import { parentPort } from 'node:worker_threads';
import { Terminal } from '@xterm/headless';
import { SerializeAddon } from '@xterm/addon-serialize';
import type { ScreenRequest, ScreenReply } from './screen';
import { PendingSequence, serializeScreen } from './screenState';

const SCROLLBACK_LINES = 1000;
interface Screen {
  term: Terminal;
  serializer: SerializeAddon;
  /** The sequence the output last stopped inside of, if any. */
  pending: PendingSequence;
}
const screens = new Map<string, Screen>();
const port = parentPort!;
const reply = (m: ScreenReply, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

function create(cols: number, rows: number): Screen {
  // logLevel off: binary output makes the parser complain on every byte.
  const term = new Terminal({ cols, rows, scrollback: SCROLLBACK_LINES, allowProposedApi: true, logLevel: 'off' });
  const serializer = new SerializeAddon();
  // The addon is typed against @xterm/xterm's Terminal; the headless one has the same API.
  term.loadAddon(serializer as unknown as Parameters<Terminal['loadAddon']>[0]);
  return { term, serializer, pending: new PendingSequence() };
}

port.on('message', (m: ScreenRequest) => {
  switch (m.type) {
    case 'open':
      screens.set(m.id, create(m.cols, m.rows));
      return;
    case 'write': {
      const s = screens.get(m.id);
      const bytes = m.data.byteLength;
      if (!s) return reply({ type: 'parsed', id: m.id, bytes });
      s.term.write(m.data, () => {
        s.pending.update(s.term, m.data);
        reply({ type: 'parsed', id: m.id, bytes });
      });
      return;
    }
    case 'resize':
      screens.get(m.id)?.term.resize(m.cols, m.rows);
      return;
    case 'snapshot': {
      const s = screens.get(m.id);
      if (!s) return reply({ type: 'snapshot', id: m.id, req: m.req, data: new Uint8Array(0), cols: 0, rows: 0 });
      // xterm runs a write's callback before it parses the next write, so
      // this is the screen after exactly the bytes sent before the request;
      // a sequence the output stopped inside of follows the screen as it
      // came, so the joiner's parser is where the operator's is.
      s.term.write('', () => {
        const data = Buffer.concat([Buffer.from(serializeScreen(s.term, s.serializer)), s.pending.data]);
        const out = new Uint8Array(data); // its own ArrayBuffer, transferred
        reply({ type: 'snapshot', id: m.id, req: m.req, data: out, cols: s.term.cols, rows: s.term.rows }, [out.buffer]);
      });
      return;
    }
    case 'close':
      screens.get(m.id)?.term.dispose();
      screens.delete(m.id);
      return;
  }
});
