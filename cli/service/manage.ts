// Installing, removing and asking about the agent's service: systemd on
// Linux (system or --user), launchd on macOS. Every call to the service
// manager goes through ctx.runner, every path comes from ctx, so tests run
// all of it against a temp dir and a recording runner.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultAgentStateDir } from '../../lib/paths';
import { type AgentStatusFile, pidAlive, readAgentStatus } from '../../lib/agentStatus';
import { LAUNCHD_LABEL, SERVICE, type Scope, type UnitSpec, thisAgentBin } from './unit';
import { systemdUnit, unitFileName } from './systemd';
import { launchdPlist, plistFileName } from './launchd';
import { type ServiceRunner, systemRunner } from './runner';

export interface ServiceContext {
  platform: NodeJS.Platform;
  runner: ServiceRunner;
  /** Effective uid of this process (0: root). */
  uid: number;
  env: NodeJS.ProcessEnv;
  home: string;
  /** Where system units go: /etc/systemd/system, /Library/LaunchDaemons. */
  systemUnitDir: string;
  /** Where user units go: ~/.config/systemd/user, ~/Library/LaunchAgents. */
  userUnitDir: string;
  /** The system agent's state dir (/var/lib/cmdop-agent; macOS: /Library/Application Support/cmdop-agent). */
  systemStateDir: string;
  /** A user's uid, gid and group name (default: `id`). */
  lookupUser(user: string): { uid: number; gid: number; group: string };
  version: string;
  node: string;
  agentBin: string;
}

export function defaultContext(): ServiceContext {
  const platform = process.platform;
  const home = os.homedir();
  const mac = platform === 'darwin';
  const xdgConfig = process.env.XDG_CONFIG_HOME || path.join(home, '.config');
  return {
    platform,
    runner: systemRunner,
    uid: process.getuid?.() ?? -1,
    env: process.env,
    home,
    systemUnitDir: mac ? '/Library/LaunchDaemons' : '/etc/systemd/system',
    userUnitDir: mac ? path.join(home, 'Library', 'LaunchAgents') : path.join(xdgConfig, 'systemd', 'user'),
    systemStateDir: mac ? '/Library/Application Support/cmdop-agent' : '/var/lib/cmdop-agent',
    lookupUser,
    version: require('../../../package.json').version,
    node: process.execPath,
    agentBin: thisAgentBin(),
  };
}

function lookupUser(user: string): { uid: number; gid: number; group: string } {
  const id = (flag: string) => execFileSync('id', [flag, user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  try {
    return { uid: Number(id('-u')), gid: Number(id('-g')), group: id('-gn') };
  } catch {
    throw new Error(`no such user: ${user}`);
  }
}

const supported = (ctx: ServiceContext) => {
  if (ctx.platform !== 'linux' && ctx.platform !== 'darwin') {
    throw new Error(`the agent service is written for systemd (Linux) and launchd (macOS), not ${ctx.platform}: run \`cmdop agent\` under your own supervisor`);
  }
};

export const unitFile = (ctx: ServiceContext, scope: Scope): string =>
  path.join(scope === 'system' ? ctx.systemUnitDir : ctx.userUnitDir, ctx.platform === 'darwin' ? plistFileName : unitFileName);

/** The log file of a launchd service (its StandardOutPath). */
export const launchdLog = (ctx: ServiceContext, scope: Scope): string =>
  scope === 'system' ? '/var/log/cmdop-agent.log' : path.join(ctx.home, 'Library', 'Logs', 'cmdop-agent.log');

export interface InstallOptions {
  user?: boolean;
  print?: boolean;
  runAs?: string;
  server: string;
  name?: string;
  /** For a --user unit (a system unit uses ctx.systemStateDir unless given). */
  stateDir?: string;
}

export interface Planned {
  scope: Scope;
  file: string;
  text: string;
  spec: UnitSpec;
  /** System units: the account to run as, with its ids (for chown). */
  account?: { user: string; uid: number; gid: number; group: string };
}

/** The unit to write, and where; throws with advice when it should not be written. */
export function plan(ctx: ServiceContext, o: InstallOptions): Planned {
  supported(ctx);
  const scope: Scope = o.user ? 'user' : 'system';
  let account: Planned['account'];
  if (scope === 'system') {
    const who = o.runAs ?? ctx.env.SUDO_USER ?? (ctx.uid === 0 ? undefined : os.userInfo().username);
    if (!who || (who === 'root' && o.runAs !== 'root')) {
      throw new Error(
        'refusing to run the agent as root: every shell opened through it would be a root shell.\n' +
          '  Give the account it should run as: --run-as USER (or --run-as root if that is what you mean).',
      );
    }
    account = { user: who, ...ctx.lookupUser(who) };
  } else if (o.runAs) {
    throw new Error('--run-as is for system units; a --user unit runs as you');
  }
  const stateDir = o.stateDir ?? (scope === 'system' ? ctx.systemStateDir : defaultAgentStateDir());
  const spec: UnitSpec = {
    scope,
    node: ctx.node,
    agentBin: ctx.agentBin,
    server: o.server,
    stateDir,
    name: o.name,
    runAs: account && { user: account.user, group: account.group },
    version: ctx.version,
  };
  const text = ctx.platform === 'darwin' ? launchdPlist({ ...spec, logFile: launchdLog(ctx, scope) }) : systemdUnit(spec);
  return { scope, file: unitFile(ctx, scope), text, spec, account };
}

const systemctl = (scope: Scope) => (scope === 'user' ? ['--user'] : []);
const launchdDomain = (ctx: ServiceContext, scope: Scope) => (scope === 'system' ? 'system' : `gui/${ctx.uid}`);

async function must(ctx: ServiceContext, cmd: string, args: string[]): Promise<void> {
  const r = await ctx.runner.run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
}

/** Writes the unit and starts it (restarts it if it ran). Returns lines to tell the user. */
export async function install(ctx: ServiceContext, p: Planned): Promise<string[]> {
  if (p.scope === 'system' && ctx.uid !== 0) {
    throw new Error('a system service needs root: run it with sudo (the agent then runs as you, or as --run-as USER), or use --user for a service of your own');
  }
  // The state dir belongs to the account the agent runs as: it holds the credential.
  fs.mkdirSync(p.spec.stateDir, { recursive: true, mode: 0o700 });
  if (p.account && ctx.uid === 0) chownTree(p.spec.stateDir, p.account.uid, p.account.gid);
  fs.mkdirSync(path.dirname(p.file), { recursive: true });
  fs.writeFileSync(p.file, p.text, { mode: 0o644 });
  const told = [`wrote ${p.file}`];
  if (ctx.platform === 'darwin') {
    const domain = launchdDomain(ctx, p.scope);
    await ctx.runner.run('launchctl', ['bootout', `${domain}/${LAUNCHD_LABEL}`]); // not loaded yet: fine
    await must(ctx, 'launchctl', ['enable', `${domain}/${LAUNCHD_LABEL}`]);
    await must(ctx, 'launchctl', ['bootstrap', domain, p.file]);
    told.push(`started ${LAUNCHD_LABEL} in ${domain}; it starts again at ${p.scope === 'system' ? 'boot' : 'login'} and after a failure`);
  } else {
    const u = systemctl(p.scope);
    await must(ctx, 'systemctl', [...u, 'daemon-reload']);
    await must(ctx, 'systemctl', [...u, 'enable', SERVICE]);
    await must(ctx, 'systemctl', [...u, 'restart', SERVICE]);
    told.push(`enabled and started ${SERVICE}; it starts again at boot and after a failure`);
    if (p.scope === 'user') {
      const user = os.userInfo().username;
      const linger = await ctx.runner.run('loginctl', ['show-user', user, '-p', 'Linger', '--value']);
      if (linger.stdout.trim() !== 'yes') {
        told.push(`a --user service runs only while ${user} is logged in; to start it at boot: sudo loginctl enable-linger ${user}`);
      }
    }
  }
  told.push('see it with: cmdop agent status   and its log with: cmdop agent logs -f');
  return told;
}

function chownTree(dir: string, uid: number, gid: number): void {
  fs.chownSync(dir, uid, gid);
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) chownTree(p, uid, gid);
    else fs.chownSync(p, uid, gid);
  }
}

/** Which unit is installed: the one asked for, else the system one, else the user's. */
export function installedScope(ctx: ServiceContext, user?: boolean): Scope | undefined {
  if (user) return fs.existsSync(unitFile(ctx, 'user')) ? 'user' : undefined;
  if (fs.existsSync(unitFile(ctx, 'system'))) return 'system';
  if (fs.existsSync(unitFile(ctx, 'user'))) return 'user';
  return undefined;
}

export async function uninstall(ctx: ServiceContext, o: { user?: boolean }): Promise<string[]> {
  supported(ctx);
  const scope = installedScope(ctx, o.user);
  if (!scope) throw new Error(`no ${SERVICE} service is installed${o.user ? ' for this user' : ''}`);
  if (scope === 'system' && ctx.uid !== 0) throw new Error('the service is a system service: run uninstall-service with sudo');
  const file = unitFile(ctx, scope);
  if (ctx.platform === 'darwin') {
    await ctx.runner.run('launchctl', ['bootout', `${launchdDomain(ctx, scope)}/${LAUNCHD_LABEL}`]);
    fs.rmSync(file, { force: true });
  } else {
    const u = systemctl(scope);
    await ctx.runner.run('systemctl', [...u, 'disable', '--now', SERVICE]);
    fs.rmSync(file, { force: true });
    await ctx.runner.run('systemctl', [...u, 'daemon-reload']);
  }
  return [`stopped and removed ${file}`, `the agent's state dir (identity, credential) is kept: ${stateDirOf(ctx, scope) ?? 'see --state-dir'}`];
}

/** The --state-dir of an installed unit's command line. */
export function stateDirOf(ctx: ServiceContext, scope: Scope): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(unitFile(ctx, scope), 'utf8');
  } catch {
    return undefined;
  }
  if (ctx.platform === 'darwin') {
    const m = /<string>--state-dir<\/string>\s*<string>([^<]*)<\/string>/.exec(text);
    return m?.[1].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  }
  const m = /--state-dir ("(?:[^"\\]|\\.)*"|\S+)/.exec(text);
  if (!m) return undefined;
  const w = m[1].startsWith('"') ? m[1].slice(1, -1).replace(/\\(.)/g, '$1') : m[1];
  return w.replace(/%%/g, '%').replace(/\$\$/g, '$');
}

/** The control plane an installed unit's agent dials (its CMDOP_SERVER). */
export function serverOf(ctx: ServiceContext, scope: Scope): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(unitFile(ctx, scope), 'utf8');
  } catch {
    return undefined;
  }
  if (ctx.platform === 'darwin') return /<key>CMDOP_SERVER<\/key><string>([^<]*)<\/string>/.exec(text)?.[1].replace(/&amp;/g, '&');
  const m = /^Environment="?CMDOP_SERVER=([^"\n]*)"?$/m.exec(text);
  return m?.[1].replace(/%%/g, '%').replace(/\$\$/g, '$');
}

export interface ServiceState {
  installed: boolean;
  scope?: Scope;
  file?: string;
  /** active, failed, activating, inactive… (systemd ActiveState), or running / not running (launchd). */
  active?: string;
  detail?: string;
  mainPid?: number;
  restarts?: number;
  /** The manager could not be asked (no systemd running, say): why. */
  managerError?: string;
}

export interface AgentReport {
  service: ServiceState;
  stateDir: string;
  agent?: AgentStatusFile & { running: boolean };
}

/** The service's state from its manager. */
export async function serviceState(ctx: ServiceContext, o: { user?: boolean } = {}): Promise<ServiceState> {
  supported(ctx);
  const scope = installedScope(ctx, o.user);
  if (!scope) return { installed: false };
  const base: ServiceState = { installed: true, scope, file: unitFile(ctx, scope) };
  if (ctx.platform === 'darwin') {
    const r = await ctx.runner.run('launchctl', ['print', `${launchdDomain(ctx, scope)}/${LAUNCHD_LABEL}`]);
    if (r.code !== 0) return { ...base, active: 'not loaded', managerError: (r.stderr || r.stdout).trim() };
    const state = /^\s*state = (.+)$/m.exec(r.stdout)?.[1];
    const pid = /^\s*pid = (\d+)$/m.exec(r.stdout)?.[1];
    const exit = /^\s*last exit code = (.+)$/m.exec(r.stdout)?.[1];
    return { ...base, active: state ?? 'unknown', mainPid: pid ? Number(pid) : undefined, detail: exit ? `last exit code ${exit}` : undefined };
  }
  const r = await ctx.runner.run('systemctl', [...systemctl(scope), 'show', SERVICE, '-p', 'ActiveState,SubState,MainPID,NRestarts,Result,UnitFileState']);
  if (r.code !== 0 || !r.stdout.includes('ActiveState=')) return { ...base, managerError: (r.stderr || r.stdout).trim() || `systemctl exit ${r.code}` };
  const p = Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  return {
    ...base,
    active: p.ActiveState,
    detail: [p.SubState, p.Result && p.Result !== 'success' ? `result ${p.Result}` : '', p.UnitFileState ? `${p.UnitFileState} at boot` : ''].filter(Boolean).join(', '),
    mainPid: Number(p.MainPID) || undefined,
    restarts: p.NRestarts !== undefined ? Number(p.NRestarts) : undefined,
  };
}

/** The service's state and the agent's own (status.json in the state dir the unit uses, else `stateDir`). */
export async function report(ctx: ServiceContext, o: { user?: boolean; stateDir: string }): Promise<AgentReport> {
  const service = await serviceState(ctx, o);
  const stateDir = (service.scope && stateDirOf(ctx, service.scope)) || o.stateDir;
  const s = readAgentStatus(stateDir);
  return { service, stateDir, agent: s && { ...s, running: pidAlive(s.pid) && s.state !== 'stopped' } };
}

/** `logs`: the journal (Linux) or the plist's log file (macOS), on this terminal. */
export async function logs(ctx: ServiceContext, o: { user?: boolean; follow?: boolean; lines: number }): Promise<number> {
  supported(ctx);
  const scope = installedScope(ctx, o.user) ?? (o.user ? 'user' : 'system');
  if (ctx.platform === 'darwin') {
    return ctx.runner.interactive('tail', ['-n', String(o.lines), ...(o.follow ? ['-F'] : []), launchdLog(ctx, scope)]);
  }
  return ctx.runner.interactive('journalctl', [...systemctl(scope), '-u', SERVICE, '-n', String(o.lines), '--no-pager', ...(o.follow ? ['-f'] : [])]);
}
