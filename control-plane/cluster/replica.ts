// This process as one replica of the control plane: a heartbeat in the
// store (so the others know it is alive), the sweep of sessions whose
// replica stopped answering, and what it does when it loses the store.
//
// One control plane on its SQLite file is a cluster of one: the same code
// runs, and after a crash the next process finds the previous one's
// sessions without a live holder and takes them over.
//
// Liveness: a heartbeat every BEAT_MS; a replica silent for DEAD_MS is dead
// to the others. A replica that cannot write its own heartbeat for DEAD_MS
// may already be taken for dead, so it stops serving its sessions itself
// (its agents reconnect, to whichever replica answers, which takes them
// over) rather than keep streams the store says belong to no one.
import os from 'node:os';
import type { SessionsRepo } from '../db';
import type { Registry } from '../core/registry';
import type { Bus } from './bus';
import type { Logger } from '../../lib/logger';

export const BEAT_MS = 1000;
export const DEAD_MS = 5000;
const SWEEP_MS = 2000;

export class Replica {
  readonly startedMs = Date.now();
  /** The store answered this replica's heartbeat recently: it may serve sessions. */
  healthy = true;
  private lastBeatOk = Date.now();
  private beatTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private registry: Registry | undefined;
  private beating = false;
  private sweeping = false;

  constructor(
    /** Unique per process: a restarted control plane is a new replica taking over the old one's sessions. */
    readonly id: string,
    private readonly store: SessionsRepo,
    private readonly bus: Bus,
    private readonly logger: Logger,
    /** The only replica there can be (one process on its SQLite file): nobody else can take it for dead. */
    private readonly alone = false,
  ) {}

  /** Where other replicas reach this one (--peer-listen), '' if nowhere. */
  private peer = '';
  /** Its peer port's certificate (PEM) with TLS, '' without. */
  private peerCert = '';

  /** The first heartbeat (before sessions are restored: the others must see this replica as alive). */
  async announce(): Promise<void> {
    await this.store.beat(this.id, this.peer, this.startedMs, this.peerCert);
  }

  get peerAddress(): string {
    return this.peer;
  }

  /** Other replicas forward their clients' calls for this one's machines to `address` (from now on). */
  async advertise(address: string, certPem = ''): Promise<void> {
    this.peerCert = certPem;
    const { host, port } = splitAddress(address);
    // An address bound on every interface is no address to dial: the others use this host's name.
    this.peer = host === '0.0.0.0' || host === '[::]' || host === '::' ? `${os.hostname()}:${port}` : address;
    await this.store.beat(this.id, this.peer, this.startedMs, this.peerCert);
  }

  start(registry: Registry): void {
    this.registry = registry;
    this.beatTimer = setInterval(() => void this.beat(), BEAT_MS);
    this.beatTimer.unref();
    this.sweepTimer = setInterval(() => void this.sweep(), SWEEP_MS);
    this.sweepTimer.unref();
  }

  private async beat(): Promise<void> {
    // One at a time: a slow store must not pile up writes behind each other.
    if (this.beating) return;
    this.beating = true;
    try {
      await this.store.beat(this.id, this.peer, this.startedMs, this.peerCert);
      const silentMs = Date.now() - this.lastBeatOk;
      this.lastBeatOk = Date.now();
      if (!this.healthy) {
        this.healthy = true;
        this.logger.info('the store answers again: serving sessions');
      } else if (silentMs > DEAD_MS && !this.alone) {
        // Written, but late: the others may have taken this replica for dead meanwhile and swept its
        // sessions (the store then says nobody holds them). Those are given up here, so their agents
        // resume and the store is right again; serving them on would leave the store and this replica
        // disagreeing. The rest go on (a store slow for everyone swept nothing).
        const dropped = await this.registry?.reconcile().catch(() => 0);
        this.logger.warn({ silentMs, dropped }, 'the heartbeat was late: sessions the store gave up meanwhile are given up here');
      }
    } catch (err) {
      if (this.healthy && Date.now() - this.lastBeatOk > DEAD_MS) {
        this.healthy = false;
        this.logger.error({ err }, `no heartbeat written for ${DEAD_MS / 1000} s: the other replicas may take this one for dead; it stops serving its sessions`);
        this.registry?.drain('this control plane replica lost its store', 2000);
      }
    } finally {
      this.beating = false;
    }
  }

  private async sweep(): Promise<void> {
    if (!this.healthy || !this.registry || this.sweeping) return;
    this.sweeping = true;
    try {
      const { graced, ended } = await this.registry.sweep();
      if (graced.length) this.logger.warn({ sessions: graced.length }, 'sessions of a replica that stopped answering are in their grace period');
      for (const machine of ended) {
        this.logger.info({ machine }, 'a session whose replica stopped answering ran out of grace: DISCONNECTED');
        this.bus.publish({ type: 'machines-changed', machine });
      }
    } catch (err) {
      this.logger.warn({ err }, 'the sweep of orphaned sessions failed; it runs again');
    } finally {
      this.sweeping = false;
    }
  }

  /** Stopping: the sessions this replica held are orphans at once (another replica, or the next process, takes them over). */
  async stop(): Promise<void> {
    clearInterval(this.beatTimer);
    clearInterval(this.sweepTimer);
    await this.store.forgetReplica(this.id).catch(() => {});
  }
}

function splitAddress(address: string): { host: string; port: string } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: address.slice(at + 1) };
}
