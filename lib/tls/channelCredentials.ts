// Client credentials that enforce a trust decision: the system CAs, or one
// pinned certificate as the only root with its fingerprint in place of the
// hostname check. Shared by the SDK (sdk/trust/) and the control plane's
// peer forwarder, which dials another replica.
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';

/**
 * How a client trusts the control plane: through the system CAs, or by a
 * pinned certificate (which is then the only root, and its fingerprint
 * replaces the hostname check).
 */
export type Trust = { mode: 'ca' } | { mode: 'pinned'; pem: string; fingerprint: string };


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
