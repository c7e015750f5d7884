// What this machine offers, sent with every registration.
import fs from 'node:fs';
import os from 'node:os';
import { Capabilities, PROTOCOL_VERSION } from '../../protocol';

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

/**
 * What this agent says of itself in register and resume. `uptimeMs`: how
 * long the agent has run; `protocolVersion`: the protocol it speaks (only a
 * test claims an older one, AgentOptions.protocolVersion).
 */
export function capabilities(uptimeMs: number, protocolVersion = PROTOCOL_VERSION): Capabilities {
  return {
    os: os.platform(),
    arch: os.arch(),
    hostname: os.hostname(),
    shells: [...new Set(listShells())],
    pty: true,
    files: true,
    version: AGENT_VERSION,
    protocolVersion,
    uptimeMs: Math.max(0, Math.round(uptimeMs)),
  };
}
