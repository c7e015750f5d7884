// Paging through a directory. A listing is in bytewise (UTF-8) name order, so
// "after this name" means the same thing on every page, however the directory
// changed meanwhile: a page token carries the last name its page covered, and
// the next page starts at the first name above it. Entries that exist
// throughout are therefore listed exactly once; one added behind the cursor is
// not listed, one removed before its page is not either.
//
// Tokens are opaque to clients and MACed with a key of this agent process, so
// a forged or mangled token is refused rather than silently skipping to an
// arbitrary place (a token from before an agent restart is refused too: the
// client lists again from the start).
//
// The sorted names of recently paged directories are kept, so a 100k-entry
// directory costs one readdir() and sort, not one per page. A continuation
// page reuses them only while the directory's identity and mtime/ctime are
// unchanged; a first page always reads the directory afresh (a user who just
// created a file expects to see it).
import type { BigIntStats } from 'node:fs';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import { MAX_PAGE_TOKEN } from '../../../protocol';
import { invalid } from './errors';

/** Rank of a UTF-16 code unit such that unit order matches code point (= UTF-8 byte) order. */
const rank = (u: number) => (u < 0xd800 ? u : u < 0xe000 ? u + 0x2000 : u - 0x800);

/**
 * Bytewise order of the names' UTF-8 encodings, without encoding them: UTF-16
 * order differs only where a surrogate (a code point above U+FFFF) meets
 * U+E000-U+FFFF, and `rank` puts those the UTF-8 way round.
 */
export function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === n) return a.length - b.length;
  return rank(a.charCodeAt(i)) - rank(b.charCodeAt(i));
}

/** Index of the first of the sorted `names` that comes after `name`. */
export function firstAfter(names: readonly string[], name: string): number {
  let lo = 0;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareNames(names[mid], name) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const TOKEN_VERSION = 1;
const DIR_ID_BYTES = 8;
const MAC_BYTES = 16;
const TOKEN_RE = /^[A-Za-z0-9_-]+$/;

interface Snapshot {
  /** dev, ino, mtime and ctime of the directory when `names` was read. */
  stamp: string;
  names: string[];
  usedAt: number;
}

/** Directories whose sorted names are kept, and for how long unused. */
const KEEP_SNAPSHOTS = 8;
const SNAPSHOT_IDLE_MS = 60_000;
/**
 * Names kept over all snapshots (~40 MB of strings); a bigger directory is
 * read again for each page rather than held.
 */
const KEEP_NAMES = 1_000_000;

const stampOf = (st: BigIntStats) => `${st.dev}:${st.ino}:${st.mtimeNs}:${st.ctimeNs}`;

export class Listings {
  private readonly key = crypto.randomBytes(32);
  private readonly snapshots = new Map<string, Snapshot>();
  private sweeper: NodeJS.Timeout | undefined;

  /**
   * The directory's names in bytewise order. `fresh`: read them now (a first
   * page); else a kept snapshot serves while the directory is unchanged.
   * They are kept only if more than `pageSize` of them (one page is all a
   * small directory needs, and browsing must not fill memory).
   */
  async names(real: string, fresh: boolean, pageSize: number): Promise<string[]> {
    const st = await fsp.stat(real, { bigint: true });
    const stamp = stampOf(st);
    const kept = this.snapshots.get(real);
    if (!fresh && kept && kept.stamp === stamp) {
      kept.usedAt = Date.now();
      return kept.names;
    }
    const names = await fsp.readdir(real);
    names.sort(compareNames);
    this.snapshots.delete(real); // re-inserted last: the Map's order is least recently read first
    if (names.length > pageSize) this.keep(real, { stamp, names, usedAt: Date.now() });
    return names;
  }

  private keep(real: string, s: Snapshot): void {
    if (s.names.length > KEEP_NAMES) return;
    this.snapshots.set(real, s);
    let total = 0;
    for (const x of this.snapshots.values()) total += x.names.length;
    for (const [k, x] of this.snapshots) {
      if (this.snapshots.size <= KEEP_SNAPSHOTS && total <= KEEP_NAMES) break;
      this.snapshots.delete(k);
      total -= x.names.length;
    }
    this.sweepLater();
  }

  /** Drops snapshots unused for SNAPSHOT_IDLE_MS, so an abandoned listing does not hold its names. */
  private sweepLater(): void {
    if (this.sweeper) return;
    this.sweeper = setTimeout(() => {
      this.sweeper = undefined;
      const now = Date.now();
      for (const [k, s] of this.snapshots) if (now - s.usedAt > SNAPSHOT_IDLE_MS) this.snapshots.delete(k);
      if (this.snapshots.size) this.sweepLater();
    }, SNAPSHOT_IDLE_MS / 2);
    this.sweeper.unref(); // never what keeps the agent running
  }

  /** A token for the page after `last` in the directory `real`. */
  token(real: string, last: string): string {
    const body = Buffer.concat([Buffer.from([TOKEN_VERSION]), this.dirId(real), Buffer.from(last, 'utf8')]);
    return Buffer.concat([body, this.mac(body)]).toString('base64url');
  }

  /**
   * The name a token continues after, or INVALID_ARGUMENT if this agent did
   * not issue it for a listing of `real` (`shown` names the directory).
   */
  after(token: string, real: string, shown: string): string {
    const bad = (why: string) => invalid(`invalid page token for ${shown}: ${why}; list again without a token to start over`);
    if (token.length > MAX_PAGE_TOKEN || !TOKEN_RE.test(token)) throw bad('not a page token');
    const raw = Buffer.from(token, 'base64url');
    if (raw.length < 1 + DIR_ID_BYTES + 1 + MAC_BYTES || raw[0] !== TOKEN_VERSION) throw bad('not a page token');
    const body = raw.subarray(0, raw.length - MAC_BYTES);
    if (!crypto.timingSafeEqual(raw.subarray(raw.length - MAC_BYTES), this.mac(body))) {
      throw bad('not issued by this agent (altered, or the agent restarted since)');
    }
    if (!body.subarray(1, 1 + DIR_ID_BYTES).equals(this.dirId(real))) throw bad('it belongs to a listing of another directory');
    return body.subarray(1 + DIR_ID_BYTES).toString('utf8');
  }

  /** Binds a token to the directory it pages (by its real path). */
  private dirId(real: string): Buffer {
    return crypto.createHmac('sha256', this.key).update('dir\0').update(real).digest().subarray(0, DIR_ID_BYTES);
  }

  private mac(body: Buffer): Buffer {
    return crypto.createHmac('sha256', this.key).update('token\0').update(body).digest().subarray(0, MAC_BYTES);
  }
}
