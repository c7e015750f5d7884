// Folders from the user's disk, as the panel uploads them: a dropped folder
// (DataTransferItem.webkitGetAsEntry, then FileSystemDirectoryEntry's reader)
// or one picked with <input webkitdirectory> (Files carrying their
// webkitRelativePath). Both become the same FolderTree: the directories to
// create, parents first, and the files with their paths inside the folder.
//
// Only a drop sees empty directories: a picked folder is a flat list of
// files, so directories with no file anywhere under them are not in it.

export interface FolderTree {
  /** The folder's own name: the directory made in the panel's current one. */
  name: string;
  /** Directories inside it, relative ('a', 'a/b'), each after its parent. */
  dirs: string[];
  /** Files inside it, relative to it ('a/b/c.txt'). */
  files: { rel: string; file: File }[];
  /** Entries that could not be read here (a file gone or unreadable since the drop): reported, never silently left out. */
  unreadable: { rel: string; message: string }[];
}

export interface Dropped {
  files: File[];
  folders: FileSystemDirectoryEntry[];
}

/**
 * What was dropped, read at once: the DataTransfer's items are usable only
 * while the drop event is being handled, so this is synchronous and the
 * folders are walked afterwards (readFolder).
 */
export function droppedItems(dt: DataTransfer): Dropped {
  const files: File[] = [];
  const folders: FileSystemDirectoryEntry[] = [];
  const items = [...dt.items].filter((it) => it.kind === 'file');
  if (items.length === 0) return { files: [...dt.files], folders };
  for (const it of items) {
    const entry = it.webkitGetAsEntry?.() ?? null;
    if (entry?.isDirectory) {
      folders.push(entry as FileSystemDirectoryEntry);
      continue;
    }
    const f = it.getAsFile();
    if (f) files.push(f);
  }
  return { files, folders };
}

const errorText = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

/** One directory's entries: readEntries answers in batches (100 in Chromium) until an empty one. */
async function entriesOf(dir: FileSystemDirectoryEntry): Promise<FileSystemEntry[]> {
  const reader = dir.createReader();
  const all: FileSystemEntry[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) return all;
    all.push(...batch);
  }
}

const fileOf = (f: FileSystemFileEntry) => new Promise<File>((resolve, reject) => f.file(resolve, reject));

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Walks a dropped folder (breadth first, names in order, so parents come before children). */
export async function readFolder(root: FileSystemDirectoryEntry): Promise<FolderTree> {
  const tree: FolderTree = { name: root.name, dirs: [], files: [], unreadable: [] };
  const queue: { entry: FileSystemDirectoryEntry; rel: string }[] = [{ entry: root, rel: '' }];
  for (let next = queue.shift(); next; next = queue.shift()) {
    let entries: FileSystemEntry[];
    try {
      entries = (await entriesOf(next.entry)).sort(byName);
    } catch (e) {
      tree.unreadable.push({ rel: next.rel || '.', message: `this folder could not be read here (${errorText(e)})` });
      continue;
    }
    for (const e of entries) {
      const rel = next.rel ? `${next.rel}/${e.name}` : e.name;
      if (e.isDirectory) {
        tree.dirs.push(rel);
        queue.push({ entry: e as FileSystemDirectoryEntry, rel });
      } else if (e.isFile) {
        try {
          tree.files.push({ rel, file: await fileOf(e as FileSystemFileEntry) });
        } catch (err) {
          tree.unreadable.push({ rel, message: `could not be read here (${errorText(err)})` });
        }
      }
    }
  }
  return tree;
}

/**
 * Folders picked with <input webkitdirectory>: one tree per top-level name
 * in the files' relative paths. A file without one (not from a folder pick)
 * is returned as loose, to go up as a plain file.
 */
export function treesFromPicked(files: File[]): { trees: FolderTree[]; loose: File[] } {
  const trees = new Map<string, { tree: FolderTree; seen: Set<string> }>();
  const loose: File[] = [];
  for (const file of files) {
    const parts = file.webkitRelativePath.split('/').filter((s) => s !== '');
    if (parts.length < 2) {
      loose.push(file);
      continue;
    }
    let t = trees.get(parts[0]);
    if (!t) {
      t = { tree: { name: parts[0], dirs: [], files: [], unreadable: [] }, seen: new Set() };
      trees.set(parts[0], t);
    }
    const inner = parts.slice(1);
    for (let i = 1; i < inner.length; i++) {
      const dir = inner.slice(0, i).join('/');
      if (!t.seen.has(dir)) {
        t.seen.add(dir);
        t.tree.dirs.push(dir);
      }
    }
    t.tree.files.push({ rel: inner.join('/'), file });
  }
  // Parents before children: a parent's path is a prefix of its children's, so it sorts first.
  for (const { tree } of trees.values()) tree.dirs.sort();
  return { trees: [...trees.values()].map((t) => t.tree), loose };
}
