// GET /files/download: one file from the agent, through the core's own
// download call (core/clientCalls.ts: rights and audit), as an HTTP response
// that a browser's download manager, curl -C - or wget -c can resume.
//
// Integrity of a whole file (200). The agent sends FileDone with the MD5 of
// the bytes it sent; a browser cannot read an HTTP trailer from fetch and
// has no incremental MD5, so the check is made here, where both are at hand:
// the response declares Content-Length (the file's size), the control plane
// hashes each chunk as it forwards it and holds back the last chunk until
// FileDone has come and matched (MD5 and size). On any mismatch or error the
// connection is cut, so the browser, short of Content-Length bytes, fails
// the download (and the console also checks the count). A browser therefore
// never has a complete-looking file that did not verify; the hop from here
// to the browser is TCP's (or TLS's) to protect.
//
// Resume (206). Every response names the file's version with a strong ETag
// made of the agent's size and mtime (the same pair the SDK's resume checks)
// and says Accept-Ranges: bytes. `Range: bytes=N-` (N > 0) is served as 206
// with Content-Range from byte N, when If-Range is absent or is the current
// ETag; a changed file answers 200 with all of it, so a resumed download
// never splices two versions. If-Match that does not match answers 412, and
// so does If-Unmodified-Since before the file's mtime (Chromium's parallel
// downloads send these instead of If-Range).
// Other Range forms (suffixes, bounded or several ranges) and an If-Range
// date (one-second granularity cannot prove a file unchanged) are ignored:
// the whole file, 200, as HTTP allows.
//
// What a 206 guarantees is less than a 200: the agent's MD5 covers the
// whole file and this side sees only the tail, so it cannot be compared.
// What is checked: the file is the version the client names (size and mtime
// when the agent opened it), the bytes come in order and add up to exactly
// the file's size, and the agent read to the end (its FileDone, with that
// size) before the last chunk is released. Not caught: a file rewritten in
// place with its size and mtime kept, or damage in transit to either part.
// The SDK and CLI verify the whole-file MD5 across their resumes.
import crypto from 'node:crypto';
import type http from 'node:http';
import type { DownloadMessage, DownloadRequest, FileEntry } from '../../../protocol';
import type { ClientCalls } from '../../core/clientCalls';
import type { CallContext } from '../../core/ports';
import { BASE_HEADERS, HttpCall, HttpError, machineParam, sendError } from './fileHttp';

/** The strong validator of a file version: its size and mtime as the agent saw them when it opened the file. */
export const etagOf = (e: Pick<FileEntry, 'size' | 'mtimeMs'>) => `"${e.size.toString(36)}-${Math.trunc(e.mtimeMs).toString(36)}"`;

/** `bytes=N-` (the one form served); undefined for anything else, which is then ignored. */
export function parseRange(header: string | undefined): number | undefined {
  const m = /^\s*bytes\s*=\s*(\d{1,16})-\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** If-Match's entity tags ('*' for any); weak tags never match a strong comparison, so they are dropped. */
function parseIfMatch(header: string | undefined): string[] | undefined {
  if (header === undefined) return undefined;
  if (header.trim() === '*') return ['*'];
  return [...header.matchAll(/(W\/)?("[^"]*")/g)].filter((m) => !m[1]).map((m) => m[2]);
}

const isStrongTag = (v: string) => /^"[^"]*"$/.test(v.trim());

/** `attachment` with the file's base name, RFC 6266: an ASCII fallback and the UTF-8 original. */
export function attachmentHeader(filePath: string): string {
  const base = filePath.replace(/[\\/]+$/, '').split(/[\\/]/).pop() || 'download';
  const ascii = base.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const utf8 = encodeURIComponent(base).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${utf8}`;
}

/** Why a request from `from` cannot be served: 416 says how long the file is, so the client can tell. */
const unsatisfiable = (from: number, size: number) =>
  new HttpError(416, 'OUT_OF_RANGE', `byte ${from} is past the end of the file (${size} bytes)`, { size }, { 'Content-Range': `bytes */${size}` });

/** `ctx`: the caller, authenticated by the route from the request's Authorization header. */
export function serveDownload(calls: ClientCalls, ctx: CallContext, req: http.IncomingMessage, res: http.ServerResponse, q: URLSearchParams): void {
  const machine = machineParam(q);
  const path = q.get('path') ?? '';
  const header = (name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  };
  const rawIfRange = header('if-range');
  const ifRange = rawIfRange !== undefined && isStrongTag(rawIfRange) ? rawIfRange.trim() : undefined;
  const ifMatch = parseIfMatch(header('if-match'));
  // Ignored when If-Match is there (RFC 9110 13.1.4), or when it is not a date.
  const unmodifiedSince = ifMatch === undefined ? Date.parse(header('if-unmodified-since') ?? '') : NaN;
  const asked = parseRange(header('range'));
  // Served as a range only from N > 0 (bytes=0- is the whole file, verified), and not against an If-Range date.
  const from = asked !== undefined && asked > 0 && (rawIfRange === undefined || ifRange !== undefined) ? asked : 0;

  /** The agent's download under way (there are two when a range turns out to be stale or past the end). */
  let current: { call: HttpCall<DownloadMessage>; gone(reason: string): void } | undefined;
  let finished = false;
  res.on('drain', () => current?.call.drained());
  res.on('close', () => {
    if (!finished && !res.writableFinished) {
      finished = true;
      current?.gone('the client went away');
    }
  });

  /**
   * One read from the agent at `offset`. `probe`: the range was past the end
   * (OUT_OF_RANGE, before any header): read from 0 to learn whether the file
   * changed (then it is served whole) or the range really is unsatisfiable.
   */
  const attempt = (offset: number, probe: boolean) => {
    const request: DownloadRequest = { machine, path, offset, expectMtimeMs: 0, expectSize: 0 };
    const hash = crypto.createHash('md5');
    let size = -1;
    let received = offset;
    let last: Uint8Array | undefined;
    let over = false;
    /** Gives up this read: the agent is told, and the client gets `e` (or, past the headers, a cut connection). */
    const stop = (e?: unknown) => {
      if (over) return;
      over = true;
      handle?.gone('the download was given up');
      if (finished) return;
      finished = true;
      if (e === undefined || res.headersSent) res.destroy();
      else sendError(res, e);
    };
    const entry = (e: FileEntry) => {
      size = e.size;
      const tag = etagOf(e);
      if (ifMatch && !ifMatch.includes('*') && !ifMatch.includes(tag)) {
        return stop(new HttpError(412, 'FAILED_PRECONDITION', `${path} has changed: it is ${tag} now, not ${ifMatch.join(', ')}`, { etag: tag }, { ETag: tag }));
      }
      // HTTP dates have whole seconds: the mtime is compared at that granularity.
      if (Number.isFinite(unmodifiedSince) && Math.floor(e.mtimeMs / 1000) * 1000 > unmodifiedSince) {
        return stop(new HttpError(412, 'FAILED_PRECONDITION', `${path} was modified at ${new Date(e.mtimeMs).toUTCString()}`, { etag: tag }, { ETag: tag }));
      }
      const changed = ifRange !== undefined && ifRange !== tag;
      if (probe && !changed) return stop(unsatisfiable(from, size));
      if (offset > 0 && changed) {
        // Another version than the one the client has the start of: all of it, from 0.
        over = true;
        handle?.gone('the file changed: serving it whole');
        return attempt(0, false);
      }
      if (offset > 0 && offset >= size) return stop(unsatisfiable(offset, size));
      const headers: Record<string, string> = {
        ...BASE_HEADERS,
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(size - offset),
        'Content-Disposition': attachmentHeader(path),
        'Last-Modified': new Date(e.mtimeMs).toUTCString(),
        ETag: tag,
        'Accept-Ranges': 'bytes',
      };
      if (offset > 0) headers['Content-Range'] = `bytes ${offset}-${size - 1}/${size}`;
      res.writeHead(offset > 0 ? 206 : 200, headers);
      // Headers now, so the browser shows the download (and its size) before the first chunk.
      res.flushHeaders();
    };
    let handle: { gone(reason: string): void } | undefined;
    const write = (m: DownloadMessage): boolean => {
        // The client left (or this read was given up) before the call was under way: tell it now.
        if (over || finished) {
          handle?.gone('the download was given up');
          return true;
        }
        const msg = m.msg;
        if (msg?.$case === 'entry') {
          entry(msg.value);
        } else if (msg?.$case === 'chunk') {
          const c = msg.value;
          if (size < 0 || c.offset !== received || received + c.data.length > size) {
            stop();
            return true;
          }
          if (offset === 0) hash.update(c.data);
          received += c.data.length;
          if (received < size) return res.write(c.data);
          last = c.data;
        } else if (msg?.$case === 'done') {
          const d = msg.value;
          // From byte 0 the agent's MD5 is compared; from N, what can be (see the top of this file).
          const verified = offset === 0 ? hash.digest().equals(Buffer.from(d.md5)) : true;
          if (size < 0 || received !== size || d.size !== size || !verified) {
            stop();
            return true;
          }
          over = finished = true;
          res.end(last);
        }
        return true;
    };
    const call = new HttpCall<DownloadMessage>(write, (err) => {
      if (over || finished) return;
      if (err.code === 'OUT_OF_RANGE' && offset > 0 && !probe && size < 0) {
        over = true;
        return attempt(0, true);
      }
      stop(err); // before the headers: a JSON error; after: the connection is cut
    });
    handle = calls.download(ctx, request, call);
    current = { call, gone: handle.gone };
  };

  attempt(from, false);
}
