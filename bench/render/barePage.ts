// The baseline of the console render bench: a page with nothing but
// xterm.js, served by a tiny HTTP server in the bench process. It loads the
// same @xterm/xterm package the console is built from (its own production
// bundle, lib/xterm.js, and css/xterm.css), fetches the bytes to render once
// (before any clock runs: the network is not part of the baseline), and
// writes them the way the console's output reaches xterm: in chunks, with at
// most a gateway window of bytes written and not yet called back (the same
// high / low watermarks as control-plane/transports/ws/stream.ts),
// each write's callback counting the bytes as rendered (as the console acks).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fs from 'node:fs';
import type { CdpPage } from './cdp';

const XTERM_JS = require.resolve('@xterm/xterm/lib/xterm.js');
const XTERM_CSS = require.resolve('@xterm/xterm/css/xterm.css');

const HTML = `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>bare xterm.js</title>
<link rel="stylesheet" href="/xterm.css">
<style>html, body { margin: 0; background: #14161a; } #t { display: inline-block; }</style>
<script src="/xterm.js"></script>
</head>
<body><div id="t"></div></body>
</html>
`;

export interface BarePageServer {
  /** http://localhost:PORT/ (localhost: another site than the console's 127.0.0.1, so Chromium gives it its own renderer process). */
  url: string;
  close(): Promise<void>;
}

/** Serves the page, xterm's files and `data` (at /data). */
export async function serveBarePage(data: Buffer): Promise<BarePageServer> {
  const files: Record<string, { type: string; body: Buffer }> = {
    '/': { type: 'text/html; charset=utf-8', body: Buffer.from(HTML) },
    '/xterm.js': { type: 'text/javascript; charset=utf-8', body: fs.readFileSync(XTERM_JS) },
    '/xterm.css': { type: 'text/css; charset=utf-8', body: fs.readFileSync(XTERM_CSS) },
    '/data': { type: 'application/octet-stream', body: data },
  };
  const server = http.createServer((req, res) => {
    const f = files[new URL(req.url ?? '/', 'http://x').pathname];
    if (!f) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': f.type, 'content-length': f.body.length, 'cache-control': 'no-store' });
    res.end(f.body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://localhost:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** xterm options: the console's (app/renderer/src/term/xterm.ts), at the console terminal's size. */
export interface BareTermOptions {
  cols: number;
  rows: number;
  fontSize: number;
  lineHeight: number;
  fontFamily: string;
  scrollback: number;
  theme: Record<string, string>;
}

/** Opens the page, fetches /data into memory and opens the terminal. Resolves with the data's length. */
export async function openBarePage(page: CdpPage, url: string, opts: BareTermOptions): Promise<number> {
  await page.goto(url);
  return page.evaluate(async (o: BareTermOptions) => {
    const w = globalThis as any;
    const buf = new Uint8Array(await (await w.fetch('/data')).arrayBuffer());
    const term = new w.Terminal({
      cols: o.cols,
      rows: o.rows,
      fontSize: o.fontSize,
      lineHeight: o.lineHeight,
      fontFamily: o.fontFamily,
      theme: o.theme,
      scrollback: o.scrollback,
      cursorBlink: false,
      allowProposedApi: true,
    });
    term.open(w.document.getElementById('t'));
    term.focus();
    w.__bare = { term, data: buf, rendered: 0 };
    return buf.length;
  }, opts);
}

/** How the bare page feeds xterm: chunk size and the gateway's watermarks. */
export interface BareWriteOptions {
  /** Write the first `bytes` of the data. */
  bytes: number;
  chunk: number;
  high: number;
  low: number;
  timeoutMs: number;
}

/**
 * One timed run: arms the monitor, writes, and resolves once the monitor
 * saw every byte called back. Returns what the monitor measured.
 */
export function runBare<R>(page: CdpPage, o: BareWriteOptions): Promise<R> {
  return page.evaluate((o: BareWriteOptions) => {
    const w = globalThis as any;
    const b = w.__bare;
    const data: Uint8Array = b.data.subarray(0, o.bytes);
    const term = b.term;
    const before = b.rendered;
    w.__benchMon.arm(false);
    const done = w.__benchMon.until(() => b.rendered - before, data.length, o.timeoutMs);
    let off = 0;
    let inflight = 0;
    let full = false;
    // Like the gateway: send while fewer than `high` bytes are unacknowledged;
    // once over, wait until acknowledgements bring it down to `low`.
    const pump = () => {
      while (!full && off < data.length) {
        const end = Math.min(off + o.chunk, data.length);
        const len = end - off;
        term.write(data.subarray(off, end), () => {
          b.rendered += len;
          inflight -= len;
          if (full && inflight <= o.low) {
            full = false;
            pump();
          }
        });
        inflight += len;
        off = end;
        if (inflight > o.high) full = true;
      }
    };
    pump();
    return done as Promise<R>;
  }, o);
}

/** The bare terminal's active buffer, last `n` lines (trailing blank rows dropped). */
export function bareTail(page: CdpPage, n: number): Promise<string[]> {
  return page.evaluate((n: number) => {
    const b = (globalThis as any).__bare.term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-n);
  }, n);
}
