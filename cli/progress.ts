// The progress bar of `cmdop cp`, on stderr, only on a terminal (quiet when
// piped or with -q): one line per file with percentage, rate and ETA, drawn
// by cli-progress.
import type * as CliProgress from 'cli-progress';

export interface Bar {
  update(bytes: number, rateBps: number): void;
  done(): void;
}

const NONE: Bar = { update() {}, done() {} };

export class Progress {
  private multi: CliProgress.MultiBar | undefined;

  constructor(private readonly enabled: boolean) {}

  start(name: string, total: number): Bar {
    if (!this.enabled) return NONE;
    // Required on the first bar, not at the top: cli-progress and its string
    // width tables cost every piped or -q copy (the benchmark's, scripts') and
    // every other file command start-up time for a bar they never draw.
    const cliProgress: typeof CliProgress = require('cli-progress');
    this.multi ??= new cliProgress.MultiBar(
      {
        format: '{name} |{bar}| {percentage}% {size} {rate}/s ETA {eta_formatted}',
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        stream: process.stderr,
        barsize: 24,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    const label = name.length > 28 ? `…${name.slice(-27)}` : name.padEnd(28);
    const bar = this.multi.create(Math.max(1, total), 0, { name: label, size: human(total), rate: human(0) });
    return {
      update: (bytes, rateBps) => bar.update(Math.min(bytes, Math.max(1, total)), { rate: human(rateBps) }),
      done: () => {
        bar.update(Math.max(1, total));
        bar.stop();
      },
    };
  }

  stop(): void {
    this.multi?.stop();
    this.multi = undefined;
  }
}

/** 1536 -> "1.5 KiB". */
export function human(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}
