// Worker thread: the headless xterms of every PTY terminal on this agent.
// Parsing terminal output is the one expensive step on the agent's output
// path; here it runs beside the main thread instead of in front of it.
import { parentPort } from 'node:worker_threads';
import { Terminal } from '@xterm/headless';
import { SerializeAddon } from '@xterm/addon-serialize';
import type { ScreenRequest, ScreenReply } from './screen';

const SCROLLBACK_LINES = 1000;
interface Screen {
  term: Terminal;
  serializer: SerializeAddon;
  gen: number;
}
const screens = new Map<string, Screen>();
const port = parentPort!;
const reply = (m: ScreenReply) => port.postMessage(m);

function create(cols: number, rows: number, gen: number): Screen {
  // logLevel off: binary output makes the parser complain on every byte.
  const term = new Terminal({ cols, rows, scrollback: SCROLLBACK_LINES, allowProposedApi: true, logLevel: 'off' });
  const serializer = new SerializeAddon();
  term.loadAddon(serializer as any);
  return { term, serializer, gen };
}

port.on('message', (m: ScreenRequest) => {
  switch (m.type) {
    case 'open':
      screens.set(m.id, create(m.cols, m.rows, 0));
      return;
    case 'write':
    case 'reset': {
      let s = screens.get(m.id);
      if (!s) return;
      if (m.type === 'reset') {
        // Output outran parsing: start over from the recent tail. Queued
        // writes of the old terminal are dropped with it.
        const { cols, rows } = s.term;
        s.term.dispose();
        s = create(cols, rows, m.gen);
        screens.set(m.id, s);
      }
      const gen = s.gen;
      const bytes = m.data.byteLength;
      s.term.write(m.data, () => reply({ type: 'parsed', id: m.id, bytes, gen }));
      return;
    }
    case 'resize':
      screens.get(m.id)?.term.resize(m.cols, m.rows);
      return;
    case 'snapshot': {
      const s = screens.get(m.id);
      if (!s) return reply({ type: 'snapshot', id: m.id, req: m.req, data: '', cols: 0, rows: 0 });
      // xterm runs a write's callback before it parses the next write, so
      // this is the screen after exactly the bytes sent before the request.
      s.term.write('', () =>
        reply({ type: 'snapshot', id: m.id, req: m.req, data: s.serializer.serialize(), cols: s.term.cols, rows: s.term.rows }),
      );
      return;
    }
    case 'close':
      screens.get(m.id)?.term.dispose();
      screens.delete(m.id);
      return;
  }
});
