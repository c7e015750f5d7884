// Debian's Chromium for the console render bench, driven over the DevTools
// protocol directly rather than through Playwright (which the console tests
// use): Playwright enables the Network domain on every page it attaches to,
// and Chromium then reports every WebSocket frame to it with its payload,
// base64-encoded: the console's whole output stream copied out of the page,
// through the browser process, to the bench process. That is work no user's
// browser does, on the very path being measured (about 4/3 of the stream in
// DevTools messages). Here a page gets only what the bench asks for: an init
// script, Runtime.evaluate, and input events; Profiler and Tracing on demand.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { ProcessSet, stop, waitForLine } from '../procs';

export const CHROMIUM = process.env.CMDOP_CHROMIUM || '/usr/bin/chromium';

/**
 * The console tests' flags (test/helpers/chromium.ts), and what Playwright
 * adds that matters here: no throttling of pages that are not in front (the
 * two pages take turns), and its headless defaults.
 */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows',
  '--disable-renderer-backgrounding',
  '--hide-scrollbars',
  '--mute-audio',
  '--window-size=1280,800',
];

type Params = Record<string, unknown>;
type Handler = (params: any) => void;

/** One DevTools connection (the browser's), multiplexing page sessions (flat mode). */
class Connection {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void; method: string }>();
  private readonly handlers = new Map<string, Set<Handler>>();
  private closedWhy: string | undefined;

  constructor(private readonly ws: WebSocket) {
    ws.on('message', (raw: WebSocket.RawData) => {
      const m = JSON.parse(raw.toString()) as { id?: number; method?: string; params?: unknown; sessionId?: string; result?: unknown; error?: { message: string } };
      if (m.id !== undefined) {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error) p.reject(new Error(`${p.method}: ${m.error.message}`));
        else p.resolve(m.result);
      } else if (m.method) {
        for (const h of this.handlers.get(`${m.sessionId ?? ''}:${m.method}`) ?? []) h(m.params);
      }
    });
    ws.on('close', () => this.fail('the DevTools connection closed'));
    ws.on('error', (e) => this.fail(`DevTools connection: ${e.message}`));
  }

  send<T = any>(method: string, params: Params = {}, sessionId?: string): Promise<T> {
    if (this.closedWhy) return Promise.reject(new Error(`${method}: ${this.closedWhy}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  on(sessionId: string, method: string, h: Handler): () => void {
    const key = `${sessionId}:${method}`;
    if (!this.handlers.has(key)) this.handlers.set(key, new Set());
    this.handlers.get(key)!.add(h);
    return () => this.handlers.get(key)?.delete(h);
  }

  close(): void {
    this.fail('closed');
    this.ws.close();
  }

  private fail(why: string): void {
    if (this.closedWhy) return;
    this.closedWhy = why;
    for (const p of this.pending.values()) p.reject(new Error(`${p.method}: ${why}`));
    this.pending.clear();
  }
}

/** A tab, attached with its own session. */
export class CdpPage {
  constructor(
    private readonly conn: Connection,
    readonly targetId: string,
    private readonly sessionId: string,
  ) {}

  send<T = any>(method: string, params: Params = {}): Promise<T> {
    return this.conn.send<T>(method, params, this.sessionId);
  }

  on(method: string, h: Handler): () => void {
    return this.conn.on(this.sessionId, method, h);
  }

  /** Runs `fn` before any of the page's own scripts, in every document it loads from now on. */
  async addInitScript(fn: () => void): Promise<void> {
    await this.send('Page.addScriptToEvaluateOnNewDocument', { source: `(${fn.toString()})();` });
  }

  /** Navigates and waits for the load event (document.readyState 'complete'). */
  async goto(url: string, timeoutMs = 30_000): Promise<void> {
    const r = await this.send<{ errorText?: string }>('Page.navigate', { url });
    if (r.errorText) throw new Error(`cannot open ${url}: ${r.errorText}`);
    await this.waitFor(() => (globalThis as any).document.readyState === 'complete', undefined, timeoutMs, `${url} to load`);
  }

  /**
   * `fn(arg)` in the page (serialized: it may use nothing from the bench's
   * scope); awaits a returned promise; the result comes back as JSON.
   */
  async evaluate<A, R>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R> {
    const r = await this.send<{ result: { value?: R }; exceptionDetails?: { text: string; exception?: { description?: string } } }>('Runtime.evaluate', {
      expression: `(${fn.toString()})(${arg === undefined ? '' : JSON.stringify(arg)})`,
      awaitPromise: true,
      returnByValue: true,
    });
    if (r.exceptionDetails) {
      throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    }
    return r.result.value as R;
  }

  /** Polls `fn(arg)` in the page every 50 ms until it returns something truthy. */
  async waitFor<A, R>(fn: (arg: A) => R, arg: A, timeoutMs: number, what: string): Promise<R> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await this.evaluate(fn, arg).catch(() => undefined); // a page between documents
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The centre of the first element matching `selector`, in CSS pixels. */
  async centre(selector: string): Promise<{ x: number; y: number }> {
    const c = await this.evaluate((sel: string) => {
      const el = (globalThis as any).document.querySelector(sel);
      if (!el) return undefined;
      const r = el.getBoundingClientRect();
      return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
    }, selector);
    if (!c) throw new Error(`no element matches ${selector}`);
    return c;
  }

  async hover(selector: string): Promise<void> {
    const { x, y } = await this.centre(selector);
    await this.send('Input.dispatchMouseEvent', { type: 'mouseMoved', x, y });
  }

  /** A left click on the element's centre, the mouse staying there. */
  async click(selector: string): Promise<void> {
    const { x, y } = await this.centre(selector);
    await this.send('Input.dispatchMouseEvent', { type: 'mouseMoved', x, y });
    await this.send('Input.dispatchMouseEvent', { type: 'mousePressed', x, y, button: 'left', buttons: 1, clickCount: 1 });
    await this.send('Input.dispatchMouseEvent', { type: 'mouseReleased', x, y, button: 'left', buttons: 0, clickCount: 1 });
  }

  /** Types text into the focused element, a key at a time (printable ASCII and "\n" for Enter). */
  async type(text: string): Promise<void> {
    for (const ch of text) {
      if (ch === '\n') await this.pressEnter();
      else {
        await this.send('Input.dispatchKeyEvent', { type: 'keyDown', key: ch, text: ch, unmodifiedText: ch });
        await this.send('Input.dispatchKeyEvent', { type: 'keyUp', key: ch });
      }
    }
  }

  async pressEnter(): Promise<void> {
    const key = { key: 'Enter', code: 'Enter', windowsVirtualKeyCode: 13, nativeVirtualKeyCode: 13 };
    await this.send('Input.dispatchKeyEvent', { type: 'keyDown', ...key, text: '\r', unmodifiedText: '\r' });
    await this.send('Input.dispatchKeyEvent', { type: 'keyUp', ...key });
  }

  async bringToFront(): Promise<void> {
    await this.send('Page.bringToFront');
  }
}

export interface CdpBrowser {
  /** "HeadlessChrome/…" as the browser reports itself. */
  version: string;
  pid: number;
  /** A new tab in its own window (so both pages are drawn, whichever is in front). */
  newPage(): Promise<CdpPage>;
  close(): Promise<void>;
}

/** Starts Chromium headless with a fresh profile; `procs` tracks it, so a failing bench still stops it. */
/** Chromium's helpers may still be writing to the profile as the browser exits: retry, and never fail the bench over it. */
function removeProfile(dir: string): void {
  try {
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  } catch (e) {
    process.stderr.write(`could not remove Chromium's profile ${dir}: ${(e as Error).message}\n`);
  }
}

export async function launchCdpBrowser(procs: ProcessSet): Promise<CdpBrowser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium package, or set CMDOP_CHROMIUM`);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-bench-chromium-'));
  let proc: ChildProcess | undefined;
  let conn: Connection | undefined;
  try {
    proc = procs.spawn(CHROMIUM, [...FLAGS, `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const [, url] = await waitForLine(proc, 'stderr', /DevTools listening on (ws:\S+)/, 60_000);
    proc.stderr!.resume(); // its chatter is not needed; never let the pipe fill
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 30 });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const c = (conn = new Connection(ws));
    const version = ((await c.send('Browser.getVersion')) as { product: string }).product;
    const p = proc;
    return {
      version,
      pid: p.pid!,
      async newPage() {
        const { targetId } = await c.send<{ targetId: string }>('Target.createTarget', { url: 'about:blank', newWindow: true });
        const { sessionId } = await c.send<{ sessionId: string }>('Target.attachToTarget', { targetId, flatten: true });
        const page = new CdpPage(c, targetId, sessionId);
        await page.send('Page.enable');
        return page;
      },
      async close() {
        await c.send('Browser.close').catch(() => {});
        c.close();
        await stop(p, 5000);
        removeProfile(profile);
      },
    };
  } catch (e) {
    conn?.close();
    if (proc) await stop(proc, 2000);
    removeProfile(profile);
    throw e;
  }
}
