// Each window remembers its size and position (the main console window, and
// each watch window by terminal), in a JSON file. A remembered position is
// used only if it still lies on a connected display: a window restored onto
// a monitor that was unplugged would be invisible.
import fs from 'node:fs';
import { writePrivateJson } from '../../lib/privateFile';

export interface Bounds {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Keep at most this many watch windows' bounds (they are per terminal, and terminals come and go). */
const MAX_ENTRIES = 50;
export const MIN_SIZE = { width: 480, height: 320 };

export class WindowStates {
  private states: Record<string, Bounds & { usedAt: number }>;

  constructor(private readonly file: string) {
    try {
      this.states = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      this.states = {};
    }
  }

  /** Where window `key` should open: its remembered bounds if they fit one of `displays` (work areas), else `fallback`. */
  boundsFor(key: string, displays: Bounds[], fallback: { width: number; height: number }): Partial<Bounds> & { width: number; height: number } {
    const b = this.states[key];
    if (!b || !isBounds(b)) return fallback;
    const width = Math.max(MIN_SIZE.width, b.width);
    const height = Math.max(MIN_SIZE.height, b.height);
    // Visible enough: its title bar's middle is on some display.
    const visible = displays.some((d) => within(b.x + width / 2, b.y + 10, d));
    return visible ? { x: b.x, y: b.y, width, height } : { width, height };
  }

  remember(key: string, b: Bounds): void {
    if (!isBounds(b)) return;
    this.states[key] = { ...b, usedAt: Date.now() };
    const keys = Object.keys(this.states);
    if (keys.length > MAX_ENTRIES) {
      keys.sort((a, z) => this.states[a].usedAt - this.states[z].usedAt);
      for (const k of keys.slice(0, keys.length - MAX_ENTRIES)) delete this.states[k];
    }
    writePrivateJson(this.file, this.states);
  }
}

function isBounds(b: unknown): b is Bounds {
  const o = b as Bounds;
  return !!o && [o.x, o.y, o.width, o.height].every((n) => Number.isFinite(n)) && o.width > 0 && o.height > 0;
}

const within = (x: number, y: number, d: Bounds) => x >= d.x && x < d.x + d.width && y >= d.y && y < d.y + d.height;
