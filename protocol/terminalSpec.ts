// The one place a TerminalSpec is written out: every field the proto has,
// with the defaults a shell or a command gets. The console, the SDK, the CLI
// and the bench build theirs here, so a field added to the proto gets its
// default once (browser-safe: the console uses it too).
import { TerminalKind, type TerminalSpec } from './generated/cmdop/v1/cmdop';

export interface SpecOptions {
  cols?: number;
  rows?: number;
  /** Working directory on the machine; '' is the agent's default (the user's home). */
  cwd?: string;
  env?: Record<string, string>;
  title?: string;
}

/** An interactive login shell in a PTY. */
export function shellSpec(o: SpecOptions = {}): TerminalSpec {
  return { ...common(o), kind: TerminalKind.SHELL, argv: [], shellCommand: '', pty: true };
}

/**
 * A command run to completion: a string runs through the remote user's
 * shell, an array is executed as is. No PTY unless `pty` says so.
 */
export function execSpec(command: string | string[], o: SpecOptions & { pty?: boolean } = {}): TerminalSpec {
  const argv = typeof command === 'string' ? [] : command;
  const shellCommand = typeof command === 'string' ? command : '';
  return { ...common(o), kind: TerminalKind.EXEC, argv, shellCommand, pty: o.pty ?? false };
}

function common(o: SpecOptions) {
  return { cols: o.cols ?? 80, rows: o.rows ?? 24, cwd: o.cwd ?? '', env: o.env ?? {}, title: o.title ?? '' };
}
