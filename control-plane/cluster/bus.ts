// The cluster's bus for control events only (NATS core: no JetStream, and
// never a terminal byte: the agent already holds what is unacknowledged, and
// bytes go replica to replica). What travels here: revocations (cut streams
// on every replica at once), sessions moving to another owner, changes to
// the machines list, drains. A single control plane has no bus
// (LocalBus: nothing to tell).
//
// The bus is for speed, not for truth: the store is the truth. A replica
// cut off from the bus misses events, so on reconnecting it resynchronises
// from the store (onResync), and revocations are also polled from the store
// every few seconds, so one made while the bus was down still applies
// within seconds.
import type { Codec, NatsConnection } from 'nats';

/**
 * nats is loaded by the first replica that connects to it: a single control
 * plane (LocalBus) never needs its 54 modules (~3 MB of heap, measured).
 */
const nats = (): typeof import('nats') => require('nats') as typeof import('nats');
import type { Revocation } from '../core/access';
import type { Logger } from '../../lib/logger';

export type ClusterEvent =
  /** `id`: the revocation's own (cluster/revocations.ts applies each once). */
  | { type: 'revoke'; id: string; revocation: Revocation }
  | { type: 'session-moved'; sessionId: string; machine: string; owner: string; epoch: number }
  | { type: 'machines-changed'; machine: string }
  | { type: 'drain'; replica: string };

export interface Bus {
  readonly replicaId: string;
  /** Tells every other replica (not this one). */
  publish(e: ClusterEvent): void;
  onEvent(handler: (e: ClusterEvent, from: string) => void): void;
  /** After the bus came back from a disconnect: events may have been missed; read the store again. */
  onResync(handler: () => void): void;
  readonly connected: boolean;
  close(): Promise<void>;
}

/** One control plane: nobody to tell. */
export class LocalBus implements Bus {
  constructor(readonly replicaId: string) {}
  publish(): void {}
  onEvent(): void {}
  onResync(): void {}
  readonly connected = true;
  async close(): Promise<void> {}
}

interface Envelope {
  from: string;
  event: ClusterEvent;
}

let envelopeCodec: Codec<Envelope> | undefined;
const codec = (): Codec<Envelope> => (envelopeCodec ??= nats().JSONCodec<Envelope>());

export class NatsBus implements Bus {
  private handlers: ((e: ClusterEvent, from: string) => void)[] = [];
  private resyncs: (() => void)[] = [];
  connected = false;

  private constructor(
    readonly replicaId: string,
    private readonly nc: NatsConnection,
    private readonly subject: string,
    private readonly logger: Logger,
  ) {}

  /** Connects to `servers` (nats://HOST:PORT, comma-separated); events on SUBJECT (one cluster per subject). */
  static async connect(o: { servers: string; replicaId: string; cluster: string; logger: Logger }): Promise<NatsBus> {
    const nc = await nats().connect({
      servers: o.servers.split(',').map((s) => s.trim()).filter(Boolean),
      name: `cmdop-${o.replicaId}`,
      // Forever: a replica outlives a NATS restart and catches up (onResync).
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      waitOnFirstConnect: true,
    });
    const bus = new NatsBus(o.replicaId, nc, `cmdop.${o.cluster}.events`, o.logger);
    bus.connected = true;
    bus.listen();
    // A round trip, so the server has the subscription before anyone counts on it.
    await nc.flush();
    return bus;
  }

  private listen(): void {
    const sub = this.nc.subscribe(this.subject);
    void (async () => {
      for await (const m of sub) {
        let env: Envelope;
        try {
          env = codec().decode(m.data);
        } catch {
          this.logger.warn('bus: a message that is not an event: ignored');
          continue;
        }
        if (env.from === this.replicaId) continue;
        for (const h of this.handlers) {
          try {
            h(env.event, env.from);
          } catch (err) {
            this.logger.warn({ err, event: env.event.type }, 'bus: a handler failed');
          }
        }
      }
    })();
    void (async () => {
      for await (const s of this.nc.status()) {
        if (s.type === nats().Events.Disconnect) {
          this.connected = false;
          this.logger.warn('bus: disconnected from NATS; reconnecting');
        } else if (s.type === nats().Events.Reconnect) {
          this.connected = true;
          this.logger.info('bus: reconnected to NATS; resynchronising from the store');
          for (const r of this.resyncs) r();
        }
      }
    })();
  }

  publish(event: ClusterEvent): void {
    try {
      // While disconnected nats buffers it and sends it on reconnecting; the store poll covers what is lost.
      this.nc.publish(this.subject, codec().encode({ from: this.replicaId, event }));
    } catch (err) {
      this.logger.warn({ err, event: event.type }, 'bus: publish failed; the other replicas catch up from the store');
    }
  }

  onEvent(handler: (e: ClusterEvent, from: string) => void): void {
    this.handlers.push(handler);
  }

  onResync(handler: () => void): void {
    this.resyncs.push(handler);
  }

  async close(): Promise<void> {
    await this.nc.drain().catch(() => this.nc.close());
  }
}
