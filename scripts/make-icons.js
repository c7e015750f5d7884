#!/usr/bin/env node
// Renders the desktop app's icons from their SVG sources in
// resources/icons-src/ and writes the PNGs to resources/ (or to the directory
// given as the first argument). The PNGs are generated: change the SVG and
// re-run `node scripts/make-icons.js`; never edit the images by hand
// (test/packaging.test.ts fails when resources/ is stale).
//
// Sources:
//   tray-<state>.svg for the states connected, grace, disconnected,
//     signed-out: one disc per state, told apart by colour AND glyph, so the
//     states stay distinct for colour-blind users and in monochrome panels.
//     The glyph strokes are thick (~1/8 of the icon) so they survive 16 px.
//   app.svg: the app icon.
// Outputs:
//   tray-<state>.png (16 px) and tray-<state>@2x.png (32 px). Electron's
//     nativeImage picks the @2x file on HiDPI screens when given the plain name.
//   icon.png (512 px): the app icon electron-builder turns into .icns / .ico.
//   icons/<n>x<n>.png: the Linux icon set (electron-builder copies the folder
//     into hicolor/<n>x<n>/apps); each size rendered from the vector source.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { Resvg } = require('@resvg/resvg-js');

const SRC = path.join(__dirname, '..', 'resources', 'icons-src');
const TRAY_STATES = ['connected', 'grace', 'disconnected', 'signed-out'];
const TRAY_SIZES = { '': 16, '@2x': 32 };
const LINUX_SIZES = [16, 32, 48, 64, 128, 256, 512];

/** The SVG source `name` rendered `size` pixels square, as PNG bytes. */
function renderPng(name, size) {
  const svg = fs.readFileSync(path.join(SRC, `${name}.svg`), 'utf8');
  // No system fonts: the icons have no text, and loading them makes rendering slow and machine-dependent.
  const r = new Resvg(svg, { fitTo: { mode: 'width', value: size }, font: { loadSystemFonts: false } });
  return r.render().asPng();
}

function main() {
  const outDir = path.resolve(process.argv[2] ?? path.join(__dirname, '..', 'resources'));
  fs.mkdirSync(path.join(outDir, 'icons'), { recursive: true });
  const written = [];
  const write = (rel, name, size) => {
    fs.writeFileSync(path.join(outDir, rel), renderPng(name, size));
    written.push(rel);
  };
  for (const state of TRAY_STATES) {
    for (const [suffix, size] of Object.entries(TRAY_SIZES)) write(`tray-${state}${suffix}.png`, `tray-${state}`, size);
  }
  write('icon.png', 'app', 512);
  for (const n of LINUX_SIZES) write(path.join('icons', `${n}x${n}.png`), 'app', n);
  console.log(`wrote ${written.length} icons to ${outDir}`);
}

if (require.main === module) main();

module.exports = { TRAY_STATES, TRAY_SIZES, LINUX_SIZES };
