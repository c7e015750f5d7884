// The unary file operations: list, stat, mkdir, remove, rename. Each takes
// the request and answers with the parts of a FileReply it fills, or throws
// a FileError.
import type { Stats } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { FileEntry, FileList, FileMkdir, FileRemove, FileRename, FileStat, FileType, MAX_AGENT_MESSAGE } from '../../../protocol';
import { FileError, invalid, kindOf, precondition, toFileError } from './errors';
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
/** A listing's reply must fit in one agent message (names are bytes; ~40 bytes of fields each). */
const LIST_REPLY_BUDGET = MAX_AGENT_MESSAGE - 64 * 1024;

export interface UnaryResult {
  entry?: FileEntry;
  entries?: FileEntry[];
}

export async function list(r: PathResolver, req: FileList): Promise<UnaryResult> {
  const p = await r.resolve(req.path, true);
  try {
    const st = await fsp.stat(p.real);
    if (!st.isDirectory()) throw precondition(`not a directory: ${p.shown} is ${kindOf(st)}`);
    const names = await fsp.readdir(p.real);
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    let bytes = 0;
    for (const n of names) bytes += Buffer.byteLength(n) + 40;
    if (bytes > LIST_REPLY_BUDGET) {
      throw new FileError('RESOURCE_EXHAUSTED', `directory too large to list in one reply: ${p.shown} has ${names.length} entries`);
    }
    const entries: (FileEntry | undefined)[] = new Array(names.length);
    for (let i = 0; i < names.length; i += LIST_CONCURRENCY) {
      await Promise.all(
        names.slice(i, i + LIST_CONCURRENCY).map(async (n, j) => {
          // An entry removed since readdir() is simply not listed.
          entries[i + j] = await entryAt(n, path.join(p.real, n)).catch(() => undefined);
        }),
      );
    }
    return { entries: entries.filter((e): e is FileEntry => e !== undefined) };
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
