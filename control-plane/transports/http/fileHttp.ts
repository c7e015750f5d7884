// What the console's file routes (files.ts, fileUploads.ts) share: errors as
// HTTP statuses with a JSON {code, message} body, the request's bearer token
// as gRPC metadata, and a stand-in for a gRPC call so ClientService's own
// streaming handlers (fileService.ts) serve an HTTP exchange, the way the
// gateway hands them WebSocket streams. Rights, audit and routing stay in
// one place.
import { EventEmitter } from 'node:events';
import type http from 'node:http';
import { Metadata, status } from '@grpc/grpc-js';
import { NAME_PATTERN } from '../../../protocol';
import { ApiError, invalid, unauthenticated } from '../../core/errors';

/** HTTP status for each error code (gRPC's own HTTP mapping, with WebDAV's 507 for a full disk). */
const HTTP_STATUS: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  OUT_OF_RANGE: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  FAILED_PRECONDITION: 412,
  DATA_LOSS: 422,
  RESOURCE_EXHAUSTED: 507,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
};

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** More fields for the JSON body (e.g. where an upload really is). */
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Anything thrown or emitted (an ApiError, a handler's gRPC status, an HttpError) as an HttpError. */
export function httpErrorOf(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof ApiError) return new HttpError(HTTP_STATUS[e.code] ?? 500, e.code, e.message);
  const st = e as { code?: unknown; details?: unknown };
  if (st && typeof st === 'object' && typeof st.code === 'number') {
    const code = status[st.code] ?? 'INTERNAL';
    return new HttpError(HTTP_STATUS[code] ?? 500, code, typeof st.details === 'string' ? st.details : code);
  }
  return new HttpError(500, 'INTERNAL', e instanceof Error ? e.message : String(e));
}

/** On every response here: never cached, never sniffed or rendered as a page. */
export const BASE_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export function sendJson(res: http.ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    // Too late for a status: cutting the connection is how the client learns it failed.
    res.destroy();
    return;
  }
  const buf = Buffer.from(JSON.stringify(body));
  res.writeHead(code, { ...BASE_HEADERS, 'Content-Type': 'application/json', 'Content-Length': String(buf.length), ...headers });
  res.end(buf);
}

export function sendError(res: http.ServerResponse, e: unknown): void {
  const h = httpErrorOf(e);
  sendJson(res, h.status, { ...h.extra, code: h.code, message: h.message }, h.status === 401 ? { 'WWW-Authenticate': 'Bearer', ...h.headers } : h.headers);
}

/** The request's Authorization header as the metadata Access.authenticate reads (the token is never taken from the URL). */
export function metadataOf(req: http.IncomingMessage): Metadata {
  const md = new Metadata();
  const header = req.headers.authorization;
  if (header !== undefined && header !== '') {
    try {
      md.set('authorization', header);
    } catch {
      // grpc-js refuses non-ASCII values (its message would quote the token).
      throw unauthenticated('malformed authorization header: expected "Bearer TOKEN"');
    }
  }
  return md;
}

/** How the audit log names an HTTP client (the gateway uses ws:ADDR:PORT). */
export const peerOf = (req: http.IncomingMessage) => `http:${req.socket.remoteAddress ?? ''}:${req.socket.remotePort ?? ''}`;

export function machineParam(q: URLSearchParams): string {
  const m = q.get('machine') ?? '';
  if (!NAME_PATTERN.test(m)) throw invalid(m ? `machine ${JSON.stringify(m)} is not a machine name` : 'machine is required');
  return m;
}

/** A whole number of bytes (size, offset). */
export function byteParam(q: URLSearchParams, name: string): number {
  const v = q.get(name) ?? '';
  const n = /^\d{1,16}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw invalid(`${name} must be a whole number of bytes, not ${JSON.stringify(v)}`);
  return n;
}

export function flagParam(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  if (v === null || v === '0' || v === 'false') return false;
  if (v === '1' || v === 'true') return true;
  throw invalid(`${name} must be 0 or 1, not ${JSON.stringify(v)}`);
}

/**
 * What fileService.ts's download and upload handlers use of a gRPC call.
 * The owner listens for 'error' (a gRPC status) and emits 'cancelled' when
 * the HTTP client goes away, 'drain' when it takes more, and (upload) 'data'
 * and 'end' for the messages the client would have sent.
 */
export class HandlerCall<Req, Out> extends EventEmitter {
  /** Its owner reads message objects: file chunks are not pre-encoded for it (fileService.ts). */
  readonly takesObjects = true;

  constructor(
    readonly request: Req,
    readonly metadata: Metadata,
    private readonly peer: string,
    private readonly out: { write(m: Out): boolean; end(): void },
  ) {
    super();
  }

  getPeer(): string {
    return this.peer;
  }

  write(m: Out): boolean {
    return this.out.write(m);
  }

  end(): void {
    this.out.end();
  }
}
