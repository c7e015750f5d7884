#!/usr/bin/env node
// Draws the desktop app's icons and writes them to resources/ (or to the
// directory given as the first argument). The PNGs in resources/ are generated
// by this script: change the drawing here and re-run `node scripts/make-icons.js`;
// never edit the images by hand. No image library is installed, so this is a
// tiny rasteriser (shapes as distance functions, 4x4 supersampling for
// anti-aliasing) and a PNG encoder (zlib deflate + CRC32), in plain Node.
//
// Outputs:
//   tray-<state>.png (16 px) and tray-<state>@2x.png (32 px) for the states
//     connected, grace, disconnected, signed-out. Electron's nativeImage picks
//     the @2x file on HiDPI screens when given the plain name.
//   icon.png (512 px): the app icon electron-builder turns into .icns / .ico.
//   icons/<n>x<n>.png: the Linux icon set (electron-builder copies the folder
//     into hicolor/<n>x<n>/apps); drawn per size so small ones stay crisp.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');

// ---- PNG encoding -----------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** RGBA bytes (straight alpha, row-major) → PNG file bytes (8-bit RGBA, no filtering). */
function encodePng(width, height, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type: truecolour with alpha
  // [10..12] = compression 0, filter method 0, interlace none
  const raw = Buffer.alloc(height * (1 + width * 4));
  for (let y = 0; y < height; y++) {
    raw[y * (1 + width * 4)] = 0; // filter type None: icons are small, simplicity wins
    rgba.copy(raw, y * (1 + width * 4) + 1, y * width * 4, (y + 1) * width * 4);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// ---- Rasterising ------------------------------------------------------------
// A drawing is a list of layers painted back to front; each layer is a colour
// and an `inside(x, y)` test in a 0..1 unit square, so one drawing renders at
// any size. Coverage = fraction of 4x4 sub-samples inside: that is the
// anti-aliasing.

const SS = 4;

function hex(c) {
  return [parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16)];
}

function render(size, layers) {
  const out = Buffer.alloc(size * size * 4);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let r = 0, g = 0, b = 0, a = 0; // premultiplied accumulator
      for (const layer of layers) {
        let hits = 0;
        for (let sy = 0; sy < SS; sy++) {
          for (let sx = 0; sx < SS; sx++) {
            if (layer.inside((px + (sx + 0.5) / SS) / size, (py + (sy + 0.5) / SS) / size)) hits++;
          }
        }
        if (!hits) continue;
        const la = (hits / (SS * SS)) * (layer.alpha ?? 1);
        const [lr, lg, lb] = hex(layer.color);
        // Porter-Duff "over", premultiplied.
        r = lr * la + r * (1 - la);
        g = lg * la + g * (1 - la);
        b = lb * la + b * (1 - la);
        a = la + a * (1 - la);
      }
      const i = (py * size + px) * 4;
      if (a > 0) {
        out[i] = Math.round(r / a);
        out[i + 1] = Math.round(g / a);
        out[i + 2] = Math.round(b / a);
      }
      out[i + 3] = Math.round(a * 255);
    }
  }
  return out;
}

// Shapes, as inside-tests in unit coordinates.
const circle = (cx, cy, radius) => (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2;
const ring = (cx, cy, radius, width) => (x, y) => Math.abs(Math.hypot(x - cx, y - cy) - radius) <= width / 2;

function segDist(x, y, [ax, ay], [bx, by]) {
  const dx = bx - ax, dy = by - ay;
  const t = Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(x - (ax + t * dx), y - (ay + t * dy));
}
/** A stroked polyline with round caps and joins. */
const stroke = (points, width) => (x, y) => {
  for (let i = 1; i < points.length; i++) if (segDist(x, y, points[i - 1], points[i]) <= width / 2) return true;
  return false;
};
const roundRect = (x0, y0, x1, y1, radius) => (x, y) => {
  const qx = Math.max(x0 + radius - x, 0, x - (x1 - radius));
  const qy = Math.max(y0 + radius - y, 0, y - (y1 - radius));
  return x >= x0 && x <= x1 && y >= y0 && y <= y1 && qx * qx + qy * qy <= radius * radius;
};

// ---- The drawings -----------------------------------------------------------
// Tray: one disc per state, told apart by colour AND glyph, so the states stay
// distinct for colour-blind users and in monochrome panels:
//   connected     green disc, white ">" (a live prompt)
//   grace         amber disc, white clock hands (waiting: sessions kept)
//   disconnected  red disc, white "x"
//   signed-out    grey hollow ring, nothing inside (no identity yet)
// The glyph strokes are thick (~1/8 of the icon) so they survive 16 px.

const WHITE = '#ffffff';
const GLYPH = 0.13;
const TRAY = {
  connected: [
    { color: '#1f9d55', inside: circle(0.5, 0.5, 0.47) },
    { color: WHITE, inside: stroke([[0.36, 0.3], [0.6, 0.5], [0.36, 0.7]], GLYPH) },
  ],
  grace: [
    { color: '#e8a317', inside: circle(0.5, 0.5, 0.47) },
    { color: WHITE, inside: stroke([[0.5, 0.24], [0.5, 0.52], [0.7, 0.62]], GLYPH) },
  ],
  disconnected: [
    { color: '#d64545', inside: circle(0.5, 0.5, 0.47) },
    { color: WHITE, inside: stroke([[0.33, 0.33], [0.67, 0.67]], GLYPH) },
    { color: WHITE, inside: stroke([[0.67, 0.33], [0.33, 0.67]], GLYPH) },
  ],
  'signed-out': [{ color: '#8a8f98', inside: ring(0.5, 0.5, 0.39, 0.15) }],
};

// App icon: a dark rounded "terminal window" with a green ">_" prompt.
const WINDOW = roundRect(0.06, 0.06, 0.94, 0.94, 0.18);
const APP = [
  { color: '#1b2230', inside: WINDOW },
  { color: '#2a3446', inside: (x, y) => y <= 0.23 && WINDOW(x, y) }, // title bar: the window's top, cut straight
  { color: '#e05d5d', inside: circle(0.17, 0.15, 0.035) },
  { color: '#e8a317', inside: circle(0.28, 0.15, 0.035) },
  { color: '#1f9d55', inside: circle(0.39, 0.15, 0.035) },
  { color: '#35c46f', inside: stroke([[0.24, 0.4], [0.44, 0.56], [0.24, 0.72]], 0.085) },
  { color: '#e6edf3', inside: stroke([[0.52, 0.72], [0.76, 0.72]], 0.085) },
];

const TRAY_SIZES = { '': 16, '@2x': 32 };
const LINUX_SIZES = [16, 32, 48, 64, 128, 256, 512];

function main() {
  const outDir = path.resolve(process.argv[2] ?? path.join(__dirname, '..', 'resources'));
  fs.mkdirSync(path.join(outDir, 'icons'), { recursive: true });
  const written = [];
  const write = (rel, size, layers) => {
    fs.writeFileSync(path.join(outDir, rel), encodePng(size, size, render(size, layers)));
    written.push(rel);
  };
  for (const [state, layers] of Object.entries(TRAY)) {
    for (const [suffix, size] of Object.entries(TRAY_SIZES)) write(`tray-${state}${suffix}.png`, size, layers);
  }
  write('icon.png', 512, APP);
  for (const n of LINUX_SIZES) write(path.join('icons', `${n}x${n}.png`), n, APP);
  console.log(`wrote ${written.length} icons to ${outDir}`);
}

if (require.main === module) main();

module.exports = { encodePng, crc32, TRAY_STATES: Object.keys(TRAY), TRAY_SIZES, LINUX_SIZES };
