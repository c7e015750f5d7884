// What runs inside both pages of the console render bench (the console and
// the bare xterm.js page), installed the same way in each (Playwright's
// addInitScript: injected through the DevTools protocol, so the console's
// strict CSP does not stop it), so that both are timed and watched by the
// same code:
//
//  - longest main-thread stall: a PerformanceObserver for 'longtask' entries
//    (tasks over 50 ms; Chromium's own measure of a blocked main thread), and
//    the longest gap between animation frames (what a user sees as a freeze);
//  - the clock: armed before a run; starts at the Enter keydown (the console:
//    "pressing Enter") or at once (the bare page: "the first write"), stops at
//    the first animation frame where the page's byte counter has reached the
//    target. Polled once per frame: cheap, and the same granularity (±1 frame)
//    on both sides;
//  - what arrives over WebSockets during a run (count and sizes of messages):
//    how big the pieces are that the console hands to xterm, which the bare
//    page's chunk size should resemble.
//
// These functions are serialized by Playwright (fn.toString()) and run in the
// browser: they may use nothing from this module's scope. The project's
// tsconfig has no DOM types, hence the `any` for browser globals.

/** What one timed run saw, returned from the page. */
export interface PageRun {
  /** From the start (Enter, or the first write) to the frame that saw every byte rendered, ms. */
  ms: number;
  /** Longest 'longtask' overlapping the run, ms (0: none over 50 ms). */
  maxLongTaskMs: number;
  longTasks: number;
  /** Time in long tasks during the run, ms. */
  longTaskTotalMs: number;
  /** Longest gap between two animation frames during the run, ms. */
  maxFrameGapMs: number;
  frames: number;
  /** WebSocket messages received during the run, and their sizes (bytes, sorted). */
  wsSizes: number[];
  /** Whether the PerformanceObserver for long tasks works here. */
  longTaskSupported: boolean;
  /** document.visibilityState when the run was armed (a hidden page is not drawn: not a fair run). */
  visibility: string;
  /**
   * At every frame of the run: [ms since the start, WebSocket bytes received
   * so far, bytes rendered so far]. Received − rendered is what waited in the
   * page; near 0 means the page was waiting for data, not the other way round.
   */
  timeline: [number, number, number][];
  /** Every WebSocket message during the run: [ms since the start, bytes], received > 0, sent < 0. */
  wsLog: [number, number][];
}

/** The init script: installs `window.__benchMon` before any of the page's own scripts run. */
export function installMonitor(): void {
  const w = globalThis as any;
  if (w.__benchMon) return;
  const tasks: { start: number; duration: number }[] = [];
  let longTaskSupported = false;
  let observer: any;
  try {
    observer = new w.PerformanceObserver((list: any) => {
      for (const e of list.getEntries()) tasks.push({ start: e.startTime, duration: e.duration });
    });
    observer.observe({ type: 'longtask', buffered: true });
    longTaskSupported = true;
  } catch {
    // no long task API: the frame gaps still tell
  }

  // The current run: armed -> started (t0) -> done (t1).
  const run = {
    armed: false,
    onEnter: false,
    t0: -1,
    lastFrame: -1,
    maxGap: 0,
    frames: 0,
    ws: [] as number[],
    wsBytes: 0,
    visibility: '',
    timeline: [] as [number, number, number][],
    wsLog: [] as [number, number][],
  };

  // Frames: the gap between consecutive frames while a run is on. Only then:
  // a page asking for every frame is drawn at 60 Hz even when idle, which
  // would take CPU from the other page's run.
  let looping = false;
  const frame = (t: number) => {
    if (run.t0 >= 0) {
      const from = Math.max(run.lastFrame, run.t0);
      if (t > from) run.maxGap = Math.max(run.maxGap, t - from);
      run.frames++;
    }
    run.lastFrame = t;
    if (run.armed) w.requestAnimationFrame(frame);
    else looping = false;
  };
  const startFrames = () => {
    if (looping) return;
    looping = true;
    run.lastFrame = -1;
    w.requestAnimationFrame(frame);
  };

  // Enter starts the console's clock: capture phase on window, before xterm's own handler.
  w.addEventListener(
    'keydown',
    (e: any) => {
      if (run.armed && run.onEnter && run.t0 < 0 && e.key === 'Enter') run.t0 = w.performance.now();
    },
    true,
  );

  // Sizes of WebSocket messages received during a run (the console's gateway socket).
  const NativeWs = w.WebSocket;
  if (NativeWs) {
    w.WebSocket = class extends NativeWs {
      constructor(...args: any[]) {
        super(...args);
        this.addEventListener('message', (e: any) => {
          if (run.t0 < 0) return;
          const d = e.data;
          const n = typeof d === 'string' ? d.length : (d.byteLength ?? d.size ?? 0);
          run.ws.push(n);
          run.wsBytes += n;
          run.wsLog.push([Math.round((w.performance.now() - run.t0) * 10) / 10, n]);
        });
      }
      send(data: any): void {
        if (run.t0 >= 0) run.wsLog.push([Math.round((w.performance.now() - run.t0) * 10) / 10, -(data.byteLength ?? data.length ?? 0)]);
        super.send(data);
      }
    };
  }

  w.__benchMon = {
    /** Before a run: onEnter, the clock starts at the next Enter; otherwise now. */
    arm(onEnter: boolean): void {
      run.armed = true;
      run.onEnter = onEnter;
      run.t0 = onEnter ? -1 : w.performance.now();
      run.maxGap = 0;
      run.frames = 0;
      run.ws = [];
      run.wsBytes = 0;
      run.timeline = [];
      run.wsLog = [];
      run.visibility = w.document.visibilityState;
      startFrames();
    },
    /** Ends a run that will not be timed (the frame loop stops). */
    disarm(): void {
      run.armed = false;
      run.t0 = -1;
    },
    /** Resolves at the first frame where bytes() >= target (rejects after timeoutMs). */
    until(bytes: () => number, target: number, timeoutMs: number): Promise<PageRun> {
      return new Promise((resolve, reject) => {
        const deadline = w.performance.now() + timeoutMs;
        const poll = (t: number) => {
          const b = bytes();
          if (run.t0 >= 0) run.timeline.push([Math.round(t - run.t0), run.wsBytes, b]);
          if (run.t0 >= 0 && b >= target) {
            const t1 = Math.max(t, w.performance.now());
            run.armed = false;
            const t0 = run.t0;
            run.t0 = -1;
            // Entries not yet delivered to the callback (the last task's, typically).
            if (observer) for (const e of observer.takeRecords()) tasks.push({ start: e.startTime, duration: e.duration });
            const during = tasks.filter((x) => x.start + x.duration > t0 && x.start < t1);
            tasks.length = 0;
            resolve({
              ms: t1 - t0,
              maxLongTaskMs: during.reduce((m, x) => Math.max(m, x.duration), 0),
              longTasks: during.length,
              longTaskTotalMs: during.reduce((s, x) => s + x.duration, 0),
              maxFrameGapMs: run.maxGap,
              frames: run.frames,
              wsSizes: run.ws.sort((a, b) => a - b),
              longTaskSupported,
              visibility: run.visibility,
              timeline: run.timeline,
              wsLog: run.wsLog,
            });
            return;
          }
          if (w.performance.now() > deadline) {
            run.armed = false;
            run.t0 = -1;
            reject(new Error(`timed out after ${timeoutMs} ms: ${bytes()} of ${target} bytes rendered`));
            return;
          }
          w.requestAnimationFrame(poll);
        };
        w.requestAnimationFrame(poll);
      });
    },
  };
}
