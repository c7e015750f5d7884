// Issue 5: the console render benchmark (BENCH_ONLY=console). "Render 50 MB
// of `cat` output in the console vs the same bytes written to a bare
// xterm.js page (target >= 0.8x), and the longest main-thread stall during it
// (target < 200 ms)." Issue 15's targets, which the table shows: ">= 0.5x a
// bare xterm.js page, with no main-thread stall over 100 ms".
//
//  - Console: a control plane and agent (child processes, bench/cmdopCluster.ts),
//    the console they serve opened in Debian's Chromium (playwright-core) with
//    the admin's token, one shell tab. Its prompt is set to a fixed string,
//    then `cat FILE` is typed and timed from the Enter keydown (in the page)
//    to the first animation frame at which the tab has rendered every byte
//    that follows Enter: the file with the PTY's CR before each LF, plus the
//    shell's own bytes around it (echoed CRLF, bracketed-paste switches, the
//    next prompt), counted once beforehand on `cat /dev/null`. "Rendered" is
//    the test hook's bytes(): the stream position acknowledged from xterm's
//    write callback.
//  - Bare: a page with only xterm.js (bench/render/barePage.ts), same package,
//    same options as the console's terminal (app/renderer/src/term/xterm.ts)
//    at the same cols x rows, same (DOM) renderer; the same bytes, CRs
//    included, fetched into memory before the clock starts, written in chunks
//    with the gateway's window of unacknowledged bytes.
//  - Both pages are watched by the same in-page monitor (bench/render/monitor.ts):
//    long tasks and gaps between animation frames during each run, and on the
//    console the WebSocket messages and what waited in the page at each frame.
//  - For reference, no browser: the same `cat` in another shell through the
//    same gateway to a Node client that renders nothing (bench/render/wsShell.ts):
//    what the agent, control plane and gateway deliver here, the console's ceiling.
//
// A warm-up run of each first (JIT, and a full scrollback on both pages, as
// in every timed run after it), then rounds of bare, Node client, console;
// the table shows medians (a 2-core machine is noisy) and the worst stall.
//
// Knobs: BENCH_RENDER_MB (file size, default 50), BENCH_RENDER_ROUNDS (3),
// BENCH_RENDER_CHUNK_KIB (the bare page's write size, default 64; see
// DEFAULT_CHUNK_KIB). For digging: BENCH_RENDER_PROFILE=DIR writes a CPU
// profile (.cpuprofile) and a timeline trace (.trace.json, for Perfetto or
// chrome://tracing) of two more runs on each page to DIR.
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { HIGH_WATERMARK, LOW_WATERMARK } from '../control-plane/transports/ws/stream';
import { CmdopCluster, startCmdop } from './cmdopCluster';
import { cpuSeconds } from './procfs';
import { ProcessSet, sleep } from './procs';
import { BareTermOptions, bareTail, openBarePage, runBare, serveBarePage, type BarePageServer } from './render/barePage';
import { CdpBrowser, CdpPage, launchCdpBrowser } from './render/cdp';
import { PageRun, installMonitor } from './render/monitor';
import { openWsShell, type WsShell } from './render/wsShell';
import { mbPerS, median, percentile } from './stats';
import { Column, Verdict, fmt, ratio, renderGrid, verdict } from './table';
import { DataFile, makeDataFile } from './throughput';

export interface ConsoleRenderConfig {
  mb: number;
  rounds: number;
  /** The bare page's write size, bytes. */
  chunkBytes: number;
  /** Lines of the file each page renders once before the timed rounds. */
  warmupLines: number;
}

/**
 * What the console's xterm is handed per write is one gateway message's
 * output: an agent chunk (up to 256 KiB; the agent batches PTY reads of
 * ~4 KiB for 2 ms while output streams). During a 50 MB `cat` here they were
 * p10 4 KiB, p50 40 KiB, p90 118 KiB (the report prints them each run). The
 * bare page's figure barely moves between 16, 64 and 128 KiB writes.
 */
const DEFAULT_CHUNK_KIB = 64;

export function consoleRenderConfig(envNumber: (name: string, dflt: number) => number): ConsoleRenderConfig {
  return {
    mb: envNumber('BENCH_RENDER_MB', 50),
    rounds: Math.round(envNumber('BENCH_RENDER_ROUNDS', 3)),
    chunkBytes: Math.round(envNumber('BENCH_RENDER_CHUNK_KIB', DEFAULT_CHUNK_KIB) * 1024),
    warmupLines: 30_000, // ~2.3 MB: fills the 5000-line scrollback several times over
  };
}

/** One timed run on one page, with the CPU the processes around it used. */
export interface RenderRun extends PageRun {
  /** CPU seconds during the run: Chromium's processes by type, the control plane, the agent. */
  cpu: Record<string, number>;
}

export interface ConsoleRenderResult {
  cfg: ConsoleRenderConfig;
  file: { bytes: number; lines: number; ptyBytes: number };
  browser: string;
  /** The console terminal's size, which the bare page copies. */
  cols: number;
  rows: number;
  /** Which xterm renderer the console's tab uses ('dom' when WebGL would be software-only). */
  renderer: string;
  /** Bytes the shell adds around `cat`'s output after Enter (echo, bracketed paste, prompt). */
  shellBytes: number;
  console: RenderRun[];
  bare: RenderRun[];
  /** The same `cat` to a Node WebSocket client that renders nothing (render/wsShell.ts). */
  ws: { ms: number; cpu: Record<string, number> }[];
  problems: string[];
}

const MACHINE = 'render-bench';
/**
 * A prompt no line of base64 can contain, so "the prompt is back" is the last
 * line being exactly this (its space included: xterm keeps written spaces).
 */
const PROMPT = 'render$ ';

export async function measureConsoleRender(opts: {
  dir: string;
  procs: ProcessSet;
  cfg: ConsoleRenderConfig;
  progress: (msg: string) => void;
  /** What a signal must stop besides `procs` (the browser, the page server), while the phase runs. */
  cleanups: Set<() => Promise<void>>;
}): Promise<ConsoleRenderResult> {
  const { dir, procs, cfg, progress } = opts;
  fs.mkdirSync(dir, { recursive: true });
  progress(`console: writing ${cfg.mb} MB of base64 text`);
  const file = makeDataFile(path.join(dir, 'render.txt'), cfg.mb * 1e6);
  // What the PTY turns it into (ONLCR): what the console will be sent, and what the bare page writes.
  const ptyData = crlf(fs.readFileSync(file.path));
  if (ptyData.length !== file.ptyBytes) throw new Error(`CR-LF copy is ${ptyData.length} bytes, expected ${file.ptyBytes}`);
  const warmupLines = Math.min(cfg.warmupLines, file.lines);
  const timeoutMs = 60_000 + cfg.mb * 3000; // 50 MB: 210 s, i.e. never unless something is stuck

  progress('console: starting a CMDOP control plane and agent, the bare page server and Chromium');
  let cmdop: CmdopCluster | undefined;
  let server: BarePageServer | undefined;
  let browser: CdpBrowser | undefined;
  let wsShell: WsShell | undefined;
  const cleanup = async () => {
    wsShell?.close();
    await browser?.close();
    await server?.close();
    await cmdop?.stop();
  };
  opts.cleanups.add(cleanup);
  try {
    cmdop = await startCmdop(path.join(dir, 'cmdop'), procs, MACHINE);
    const admin = cmdop.newClient();
    const web = await admin.auth.serverInfo().then((i) => i.webUrl, (e) => (admin.close(), Promise.reject(e)));
    admin.close();
    server = await serveBarePage(ptyData);
    browser = await launchCdpBrowser(procs);
    const cpuPids = { 'control plane': cmdop.controlPlanePid, agent: cmdop.agentPid, 'bench (node)': process.pid };

    // ---- the console, one shell tab with a known prompt
    const con = await browser.newPage();
    await con.addInitScript(installMonitor);
    await con.goto(`${web}/#token=${cmdop.token}`);
    const row = `[data-testid=machine-row][data-machine="${MACHINE}"]`;
    await con.waitFor(
      (sel: string) => !!(globalThis as any).document.querySelector(sel),
      `${row} [data-testid=machine-state][data-state=CONNECTED]`,
      30_000,
      `${MACHINE} CONNECTED in the console`,
    );
    await con.click('[data-testid=machines-tab]');
    await con.click(`${row} [data-testid=open-terminal]`);
    const id = await waitFor(async () => (await hook.terminals(con))[0], 15_000, 'a terminal tab');
    await waitFor(async () => /\S/.test(await hook.screen(con, id)), 15_000, 'the first prompt');
    const termSel = `[data-testid=terminal][data-terminal-id="${id}"][data-mode=operator]`;
    await con.click(termSel);
    // No PROMPT_COMMAND, no title escapes in PS1: the shell's bytes per command are the same every time.
    await con.type(`PROMPT_COMMAND=; PS1='${PROMPT}'; stty size\n`);
    const sized = await waitScreen(con, id, new RegExp(`^(\\d+) (\\d+)\\n${escapeRe(PROMPT)}$`, 'm'));
    const [rows, cols] = sized.match(/^(\d+) (\d+)$/m)!.slice(1).map(Number);
    const tab = (await hook.tabs(con)).find((t) => t.terminalId === id);
    const renderer = tab?.renderer ?? '?';

    // The shell's own bytes after Enter, measured on a command with no output.
    const shellBytes = await consoleCommand(con, id, 'cat /dev/null', async (b0, enter) => {
      await enter();
      await waitScreen(con, id, new RegExp(`\\n${escapeRe(PROMPT)}$`));
      await sleep(300); // nothing more comes
      return (await hook.bytes(con, id)) - b0;
    });

    // ---- the bare page, at the console terminal's size
    const bare = await browser.newPage();
    await bare.addInitScript(installMonitor);
    const termOpts: BareTermOptions = {
      cols,
      rows,
      // app/renderer/src/term/xterm.ts with the default settings (state/settings.ts)
      fontSize: 14,
      lineHeight: 1.2, // LINE_HEIGHT there
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace',
      scrollback: 5000,
      theme: { background: '#14161a', foreground: '#d7dae0', cursor: '#d7dae0', selectionBackground: '#3a4a63' },
    };
    const loaded = await openBarePage(bare, server.url, termOpts);
    // The mouse rests over the terminal on both pages (the console's: where it clicked to focus):
    // Chromium sends a page mouse moves when what is under the pointer changes, as output scrolls by.
    await bare.hover('#t');
    if (loaded !== ptyData.length) throw new Error(`the bare page fetched ${loaded} bytes, expected ${ptyData.length}`);
    const writeOpts = { chunk: cfg.chunkBytes, high: HIGH_WATERMARK, low: LOW_WATERMARK, timeoutMs };

    const chrome = chromiumPids();
    const withCpu = async (fn: () => Promise<PageRun>): Promise<RenderRun> => {
      const pids = { ...chrome.byType(), ...cpuPids };
      const before = cpuOf(pids);
      const r = await fn();
      const after = cpuOf(pids);
      return { ...r, cpu: Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]])) };
    };
    const runConsole = (command: string, bytes: number) =>
      withCpu(async () => {
        await con.bringToFront();
        return consoleCommand(con, id, command, async (b0, enter) => {
          const run = con.evaluate(
            ({ id, target, timeoutMs }: { id: string; target: { b0: number; bytes: number }; timeoutMs: number }) => {
              const w = globalThis as any;
              return w.__benchMon.until(() => w.__cmdop.bytes(id) - target.b0, target.bytes, timeoutMs) as Promise<PageRun>;
            },
            { id, target: { b0, bytes: bytes + shellBytes }, timeoutMs },
          );
          await enter();
          return run;
        });
      });
    wsShell = await openWsShell(web, cmdop.token, MACHINE, cols, rows);
    await wsShell.prepare(PROMPT);
    const shell = wsShell;
    const runWs = async (command: string, bytes: number) => {
      const pids = { ...chrome.byType(), ...cpuPids };
      const before = cpuOf(pids);
      const ms = await shell.timed(command, bytes, timeoutMs);
      const after = cpuOf(pids);
      return { ms, cpu: Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]])) };
    };
    const runBareOnce = (bytes: number) =>
      withCpu(async () => {
        await bare.bringToFront();
        return runBare<PageRun>(bare, { ...writeOpts, bytes });
      });

    const warmBytes = warmupLines * (file.ptyBytes / file.lines);
    progress(`console: warm-up, ${warmupLines} lines on each page`);
    await runBareOnce(warmBytes);
    await runWs(`head -n ${warmupLines} ${file.path}`, warmBytes);
    await runConsole(`head -n ${warmupLines} ${file.path}`, warmBytes);

    const result: ConsoleRenderResult = {
      cfg,
      file: { bytes: file.bytes, lines: file.lines, ptyBytes: file.ptyBytes },
      browser: browser.version,
      cols,
      rows,
      renderer,
      shellBytes,
      console: [],
      bare: [],
      ws: [],
      problems: [],
    };
    const lastLine = lastLineOf(file);
    for (let i = 1; i <= cfg.rounds; i++) {
      progress(`console: round ${i}/${cfg.rounds}: bare xterm.js page`);
      const b = await runBareOnce(ptyData.length);
      result.bare.push(b);
      progress(`console: round ${i}/${cfg.rounds}: bare ${fmt(mbPerS(file.bytes, b.ms))} MB/s; Node WebSocket client`);
      const n = await runWs(`cat ${file.path}`, file.ptyBytes);
      result.ws.push(n);
      progress(`console: round ${i}/${cfg.rounds}: Node WebSocket client ${fmt(mbPerS(file.bytes, n.ms))} MB/s; console \`cat\``);
      const startedAt = performance.now();
      const c = await runConsole(`cat ${file.path}`, file.ptyBytes);
      result.console.push(c);
      progress(`console: round ${i}/${cfg.rounds}: console ${fmt(mbPerS(file.bytes, c.ms))} MB/s (${((performance.now() - startedAt) / 1000).toFixed(1)} s)`);
      // Both screens end with the file's last line (the console's with the prompt after it).
      const consoleTail = (await hook.screen(con, id)).split('\n').slice(-2);
      if (consoleTail[0] !== lastLine || consoleTail[1] !== PROMPT) {
        result.problems.push(`round ${i}: the console's screen ends ${JSON.stringify(consoleTail)}, expected the file's last line and the prompt`);
      }
      const bareLast = (await bareTail(bare, 1))[0];
      if (bareLast !== lastLine) result.problems.push(`round ${i}: the bare page's screen ends ${JSON.stringify(bareLast)}, expected the file's last line`);
    }
    // For digging: one more run on each page under Chromium's CPU profiler (not in the figures).
    const profileDir = process.env.BENCH_RENDER_PROFILE;
    if (profileDir) {
      fs.mkdirSync(profileDir, { recursive: true });
      for (const [name, page, run] of [
        ['bare', bare, () => runBareOnce(ptyData.length)],
        ['console', con, () => runConsole(`cat ${file.path}`, file.ptyBytes)],
      ] as const) {
        progress(`console: profiling a run of the ${name} page`);
        await page.send('Profiler.enable');
        await page.send('Profiler.setSamplingInterval', { interval: 200 });
        await page.send('Profiler.start');
        const r = await run();
        const { profile } = await page.send('Profiler.stop');
        await page.send('Profiler.disable');
        const out = path.join(profileDir, `${name}.cpuprofile`);
        fs.writeFileSync(out, JSON.stringify(profile));
        progress(`console: ${name} profiled at ${fmt(mbPerS(file.bytes, r.ms))} MB/s: ${out}`);
        // And a timeline trace (style, layout, paint, tasks: what a CPU profile calls "(program)").
        const events: unknown[] = [];
        const off = page.on('Tracing.dataCollected', (e: { value: unknown[] }) => events.push(...e.value));
        const complete = new Promise<void>((resolve) => {
          const done = page.on('Tracing.tracingComplete', () => (done(), resolve()));
        });
        await page.send('Tracing.start', {
          transferMode: 'ReportEvents',
          traceConfig: { includedCategories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'blink', 'toplevel', 'v8'] },
        });
        const t = await run();
        await page.send('Tracing.end');
        await complete;
        off();
        const traceOut = path.join(profileDir, `${name}.trace.json`);
        fs.writeFileSync(traceOut, JSON.stringify({ traceEvents: events }));
        progress(`console: ${name} traced at ${fmt(mbPerS(file.bytes, t.ms))} MB/s: ${traceOut}`);
      }
    }
    for (const [name, runs] of [['console', result.console], ['bare', result.bare]] as const) {
      const hidden = runs.filter((x) => x.visibility !== 'visible').length;
      if (hidden) result.problems.push(`${name}: ${hidden} run(s) on a page that was not visible (not drawn)`);
    }
    if (process.env.BENCH_RENDER_JSON) fs.writeFileSync(process.env.BENCH_RENDER_JSON, JSON.stringify(result));
    // Every byte counted, none more: the console's position is exactly where it should be.
    await sleep(300);
    const expectedEnd = (await hook.written(con, id)) === (await hook.bytes(con, id));
    if (!expectedEnd) result.problems.push('the console handed xterm more bytes than it rendered (written ≠ bytes)');
    return result;
  } catch (e) {
    if (cmdop) process.stderr.write(`\n${cmdop.logs()}\n`);
    throw e;
  } finally {
    opts.cleanups.delete(cleanup);
    await cleanup();
  }
}

// ------------------------------------------------------------ the console

/** The console's test hook (app/renderer/src/testHook.ts), read from the page. */
const hook = {
  terminals: (p: CdpPage) => p.evaluate(() => ((globalThis as any).__cmdop?.terminals() ?? []) as string[]),
  screen: (p: CdpPage, id: string) => p.evaluate((x: string) => (globalThis as any).__cmdop.screenText(x) as string, id),
  bytes: (p: CdpPage, id: string) => p.evaluate((x: string) => (globalThis as any).__cmdop.bytes(x) as number, id),
  written: (p: CdpPage, id: string) => p.evaluate((x: string) => (globalThis as any).__cmdop.written(x) as number, id),
  tabs: (p: CdpPage) => p.evaluate(() => (globalThis as any).__cmdop.tabs() as { terminalId: string; renderer: string }[]),
};

/**
 * Types `command` into the tab, waits for its echo, notes the tab's byte
 * position, arms the monitor (its clock starts at the Enter keydown) and
 * hands `measure` that position and a function that presses Enter.
 */
async function consoleCommand<T>(
  page: CdpPage,
  id: string,
  command: string,
  measure: (b0: number, enter: () => Promise<void>) => Promise<T>,
): Promise<T> {
  await page.type(command);
  await waitScreen(page, id, new RegExp(`\\n${escapeRe(`${PROMPT}${command}`)}$`));
  await sleep(100); // the echo's bytes are acknowledged too
  const b0 = await hook.bytes(page, id);
  await page.evaluate(() => (globalThis as any).__benchMon.arm(true));
  const r = await measure(b0, () => page.pressEnter());
  // The prompt is back before the next command is typed.
  await waitScreen(page, id, new RegExp(`\\n${escapeRe(PROMPT)}$`));
  await page.evaluate(() => (globalThis as any).__benchMon.disarm());
  return r;
}

async function waitScreen(page: CdpPage, id: string, re: RegExp, timeoutMs = 30_000): Promise<string> {
  let last = '';
  try {
    await waitFor(async () => re.test((last = await hook.screen(page, id))), timeoutMs, String(re));
  } catch (e) {
    throw new Error(`${(e as Error).message}; the screen ends:\n${last.split('\n').slice(-8).join('\n')}`);
  }
  return last;
}

/** Polls `fn` every 50 ms until it returns something truthy. */
async function waitFor<T>(fn: () => Promise<T>, timeoutMs: number, what: string): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `data` with a CR before every LF: what a PTY's line discipline (ONLCR) makes of `cat`'s output. */
function crlf(data: Buffer): Buffer {
  let lf = 0;
  for (let i = data.indexOf(10); i >= 0; i = data.indexOf(10, i + 1)) lf++;
  const out = Buffer.allocUnsafe(data.length + lf);
  let o = 0;
  let from = 0;
  for (let i = data.indexOf(10); i >= 0; i = data.indexOf(10, i + 1)) {
    o += data.copy(out, o, from, i);
    out[o++] = 13;
    out[o++] = 10;
    from = i + 1;
  }
  data.copy(out, o, from);
  return out;
}

function lastLineOf(file: DataFile): string {
  const fd = fs.openSync(file.path, 'r');
  try {
    const tail = Buffer.alloc(200);
    const n = fs.readSync(fd, tail, 0, tail.length, Math.max(0, file.bytes - tail.length));
    return tail.subarray(0, n).toString().trimEnd().split('\n').pop()!;
  } finally {
    fs.closeSync(fd);
  }
}

// ------------------------------------------------------------ CPU

/**
 * Chromium's processes (the bench's child `chromium` and its descendants),
 * by type: browser, gpu, renderer (both pages' renderers summed: only one
 * page works at a time), utility... Looked up when asked, as renderers come
 * and go with pages.
 */
function chromiumPids(): { byType(): Record<string, number[]> } {
  const children = (): Map<number, number[]> => {
    const m = new Map<number, number[]>();
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        m.set(ppid, [...(m.get(ppid) ?? []), Number(d)]);
      } catch {
        // gone
      }
    }
    return m;
  };
  const typeOf = (pid: number): string => {
    try {
      // Chromium rewrites its children's command lines into one space-separated string.
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const name = path.basename(cmdline.split(/[\0 ]/)[0]);
      if (!/chrom/.test(name) || /crashpad/.test(name)) return '';
      const t = /--type=([^\0 ]+)/.exec(cmdline)?.[1];
      if (!t) return 'browser';
      if (t === 'gpu-process') return 'gpu';
      if (t === 'zygote') return '';
      return t; // renderer, utility, ...
    } catch {
      return '';
    }
  };
  return {
    byType() {
      const kids = children();
      const out: Record<string, number[]> = {};
      const walk = (pid: number) => {
        for (const c of kids.get(pid) ?? []) {
          const t = typeOf(c);
          if (t) (out[`chromium ${t}`] ??= []).push(c);
          walk(c);
        }
      };
      walk(process.pid);
      return out;
    },
  };
}

function cpuOf(pids: Record<string, number | number[]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(pids)) {
    out[k] = (Array.isArray(v) ? v : [v]).reduce((s, p) => s + (cpuSeconds(p) || 0), 0);
  }
  return out;
}

// ------------------------------------------------------------ report

type Key = 'metric' | 'console' | 'bare' | 'ratio' | 'target' | 'verdict';
const COLUMNS: Column<Key>[] = [
  { key: 'metric', title: 'metric' },
  { key: 'console', title: 'console', numeric: true },
  { key: 'bare', title: 'bare xterm.js', numeric: true },
  { key: 'ratio', title: 'console/bare', numeric: true },
  { key: 'target', title: 'target' },
  { key: 'verdict', title: 'result' },
];

/**
 * What the console's frame timeline and WebSocket log say about one run:
 * how often the page had caught up (nothing received waiting to be rendered,
 * so it was waiting for data), and the round trip from an acknowledgement to
 * the next output.
 */
function flowOf(run: RenderRun): { caughtUpPct: number; ackToDataMs: number[]; acks: number } {
  const caughtUp = run.timeline.filter(([, got, done]) => got - done < 4096).length;
  const ackToDataMs: number[] = [];
  let acks = 0;
  let ackAt: number | undefined;
  for (const [t, n] of run.wsLog) {
    if (n < 0) {
      acks++;
      ackAt ??= t; // the first ack since output last arrived
    } else if (ackAt !== undefined) {
      ackToDataMs.push(t - ackAt);
      ackAt = undefined;
    }
  }
  return { caughtUpPct: (caughtUp / Math.max(1, run.timeline.length)) * 100, ackToDataMs, acks };
}

export function consoleRenderReport(r: ConsoleRenderResult): string {
  const rateOf = (ms: number) => mbPerS(r.file.bytes, ms);
  const rate = (runs: { ms: number }[]) => median(runs.map((x) => rateOf(x.ms)));
  const worst = (runs: RenderRun[], k: 'maxLongTaskMs' | 'maxFrameGapMs') => Math.max(...runs.map((x) => x[k]));
  const c = rate(r.console);
  const b = rate(r.bare);
  const n = rate(r.ws);
  const cStall = worst(r.console, 'maxLongTaskMs');
  const bStall = worst(r.bare, 'maxLongTaskMs');
  const cGap = worst(r.console, 'maxFrameGapMs');
  const bGap = worst(r.bare, 'maxFrameGapMs');
  const mb = fmt(r.file.bytes / 1e6, 0);
  const row = (metric: string, con: string, bare: string, rat: string, target = '(info)', v: Verdict = ''): Record<Key, string> => ({
    metric,
    console: con,
    bare,
    ratio: rat,
    target,
    verdict: v,
  });
  const rows: Record<Key, string>[] = [
    row(`render \`cat\` of ${mb} MB (MB/s, median)`, fmt(c), fmt(b), ratio(c, b), '≥ 0.5× bare', verdict([c >= 0.5 * b])),
    row('longest main-thread task, worst run (ms)', fmt(cStall, 0), fmt(bStall, 0), ratio(cStall, bStall), '< 100 ms', verdict([cStall < 100])),
    row('longest gap between frames, worst run (ms)', fmt(cGap, 0), fmt(bGap, 0), ratio(cGap, bGap)),
    row(
      'time in long tasks, median run (ms)',
      fmt(median(r.console.map((x) => x.longTaskTotalMs)), 0),
      fmt(median(r.bare.map((x) => x.longTaskTotalMs)), 0),
      '—',
    ),
    row(`no browser: \`cat\` to a Node WebSocket client (MB/s)`, fmt(n), fmt(b), ratio(n, b), "(info: the console's ceiling)"),
  ];
  const secs = (runs: { ms: number }[]) => runs.map((x) => (x.ms / 1000).toFixed(2)).join(' ');
  const rates = (runs: { ms: number }[]) => runs.map((x) => fmt(rateOf(x.ms))).join(' ');
  const cpu = (runs: { cpu: Record<string, number> }[]) => {
    const keys = [...new Set(runs.flatMap((x) => Object.keys(x.cpu)))];
    const per = keys
      .map((k) => [k, median(runs.map((x) => x.cpu[k] ?? 0))] as const)
      .filter(([, v]) => v >= 0.01)
      .sort((a, b) => b[1] - a[1]);
    const total = per.reduce((sum, [, v]) => sum + v, 0);
    return `${total.toFixed(2)} s: ` + per.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
  };
  const ws = r.console.flatMap((x) => x.wsSizes);
  const wsLine =
    ws.length > 0
      ? `${ws.length} WebSocket messages received over ${r.console.length} runs, sizes p10 ${percentile(ws, 10)} p50 ${percentile(ws, 50)} ` +
        `p90 ${percentile(ws, 90)} max ${percentile(ws, 100)} bytes`
      : 'no WebSocket messages seen';
  const flows = r.console.map(flowOf);
  const ackToData = flows.flatMap((f) => f.ackToDataMs);
  const held = r.console.flatMap((x) => x.timeline.map(([, got, done]) => got - done));
  const kib = (x: number) => (x / 1024).toFixed(0);
  const noLongTasks = r.console.concat(r.bare).some((x) => !x.longTaskSupported);
  const lines = [
    '',
    'Console render (issue 5; issue 15\'s targets)',
    `${r.browser}; ${r.cols}×${r.rows} terminal, xterm.js renderer: ${r.renderer}; ` +
      `file: ${r.file.bytes} bytes of base64 text in ${r.file.lines} lines (${r.file.ptyBytes} through the PTY); ` +
      `${r.cfg.rounds} rounds (bare, Node client, console), medians; MB = 10^6 bytes of the file`,
    '',
    renderGrid(COLUMNS, rows),
    '',
    'How to read it:',
    '  - console: `cat FILE` typed into a shell tab of the console (control plane + agent on loopback, Chromium headless),',
    '    timed from the Enter keydown in the page to the first animation frame at which the tab has acknowledged',
    `    (xterm's write callback) every byte after Enter: the file with a CR per line, plus the shell's ${r.shellBytes} bytes`,
    '    around it (counted on `cat /dev/null`). The PTY, agent, control plane and WebSocket are part of the time.',
    '  - bare: the same bytes (CRs included) in a page with only xterm.js (same package, options, size and DOM renderer),',
    '    fetched into memory before the clock starts (no network in this figure), written in',
    `    ${r.cfg.chunkBytes / 1024} KiB chunks with at most the gateway's window unacknowledged (${HIGH_WATERMARK / 1024} KiB high, ` +
      `${LOW_WATERMARK / 1024} KiB low), timed from the first write to the frame that saw the last callback.`,
    "  - stall: Chromium's long tasks (PerformanceObserver 'longtask', tasks over 50 ms; 0 = none) overlapping the run;",
    '    frame gap: the longest time between two animation frames during it. Both pages share the 2 cores with',
    '    everything else the run needs (for the console: control plane, agent, shell).',
    '  - no browser: the same `cat` in another shell on the same agent, through the same gateway, to the SDK\'s gateway',
    '    client on the `ws` package in the bench process, acknowledging every output message as it arrives.',
    '  - Chromium is driven over a bare DevTools connection (no Playwright: its Network domain would copy every',
    '    WebSocket frame out of the page); the mouse rests over the terminal on both pages.',
    ...(noLongTasks ? ['  - NOTE: the long task API was not available in a page; only the frame gaps are measured.'] : []),
    '',
    'Details:',
    `  console: runs ${secs(r.console)} s = ${rates(r.console)} MB/s; long tasks per run ${r.console.map((x) => x.longTasks).join(' ')}, ` +
      `longest ${r.console.map((x) => fmt(x.maxLongTaskMs, 0)).join(' ')} ms; frame gaps ${r.console.map((x) => fmt(x.maxFrameGapMs, 0)).join(' ')} ms`,
    `    ${wsLine}`,
    `    received but not yet rendered, at each frame: p50 ${kib(percentile(held, 50))} p90 ${kib(percentile(held, 90))} ` +
      `max ${kib(percentile(held, 100))} KiB; frames with the page caught up (under 4 KiB waiting): ` +
      `${flows.map((f) => fmt(f.caughtUpPct, 0)).join(' ')} %`,
    `    acks sent per run ${flows.map((f) => f.acks).join(' ')}; first ack after output -> next output: ` +
      `p50 ${fmt(percentile(ackToData, 50))} p90 ${fmt(percentile(ackToData, 90))} ms`,
    `    CPU per run (median) ${cpu(r.console)}`,
    `  Node WebSocket client: runs ${secs(r.ws)} s = ${rates(r.ws)} MB/s; CPU per run (median) ${cpu(r.ws)}`,
    `  bare:    runs ${secs(r.bare)} s = ${rates(r.bare)} MB/s; long tasks per run ${r.bare.map((x) => x.longTasks).join(' ')}, ` +
      `longest ${r.bare.map((x) => fmt(x.maxLongTaskMs, 0)).join(' ')} ms; frame gaps ${r.bare.map((x) => fmt(x.maxFrameGapMs, 0)).join(' ')} ms`,
    `    CPU per run (median) ${cpu(r.bare)}`,
    '',
    r.problems.length ? `Problems:\n${r.problems.map((p) => `  - ${p}`).join('\n')}` : 'Problems: none seen.',
    '',
  ];
  return lines.join('\n');
}
