// A folder's upload: its directories made first (MakeDirectory, parents
// first; an existing directory is merged into, as `cp -r` does), then its
// files, a few at a time, each through the ordinary upload path (so each is
// verified by MD5 and lands whole or not at all). One progress for the lot,
// and every file that did not arrive is named with the reason: a folder
// upload never ends "done" with something missing.
import type { FolderTree } from '../net/localTree';

export interface FolderFailure {
  /** The path inside the dropped folder, its name first ('photos/2024/a.jpg'). */
  path: string;
  message: string;
}

export interface FolderProgress {
  bytesDone: number;
  bytesTotal: number;
  filesDone: number;
  filesTotal: number;
  failures: FolderFailure[];
}

export interface FolderSteps {
  /** Makes a directory (and any missing parents); fine if it is there already. */
  mkdir(path: string): Promise<void>;
  /** Uploads one file; rejects with the reason, or with an AbortError once `signal` aborts. */
  upload(path: string, file: File, onProgress: (loaded: number) => void, signal: AbortSignal): Promise<void>;
}

/** Files in flight at once: enough to hide the per-file round trips of many small files, few enough to stay far under the per-user upload cap. */
export const FOLDER_PARALLEL = 3;

const join = (...parts: string[]) => parts.filter((p) => p !== '').join('/');
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Uploads `tree` as `dest` (the folder itself). Resolves with what happened; rejects only when cancelled. */
export async function uploadFolder(
  steps: FolderSteps,
  dest: string,
  tree: FolderTree,
  signal: AbortSignal,
  onProgress: (p: FolderProgress) => void,
): Promise<FolderProgress> {
  const p: FolderProgress = {
    bytesDone: 0,
    bytesTotal: tree.files.reduce((n, f) => n + f.file.size, 0),
    filesDone: 0,
    filesTotal: tree.files.length,
    failures: tree.unreadable.map((u) => ({ path: join(tree.name, u.rel), message: u.message })),
  };
  const inFlight = new Map<string, number>();
  const report = () => onProgress({ ...p, bytesDone: p.bytesDone + [...inFlight.values()].reduce((a, b) => a + b, 0), failures: [...p.failures] });
  const cancelled = () => new DOMException('the folder upload was cancelled', 'AbortError');
  report();

  // The directories, in order: a failed one fails what is under it, by name.
  const failedDirs = new Map<string, string>();
  for (const rel of ['', ...tree.dirs]) {
    if (signal.aborted) throw cancelled();
    const parent = [...failedDirs.keys()].find((d) => rel === d || rel.startsWith(`${d}/`) || d === '');
    if (parent !== undefined) {
      failedDirs.set(rel, failedDirs.get(parent)!);
      continue;
    }
    try {
      await steps.mkdir(join(dest, rel));
    } catch (e) {
      const why = `${join(tree.name, rel)} could not be created: ${message(e)}`;
      failedDirs.set(rel, why);
      p.failures.push({ path: join(tree.name, rel) + '/', message: message(e) });
      report();
    }
  }

  const dirOf = (rel: string) => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < tree.files.length && !signal.aborted; i = next++) {
      const { rel, file } = tree.files[i];
      const shown = join(tree.name, rel);
      const blocked = failedDirs.get(dirOf(rel));
      if (blocked !== undefined) {
        p.failures.push({ path: shown, message: `not uploaded: ${blocked}` });
        report();
        continue;
      }
      inFlight.set(rel, 0);
      try {
        await steps.upload(
          join(dest, rel),
          file,
          (loaded) => {
            if (!inFlight.has(rel)) return;
            inFlight.set(rel, loaded);
            report();
          },
          signal,
        );
        p.filesDone++;
        p.bytesDone += file.size;
      } catch (e) {
        if (!signal.aborted) p.failures.push({ path: shown, message: message(e) });
      } finally {
        inFlight.delete(rel);
        report();
      }
    }
  };
  // Every worker settles before this returns: no upload is left running behind a cancel.
  await Promise.all(Array.from({ length: Math.min(FOLDER_PARALLEL, tree.files.length) }, worker));
  if (signal.aborted) throw cancelled();
  return { ...p, failures: [...p.failures] };
}
