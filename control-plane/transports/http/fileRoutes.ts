// The console's file transfers over plain HTTP on the web port (the
// WebSocket gateway carries the unary file calls; a file's bytes come here,
// where the browser streams them from and to disk on its own):
//
//   GET    /files/access?machine=M               {role}: what the panel may offer
//   GET    /files/download?machine=M&path=P      the file, as an attachment (Range: bytes=N- resumes it)
//   POST   /files/upload?machine=M&path=P&size=N&overwrite=0|1
//                                                {id, offset}: the agent opened it
//   PUT    /files/upload/ID?offset=X             the next part of the file
//   GET    /files/upload/ID                      {offset}: where to go on from after a part failed
//   DELETE /files/upload/ID                      give up (nothing is left behind)
//
// Every request carries `Authorization: Bearer TOKEN` (never a token in the
// URL). A cross-site page cannot attach that header (no CORS here), so these
// need no CSRF guard. Downloads and uploads go through the core's own file
// calls (core/clientCalls.ts), so who may do what, and the audit, are the
// same code as for the SDK: observers may download, operators everything,
// share tokens nothing. Errors are JSON {code, message} with the status
// fileHttp.ts maps each code to.
//
// Downloads (fileDownload.ts) are verified against the agent's MD5 before
// their last byte, and resumable with Range/If-Range; uploads (fileUploads.ts)
// go in parts and resume after a dropped connection.
import type http from 'node:http';
import { AttachMode } from '../../../protocol';
import type { Access } from '../../core/access';
import type { ClientCalls } from '../../core/clientCalls';
import { isRefusal } from '../../core/errors';
import { serveDownload } from './fileDownload';
import { HttpError, contextOf, machineParam, peerOf, sendError, sendJson } from './fileHttp';
import { UploadSessions } from './fileUploads';

export interface FileRoutesDeps {
  access: Access;
  calls: ClientCalls;
  /** How long a console upload waits for its machine to come back (default UPLOAD_RESUME_MS). */
  uploadResumeMs?: number;
}

export interface FileRoutes {
  /** The web port's handler for /files/...; resolves false for any other path. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean>;
  /** Ends the uploads in progress (the server is stopping). */
  close(): void;
}

const UPLOAD_PART = /^\/files\/upload\/([A-Za-z0-9_-]{1,64})$/;

export function createFileRoutes(deps: FileRoutesDeps): FileRoutes {
  const uploads = new UploadSessions(deps.access, deps.calls, deps.uploadResumeMs);

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
        const machine = machineParam(q);
        const ctx = await contextOf(deps.access, req).catch((e: unknown) => {
          if (isRefusal(e)) deps.access.audit(undefined, { action: 'file-read', ok: false, detail: e.message, peer: peerOf(req), machine });
          throw e;
        });
        serveDownload(deps.calls, ctx, req, res, q);
      } else if (url.pathname === '/files/upload') {
        if (method !== 'POST') throw notAllowed('POST');
        await uploads.open(req, res, q);
      } else if (part) {
        if (method === 'PUT') await uploads.part(req, res, part[1], q);
        else if (method === 'GET') await uploads.status(req, res, part[1]);
        else if (method === 'DELETE') await uploads.cancel(req, res, part[1]);
        else throw notAllowed('GET', 'PUT', 'DELETE');
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
    const p = (await contextOf(deps.access, req)).principal;
    const role = await deps.access.roleOn(p, machine);
    sendJson(res, 200, { machine, role: role === AttachMode.OPERATOR ? 'operator' : role === AttachMode.OBSERVER ? 'observer' : 'none' });
  }

  return { handle, close: () => uploads.close() };
}
