// The console's file transfers over plain HTTP on the web port (the
// WebSocket gateway carries the unary file calls; a file's bytes come here,
// where the browser streams them from and to disk on its own):
//
//   GET    /files/access?machine=M               {role}: what the panel may offer
//   GET    /files/download?machine=M&path=P      the file, as an attachment
//   POST   /files/upload?machine=M&path=P&size=N&overwrite=0|1
//                                                {id, offset}: the agent opened it
//   PUT    /files/upload/ID?offset=X             the next part of the file
//   DELETE /files/upload/ID                      give up (nothing is left behind)
//
// Every request carries `Authorization: Bearer TOKEN` (never a token in the
// URL). A cross-site page cannot attach that header (no CORS here), so these
// need no CSRF guard. Downloads and upload opens go through ClientService's
// own handlers (fileService.ts), so who may do what, and the audit, are the
// same code as for the SDK: observers may download, operators everything,
// share tokens nothing. Errors are JSON {code, message} with the status
// fileHttp.ts maps each code to.
//
// Download integrity. The agent sends FileDone with the MD5 of the bytes it
// sent; a browser cannot read an HTTP trailer from fetch and has no
// incremental MD5, so the check is made here, where both are at hand: the
// response declares Content-Length (the file's size), the control plane
// hashes each chunk as it forwards it and holds back the last chunk until
// FileDone has come and matched (MD5 and size). On any mismatch or error the
// connection is cut, so the browser, short of Content-Length bytes, fails the
// download (and the console also checks the count). A browser therefore
// never has a complete-looking file that did not verify; the hop from here
// to the browser is TCP's (or TLS's) to protect.
import crypto from 'node:crypto';
import type http from 'node:http';
import { AttachMode, type DownloadMessage, type DownloadRequest } from '../../protocol';
import type { Access } from '../auth/access';
import type { Registry } from '../registry';
import { BASE_HEADERS, HandlerCall, HttpError, machineParam, metadataOf, peerOf, sendError, sendJson } from './fileHttp';
import { UploadSessions, type StreamHandler } from './fileUploads';

export interface FileRoutesDeps {
  access: Access;
  registry: Registry;
  /** ClientService's streaming file handlers (fileService.ts). */
  handlers: { download: StreamHandler; upload: StreamHandler };
}

export interface FileRoutes {
  /** The web port's handler for /files/...; resolves false for any other path. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean>;
  /** Ends the uploads in progress (the server is stopping). */
  close(): void;
}

const UPLOAD_PART = /^\/files\/upload\/([A-Za-z0-9_-]{1,64})$/;

/** `attachment` with the file's base name, RFC 6266: an ASCII fallback and the UTF-8 original. */
export function attachmentHeader(filePath: string): string {
  const base = filePath.replace(/[\\/]+$/, '').split(/[\\/]/).pop() || 'download';
  const ascii = base.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const utf8 = encodeURIComponent(base).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${utf8}`;
}

export function createFileRoutes(deps: FileRoutesDeps): FileRoutes {
  const uploads = new UploadSessions(deps.access, deps.handlers.upload);

  const notAllowed = (...methods: string[]) =>
    new HttpError(405, 'METHOD_NOT_ALLOWED', `this route takes ${methods.join(' or ')}`, {}, { Allow: methods.join(', ') });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> {
    const target = req.url ?? '/';
    if (!target.startsWith('/files/') && target !== '/files' && !target.startsWith('/files?')) return false;
    try {
      const url = new URL(target, 'http://console.invalid');
      const q = url.searchParams;
      const method = req.method ?? 'GET';
      const part = UPLOAD_PART.exec(url.pathname);
      if (url.pathname === '/files/access') {
        if (method !== 'GET') throw notAllowed('GET');
        await access(req, res, q);
      } else if (url.pathname === '/files/download') {
        if (method !== 'GET') throw notAllowed('GET');
        download(req, res, q);
      } else if (url.pathname === '/files/upload') {
        if (method !== 'POST') throw notAllowed('POST');
        await uploads.open(req, res, q);
      } else if (part) {
        if (method === 'PUT') await uploads.part(req, res, part[1], q);
        else if (method === 'DELETE') await uploads.cancel(req, res, part[1]);
        else throw notAllowed('PUT', 'DELETE');
      } else {
        throw new HttpError(404, 'NOT_FOUND', `no such file route: ${url.pathname}`);
      }
    } catch (e) {
      sendError(res, e);
    }
    return true;
  }

  /** The caller's role on a machine: the panel offers upload, mkdir and delete only to an operator. */
  async function access(req: http.IncomingMessage, res: http.ServerResponse, q: URLSearchParams): Promise<void> {
    const machine = machineParam(q);
    const p = await deps.access.authenticate(metadataOf(req));
    const role = deps.access.roleOn(p, machine);
    sendJson(res, 200, { machine, role: role === AttachMode.OPERATOR ? 'operator' : role === AttachMode.OBSERVER ? 'observer' : 'none' });
  }

  /** Streams one file from the agent; see the top of this file for how it is verified. */
  function download(req: http.IncomingMessage, res: http.ServerResponse, q: URLSearchParams): void {
    const request: DownloadRequest = { machine: machineParam(q), path: q.get('path') ?? '', offset: 0, expectMtimeMs: 0, expectSize: 0 };
    const hash = crypto.createHash('md5');
    let size = -1;
    let received = 0;
    let last: Uint8Array | undefined;
    let over = false;
    const cut = () => {
      if (over) return;
      over = true;
      call.emit('cancelled');
      res.destroy();
    };
    const call = new HandlerCall<DownloadRequest, DownloadMessage>(request, metadataOf(req), peerOf(req), {
      write: (m) => {
        // The client left before the handler listened for that: tell it now.
        if (over) {
          call.emit('cancelled');
          return true;
        }
        const msg = m.msg;
        if (msg?.$case === 'entry') {
          size = msg.value.size;
          res.writeHead(200, {
            ...BASE_HEADERS,
            'Content-Type': 'application/octet-stream',
            'Content-Length': String(size),
            'Content-Disposition': attachmentHeader(request.path),
            'Last-Modified': new Date(msg.value.mtimeMs).toUTCString(),
          });
          // Headers now, so the browser shows the download (and its size) before the first chunk.
          res.flushHeaders();
        } else if (msg?.$case === 'chunk') {
          const c = msg.value;
          if (size < 0 || c.offset !== received || received + c.data.length > size) {
            cut();
            return true;
          }
          hash.update(c.data);
          received += c.data.length;
          if (received < size) return res.write(c.data);
          last = c.data;
        } else if (msg?.$case === 'done') {
          const d = msg.value;
          if (size < 0 || received !== size || d.size !== size || !hash.digest().equals(Buffer.from(d.md5))) {
            cut();
            return true;
          }
          over = true;
          res.end(last);
        }
        return true;
      },
      end: () => {},
    });
    call.on('error', (st: unknown) => {
      if (over) return;
      over = true;
      sendError(res, st); // before the headers: a JSON error; after: the connection is cut
    });
    res.on('drain', () => call.emit('drain'));
    res.on('close', () => {
      if (!over && !res.writableFinished) {
        over = true;
        call.emit('cancelled');
      }
    });
    deps.handlers.download(call);
  }

  return { handle, close: () => uploads.close() };
}
