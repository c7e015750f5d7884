// The console's HTTP file routes (control-plane/transports/http/fileRoutes.ts)
// in process, against a fake of the core's calls, for what a real agent
// cannot be made to do on cue: an upload's agent call cut off while it opens
// or verifies, and a download whose MD5 does not match. The routes end to end,
// with a real control plane, agent and browser: e2e/console/files.spec.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventually } from './helpers/cluster';
import { createFileRoutes } from '../control-plane/transports/http/fileRoutes';
import type { CallContext, ClientStream, Inbound } from '../control-plane/core/ports';
import type { ClientCalls } from '../control-plane/core/clientCalls';
import { ApiError } from '../control-plane/core/errors';
import { FileType, type DownloadMessage, type UploadMessage, type UploadReply } from '../protocol';

describe('file routes in process', () => {
  it('an upload whose agent call is cut off while it opens or verifies fails, then is opened once more only to discard its partial file (in process)', async () => {
    // The agent's side, as the core's upload call relays it: each call is one open on the agent.
    interface AgentCall {
      stream: ClientStream<UploadReply>;
      open?: Extract<UploadMessage['msg'], { $case: 'open' }>['value'];
      cancelled?: { discard?: boolean };
    }
    const calls: AgentCall[] = [];
    const opensOf = (transferId: string) => calls.filter((x) => x.open?.transferId === transferId);
    /** What the fake agent does with each message: cut the call off (UNAVAILABLE) at `cutAt`, else answer as an agent would. */
    let cutAt: 'open' | 'done' = 'open';
    const cut = (c: AgentCall) => setImmediate(() => c.stream.fail(new ApiError('UNAVAILABLE', 'the file traffic moved to its own connection')));
    const routes = createFileRoutes({
      access: { authenticate: async () => ({ user: { id: 'u1' } }), requireUser: () => {}, require: () => {}, audit: () => {} } as never,
      calls: {
        download: () => ({ gone: () => {} }),
        upload: (_ctx: CallContext, stream: ClientStream<UploadReply>): Inbound<UploadMessage> => {
          const c: AgentCall = { stream };
          calls.push(c);
          return {
            message: (m) => {
              const msg = m.msg;
              if (msg?.$case === 'open') {
                c.open = msg.value;
                const reopen = opensOf(msg.value.transferId).length > 1;
                if (cutAt === 'open' && !reopen) return cut(c);
                stream.write({ msg: { $case: 'opened', value: { resumeOffset: reopen ? msg.value.size : 0 } } });
              } else if (msg?.$case === 'chunk') {
                stream.write({ msg: { $case: 'ack', value: { requestId: 0, offset: msg.value.offset + msg.value.data.length } } });
              } else if (msg?.$case === 'done' && cutAt === 'done') cut(c);
            },
            end: () => {},
            gone: (_reason, discard) => (c.cancelled = discard ? { discard } : {}),
          };
        },
      } as unknown as ClientCalls,
    });
    const server = http.createServer((req, res) => void routes.handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/files/upload`;
    const discarded = async (transferId: string) => {
      await eventually(() => opensOf(transferId)[1]?.cancelled !== undefined, 5000, 'a second open of the same transfer id, then its cancel');
      assert.equal(opensOf(transferId).length, 2, 'opened once more, once');
      assert.deepEqual(opensOf(transferId)[1].cancelled, { discard: true }, 'only to discard its partial file');
    };
    try {
      // Cut off while it opens: the POST fails, and the partial file the agent may have made is discarded.
      let r = await fetch(`${base}?machine=box&path=/tmp/a.bin&size=10`, { method: 'POST' });
      assert.equal(r.status, 503);
      assert.match((await r.json()).message, /moved to its own connection/);
      await discarded(calls[0].open!.transferId);
      const before = calls.length;

      // Cut off while the agent verifies the last part: the PUT says whether it arrived is not known; the partial file is discarded.
      cutAt = 'done';
      r = await fetch(`${base}?machine=box&path=/tmp/b.bin&size=10`, { method: 'POST' });
      assert.equal(r.status, 200);
      const { id } = (await r.json()) as { id: string };
      r = await fetch(`${base}/${id}?offset=0`, { method: 'PUT', body: new Uint8Array(10) });
      assert.equal(r.status, 503);
      assert.match((await r.json()).message, /dropped while it verified the uploaded file/);
      await discarded(calls[before].open!.transferId);
    } finally {
      routes.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('a download whose MD5 does not match the agent’s is cut short, never completed (in process)', async () => {
    const file = Buffer.from('hello, verified world\n');
    const md5 = crypto.createHash('md5').update(file).digest();
    let sendMd5 = md5;
    const routes = createFileRoutes({
      access: { authenticate: async () => ({ user: { id: 'u1' } }), audit: () => {} } as never,
      calls: {
        // The agent's side of a download, as the core's download call relays it: entry, chunks, done.
        download: (_ctx: CallContext, _req: unknown, call: ClientStream<DownloadMessage>) => {
          const entry = { name: 'f', type: FileType.FILE_TYPE_FILE, size: file.length, mode: 0o644, mtimeMs: Date.now(), linkTarget: '' };
          call.write({ msg: { $case: 'entry', value: entry } });
          call.write({ msg: { $case: 'chunk', value: { requestId: 1, offset: 0, data: file.subarray(0, 10) } } });
          call.write({ msg: { $case: 'chunk', value: { requestId: 1, offset: 10, data: file.subarray(10) } } });
          setTimeout(() => {
            call.write({ msg: { $case: 'done', value: { requestId: 1, md5: sendMd5, size: file.length } } });
            call.end();
          }, 50);
          return { gone: () => {} };
        },
      } as unknown as ClientCalls,
    });
    const server = http.createServer((req, res) => void routes.handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/files/download?machine=box&path=f`;
    const get = () =>
      new Promise<{ status: number; got: Buffer; complete: boolean }>((resolve) => {
        const parts: Buffer[] = [];
        http.get(url, (res) => {
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('error', () => {}); // a cut response: 'close' says how far it got
          res.on('close', () => resolve({ status: res.statusCode ?? 0, got: Buffer.concat(parts), complete: res.complete }));
        });
      });
    try {
      const good = await get();
      assert.deepEqual(good, { status: 200, got: file, complete: true });
      sendMd5 = Buffer.alloc(16);
      const bad = await get();
      assert.equal(bad.complete, false, 'the response is cut');
      assert.deepEqual(bad.got, file.subarray(0, 10), 'the last chunk was held back: the bytes before it only');
    } finally {
      routes.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
