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
import * as net from 'node:net';
import * as tls from 'node:tls';
import { derToPem, normalizeFingerprint } from '../../lib/tls/fingerprint';
import type { Trust } from '../../lib/tls/channelCredentials';
import { KnownServers, serverAddress } from './knownServers';


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
export function decideTrust(
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
