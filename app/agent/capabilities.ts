// What this machine offers, sent with every registration.
import fs from 'node:fs';
import os from 'node:os';
import { Capabilities } from '../../protocol';

export const AGENT_VERSION: string = require('../../../package.json').version;

/** The shell a new terminal runs: $SHELL, else bash, else sh. */
export function defaultShell(): string {
  const candidates = [process.env.SHELL, '/bin/bash', '/bin/sh'];
  for (const c of candidates) if (c && fs.existsSync(c)) return c;
  return '/bin/sh';
}

function listShells(): string[] {
  try {
    return fs
      .readFileSync('/etc/shells', 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('/') && fs.existsSync(l));
  } catch {
    return [defaultShell()];
  }
}

export function capabilities(): Capabilities {
  return {
    os: os.platform(),
    arch: os.arch(),
    hostname: os.hostname(),
    shells: [...new Set(listShells())],
    pty: true,
    files: true,
    version: AGENT_VERSION,
  };
}
