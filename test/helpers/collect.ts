// Collects what an attachment receives, with helpers to wait for text.
import type { TerminalAttachment } from '../../sdk';
import type { OutputGap, ScreenSnapshot } from '../../protocol';
import { eventually } from './cluster';

export class Collected {
  chunks: Buffer[] = [];
  gaps: OutputGap[] = [];
  snapshots: ScreenSnapshot[] = [];
  commandIds: string[] = [];

  constructor(readonly a: TerminalAttachment) {
    a.on('output', (d, c) => {
      this.chunks.push(Buffer.from(d));
      this.commandIds.push(c.commandId);
    });
    a.on('gap', (g) => this.gaps.push(g));
    a.on('snapshot', (s) => this.snapshots.push(s));
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get text(): string {
    return this.bytes.toString('utf8');
  }

  waitFor(needle: string | RegExp, timeoutMs = 10_000): Promise<boolean> {
    return eventually(
      () => (typeof needle === 'string' ? this.text.includes(needle) : needle.test(this.text)),
      timeoutMs,
      `output matching ${needle} (got: ${JSON.stringify(this.text.slice(-300))})`,
    );
  }
}
