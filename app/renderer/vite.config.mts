// Builds the console into dist/renderer/ (hashed assets), which the control
// plane serves at `/` under a strict CSP: everything is bundled, nothing
// inline, nothing from elsewhere.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  // The renderer imports sdk/ and protocol/ from the repo root: one copy of the protocol code.
  server: { fs: { allow: [fileURLToPath(new URL('../..', import.meta.url))] } },
  build: {
    outDir: fileURLToPath(new URL('../../dist/renderer', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: true,
    // Inlined assets would become data: URLs, which the CSP allows only for images; keep files.
    assetsInlineLimit: 0,
    // The bundle is mostly xterm.js and React; one chunk is fine for a console.
    chunkSizeWarningLimit: 1500,
  },
});
