// The unary file operations: list (a page at a time, see listing.ts), stat,
// mkdir, remove, rename. Each takes the request and answers with the parts
// of a FileReply it fills, or throws a FileError.
import type { Stats } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  FileEntry,
  FileList,
  FileMkdir,
  FileRemove,
  FileRename,
  FileStat,
  FileType,
  LIST_DEFAULT_PAGE,
  LIST_MAX_PAGE,
  MAX_AGENT_MESSAGE,
  MAX_CLIENT_MESSAGE,
} from '../../../protocol';
import { FileError, invalid, kindOf, precondition, toFileError } from './errors';
import { firstAfter, type Listings } from './listing';
import type { PathResolver } from './paths';

export function fileType(st: Stats): FileType {
  if (st.isFile()) return FileType.FILE_TYPE_FILE;
  if (st.isDirectory()) return FileType.FILE_TYPE_DIRECTORY;
  if (st.isSymbolicLink()) return FileType.FILE_TYPE_SYMLINK;
  return FileType.FILE_TYPE_OTHER;
}

export function entryOf(name: string, st: Stats, linkTarget = ''): FileEntry {
  return {
    name,
    type: fileType(st),
    size: st.size,
    mode: st.mode & 0o7777,
    mtimeMs: Math.trunc(st.mtimeMs),
    linkTarget,
  };
}

/** lstat, with the link's target for a symlink. */
async function entryAt(name: string, real: string): Promise<FileEntry> {
  const st = await fsp.lstat(real);
  const target = st.isSymbolicLink() ? await fsp.readlink(real).catch(() => '') : '';
  return entryOf(name, st, target);
}

/** lstat()s run this many at a time: a huge directory must not take every libuv thread. */
const LIST_CONCURRENCY = 32;
/**
 * A page's reply must fit in one agent message and in the client's, which
 * is smaller (the control plane forwards the entries as they are). ~40 bytes
 * of fields per entry besides its name and link target.
 */
const LIST_REPLY_BUDGET = Math.min(MAX_AGENT_MESSAGE, MAX_CLIENT_MESSAGE) - 64 * 1024;
const entryBytes = (e: FileEntry) => Buffer.byteLength(e.name) + Buffer.byteLength(e.linkTarget) + 40;

export interface UnaryResult {
  entry?: FileEntry;
  entries?: FileEntry[];
  nextPageToken?: string;
  totalEntries?: number;
}

/**
 * The page size asked for, as served; more than the cap is the cap. 0 without
 * a token is a request from a client older than paging: it gets the whole
 * directory in one reply as it did then (or RESOURCE_EXHAUSTED), never a first
 * page it would take for the whole. 0 with a token (which only paging clients
 * hold) is the default.
 */
export const pageSizeOf = (asked: number, token: string) =>
  asked === 0 ? (token ? LIST_DEFAULT_PAGE : Infinity) : Math.min(asked, LIST_MAX_PAGE);

/**
 * One page of a directory: up to `page_size` entries after the token's name.
 * Only this page's entries are lstat()ed; the page ends early when its reply
 * would outgrow one message (the next token continues from there).
 */
export async function list(r: PathResolver, listings: Listings, req: FileList): Promise<UnaryResult> {
  const p = await r.resolve(req.path, true);
  try {
    const st = await fsp.stat(p.real);
    if (!st.isDirectory()) throw precondition(`not a directory: ${p.shown} is ${kindOf(st)}`);
    // Checked before any reading: a bad token changes nothing (not even the kept snapshot).
    const after = req.pageToken ? listings.after(req.pageToken, p.real, p.shown) : undefined;
    const want = pageSizeOf(req.pageSize, req.pageToken);
    const names = await listings.names(p.real, after === undefined, want);
    const entries: FileEntry[] = [];
    let next = after === undefined ? 0 : firstAfter(names, after);
    let bytes = 0;
    let full = false;
    while (!full && entries.length < want && next < names.length) {
      const batch = names.slice(next, next + Math.min(LIST_CONCURRENCY, want - entries.length));
      // An entry removed since readdir() is simply not listed.
      const got = await Promise.all(batch.map((n) => entryAt(n, path.join(p.real, n)).catch(() => undefined)));
      for (const e of got) {
        if (e) {
          const b = entryBytes(e);
          if (bytes + b > LIST_REPLY_BUDGET && entries.length > 0) {
            full = true;
            break;
          }
          bytes += b;
          entries.push(e);
        }
        next++;
      }
    }
    if (full && want === Infinity) {
      throw new FileError('RESOURCE_EXHAUSTED', `directory too large to list in one reply: ${p.shown} has ${names.length} entries (this client predates paging)`);
    }
    // The token holds the last name this page covered (listed or found gone), never one it did not reach.
    const nextPageToken = next < names.length ? listings.token(p.real, names[next - 1]) : '';
    return { entries, nextPageToken, totalEntries: names.length };
  } catch (e) {
    throw toFileError(e, p.shown);
  }
}

export async function stat(r: PathResolver, req: FileStat): Promise<UnaryResult> {
  const p = await r.resolve(req.path, false);
  try {
    return { entry: await entryAt(req.path, p.real) };
  } catch (e) {
    throw toFileError(e, p.shown);
  }
}

export async function mkdir(r: PathResolver, req: FileMkdir): Promise<UnaryResult> {
  const p = await r.resolve(req.path, true);
  try {
    if (req.parents) {
      await fsp.mkdir(p.real, { recursive: true });
    } else {
      await fsp.mkdir(p.real).catch(async (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') throw new FileError('NOT_FOUND', `no such directory: ${path.dirname(p.shown)} (use -p to create parents)`);
        throw e;
      });
    }
    const st = await fsp.stat(p.real);
    // mkdir -p of something that exists but is not a directory.
    if (!st.isDirectory()) throw new FileError('ALREADY_EXISTS', `already exists and is not a directory: ${p.shown} is ${kindOf(st)}`);
    return { entry: entryOf(req.path, st) };
  } catch (e) {
    throw toFileError(e, p.shown);
  }
}

export async function remove(r: PathResolver, req: FileRemove): Promise<UnaryResult> {
  const p = await r.resolve(req.path, false);
  if (p.real === '/' || (await r.isRoot(p.real))) throw precondition(`refusing to remove ${p.shown}`);
  try {
    const st = await fsp.lstat(p.real);
    if (!st.isDirectory()) {
      await fsp.unlink(p.real); // a symlink is removed, never its target
    } else if (req.recursive) {
      // fs.rm removes symlinks inside the tree as links; it never follows them.
      await fsp.rm(p.real, { recursive: true, force: false });
    } else {
      await fsp.rmdir(p.real).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOTEMPTY' || e.code === 'EEXIST') throw precondition(`directory not empty: ${p.shown} (use -r)`);
        throw e;
      });
    }
    return {};
  } catch (e) {
    throw toFileError(e, p.shown);
  }
}

export async function rename(r: PathResolver, req: FileRename): Promise<UnaryResult> {
  const from = await r.resolve(req.from, false);
  const to = await r.resolve(req.to, false);
  try {
    await fsp.lstat(from.real).catch((e) => {
      throw toFileError(e, from.shown);
    });
    if (!req.overwrite) {
      const exists = await fsp.lstat(to.real).then(
        () => true,
        (e: NodeJS.ErrnoException) => {
          if (e.code === 'ENOENT') return false;
          throw toFileError(e, to.shown);
        },
      );
      if (exists) throw new FileError('ALREADY_EXISTS', `already exists: ${to.shown} (set overwrite to replace it)`);
    }
    await fsp.rename(from.real, to.real).catch((e: NodeJS.ErrnoException) => {
      // rename(2)'s errors about the destination, worded for it.
      switch (e.code) {
        case 'EISDIR':
          throw precondition(`is a directory: ${to.shown} (${from.shown} is not)`);
        case 'ENOTDIR':
          throw precondition(`not a directory: ${to.shown} (${from.shown} is one)`);
        case 'ENOTEMPTY':
        case 'EEXIST':
          throw precondition(`directory not empty: ${to.shown}`);
        case 'EINVAL':
          throw invalid(`cannot move a directory into itself: ${from.shown} -> ${to.shown}`);
        case 'EXDEV':
          throw precondition(`cannot move across file systems: ${from.shown} -> ${to.shown}`);
      }
      throw e;
    });
    return { entry: await entryAt(req.to, to.real) };
  } catch (e) {
    throw toFileError(e, `${from.shown} -> ${to.shown}`);
  }
}
