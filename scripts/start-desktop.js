#!/usr/bin/env node
// `npm start`: the desktop app. The `electron` package is only a downloader
// plus types; its binary comes from `npm run electron:fetch` (the download is
// not run at install, so that `npm install` works offline). Where the binary
// is missing, say so and how to run CMDOP without it, and fail.
'use strict';
const { spawn } = require('node:child_process');
const path = require('node:path');

let electron;
try {
  electron = require('electron'); // the binary's path, when it is installed
} catch {
  process.stderr.write(
    [
      'cmdop: the Electron binary is not installed, so the desktop app cannot start.',
      '  get it (downloads about 100 MB):   npm run electron:fetch   then   npm start',
      '  or run CMDOP headless instead:    npm run up',
      '      (a local control plane, an agent for this machine, and a console link for your browser)',
      '',
    ].join('\n'),
  );
  process.exit(1);
}
const child = spawn(electron, [path.join(__dirname, '..', 'dist', 'app', 'main', 'main.js'), ...process.argv.slice(2)], { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => child.kill(s));
