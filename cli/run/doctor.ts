// `cmdop doctor`, run (its options are in ../commands/doctor.ts): checks in
// order, each OK / WARN / FAIL / SKIP with one line of advice. A check that
// needs the server is skipped when the server cannot be reached, so the
// first FAIL is the one to fix.
import type { Command } from 'commander';
import fs from 'node:fs';
import { CmdopClient, type Connection, PinMismatchError, UnauthenticatedError, connectionTo, tokenFor } from '../../sdk';
import { isLoopback, parseServerList } from '../../lib/serverAddress';
import { defaultAgentStateDir, knownServersFile } from '../../lib/paths';
import { readAgentStatus, pidAlive } from '../../lib/agentStatus';
import { DEFAULT_SERVER } from '../../protocol';
import { type ServiceContext, defaultContext, installedScope, serverOf, serviceState, stateDirOf } from '../service/manage';

export type Level = 'OK' | 'WARN' | 'FAIL' | 'SKIP';

export interface Check {
  check: 'server' | 'tls' | 'clock' | 'token' | 'agent credential' | 'agent service';
  level: Level;
  /** What was found. */
  detail: string;
  /** What to do about it (absent when OK). */
  advice?: string;
}

/** A clock this far from the control plane's is worth a warning; this far, a failure (tokens and certificates expire). */
const SKEW_WARN_MS = 5_000;
const SKEW_FAIL_MS = 5 * 60_000;
const CALL_TIMEOUT_MS = 5_000;

const within = <T>(p: Promise<T>, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${CALL_TIMEOUT_MS / 1000} s`)), CALL_TIMEOUT_MS).unref())]);

interface DoctorOptions {
  stateDir?: string;
  json?: boolean;
}

export async function runChecks(o: { server?: string; stateDir?: string }, ctx: ServiceContext): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);
  const scope = safe(() => installedScope(ctx));
  const server = o.server ?? (scope && serverOf(ctx, scope)) ?? process.env.CMDOP_SERVER ?? DEFAULT_SERVER;
  const stateDir = o.stateDir ?? (scope && stateDirOf(ctx, scope)) ?? defaultAgentStateDir();

  // 1. The address, and whether a control plane answers there.
  let conn: Connection | undefined;
  let firstPin: string | undefined;
  try {
    parseServerList(server);
  } catch (e) {
    add({ check: 'server', level: 'FAIL', detail: `${server}: ${(e as Error).message}`, advice: 'give --server HOST:PORT, or grpcs://HOST:PORT for TLS (or set CMDOP_SERVER)' });
  }
  if (!checks.length) {
    try {
      conn = await connectionTo(server, { onFirstUse: (_s, fp) => (firstPin = fp) });
    } catch (e) {
      if (e instanceof PinMismatchError) {
        add({ check: 'server', level: 'OK', detail: `${e.address} answers over TLS` });
        add({
          check: 'tls',
          level: 'FAIL',
          detail: `the certificate changed: pinned ${e.expected}, now ${e.actual}; refused`,
          advice: `if the control plane's certificate was replaced on purpose (ask its admin for the new fingerprint): cmdop trust --forget ${e.address}, then connect again to pin the new one`,
        });
      } else {
        add({ check: 'server', level: 'FAIL', detail: `${server}: ${(e as Error).message}`, advice: unreachableAdvice(server) });
      }
    }
  }
  let info: Awaited<ReturnType<CmdopClient['auth']['serverInfo']>> | undefined;
  let sent = 0;
  let received = 0;
  if (conn) {
    const anonymous = new CmdopClient({ server: conn.address.display, credentials: conn.credentials, channelOptions: conn.channelOptions });
    try {
      sent = Date.now();
      info = await within(anonymous.auth.serverInfo(), server);
      received = Date.now();
      add({ check: 'server', level: 'OK', detail: `${conn.address.display} answers (cmdop ${info.version || 'unknown version'})` });
    } catch (e) {
      add({ check: 'server', level: 'FAIL', detail: `${conn.address.display}: ${(e as Error).message}`, advice: unreachableAdvice(server) });
    } finally {
      anonymous.close();
    }
  }

  // 2. TLS and the pin.
  if (conn && info) {
    const plain = !conn.address.tls;
    const loop = conn.address.entries.every((e) => isLoopback(e.host));
    if (plain && loop) add({ check: 'tls', level: 'OK', detail: 'plaintext on loopback (nothing leaves this machine)' });
    else if (plain) add({ check: 'tls', level: 'WARN', detail: 'plaintext: tokens and terminal bytes cross the network unencrypted', advice: 'run the control plane with TLS and use grpcs://HOST:PORT' });
    else if (firstPin) add({ check: 'tls', level: 'WARN', detail: `first use: pinned SHA256 ${firstPin} in ${knownServersFile()}`, advice: 'compare it with the fingerprint the control plane printed at start-up; if they differ, cmdop trust --forget the address and find out why' });
    else if (conn.trust?.mode === 'pinned') add({ check: 'tls', level: 'OK', detail: `the certificate matches its pin (SHA256 ${conn.trust.fingerprint})` });
    else add({ check: 'tls', level: 'OK', detail: 'the certificate is trusted by the system CAs' });
  } else if (!checks.some((c) => c.check === 'tls')) add({ check: 'tls', level: 'SKIP', detail: 'no server to check' });

  // 3. The clock, against the control plane's.
  if (info && info.timeMs) {
    const skew = info.timeMs - (sent + received) / 2;
    const abs = Math.abs(skew);
    const s = `${(abs / 1000).toFixed(1)} s ${skew > 0 ? 'behind' : 'ahead of'} the control plane`;
    const advice = 'turn on time sync: timedatectl set-ntp true (Linux), or Date & Time → Set automatically (macOS); or fix the control plane\'s clock';
    if (abs <= SKEW_WARN_MS) add({ check: 'clock', level: 'OK', detail: `within ${(SKEW_WARN_MS / 1000).toFixed(0)} s of the control plane (${(skew / 1000).toFixed(2)} s, round trip ${received - sent} ms)` });
    else add({ check: 'clock', level: abs > SKEW_FAIL_MS ? 'FAIL' : 'WARN', detail: `this clock is ${s}: sign-ins and tokens expire early or late`, advice });
  } else add({ check: 'clock', level: 'SKIP', detail: info ? 'the control plane does not report its time (older than this cmdop)' : 'no server to check' });

  // 4. The token this user's commands would use, and the agent's credential.
  if (conn && info) {
    const src = await tokenFor(conn).catch(() => ({ token: undefined, source: 'none' as const }));
    if (!src.token) add({ check: 'token', level: 'WARN', detail: 'no token: commands here are not signed in', advice: `cmdop login --server ${conn.address.display} (a script: CMDOP_TOKEN from \`cmdop tokens create\`)` });
    else {
      const r = await whoami(conn, src.token);
      const from = src.source === 'option' ? '' : ` (from ${src.source})`;
      if (r.ok) add({ check: 'token', level: 'OK', detail: `accepted${from}: ${r.who}` });
      else if (r.refused) add({ check: 'token', level: 'FAIL', detail: `refused${from}: ${r.message}`, advice: src.source === 'CMDOP_TOKEN' ? 'CMDOP_TOKEN is expired or revoked: create a new one with cmdop tokens create, or unset it and cmdop login' : `sign in again: cmdop login --server ${conn.address.display}` });
      else add({ check: 'token', level: 'WARN', detail: `could not be checked: ${r.message}`, advice: 'run cmdop doctor again' });
    }
    const cred = storedCredential(stateDir, conn.address.display);
    if (!cred) add({ check: 'agent credential', level: 'SKIP', detail: `this machine's agent is not enrolled with ${conn.address.display} (${stateDir})` });
    else {
      const r = await whoami(conn, cred.token);
      if (r.ok) add({ check: 'agent credential', level: 'OK', detail: `${cred.machine}: accepted` });
      else if (r.refused) add({ check: 'agent credential', level: 'FAIL', detail: `${cred.machine}: refused (${r.message})`, advice: `enroll it again: cmdop agents enroll --name ${cred.machine} where you are signed in, then cmdop agent install-service --enroll-token TOKEN (or cmdop agent --enroll-token TOKEN)` });
      else add({ check: 'agent credential', level: 'WARN', detail: `${cred.machine}: could not be checked: ${r.message}` });
    }
  } else {
    add({ check: 'token', level: 'SKIP', detail: 'no server to check' });
  }

  // 5. The agent service.
  add(await serviceCheck(ctx, stateDir));
  return checks;
}

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

function unreachableAdvice(server: string): string {
  return `check the address and port (the control plane prints "listening on ..." at start), that it runs, and that a firewall lets this machine reach it; a TLS control plane needs grpcs:// (given: ${server})`;
}

async function whoami(conn: Connection, token: string): Promise<{ ok: true; who: string } | { ok: false; refused: boolean; message: string }> {
  const c = new CmdopClient({ server: conn.address.display, credentials: conn.credentials, channelOptions: conn.channelOptions, token });
  try {
    const me = await within(c.auth.whoami(), 'WhoAmI');
    const who = me.machine ? `agent ${me.machine}` : `${me.user || 'unknown'}${me.admin ? ' (admin)' : ''}`;
    return { ok: true, who };
  } catch (e) {
    return { ok: false, refused: e instanceof UnauthenticatedError, message: (e as Error).message };
  } finally {
    c.close();
  }
}

function storedCredential(stateDir: string, key: string): { machine: string; token: string } | undefined {
  try {
    return JSON.parse(fs.readFileSync(`${stateDir}/credentials.json`, 'utf8'))[key];
  } catch {
    return undefined;
  }
}

async function serviceCheck(ctx: ServiceContext, stateDir: string): Promise<Check> {
  let s;
  try {
    s = await serviceState(ctx);
  } catch (e) {
    return { check: 'agent service', level: 'SKIP', detail: (e as Error).message };
  }
  const status = readAgentStatus(stateDir);
  const lastError = status?.lastError ? `; the agent's last error: ${status.lastError.message}` : '';
  if (!s.installed) {
    const running = status && pidAlive(status.pid) && status.state !== 'stopped' ? `; an agent runs outside a service (pid ${status.pid}, ${status.state})` : '';
    return { check: 'agent service', level: 'SKIP', detail: `no agent service installed (fine on a laptop)${running}`, advice: 'on a server, to start the agent at boot: sudo cmdop agent install-service --server ADDRESS --enroll-token TOKEN' };
  }
  if (s.managerError) return { check: 'agent service', level: 'WARN', detail: `${s.file} is installed but its state is unknown: ${s.managerError}`, advice: 'is the service manager running? (systemctl status; in a container there may be none)' };
  if (s.active === 'active' || s.active === 'running') {
    if (status && status.state !== 'connected') {
      return { check: 'agent service', level: 'WARN', detail: `running, but the agent is ${status.state}${lastError}`, advice: 'cmdop agent logs -f' };
    }
    return { check: 'agent service', level: 'OK', detail: `${s.scope} service ${s.active}${status ? `, agent ${status.machine} ${status.state}` : ''}` };
  }
  return {
    check: 'agent service',
    level: 'FAIL',
    detail: `${s.scope} service ${s.active}${s.detail ? ` (${s.detail})` : ''}${lastError}`,
    advice: `see why: cmdop agent logs${s.scope === 'user' ? ' --user' : ''}; after fixing it: ${s.scope === 'user' ? '' : 'sudo '}systemctl ${s.scope === 'user' ? '--user ' : ''}reset-failed cmdop-agent && ${s.scope === 'user' ? '' : 'sudo '}systemctl ${s.scope === 'user' ? '--user ' : ''}restart cmdop-agent`,
  };
}

export async function doctor(o: DoctorOptions, cmd: Command, ctx: ServiceContext = defaultContext()): Promise<void> {
  const checks = await runChecks({ server: cmd.optsWithGlobals().server as string | undefined, stateDir: o.stateDir }, ctx);
  const failed = checks.some((c) => c.level === 'FAIL');
  if (o.json) process.stdout.write(JSON.stringify({ ok: !failed, checks }, null, 2) + '\n');
  else {
    for (const c of checks) {
      process.stdout.write(`${c.level.padEnd(4)}  ${c.check.padEnd(16)}  ${c.detail}\n`);
      if (c.advice && c.level !== 'OK') process.stdout.write(`${' '.repeat(24)}→ ${c.advice}\n`);
    }
  }
  process.exitCode = failed ? 1 : 0;
}
