// The headless agent's own state, written to status.json in its state dir
// whenever it changes, for `cmdop agent status` and `cmdop doctor` to read
// without reaching the agent (it never listens). A small JSON file, 0600,
// replaced atomically: a reader sees the old or the new one, never half.
// Here in lib/ because the agent's process (cli/run/agent.ts) writes it and
// the CLI's service commands read it.
import fs from 'node:fs';
import path from 'node:path';
import { writePrivateJson } from './privateFile';

export interface AgentStatusFile {
  /** The enrolled machine name. */
  machine: string;
  /** The control plane, as given (HOST:PORT, grpcs://…, or a list A,B). */
  server: string;
  /** connecting | connected | offline | suspended | stopped (app/agent AgentStatus). */
  state: string;
  sessionId: string;
  /** The last thing that went wrong, if anything has: a lost stream, a refused credential, a changed certificate. */
  lastError?: { message: string; atMs: number };
  pid: number;
  startedAtMs: number;
  updatedAtMs: number;
}

export const agentStatusFile = (stateDir: string): string => path.join(stateDir, 'status.json');

export function writeAgentStatus(stateDir: string, s: AgentStatusFile): void {
  writePrivateJson(agentStatusFile(stateDir), s);
}

/** The status file, or undefined if the agent never ran with this state dir (or it cannot be read). */
export function readAgentStatus(stateDir: string): AgentStatusFile | undefined {
  try {
    return JSON.parse(fs.readFileSync(agentStatusFile(stateDir), 'utf8')) as AgentStatusFile;
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote the file is still running (signal 0; EPERM means it runs as another user). */
export function pidAlive(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
