// Turning a path from the wire into one on this machine. Absolute paths are
// taken as they are; `~`, `~/...` are under the agent user's home, and
// relative ones too (under the file root instead, when one is set). With a file root configured, the path's real location (after
// `..` and the symlinks of every component that exists) must be inside it:
// checking the text alone would let `root/link-to-etc/passwd` out.
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FileError, invalid, precondition, toFileError } from './errors';

export interface ResolvedPath {
  /** Absolute, normalized, as the user would recognise it: for messages. */
  shown: string;
  /** Where it really is (symlinks of existing components resolved): what is operated on. */
  real: string;
}

export class PathResolver {
  private rootReal: Promise<string> | undefined;

  constructor(
    readonly home: string = os.homedir(),
    readonly root?: string,
  ) {}

  /**
   * `followFinal`: resolve the last component too if it is a symlink (read,
   * write, list act on the target); false for ops that act on the link
   * itself (stat, remove, rename).
   */
  async resolve(p: string, followFinal: boolean): Promise<ResolvedPath> {
    const shown = this.absolute(p);
    let real: string;
    try {
      if (followFinal || shown === '/') real = await realOfDeepest(shown);
      else real = path.join(await realOfDeepest(path.dirname(shown)), path.basename(shown));
    } catch (e) {
      throw toFileError(e, shown);
    }
    if (this.root !== undefined) {
      const root = await this.realRoot();
      if (!inside(real, root)) throw new FileError('OUT_OF_RANGE', `outside the agent's file root: ${shown} (root: ${this.root})`);
    }
    return { shown, real };
  }

  /** True if `real` is the configured root itself (never removed). */
  async isRoot(real: string): Promise<boolean> {
    return this.root !== undefined && real === (await this.realRoot());
  }

  /** The path as an absolute, normalized string (no file system access). */
  absolute(p: string): string {
    if (typeof p !== 'string' || p.length === 0) throw invalid('the path is empty');
    if (p.includes('\0')) throw invalid(`the path contains a NUL byte: ${JSON.stringify(p)}`);
    let abs: string;
    if (p === '~') abs = this.home;
    else if (p.startsWith('~/')) abs = path.join(this.home, p.slice(2));
    else if (path.isAbsolute(p)) abs = p;
    else abs = path.join(this.root ?? this.home, p); // with a root, relative paths start there: home may be outside it
    return path.resolve(abs); // `..`, `.`, repeated and trailing slashes
  }

  private realRoot(): Promise<string> {
    this.rootReal ??= fsp.realpath(path.resolve(this.root!)).catch(() => {
      this.rootReal = undefined; // it may be created later
      throw precondition(`the agent's file root does not exist: ${this.root}`);
    });
    return this.rootReal;
  }
}

function inside(p: string, root: string): boolean {
  if (root === '/') return true;
  return p === root || p.startsWith(root + path.sep);
}

/**
 * realpath() of the deepest existing ancestor of `abs`, with the missing
 * components appended (a file about to be created, a dangling symlink).
 * Errors other than "does not exist" (EACCES, ENOTDIR, ELOOP) are the caller's.
 */
async function realOfDeepest(abs: string): Promise<string> {
  const missing: string[] = [];
  let cur = abs;
  for (;;) {
    try {
      const r = await fsp.realpath(cur);
      return missing.length ? path.join(r, ...missing.reverse()) : r;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || cur === path.dirname(cur)) throw e;
      missing.push(path.basename(cur));
      cur = path.dirname(cur);
    }
  }
}
