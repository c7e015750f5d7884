/**
 * TLS for the control plane, without a certificate authority.
 *
 * The control plane generates a self-signed certificate on first start and
 * keeps it in its data directory. Clients (CLI, SDK, agents) cannot verify
 * such a certificate against a CA, so they do what SSH does with known_hosts:
 * on first contact they record the certificate's SHA-256 fingerprint for that
 * `host:port` ("trust on first use"), and on every later connection they
 * require exactly that certificate, refusing loudly if it changed. A server
 * whose certificate chains to the system CAs (e.g. behind a real domain name)
 * is trusted the ordinary way instead, with no pin.
 *
 * Fingerprints everywhere are Node's `fingerprint256` format: uppercase hex
 * pairs separated by colons, over the certificate's DER bytes. That is the
 * same value `openssl x509 -noout -fingerprint -sha256` prints, so an operator
 * can compare them by eye out of band.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { mkdirPrivate, writeFileAtomic } from './privateFile';
import { listEntryOf } from './listResolver';
import type * as SelfsignedModule from 'selfsigned';

/** A certificate and its private key, both PEM, plus the certificate's fingerprint. */
export interface CertMaterial {
  certPem: string;
  keyPem: string;
  /** SHA-256 of the DER certificate, "AB:CD:..." (Node's fingerprint256). */
  fingerprint: string;
  /** True when this call created the files (the server should print the fingerprint). */
  generated: boolean;
}

/**
 * How a client trusts the control plane: through the system CAs, or by a
 * pinned certificate (which is then the only root, and its fingerprint
 * replaces the hostname check).
 */
export type Trust = { mode: 'ca' } | { mode: 'pinned'; pem: string; fingerprint: string };

const TEN_YEARS_MS = 10 * 365.25 * 24 * 3600 * 1000;
// Backdated so that a client whose clock runs behind the server's does not
// reject a certificate generated a moment ago as "not yet valid".
const BACKDATE_MS = 24 * 3600 * 1000;

// ---------------------------------------------------------------------------
// Server side: the certificate
// ---------------------------------------------------------------------------

/**
 * Load the control plane's certificate from `dataDir/tls/{cert,key}.pem`, or
 * generate and store one if neither file exists.
 *
 * The certificate must stay the same across restarts: every client has pinned
 * its fingerprint, and a new one makes them all refuse to connect. That is
 * why it is generated once and reused, valid for ten years, and why a half
 * pair (one file missing) is an error rather than a silent regeneration.
 *
 * `extraNames` are added as subject alternative names (IPs as IP SANs, the
 * rest as DNS SANs) for clients that do hostname checks (e.g. a browser on
 * the web port); cmdop's own clients pin the fingerprint and ignore names.
 * They only matter at generation: an existing certificate is never rewritten.
 */
export async function ensureSelfSignedCert(dataDir: string, extraNames: string[] = []): Promise<CertMaterial> {
  const dir = path.join(dataDir, 'tls');
  const certPath = path.join(dir, 'cert.pem');
  const keyPath = path.join(dir, 'key.pem');
  const haveCert = fs.existsSync(certPath);
  const haveKey = fs.existsSync(keyPath);
  if (haveCert && haveKey) return loadCertFiles(certPath, keyPath);
  if (haveCert !== haveKey) {
    const [present, missing] = haveCert ? [certPath, keyPath] : [keyPath, certPath];
    throw new Error(
      `TLS certificate pair is incomplete: ${present} exists but ${missing} does not. ` +
        `Restore the missing file, or delete ${present} to generate a new certificate ` +
        `(every client that pinned the old one will then refuse to connect until told to trust the new one).`,
    );
  }

  const { certPem, keyPem } = await generateCert(subjectAltNames(extraNames));
  mkdirPrivate(dir, true);
  // Key first: a crash between the two writes then leaves a key without a
  // certificate, which the check above reports, never a certificate without
  // the key that proves it.
  writeFileAtomic(keyPath, keyPem, 0o600);
  writeFileAtomic(certPath, certPem, 0o644);
  return { certPem, keyPem, fingerprint: fingerprintOf(certPem), generated: true };
}

/**
 * Load a certificate and key given by the operator (e.g. `--tls-cert`,
 * `--tls-key`), checking that both parse and that the key belongs to the
 * certificate, so a mistake shows up at startup with the file named rather
 * than as an opaque handshake failure on every client.
 */
export function loadCertFiles(certPath: string, keyPath: string): CertMaterial {
  const certPem = readPem(certPath, 'certificate');
  const keyPem = readPem(keyPath, 'private key');
  let cert: crypto.X509Certificate;
  try {
    cert = new crypto.X509Certificate(certPem);
  } catch (e) {
    throw new Error(`TLS certificate ${certPath} is not a valid PEM certificate: ${errMessage(e)}`);
  }
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(keyPem);
  } catch (e) {
    throw new Error(`TLS private key ${keyPath} is not a valid unencrypted PEM private key: ${errMessage(e)}`);
  }
  let matches = false;
  try {
    matches = cert.checkPrivateKey(key);
  } catch {
    matches = false; // e.g. an RSA key against an EC certificate
  }
  if (!matches) {
    throw new Error(`TLS private key ${keyPath} does not match the certificate ${certPath}`);
  }
  return { certPem, keyPem, fingerprint: cert.fingerprint256, generated: false };
}

/** gRPC server credentials for the certificate. No client certificates: clients authenticate with tokens. */
export function serverCredentials(c: { certPem: string; keyPem: string }): grpc.ServerCredentials {
  return grpc.ServerCredentials.createSsl(
    null,
    [{ cert_chain: Buffer.from(c.certPem), private_key: Buffer.from(c.keyPem) }],
    false,
  );
}

function subjectAltNames(extraNames: string[]): Array<{ type: 2; value: string } | { type: 7; ip: string }> {
  const names = ['localhost', '127.0.0.1', '::1', os.hostname(), ...extraNames]
    .map((n) => n.trim().replace(/^\[(.*)\]$/, '$1'))
    .filter((n) => n !== '');
  const seen = new Set<string>();
  const out: Array<{ type: 2; value: string } | { type: 7; ip: string }> = [];
  for (const n of names) {
    const key = n.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(net.isIP(n) ? { type: 7, ip: n } : { type: 2, value: n });
  }
  return out;
}

async function generateCert(altNames: ReturnType<typeof subjectAltNames>): Promise<{ certPem: string; keyPem: string }> {
  // Required here, not at the top: selfsigned brings @peculiar/x509, asn1js and
  // their kin (~100 ms to load), which only a server generating its certificate
  // needs, while every TLS client (the CLI, agents) imports this module.
  const selfsigned: typeof SelfsignedModule = require('selfsigned');
  const now = Date.now();
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'cmdop control plane' }], {
    keyType: 'ec', // P-256: small, fast, and accepted by every TLS stack we meet
    curve: 'P-256',
    algorithm: 'sha256', // selfsigned defaults to SHA-1, which modern OpenSSL refuses
    notBeforeDate: new Date(now - BACKDATE_MS),
    notAfterDate: new Date(now + TEN_YEARS_MS),
    extensions: [
      // A plain leaf (not a CA): OpenSSL 3 accepts a self-signed leaf as the
      // only trust anchor, and a leaked key then cannot mint other trusted certs.
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return { certPem: pems.cert, keyPem: pems.private };
}

function readPem(file: string, what: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : errMessage(e);
    throw new Error(`TLS ${what} ${file} ${why}`);
  }
  if (!text.includes('-----BEGIN ')) {
    throw new Error(`TLS ${what} ${file} is not PEM (no "-----BEGIN" line)`);
  }
  return text;
}

// ---------------------------------------------------------------------------
// Fingerprints
// ---------------------------------------------------------------------------

/** The SHA-256 fingerprint of a PEM certificate, "AB:CD:...". */
export function fingerprintOf(pem: string): string {
  return new crypto.X509Certificate(pem).fingerprint256;
}

/**
 * Canonicalize a fingerprint typed or pasted by a user: with or without
 * colons, any case, optionally prefixed "SHA256:" (or openssl's
 * "sha256 Fingerprint="). Returns "AB:CD:..."; throws if it is not 32 bytes
 * of hex, so a truncated paste is an error rather than a never-matching pin.
 */
export function normalizeFingerprint(s: string): string {
  const hex = s
    .trim()
    .replace(/^sha-?256\s*(fingerprint)?\s*[:=]\s*/i, '')
    .replace(/[:\s]/g, '')
    .toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new Error(`not a SHA-256 certificate fingerprint: "${s}" (expected 64 hex digits, e.g. AB:CD:...)`);
  }
  return hex.match(/../g)!.join(':');
}

/** The `host:port` key used for pins; IPv6 hosts are bracketed, names lowercased. */
export function serverAddress(host: string, port: number): string {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return net.isIPv6(h) ? `[${h}]:${port}` : `${h}:${port}`;
}

// ---------------------------------------------------------------------------
// Client side: known servers (pins)
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Client side: probing and deciding trust
// ---------------------------------------------------------------------------

export interface ProbeResult {
  /** The server's leaf certificate, PEM. */
  pem: string;
  fingerprint: string;
  /** Whether it chains to the system CAs and matches the host name. */
  authorized: boolean;
  authorizationError?: string;
}

/**
 * Connect once with TLS and verification off, to learn the server's
 * certificate (and whether the system CAs would accept it). The verdict is
 * made by the caller; the real connection then enforces it, so a server that
 * swaps certificates between the probe and the connection is still caught.
 */
export function probeServerCertificate(host: string, port: number, timeoutMs = 5000): Promise<ProbeResult> {
  const bareHost = host.replace(/^\[(.*)\]$/, '$1');
  const address = serverAddress(bareHost, port);
  return new Promise<ProbeResult>((resolve, reject) => {
    let tcpConnected = false;
    let settled = false;
    const socket = tls.connect({
      host: bareHost,
      port,
      // SNI must not carry an IP (RFC 6066; Node warns), but names need it
      // for servers that host several certificates.
      servername: net.isIP(bareHost) ? undefined : bareHost,
      rejectUnauthorized: false,
      // Both, so the same probe works on the gRPC port (HTTP/2 only) and the
      // web port (an HTTP/1.1 server answers an h2-only offer with a fatal
      // "no application protocol" alert).
      ALPNProtocols: ['h2', 'http/1.1'],
    });
    const finish = (err: Error | null, result?: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(result!);
    };
    const timer = setTimeout(() => {
      finish(
        new Error(
          tcpConnected
            ? `${address} accepted the connection but sent no TLS handshake within ${timeoutMs} ms: it does not speak TLS (a plaintext server?)`
            : `cannot connect to ${address}: timed out after ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    socket.once('connect', () => {
      tcpConnected = true;
    });
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      if (!cert || !cert.raw) {
        finish(new Error(`${address} completed a TLS handshake but presented no certificate`));
        return;
      }
      const pem = derToPem(cert.raw);
      const authError = socket.authorizationError as unknown; // typed Error, actually a string code or Error
      finish(null, {
        pem,
        fingerprint: cert.fingerprint256,
        authorized: socket.authorized,
        ...(socket.authorized || authError == null
          ? {}
          : { authorizationError: authError instanceof Error ? authError.message : String(authError) }),
      });
    });
    socket.once('error', (e: NodeJS.ErrnoException) => finish(describeProbeError(e, address, tcpConnected)));
    // A peer that closes cleanly before the handshake completes emits 'error'
    // in Node; this is a backstop in case it only closes.
    socket.once('close', () =>
      finish(new Error(`${address} closed the connection during the TLS handshake: it does not speak TLS (a plaintext server?)`)),
    );
  });
}

function describeProbeError(e: NodeJS.ErrnoException, address: string, tcpConnected: boolean): Error {
  if (!tcpConnected) {
    switch (e.code) {
      case 'ECONNREFUSED':
        return new Error(`cannot connect to ${address}: connection refused (is the control plane running and listening there?)`);
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return new Error(`cannot connect to ${address}: host name not found`);
      default:
        return new Error(`cannot connect to ${address}: ${e.message}`);
    }
  }
  // TCP is up, so the failure is in the handshake. An OpenSSL alert means the
  // peer speaks TLS but refused us; anything else (garbage where a
  // ServerHello should be, or a hang-up) means it is not a TLS server.
  if (/alert/i.test(e.message)) {
    return new Error(`TLS handshake with ${address} failed: ${e.message}`);
  }
  return new Error(`${address} does not speak TLS (is it a plaintext server, or TLS disabled?): ${e.message}`);
}

/**
 * The server presented a certificate other than the one expected. Never
 * caught and ignored: it is either a reinstalled server or someone in the
 * middle, and only the user can tell which.
 */
export class PinMismatchError extends Error {
  constructor(
    readonly address: string,
    readonly expected: string,
    readonly actual: string,
    message: string,
  ) {
    super(message);
    this.name = 'PinMismatchError';
  }
}

export interface ResolveTrustOptions {
  host: string;
  port: number;
  /** Where first-use pins are recorded and checked; without it nothing is remembered. */
  knownServers?: KnownServers;
  /** A fingerprint the user got out of band (e.g. `--fingerprint`): the server must present exactly this. */
  expectedFingerprint?: string;
  /** Told the fingerprint when a server is pinned for the first time, so the CLI can print it. */
  onFirstUse?: (fingerprint: string) => void;
  /** Probe timeout, ms (default 5000). */
  timeoutMs?: number;
}

/**
 * Decide how to trust the control plane at `host:port`, in this order:
 * 1. an explicit expected fingerprint must match (and is then recorded as the pin);
 * 2. a certificate valid under the system CAs is trusted as such;
 * 3. a pinned fingerprint must match;
 * 4. otherwise this is first use: pin what the server presented.
 * A mismatch throws PinMismatchError; nothing is overwritten by a mismatch.
 */
export async function resolveTrust(opts: ResolveTrustOptions): Promise<Trust> {
  const address = serverAddress(opts.host, opts.port);
  const expected = opts.expectedFingerprint === undefined ? undefined : normalizeFingerprint(opts.expectedFingerprint);
  const probe = await probeServerCertificate(opts.host, opts.port, opts.timeoutMs);
  return decideTrust(address, probe, { ...opts, expectedFingerprint: expected });
}

/** resolveTrust's verdict on a certificate `address` presented (a probe's, or a live handshake's). */
function decideTrust(
  address: string,
  probe: ProbeResult,
  opts: Pick<ResolveTrustOptions, 'knownServers' | 'expectedFingerprint' | 'onFirstUse'>,
): Trust {
  const expected = opts.expectedFingerprint;
  const pinned: Trust = { mode: 'pinned', pem: probe.pem, fingerprint: probe.fingerprint };

  if (expected !== undefined) {
    if (probe.fingerprint !== expected) {
      throw new PinMismatchError(
        address,
        expected,
        probe.fingerprint,
        `The TLS certificate of ${address} does not match the fingerprint you gave.\n` +
          `  expected: ${expected}\n` +
          `  received: ${probe.fingerprint}\n` +
          `Refusing to connect: either the fingerprint is wrong or someone is intercepting the connection.`,
      );
    }
    // The user vouched for this exact certificate, so later runs need not repeat it.
    opts.knownServers?.pin(address, probe.fingerprint);
    return pinned;
  }

  if (probe.authorized) return { mode: 'ca' };

  const known = opts.knownServers?.get(address);
  if (known !== undefined) {
    if (known !== probe.fingerprint) {
      const file = opts.knownServers!.file;
      throw new PinMismatchError(
        address,
        known,
        probe.fingerprint,
        `WARNING: THE TLS CERTIFICATE OF ${address} HAS CHANGED!\n` +
          `Someone could be intercepting the connection, or the control plane was reinstalled\n` +
          `or given a new certificate. Refusing to connect.\n` +
          `  pinned:   ${known}\n` +
          `  received: ${probe.fingerprint}\n` +
          `The pin is stored in ${file}.\n` +
          `If you know why the certificate changed (check the fingerprint the server prints at startup),\n` +
          `accept the new one with:  cmdop trust --forget ${address}   and connect again.`,
      );
    }
    return pinned;
  }

  opts.knownServers?.pin(address, probe.fingerprint);
  opts.onFirstUse?.(probe.fingerprint);
  return pinned;
}

// ---------------------------------------------------------------------------
// Client side: credentials that enforce the trust decision
// ---------------------------------------------------------------------------

/**
 * A checkServerIdentity that accepts exactly the pinned certificate, whatever
 * host name was used to reach it. It replaces the hostname check because the
 * pin is a stronger statement than a name match, and the user may reach the
 * server by an address the certificate does not list (a LAN IP, a tunnel).
 * Node calls it only after the chain verified against the pinned certificate
 * as the sole root, and on every new handshake, so it also catches a
 * certificate swapped after resolveTrust's probe.
 */
function pinCheck(fingerprint: string): (host: string, cert: tls.PeerCertificate) => Error | undefined {
  // The host is not named: with grpcChannelOptions it is a placeholder.
  return (_host, cert) =>
    cert.fingerprint256 === fingerprint
      ? undefined
      : new Error(`server TLS certificate does not match the pinned one: expected ${fingerprint}, got ${cert.fingerprint256}`);
}

/**
 * gRPC channel credentials for a trust decision. Pinned: the pinned
 * certificate is the only root and its fingerprint replaces the hostname
 * check (grpc-js passes checkServerIdentity through to tls.connect).
 */
export function grpcChannelCredentials(trust: Trust): grpc.ChannelCredentials {
  if (trust.mode === 'ca') return grpc.credentials.createSsl();
  return grpc.credentials.createSsl(Buffer.from(trust.pem), null, null, {
    checkServerIdentity: pinCheck(trust.fingerprint),
  });
}

/**
 * Channel options to use with grpcChannelCredentials when connecting to
 * `host`. grpc-js puts the target host into TLS SNI even when it is an IP
 * address, which RFC 6066 forbids and Node answers with a DEP0123 warning
 * on stderr (visible in the CLI). For a pinned server reached by IP we set
 * the name grpc-js uses for SNI to a fixed placeholder instead; it does not
 * change the :authority header, and the pin check ignores names. CA trust
 * and DNS names are left alone, since there the name is what is verified.
 */
export function grpcChannelOptions(trust: Trust, host: string): grpc.ChannelOptions {
  if (trust.mode === 'pinned' && net.isIP(host.replace(/^\[(.*)\]$/, '$1'))) {
    return { 'grpc.ssl_target_name_override': PINNED_SNI_NAME };
  }
  return {};
}
const PINNED_SNI_NAME = 'cmdop-control-plane';

/** An HTTPS agent for the control plane's web port (same certificate), enforcing the same trust. */
export function httpsAgent(trust: Trust): https.Agent {
  if (trust.mode === 'ca') return new https.Agent();
  return new https.Agent({ ca: trust.pem, checkServerIdentity: pinCheck(trust.fingerprint) });
}

// ---------------------------------------------------------------------------
// Client side: a list of servers (replicas), each trusted on its own
// ---------------------------------------------------------------------------

/**
 * Trust for a TLS server list (`grpcs://A,grpcs://B`): the rules of
 * resolveTrust, applied to each entry on its own, at every handshake. Each
 * replica may present its own certificate or a shared one: each entry is
 * pinned on first use under its own `host:port`, and a certificate that
 * differs from an entry's pin is refused, loudly, as for one server.
 *
 * One gRPC channel dials all the entries (lib/listResolver.ts), so the
 * certificate is judged when a connection is made, knowing which entry it
 * reached (ordinary grpc-js credentials know only the channel's one name).
 * The first mismatch is kept: the agent stops on it at its next reconnect,
 * as it does for one server.
 */
export class ListTrust {
  /** The first certificate refused for not matching its pin. */
  mismatch: PinMismatchError | undefined;
  /** The trust decided on each entry's last handshake, by `host:port`. */
  readonly decided = new Map<string, Trust>();

  constructor(
    private readonly opts: {
      knownServers?: KnownServers;
      /** With a list, every entry must present this certificate. */
      expectedFingerprint?: string;
      /** Only certificates the system CAs accept for the entry's name (the SDK's default without credentials). */
      requireCa?: boolean;
      onFirstUse?: (address: string, fingerprint: string) => void;
      /** Told of every refusal (the connection fails and the channel goes on to the next entry). */
      onRefused?: (e: Error) => void;
    } = {},
  ) {}

  /** The verdict on what `entry` presented; throws (PinMismatchError, or an untrusted certificate) when refused. */
  check(entry: { host: string; port: number }, seen: ProbeResult & { validTo?: string }): Trust {
    const address = serverAddress(entry.host, entry.port);
    try {
      if (this.opts.requireCa && !seen.authorized) {
        throw new Error(`the TLS certificate of ${address} is not trusted by this system's CAs (${seen.authorizationError ?? 'unverified'})`);
      }
      const expected = this.opts.expectedFingerprint === undefined ? undefined : normalizeFingerprint(this.opts.expectedFingerprint);
      const trust = decideTrust(address, seen, {
        knownServers: this.opts.knownServers,
        expectedFingerprint: expected,
        onFirstUse: (fp) => this.opts.onFirstUse?.(address, fp),
      });
      // A pinned certificate is the only root of a single server's channel,
      // so it is refused once expired; the same here.
      if (trust.mode === 'pinned' && seen.validTo && Date.parse(seen.validTo) < Date.now()) {
        throw new Error(`the pinned TLS certificate of ${address} expired on ${seen.validTo}`);
      }
      this.decided.set(address, trust);
      return trust;
    } catch (e) {
      if (e instanceof PinMismatchError) this.mismatch ??= e;
      this.opts.onRefused?.(e as Error);
      throw e;
    }
  }

  /**
   * The trust of the first entry that answers a probe, in the list's order
   * (probed together, so a dead entry costs no more than the slowest
   * before the first alive); throws if it is refused, or if none answers.
   */
  async probeFirst(entries: ReadonlyArray<{ host: string; port: number }>, timeoutMs?: number): Promise<Trust> {
    const probes = entries.map((e) => probeServerCertificate(e.host, e.port, timeoutMs));
    for (const p of probes) p.catch(() => {}); // the ones not awaited below
    const errors: string[] = [];
    for (const [i, p] of probes.entries()) {
      let seen: ProbeResult;
      try {
        seen = await p;
      } catch (e) {
        errors.push(errMessage(e));
        continue;
      }
      return this.check(entries[i], seen);
    }
    throw new Error(errors.length === 1 ? errors[0] : `none of the servers answered:\n  ${errors.join('\n  ')}`);
  }
}

/**
 * gRPC channel credentials for a list target (lib/listResolver.ts): each
 * connection's certificate is checked by `trust` against the entry whose
 * address it reached, with that entry's name for SNI and for the CAs'
 * hostname check.
 */
export function listChannelCredentials(entries: ReadonlyArray<{ host: string; port: number }>, trust: ListTrust): grpc.ChannelCredentials {
  return new ListChannelCredentials(entries, trust);
}

class ListChannelCredentials extends grpc.ChannelCredentials {
  constructor(
    private readonly entries: ReadonlyArray<{ host: string; port: number }>,
    private readonly trust: ListTrust,
  ) {
    super();
  }

  _isSecure(): boolean {
    return true;
  }

  _equals(other: grpc.ChannelCredentials): boolean {
    return other instanceof ListChannelCredentials && other.trust === this.trust;
  }

  _createSecureConnector(
    channelTarget: grpc.experimental.GrpcUri,
    _options: grpc.ChannelOptions,
    callCredentials?: grpc.CallCredentials,
  ): grpc.experimental.SecureConnector {
    const target = grpc.experimental.uriToString(channelTarget);
    const creds = callCredentials ?? grpc.credentials.createEmpty();
    return {
      connect: (socket: net.Socket) =>
        new Promise((resolve, reject) => {
          const ip = socket.remoteAddress ?? '';
          const port = socket.remotePort ?? 0;
          const i = listEntryOf(target, ip, port);
          if (i === undefined || !this.entries[i]) {
            reject(new Error(`connected to ${ip}:${port}, which is not an address ${target} resolved to`));
            return;
          }
          const entry = this.entries[i];
          const host = entry.host.replace(/^\[(.*)\]$/, '$1');
          const t = tls.connect({
            socket,
            host, // the name the CAs' hostname check uses
            servername: net.isIP(host) ? undefined : host,
            ALPNProtocols: ['h2'],
            // Judged below, by the entry's own rules (as resolveTrust's probe).
            rejectUnauthorized: false,
          });
          t.once('secureConnect', () => {
            const cert = t.getPeerCertificate();
            if (!cert || !cert.raw) {
              t.destroy();
              reject(new Error(`${serverAddress(host, entry.port)} presented no TLS certificate`));
              return;
            }
            const authError = t.authorizationError as unknown;
            try {
              this.trust.check(entry, {
                pem: derToPem(cert.raw),
                fingerprint: cert.fingerprint256,
                authorized: t.authorized,
                authorizationError: authError == null ? undefined : authError instanceof Error ? authError.message : String(authError),
                validTo: cert.valid_to,
              });
            } catch (e) {
              t.destroy();
              reject(e);
              return;
            }
            resolve({ socket: t, secure: true });
          });
          t.once('error', reject);
        }),
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => creds,
      destroy: () => {},
    };
  }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

function derToPem(der: Buffer): string {
  const b64 = der.toString('base64').match(/.{1,64}/g)!.join('\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/**
 * Create a directory (and missing parents) as 0700; the umask can only
 * remove bits, so what we create is never looser. An existing directory is
 * tightened only when `tighten` says it is ours alone (DATA/tls), never a
 * caller's shared parent.
 */


function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
