// What runs in a PTY's foreground, so that a client can ask before ending a
// terminal in which something (an editor, a build) still runs. node-pty's
// `.process` names the foreground process; whether that is the shell itself
// is decided, on Linux, by the terminal's foreground process group (field
// tpgid of /proc/PID/stat) against the shell's pid, which a nested shell or
// a program named like the shell cannot fool; elsewhere by the name.
import fs from 'node:fs';
import path from 'node:path';

/** The name as a person knows it: no directory, no login shell's leading '-'. */
export function programName(s: string): string {
  return path.basename(s.trim()).replace(/^-/, '');
}

/** The foreground process group of `pid`'s controlling terminal (Linux), or undefined where unknown. */
export function foregroundGroup(pid: number): number | undefined {
  if (process.platform !== 'linux' || !pid) return undefined;
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp session tty_nr tpgid ...": comm may hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const tpgid = Number(fields[5]);
  return Number.isInteger(tpgid) && tpgid > 0 ? tpgid : undefined;
}

/**
 * '' while `shellPid` (running `shellFile`) has the terminal to itself,
 * otherwise the foreground program's name (`current`: node-pty's view of it).
 */
export function foregroundOf(shellPid: number, shellFile: string, current: string): string {
  const group = foregroundGroup(shellPid);
  if (group !== undefined) return group === shellPid ? '' : programName(current) || `process ${group}`;
  const name = programName(current);
  return name === programName(shellFile) ? '' : name;
}
