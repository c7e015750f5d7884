// How the CLI reaches a control plane: the SDK's connect (sdk/connect.ts:
// address, TLS trust on first use, token sources and their refresh), with
// the command's --server and the CLI's way of telling the user: a notice on
// stderr the first time a certificate is pinned, when a list entry is
// refused, and when a background refresh fails.
import type { Command } from 'commander';
import { type CmdopClient, type Connection, type TrustOptions, connect, connectionTo as sdkConnectionTo } from '../sdk';
import { serverAddress } from './server-address';

export const notices: Pick<TrustOptions, 'onFirstUse' | 'onNotice'> = {
  onFirstUse: (server, fp) =>
    process.stderr.write(
      `cmdop: first connection to ${server}: pinned its certificate SHA256 ${fp}\n` +
        `       (compare with the fingerprint the server printed; a different one later is refused)\n`,
    ),
  onNotice: (message) => process.stderr.write(`cmdop: ${message}\n`),
};

/** TLS trust for an address (or a list), saying on stderr when a certificate is pinned for the first time. */
export const connectionTo = (addr: string): Promise<Connection> => sdkConnectionTo(addr, notices);

/**
 * A client for the command's --server, signed in. With a stored login the
 * access token is refreshed in the background for as long as the client
 * lives (connect and watch can run for days).
 */
export const clientFor = (cmd: Command, o: { machine?: string; token?: string } = {}): Promise<CmdopClient> =>
  connect({ server: serverAddress(cmd), machine: o.machine, token: o.token, ...notices });
