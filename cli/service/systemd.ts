// The systemd unit for the agent (Linux), system-wide or per user. See the
// README, "Servers: the agent as a service", for why each line is there and
// why the sandboxing options are left out.
import path from 'node:path';
import { SERVICE, type UnitSpec, agentArgs } from './unit';

/** One word of ExecStart=, quoted when it must be; % and $ are systemd specifiers and are escaped. */
export function systemdWord(w: string): string {
  const escaped = w.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (/^[A-Za-z0-9_./:,@=+-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** An Environment= assignment, quoted whole. */
const env = (k: string, v: string) => `Environment=${systemdWord(`${k}=${v}`)}`;

export function systemdUnit(s: UnitSpec): string {
  const system = s.scope === 'system';
  const exec = [s.node, s.agentBin, ...agentArgs(s)].map(systemdWord).join(' ');
  const lines = [
    `# Written by \`cmdop agent install-service${system ? '' : ' --user'}\` (cmdop ${s.version}).`,
    '# Remove it with `cmdop agent uninstall-service`; see its state with `cmdop agent status`.',
    '[Unit]',
    'Description=CMDOP agent: makes this machine reachable through its control plane',
    // A user manager cannot see the system's network-online.target.
    ...(system ? ['Wants=network-online.target', 'After=network-online.target'] : []),
    // Backoff: a restart every RestartSec, at most StartLimitBurst starts in
    // StartLimitIntervalSec; past that the unit stays failed (a revoked
    // credential or a changed certificate do not get better by retrying) and
    // `cmdop agent status` shows why. An unreachable control plane is not a
    // crash: the agent retries it itself (--wait-for-server, then its
    // reconnect backoff).
    'StartLimitIntervalSec=300',
    'StartLimitBurst=5',
    '',
    '[Service]',
    'Type=simple',
    ...(system && s.runAs ? [`User=${s.runAs.user}`, `Group=${s.runAs.group}`] : []),
    // systemd creates /var/lib/NAME owned by User=, 0700, before each start.
    ...(system && path.dirname(s.stateDir) === '/var/lib' ? ['StateDirectory=' + path.basename(s.stateDir), 'StateDirectoryMode=0700'] : []),
    env('CMDOP_SERVER', s.server),
    'WorkingDirectory=~',
    `ExecStart=${exec}`,
    'Restart=always',
    'RestartSec=5',
    // SIGTERM: the agent ends its terminals and says goodbye; then the
    // shells it started (same cgroup) are stopped with it.
    'KillMode=control-group',
    'TimeoutStopSec=15',
    // Hardening. The agent's job is to give a person a shell as this user:
    // every option below would confine that shell too, so none is set.
    // Uncomment one only for a deliberately restricted shell.
    '#NoNewPrivileges=yes   # breaks sudo, su, ping and every setuid program',
    '#PrivateTmp=yes        # the shell would see its own /tmp, not the machine\'s (tmux, ssh-agent sockets)',
    '#ProtectSystem=strict  # /usr, /etc read-only: no package installs or config edits, even with sudo',
    '#ProtectHome=yes       # hides /home: the user\'s own files',
    '#PrivateDevices=yes    # hides /dev: no disks, GPUs or serial ports',
    '',
    '[Install]',
    `WantedBy=${system ? 'multi-user.target' : 'default.target'}`,
    '',
  ];
  return lines.join('\n');
}

export const unitFileName = `${SERVICE}.service`;
