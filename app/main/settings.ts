// The desktop app's settings, in a JSON file in its config dir. Each field
// is checked on load: a bad value is reported and replaced by its default,
// never silently half-used.
import fs from 'node:fs';
import { DEFAULT_SERVER, nameError } from '../../protocol';
import { parseServerAddress, parseServerList } from '../../lib/serverAddress';
import { writePrivateJson } from '../../lib/privateFile';

export interface DesktopSettings {
  /**
   * A remote control plane (HOST:PORT or grpcs://…), or several to try in
   * order (`A,B,C`); empty: the embedded one on this computer.
   */
  server: string;
  /** Where the embedded control plane listens. */
  listen: string;
  /** This computer's machine name. */
  machineName: string;
  /** Start at login (in the tray, no window). */
  autostart: boolean;
}

export function defaultSettings(machineName: string): DesktopSettings {
  return { server: '', listen: DEFAULT_SERVER, machineName, autostart: false };
}

/** The first problem with `s`, or undefined. */
export function settingsError(s: DesktopSettings): string | undefined {
  if (s.server) {
    try {
      parseServerList(s.server);
    } catch (e) {
      return `server: ${(e as Error).message}`;
    }
  }
  try {
    parseServerAddress(s.listen);
  } catch (e) {
    return `listen: ${(e as Error).message}`;
  }
  return nameError('machine name', s.machineName);
}

export function loadSettings(file: string, machineName: string): { settings: DesktopSettings; problems: string[] } {
  const d = defaultSettings(machineName);
  let raw: Partial<Record<keyof DesktopSettings, unknown>>;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { settings: d, problems: [] };
    return { settings: d, problems: [`${file} is not valid JSON (${(e as Error).message}); using the defaults`] };
  }
  const problems: string[] = [];
  const s = { ...d };
  const take = <K extends keyof DesktopSettings>(k: K, ok: (v: unknown) => boolean) => {
    if (raw[k] === undefined) return;
    if (ok(raw[k])) s[k] = raw[k] as DesktopSettings[K];
    else problems.push(`${k}: ${JSON.stringify(raw[k])} is not valid; using ${JSON.stringify(d[k])}`);
  };
  take('server', (v) => typeof v === 'string' && (v === '' || settingsError({ ...d, server: v }) === undefined));
  take('listen', (v) => typeof v === 'string' && settingsError({ ...d, listen: v }) === undefined);
  take('machineName', (v) => typeof v === 'string' && nameError('machine name', v) === undefined);
  take('autostart', (v) => typeof v === 'boolean');
  return { settings: s, problems };
}

/** Saves valid settings; throws with the reason (and writes nothing) otherwise. */
export function saveSettings(file: string, s: DesktopSettings): void {
  const err = settingsError(s);
  if (err) throw new Error(err);
  writePrivateJson(file, s);
}
