// What the console's file routes (fileRoutes.ts, fileDownload.ts,
// fileUploads.ts) share: errors as HTTP statuses with a JSON {code,
// message} body, the request's caller, and HttpCall, the core's
// ClientStream over an HTTP exchange, so the core's own file calls
// (core/clientCalls.ts: rights, audit, routing) serve it as they serve gRPC.
import type http from 'node:http';
import { NAME_PATTERN } from '../../../protocol';
import type { Access } from '../../core/access';
import { ApiError, invalid } from '../../core/errors';
import type { CallContext, ClientStream } from '../../core/ports';

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

/** Anything thrown (an ApiError, an HttpError, anything else) as an HttpError. */
export function httpErrorOf(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof ApiError) return new HttpError(HTTP_STATUS[e.code] ?? 500, e.code, e.message);
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

/** The caller of an HTTP request, from its Authorization header (the token is never taken from the URL). */
export async function contextOf(access: Access, req: http.IncomingMessage): Promise<CallContext> {
  return { principal: await access.authenticate(req.headers.authorization), peer: peerOf(req) };
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
 * A core file call's stream over an HTTP exchange: what the core writes goes
 * to `out`; its end with an error to `onFail`. The exchange says when the
 * client takes more (drained) and when it went away (the owner tells the
 * core through the call's Inbound or handle).
 */
export class HttpCall<Out> implements ClientStream<Out> {
  private ended = false;
  private drainListeners: (() => void)[] = [];

  constructor(
    private readonly out: (m: Out) => boolean,
    private readonly onFail: (e: HttpError) => void,
  ) {}

  get closed(): boolean {
    return this.ended;
  }

  write(m: Out): boolean {
    return this.ended ? false : this.out(m);
  }

  end(): void {
    this.ended = true;
  }

  fail(e: ApiError): void {
    if (this.ended) return;
    this.ended = true;
    this.onFail(httpErrorOf(e));
  }

  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  /** The client takes more. */
  drained(): void {
    for (const l of this.drainListeners) l();
  }
}
