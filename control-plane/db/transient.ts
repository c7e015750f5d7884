// Which store failures are worth trying again: the store's link broke (a
// PostgreSQL restart, a failover, a network blip), not the write itself
// (a constraint, a type). A session's writes are retried through such a
// failure (core/session.ts); without it, a row written during a database
// restart was simply lost, and another replica could not find the session
// its agent then resumed (test/replicas.test.ts, "PostgreSQL restarts").

/** SQLSTATE classes and codes of a connection lost or refused (PostgreSQL's appendix A). */
const TRANSIENT_SQLSTATE = /^(08|57P0[123]|53300|40001|40P01)/;
const TRANSIENT_NODE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']);

export function isTransientStoreError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (TRANSIENT_SQLSTATE.test(code) || TRANSIENT_NODE.has(code)) return true;
  const msg = typeof e?.message === 'string' ? e.message : '';
  // pg's own errors for a connection that went away carry no code.
  return /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(msg);
}

/** A unique-key violation: on a retried insert, the first attempt landed after all. */
export function isDuplicateKey(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}
