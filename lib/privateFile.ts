// Files only their owner may read (tokens, keys, pins), written so that a
// reader never sees half of one: the CLI's sign-ins, an agent's credential,
// pinned certificates and the TLS key all go through here.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export function mkdirPrivate(dir: string, tighten = false): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (tighten) fs.chmodSync(dir, 0o700);
}

/**
 * Write via a temp file in the same directory and rename, so readers see the
 * old or the new file, never half. The file is created with `mode` (minus the
 * umask) from the start, so a private key is never briefly world-readable.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode: number): void {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  try {
    const fd = fs.openSync(tmp, 'wx', mode);
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** A JSON object in a 0600 file (directory 0700), replaced atomically. */
export function writePrivateJson(file: string, data: unknown): void {
  mkdirPrivate(path.dirname(file));
  writeFileAtomic(file, JSON.stringify(data, null, 2) + '\n', 0o600);
}
