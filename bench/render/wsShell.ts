// A reference point for the console render bench: the same `cat` through the
// same WebSocket gateway to a client that renders nothing. It is the SDK's
// gateway client (sdk/gateway.ts, what the console uses) on the `ws` package,
// in the bench process, acknowledging each output message as it arrives. Its
// MB/s is what the agent, control plane and gateway deliver on this machine
// without a browser: the console cannot be faster than that, whatever the page
// does.
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { AttachMode, GATEWAY_PATH } from '../../protocol';
import { shellSpec } from '../../protocol/terminalSpec';
import { GatewayConnection, type GatewayStreamHandle, type WebSocketConstructor } from '../../sdk/gateway';

export interface WsShell {
  /** Sets the prompt and measures the shell's own bytes around a command (like the console side). */
  prepare(prompt: string): Promise<void>;
  /** Runs `command`, resolves with ms from sending Enter to the last of `bytes` (+ the shell's bytes) received. */
  timed(command: string, bytes: number, timeoutMs: number): Promise<number>;
  close(): void;
}

export async function openWsShell(webUrl: string, token: string, machine: string, cols: number, rows: number): Promise<WsShell> {
  const conn = new GatewayConnection(webUrl.replace(/^http/, 'ws') + GATEWAY_PATH, token, WebSocket as unknown as WebSocketConstructor);
  await conn.opened;
  let received = 0;
  let tail = '';
  let wake: (() => void) | undefined;
  let ended: string | undefined;
  const handle: GatewayStreamHandle = conn.openStream(
    {
      msg: {
        $case: 'attach',
        value: {
          machine,
          terminalId: '',
          mode: AttachMode.OPERATOR,
          fromSeq: undefined,
          acks: true,
          open: { machine, spec: shellSpec({ cols, rows }) },
        },
      },
    },
    {
      message(m) {
        if (m.msg?.$case !== 'output') return;
        const { seq, data } = m.msg.value;
        received += data.length;
        tail = (tail + Buffer.from(data.buffer, data.byteOffset, data.length).toString('latin1')).slice(-256);
        handle.send({ msg: { $case: 'ack', value: { seq: seq + data.length, exit: false } } });
        wake?.();
      },
      end(e) {
        ended = e ? `${e.code}: ${e.message}` : 'the stream ended';
        wake?.();
      },
    },
  );
  /** Resolves once `ok()` holds, checked after every output message. */
  const until = (ok: () => boolean, timeoutMs: number, what: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(tail.slice(-80))}`)), timeoutMs);
      const done = (e?: Error) => {
        clearTimeout(timer);
        wake = undefined;
        if (e) reject(e);
        else resolve();
      };
      wake = () => {
        if (ended) done(new Error(`${what}: ${ended}`));
        else if (ok()) done();
      };
      wake();
    });
  const input = (s: string) => handle.send({ msg: { $case: 'input', value: { data: Buffer.from(s), eof: false, ref: '' } } });
  let prompt = '';
  let shellBytes = 0;
  const endsWithPrompt = () => tail.endsWith(`\n${prompt}`) || tail.endsWith(`\r${prompt}`) || tail.endsWith(`h${prompt}`);

  return {
    async prepare(p) {
      await until(() => /[#$] $/.test(tail), 30_000, 'the first prompt');
      prompt = p;
      input(`PROMPT_COMMAND=; PS1='${p}'\r`);
      await until(endsWithPrompt, 10_000, 'the new prompt');
      // The shell's own bytes after Enter, as on the console side.
      input('cat /dev/null');
      await until(() => tail.endsWith('cat /dev/null'), 10_000, 'the echo');
      const b0 = received;
      input('\r');
      await until(endsWithPrompt, 10_000, 'the prompt after cat /dev/null');
      await new Promise((r) => setTimeout(r, 300));
      shellBytes = received - b0;
    },
    async timed(command, bytes, timeoutMs) {
      input(command);
      await until(() => tail.endsWith(command), 10_000, 'the echo');
      const b0 = received;
      const t0 = performance.now();
      input('\r');
      await until(() => received - b0 >= bytes + shellBytes, timeoutMs, `${bytes + shellBytes} bytes`);
      return performance.now() - t0;
    },
    close() {
      handle.close();
      conn.close();
    },
  };
}
