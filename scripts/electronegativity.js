#!/usr/bin/env node
// `npm run lint:electron` (and CI, through test/packaging.test.ts):
// Electronegativity over the Electron main process. Every finding must be
// fixed, or justified in JUSTIFIED below with the reason next to it; anything
// else fails the run.
//
//   node scripts/electronegativity.js [dir]     dir defaults to app/main
//   exit 0: clean; 1: unjustified findings or files it could not parse;
//   2: nothing to scan (no such folder, or no .ts/.js/.html in it) or a crash
//
// Why it looks the way it does:
// - The package's CLI is broken as installed (it needs a hoisted commander 2
//   it does not declare: "_commander2.default.version is not a function"), so
//   this calls its runner, the documented programmatic API.
// - It scans the TypeScript sources, which its parser reads (Babel with the
//   typescript plugin), so reported lines are the lines we wrote.
// - There is no package.json under app/main for it to read the Electron
//   version from, so the installed electron's version is passed in; several
//   checks depend on it (defaults changed across Electron majors).
// - AvailableSecurityFixesGlobalCheck is off: it downloads Electron's release
//   list from GitHub on every run (no network here or in CI) and only says
//   whether a newer Electron exists; Electron is kept current by dependency
//   updates instead.
// - Electronegativity honours inline `eng-disable CHECK_ID` comments and drops
//   those findings silently; this script lists every such comment so none
//   goes unreviewed.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

/**
 * Findings we accept, each with why. `file` is relative to the scanned folder
 * ('N/A' for the global checks, which have no file); `sample`, when given,
 * must occur in the flagged line, so an entry covers that code and not any
 * later finding of the same kind in the file. No line numbers: an entry
 * survives unrelated edits. Keep each reason true when the code changes.
 * @type {{ id: string, file: string, sample?: string, reason: string }[]}
 */
const JUSTIFIED = [
  {
    id: 'CONTEXT_ISOLATION_JS_CHECK',
    file: 'main.ts',
    sample: 'new BrowserWindow(',
    reason:
      'webPreferences come from secureWebPreferences() in security.ts (contextIsolation: true); ' +
      'the check reads only object literals and cannot follow the call.',
  },
  {
    id: 'SANDBOX_JS_CHECK',
    file: 'main.ts',
    sample: 'new BrowserWindow(',
    reason: 'webPreferences come from secureWebPreferences() in security.ts (sandbox: true); same limitation as above.',
  },
  {
    id: 'AUXCLICK_JS_CHECK',
    file: 'main.ts',
    sample: 'new BrowserWindow(',
    reason:
      'a middle-click that would open a window goes through setWindowOpenHandler (web-contents-created), ' +
      'which allows only watch windows of the console origin and denies the rest.',
  },
  {
    id: 'OPEN_EXTERNAL_JS_CHECK',
    file: 'main.ts',
    sample: 'isExternalLinkAllowed(url)',
    reason: 'guarded on the same line by isExternalLinkAllowed(): http and https URLs only (security.ts).',
  },
  {
    id: 'OPEN_EXTERNAL_JS_CHECK',
    file: 'desktop.ts',
    sample: 'this.host.openExternal(',
    reason: "DesktopHost.openExternal is main.ts's wrapper, which checks isExternalLinkAllowed() before shell.openExternal.",
  },
  {
    // The global check reports where the CSP is set when it cannot parse it
    // (a missing CSP would be reported with file N/A and is not covered).
    id: 'CSP_GLOBAL_CHECK',
    file: 'main.ts',
    reason:
      'the CSP header set in onHeadersReceived is computed by desktopConsoleCsp(), i.e. the control plane\'s ' +
      'consoleCsp(); Electronegativity can evaluate only a string literal, hence "Failed to parse CSP".',
  },
];

const EXCLUDED_CHECKS = ['availablesecurityfixesglobalcheck'];

function fail(msg) {
  console.error(`electronegativity: ${msg}`);
  process.exit(2);
}

function scannable(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && e.name !== 'node_modules') out.push(...scannable(p));
    else if (e.isFile() && /\.(m?[jt]sx?|html?)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Lines with an eng-disable comment: findings Electronegativity hides. */
function inlineDisables(files) {
  const hits = [];
  for (const f of files) {
    fs.readFileSync(f, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (/eng-disable/.test(line)) hits.push(`${f}:${i + 1}: ${line.trim()}`);
      });
  }
  return hits;
}

async function main() {
  const target = path.resolve(process.argv[2] ?? path.join(root, 'app', 'main'));
  const isDefault = process.argv[2] === undefined;
  if (!fs.existsSync(target) || !fs.statSync(target).isDirectory()) fail(`${target} is not a folder: nothing to scan`);
  const files = scannable(target);
  if (files.length === 0) fail(`${target} holds no .ts/.js/.html files: nothing to scan`);

  const electronVersion = require(path.join(root, 'node_modules', 'electron', 'package.json')).version;
  const run = require('@doyensec/electronegativity/dist/runner.js');
  const result = await run({
    input: target,
    isRelative: true,
    electronVersionOverride: electronVersion,
    excludeFromScan: EXCLUDED_CHECKS,
  });

  console.log(
    `electronegativity: ${files.length} files in ${path.relative(root, target) || '.'}, Electron ${electronVersion}, ` +
      `${result.atomicChecks} atomic + ${result.globalChecks} global checks (${EXCLUDED_CHECKS.join(', ')} off)`,
  );

  // A file it could not parse was not checked at all: that is a failure too.
  const parseErrors = result.errors.filter((e) => !e.tolerable);
  for (const e of result.errors) console.log(`  ${e.tolerable ? 'warning' : 'ERROR'} parsing ${e.file}: ${e.message}`);

  const used = new Set();
  let unjustified = 0;
  for (const issue of result.issues) {
    const j = JUSTIFIED.find((x) => x.id === issue.id && x.file === issue.file && (!x.sample || (issue.sample ?? '').includes(x.sample)));
    if (j) used.add(j);
    else unjustified++;
    const where = issue.file === 'N/A' ? '(global)' : `${issue.file}:${issue.location.line}:${issue.location.column}`;
    console.log(`\n  ${j ? 'justified' : 'FINDING  '} ${issue.id} ${where} [${issue.severity.name}/${issue.confidence.name}${issue.manualReview ? ', review' : ''}]`);
    console.log(`            ${issue.description} (${issue.shortenedURL})`);
    if (issue.sample) console.log(`            > ${issue.sample}`);
    if (j) console.log(`            why: ${j.reason}`);
  }

  const disables = inlineDisables(files);
  if (disables.length) {
    console.log('\n  inline eng-disable comments (findings hidden by them):');
    for (const d of disables) console.log(`    ${path.relative(root, d)}`);
  }
  // A stale justification would silently cover a future finding in that file.
  if (isDefault) {
    for (const j of JUSTIFIED) if (!used.has(j)) console.log(`\n  warning: unused justification ${j.id} ${j.file}: remove it`);
  }

  const bad = unjustified + parseErrors.length;
  console.log(
    `\nelectronegativity: ${result.issues.length} findings, ${result.issues.length - unjustified} justified, ` +
      `${unjustified} to fix or justify${parseErrors.length ? `, ${parseErrors.length} files not parsed` : ''}`,
  );
  process.exit(bad ? 1 : 0);
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
