#!/usr/bin/env node
// CI guard: regenerate protocol/generated from proto/ into a temp dir and fail
// if it differs from what is committed (generated code is never hand-edited).
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const buf = path.join(root, 'node_modules', '.bin', 'buf');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-proto-'));
try {
  execFileSync(buf, ['lint'], { cwd: root, stdio: 'inherit' });
  const template = fs.readFileSync(path.join(root, 'buf.gen.yaml'), 'utf8').replace('out: protocol/generated', `out: ${tmp}`);
  fs.writeFileSync(path.join(tmp, 'buf.gen.yaml'), template);
  execFileSync(buf, ['generate', '--template', path.join(tmp, 'buf.gen.yaml')], { cwd: root, stdio: 'inherit' });
  const stale = [];
  const walk = (dir, rel = '') => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(path.join(dir, e.name), r);
      else if (e.name !== 'buf.gen.yaml') {
        const committed = path.join(root, 'protocol', 'generated', r);
        if (!fs.existsSync(committed) || fs.readFileSync(committed, 'utf8') !== fs.readFileSync(path.join(dir, e.name), 'utf8')) stale.push(r);
      }
    }
  };
  walk(tmp);
  if (stale.length) {
    console.error(`protocol/generated is stale (${stale.join(', ')}): run \`npm run proto\` and commit the result`);
    process.exit(1);
  }
  console.log('protocol/generated matches proto/');
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
