// Packaging of the desktop app, checked without the Electron binary (it cannot
// be downloaded here, so electron-builder cannot build an installer):
// - node-pty loads and runs a PTY from the layout asarUnpack produces, and its
//   addons are N-API, so Electron needs no rebuild of it;
// - electron-builder.yml is valid to electron-builder itself and names what
//   the issue asks for, with every file it points at present;
// - the tray icons are valid PNGs of the declared sizes, and are what
//   scripts/make-icons.js renders from resources/icons-src/;
// - scripts/electronegativity.js passes on app/main and fails on a bad window.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';

const ROOT = path.join(__dirname, '..', '..');
/** The tray states main.ts shows (app/main/trayMenu.ts TrayIcon): resources/tray-<state>.png. */
const TRAY_STATES = ['connected', 'grace', 'disconnected', 'signed-out'];

const tmpDirs: string[] = [];
function tmpdir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-packaging-'));
  tmpDirs.push(d);
  return d;
}
after(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

function run(file: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: ROOT, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

function* walk(dir: string): Generator<string> {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.isFile()) yield p;
  }
}

/**
 * Runs `fn` with the text written to this process's stdout sent to stderr.
 * electron-builder and its hooks (after-pack.js, before-build.js) log text
 * to stdout, and node:test's runner reads a test file's stdout as its own
 * protocol: a line written there mid-message failed the whole file ("Unable
 * to deserialize cloned data") on a busy machine. Only strings move: the
 * runner's own messages, which may go out meanwhile, are binary.
 */
async function offStdout<T>(fn: () => T | Promise<T>): Promise<T> {
  const write = process.stdout.write;
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
    typeof chunk === 'string'
      ? (process.stderr.write as (...a: unknown[]) => boolean)(chunk, ...rest)
      : (write as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest)) as typeof write;
  try {
    return await fn();
  } finally {
    process.stdout.write = write;
  }
}

/** Module paths as electron-builder resolves them: its own copies of minimatch and friends, not whatever is hoisted. */
const BUILDER_DIR = path.dirname(require.resolve('app-builder-lib/package.json'));
function builderRequire<T>(id: string): T {
  return require(require.resolve(id, { paths: [BUILDER_DIR] })) as T;
}

// ---- node-pty as packaged ---------------------------------------------------

const PTY_DIR = path.join(ROOT, 'node_modules', 'node-pty');
/** What electron-builder.yml leaves out of node-pty ("files" exclusions): the test copies the same. */
const PTY_LEFT_OUT = /^(src|deps|third_party|scripts)\/|\.pdb$/;

interface AfterPack {
  (context: { appOutDir: string }): Promise<void>;
  fixSpawnHelpers(appOutDir: string): string[];
  checkAddons(appOutDir: string, abi?: number): void;
  /** How a .node file registers itself: N-API, or bound to one runtime's ABI (see the script). */
  addonKind(file: string): { napi: boolean; abiBound: boolean; abi?: number };
  electronAbi(): number;
}
const afterPack = require(path.join(ROOT, 'scripts', 'after-pack.js')) as AfterPack;
const SQLITE_ADDON = path.join(ROOT, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');

// Runs in a child Node. app.asar is emulated by a folder holding node-pty's
// files with every binary replaced by an empty placeholder (the archive's
// directory lists them, but asarUnpack keeps the content outside), and
// app.asar.unpacked holds the real files. The one piece of Electron's asar
// support node-pty relies on is reproduced: process.dlopen of a file under
// app.asar loads it from app.asar.unpacked. node-pty does the same rewrite
// itself for spawn-helper (lib/unixTerminal.js).
const CHILD = String.raw`
const path = require('node:path');
const [resources] = process.argv.slice(2);
const asar = path.join(resources, 'app.asar');
const unpacked = path.join(resources, 'app.asar.unpacked');
const loaded = [];
const dlopen = process.dlopen;
process.dlopen = (module, filename, ...rest) => {
  if (filename.startsWith(asar + path.sep)) filename = unpacked + filename.slice(asar.length);
  loaded.push(filename);
  return dlopen.call(process, module, filename, ...rest);
};
const pty = require(path.join(asar, 'node_modules', 'node-pty'));
const p = pty.spawn('/bin/sh', ['-c', 'echo hi'], { name: 'xterm', cols: 80, rows: 24, cwd: resources, env: { PATH: process.env.PATH } });
let out = '';
let exitCode;
const report = (extra) => { console.log(JSON.stringify({ out, exitCode, loaded, ...extra })); process.exit(0); };
const timer = setTimeout(() => report({ timedOut: true }), 15000);
// onExit may come before the last output (docs/ARCHITECTURE.md, "5. Delivery guarantees"): done once both are in.
const check = () => { if (exitCode !== undefined && out.includes('hi')) { clearTimeout(timer); report({}); } };
p.onData((d) => { out += d; check(); });
p.onExit((e) => { exitCode = e.exitCode; check(); });
`;

describe('node-pty in the packaged layout', () => {
  it('its native addons are N-API (no rebuild for Electron); better-sqlite3 is not', () => {
    const addons = [...walk(PTY_DIR)].filter((f) => f.endsWith('.node') && !f.includes(`${path.sep}obj`));
    // This machine's build plus the prebuilds shipped for macOS and Windows.
    assert.ok(addons.some((f) => f.includes(`prebuilds${path.sep}darwin-`)), 'node-pty ships macOS prebuilds');
    assert.ok(addons.some((f) => f.includes(`prebuilds${path.sep}win32-`)), 'node-pty ships Windows prebuilds');
    assert.ok(
      addons.some((f) => f.includes(path.join('build', 'Release'))) || process.platform !== 'linux',
      'node-pty was built from source for Linux (there is no Linux prebuild)',
    );
    for (const f of addons) {
      assert.deepEqual(afterPack.addonKind(f), { napi: true, abiBound: false }, `${path.relative(ROOT, f)} is an N-API addon`);
    }
    // The same check on an addon that does need a rebuild, so it is known to
    // tell the two apart (and why electron-builder.yml keeps npmRebuild on).
    assert.deepEqual(
      afterPack.addonKind(SQLITE_ADDON),
      { napi: false, abiBound: true, abi: Number(process.versions.modules) },
      'better-sqlite3 is built against V8 for this Node',
    );
    assert.notEqual(afterPack.electronAbi(), Number(process.versions.modules), "Electron's ABI is not Node's");
  });

  it('loads from app.asar.unpacked and runs a real PTY', async (t) => {
    if (process.platform === 'win32') return t.skip('the PTY check spawns /bin/sh');
    const out = tmpdir();
    const resources = path.join(out, 'resources');
    const rel = path.join('node_modules', 'node-pty');
    const keep = (src: string) => !PTY_LEFT_OUT.test(path.relative(PTY_DIR, src).split(path.sep).join('/'));
    // app.asar.unpacked: the real files, modes kept (as electron-builder copies them).
    fs.cpSync(PTY_DIR, path.join(resources, 'app.asar.unpacked', rel), { recursive: true, filter: keep });
    // app.asar: the same tree, binaries empty: whatever loads them must go to app.asar.unpacked.
    fs.cpSync(PTY_DIR, path.join(resources, 'app.asar', rel), { recursive: true, filter: keep });
    for (const f of walk(path.join(resources, 'app.asar', rel))) {
      if (/\.(node|exe|dll)$|spawn-helper$/.test(f)) fs.writeFileSync(f, '');
    }

    // The afterPack hook, as electron-builder runs it on the packed app.
    await offStdout(() => afterPack({ appOutDir: out }));
    const helpers = [...walk(path.join(resources, 'app.asar.unpacked', rel))].filter((f) => path.basename(f) === 'spawn-helper');
    assert.ok(helpers.length >= 2, 'the macOS prebuilds carry spawn-helper');
    for (const h of helpers) assert.equal(fs.statSync(h).mode & 0o111, 0o111, `${path.relative(out, h)} is executable after afterPack`);

    const child = path.join(out, 'child.js');
    fs.writeFileSync(child, CHILD);
    const r = await run(process.execPath, [child, resources], 30_000);
    assert.equal(r.code, 0, r.out);
    const res = JSON.parse(r.out.trim().split('\n').pop() ?? '{}') as { out: string; exitCode?: number; loaded: string[]; timedOut?: boolean };
    assert.equal(res.timedOut, undefined, `PTY finished: ${r.out}`);
    assert.equal(res.exitCode, 0);
    assert.match(res.out, /hi\r?\n/);
    assert.ok(res.loaded.length > 0, 'node-pty loaded its addon through process.dlopen');
    for (const f of res.loaded) assert.ok(f.startsWith(path.join(resources, 'app.asar.unpacked') + path.sep), `${f} came from app.asar.unpacked`);
  });

  it('afterPack fails the build when node-pty was not unpacked', async () => {
    const out = tmpdir();
    fs.mkdirSync(path.join(out, 'resources', 'app.asar.unpacked'), { recursive: true });
    await assert.rejects(afterPack({ appOutDir: out }), /node-pty is not in app\.asar\.unpacked/);
  });

  it("afterPack fails the build when an addon is built for Node's ABI, not Electron's", () => {
    const out = tmpdir();
    const unpacked = path.join(out, 'resources', 'app.asar.unpacked', 'node_modules');
    const put = (from: string, to: string) => {
      fs.mkdirSync(path.dirname(path.join(unpacked, to)), { recursive: true });
      fs.copyFileSync(from, path.join(unpacked, to));
    };
    put(path.join(PTY_DIR, 'prebuilds', 'darwin-arm64', 'pty.node'), 'node-pty/prebuilds/darwin-arm64/pty.node');
    afterPack.checkAddons(out); // N-API: fine for any ABI
    // What `npm run dist` gave here before before-build.js: better-sqlite3 "rebuilt" against Node's headers.
    put(SQLITE_ADDON, 'better-sqlite3/build/Release/better_sqlite3.node');
    assert.throws(() => afterPack.checkAddons(out), new RegExp(`not built for Electron \\(ABI ${afterPack.electronAbi()}\\).*better_sqlite3\\.node \\(ABI ${process.versions.modules}\\)`));
    afterPack.checkAddons(out, Number(process.versions.modules)); // the same file passes where its ABI is the runtime's
  });
});

// ---- electron-builder.yml ---------------------------------------------------

type Target = string | { target: string };
type FileSet = string | { from?: string; to?: string; filter?: string | string[] };
interface BuilderConfig {
  appId?: string;
  productName?: string;
  directories?: { output?: string; buildResources?: string };
  extraMetadata?: { main?: string; desktopName?: string };
  files?: FileSet[];
  extraResources?: FileSet[];
  asarUnpack?: string | string[];
  npmRebuild?: boolean;
  afterPack?: string;
  beforeBuild?: string;
  linux?: { target?: Target | Target[]; icon?: string; category?: string; executableName?: string; desktop?: { entry?: Record<string, string> } };
  mac?: { target?: Target | Target[]; icon?: string; category?: string; hardenedRuntime?: boolean };
  win?: { target?: Target | Target[]; icon?: string };
}

interface MinimatchLike {
  negate: boolean;
  match(p: string): boolean;
}
const { Minimatch } = builderRequire<{ Minimatch: new (pattern: string, opts: { dot: boolean }) => MinimatchLike }>('minimatch');
const glob = (pattern: string) => new Minimatch(pattern, { dot: true }); // electron-builder's options (fileMatcher.js)

/** electron-builder's rule for a pattern list (util/filter.js): in order, a later "!" pattern excludes, a later plain one re-includes. */
function included(file: string, patterns: string[]): boolean {
  let match = false;
  for (const m of patterns.map(glob)) {
    if (match !== m.negate) continue;
    match = m.match(file);
  }
  return match;
}

function targets(t: Target | Target[] | undefined): string[] {
  return (Array.isArray(t) ? t : t === undefined ? [] : [t]).map((x) => (typeof x === 'string' ? x : x.target));
}

/** The patterns of the file sets rooted at the project folder. */
function rootPatterns(sets: FileSet[] | undefined): string[] {
  return (sets ?? []).flatMap((s) => (typeof s === 'string' ? [s] : s.from === undefined || s.from === '.' ? [s.filter ?? []].flat() : []));
}

describe('electron-builder.yml', () => {
  let cached: BuilderConfig | undefined;
  /** The configuration as electron-builder reads it, after its own schema validation. */
  async function config(): Promise<BuilderConfig> {
    if (cached) return cached;
    const { getConfig, validateConfiguration } = builderRequire<{
      getConfig(dir: string, file: string | null, extra: null): Promise<BuilderConfig>;
      validateConfiguration(c: BuilderConfig, log: unknown): Promise<void>;
    }>('app-builder-lib/out/util/config/config');
    const { DebugLogger } = builderRequire<{ DebugLogger: new (enabled: boolean) => unknown }>('builder-util');
    const c = await offStdout(() => getConfig(ROOT, path.join(ROOT, 'electron-builder.yml'), null));
    await validateConfiguration(c, new DebugLogger(false));
    return (cached = c);
  }

  it('is valid for electron-builder and builds AppImage, deb, dmg and nsis', async () => {
    const c = await config();
    assert.equal(c.productName, 'CMDOP');
    assert.match(c.appId ?? '', /^[a-z0-9-]+(\.[a-z0-9-]+)+$/);
    assert.deepEqual(targets(c.linux?.target).sort(), ['AppImage', 'deb']);
    assert.deepEqual(targets(c.mac?.target), ['dmg']);
    assert.deepEqual(targets(c.win?.target), ['nsis']);
    assert.equal(c.mac?.category, 'public.app-category.developer-tools');
    assert.equal(c.mac?.hardenedRuntime, true);
    assert.ok(c.linux?.category, 'Linux category set');
    // tsc and Vite write dist/: the installers must not land in the tree being packaged.
    assert.notEqual(c.directories?.output ?? 'dist', 'dist');
    const entry = c.linux?.desktop?.entry ?? {};
    assert.equal(entry.Name, 'CMDOP');
    assert.ok(entry.Comment);
    // The launcher matches running windows by WM_CLASS, which Electron takes from desktopName.
    assert.equal(entry.StartupWMClass, c.extraMetadata?.desktopName?.replace(/\.desktop$/, ''));
  });

  it('starts the compiled main process and packs what it needs, not tests or maps', async () => {
    const c = await config();
    const main = c.extraMetadata?.main;
    assert.equal(main, 'dist/app/main/main.js');
    const files = rootPatterns(c.files);
    for (const f of ['package.json', main, 'dist/app/main/preload.js', 'dist/app/agent/agent.js', 'dist/control-plane/store.js', 'dist/renderer/index.html', 'bin/cmdop.js']) {
      assert.ok(included(f, files), `${f} is packed`);
    }
    for (const f of ['dist/test/packaging.test.js', 'dist/bench/run.js', 'dist/app/main/main.js.map', 'dist/.tsbuildinfo', 'dist/sdk/index.d.ts']) {
      assert.ok(!included(f, files), `${f} is not packed`);
    }
    // node_modules get only the "!" patterns (getNodeModuleFileMatcher): the addons stay, debug symbols go.
    const nm = ['**/*', ...files.filter((p) => p.startsWith('!'))];
    for (const f of ['node_modules/node-pty/lib/index.js', 'node_modules/node-pty/prebuilds/darwin-arm64/spawn-helper', 'node_modules/node-pty/prebuilds/win32-x64/conpty/OpenConsole.exe', 'node_modules/better-sqlite3/build/Release/better_sqlite3.node']) {
      assert.ok(included(f, nm), `${f} is packed`);
    }
    assert.ok(!included('node_modules/node-pty/prebuilds/win32-x64/pty.pdb', nm), 'node-pty .pdb files are left out');
    assert.ok(fs.existsSync(path.join(ROOT, main)), `${main} exists after \`tsc -p .\` (app/main compiled)`);
  });

  it('unpacks every node-pty file and the better-sqlite3 addon from app.asar; keeps better-sqlite3 rebuilt', async () => {
    const c = await config();
    const unpack = [c.asarUnpack ?? []].flat().map(glob);
    const unpacked = (f: string) => unpack.some((m) => m.match(f));
    const ptyFiles = [...walk(PTY_DIR)]
      .map((f) => path.relative(ROOT, f).split(path.sep).join('/'))
      .filter((f) => !PTY_LEFT_OUT.test(f.slice('node_modules/node-pty/'.length)));
    assert.ok(ptyFiles.length > 10);
    for (const f of ptyFiles) assert.ok(unpacked(f), `${f} is unpacked`);
    assert.ok(unpacked('node_modules/better-sqlite3/build/Release/better_sqlite3.node'));
    assert.ok(!unpacked('dist/app/main/main.js'), 'the app code stays in the archive');
    // better-sqlite3 is not N-API (first test): it must be rebuilt for Electron's ABI.
    assert.notEqual(c.npmRebuild, false);
    assert.equal(require(path.join(ROOT, c.afterPack ?? '')), afterPack, 'afterPack is scripts/after-pack.js');
    // beforeBuild drops npm's nodedir, which would point node-gyp at Node's headers, and lets the rebuild go on.
    const beforeBuild = require(path.join(ROOT, c.beforeBuild ?? '')) as () => Promise<boolean>;
    const saved = process.env.npm_config_nodedir;
    process.env.npm_config_nodedir = '/usr';
    try {
      assert.equal(await offStdout(beforeBuild), true);
      assert.equal(process.env.npm_config_nodedir, undefined);
    } finally {
      if (saved !== undefined) process.env.npm_config_nodedir = saved;
    }
  });

  it('names icons and resources that exist', async () => {
    const c = await config();
    for (const icon of [c.mac?.icon, c.win?.icon]) {
      assert.ok(icon && fs.statSync(path.join(ROOT, icon)).isFile(), `${icon} exists`);
    }
    const linuxIcons = path.join(ROOT, c.linux?.icon ?? '');
    const sizes = fs.readdirSync(linuxIcons);
    for (const n of [16, 32, 48, 64, 128, 256, 512]) assert.ok(sizes.includes(`${n}x${n}.png`), `${c.linux?.icon}/${n}x${n}.png`);
    for (const f of sizes) {
      const n = Number(/^(\d+)x\1\.png$/.exec(f)?.[1]);
      assert.deepEqual(pngSize(path.join(linuxIcons, f)), [n, n], f);
    }
    // main.ts reads tray-<state>.png and icon.png from process.resourcesPath once packaged.
    const sets = (c.extraResources ?? []).filter((s): s is Exclude<FileSet, string> => typeof s !== 'string');
    const shipped = new Set<string>();
    for (const s of sets) {
      const from = path.join(ROOT, s.from ?? '.');
      assert.ok(fs.existsSync(from), `extraResources from ${s.from}`);
      assert.ok(s.to === '.' || s.to === undefined || s.to === '', 'copied to the root of resourcesPath');
      for (const f of fs.readdirSync(from)) if (included(f, [s.filter ?? '**/*'].flat())) shipped.add(f);
    }
    for (const state of TRAY_STATES) for (const f of [`tray-${state}.png`, `tray-${state}@2x.png`]) assert.ok(shipped.has(f), `${f} ships`);
    assert.ok(shipped.has('icon.png'), 'icon.png ships (BrowserWindow icon)');
  });
});

// ---- icons ------------------------------------------------------------------

interface Png {
  width: number;
  height: number;
  rgba: Buffer;
}

/** A PNG decoded by pngjs (which checks every chunk's CRC), as straight RGBA. */
function readPng(file: string): Png {
  const p = PNG.sync.read(fs.readFileSync(file), { checkCRC: true });
  return { width: p.width, height: p.height, rgba: p.data };
}

function pngSize(file: string): [number, number] {
  const p = readPng(file);
  return [p.width, p.height];
}

describe('icons', () => {
  const RES = path.join(ROOT, 'resources');

  it('one tray icon per state, at 16 px and @2x 32 px, distinct and with a transparent background', () => {
    const seen = new Map<string, string>();
    for (const state of TRAY_STATES) {
      for (const [suffix, size] of [['', 16], ['@2x', 32]] as const) {
        const file = `tray-${state}${suffix}.png`;
        const png = readPng(path.join(RES, file));
        assert.deepEqual([png.width, png.height], [size, size], file);
        assert.equal(png.rgba[3], 0, `${file}: corner is transparent`);
        const alphas = new Set<number>();
        for (let i = 3; i < png.rgba.length; i += 4) alphas.add(png.rgba[i]);
        assert.ok(alphas.has(255) && alphas.size > 2, `${file}: opaque shape with anti-aliased edges`);
        const key = `${size}:${png.rgba.toString('base64')}`;
        assert.ok(!seen.has(key), `${file} differs from ${seen.get(key)}`);
        seen.set(key, file);
      }
    }
  });

  it('the app icon is 512x512', () => {
    assert.deepEqual(pngSize(path.join(RES, 'icon.png')), [512, 512]);
  });

  it('resources/ holds what scripts/make-icons.js renders from resources/icons-src/ (re-run it after changing an SVG)', async () => {
    const out = tmpdir();
    const r = await run(process.execPath, [path.join(ROOT, 'scripts', 'make-icons.js'), out]);
    assert.equal(r.code, 0, r.out);
    const made = [...walk(out)].map((f) => path.relative(out, f)).sort();
    assert.ok(made.length >= TRAY_STATES.length * 2 + 1);
    for (const rel of made) {
      // Pixels, not bytes: another zlib may compress the same image differently.
      assert.ok(readPng(path.join(RES, rel)).rgba.equals(readPng(path.join(out, rel)).rgba), `resources/${rel} is up to date`);
    }
  });
});

// ---- electronegativity ------------------------------------------------------

describe('scripts/electronegativity.js', () => {
  const SCRIPT = path.join(ROOT, 'scripts', 'electronegativity.js');

  it('passes on app/main: every finding fixed or justified', async () => {
    const r = await run(process.execPath, [SCRIPT]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /files in app\/main/);
  });

  it('fails on a window with Node integration and no context isolation', async () => {
    const dir = tmpdir();
    fs.writeFileSync(
      path.join(dir, 'main.js'),
      [
        "const { app, BrowserWindow } = require('electron');",
        'app.whenReady().then(() => {',
        '  const w = new BrowserWindow({ webPreferences: { nodeIntegration: true, contextIsolation: false } });',
        "  w.loadURL('https://example.com');",
        '});',
      ].join('\n'),
    );
    const r = await run(process.execPath, [SCRIPT, dir]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /FINDING\s+CONTEXT_ISOLATION_JS_CHECK main\.js:3/);
    assert.match(r.out, /FINDING\s+NODE_INTEGRATION_JS_CHECK main\.js:3/);
  });

  it('refuses to pass when there is nothing to scan', async () => {
    const r = await run(process.execPath, [SCRIPT, path.join(tmpdir(), 'missing')]);
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /nothing to scan/);
  });
});
