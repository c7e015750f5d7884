// File transfers over HTTP on the console's own origin (the control plane's
// /files/... routes, control-plane/transports/http/fileRoutes.ts), with the page's token
// in the Authorization header, never in a URL.
//
// Download: fetch, read the body as it comes (progress against
// Content-Length), keep it as Blobs, save through an object URL. The File
// System Access API could stream to disk instead, but it asks where to save
// first and exists only in Chromium; Blobs work in every browser and in the
// desktop app, and Chromium keeps large blobs on disk rather than in the
// page. The control plane verifies the agent's MD5 before it sends the last
// byte and cuts the connection on a mismatch, so a complete body is a
// verified one; here the count is checked against Content-Length.
//
// Upload: POST to open, then the file in parts (File.slice reads from disk
// lazily), each a PUT sized to take a few seconds (the web port gives a
// request 30 s), sent with XMLHttpRequest because fetch reports no upload
// progress. A part that fails because a connection dropped (the page's, or
// the machine's: the control plane then answers 503 {reconnecting}) is not
// the end: the page asks the control plane where the upload is, with
// backoff, for up to the reconnect window (60 s), and goes on from there.
import type { FileEntry } from '../../../../protocol/generated/cmdop/v1/cmdop';

export type Token = () => Promise<string>;
export type Role = 'operator' | 'observer' | 'none';

export class FileTransferError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Chunks gathered into a Blob at this size, so the page holds at most this much of a download itself. */
const BLOB_PIECE = 16 * 1024 * 1024;
/** An upload part should take about this long (far below the web port's 30 s per request). */
const PART_TARGET_MS = 3000;
const MIN_PART = 256 * 1024;
const MAX_PART = 64 * 1024 * 1024;
const FIRST_PART = 1024 * 1024;

const query = (o: Record<string, string | number>) => new URLSearchParams(Object.entries(o).map(([k, v]) => [k, String(v)])).toString();

async function errorOf(r: Response): Promise<FileTransferError> {
  const body = (await r.json().catch(() => undefined)) as { code?: string; message?: string } | undefined;
  return new FileTransferError(body?.code ?? `HTTP_${r.status}`, body?.message ?? `${r.status} ${r.statusText}`);
}

export async function fileRole(token: Token, machine: string): Promise<Role> {
  const r = await fetch(`/files/access?${query({ machine })}`, { headers: { Authorization: `Bearer ${await token()}` }, cache: 'no-store' });
  if (!r.ok) throw await errorOf(r);
  return ((await r.json()) as { role: Role }).role;
}

export async function downloadFile(
  token: Token,
  machine: string,
  path: string,
  onProgress: (loaded: number, total: number) => void,
  signal?: AbortSignal,
): Promise<Blob> {
  const r = await fetch(`/files/download?${query({ machine, path })}`, {
    headers: { Authorization: `Bearer ${await token()}` },
    cache: 'no-store',
    signal,
  });
  if (!r.ok || !r.body) throw await errorOf(r);
  const length = r.headers.get('Content-Length');
  const total = length === null ? NaN : Number(length);
  const reader = r.body.getReader();
  const pieces: Blob[] = [];
  let chunks: Uint8Array<ArrayBuffer>[] = [];
  let pieceBytes = 0;
  let loaded = 0;
  onProgress(0, total);
  for (;;) {
    let step: ReadableStreamReadResult<Uint8Array<ArrayBuffer>>;
    try {
      step = await reader.read();
    } catch (e) {
      if (signal?.aborted) throw e;
      // The control plane cuts the connection when the file fails to verify or the machine drops.
      throw new FileTransferError('DATA_LOSS', `the download broke off after ${loaded} of ${total} bytes; nothing was saved`);
    }
    if (step.done) break;
    chunks.push(step.value);
    loaded += step.value.length;
    pieceBytes += step.value.length;
    if (pieceBytes >= BLOB_PIECE) {
      pieces.push(new Blob(chunks));
      chunks = [];
      pieceBytes = 0;
    }
    onProgress(loaded, total);
  }
  pieces.push(new Blob(chunks));
  if (Number.isFinite(total) && loaded !== total) {
    throw new FileTransferError('DATA_LOSS', `received ${loaded} of ${total} bytes; nothing was saved`);
  }
  return new Blob(pieces, { type: 'application/octet-stream' });
}

/** Hands a Blob to the browser's downloads under `name`. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The browser has started reading it; give a slow disk time before letting go.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

interface PartAnswer {
  status: number;
  body: { code?: string; message?: string; offset?: number; entry?: FileEntry; md5?: string; reconnecting?: boolean };
}

function sendPart(url: string, token: string, body: Blob, onProgress: (loaded: number) => void, signal?: AbortSignal): Promise<PartAnswer> {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    const abort = () => x.abort();
    x.open('PUT', url);
    x.setRequestHeader('Authorization', `Bearer ${token}`);
    x.setRequestHeader('Content-Type', 'application/octet-stream');
    x.upload.onprogress = (e) => onProgress(e.loaded);
    x.onload = () => {
      signal?.removeEventListener('abort', abort);
      let parsed: PartAnswer['body'] = {};
      try {
        parsed = JSON.parse(x.responseText) as PartAnswer['body'];
      } catch {
        // Not ours (a proxy's page): the status says enough.
      }
      resolve({ status: x.status, body: parsed });
    };
    // A connection lost under the part: status 0, tried again from where the control plane is.
    x.onerror = () => {
      signal?.removeEventListener('abort', abort);
      resolve({ status: 0, body: {} });
    };
    x.onabort = () => reject(new DOMException('the upload was cancelled', 'AbortError'));
    signal?.addEventListener('abort', abort, { once: true });
    x.send(body);
  });
}

export interface UploadResult {
  entry: FileEntry;
  md5: string;
  /** Times the upload went on after its connection (to the control plane, or the machine's) was lost. */
  resumes: number;
}

export interface UploadOptions {
  overwrite: boolean;
  onProgress(loaded: number, total: number): void;
  /** True while the upload waits for a lost connection to come back ("reconnecting…"), false once it goes on. */
  onReconnecting?(waiting: boolean): void;
  signal?: AbortSignal;
}

/** How long an upload waits for a lost connection to come back before it fails (the clients' reconnect window). */
export const RECONNECT_WINDOW_MS = 60_000;
const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 4000;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    signal?.throwIfAborted();
    const done = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', done);
      resolve();
    }, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Whether a failed exchange may be tried again: the connection was lost
 * (status 0), the part took too long (408), the control plane says its
 * machine is reconnecting, or a proxy in between answered 502-504 (no JSON
 * of ours). Anything else is the answer (no room, no right, the file is
 * there...), said as it is.
 */
const retryable = (a: PartAnswer) =>
  a.status === 0 || a.status === 408 || a.body.reconnecting === true || (a.status >= 502 && a.status <= 504 && a.body.code === undefined);

const failure = (a: PartAnswer) =>
  new FileTransferError(a.body.code ?? `HTTP_${a.status}`, a.body.message ?? (a.status ? `HTTP ${a.status}` : 'the connection to the control plane was lost'));

export async function uploadFile(token: Token, machine: string, path: string, file: Blob, o: UploadOptions): Promise<UploadResult> {
  const { signal, onProgress } = o;
  const size = file.size;
  signal?.throwIfAborted();
  // The open is not aborted mid-way (it is short: the agent checks and opens
  // the file): a cancel that lands after the control plane opened the upload
  // but before its id is read here would leave the upload, and its partial
  // file, for the idle timer. Instead a cancel is seen once the id is known,
  // and the upload is then given up (finally, below).
  const opened = await fetch(`/files/upload?${query({ machine, path, size, overwrite: o.overwrite ? 1 : 0 })}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${await token()}` },
  });
  if (!opened.ok) throw await errorOf(opened);
  const { id } = (await opened.json()) as { id: string };
  const uploadUrl = `/files/upload/${encodeURIComponent(id)}`;

  /** Where the control plane is with the upload: {offset} to go on from, or {entry} if it finished and the answer was lost. */
  const whereNow = async (): Promise<PartAnswer> => {
    try {
      const r = await fetch(uploadUrl, { headers: { Authorization: `Bearer ${await token()}` }, cache: 'no-store', signal });
      return { status: r.status, body: ((await r.json().catch(() => ({}))) ?? {}) as PartAnswer['body'] };
    } catch (e) {
      if (signal?.aborted) throw e;
      return { status: 0, body: {} };
    }
  };

  /**
   * After a part failed: ask the control plane where the upload is, with
   * backoff, until it answers (it reopens the upload on the machine when the
   * machine is back) or the reconnect window passes.
   */
  const resync = async (lost: PartAnswer, at: number): Promise<PartAnswer> => {
    const since = performance.now();
    let wait = BACKOFF_FIRST_MS;
    let last = lost;
    o.onReconnecting?.(true);
    for (;;) {
      if (performance.now() - since >= RECONNECT_WINDOW_MS) {
        throw new FileTransferError(
          'UNAVAILABLE',
          `the connection was lost at byte ${at} of ${size} and did not come back within ${RECONNECT_WINDOW_MS / 1000} s, so ${path} was not uploaded` +
            (last.body.message ? ` (${last.body.message})` : ''),
        );
      }
      await sleep(Math.min(wait, Math.max(0, RECONNECT_WINDOW_MS - (performance.now() - since))), signal);
      wait = Math.min(BACKOFF_MAX_MS, wait * 2);
      const a = await whereNow();
      if (a.status === 200) {
        o.onReconnecting?.(false);
        return a;
      }
      if (!retryable(a)) throw failure(a);
      last = a;
    }
  };

  let ok = false;
  try {
    signal?.throwIfAborted();
    let offset = 0;
    let partSize = FIRST_PART;
    let resumes = 0;
    onProgress(0, size);
    // At least one part: an empty file is finished by an empty one.
    for (;;) {
      const end = Math.min(size, offset + partSize);
      const started = performance.now();
      const from = offset;
      let a = await sendPart(`${uploadUrl}?${query({ offset: from })}`, await token(), file.slice(from, end), (n) => onProgress(from + n, size), signal);
      if (a.status !== 200) {
        // A part that started at the wrong offset (412 with where the upload is) is put right the same way.
        if (!retryable(a) && !(a.status === 412 && typeof a.body.offset === 'number')) throw failure(a);
        // Cut under it: smaller parts from now on.
        if (a.status === 0 || a.status === 408) partSize = Math.max(MIN_PART, Math.floor(partSize / 2));
        a = await resync(a, from);
        resumes++;
      } else {
        const rate = (end - from) / Math.max(1, performance.now() - started);
        partSize = Math.max(MIN_PART, Math.min(MAX_PART, 4 * partSize, Math.round(rate * PART_TARGET_MS)));
      }
      const b = a.body;
      if (b.entry) {
        ok = true;
        onProgress(size, size);
        return { entry: b.entry, md5: b.md5 ?? '', resumes };
      }
      if (typeof b.offset !== 'number') throw new FileTransferError('INTERNAL', `the control plane did not say where the upload is (HTTP ${a.status})`);
      offset = b.offset;
      onProgress(offset, size);
    }
  } finally {
    if (!ok) {
      // Nothing half-written stays on the machine.
      void token()
        .then((t) => fetch(uploadUrl, { method: 'DELETE', headers: { Authorization: `Bearer ${t}` } }))
        .catch(() => {});
    }
  }
}
