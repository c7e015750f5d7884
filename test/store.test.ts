// The store layer (control-plane/db): every repository method against both
// engines with the same test body, migrations (concurrent, and adopting a
// file written by the release before this layer), and what the engines must
// agree on: numbers come back as numbers, bytes as the same bytes, text in
// the same order. PostgreSQL is a throwaway server (helpers/postgres.ts);
// without its binaries these tests fail and say what to install.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { AttachMode, Capabilities, SessionState, TerminalKind, TerminalSpec, TokenKind } from '../protocol';
import {
  AuthRepo,
  createOidcAdapter,
  createRateLimiter,
  DEVICE_CODE_RETENTION_S,
  OAuthModelsRepo,
  openDb,
  SessionsRepo,
  SigningKeysRepo,
  type Db,
  type DbTarget,
  type Engine,
  type TokenRow,
} from '../control-plane/db';
import { startControlPlane } from '../control-plane/server';
import { generateOAuthKeys } from '../control-plane/oauth/keys';
import type { AdapterPayload } from '../control-plane/oauth/oidc';
import { createLogger } from '../lib/logger';
import { tempDir } from './helpers/cluster';
import { startPostgres, type Postgres } from './helpers/postgres';

const DB_MODULE = path.join(__dirname, '..', 'control-plane', 'db', 'index.js');
const ALL_MIGRATIONS = ['0001_baseline', '0002_cluster_state', '0003_replicas'];

let pgServer: Promise<Postgres> | undefined;
const postgres = () => (pgServer ??= startPostgres());
const dirs: string[] = [];
after(async () => {
  const server = await pgServer?.catch(() => undefined);
  await server?.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function newDir(): string {
  const d = tempDir('cmdop-store-');
  dirs.push(d);
  return d;
}

/** A new, empty store of each engine. */
const ENGINES: { engine: Engine; fresh(): Promise<DbTarget> }[] = [
  { engine: 'sqlite', fresh: async () => ({ sqliteFile: path.join(newDir(), 'cmdop.sqlite') }) },
  { engine: 'postgres', fresh: async () => (await postgres()).newDatabase() },
];

async function count(db: Db, table: 'audit' | 'oauth_models' | 'session_transitions' | 'terminals' | 'tokens'): Promise<number> {
  const r = await db.kysely
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return r.n;
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const caps = (hostname: string): Capabilities =>
  Capabilities.fromPartial({ os: 'linux', arch: 'x64', hostname, shells: ['/bin/bash'], pty: true, files: true, version: '0.1.0' });

const spec = (title: string): TerminalSpec =>
  TerminalSpec.fromPartial({ kind: TerminalKind.SHELL, argv: ['/bin/bash', '-l'], cols: 80, rows: 24, cwd: '/tmp', env: { TERM: 'xterm', X: 'é\u0000z' }, title });

/** Tokens in the new layer's order: the old code left ties in created_ms to SQLite (rowid order); the new one orders them by id. */
const tiesById = (tokens: TokenRow[]) => tokens.sort((x, y) => x.createdMs - y.createdMs || (x.id < y.id ? -1 : 1));

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

for (const { engine, fresh } of ENGINES) {
  describe(`the store on ${engine}`, () => {
    let target: DbTarget;
    let db: Db;
    before(async () => {
      target = await fresh();
      db = await openDb(target);
    });
    after(async () => {
      await db?.close();
    });

    it('migrates a new store to the newest schema once; a second run finds nothing to do', async () => {
      const other = await fresh();
      const d = await openDb(other, { migrate: false });
      try {
        assert.deepEqual(await d.migrate(), { applied: ALL_MIGRATIONS });
        assert.deepEqual(await d.migrate(), { applied: [] });
        const names = (await d.kysely.introspection.getTables()).map((t) => t.name).sort();
        assert.deepEqual(names, [
          'agents', 'audit', 'grants', 'machines', 'oauth_keys', 'oauth_models', 'rate_limits',
          'replicas', 'revocations', 'session_transitions', 'sessions', 'terminals', 'tokens', 'users',
        ]);
      } finally {
        await d.close();
      }
    });

    it('migrations run from three processes at once: all succeed, each migration is applied once', async () => {
      const other = await fresh();
      const script = `
        const { openDb } = require(${JSON.stringify(DB_MODULE)});
        const { sql } = require('kysely');
        (async () => {
          const db = await openDb(JSON.parse(process.argv[1]), { migrate: false });
          if (db.engine === 'postgres') await sql\`select 1\`.execute(db.kysely); // connected before the start line
          process.stdout.write('ready\\n');
          await new Promise((r) => process.stdin.once('data', r));
          const out = await db.migrate();
          process.stdout.write(JSON.stringify(out) + '\\n');
          await db.close();
          process.exit(0);
        })().catch((e) => { console.error(e); process.exit(1); });`;
      const procs = [0, 1, 2].map(() => spawn(process.execPath, ['-e', script, JSON.stringify(other)], { cwd: path.join(__dirname, '..', '..') }));
      const outs = procs.map((p) => {
        const o = { out: '', err: '' };
        p.stdout.on('data', (d: Buffer) => (o.out += d));
        p.stderr.on('data', (d: Buffer) => (o.err += d));
        return o;
      });
      // A start line for all at once, once all are connected.
      await eventually(async () => outs.every((o) => o.out.includes('ready\n')), 30_000);
      for (const p of procs) p.stdin.write('go\n');
      const codes = await Promise.all(procs.map((p) => new Promise<number | null>((r) => (p.exitCode !== null ? r(p.exitCode) : p.once('exit', r)))));
      assert.deepEqual(codes, [0, 0, 0], outs.map((o) => o.err).join('\n'));
      const applied = outs.map((o) => JSON.parse(o.out.split('\n')[1]).applied as string[]);
      assert.equal(applied.filter((a) => a.length > 0).length, 1, JSON.stringify(applied));
      assert.deepEqual(applied.flat(), ALL_MIGRATIONS);
      const d = await openDb(other, { migrate: false });
      try {
        const rows = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(d.kysely);
        assert.deepEqual(rows.rows.map((r) => r.name), ALL_MIGRATIONS);
      } finally {
        await d.close();
      }
    });

    it('SessionsRepo: agents are upserted and listed by name, byte order; first seen is kept', async () => {
      const s = new SessionsRepo(db);
      for (const [id, name] of [['ag-b', 'b'], ['ag-B', 'B'], ['ag-a', 'a']]) await s.upsertAgent(id, name, caps(name));
      const before = (await s.agents()).find((a) => a.agentId === 'ag-a')!;
      await new Promise((r) => setTimeout(r, 5));
      await s.upsertAgent('ag-a', 'a', caps('renamed-host'));
      const list = await s.agents();
      assert.deepEqual(list.map((a) => a.name), ['B', 'a', 'b']);
      const a = list.find((x) => x.agentId === 'ag-a')!;
      assert.deepEqual(a.capabilities, caps('renamed-host'));
      assert.equal(a.firstSeenMs, before.firstSeenMs);
      assert.ok(a.lastSeenMs > before.lastSeenMs);
      await new Promise((r) => setTimeout(r, 5));
      await s.touchAgent('ag-a');
      assert.ok((await s.agents()).find((x) => x.agentId === 'ag-a')!.lastSeenMs > a.lastSeenMs);
    });

    it('SessionsRepo: a session, its transitions, its terminals; DISCONNECTED forgets the terminals', async () => {
      const s = new SessionsRepo(db);
      await s.upsertAgent('ag-1', 'box', caps('box'));
      await s.createSession('se-1', 'ag-1', 'box', ALL_BYTES, SessionState.CONNECTED, 'registered');
      const row = await s.session('se-1');
      assert.equal(row?.state, SessionState.CONNECTED);
      assert.equal(row?.reason, 'registered');
      assert.equal(typeof row?.createdMs, 'number');
      assert.equal(row?.createdMs, row?.updatedMs);
      assert.equal(await s.session('nope'), undefined);

      const t1 = { sessionId: 'se-1', terminalId: 't-1', spec: spec('one'), createdMs: 1000, cols: 80, rows: 24, operators: 1 };
      const t2 = { sessionId: 'se-1', terminalId: 't-2', spec: spec('two'), createdMs: 2000, cols: 100, rows: 30, operators: 0 };
      await s.putTerminal(t2);
      await s.putTerminal(t1);
      // An upsert changes the size and the operators, not the spec or creation time.
      await s.putTerminal({ ...t1, spec: spec('ignored'), createdMs: 5000, cols: 120, rows: 40, operators: 2 });
      assert.deepEqual(await s.terminalsOf('se-1'), [{ ...t1, cols: 120, rows: 40, operators: 2 }, t2]);
      await s.deleteTerminal('se-1', 't-2');
      assert.deepEqual((await s.terminalsOf('se-1')).map((t) => t.terminalId), ['t-1']);

      const deadline = Date.now() + 30_000;
      await s.transition('se-1', SessionState.CONNECTED, SessionState.GRACE_PERIOD, 'stream lost', deadline);
      const open = (await s.openSessions()).find((o) => o.sessionId === 'se-1')!;
      assert.equal(open.state, SessionState.GRACE_PERIOD);
      assert.equal(open.deadlineMs, deadline);
      assert.equal(open.name, 'box');
      assert.ok(open.resumeHash.equals(ALL_BYTES));
      await s.transition('se-1', SessionState.GRACE_PERIOD, SessionState.DISCONNECTED, 'grace period over');
      assert.equal((await s.openSessions()).find((o) => o.sessionId === 'se-1'), undefined);
      assert.deepEqual(await s.terminalsOf('se-1'), []);
      const tr = await s.transitions('se-1');
      assert.deepEqual(
        tr.map((t) => [t.from, t.to, t.reason]),
        [
          [SessionState.SESSION_STATE_UNSPECIFIED, SessionState.CONNECTED, 'registered'],
          [SessionState.CONNECTED, SessionState.GRACE_PERIOD, 'stream lost'],
          [SessionState.GRACE_PERIOD, SessionState.DISCONNECTED, 'grace period over'],
        ],
      );
      assert.ok(tr.every((t) => t.sessionId === 'se-1' && typeof t.atMs === 'number'));
    });

    it('SessionsRepo: latestSessions is the newest session of every agent', async () => {
      const s = new SessionsRepo(db);
      await s.upsertAgent('ag-l1', 'l1', caps('l1'));
      await s.upsertAgent('ag-l2', 'l2', caps('l2'));
      await s.createSession('se-l1-old', 'ag-l1', 'l1', Buffer.alloc(32), SessionState.CONNECTED, 'r');
      await new Promise((r) => setTimeout(r, 5));
      await s.createSession('se-l1-new', 'ag-l1', 'l1', Buffer.alloc(32), SessionState.PENDING, 'r');
      await s.createSession('se-l2', 'ag-l2', 'l2', Buffer.alloc(32), SessionState.CONNECTED, 'r');
      const latest = (await s.latestSessions()).filter((r) => r.agentId.startsWith('ag-l')).map((r) => r.sessionId).sort();
      assert.deepEqual(latest, ['se-l1-new', 'se-l2']);
    });

    it('SessionsRepo: createSession is one transaction; a session needs a known agent', async () => {
      const s = new SessionsRepo(db);
      await s.upsertAgent('ag-tx', 'tx', caps('tx'));
      await s.createSession('se-tx', 'ag-tx', 'tx', Buffer.alloc(32), SessionState.CONNECTED, 'r');
      const transitions = await count(db, 'session_transitions');
      // The same id again: the insert fails, and no transition is left behind.
      await assert.rejects(s.createSession('se-tx', 'ag-tx', 'tx', Buffer.alloc(32), SessionState.CONNECTED, 'again'));
      assert.equal(await count(db, 'session_transitions'), transitions);
      // Foreign keys hold on both engines.
      await assert.rejects(s.createSession('se-orphan', 'no-such-agent', 'x', Buffer.alloc(32), SessionState.CONNECTED, 'r'));
      assert.equal(await s.session('se-orphan'), undefined);
      assert.equal(await count(db, 'session_transitions'), transitions);
    });

    it('AuthRepo: users by id and name, listed in byte order; passwords; names are unique', async () => {
      const a = new AuthRepo(db);
      const now = Date.now();
      await a.addUser({ id: 'u-zed', name: 'zed', passwordHash: '', admin: false, createdMs: now });
      await a.addUser({ id: 'u-Al', name: 'Al', passwordHash: 'h1', admin: true, createdMs: now });
      await a.addUser({ id: 'u-al', name: 'al', passwordHash: '', admin: false, createdMs: now });
      assert.deepEqual(await a.user('u-Al'), { id: 'u-Al', name: 'Al', passwordHash: 'h1', admin: true, createdMs: now });
      assert.equal((await a.userByName('zed'))?.id, 'u-zed');
      assert.equal(await a.user('nobody'), undefined);
      assert.equal(await a.userByName('nobody'), undefined);
      assert.deepEqual((await a.users()).map((u) => u.name), ['Al', 'al', 'zed']);
      await a.setPassword('u-zed', 'scrypt$abc');
      assert.equal((await a.user('u-zed'))?.passwordHash, 'scrypt$abc');
      await assert.rejects(a.addUser({ id: 'u-zed2', name: 'zed', passwordHash: '', admin: false, createdMs: now }));
      await a.close();
    });

    it('AuthRepo: tokens by hash and id; touch, revoke, spend (once, even when raced), revoke an agent credential', async () => {
      const a = new AuthRepo(db);
      await a.addUser({ id: 'u-tok', name: 'tok-user', passwordHash: '', admin: false, createdMs: 1 });
      const base = { name: '', userId: 'u-tok', machine: '', terminalId: '', expiresMs: 0 };
      const api: Omit<TokenRow, 'lastUsedMs' | 'revokedMs' | 'usedMs'> = { ...base, id: 'tok-api', kind: TokenKind.API, hash: 'h-api', name: 'ci', createdMs: 10 };
      await a.addToken(api);
      await a.addToken({ ...base, id: 'tok-enr', kind: TokenKind.ENROLLMENT, hash: 'h-enr', machine: 'm1', createdMs: 11 });
      await a.addToken({ ...base, id: 'tok-ag1', kind: TokenKind.AGENT, hash: 'h-ag1', machine: 'm1', createdMs: 12 });
      await a.addToken({ ...base, id: 'tok-ag2', kind: TokenKind.AGENT, hash: 'h-ag2', machine: 'm1', createdMs: 13 });
      await a.addToken({ ...base, id: 'tok-ag3', kind: TokenKind.AGENT, hash: 'h-ag3', machine: 'm2', createdMs: 14 });
      assert.deepEqual(await a.tokenByHash('h-api'), { ...api, lastUsedMs: 0, revokedMs: 0, usedMs: 0 });
      assert.deepEqual(await a.token('tok-api'), await a.tokenByHash('h-api'));
      assert.equal(await a.tokenByHash('h-none'), undefined);
      assert.equal(await a.token('tok-none'), undefined);
      assert.deepEqual(
        (await a.tokens()).filter((t) => t.userId === 'u-tok').map((t) => t.id),
        ['tok-api', 'tok-enr', 'tok-ag1', 'tok-ag2', 'tok-ag3'],
      );
      await assert.rejects(a.addToken({ ...api, id: 'tok-dup' }), 'a hash is unique');

      await a.touchToken('tok-api', 12345);
      assert.equal((await a.token('tok-api'))?.lastUsedMs, 12345);
      assert.equal(await a.revokeToken('tok-api'), true);
      assert.equal(await a.revokeToken('tok-api'), false);
      assert.ok((await a.token('tok-api'))!.revokedMs > 0);

      const spent = await Promise.all([a.spendToken('tok-enr'), a.spendToken('tok-enr'), a.spendToken('tok-enr')]);
      assert.deepEqual(spent.filter(Boolean).length, 1);
      assert.equal(await a.spendToken('tok-enr'), false);

      assert.equal(await a.revokeAgentCredentials('m1'), 2);
      assert.equal(await a.revokeAgentCredentials('m1'), 0);
      assert.equal((await a.token('tok-ag3'))?.revokedMs, 0);
      assert.equal((await a.token('tok-enr'))?.revokedMs, 0, 'only AGENT credentials');
      await a.close();
    });

    it('AuthRepo: machines and grants', async () => {
      const a = new AuthRepo(db);
      await a.addUser({ id: 'u-own', name: 'owner', passwordHash: '', admin: false, createdMs: 1 });
      await a.addUser({ id: 'u-g1', name: 'g1', passwordHash: '', admin: false, createdMs: 1 });
      await a.addUser({ id: 'u-g2', name: 'g2', passwordHash: '', admin: false, createdMs: 1 });
      for (const m of ['web', 'Db', 'api']) await a.addMachine(m, 'u-own');
      assert.equal(await a.machineOwner('web'), 'u-own');
      assert.equal(await a.machineOwner('nope'), undefined);
      assert.deepEqual(await a.machinesOf('u-own'), ['Db', 'api', 'web']);
      assert.deepEqual(await a.machinesOf('u-g1'), []);
      await assert.rejects(a.addMachine('web', 'u-g1'), 'one owner per machine');
      await assert.rejects(a.addMachine('ghost', 'no-such-user'), 'the owner must exist');

      await a.grant({ machine: 'web', userId: 'u-g1', role: AttachMode.OBSERVER, grantedBy: 'u-own', createdMs: 100 });
      await a.grant({ machine: 'web', userId: 'u-g2', role: AttachMode.OPERATOR, grantedBy: 'u-own', createdMs: 50 });
      await a.grant({ machine: 'api', userId: 'u-g1', role: AttachMode.OPERATOR, grantedBy: 'u-own', createdMs: 70 });
      // Granting again replaces the role, the granter and the time.
      await a.grant({ machine: 'web', userId: 'u-g1', role: AttachMode.OPERATOR, grantedBy: 'u-g2', createdMs: 200 });
      assert.deepEqual(await a.grantOf('web', 'u-g1'), { machine: 'web', userId: 'u-g1', role: AttachMode.OPERATOR, grantedBy: 'u-g2', createdMs: 200 });
      assert.equal(await a.grantOf('web', 'u-own'), undefined);
      assert.deepEqual((await a.grantsOn('web')).map((g) => g.userId), ['u-g2', 'u-g1']);
      assert.deepEqual((await a.grantsFor('u-g1')).map((g) => g.machine).sort(), ['api', 'web']);
      assert.equal(await a.deleteGrant('web', 'u-g1'), true);
      assert.equal(await a.deleteGrant('web', 'u-g1'), false);
      assert.deepEqual((await a.grantsOn('web')).map((g) => g.userId), ['u-g2']);
      await a.close();
    });

    it('AuthRepo: atomically commits together, rolls back together, and joins an outer transaction', async () => {
      const a = new AuthRepo(db);
      await a.addUser({ id: 'u-atom', name: 'atom', passwordHash: '', admin: false, createdMs: 1 });
      const enr = { id: 'tok-atom', kind: TokenKind.ENROLLMENT, hash: 'h-atom', name: '', userId: 'u-atom', machine: 'atom-m', terminalId: '', createdMs: 1, expiresMs: 0 };
      await a.addToken(enr);
      await assert.rejects(
        a.atomically(async (tx) => {
          assert.equal(await tx.spendToken('tok-atom'), true);
          await tx.addMachine('atom-m', 'u-atom');
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal((await a.token('tok-atom'))?.usedMs, 0, 'the spend was rolled back');
      assert.equal(await a.machineOwner('atom-m'), undefined);

      // Two enrollments with one token, at once: one wins, the other changes nothing.
      const enroll = (name: string) =>
        a.atomically(async (tx) => {
          if (!(await tx.spendToken('tok-atom'))) throw new Error('already used');
          await tx.atomically(async (inner) => inner.addMachine(name, 'u-atom')); // joins
          await tx.addToken({ ...enr, id: `tok-${name}`, hash: `h-${name}`, kind: TokenKind.AGENT });
          return name;
        });
      const results = await Promise.allSettled([enroll('atom-a'), enroll('atom-b')]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(results));
      const winner = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<string>).value;
      const loser = winner === 'atom-a' ? 'atom-b' : 'atom-a';
      assert.equal(await a.machineOwner(winner), 'u-atom');
      assert.equal(await a.machineOwner(loser), undefined);
      assert.equal(await a.token(`tok-${loser}`), undefined);

      await assert.rejects(
        a.atomically(async (tx) => tx.flushAudit()),
        /inside atomically/,
      );
      await a.close();
    });

    it('AuthRepo: audit rows are batched (nothing written until the interval or the batch size), in order, and read back filtered', async () => {
      await db.kysely.deleteFrom('audit').execute();
      const entry = (i: number, machine = '') => ({
        actor: `a${i}`, action: 'input', machine, terminalId: 't', mode: AttachMode.OPERATOR, commandId: '', ok: i % 2 === 0, detail: `d${i}`, peer: '127.0.0.1',
      });
      const a = new AuthRepo(db, { auditFlushMs: 300 });
      a.audit(entry(0, 'web'));
      a.audit(entry(1, 'api'));
      a.audit(entry(2));
      assert.equal(await count(db, 'audit'), 0, 'queued, not written');
      await eventually(async () => (await count(db, 'audit')) === 3); // the timer
      const all = await a.auditEntries({ limit: 100 });
      assert.deepEqual(all.map((e) => [e.actor, e.machine, e.ok, e.detail]), [['a0', 'web', true, 'd0'], ['a1', 'api', false, 'd1'], ['a2', '', true, 'd2']]);
      assert.ok(all.every((e) => typeof e.id === 'number' && typeof e.atMs === 'number' && e.mode === AttachMode.OPERATOR && e.peer === '127.0.0.1'));
      assert.deepEqual((await a.auditEntries({ machine: 'web', limit: 100 })).map((e) => e.actor), ['a0']);
      assert.deepEqual((await a.auditEntries({ machines: ['web', 'api'], limit: 100 })).map((e) => e.actor), ['a0', 'a1']);
      assert.deepEqual((await a.auditEntries({ machines: [], limit: 100 })).map((e) => e.actor), ['a2'], "no machines: rows about no machine, as before");
      assert.deepEqual((await a.auditEntries({ limit: 2 })).map((e) => e.actor), ['a1', 'a2'], 'the newest, oldest first');
      assert.deepEqual((await a.auditEntries({ sinceMs: all[0].atMs + 10_000_000, limit: 100 })), []);

      // A long interval: the batch size alone sends them, in queue order, batch after batch.
      const b = new AuthRepo(db, { auditFlushMs: 3_600_000, auditMaxBatch: 100 });
      for (let i = 3; i < 1003; i++) b.audit(entry(i));
      await eventually(async () => (await count(db, 'audit')) === 1003);
      b.audit(entry(1003));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(await count(db, 'audit'), 1003, 'one row waits for the interval');
      await b.close();
      assert.equal(await count(db, 'audit'), 1004, 'close writes it');
      const rows = await a.auditEntries({ limit: 10_000 });
      assert.deepEqual(rows.map((e) => e.actor), Array.from({ length: 1004 }, (_, i) => `a${i}`));
      await a.close();
    });

    it('OAuthModelsRepo and the oidc-provider adapter: hashed bearer values, find by user code and uid, consume, expiry, sweep', async () => {
      const repo = new OAuthModelsRepo(db);
      const store = createOidcAdapter(repo, { sweepIntervalMs: 3_600_000 });
      try {
        const at = store.factory('AccessToken');
        await at.upsert('at-value', { jti: 'at-value', kind: 'AccessToken', grantId: 'g-1', accountId: 'acc-1' }, 3600);
        assert.deepEqual(await at.find('at-value'), { jti: 'at-value', kind: 'AccessToken', grantId: 'g-1', accountId: 'acc-1' });
        const raw = await db.kysely.selectFrom('oauth_models').selectAll().where('model', '=', 'AccessToken').execute();
        assert.equal(raw.length, 1);
        assert.notEqual(raw[0].id, 'at-value', 'stored by hash');
        assert.ok(!raw[0].payload.includes('at-value'), 'the value is not in the payload');
        assert.equal(typeof raw[0].expires_at, 'number');

        await at.consume('at-value');
        const consumed = (await at.find('at-value'))!.consumed;
        assert.equal(typeof consumed, 'number');
        // A stale copy saved after consume() does not un-consume it; a second consume keeps the first time.
        await at.upsert('at-value', { jti: 'at-value', kind: 'AccessToken', grantId: 'g-1', accountId: 'acc-1' }, 3600);
        await new Promise((r) => setTimeout(r, 1100));
        await at.consume('at-value');
        assert.equal((await at.find('at-value'))!.consumed, consumed);
        await at.destroy('at-value');
        assert.equal(await at.find('at-value'), undefined);

        const dc = store.factory('DeviceCode');
        await dc.upsert('dc-1', { jti: 'dc-1', kind: 'DeviceCode', userCode: 'ABCD-EFGH', grantId: 'g-1' }, 600);
        assert.equal((await dc.findByUserCode('ABCD-EFGH'))?.jti, 'dc-1');
        assert.equal(await dc.findByUserCode('ZZZZ-ZZZZ'), undefined);
        const ia = store.factory('Interaction');
        await ia.upsert('ia-1', { jti: 'ia-1', kind: 'Interaction', uid: 'uid-1' }, 600);
        assert.equal((await ia.findByUid('uid-1'))?.jti, 'ia-1');

        // Past its lifetime (and a device code past its retention too): absent, then swept.
        await dc.upsert('dc-old', { jti: 'dc-old', kind: 'DeviceCode', userCode: 'OLD' }, -DEVICE_CODE_RETENTION_S - 5);
        await ia.upsert('ia-old', { jti: 'ia-old', kind: 'Interaction', uid: 'uid-old' }, -5);
        assert.equal(await dc.find('dc-old'), undefined);
        assert.equal(await dc.findByUserCode('OLD'), undefined);
        assert.equal(await ia.findByUid('uid-old'), undefined);
        // Just expired, but within the retention: still found (oidc-provider answers expired_token from its exp).
        await dc.upsert('dc-recent', { jti: 'dc-recent', kind: 'DeviceCode', userCode: 'RECENT' }, -5);
        assert.equal((await dc.find('dc-recent'))?.jti, 'dc-recent');
        assert.equal(await store.sweep(), 2);
        assert.equal(await store.sweep(), 0);

        // revokeByGrantId: every model issued under the grant.
        const rt = store.factory('RefreshToken');
        await rt.upsert('rt-1', { jti: 'rt-1', kind: 'RefreshToken', grantId: 'g-1' }, 3600);
        await rt.revokeByGrantId('g-1');
        assert.equal(await rt.find('rt-1'), undefined);
        assert.equal(await dc.find('dc-1'), undefined);
        assert.equal((await ia.findByUid('uid-1'))?.jti, 'ia-1', 'not under the grant');
      } finally {
        store.close();
      }
    });

    it('OAuthModelsRepo: revokeAccount removes an account\'s grants, what was issued under them, its sessions and interactions', async () => {
      await db.kysely.deleteFrom('oauth_models').execute();
      const store = createOidcAdapter(new OAuthModelsRepo(db), { sweepIntervalMs: 3_600_000 });
      try {
        const put = (model: string, id: string, payload: Record<string, unknown>) =>
          store.factory(model).upsert(id, { jti: id, kind: model, ...payload } as AdapterPayload, 3600);
        await put('Grant', 'gr-1', { accountId: 'alice', clientId: 'cli' });
        await put('AccessToken', 'at-1', { grantId: 'gr-1', accountId: 'alice' });
        await put('RefreshToken', 'rt-1', { grantId: 'gr-1', accountId: 'alice' });
        await put('Session', 'se-1', { accountId: 'alice' });
        await put('Interaction', 'ia-1', { uid: 'u1', result: { login: { accountId: 'alice' } } });
        await put('Interaction', 'ia-2', { uid: 'u2', session: { accountId: 'alice' } });
        await put('Grant', 'gr-2', { accountId: 'bob', clientId: 'cli' });
        await put('AccessToken', 'at-2', { grantId: 'gr-2', accountId: 'bob' });
        await put('Session', 'se-2', { accountId: 'bob' });
        await put('Interaction', 'ia-3', { uid: 'u3' });
        assert.equal(await store.revokeAccount('alice'), 6);
        assert.equal(await count(db, 'oauth_models'), 4);
        assert.equal((await store.factory('AccessToken').find('at-2'))?.accountId, 'bob');
        assert.equal(await store.revokeAccount('alice'), 0);
      } finally {
        store.close();
      }
    });

    it('SigningKeysRepo: replicas starting together get the same keys; given keys are carried over; a damaged row is refused', async () => {
      const other = await openDb(target);
      try {
        const [k1, k2] = await Promise.all([new SigningKeysRepo(db).loadOrCreate(), new SigningKeysRepo(other).loadOrCreate()]);
        assert.deepEqual(k1, k2);
        assert.equal(k1.jwks.keys.length, 1);
        assert.deepEqual(await new SigningKeysRepo(db).loadOrCreate(() => assert.fail('not asked: keys exist')), k1);

        await db.kysely.deleteFrom('oauth_keys').execute();
        const fromFile = generateOAuthKeys();
        assert.deepEqual(await new SigningKeysRepo(db).loadOrCreate(() => fromFile), { jwks: fromFile.jwks, cookieKeys: fromFile.cookieKeys });

        await db.kysely.updateTable('oauth_keys').set({ keys: '{"version":1}' }).execute();
        await assert.rejects(new SigningKeysRepo(other).loadOrCreate(), /not a valid CMDOP OAuth key record/);
      } finally {
        await other.close();
      }
    });

    it(`createRateLimiter: ${engine === 'postgres' ? 'one count shared by every replica (RateLimiterPostgres)' : 'in memory, per process (RateLimiterMemory)'}`, async () => {
      const other = await openDb(target);
      try {
        const limit = { keyPrefix: 'login', points: 3, durationS: 60 };
        const r1 = createRateLimiter(db, limit);
        const r2 = createRateLimiter(other, limit);
        assert.ok(engine === 'postgres' ? r1 instanceof RateLimiterPostgres : r1 instanceof RateLimiterMemory);
        await r1.consume('10.0.0.1');
        await r1.consume('10.0.0.1');
        await r2.consume('10.0.0.1');
        const fourth = r2.consume('10.0.0.1');
        if (engine === 'postgres') {
          const rej = await fourth.then(() => assert.fail('a fourth attempt across replicas must be refused'), (e: unknown) => e);
          assert.ok(rej instanceof RateLimiterRes, String(rej));
          assert.ok(rej.msBeforeNext > 0 && rej.msBeforeNext <= 60_000);
          await r1.consume('10.0.0.2'); // another address has its own count
        } else {
          await fourth; // r2 counted only its own two
          await assert.rejects(r1.consume('10.0.0.1').then(() => r1.consume('10.0.0.1')), (e) => e instanceof RateLimiterRes);
        }
      } finally {
        await other.close();
      }
    });

    it('timestamps round-trip as numbers, beyond 32 bits, up to 2^53 - 1', async () => {
      const a = new AuthRepo(db);
      await a.addUser({ id: 'u-time', name: 'time', passwordHash: '', admin: false, createdMs: 4_102_444_800_000 }); // 2100-01-01
      await a.addToken({
        id: 'tok-time', kind: TokenKind.API, hash: 'h-time', name: '', userId: 'u-time', machine: '', terminalId: '',
        createdMs: 4_102_444_800_001, expiresMs: Number.MAX_SAFE_INTEGER,
      });
      await a.touchToken('tok-time', 2 ** 40 + 1);
      const t = (await a.tokenByHash('h-time'))!;
      assert.deepEqual([t.createdMs, t.expiresMs, t.lastUsedMs], [4_102_444_800_001, Number.MAX_SAFE_INTEGER, 2 ** 40 + 1]);
      assert.ok([t.createdMs, t.expiresMs, t.lastUsedMs, t.kind].every((n) => typeof n === 'number'));
      assert.equal((await a.user('u-time'))?.createdMs, 4_102_444_800_000);
      if (engine === 'postgres') {
        // Beyond a JavaScript number: an error, never a rounded value.
        await sql`update tokens set last_used_ms = 9223372036854775807 where id = 'tok-time'`.execute(db.kysely);
        await assert.rejects(a.tokenByHash('h-time'), /does not fit a JavaScript number/);
        await a.touchToken('tok-time', 1);
      }
      await a.close();
    });

    it('bytes round-trip exactly: all 256 byte values, and protobuf terminal specs', async () => {
      const s = new SessionsRepo(db);
      await s.upsertAgent('ag-bytes', 'bytes', caps('bytes'));
      await s.createSession('se-bytes', 'ag-bytes', 'bytes', ALL_BYTES, SessionState.CONNECTED, 'r');
      const back = (await s.openSessions()).find((o) => o.sessionId === 'se-bytes')!.resumeHash;
      assert.ok(Buffer.isBuffer(back));
      assert.equal(back.length, 256);
      assert.ok(back.equals(ALL_BYTES));
      const tspec = TerminalSpec.fromPartial({ ...spec('bytes'), env: { BIN: String.fromCharCode(...Array.from({ length: 255 }, (_, i) => i + 1)) } });
      await s.putTerminal({ sessionId: 'se-bytes', terminalId: 't', spec: tspec, createdMs: 1, cols: 1, rows: 1, operators: 0 });
      assert.deepEqual((await s.terminalsOf('se-bytes'))[0].spec, tspec);
      const raw = await db.kysely.selectFrom('terminals').select('spec').where('session_id', '=', 'se-bytes').executeTakeFirstOrThrow();
      assert.ok(raw.spec.equals(Buffer.from(TerminalSpec.encode(tspec).finish())));
    });
  });
}

describe('a store file written by the release before this layer', () => {
  it('is adopted in place: every row that release wrote reads back the same (test/fixtures/release-0.1.sqlite)', async () => {
    // The file and what that release's own code read back from it were made
    // once with that code (test/fixtures/makeReleaseStore.ts, in history).
    const fixtures = path.join(__dirname, '..', '..', 'test', 'fixtures');
    const dir = newDir();
    const file = path.join(dir, 'cmdop.sqlite');
    fs.copyFileSync(path.join(fixtures, 'release-0.1.sqlite'), file);
    fs.chmodSync(file, 0o600);
    const expected = JSON.parse(fs.readFileSync(path.join(fixtures, 'release-0.1.expected.json'), 'utf8'), (_k, v) =>
      v && typeof v === 'object' && typeof v.buffer === 'string' && Object.keys(v).length === 1 ? Buffer.from(v.buffer, 'base64') : v,
    );
    assert.equal(expected.userVersion, 1);
    assert.equal(expected.tokens.length, 4); // admin.token, ci, enrollment, agent
    // Fields the proto gained since that release (protocol_version, uptime_ms) read back at their defaults.
    for (const a of expected.agents) a.capabilities = Capabilities.fromPartial(a.capabilities);
    assert.equal(expected.open.length, 1);
    const db = await openDb({ sqliteFile: file }, { migrate: false });
    try {
      assert.deepEqual(await db.migrate(), { applied: ALL_MIGRATIONS }, 'the baseline is recorded, then the rest applied');
      assert.equal((fs.statSync(file).mode & 0o777).toString(8), '600');
      const s = new SessionsRepo(db);
      const a = new AuthRepo(db);
      assert.deepEqual(await s.agents(), expected.agents);
      // Rows from before replicas are held by nobody, at epoch 0 (a replica starting up takes them over).
      assert.deepEqual(await s.openSessions(), expected.open.map((o: object) => ({ ...o, owner: '', epoch: 0 })));
      assert.deepEqual(await s.latestSessions(), expected.latest);
      assert.deepEqual(await Promise.all(['sess-0', 'sess-1'].map((id) => s.session(id))), expected.sessions);
      assert.deepEqual(await Promise.all(['sess-0', 'sess-1'].map((id) => s.transitions(id))), expected.transitions);
      const terminals = (await s.terminalsOf('sess-1')).map((t) => ({ ...t, spec: Buffer.from(TerminalSpec.encode(t.spec).finish()) }));
      assert.deepEqual(terminals, expected.terminals);
      assert.deepEqual(await a.users(), expected.users);
      assert.deepEqual(tiesById(await a.tokens()), tiesById(expected.tokens));
      for (const t of expected.tokens) assert.deepEqual(await a.tokenByHash(t.hash), t);
      assert.deepEqual(await a.machinesOf('u-alice'), expected.machines);
      assert.deepEqual(await a.grantsOn('box'), expected.grantsOn);
      assert.deepEqual(await a.grantsFor('u-admin'), expected.grantsFor);
      assert.deepEqual(await a.auditEntries({ limit: 10_000 }), expected.audit);
      const oauthRows = await db.kysely.selectFrom('oauth_models').selectAll().orderBy('model').orderBy('id').execute();
      assert.deepEqual(oauthRows, expected.oauthRows);
      const adapter = createOidcAdapter(new OAuthModelsRepo(db));
      assert.equal((await adapter.factory('AccessToken').find('at-secret'))?.grantId, 'gr-1', 'a token issued before is still valid');
      assert.equal((await adapter.factory('DeviceCode').findByUserCode('WXYZ-ABCD'))?.jti, 'dc-1');
      adapter.close();
      // New rows go on from the old ones.
      a.audit({ actor: 'alice', action: 'close', machine: 'box', terminalId: 't-1', mode: 0, commandId: '', ok: true, detail: '', peer: '' });
      const later = await a.auditEntries({ limit: 10_000 });
      assert.equal(later.at(-1)!.id, expected.audit.at(-1)!.id + 1);
      await a.close();
    } finally {
      await db.close();
    }
    // And the control plane itself starts on it: the session left in its grace period (long past) is ended, saying why.
    const cp = await startControlPlane({ listen: '127.0.0.1:0', dataDir: dir, logger: createLogger('control-plane', 'silent') });
    try {
      const box = (await cp.registry.listMachines()).find((m) => m.name === 'box');
      assert.equal(box?.state, SessionState.DISCONNECTED);
      const s1 = await cp.sessions.session('sess-1');
      assert.equal(s1?.state, SessionState.DISCONNECTED);
      assert.match(s1!.reason, /grace period ran out while the control plane was not running/);
    } finally {
      await cp.close();
    }
  });

  it('one from the first release (user_version 0, sessions without name/resume_hash/deadline_ms) gains the columns, rows kept', async () => {
    const file = path.join(newDir(), 'cmdop.sqlite');
    const raw = new BetterSqlite3(file);
    raw.exec(`
      CREATE TABLE agents (agent_id TEXT PRIMARY KEY, name TEXT NOT NULL, capabilities TEXT NOT NULL, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL);
      CREATE TABLE sessions (session_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL REFERENCES agents(agent_id), state INTEGER NOT NULL, reason TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
      CREATE TABLE session_transitions (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, from_state INTEGER NOT NULL, to_state INTEGER NOT NULL, reason TEXT NOT NULL, at_ms INTEGER NOT NULL);
      INSERT INTO agents VALUES ('ag', 'old-box', '{"os":"linux"}', 1, 2);
      INSERT INTO sessions VALUES ('se', 'ag', ${SessionState.BACKGROUND}, 'from the first release', 3, 4);
    `);
    raw.close();
    const db = await openDb({ sqliteFile: file });
    try {
      const open = await new SessionsRepo(db).openSessions();
      assert.deepEqual(open, [
        { sessionId: 'se', agentId: 'ag', state: SessionState.BACKGROUND, reason: 'from the first release', createdMs: 3, updatedMs: 4, name: '', resumeHash: Buffer.alloc(0), deadlineMs: 0, owner: '', epoch: 0 },
      ]);
      assert.equal((await sql<{ user_version: number }>`pragma user_version`.execute(db.kysely)).rows[0].user_version, 1);
      await new SessionsRepo(db).putTerminal({ sessionId: 'se', terminalId: 't', spec: spec('x'), createdMs: 5, cols: 1, rows: 1, operators: 0 });
    } finally {
      await db.close();
    }
  });

  it('openDb takes a postgres:// URL or { sqliteFile } and nothing else', async () => {
    await assert.rejects(openDb('mysql://x@y/z'), /must be a postgres:\/\/ URL/);
    await assert.rejects(openDb('/var/lib/cmdop/cmdop.sqlite'), /must be a postgres:\/\/ URL/);
  });
});
