// `cmdop agent install-service | uninstall-service | status | logs`, run
// (their options are in ../commands/agent.ts; the units and the calls to
// systemd/launchd are in ../service/).
import type { Command } from 'commander';
import fs from 'node:fs';
import { fail } from '../output';
import { serverAddress } from '../server-address';
import { parseServerList } from '../../lib/serverAddress';
import { defaultMachineName } from '../../lib/paths';
import { type AgentReport, type ServiceContext, defaultContext, install, logs as showLogs, plan, report, uninstall } from '../service/manage';

interface AgentParentOptions {
  name?: string;
  stateDir: string;
  enrollToken?: string;
}

const parentOf = (cmd: Command) => cmd.parent!;
const stateDirGiven = (cmd: Command) => parentOf(cmd).getOptionValueSource('stateDir') !== 'default';

export async function installService(o: { user?: boolean; runAs?: string; print?: boolean }, cmd: Command, ctx: ServiceContext = defaultContext()): Promise<void> {
  const parent = parentOf(cmd).opts<AgentParentOptions>();
  const server = serverAddress(cmd);
  let p;
  try {
    p = plan(ctx, { user: o.user, runAs: o.runAs, print: o.print, server, name: parent.name, stateDir: stateDirGiven(cmd) || o.user ? parent.stateDir : undefined });
  } catch (e) {
    return fail((e as Error).message);
  }
  if (o.print) {
    process.stdout.write(p.text);
    return;
  }
  const enrollToken = parent.enrollToken ?? (process.env.CMDOP_ENROLL_TOKEN || undefined);
  const told: string[] = [];
  if (enrollToken) {
    // Enrolled now, as this process: the credential lands in the service's
    // state dir (chowned to the service's account by install), not in the unit.
    if (p.scope === 'system' && ctx.uid !== 0) fail('a system service needs root: run it with sudo, or use --user');
    // Required here: status and logs need no gRPC.
    const { connectionTo } = require('../connection') as typeof import('../connection');
    const { agentCredential } = require('../../sdk') as typeof import('../../sdk');
    const conn = await connectionTo(server).catch((e) => fail(e.message));
    const cred = await agentCredential(conn, {
      stateDir: p.spec.stateDir,
      machine: parent.name ?? defaultMachineName(),
      nameGiven: parent.name !== undefined,
      enrollToken,
      interactive: false,
      log: (line) => told.push(line),
    }).catch((e) => fail(e.message));
    told.push(`enrolled as ${cred.machine}`);
  } else if (!enrolledWith(p.spec.stateDir, server)) {
    told.push(
      `warning: no credential for ${parseServerList(server).display} in ${p.spec.stateDir}: the service will fail until the agent is enrolled.\n` +
        `  Install again with --enroll-token TOKEN (from \`cmdop agents enroll --name NAME\` where you are signed in).`,
    );
  }
  try {
    told.push(...(await install(ctx, p)));
  } catch (e) {
    return fail((e as Error).message);
  }
  for (const line of told) process.stdout.write(`${line}\n`);
}

function enrolledWith(stateDir: string, server: string): boolean {
  try {
    const all = JSON.parse(fs.readFileSync(`${stateDir}/credentials.json`, 'utf8'));
    return !!all[parseServerList(server).display];
  } catch {
    return false;
  }
}

export async function uninstallService(o: { user?: boolean }, _cmd: Command, ctx: ServiceContext = defaultContext()): Promise<void> {
  try {
    for (const line of await uninstall(ctx, o)) process.stdout.write(`${line}\n`);
  } catch (e) {
    fail((e as Error).message);
  }
}

const ago = (ms: number) => {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
};

/** The report as lines for a person. */
export function describe(r: AgentReport): string[] {
  const s = r.service;
  const lines: string[] = [];
  if (!s.installed) lines.push('service:   not installed (cmdop agent install-service)');
  else if (s.managerError) lines.push(`service:   ${s.scope} unit ${s.file}; its state is unknown: ${s.managerError}`);
  else {
    const restarts = s.restarts ? `, restarted ${s.restarts} times` : '';
    lines.push(`service:   ${s.active}${s.detail ? ` (${s.detail})` : ''}${s.mainPid ? `, pid ${s.mainPid}` : ''}${restarts}; ${s.scope} unit ${s.file}`);
  }
  const a = r.agent;
  if (!a) {
    lines.push(`agent:     no status in ${r.stateDir} (it has not run with this state dir)`);
    return lines;
  }
  lines.push(`name:      ${a.machine || '(not enrolled yet)'}`);
  lines.push(`server:    ${a.server}`);
  const state = a.running ? a.state : a.state === 'stopped' ? 'stopped' : `not running (last: ${a.state})`;
  lines.push(`session:   ${state}${a.running && a.sessionId ? ` (session ${a.sessionId})` : ''}${a.running ? `, pid ${a.pid}` : ''}, updated ${ago(a.updatedAtMs)}`);
  lines.push(`last error: ${a.lastError ? `${a.lastError.message} (${ago(a.lastError.atMs)})` : 'none'}`);
  return lines;
}

export async function status(o: { user?: boolean; json?: boolean }, cmd: Command, ctx: ServiceContext = defaultContext()): Promise<void> {
  const parent = parentOf(cmd).opts<AgentParentOptions>();
  let r: AgentReport;
  try {
    r = await report(ctx, { user: o.user, stateDir: parent.stateDir });
  } catch (e) {
    return fail((e as Error).message);
  }
  if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  else for (const line of describe(r)) process.stdout.write(`${line}\n`);
}

export async function logs(o: { user?: boolean; follow?: boolean; lines: number }, _cmd: Command, ctx: ServiceContext = defaultContext()): Promise<void> {
  try {
    process.exitCode = await showLogs(ctx, o);
  } catch (e) {
    fail((e as Error).message);
  }
}
