// What the async store layer costs on the control plane's hottest query:
// a token looked up by its hash (every authenticated call starts there).
// `npm run build && node dist/bench/storeLookup.js` (BENCH_LOOKUPS, default
// 10,000 per contestant; BENCH_TOKENS rows in the table, default 1,000).
//
// In one process, one after another in rotating rounds so drift hits all
// alike, each lookup awaited before the next (as a request would):
// - better-sqlite3 alone, synchronous (what the store was before the Kysely layer),
// - Kysely over that same file (control-plane/db, with its statement cache),
// - Kysely's stock SqliteDialect over the same file (no statement cache),
// - Kysely over PostgreSQL: a throwaway server on loopback (test/helpers/postgres.ts),
//   and the same SQL through the same pg Pool without Kysely (the engine's floor).
// Prints p50/p90/p99 in µs per lookup.
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { AuthRepo, openDb, type Database } from '../control-plane/db';
import { TokenKind } from '../protocol';
import { startPostgres } from '../test/helpers/postgres';
import { tempDir } from '../test/helpers/cluster';
import { percentile } from './stats';

const LOOKUPS = Number(process.env.BENCH_LOOKUPS ?? 10_000);
const TOKENS = Number(process.env.BENCH_TOKENS ?? 1_000);
const ROUNDS = 5;

type Lookup = (hash: string) => unknown;

async function main(): Promise<void> {
  const dir = tempDir('cmdop-bench-store-');
  const pgServer = await startPostgres();
  try {
    const users = [{ id: 'u-bench', name: 'bench', passwordHash: '', admin: false, createdMs: Date.now() }];
    const tokens = Array.from({ length: TOKENS }, (_, i) => ({
      id: `tok_${i}`,
      kind: TokenKind.API,
      hash: randomBytes(32).toString('hex'),
      name: '',
      userId: 'u-bench',
      machine: '',
      terminalId: '',
      createdMs: Date.now(),
      expiresMs: 0,
    }));

    const sqlite = await openDb({ sqliteFile: path.join(dir, 'cmdop.sqlite') });
    const sqliteRepo = new AuthRepo(sqlite);
    for (const u of users) await sqliteRepo.addUser(u);
    await sqliteRepo.atomically(async (tx) => {
      for (const t of tokens) await tx.addToken(t);
    });
    // The floor under Kysely on SQLite: one prepared statement, called synchronously.
    const raw = new BetterSqlite3(path.join(dir, 'cmdop.sqlite'), { readonly: true });
    const byHash = raw.prepare('SELECT * FROM tokens WHERE hash = ?');
    const stock = new Kysely<Database>({ dialect: new SqliteDialect({ database: new BetterSqlite3(path.join(dir, 'cmdop.sqlite')) }) });
    const pg = await openDb(await pgServer.newDatabase('cmdop_bench'));
    const pgRepo = new AuthRepo(pg);
    for (const u of users) await pgRepo.addUser(u);
    await pgRepo.atomically(async (tx) => {
      for (const t of tokens) await tx.addToken(t);
    });

    const contestants: [string, Lookup][] = [
      ['better-sqlite3 alone, sync (the store before Kysely)', (h) => byHash.get(h)],
      ['Kysely + SQLite (control-plane/db)', (h) => sqliteRepo.tokenByHash(h)],
      ['Kysely + SQLite, stock dialect (no statement cache)', (h) => stock.selectFrom('tokens').selectAll().where('hash', '=', h).executeTakeFirst()],
      ['Kysely + PostgreSQL 15 (loopback TCP)', (h) => pgRepo.tokenByHash(h)],
      // The floor under the line above: the same SQL through the same pool, without Kysely.
      ['pg Pool, same SQL, no Kysely', async (h) => (await pg.pool!.query('select * from "tokens" where "hash" = $1', [h])).rows[0]],
    ];
    const samples = new Map<string, number[]>(contestants.map(([n]) => [n, []]));
    const pick = () => tokens[(Math.random() * tokens.length) | 0].hash;

    // Warm up each (JIT, statement caches, the pool's connection).
    for (const [, f] of contestants) for (let i = 0; i < 1000; i++) if (!(await f(pick()))) throw new Error('a token was not found');

    const per = Math.ceil(LOOKUPS / ROUNDS);
    for (let round = 0; round < ROUNDS; round++) {
      for (let c = 0; c < contestants.length; c++) {
        const [name, f] = contestants[(c + round) % contestants.length];
        const out = samples.get(name)!;
        for (let i = 0; i < per; i++) {
          const h = pick();
          const t0 = performance.now();
          const row = await f(h);
          out.push((performance.now() - t0) * 1000);
          if (!row) throw new Error('a token was not found');
        }
      }
    }

    console.log(`tokenByHash: ${per * ROUNDS} lookups each over ${TOKENS} tokens, awaited one at a time (µs per lookup)`);
    console.log(`${'contestant'.padEnd(54)} ${'p50'.padStart(7)} ${'p90'.padStart(7)} ${'p99'.padStart(7)}`);
    for (const [name] of contestants) {
      const xs = samples.get(name)!;
      const f = (p: number) => percentile(xs, p).toFixed(1).padStart(7);
      console.log(`${name.padEnd(54)} ${f(50)} ${f(90)} ${f(99)}`);
    }

    await stock.destroy();
    await sqliteRepo.close();
    await sqlite.close();
    await pgRepo.close();
    await pg.close();
    raw.close();
  } finally {
    await pgServer.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
