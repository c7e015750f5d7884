// ClientService's file calls: who may do what, then routing through the
// machine's FileRouter (files.ts). Operators may do everything; observers
// (a grant) may list, stat and download; share links may do nothing here.
import crypto from 'node:crypto';
import type { ServerDuplexStream, ServerWritableStream } from '@grpc/grpc-js';
import {
  AttachMode,
  DownloadMessage,
  DownloadRequest,
  FileEntry,
  FilePathRequest,
  ListFilesRequest,
  ListFilesResponse,
  MakeDirectoryRequest,
  MAX_FILE_CHUNK,
  MAX_PAGE_TOKEN,
  MAX_UPLOAD_IN_FLIGHT,
  RemoveFileRequest,
  RemoveFileResponse,
  RenameFileRequest,
  UploadMessage,
  UploadReply,
  FILE_CHUNK_FIELD,
  encodeFileChunkEnvelope,
} from '../../../protocol';
import { authedUnary } from './unary';
import { ApiError, invalid, toStatus } from '../../core/errors';
import type { Access, Principal } from '../../core/access';
import type { Registry } from '../../core/registry';

function checkPath(path: string, what = 'path'): void {
  if (!path) throw invalid(`${what} is empty`);
  if (path.includes('\0')) throw invalid(`${what} contains a NUL byte`);
  if (Buffer.byteLength(path) > 4096) throw invalid(`${what} is longer than 4096 bytes`);
}

/**
 * The transfer id the agent is given: the client's, bound to its user. The
 * agent resumes a partial file for whoever opens its transfer id (taking it
 * over from an older upload still holding it), and the id can be seen in the
 * hidden file's name; bound to the user, another user who opens the same id
 * gets a partial file of their own and cannot take over, append to or end
 * someone else's upload.
 */
export function agentTransferId(userId: string, transferId: string): string {
  return crypto.createHash('sha256').update(`${userId}\0${transferId}`).digest('base64url').slice(0, 32);
}

export function fileServiceHandlers(registry: Registry, access: Access) {
  /** The machine's router, once `p` may act as `mode` on it. */
  const routerFor = (p: Principal, machine: string, mode: AttachMode) => {
    access.require(p, machine, mode);
    return registry.machine(machine).files;
  };
  const audit = (p: Principal | undefined, action: string, machine: string, detail: string, peer: string, ok = true) =>
    access.audit(p, { action, machine, detail, peer, ok });

  return {
    // One page; the agent sizes it and checks the token (which is opaque here).
    listFiles: authedUnary<ListFilesRequest, ListFilesResponse>(access, 'file-list', async (req, p) => {
      checkPath(req.path);
      if (req.pageToken.length > MAX_PAGE_TOKEN) throw invalid(`page_token is longer than ${MAX_PAGE_TOKEN} characters: not one an agent issued`);
      const r = await routerFor(p, req.machine, AttachMode.OBSERVER).request({
        $case: 'list',
        value: { path: req.path, pageSize: req.pageSize, pageToken: req.pageToken },
      });
      return { entries: r.entries, nextPageToken: r.nextPageToken, totalEntries: r.totalEntries };
    }),

    statFile: authedUnary<FilePathRequest, FileEntry>(access, 'file-stat', async (req, p) => {
      checkPath(req.path);
      const r = await routerFor(p, req.machine, AttachMode.OBSERVER).request({ $case: 'stat', value: { path: req.path } });
      return r.entry!;
    }),

    makeDirectory: authedUnary<MakeDirectoryRequest, FileEntry>(access, 'file-mkdir', async (req, p, peer) => {
      checkPath(req.path);
      const r = await routerFor(p, req.machine, AttachMode.OPERATOR).request({ $case: 'mkdir', value: { path: req.path, parents: req.parents } });
      audit(p, 'file-mkdir', req.machine, req.path, peer);
      return r.entry!;
    }),

    removeFile: authedUnary<RemoveFileRequest, RemoveFileResponse>(access, 'file-remove', async (req, p, peer) => {
      checkPath(req.path);
      await routerFor(p, req.machine, AttachMode.OPERATOR).request({ $case: 'remove', value: { path: req.path, recursive: req.recursive } });
      audit(p, 'file-remove', req.machine, `${req.path}${req.recursive ? ' (recursive)' : ''}`, peer);
      return {};
    }),

    renameFile: authedUnary<RenameFileRequest, FileEntry>(access, 'file-rename', async (req, p, peer) => {
      checkPath(req.from, 'from');
      checkPath(req.to, 'to');
      const r = await routerFor(p, req.machine, AttachMode.OPERATOR).request({
        $case: 'rename',
        value: { from: req.from, to: req.to, overwrite: req.overwrite },
      });
      audit(p, 'file-rename', req.machine, `${req.from} -> ${req.to}`, peer);
      return r.entry!;
    }),

    download(call: ServerWritableStream<DownloadRequest, DownloadMessage>): void {
      const req = call.request;
      const peer = call.getPeer();
      const objects = 'takesObjects' in call; // console/fileHttp.ts's HandlerCall
      let principal: Principal | undefined;
      let finished = false;
      let handle: ReturnType<ReturnType<Registry['machine']>['files']['download']> | undefined;
      const fail = (e: unknown) => {
        if (finished) return;
        finished = true;
        if (e instanceof ApiError && (e.code === 'PERMISSION_DENIED' || e.code === 'UNAUTHENTICATED')) {
          audit(principal, 'file-read', req.machine, e.message, peer, false);
        }
        call.emit('error', toStatus(e));
      };
      // Listened for from the start: a client gone while its token is checked must not leave a read open on the agent.
      call.on('cancelled', () => {
        finished = true;
        handle?.cancel('the client went away');
      });
      access
        .authenticate(call.metadata)
        .then((p) => {
          if (finished) return;
          principal = p;
          checkPath(req.path);
          const router = routerFor(p, req.machine, AttachMode.OBSERVER);
          if (req.offset === 0) audit(p, 'file-read', req.machine, req.path, peer);
          handle = router.download(
            { path: req.path, offset: req.offset, expectMtimeMs: req.expectMtimeMs, expectSize: req.expectSize },
            {
              entry: (e) => call.write({ msg: { $case: 'entry', value: e } }),
              // For a gRPC call, encoded here with one copy (Encoded passes through the serializer,
              // protocol/grpc.ts); the console's HTTP adapter reads the object.
              chunk: (c) =>
                call.write(
                  objects ? { msg: { $case: 'chunk', value: c } } : (encodeFileChunkEnvelope(FILE_CHUNK_FIELD.download, c.requestId, c.offset, c.data) as unknown as DownloadMessage),
                ),
              done: (d) => {
                finished = true;
                call.write({ msg: { $case: 'done', value: d } });
                call.end();
              },
              fail,
            },
          );
          // The client's buffer emptied: the agent may send more.
          call.on('drain', () => handle?.resume());
        })
        .catch(fail);
    },

    upload(call: ServerDuplexStream<UploadMessage, UploadReply>): void {
      const peer = call.getPeer();
      let principal: Principal | undefined;
      let handle: ReturnType<ReturnType<Registry['machine']>['files']['upload']> | undefined;
      let opening = false;
      let finished = false;
      let doneSent = false;
      let machine = '';
      let path = '';
      /** Next offset expected from the client, and what the agent has written. */
      let sent = 0;
      let written = 0;
      const fail = (e: unknown) => {
        if (finished) return;
        finished = true;
        handle?.cancel(e instanceof Error ? e.message : String(e));
        if (e instanceof ApiError && (e.code === 'PERMISSION_DENIED' || e.code === 'UNAUTHENTICATED')) {
          audit(principal, 'file-write', machine, e.message, peer, false);
        }
        call.emit('error', toStatus(e));
      };
      // The token is checked as the stream opens: a bad one ends it with
      // UNAUTHENTICATED at once, whether or not the client ever sends `open`.
      const authenticated = access.authenticate(call.metadata);
      authenticated.catch(fail);
      const open = async (o: Extract<UploadMessage['msg'], { $case: 'open' }>['value']) => {
        machine = o.machine;
        path = o.path;
        principal = await authenticated;
        if (finished) return; // the client went away while its token was checked
        checkPath(o.path);
        if (!o.transferId || !/^[A-Za-z0-9_-]{1,64}$/.test(o.transferId)) throw invalid('transfer_id must be 1-64 letters, digits, - or _');
        const router = routerFor(principal, o.machine, AttachMode.OPERATOR);
        handle = router.upload(
          { path: o.path, size: o.size, mode: o.mode, overwrite: o.overwrite, transferId: agentTransferId(principal.user.id, o.transferId) },
          {
            opened: (resumeOffset) => {
              sent = written = resumeOffset;
              call.write({ msg: { $case: 'opened', value: { resumeOffset } } });
            },
            ack: (a) => {
              written = a.offset;
              call.write({ msg: { $case: 'ack', value: a } });
            },
            done: (e) => {
              finished = true;
              audit(principal, 'file-write', machine, `${path} (${e.size} bytes)`, peer);
              call.write({ msg: { $case: 'done', value: e } });
              call.end();
            },
            fail,
          },
        );
      };
      call.on('data', (m: UploadMessage) => {
        if (finished) return;
        const msg = m.msg;
        if (!handle) {
          if (opening) return fail(new ApiError('FAILED_PRECONDITION', 'wait for `opened` before sending chunks'));
          if (msg?.$case !== 'open') return fail(invalid('the first message of an upload must be open'));
          opening = true;
          open(msg.value).catch(fail);
          return;
        }
        if (msg?.$case === 'chunk') {
          const c = msg.value;
          if (c.data.length === 0 || c.data.length > MAX_FILE_CHUNK) return fail(invalid(`a chunk must be 1 byte to ${MAX_FILE_CHUNK} bytes, not ${c.data.length}`));
          if (c.offset !== sent) return fail(invalid(`chunk at offset ${c.offset}, expected ${sent}: chunks must come in order`));
          sent += c.data.length;
          if (sent - written > MAX_UPLOAD_IN_FLIGHT) {
            return fail(new ApiError('RESOURCE_EXHAUSTED', `more than ${MAX_UPLOAD_IN_FLIGHT} bytes sent without acknowledgement: wait for acks`));
          }
          handle.chunk({ offset: c.offset, data: c.data });
        } else if (msg?.$case === 'done') {
          doneSent = true;
          handle.done({ md5: msg.value.md5, size: msg.value.size });
        } else {
          fail(invalid('after open, an upload carries only chunk and done'));
        }
      });
      call.on('end', () => {
        if (!finished && !doneSent) fail(new ApiError('FAILED_PRECONDITION', 'the upload ended before `done`: the partial file is kept for a resume'));
      });
      // `discard`: a client that will not resume (the console's HTTP uploads) has the partial file removed.
      call.on('cancelled', (o?: { discard?: boolean }) => {
        finished = true;
        handle?.cancel('the client went away', !!o?.discard);
      });
    },
  };
}
