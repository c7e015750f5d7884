// What goes wrong with a file operation, as the FileReply carries it: a gRPC
// status name and a message that names the path, so the user can act on it
// without knowing errno.
import type { Stats } from 'node:fs';

export type FileCode =
  | 'NOT_FOUND'
  | 'PERMISSION_DENIED'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'RESOURCE_EXHAUSTED'
  | 'INVALID_ARGUMENT'
  | 'DATA_LOSS'
  | 'OUT_OF_RANGE'
  | 'UNAVAILABLE';

export class FileError extends Error {
  constructor(
    readonly code: FileCode,
    message: string,
    /** Finer than the code, for what a client acts on (FileReply.reason): "file_changed". */
    readonly reason: '' | 'file_changed' = '',
  ) {
    super(message);
  }
}

export const invalid = (m: string) => new FileError('INVALID_ARGUMENT', m);
export const precondition = (m: string) => new FileError('FAILED_PRECONDITION', m);
/** The file is not the one a resumed download began with: the client starts over from byte 0. */
export const changed = (m: string) => new FileError('FAILED_PRECONDITION', m, 'file_changed');

/** What kind of thing `st` is, as a phrase ("a character device"). */
export function kindOf(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * A thrown error as a FileError about `path` (the path as the user gave it,
 * made absolute). `writing` words disk-full errors.
 */
export function toFileError(e: unknown, path: string, doing: 'reading' | 'writing' | '' = ''): FileError {
  if (e instanceof FileError) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return new FileError('NOT_FOUND', `no such file or directory: ${path}`);
    case 'EACCES':
    case 'EPERM':
      return new FileError('PERMISSION_DENIED', `permission denied: ${path}`);
    case 'EROFS':
      return new FileError('PERMISSION_DENIED', `read-only file system: ${path}`);
    case 'EEXIST':
      return new FileError('ALREADY_EXISTS', `already exists: ${path}`);
    case 'ENOTDIR':
      return precondition(`not a directory: ${path} (or one of its parents)`);
    case 'EISDIR':
      return precondition(`is a directory: ${path}`);
    case 'ENOTEMPTY':
      return precondition(`directory not empty: ${path} (use -r)`);
    case 'ELOOP':
      return precondition(`too many levels of symbolic links: ${path}`);
    case 'EXDEV':
      return precondition(`cannot move across file systems: ${path}`);
    case 'EBUSY':
      return precondition(`busy (in use or a mount point): ${path}`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new FileError('RESOURCE_EXHAUSTED', `disk full ${doing || 'writing'} ${path}`);
    case 'EMFILE':
    case 'ENFILE':
      return new FileError('RESOURCE_EXHAUSTED', `too many open files on the machine (${path})`);
    case 'ENAMETOOLONG':
      return invalid(`name too long: ${path}`);
    case 'EINVAL':
      return invalid(`invalid path or argument: ${path}`);
    case 'EIO':
      return new FileError('DATA_LOSS', `I/O error ${doing || 'on'} ${path}`);
    default: {
      const msg = e instanceof Error ? e.message : String(e);
      return precondition(`${path}: ${msg}`);
    }
  }
}
