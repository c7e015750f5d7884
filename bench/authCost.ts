// What sign-in costs (BENCH_ONLY=auth), side by side in one run:
//
//  a) unary latency: the same calls with an API token, the admin token, an
//     API token of a non-admin user, and tokens that are refused (an unknown
//     `cmdop_pat_` secret: SHA-256 + SELECT miss; an unknown opaque one: the
//     OAuth access-token lookup through oidc-provider), next to GetServerInfo,
//     the one call that checks no token: the same gRPC round trip without auth.
//     Calls are sequential and the contestants interleaved in rounds, so a
//     slow spell of the machine lands on all of them.
//  b) keystroke echo through an interactive PTY terminal (bench/echo.ts): every
//     input message now writes an audit row. Audit cannot be switched off, so
//     the raw cost of one insert (AuthRepo.audit in a tight loop on a temp DB
//     with the product's pragmas) is measured in this process and shown next to
//     the echo, together with one token check (Access.principalOf).
//  c) a paste flood: 8 MiB sent as 64 KiB input messages (128 audit rows) to a
//     PTY running `head -c N > /dev/null` (cat that ends after N bytes; raw mode,
//     no echo), timed to the command's own "DONE"; beside it the same paste
//     written straight into a node-pty in this process. The audit log is read
//     back to check that each paste wrote one row per input message.
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as pty from 'node-pty';
import { AttachMode, MAX_INPUT_BYTES, TokenKind } from '../protocol';
import { CmdopClient, TerminalAttachment, UnauthenticatedError } from '../sdk';
import { Access } from '../control-plane/core/access';
import { AuthRepo, openDb } from '../control-plane/db';
import { AuditProbe } from './auditProbe';
import { sdkShellChannel } from './channels';
import { CmdopCluster, startCmdop } from './cmdopCluster';
import { ShellChannel, measureEcho, prepareEchoShell, waitForOutput } from './echo';
import { ProcessSet, sleep } from './procs';
import { mbPerS, median, percentile } from './stats';
import { Column, fmt, renderGrid } from './table';

export interface AuthCostConfig {
  /** Timed calls per unary contestant. */
  calls: number;
  echoSamples: number;
  echoWarmup: number;
  pasteBytes: number;
  pasteReps: number;
  /** Iterations of each in-process micro-benchmark. */
  microIterations: number;
}

export function authCostConfig(envNumber: (name: string, dflt: number) => number): AuthCostConfig {
  return {
    calls: Math.round(envNumber('BENCH_AUTH_CALLS', 2000)),
    echoSamples: Math.round(envNumber('BENCH_ECHO_SAMPLES', 300)),
    echoWarmup: 20,
    pasteBytes: Math.round(envNumber('BENCH_PASTE_MIB', 8) * 1024 * 1024),
    pasteReps: Math.round(envNumber('BENCH_PASTE_REPS', 3)),
    microIterations: Math.round(envNumber('BENCH_AUTH_MICRO', 20_000)),
  };
}

interface UnaryResult {
  label: string;
  /** What the call is: the baseline, an accepted call, or a refusal. */
  outcome: 'baseline' | 'ok' | 'UNAUTHENTICATED';
  ms: number[];
}

interface MicroResult {
  label: string;
  us: number[];
}

interface PasteResult {
  label: string;
  ms: number[];
  /** Until the control plane had accepted every input message (CMDOP only). */
  acceptedMs: number[];
  /** Audit rows of action `input` each paste added (CMDOP only). */
  auditRows: number[];
  /** The time the control plane spent in those inserts, per paste, ms (CMDOP only). */
  auditMs: number[];
}

export interface AuthCostResult {
  cfg: AuthCostConfig;
  unary: UnaryResult[];
  echo: number[];
  /** Each keystroke's audit insert as timed inside the control plane (µs), warm-up keys included. */
  echoInserts: number[];
  micro: { audit: MicroResult; tokenOk: MicroResult; tokenUnknown: MicroResult };
  paste: { cmdop: PasteResult; raw: PasteResult; messages: number };
  problems: string[];
}

const MACHINE = 'auth-bench';

export async function measureAuthCost(opts: {
  dir: string;
  procs: ProcessSet;
  cfg: AuthCostConfig;
  progress: (msg: string) => void;
}): Promise<AuthCostResult> {
  const { dir, procs, cfg, progress } = opts;
  const problems: string[] = [];
  // The micro-benchmarks first, in this process, while nothing else runs.
  progress(`auth: ${cfg.microIterations} audit inserts and token checks on a temp SQLite DB (in this process)`);
  const micro = await microBench(path.join(dir, 'micro'), cfg.microIterations);

  progress('auth: starting a CMDOP control plane and agent on loopback');
  let cmdop: CmdopCluster | undefined;
  const clients: CmdopClient[] = [];
  try {
    // Its control plane is probed: the time of each input's audit insert, measured where it happens.
    const probeFile = path.join(dir, 'audit-probe');
    cmdop = await startCmdop(path.join(dir, 'cmdop'), procs, MACHINE, [], AuditProbe.options(probeFile));
    const probe = new AuditProbe(cmdop.controlPlanePid, probeFile);
    const client = (c: CmdopClient) => (clients.push(c), c);
    const admin = client(cmdop.newClient({ machine: MACHINE }));
    const api = client(cmdop.newClient({ machine: MACHINE, token: (await admin.auth.createToken('bench')).token }));
    await admin.auth.addUser('bench-user');
    await admin.auth.grant(MACHINE, 'bench-user', 'operator');
    const userApi = client(cmdop.newClient({ machine: MACHINE, token: (await admin.auth.createToken('bench', 0, 'bench-user')).token }));
    const unknownPat = client(cmdop.newClient({ token: `cmdop_pat_${randomBytes(32).toString('base64url')}` }));
    const unknownOpaque = client(cmdop.newClient({ token: randomBytes(32).toString('base64url') }));
    const anonymous = client(cmdop.newClient({ token: '' }));

    const refused = (c: CmdopClient) => async () => {
      try {
        await c.auth.whoami();
      } catch (e) {
        if (e instanceof UnauthenticatedError) return;
        throw e;
      }
      throw new Error('a call with an unknown token was accepted');
    };
    const contestants: { label: string; outcome: UnaryResult['outcome']; run: () => Promise<unknown> }[] = [
      { label: 'GetServerInfo, no token checked (the round trip without auth)', outcome: 'baseline', run: () => anonymous.auth.serverInfo() },
      { label: 'WhoAmI, admin token', outcome: 'ok', run: () => admin.auth.whoami() },
      { label: 'WhoAmI, API token', outcome: 'ok', run: () => api.auth.whoami() },
      { label: 'WhoAmI, unknown cmdop_pat_ token (refused)', outcome: 'UNAUTHENTICATED', run: refused(unknownPat) },
      { label: 'WhoAmI, unknown opaque token: OAuth lookup (refused)', outcome: 'UNAUTHENTICATED', run: refused(unknownOpaque) },
      { label: 'ListMachines, admin token', outcome: 'ok', run: () => admin.machines.list() },
      { label: 'ListMachines, API token', outcome: 'ok', run: () => api.machines.list() },
      { label: 'ListMachines, API token of a non-admin user (grants)', outcome: 'ok', run: () => userApi.machines.list() },
    ];
    // Each must behave as labelled before it is timed.
    if ((await api.auth.whoami()).kind !== TokenKind.API) problems.push('auth: the API token did not sign in as an API token');
    if ((await userApi.machines.list()).length !== 1) problems.push('auth: the non-admin user does not see exactly its one granted machine');
    const unary = await measureUnary(contestants, cfg.calls, progress);

    progress(`auth: ${cfg.echoSamples} keystrokes into a PTY terminal (SDK, admin token)`);
    let echoInserts: number[] = [];
    const echo = await withTerminal(admin, async (a, ch) => {
      await prepareEchoShell(ch);
      await probe.take();
      const ms = await measureEcho(ch, { samples: cfg.echoSamples, warmup: cfg.echoWarmup });
      echoInserts = await probe.take();
      return ms;
    });
    if (echoInserts.length !== cfg.echoSamples + cfg.echoWarmup) {
      problems.push(`auth: ${cfg.echoSamples + cfg.echoWarmup} keystrokes, but the control plane audited ${echoInserts.length} inputs`);
    }

    const paste = await measurePaste(admin, probe, cfg, progress, problems);
    return { cfg, unary, echo, echoInserts, micro, paste, problems };
  } catch (e) {
    if (cmdop) process.stderr.write(`\n${cmdop.logs()}\n`);
    throw e;
  } finally {
    for (const c of clients) c.close();
    await cmdop?.stop();
  }
}

// ------------------------------------------------------------------ unary

const ROUND = 100;

async function measureUnary(
  contestants: { label: string; outcome: UnaryResult['outcome']; run: () => Promise<unknown> }[],
  calls: number,
  progress: (msg: string) => void,
): Promise<UnaryResult[]> {
  progress(`auth: ${contestants.length} unary contestants, ${calls} sequential calls each (rounds of ${ROUND}, interleaved)`);
  const out = contestants.map((c) => ({ label: c.label, outcome: c.outcome, ms: [] as number[] }));
  // Warm-up: JIT, prepared statements, the connection's windows.
  for (const c of contestants) for (let i = 0; i < 200; i++) await c.run();
  for (let done = 0; done < calls; done += ROUND) {
    for (const [k, c] of contestants.entries()) {
      for (let i = 0; i < Math.min(ROUND, calls - done); i++) {
        const t0 = performance.now();
        await c.run();
        out[k].ms.push(performance.now() - t0);
      }
    }
  }
  return out;
}

// ------------------------------------------------------- micro-benchmarks

/**
 * AuthRepo.audit (one row like those an input message writes, queued) and
 * Access.principalOf (SHA-256 + the token SELECT + the user SELECT) in tight
 * loops on a temp DB opened by the product's store layer (SQLite, WAL),
 * in the bench's temp dir, each call timed on its own.
 */
async function microBench(dir: string, n: number): Promise<AuthCostResult['micro']> {
  fs.mkdirSync(dir, { recursive: true });
  const db = await openDb({ sqliteFile: path.join(dir, 'cmdop.sqlite') });
  const auth = new AuthRepo(db);
  try {
    const access = new Access(auth);
    await access.bootstrapAdmin(dir);
    const user = (await auth.users())[0];
    const { token } = await access.issue(TokenKind.API, user, { name: 'bench' });
    const unknown = `cmdop_pat_${randomBytes(32).toString('base64url')}`;

    const terminalId = randomUUID();
    const commandIds = Array.from({ length: n + 1000 }, () => randomUUID());
    const row = (i: number) => ({
      actor: user.name,
      action: 'input',
      machine: MACHINE,
      terminalId,
      mode: AttachMode.OPERATOR,
      commandId: commandIds[i],
      ok: true,
      detail: '',
      peer: 'ipv4:127.0.0.1:45678',
    });
    const audit: number[] = [];
    for (let i = 0; i < n + 1000; i++) {
      const r = row(i);
      const t0 = performance.now();
      auth.audit(r);
      if (i >= 1000) audit.push((performance.now() - t0) * 1000);
    }
    const timeAsync = async (fn: () => Promise<unknown>) => {
      const us: number[] = [];
      for (let i = 0; i < n + 1000; i++) {
        const t0 = performance.now();
        await fn();
        if (i >= 1000) us.push((performance.now() - t0) * 1000);
      }
      return us;
    };
    const tokenOk = await timeAsync(() => access.principalOf(token));
    const tokenUnknown = await timeAsync(() => access.principalOf(unknown).catch(() => undefined));
    return {
      audit: { label: 'audit insert', us: audit },
      tokenOk: { label: 'token check, accepted', us: tokenOk },
      tokenUnknown: { label: 'token check, unknown', us: tokenUnknown },
    };
  } finally {
    await auth.close();
    await db.close();
  }
}

// ------------------------------------------------------------------ PTY

async function withTerminal<T>(client: CmdopClient, fn: (a: TerminalAttachment, ch: ShellChannel) => Promise<T>): Promise<T> {
  const a = await client.terminal.open({ cols: 80, rows: 24 });
  try {
    return await fn(a, sdkShellChannel(a));
  } finally {
    a.close();
    await client.terminal.close(a.terminalId).catch(() => {});
  }
}

/** Text a paste could hold: printable, no control characters. */
function pastePayload(bytes: number): Buffer {
  return Buffer.from(randomBytes(Math.ceil((bytes * 3) / 4)).toString('base64').slice(0, bytes), 'latin1');
}

/**
 * The command a paste goes to: raw mode (no line limit, no echo, no
 * signals), reads exactly `bytes` and prints DONE. "DO''NE" as typed, so
 * only the command's output matches.
 */
const pasteCommand = (bytes: number) => `stty raw -echo; echo RE''ADY; head -c ${bytes} > /dev/null; echo DO''NE; stty sane\r`;

async function measurePaste(
  client: CmdopClient,
  probe: AuditProbe,
  cfg: AuthCostConfig,
  progress: (msg: string) => void,
  problems: string[],
): Promise<AuthCostResult['paste']> {
  const payload = pastePayload(cfg.pasteBytes);
  const messages = Math.ceil(payload.length / MAX_INPUT_BYTES);
  const mib = (payload.length / 1024 / 1024).toFixed(0);
  const cmdop: PasteResult = { label: 'CMDOP (SDK write())', ms: [], acceptedMs: [], auditRows: [], auditMs: [] };
  const raw: PasteResult = { label: 'raw node-pty', ms: [], acceptedMs: [], auditRows: [], auditMs: [] };
  await withTerminal(client, async (a, ch) => {
    const inputRows = async () =>
      (await client.auth.audit({ machine: MACHINE, limit: 100_000 })).filter((e) => e.action === 'input' && e.terminalId === a.terminalId).length;
    // One warm-up paste each, then interleaved timed ones.
    for (let rep = 0; rep <= cfg.pasteReps; rep++) {
      const timed = rep > 0;
      progress(`auth: paste of ${mib} MiB as ${messages} input messages, CMDOP ${timed ? `run ${rep}/${cfg.pasteReps}` : 'warm-up'}`);
      const ready = waitForOutput(ch, 'READY', 20_000);
      ch.write(pasteCommand(payload.length));
      await ready;
      await sleep(300);
      const rows0 = await inputRows();
      await probe.take();
      const done = waitForOutput(ch, 'DONE', 120_000);
      const t0 = performance.now();
      const accepted = a.write(payload).then(() => performance.now());
      const tDone = await done;
      const tAccepted = await accepted;
      const inserts = await probe.take();
      await sleep(300); // `stty sane` and the prompt
      const rows = (await inputRows()) - rows0;
      if (rows !== messages) problems.push(`auth: a paste of ${messages} input messages added ${rows} audit rows`);
      if (inserts.length !== messages) problems.push(`auth: a paste of ${messages} input messages made ${inserts.length} audit calls`);
      if (timed) {
        cmdop.ms.push(tDone - t0);
        cmdop.acceptedMs.push(tAccepted - t0);
        cmdop.auditRows.push(rows);
        cmdop.auditMs.push(inserts.reduce((x, y) => x + y, 0) / 1000);
      }
      progress(`auth: paste of ${mib} MiB, raw node-pty ${timed ? `run ${rep}/${cfg.pasteReps}` : 'warm-up'}`);
      const r = await rawPaste(payload);
      if (timed) raw.ms.push(r);
    }
  });
  return { cmdop, raw, messages };
}

/** The same paste written straight into a PTY spawned by node-pty in this process, in the same 64 KiB pieces. */
function rawPaste(payload: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const term = pty.spawn('sh', ['-c', `stty raw -echo; echo READY; head -c ${payload.length} > /dev/null; echo DONE`], {
      name: 'xterm-256color',
      cols: 80,
      rows: 24,
      cwd: os.tmpdir(),
      env: process.env,
    });
    let seen = '';
    let t0 = 0;
    const timer = setTimeout(() => {
      term.kill();
      reject(new Error(`raw paste: no DONE within 120 s; saw ${JSON.stringify(seen.slice(-200))}`));
    }, 120_000);
    term.onData((d) => {
      const now = performance.now();
      seen = (seen + d).slice(-4096);
      if (t0 === 0 && seen.includes('READY')) {
        seen = '';
        t0 = performance.now();
        for (let i = 0; i < payload.length; i += MAX_INPUT_BYTES) term.write(payload.subarray(i, i + MAX_INPUT_BYTES));
      } else if (t0 !== 0 && seen.includes('DONE')) {
        clearTimeout(timer);
        resolve(now - t0);
      }
    });
  });
}

// ---------------------------------------------------------------- report

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

type UKey = 'metric' | 'p50' | 'p90' | 'p99' | 'mean' | 'vsBase' | 'calls';
const UNARY_COLUMNS: Column<UKey>[] = [
  { key: 'metric', title: 'unary call, token' },
  { key: 'p50', title: 'p50 (ms)', numeric: true },
  { key: 'p90', title: 'p90 (ms)', numeric: true },
  { key: 'p99', title: 'p99 (ms)', numeric: true },
  { key: 'mean', title: 'mean (ms)', numeric: true },
  { key: 'vsBase', title: 'p50 − no-auth p50 (ms)', numeric: true },
  { key: 'calls', title: 'calls', numeric: true },
];

type DKey = 'metric' | 'cmdop' | 'against' | 'ratio';
const DATA_COLUMNS: Column<DKey>[] = [
  { key: 'metric', title: 'metric' },
  { key: 'cmdop', title: 'CMDOP', numeric: true },
  { key: 'against', title: 'compared with' },
  { key: 'ratio', title: 'ratio', numeric: true },
];

export function authCostReport(r: AuthCostResult): string {
  const base = r.unary.find((u) => u.outcome === 'baseline');
  const baseP50 = base ? percentile(base.ms, 50) : NaN;
  const unaryRows = r.unary.map((u) => ({
    metric: u.label,
    p50: fmt(percentile(u.ms, 50), 3),
    p90: fmt(percentile(u.ms, 90), 3),
    p99: fmt(percentile(u.ms, 99), 3),
    mean: fmt(mean(u.ms), 3),
    vsBase: u === base ? '—' : `${percentile(u.ms, 50) - baseP50 >= 0 ? '+' : ''}${fmt(percentile(u.ms, 50) - baseP50, 3)}`,
    calls: String(u.ms.length),
  }));

  const echoP50 = percentile(r.echo, 50);
  const echoP99 = percentile(r.echo, 99);
  const echoUs = `echo p50 ${fmt(echoP50 * 1000, 0)} µs`;
  const au = r.micro.audit.us;
  const insitu = r.echoInserts;
  const pct = (x: number) => `${(x * 100).toFixed(x < 0.01 ? 2 : 1)} %`;
  const pasteMs = median(r.paste.cmdop.ms);
  const rawMs = median(r.paste.raw.ms);
  const bytes = r.cfg.pasteBytes;
  const pasteMBps = mbPerS(bytes, pasteMs);
  const rawMBps = mbPerS(bytes, rawMs);
  const pasteAuditMs = median(r.paste.cmdop.auditMs);
  const mib = (bytes / 1024 / 1024).toFixed(0);
  const dataRows: Record<DKey, string>[] = [
    { metric: 'keystroke echo p50, PTY terminal (ms)', cmdop: fmt(echoP50, 3), against: '—', ratio: '—' },
    { metric: 'keystroke echo p99, PTY terminal (ms)', cmdop: fmt(echoP99, 3), against: '—', ratio: '—' },
    {
      metric: 'audit insert per keystroke, in the control plane, p50 (µs)',
      cmdop: fmt(percentile(insitu, 50), 1),
      against: echoUs,
      ratio: pct(percentile(insitu, 50) / (echoP50 * 1000)),
    },
    { metric: 'audit insert per keystroke, in the control plane, p99 / max (µs)', cmdop: `${fmt(percentile(insitu, 99), 1)} / ${fmt(Math.max(...insitu), 0)}`, against: '—', ratio: '—' },
    {
      metric: 'audit insert, tight loop on a temp DB, p50 (µs)',
      cmdop: fmt(percentile(au, 50), 1),
      against: echoUs,
      ratio: pct(percentile(au, 50) / (echoP50 * 1000)),
    },
    { metric: 'audit insert, tight loop on a temp DB, mean / p99 / max (µs)', cmdop: `${fmt(mean(au), 1)} / ${fmt(percentile(au, 99), 1)} / ${fmt(Math.max(...au), 0)}`, against: '—', ratio: '—' },
    {
      metric: 'token check, accepted: SHA-256 + 2 SELECTs, tight loop, p50 (µs)',
      cmdop: fmt(percentile(r.micro.tokenOk.us, 50), 1),
      against: `no-auth unary p50 ${fmt(baseP50 * 1000, 0)} µs`,
      ratio: pct(percentile(r.micro.tokenOk.us, 50) / (baseP50 * 1000)),
    },
    { metric: 'token check, unknown token, tight loop, p50 (µs)', cmdop: fmt(percentile(r.micro.tokenUnknown.us, 50), 1), against: '—', ratio: '—' },
    {
      metric: `paste ${mib} MiB as ${r.paste.messages} × 64 KiB inputs into a PTY (MB/s)`,
      cmdop: fmt(pasteMBps),
      against: `raw node-pty ${fmt(rawMBps)} MB/s`,
      ratio: `${(pasteMBps / rawMBps).toFixed(2)}×`,
    },
    {
      metric: `paste: its ${r.paste.messages} audit inserts, in the control plane (ms)`,
      cmdop: fmt(pasteAuditMs, 2),
      against: `paste time ${fmt(pasteMs, 0)} ms`,
      ratio: pct(pasteAuditMs / pasteMs),
    },
    {
      metric: 'paste: input audit rows written per paste (check)',
      cmdop: r.paste.cmdop.auditRows.join(', '),
      against: `${r.paste.messages} input messages`,
      ratio: '—',
    },
  ];

  const q = (xs: number[], d = 2) => `min ${fmt(Math.min(...xs), d)} p50 ${fmt(percentile(xs, 50), d)} p90 ${fmt(percentile(xs, 90), d)} p99 ${fmt(percentile(xs, 99), d)} max ${fmt(Math.max(...xs), d)}`;
  const s = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' ');
  const lines = [
    '',
    'Auth cost',
    '',
    renderGrid(UNARY_COLUMNS, unaryRows),
    '',
    renderGrid(DATA_COLUMNS, dataRows),
    '',
    'How to read it:',
    `  - unary: ${r.cfg.calls} sequential calls per row through the SDK (one connection per client), rows interleaved in`,
    `    rounds of ${ROUND} after 200 warm-up calls each. GetServerInfo checks no token: its latency is the gRPC round`,
    '    trip without auth, so "p50 − no-auth p50" is roughly what the token check (and the handler) adds. A refused',
    '    call also writes an audit row (authedUnary audits every UNAUTHENTICATED). The opaque token goes to the',
    '    OAuth access-token lookup (oidc-provider over SQLite); a cmdop_pat_ one to the SHA-256 + SELECT.',
    '  - echo: one key into `stty -icanon; cat > /dev/null` in a PTY shell (bench/echo.ts); each key is one input',
    '    message, i.e. one audit row written on the control plane\'s event loop. Audit has no off switch, so its cost',
    '    is measured twice: "in the control plane" wraps AuthRepo.audit (it queues the row; a batch is written later) in the bench\'s own control-plane process',
    '    (bench/auditProbe.ts, a `node -r` preload; it times the calls, changes nothing) during the echo and the',
    '    pastes; "tight loop" calls AuthRepo.audit / Access.principalOf back to back in the bench process on a temp',
    `    DB opened by the product's store layer (SQLite, WAL) on ${os.tmpdir()}, ${r.cfg.microIterations} timed iterations each`,
    '    after 1,000 untimed: hot caches, the floor. A keystroke\'s insert comes after an idle gap, cold.',
    `  - paste: SDK write() of ${bytes} bytes of base64 text (it splits into ${r.paste.messages} input messages, all sent at`,
    '    once) to `stty raw -echo; head -c N > /dev/null; echo DONE` in a PTY terminal, timed from the write to DONE;',
    '    raw node-pty writes the same pieces into a PTY in this process. MB = 10^6 bytes.',
    '',
    'Details:',
    `  echo: ${r.echo.length} samples, ${q(r.echo)} ms`,
    `  audit insert per keystroke, in the control plane: ${insitu.length} calls, ${q(insitu, 1)} µs`,
    `  audit insert, tight loop: ${q(au, 1)} µs`,
    `  token check, accepted: ${q(r.micro.tokenOk.us, 1)} µs; unknown: ${q(r.micro.tokenUnknown.us, 1)} µs`,
    `  paste CMDOP: runs ${s(r.paste.cmdop.ms)} ms (all inputs accepted after ${s(r.paste.cmdop.acceptedMs)} ms); ` +
      `raw node-pty: runs ${s(r.paste.raw.ms)} ms; audit inserts in the control plane per paste: ` +
      `${r.paste.cmdop.auditMs.map((x) => x.toFixed(1)).join(' ')} ms`,
    '',
    r.problems.length ? `Problems:\n${r.problems.map((p) => `  - ${p}`).join('\n')}` : 'Problems: none seen.',
    '',
  ];
  return lines.join('\n');
}
