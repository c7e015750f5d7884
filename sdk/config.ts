// Client defaults: explicit options, else CMDOP_* environment variables, else
// the local control plane that `cmdop up` starts.
import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';
import { DEFAULT_SERVER, DEFAULT_TIMEOUTS } from '../protocol';
import type { BackoffOptions } from '../protocol/backoff';

export interface ClientOptions {
  /**
   * HOST:PORT, or grpcs://HOST:PORT for TLS (CMDOP_SERVER). Several (an
   * array, or `A,B,C`): tried in order, going over to the next when one
   * fails (lib/listResolver.ts).
   */
  server?: string | readonly string[];
  /** Channel credentials to use instead of the ones the address implies (e.g. a pinned certificate). */
  credentials?: ChannelCredentials;
  /** Extra gRPC channel options (e.g. the SNI name for a pinned certificate). */
  channelOptions?: ChannelOptions;
  /** Default machine for terminal calls (CMDOP_MACHINE). */
  machine?: string;
  /** Bearer token (CMDOP_TOKEN); carried on every call. */
  token?: string;
  /** Client heartbeat interval, ms. */
  heartbeatIntervalMs?: number;
  /** How long an attachment keeps trying to re-attach after losing its stream, ms. */
  reconnectTimeoutMs?: number;
}

export interface ResolvedClientOptions {
  /** As given, a list joined by commas. */
  server: string;
  machine: string | undefined;
  token: string | undefined;
  heartbeatIntervalMs: number;
  reconnectTimeoutMs: number;
}

export function resolveClientOptions(o: ClientOptions = {}, env = process.env): ResolvedClientOptions {
  return {
    server: (typeof o.server === 'string' ? o.server : o.server?.join(',')) ?? env.CMDOP_SERVER ?? DEFAULT_SERVER,
    machine: o.machine ?? env.CMDOP_MACHINE,
    token: o.token ?? env.CMDOP_TOKEN,
    heartbeatIntervalMs: o.heartbeatIntervalMs ?? DEFAULT_TIMEOUTS.heartbeatIntervalS * 1000,
    reconnectTimeoutMs: o.reconnectTimeoutMs ?? 60_000,
  };
}

/**
 * How the SDK waits between tries of what a lost connection interrupted (a
 * re-attach, a resumed transfer, stdin delivery): 100 ms doubling to 2 s,
 * within the client's reconnect timeout. No jitter: each is one client's own
 * retry, and the control plane's restart spreads agents, not these.
 */
export const RETRY_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 2000, jitter: false };
