// Which Chromium the browser tests (e2e/, Playwright) drive, and getting one
// on a fresh machine: the README's one test command must pass where nothing
// was installed by hand. In order:
//   1. CMDOP_CHROMIUM, when set (an explicit choice: used, or a failure
//      saying it is not there; never silently replaced);
//   2. a Chromium Playwright installed (npx playwright install chromium);
//   3. the system's, /usr/bin/chromium (Debian's chromium package);
//   4. as root with apt-get: install Debian's chromium, saying so;
//   5. else fail, naming the one command that fixes it.
// `chooseChromium` decides from facts passed in, so the decision is tested
// (test/chromium.test.ts) with made-up machines; `ensureChromium` gathers the
// facts of this one and acts. The config (playwright.config.ts) resolves the
// path; its global setup (e2e/globalSetup.ts) ensures it, once per run.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const SYSTEM_CHROMIUM = '/usr/bin/chromium';

/** How the console tests run Chromium (bench/render/cdp.ts starts it the same way). */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  // Software WebGL (SwiftShader), so the console's WebGL renderer can be tested without a GPU.
  '--enable-unsafe-swiftshader',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** What the choice depends on. */
export interface Machine {
  /** CMDOP_CHROMIUM, if set. */
  override?: string;
  /** Where Playwright's own Chromium is or would be (playwright-core's chromium.executablePath()); undefined if it names none. */
  playwrightChromium?: string;
  /** The effective user id (undefined where there is none, e.g. Windows). */
  uid?: number;
  /** Whether apt-get is on the PATH. */
  aptGet: boolean;
  exists(file: string): boolean;
}

export type Choice =
  | { action: 'use'; path: string; source: 'CMDOP_CHROMIUM' | 'playwright' | 'system' }
  | { action: 'install'; path: string; commands: string[][] }
  | { action: 'fail'; message: string };

export const APT_INSTALL: string[][] = [
  ['apt-get', 'update', '-qq'],
  ['apt-get', 'install', '-y', '-qq', 'chromium'],
];

export function chooseChromium(m: Machine): Choice {
  if (m.override) {
    if (m.exists(m.override)) return { action: 'use', path: m.override, source: 'CMDOP_CHROMIUM' };
    return { action: 'fail', message: `CMDOP_CHROMIUM names ${m.override}, which is not there: point it at a Chromium, or unset it` };
  }
  if (m.playwrightChromium && m.exists(m.playwrightChromium)) return { action: 'use', path: m.playwrightChromium, source: 'playwright' };
  if (m.exists(SYSTEM_CHROMIUM)) return { action: 'use', path: SYSTEM_CHROMIUM, source: 'system' };
  if (m.aptGet && m.uid === 0) return { action: 'install', path: SYSTEM_CHROMIUM, commands: APT_INSTALL };
  // One command, the one that works on this machine.
  const command = m.aptGet ? 'sudo sh -c "apt-get update && apt-get install -y chromium"' : 'npx playwright install chromium';
  return {
    action: 'fail',
    message: `no Chromium for the browser tests: Playwright has installed none and there is none at ${SYSTEM_CHROMIUM}. Run:\n\n    ${command}\n\n(or set CMDOP_CHROMIUM to a Chromium's path)`,
  };
}

/** The facts of this machine. */
export function thisMachine(): Machine {
  let playwrightChromium: string | undefined;
  try {
    // Where Playwright keeps its Chromium (PLAYWRIGHT_BROWSERS_PATH respected); it throws on platforms it has none for.
    playwrightChromium = chromium.executablePath();
  } catch {
    playwrightChromium = undefined;
  }
  const onPath = (name: string) =>
    (process.env.PATH ?? '').split(path.delimiter).some((d) => {
      try {
        fs.accessSync(path.join(d, name), fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
  return {
    override: process.env.CMDOP_CHROMIUM || undefined,
    playwrightChromium,
    uid: process.getuid?.(),
    aptGet: onPath('apt-get'),
    exists: (f) => fs.existsSync(f),
  };
}

/**
 * The Chromium to launch, for the config: the one there is, or the one the
 * global setup is about to install. Cheap and without side effects, since
 * Playwright evaluates its config in the runner and again in every worker.
 */
export function chromiumPath(m: Machine = thisMachine()): string {
  const c = chooseChromium(m);
  return c.action === 'fail' ? (m.override ?? SYSTEM_CHROMIUM) : c.path;
}

/** Runs a command in the foreground; returns an error's text, or undefined when it succeeded. */
export type Run = (cmd: string, args: string[]) => string | undefined;

const run: Run = (cmd, args) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return r.status === 0 ? undefined : (r.error?.message ?? `exit ${r.status ?? r.signal}`);
};

/** Makes sure there is a Chromium to run (installing Debian's when it may); returns its path or throws saying what to do. */
export function ensureChromium(m: Machine = thisMachine(), log: (line: string) => void = console.log, exec: Run = run): string {
  const c = chooseChromium(m);
  if (c.action === 'fail') throw new Error(c.message);
  if (c.action === 'use') return c.path;
  log(`No Chromium for the browser tests: installing Debian's chromium (${c.commands.map((a) => a.join(' ')).join(' && ')}) as root.`);
  for (const [cmd, ...args] of c.commands) {
    const failed = exec(cmd, args);
    if (failed) throw new Error(`${cmd} ${args.join(' ')} failed (${failed}): install Debian's chromium package, or set CMDOP_CHROMIUM`);
  }
  if (!m.exists(c.path)) throw new Error(`Debian's chromium was installed, yet there is no ${c.path}`);
  log(`Installed ${c.path}.`);
  return c.path;
}
