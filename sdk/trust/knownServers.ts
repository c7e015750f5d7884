// Trust on first use, as SSH's known_hosts: the certificate fingerprint the
// client accepted for each `host:port`, in a file of the user's own.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { mkdirPrivate, writeFileAtomic } from '../../lib/privateFile';
import { errMessage } from '../../lib/errors';
import { normalizeFingerprint } from '../../lib/tls/fingerprint';

/** The `host:port` key used for pins; IPv6 hosts are bracketed, names lowercased. */
export function serverAddress(host: string, port: number): string {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return net.isIPv6(h) ? `[${h}]:${port}` : `${h}:${port}`;
}


export interface KnownServer {
  address: string;
  fingerprint: string;
  /** When it was pinned (ISO 8601), to help a user judge a mismatch. */
  pinnedAt: string;
}

interface KnownServersFile {
  servers: Record<string, { fingerprint: string; pinnedAt: string }>;
}

/**
 * The client's pinned server certificates, like SSH's known_hosts: a JSON
 * file mapping `host:port` to a fingerprint.
 *
 * The file is re-read on every call (no cache) so several cmdop processes
 * see each other's pins, and written atomically (temp file + rename) so a
 * crash or a concurrent reader never sees half a file. It is private (0600,
 * directory 0700): it is not secret, but whoever can edit it decides which
 * servers this user trusts.
 */
export class KnownServers {
  constructor(readonly file: string) {}

  /** The pinned fingerprint for `host:port`, if any. */
  get(address: string): string | undefined {
    return this.read().servers[normalizeAddress(address)]?.fingerprint;
  }

  /** Pin (or re-pin) `host:port` to a fingerprint. */
  pin(address: string, fingerprint: string): void {
    const data = this.read();
    data.servers[normalizeAddress(address)] = {
      fingerprint: normalizeFingerprint(fingerprint),
      pinnedAt: new Date().toISOString(),
    };
    this.write(data);
  }

  /** Drop the pin for `host:port`, so the next connection pins afresh. Returns whether there was one. */
  forget(address: string): boolean {
    const data = this.read();
    const key = normalizeAddress(address);
    if (!(key in data.servers)) return false;
    delete data.servers[key];
    this.write(data);
    return true;
  }

  list(): KnownServer[] {
    return Object.entries(this.read().servers)
      .map(([address, v]) => ({ address, fingerprint: v.fingerprint, pinnedAt: v.pinnedAt }))
      .sort((a, b) => a.address.localeCompare(b.address));
  }

  private read(): KnownServersFile {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { servers: Object.create(null) };
      throw new Error(`cannot read known servers file ${this.file}: ${errMessage(e)}`);
    }
    const corrupt = (why: string) =>
      new Error(`known servers file ${this.file} is corrupt (${why}); fix it by hand or delete it (all servers will then be pinned afresh on next use)`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw corrupt(`not JSON: ${errMessage(e)}`);
    }
    if (!isObject(parsed) || !isObject(parsed.servers)) throw corrupt('expected {"servers": {...}}');
    const servers: KnownServersFile['servers'] = Object.create(null);
    for (const [address, v] of Object.entries(parsed.servers)) {
      if (!isObject(v) || typeof v.fingerprint !== 'string') throw corrupt(`entry "${address}" has no fingerprint`);
      let fingerprint: string;
      try {
        fingerprint = normalizeFingerprint(v.fingerprint);
      } catch {
        throw corrupt(`entry "${address}" has a malformed fingerprint`);
      }
      servers[address] = { fingerprint, pinnedAt: typeof v.pinnedAt === 'string' ? v.pinnedAt : '' };
    }
    return { servers };
  }

  private write(data: KnownServersFile): void {
    mkdirPrivate(path.dirname(this.file));
    writeFileAtomic(this.file, JSON.stringify(data, null, 2) + '\n', 0o600);
  }
}

function normalizeAddress(address: string): string {
  const a = address.trim();
  const m = /^(.*):(\d+)$/.exec(a);
  // Only normalize the unambiguous forms (name:port, v4:port, [v6]:port).
  if (m && !(m[1].includes(':') && !m[1].startsWith('['))) return serverAddress(m[1], Number(m[2]));
  return a.toLowerCase();
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
