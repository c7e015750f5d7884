// Totals the core keeps for the control plane's metrics (transports/metrics/):
// plain numbers, added to on the paths they count and read only when
// /metrics is scraped. The byte counters sit on the output path, which is
// measured hot, so it costs one addition per chunk there, and nothing when
// no one scrapes. One instance per control plane (several may share a
// process: tests, the desktop app).

/** Why a token or a caller was refused (cmdop_auth_refusals_total{reason}). */
export type RefusalReason =
  /** No token at all. */
  | 'missing'
  /** Not `Bearer TOKEN`, or too long. */
  | 'malformed'
  /** Not issued by this control plane (or issued for another kind of use). */
  | 'unknown'
  | 'revoked'
  | 'expired'
  /** An enrollment token used a second time. */
  | 'enrollment_used'
  /** The token's user no longer exists. */
  | 'user_gone'
  /** An OAuth access token the OAuth server does not vouch for (invalid, expired or revoked). */
  | 'oauth_invalid'
  /** A valid token that may not do what it asked (PERMISSION_DENIED). */
  | 'denied';

export class Counters {
  /** Terminal output bytes received from agents (after replays are trimmed). */
  relayFromAgent = 0;
  /** Terminal output bytes written to clients, summed over every attachment. */
  relayToClients = 0;
  /** Input bytes forwarded to agents. */
  relayToAgent = 0;
  /** File bytes the agents sent (downloads) and were sent (uploads). */
  fileDownload = 0;
  fileUpload = 0;
  readonly authRefusals = new Map<RefusalReason, number>();

  refused(reason: RefusalReason): void {
    this.authRefusals.set(reason, (this.authRefusals.get(reason) ?? 0) + 1);
  }
}

/** For relays and routers made without a control plane around them (unit tests, benches): counted, never read. */
export const UNREAD_COUNTERS = new Counters();
