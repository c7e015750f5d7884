// Trust for a list of servers (replicas): each entry pinned on its own.
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { listEntryOf } from '../../lib/listResolver';
import { errMessage } from '../../lib/errors';
import { derToPem, normalizeFingerprint } from '../../lib/tls/fingerprint';
import type { Trust } from '../../lib/tls/channelCredentials';
import { KnownServers, serverAddress } from './knownServers';
import { PinMismatchError, decideTrust, probeServerCertificate, type ProbeResult } from './firstUse';


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
