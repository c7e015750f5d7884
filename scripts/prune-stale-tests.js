#!/usr/bin/env node
// Before node:test runs dist/test/: delete compiled tests whose source is gone.
// tsc never removes the output of a deleted or moved .ts file, so a test moved
// elsewhere (the browser tests went to e2e/, Playwright) would otherwise still
// run from an old dist/ in every checkout that built before the move, against
// helpers that have changed under it. CI starts clean; this is for the rest.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const out = path.join(root, 'dist', 'test');

function prune(dir) {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, e.name);
    if (e.isDirectory()) prune(file);
    else if (e.name.endsWith('.js')) {
      const source = path.join(root, 'test', path.relative(out, file)).replace(/\.js$/, '.ts');
      if (fs.existsSync(source)) continue;
      for (const f of [file, `${file}.map`, file.replace(/\.js$/, '.d.ts')]) fs.rmSync(f, { force: true });
      console.log(`pruned ${path.relative(root, file)}: its source ${path.relative(root, source)} is gone`);
    }
  }
}
prune(out);
