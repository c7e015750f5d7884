// File commands in scp's habits: `cmdop cp SRC DST` where either side may be
// MACHINE:PATH, `-r` for directories, a progress bar on a terminal; and
// `ls`, `rm`, `mkdir`, `mv` on MACHINE:PATH. Any failure exits non-zero with
// the reason; with -r, every file that failed is named and the exit is 1.
// (Their options are in ../commands/files.ts.)
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { FileType, LIST_MAX_PAGE } from '../../protocol';
import type { CmdopClient } from '../../sdk';
import { NotFoundError, fileTypeName } from '../../sdk';
import { clientFor } from '../connection';
import { LsWriter } from '../lsOutput';
import { fail } from '../output';
import { Progress } from '../progress';
import { parseLocation, type Location } from '../remotePath';
import { keepFreedMemoryForReuse } from '../../lib/mallocReuse';

export async function cp(src: string, dst: string, o: { recursive?: boolean; clobber: boolean; quiet?: boolean }, cmd: Command): Promise<void> {
  const from = parseLocation(src);
  const to = parseLocation(dst);
  if (from.machine && to.machine) fail('copying between two machines is not supported: copy to this computer first');
  if (!from.machine && !to.machine) fail('neither side is remote: write MACHINE:PATH for the machine side (use cp for local copies)');
  keepFreedMemoryForReuse();
  const client = await clientFor(cmd);
  const progress = new Progress(!o.quiet && !!process.stderr.isTTY);
  const copier = new Copier(client, progress, { recursive: !!o.recursive, overwrite: o.clobber !== false });
  try {
    if (from.machine) await copier.download(from, to.path);
    else await copier.upload(from.path, to);
  } catch (e) {
    progress.stop();
    fail((e as Error).message);
  } finally {
    progress.stop();
    client.close();
  }
  if (copier.failures.length) {
    for (const f of copier.failures) process.stderr.write(`cmdop: ${f}\n`);
    fail(`${copier.failures.length} of ${copier.files} files were not copied`);
  }
}

export async function ls(target: string, o: { long?: boolean; all?: boolean; json?: boolean }, cmd: Command): Promise<void> {
  const loc = remote(target);
  const client = await clientFor(cmd, { machine: loc.machine });
  // `cmdop ls box:/big | head`: the reader left, which is no failure.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' ? process.exit(0) : fail(e.message)));
  const out = new LsWriter(o.json ? 'json' : o.long ? 'long' : 'names', !o.all);
  try {
    const st = await client.files.stat(loc.path);
    if (st.type === FileType.FILE_TYPE_DIRECTORY) {
      // Printed as the pages come: the biggest pages, for the fewest round trips.
      for await (const page of client.files.pages(loc.path, { pageSize: LIST_MAX_PAGE })) await out.page(page.entries);
    } else {
      await out.single({ ...st, name: loc.path });
    }
    await out.end();
  } catch (e) {
    fail((e as Error).message);
  } finally {
    client.close();
  }
}

export async function rm(target: string, o: { recursive?: boolean; force?: boolean }, cmd: Command): Promise<void> {
  const loc = remote(target);
  const client = await clientFor(cmd, { machine: loc.machine });
  try {
    await client.files.remove(loc.path, { recursive: !!o.recursive });
  } catch (e) {
    if (!(o.force && e instanceof NotFoundError)) fail((e as Error).message);
  } finally {
    client.close();
  }
}

export async function mkdir(target: string, o: { parents?: boolean }, cmd: Command): Promise<void> {
  const loc = remote(target);
  const client = await clientFor(cmd, { machine: loc.machine });
  await client.files
    .mkdir(loc.path, { parents: !!o.parents })
    .catch((e: Error) => fail(e.message))
    .finally(() => client.close());
}

export async function mv(fromArg: string, toArg: string, o: { clobber: boolean }, cmd: Command): Promise<void> {
  const from = remote(fromArg);
  const to = parseLocation(toArg);
  if (to.machine && to.machine !== from.machine) fail('mv works within one machine: use cp, then rm');
  const client = await clientFor(cmd, { machine: from.machine });
  await client.files
    .rename(from.path, to.path, { overwrite: o.clobber !== false })
    .catch((e: Error) => fail(e.message))
    .finally(() => client.close());
}

function remote(arg: string): Location & { machine: string } {
  const loc = parseLocation(arg);
  if (!loc.machine) fail(`${JSON.stringify(arg)} is not MACHINE:PATH`);
  return loc as Location & { machine: string };
}

/** One cp run: walks directories for -r, keeps going past a failed file, and counts. */
class Copier {
  files = 0;
  failures: string[] = [];

  constructor(
    private readonly client: CmdopClient,
    private readonly progress: Progress,
    private readonly o: { recursive: boolean; overwrite: boolean },
  ) {}

  async download(from: Location, localDst: string): Promise<void> {
    const machine = from.machine!;
    const st = await this.client.files.stat(from.path, { machine });
    const dstIsDir = fs.statSync(localDst, { throwIfNoEntry: false })?.isDirectory() ?? false;
    const target = dstIsDir ? path.join(localDst, path.posix.basename(from.path)) : localDst;
    if (st.type === FileType.FILE_TYPE_DIRECTORY) {
      if (!this.o.recursive) throw new Error(`${machine}:${from.path} is a directory (use -r)`);
      await this.downloadTree(machine, from.path, target);
    } else {
      await this.downloadFile(machine, from.path, target, st.size);
    }
  }

  private async downloadTree(machine: string, dir: string, local: string): Promise<void> {
    await fsp.mkdir(local, { recursive: true });
    for (const e of await this.client.files.list(dir, { machine })) {
      const child = path.posix.join(dir, e.name);
      if (e.type === FileType.FILE_TYPE_DIRECTORY) await this.downloadTree(machine, child, path.join(local, e.name));
      else if (e.type === FileType.FILE_TYPE_FILE) await this.downloadFile(machine, child, path.join(local, e.name), e.size, true);
      else this.failures.push(`${machine}:${child}: skipped (${fileTypeName(e.type)}, not a regular file)`);
    }
  }

  private async downloadFile(machine: string, remotePath: string, local: string, size: number, keepGoing = false): Promise<void> {
    this.files++;
    if (!this.o.overwrite && fs.existsSync(local)) return this.fail(`${local} exists (-n given)`, keepGoing);
    const bar = this.progress.start(path.basename(local), size);
    try {
      await this.client.files.download(remotePath, local, { machine, onProgress: (p) => bar.update(p.bytes, p.rateBps) });
      bar.done();
    } catch (e) {
      bar.done();
      this.fail(`${machine}:${remotePath}: ${(e as Error).message}`, keepGoing);
    }
  }

  async upload(localSrc: string, to: Location): Promise<void> {
    const machine = to.machine!;
    const st = await fsp.stat(localSrc).catch(() => {
      throw new Error(`${localSrc}: no such file or directory`);
    });
    const remoteSt = await this.client.files.stat(to.path, { machine }).catch((e) => {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    });
    const intoDir = remoteSt?.type === FileType.FILE_TYPE_DIRECTORY || to.path.endsWith('/');
    const target = intoDir ? path.posix.join(to.path, path.basename(path.resolve(localSrc))) : to.path;
    if (st.isDirectory()) {
      if (!this.o.recursive) throw new Error(`${localSrc} is a directory (use -r)`);
      await this.uploadTree(machine, localSrc, target);
    } else if (st.isFile()) {
      await this.uploadFile(machine, localSrc, target);
    } else {
      throw new Error(`${localSrc} is not a regular file`);
    }
  }

  private async uploadTree(machine: string, local: string, dir: string): Promise<void> {
    await this.client.files.mkdir(dir, { machine, parents: true });
    for (const e of await fsp.readdir(local, { withFileTypes: true })) {
      const child = path.join(local, e.name);
      if (e.isDirectory()) await this.uploadTree(machine, child, path.posix.join(dir, e.name));
      else if (e.isFile()) await this.uploadFile(machine, child, path.posix.join(dir, e.name), true);
      else this.failures.push(`${child}: skipped (not a regular file)`);
    }
  }

  private async uploadFile(machine: string, local: string, remotePath: string, keepGoing = false): Promise<void> {
    this.files++;
    const size = (await fsp.stat(local)).size;
    const bar = this.progress.start(path.basename(local), size);
    try {
      await this.client.files.upload(local, remotePath, { machine, overwrite: this.o.overwrite, onProgress: (p) => bar.update(p.bytes, p.rateBps) });
      bar.done();
    } catch (e) {
      bar.done();
      this.fail(`${machine}:${remotePath}: ${(e as Error).message}`, keepGoing);
    }
  }

  private fail(message: string, keepGoing: boolean): void {
    if (!keepGoing) throw new Error(message);
    this.failures.push(message);
  }
}
