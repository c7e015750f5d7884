// The page's one WebSocket to the control plane's gateway, kept up: when it
// drops, it reconnects with capped, jittered exponential backoff and every
// registered terminal session re-attaches from the last byte it saw. A token
// the server refuses is not retried forever: the page says so instead.
import { GatewayConnection, GatewayError, type WebSocketConstructor } from '../../../../sdk/gateway';
import { GATEWAY_PATH } from '../../../../protocol/limits';
import { Backoff } from '../../../../protocol/backoff';
import type { GatewayCall, GatewayReply } from '../../../../protocol/generated/cmdop/v1/cmdop';

export type ConnectionStatus = 'connecting' | 'open' | 'reconnecting' | 'refused';

/** A terminal session the connection re-attaches after a reconnect. */
export interface Reattachable {
  attachTo(gw: GatewayConnection): void;
}

type Request = NonNullable<GatewayCall['request']>;
type ResultOf<C extends Request['$case']> = Extract<NonNullable<GatewayReply['result']>, { $case: C }>['value'];

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 5000;

export class ConsoleConnection {
  status: ConnectionStatus = 'connecting';
  /** Why the token was refused, when it was. */
  refusal = '';
  /** How many times the socket came back after a loss. */
  reconnects = 0;
  /** When it last came back (0: never lost). */
  reconnectedAtMs = 0;
  private gw: GatewayConnection | undefined;
  private dead = new WeakSet<GatewayConnection>();
  // Jitter spreads the reconnects of many pages after a control plane restart.
  private readonly backoff = new Backoff({ initialMs: BACKOFF_MIN_MS, maxMs: BACKOFF_MAX_MS });
  private refusedInARow = 0;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private everOpened = false;
  private sessions = new Set<Reattachable>();
  private listeners = new Set<() => void>();
  private waiters: { resolve(gw: GatewayConnection): void; reject(e: Error): void }[] = [];

  constructor(
    /** The page's current token (also for the file transfers' Authorization header, net/files.ts). */
    readonly token: () => Promise<string>,
    private readonly url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${GATEWAY_PATH}`,
    private readonly Impl: WebSocketConstructor = WebSocket as unknown as WebSocketConstructor,
  ) {}

  start(): void {
    void this.connect();
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** True once `gw` has closed: a stream that ended with it will be re-attached, not given up. */
  isDead(gw: GatewayConnection): boolean {
    return this.dead.has(gw);
  }

  /** The live gateway, if the socket is open now. */
  get current(): GatewayConnection | undefined {
    return this.status === 'open' ? this.gw : undefined;
  }

  register(s: Reattachable): void {
    this.sessions.add(s);
    if (this.status === 'open' && this.gw) s.attachTo(this.gw);
  }

  unregister(s: Reattachable): void {
    this.sessions.delete(s);
  }

  /** A unary call; waits for the socket while it is (re)connecting. */
  async call<C extends Request['$case']>(kind: C, value: Extract<Request, { $case: C }>['value']): Promise<ResultOf<C>> {
    const gw = await this.ready();
    // The same call, typed by the gateway; TypeScript cannot relate the two generic signatures.
    return (await gw.call(kind, value as never)) as ResultOf<C>;
  }

  private ready(): Promise<GatewayConnection> {
    if (this.status === 'open' && this.gw) return Promise.resolve(this.gw);
    if (this.status === 'refused') return Promise.reject(new GatewayError('UNAUTHENTICATED', this.refusal));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.gw?.close();
  }

  private set(status: ConnectionStatus): void {
    this.status = status;
    for (const fn of this.listeners) fn();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let token: string;
    try {
      token = await this.token();
    } catch (e) {
      return this.refuse(`cannot get a token: ${(e as Error).message}`);
    }
    const gw = new GatewayConnection(this.url, token, this.Impl);
    this.gw = gw;
    gw.onclose = () => this.lost(gw);
    try {
      await gw.opened;
    } catch {
      // A refused upgrade (bad token) and an unreachable server look the same
      // to a browser's WebSocket; an HTTP request tells them apart. Twice in
      // a row, so a server coming back between the two is not taken for a
      // refusal.
      this.dead.add(gw);
      this.refusedInARow = (await this.serverAnswers()) ? this.refusedInARow + 1 : 0;
      if (this.refusedInARow >= 2) return this.refuse('the control plane refused this token (expired, revoked or unknown)');
      return this.retry();
    }
    this.refusedInARow = 0;
    if (this.stopped) return gw.close();
    this.backoff.reset();
    if (this.everOpened) {
      this.reconnects++;
      this.reconnectedAtMs = Date.now();
    }
    this.everOpened = true;
    this.set('open');
    for (const w of this.waiters.splice(0)) w.resolve(gw);
    for (const s of this.sessions) s.attachTo(gw);
  }

  private lost(gw: GatewayConnection): void {
    this.dead.add(gw);
    if (gw !== this.gw || this.stopped || this.status === 'refused') return;
    if (this.status === 'open') this.set('reconnecting');
    this.retry();
  }

  private retry(): void {
    if (this.stopped) return;
    if (this.status !== 'connecting') this.set('reconnecting');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.connect(), this.backoff.next());
  }

  private refuse(why: string): void {
    this.refusal = why;
    this.set('refused');
    for (const w of this.waiters.splice(0)) w.reject(new GatewayError('UNAUTHENTICATED', why));
  }

  private async serverAnswers(): Promise<boolean> {
    try {
      await fetch('/', { method: 'HEAD', cache: 'no-store', credentials: 'omit' });
      return true;
    } catch {
      return false;
    }
  }
}
