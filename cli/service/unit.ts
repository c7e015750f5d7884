// What a service unit says, whatever the service manager: which program,
// for which control plane, as whom, with which state dir. systemd.ts and
// launchd.ts turn it into a unit file; both are plain functions of it (the
// golden files in test/fixtures/service/ are their output), and neither runs
// anything.
import path from 'node:path';

export type Scope = 'system' | 'user';

export interface UnitSpec {
  scope: Scope;
  /** Absolute path of the node binary that runs the agent (this install's: process.execPath). */
  node: string;
  /** Absolute path of bin/cmdop-agent.js in this install. */
  agentBin: string;
  /** The control plane (CMDOP_SERVER in the unit's environment). */
  server: string;
  /** The agent's state dir: its identity, credential and status.json. */
  stateDir: string;
  /** --name, when given at install. */
  name?: string;
  /** System units: the account the agent (and every shell it opens) runs as. */
  runAs?: { user: string; group: string };
  /** The cmdop version that wrote the unit, for its header. */
  version: string;
}

/** The service's name in every manager. */
export const SERVICE = 'cmdop-agent';
/** launchd's label. */
export const LAUNCHD_LABEL = 'com.cmdop.agent';

/** bin/cmdop-agent.js of this install: dist/cli/service/ → ../../../bin. */
export const thisAgentBin = (): string => path.resolve(__dirname, '..', '..', '..', 'bin', 'cmdop-agent.js');

/** The agent's arguments after node and the bin (the server comes from the environment). */
export function agentArgs(s: UnitSpec): string[] {
  return ['--state-dir', s.stateDir, ...(s.name ? ['--name', s.name] : []), '--wait-for-server'];
}
