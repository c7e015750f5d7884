#!/usr/bin/env node
// Packs the agent on its own (packages/agent/package.json, npm name
// cmdop-agent) from this build's dist/: the files `cmdop-agent` can load and
// nothing else, with only the npm packages those files require. Installing
// it compiles no better-sqlite3 and brings no oidc-provider, Electron or
// Vite. Usage: node scripts/pack-agent.js [OUT_DIR]  (after `npm run build`);
// prints the tarball's path.
//
// The files are found by following require() from the agent's entry points,
// so a new import is packed without a list to keep; an npm package that the
// agent now requires but packages/agent/package.json does not list fails the
// pack (and test/agentPackage.test.ts), as does a version that differs from
// the root package.json's.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { builtinModules } = require('node:module');
const { execFileSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const DIST = path.join(ROOT, 'dist');
/** What `cmdop-agent` runs: the parser (cli/main.js agentMain), the agent, its service commands, and the screen worker (loaded by path). */
const ENTRIES = ['cli/main.js', 'cli/run/agent.js', 'cli/run/agentService.js', 'cli/run/doctor.js', 'app/agent/screenWorker.js'];
/** cli/commands/* name every command's implementation lazily; the agent package has only these. */
const AGENT_RUN = new Set(['agent', 'agentService', 'doctor']);

/** The dist files the agent can load (relative to dist/) and the npm packages they require. */
function closure() {
  const files = new Set();
  const packages = new Map();
  const walk = (file) => {
    if (files.has(file)) return;
    files.add(file);
    const src = fs.readFileSync(file, 'utf8');
    for (const m of src.matchAll(/require\(["']([^"']+)["']\)/g)) {
      const r = m[1];
      if (r.startsWith('.')) {
        if (file.includes(`${path.sep}cli${path.sep}commands${path.sep}`) && r.startsWith('../run/') && !AGENT_RUN.has(r.slice(7))) continue;
        if (r.endsWith('package.json')) continue;
        let t = path.resolve(path.dirname(file), r);
        if (fs.existsSync(`${t}.js`)) t = `${t}.js`;
        else if (fs.existsSync(path.join(t, 'index.js'))) t = path.join(t, 'index.js');
        else throw new Error(`${path.relative(DIST, file)} requires ${r}, which is not built`);
        walk(t);
      } else if (!r.startsWith('node:') && !builtinModules.includes(r)) {
        const name = r.startsWith('@') ? r.split('/').slice(0, 2).join('/') : r.split('/')[0];
        if (!packages.has(name)) packages.set(name, path.relative(DIST, file));
      }
    }
  };
  for (const e of ENTRIES) walk(path.join(DIST, e));
  return { files: [...files].map((f) => path.relative(DIST, f)).sort(), packages };
}

/** Throws when packages/agent/package.json and what the agent requires disagree. */
function check(manifest, root, packages) {
  const problems = [];
  for (const [name, from] of packages) {
    if (!manifest.dependencies[name]) problems.push(`dist/${from} requires ${name}, which packages/agent/package.json does not list`);
  }
  for (const [name, range] of Object.entries(manifest.dependencies)) {
    if (!packages.has(name)) problems.push(`packages/agent/package.json lists ${name}, which the agent does not require`);
    else if (root.dependencies[name] !== range) problems.push(`${name}: ${range} in packages/agent, ${root.dependencies[name]} in package.json`);
  }
  if (manifest.version !== root.version) problems.push(`version ${manifest.version} in packages/agent, ${root.version} in package.json`);
  if (problems.length) throw new Error(problems.join('\n'));
}

function pack(outDir) {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'packages', 'agent', 'package.json'), 'utf8'));
  const root = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const { files, packages } = closure();
  check(manifest, root, packages);
  const stage = fs.mkdtempSync(path.join(outDir, 'stage-'));
  try {
    for (const f of files) {
      fs.mkdirSync(path.join(stage, 'dist', path.dirname(f)), { recursive: true });
      fs.copyFileSync(path.join(DIST, f), path.join(stage, 'dist', f));
    }
    fs.mkdirSync(path.join(stage, 'bin'));
    fs.copyFileSync(path.join(ROOT, 'bin', 'cmdop-agent.js'), path.join(stage, 'bin', 'cmdop-agent.js'));
    fs.chmodSync(path.join(stage, 'bin', 'cmdop-agent.js'), 0o755);
    fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
    fs.copyFileSync(path.join(ROOT, 'README.md'), path.join(stage, 'README.md'));
    const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', outDir], { cwd: stage, encoding: 'utf8' }).trim().split('\n').pop();
    return path.join(outDir, out);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

module.exports = { closure, check, pack, ENTRIES };

if (require.main === module) {
  const out = path.resolve(process.argv[2] || path.join(ROOT, '.tmp'));
  fs.mkdirSync(out, { recursive: true });
  process.stdout.write(`${pack(out)}\n`);
}
