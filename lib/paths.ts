// Where CMDOP keeps things by default, for every part that needs it: the
// user's data directory for the local control plane (and its admin.token,
// which the SDK reads on loopback), the config directory for the agent's
// identity, the pinned certificates and the stored sign-ins. Here in lib/
// rather than in sdk/ because every `cmdop` run loads it for the defaults
// its help shows, and that must not load the SDK (test/cliStartup.test.ts).
import envPaths from 'env-paths';
import os from 'node:os';
import path from 'node:path';

const paths = envPaths('cmdop', { suffix: '' });

export const defaultDataDir = (): string => process.env.CMDOP_DATA_DIR ?? path.join(paths.data, 'control-plane');
export const defaultAgentStateDir = (): string => process.env.CMDOP_AGENT_DIR ?? path.join(paths.config, 'agent');

/** This host's name as a valid machine name. */
export function defaultMachineName(): string {
  const name = os.hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63);
  return name || 'localhost';
}

/** Pinned certificate fingerprints of control planes (like ~/.ssh/known_hosts). */
export const knownServersFile = (): string => path.join(paths.config, 'known_servers.json');
/** Refresh tokens from `cmdop login`, per control plane (mode 0600). */
export const loginsFile = (): string => path.join(paths.config, 'logins.json');
