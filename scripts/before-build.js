// electron-builder beforeBuild hook (electron-builder.yml: beforeBuild). Runs
// in electron-builder's process just before @electron/rebuild recompiles the
// native modules (better-sqlite3) for Electron.
//
// Under `npm run dist` (or npx) npm exports its config to the environment,
// and these machines set nodedir=/usr in ~/.npmrc (`npm config get nodedir`),
// so that node-gyp builds offline against the installed Node's headers.
// node-gyp lets npm_config_nodedir win over the --target/--dist-url that
// @electron/rebuild passes, so the "rebuild for Electron" silently compiles
// against Node's headers: the app then ships a better-sqlite3 for Node's ABI
// (115 for Node 20) that Electron (145 for Electron 41) refuses to load.
// Measured here: that is exactly what `npx electron-builder` produced.
// Dropping the variable makes node-gyp fetch Electron's headers as intended.
// (after-pack.js checks the result either way.)
'use strict';

module.exports = async function beforeBuild() {
  for (const k of Object.keys(process.env)) {
    if (k.toLowerCase() === 'npm_config_nodedir') {
      console.log(`  • before-build: ignoring ${k}=${process.env[k]} so native modules build against Electron's headers`);
      delete process.env[k];
    }
  }
  return true; // go on with electron-builder's own rebuild (false would mean "done elsewhere")
};
