#!/usr/bin/env node
// CI guard: lint proto/, refuse a change that breaks the last release's wire
// contract (buf breaking against the newest image in proto/releases/, made by
// `npm run proto:release` when a version ships), then regenerate
// protocol/generated from proto/ into a temp dir and fail if it differs from
// what is committed (generated code is never hand-edited).
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const buf = path.join(root, 'node_modules', '.bin', 'buf');
const releases = path.join(root, 'proto', 'releases');

/** The newest release image (NAME.binpb, NAME a semver), if any. */
function lastRelease() {
  const key = (f) => f.replace(/\.binpb$/, '').split('.').map(Number);
  const images = fs.existsSync(releases) ? fs.readdirSync(releases).filter((f) => /^\d+\.\d+\.\d+\.binpb$/.test(f)) : [];
  images.sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  });
  return images.at(-1);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-proto-'));
try {
  execFileSync(buf, ['lint'], { cwd: root, stdio: 'inherit' });
  const last = lastRelease();
  if (last) {
    try {
      // buf's default (FILE) rules: what breaks generated code breaks the SDK's users, not only the wire.
      execFileSync(buf, ['breaking', '--against', path.join(releases, last)], { cwd: root, stdio: 'inherit' });
    } catch {
      console.error(`proto/ breaks release ${last.replace(/\.binpb$/, '')} (above): add fields and messages instead of changing or removing them`);
      process.exit(1);
    }
    console.log(`proto/ keeps release ${last.replace(/\.binpb$/, '')}'s contract`);
  }
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
