// electron-builder afterPack hook (electron-builder.yml: afterPack). Runs on
// the unpacked app before signing and before the installers are made.
//
// 1. node-pty 1.1.0 publishes prebuilds/darwin-*/spawn-helper with mode 0644
//    (microsoft/node-pty#850); node-pty posix_spawn()s it for every terminal
//    on macOS, so without the execute bit every PTY fails with "posix_spawnp
//    failed". Restore it here, on the copy that ships (node_modules is left
//    alone). Harmless elsewhere: on Linux the helper is not used and a source
//    build marks it executable anyway.
// 2. Fail the build if node-pty is not in app.asar.unpacked: a packaged app
//    whose addon and helpers sit inside the archive cannot open a terminal.
// 3. Fail the build if a native addon would not load in Electron: each .node
//    must be N-API, or be built for Electron's ABI. A better-sqlite3 built for
//    Node's ABI is what a rebuild against the wrong headers gives (see
//    before-build.js), and it would only show as a crash on the user's machine.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

/** app.asar.unpacked folders of a packed app: <out>/resources/ (Linux, Windows) or <out>/X.app/Contents/Resources/ (macOS). */
function unpackedDirs(appOutDir) {
  const dirs = [path.join(appOutDir, 'resources', 'app.asar.unpacked')];
  for (const e of fs.readdirSync(appOutDir)) {
    if (e.endsWith('.app')) dirs.push(path.join(appOutDir, e, 'Contents', 'Resources', 'app.asar.unpacked'));
  }
  return dirs.filter((d) => fs.existsSync(d));
}

function* walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.isFile()) yield p;
  }
}

/**
 * What kind of addon a .node file is, from the symbol names in the binary
 * (ELF, Mach-O and PE all keep imported/exported names as plain strings).
 * N-API addons register through napi_register_module_v1 (or the older
 * napi_module_register) and call only napi_* functions, which Node and
 * Electron provide with a stable ABI: one build loads in both. Addons built
 * on V8's C++ API export node_register_module_v<ABI> and import mangled v8::
 * symbols (_ZN2v8… on Itanium, …@v8@@ on MSVC): they load only in the
 * runtime whose ABI they name.
 * @returns {{ napi: boolean, abiBound: boolean, abi?: number }}
 */
function addonKind(file) {
  const bin = fs.readFileSync(file).toString('latin1');
  const abi = /node_register_module_v(\d+)/.exec(bin);
  return {
    napi: bin.includes('napi_register_module_v1') || bin.includes('napi_module_register'),
    abiBound: abi !== null || bin.includes('_ZN2v8') || bin.includes('@v8@@'),
    ...(abi ? { abi: Number(abi[1]) } : {}),
  };
}

/** Electron's NODE_MODULE_VERSION, as the electron package records it. */
function electronAbi() {
  return Number(fs.readFileSync(path.join(path.dirname(require.resolve('electron/package.json')), 'abi_version'), 'utf8').trim());
}

/** Throws unless every .node under the unpacked folders loads in Electron (N-API, or built for `abi`). */
function checkAddons(appOutDir, abi = electronAbi()) {
  const wrong = [];
  for (const dir of unpackedDirs(appOutDir)) {
    for (const file of walk(dir)) {
      if (!file.endsWith('.node')) continue;
      const k = addonKind(file);
      if (!k.napi && !k.abiBound) continue; // not a Node addon (e.g. a SQLite extension): nothing for Electron to load
      if (k.napi && !k.abiBound) continue;
      if (k.abi !== abi) wrong.push(`${path.relative(appOutDir, file)} (ABI ${k.abi ?? 'unknown'})`);
    }
  }
  if (wrong.length) {
    throw new Error(
      `after-pack: native addons not built for Electron (ABI ${abi}): ${wrong.join(', ')}. ` +
        'Either the rebuild did not run (npmRebuild off) or node-gyp used other headers: check `npm config get nodedir` ' +
        '(scripts/before-build.js).',
    );
  }
}

/** Makes every node-pty spawn-helper executable; returns the files changed. */
function fixSpawnHelpers(appOutDir) {
  const dirs = unpackedDirs(appOutDir);
  const pty = dirs.map((d) => path.join(d, 'node_modules', 'node-pty')).filter((d) => fs.existsSync(d));
  if (pty.length === 0) {
    throw new Error(`after-pack: node-pty is not in app.asar.unpacked under ${appOutDir}; check asarUnpack in electron-builder.yml`);
  }
  const changed = [];
  for (const dir of pty) {
    for (const file of walk(dir)) {
      if (path.basename(file) !== 'spawn-helper') continue;
      const mode = fs.statSync(file).mode & 0o777;
      if ((mode & 0o111) !== 0o111) {
        fs.chmodSync(file, mode | 0o755);
        changed.push(file);
      }
    }
  }
  return changed;
}

module.exports = async function afterPack(context) {
  for (const f of fixSpawnHelpers(context.appOutDir)) console.log(`  • after-pack: made executable ${path.relative(context.appOutDir, f)}`);
  checkAddons(context.appOutDir);
};
Object.assign(module.exports, { fixSpawnHelpers, checkAddons, addonKind, electronAbi });
