// Revocations across replicas. A revocation made on one replica must end
// the streams it covers on every replica at once: it goes out on the bus
// (milliseconds), and it is recorded in the store, which every replica
// polls, so one made while the bus was down (NATS restarting, a replica cut
// off from it) still applies within POLL_MS. Each carries an id of its own,
// and each replica applies each id once, whichever way it came first: a
// grant lowered to OBSERVER ends the user's streams once, not again after
// they re-attached as an observer.
import { randomUUID } from 'node:crypto';
import type { AuthRepo } from '../db';
import type { Access, Revocation } from '../core/access';
import type { Bus } from './bus';
import type { Logger } from '../../lib/logger';

const POLL_MS = 1000;
/** Rows older than this are gone from the store (a replica down longer starts from the newest anyway). */
const KEEP_MS = 3600_000;
/** Ids remembered as applied; far more than a poll interval's worth. */
const REMEMBER = 10_000;

export class RevocationFeed {
  private readonly applied = new Set<string>();
  private lastRow = 0;
  private timer: NodeJS.Timeout | undefined;
  private polls = 0;

  constructor(
    private readonly access: Access,
    private readonly store: AuthRepo,
    private readonly bus: Bus,
    private readonly logger: Logger,
  ) {
    bus.onEvent((e) => {
      if (e.type === 'revoke') void this.apply(e.id, e.revocation);
    });
  }

  /** Polling starts from the newest row: what was revoked before this replica started covers no stream of it. */
  async start(): Promise<void> {
    this.lastRow = await this.store.lastRevocationId();
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** A revocation made here: on the bus, in the store, and applied here. Resolves with the streams it ended here. */
  async revoke(r: Revocation): Promise<number> {
    const id = randomUUID();
    this.bus.publish({ type: 'revoke', id, revocation: r });
    const n = this.apply(id, r);
    await this.store.recordRevocation(id, JSON.stringify(r)).catch((err) => {
      // The bus carried it to the replicas that are on the bus; the store is the others' only way.
      this.logger.error({ err }, 'a revocation could not be recorded in the store: replicas cut off from the bus will not see it');
    });
    return n;
  }

  private async apply(id: string, r: Revocation): Promise<number> {
    if (this.applied.has(id)) return 0;
    this.applied.add(id);
    if (this.applied.size > REMEMBER) this.applied.delete(this.applied.values().next().value!);
    return this.access.applyRevocation(r);
  }

  private async poll(): Promise<void> {
    try {
      for (const row of await this.store.revocationsAfter(this.lastRow)) {
        this.lastRow = row.id;
        await this.apply(row.uid, JSON.parse(row.body) as Revocation);
      }
      if (++this.polls % 600 === 0) await this.store.pruneRevocations(Date.now() - KEEP_MS);
    } catch (err) {
      this.logger.warn({ err }, 'revocations could not be read from the store; trying again');
    }
  }
}
