// `MACHINE:PATH` as scp reads it: a machine name, a colon, a path. A colon
// after a slash is part of a local path (`./a:b`, `/x/y:z`), so any local
// path can still be written. `MACHINE:` alone means the home directory.
import { NAME_PATTERN } from '../protocol';

export interface Location {
  /** Undefined: a local path. */
  machine?: string;
  path: string;
}

export function parseLocation(arg: string): Location {
  const colon = arg.indexOf(':');
  const slash = arg.indexOf('/');
  if (colon > 0 && (slash < 0 || colon < slash)) {
    const machine = arg.slice(0, colon);
    if (NAME_PATTERN.test(machine)) return { machine, path: arg.slice(colon + 1) || '.' };
  }
  return { path: arg };
}
