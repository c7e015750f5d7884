// File transfers over HTTP on the console's own origin (the control plane's
// /files/... routes, control-plane/console/files.ts), with the page's token
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
// progress.
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
/** Times one part is tried again after the connection failed under it. */
const PART_RETRIES = 3;

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
  body: { code?: string; message?: string; offset?: number; entry?: FileEntry; md5?: string };
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
}

export async function uploadFile(
  token: Token,
  machine: string,
  path: string,
  file: Blob,
  overwrite: boolean,
  onProgress: (loaded: number, total: number) => void,
  signal?: AbortSignal,
): Promise<UploadResult> {
  const size = file.size;
  signal?.throwIfAborted();
  // The open is not aborted mid-way (it is short: the agent checks and opens
  // the file): a cancel that lands after the control plane opened the upload
  // but before its id is read here would leave the upload, and its partial
  // file, for the idle timer. Instead a cancel is seen once the id is known,
  // and the upload is then given up (finally, below).
  const opened = await fetch(`/files/upload?${query({ machine, path, size, overwrite: overwrite ? 1 : 0 })}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${await token()}` },
  });
  if (!opened.ok) throw await errorOf(opened);
  const { id } = (await opened.json()) as { id: string };
  const partUrl = (offset: number) => `/files/upload/${encodeURIComponent(id)}?${query({ offset })}`;
  let ok = false;
  try {
    signal?.throwIfAborted();
    let offset = 0;
    let partSize = FIRST_PART;
    let retries = 0;
    onProgress(0, size);
    // At least one part: an empty file is finished by an empty one.
    for (;;) {
      const end = Math.min(size, offset + partSize);
      const started = performance.now();
      const from = offset;
      const a = await sendPart(partUrl(from), await token(), file.slice(from, end), (n) => onProgress(from + n, size), signal);
      const b = a.body;
      if (a.status === 200 && b.entry) {
        ok = true;
        onProgress(size, size);
        return { entry: b.entry, md5: b.md5 ?? '' };
      }
      if (a.status === 200 && typeof b.offset === 'number') {
        offset = b.offset;
        onProgress(offset, size);
        const rate = (end - from) / Math.max(1, performance.now() - started);
        partSize = Math.max(MIN_PART, Math.min(MAX_PART, 4 * partSize, Math.round(rate * PART_TARGET_MS)));
        retries = 0;
        continue;
      }
      // Lost (0), or cut for taking too long (408): smaller parts, from where the control plane is.
      const resync = a.status === 412 && typeof b.offset === 'number' && retries > 0;
      if ((a.status === 0 || a.status === 408 || resync) && retries++ < PART_RETRIES) {
        if (resync) offset = b.offset!;
        partSize = Math.max(MIN_PART, Math.floor(partSize / 2));
        await new Promise((r) => setTimeout(r, 250 * retries));
        continue;
      }
      throw new FileTransferError(b.code ?? `HTTP_${a.status}`, b.message ?? (a.status ? `HTTP ${a.status}` : 'the connection to the control plane was lost'));
    }
  } finally {
    if (!ok) {
      // Nothing half-written stays on the machine.
      void token()
        .then((t) => fetch(`/files/upload/${encodeURIComponent(id)}`, { method: 'DELETE', headers: { Authorization: `Bearer ${t}` } }))
        .catch(() => {});
    }
  }
}
