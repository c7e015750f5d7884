// The one reconnect/retry delay policy: exponential, capped, with jitter by
// default. Used by the agent's streams, the SDK's re-attach, resumed file
// transfers and stdin delivery, and the console's WebSocket (so it stays
// browser-safe: no Node APIs).
//
// Written here rather than taken from a retry library: every caller already
// owns its loop or timer (a stream's reconnect timer, an await in a loop, a
// transport's own pause), and needs only the next delay. Retry libraries
// (p-retry, exponential-backoff) own the loop instead.

export interface BackoffOptions {
  /** The first delay's ceiling, ms. */
  initialMs: number;
  /** The ceiling no delay goes past, ms. */
  maxMs: number;
  /**
   * "Equal jitter" (the default): each delay is between half the ceiling and
   * the ceiling, so many clients that lost the same server at once come back
   * spread out, yet none retries at once. false: exactly the ceiling.
   */
  jitter?: boolean;
}

export class Backoff {
  private attempt = 0;

  constructor(private readonly o: BackoffOptions) {}

  /** The delay before the next attempt (ms); the ceiling doubles each time, up to `maxMs` (or the tighter `capMs`). */
  next(capMs = this.o.maxMs): number {
    const ceiling = Math.min(capMs, this.o.maxMs, this.o.initialMs * 2 ** this.attempt);
    // Past ~2^30 the ceiling is the cap anyway; stop counting before 2 ** attempt overflows.
    if (this.attempt < 30) this.attempt++;
    return this.o.jitter === false ? ceiling : Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  /** Attempts so far (since the last reset). */
  get attempts(): number {
    return this.attempt;
  }

  /** It worked (or bytes moved): the next delay starts from the first again. */
  reset(): void {
    this.attempt = 0;
  }
}
