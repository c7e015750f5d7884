// `cmdop ls` output, written a page at a time as the pages arrive, so a
// directory of any size is listed in constant memory and the first names
// show at once: plain names, `-l` rows, or a JSON array whose elements are
// written as they come (the same text JSON.stringify(all, null, 2) gives).
import { once } from 'node:events';
import { FileType, type FileEntry } from '../protocol';
import { fileTypeName } from '../sdk';

export type LsFormat = 'names' | 'long' | 'json';

export class LsWriter {
  private written = 0;
  /** `-l`'s size column: as wide as the widest size so far (it can only grow, page by page). */
  private sizeWidth = 0;

  constructor(
    private readonly format: LsFormat,
    /** Leave out names starting with a dot (no -a). */
    private readonly hideDotted: boolean,
    private readonly out: NodeJS.WritableStream = process.stdout,
  ) {}

  /** Entries of a directory (filtered unless -a). */
  page(entries: FileEntry[]): Promise<void> {
    return this.put(this.hideDotted ? entries.filter((e) => !e.name.startsWith('.')) : entries);
  }

  /** A path given on the command line (a file): shown whatever its name. */
  single(e: FileEntry): Promise<void> {
    return this.put([e]);
  }

  async end(): Promise<void> {
    if (this.format === 'json') await this.emit(this.written ? '\n]\n' : '[]\n');
  }

  private async put(entries: FileEntry[]): Promise<void> {
    if (!entries.length) return;
    let text: string;
    if (this.format === 'json') {
      const items = entries.map((e) => '  ' + JSON.stringify({ ...e, type: fileTypeName(e.type) }, null, 2).replace(/\n/g, '\n  '));
      text = (this.written ? ',\n' : '[\n') + items.join(',\n');
    } else if (this.format === 'long') {
      this.sizeWidth = Math.max(this.sizeWidth, ...entries.map((e) => String(e.size).length));
      text = entries.map((e) => this.longRow(e)).join('\n') + '\n';
    } else {
      text = entries.map((e) => e.name + (e.type === FileType.FILE_TYPE_DIRECTORY ? '/' : '')).join('\n') + '\n';
    }
    this.written += entries.length;
    await this.emit(text);
  }

  private longRow(e: FileEntry): string {
    return [
      `${typeChar(e.type)}${modeString(e.mode)}`,
      String(e.size).padEnd(this.sizeWidth),
      new Date(e.mtimeMs).toISOString().replace('T', ' ').slice(0, 16),
      e.name + (e.linkTarget ? ` -> ${e.linkTarget}` : ''),
    ].join('  ');
  }

  /** A slow reader (a pager) slows the listing rather than output piling up here. */
  private async emit(text: string): Promise<void> {
    if (!this.out.write(text)) await once(this.out, 'drain');
  }
}

const typeChar = (t: FileType) => (t === FileType.FILE_TYPE_DIRECTORY ? 'd' : t === FileType.FILE_TYPE_SYMLINK ? 'l' : t === FileType.FILE_TYPE_FILE ? '-' : '?');
const modeString = (m: number) =>
  [6, 3, 0].map((s) => `${m & (4 << s) ? 'r' : '-'}${m & (2 << s) ? 'w' : '-'}${m & (1 << s) ? 'x' : '-'}`).join('');
