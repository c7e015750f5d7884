// The SDK's connect(): what an SDK user writes to reach a default
// `cmdop server --tls` (a self-signed certificate) on this machine. Only
// the SDK's public entry point (sdk/index.ts) is used: the certificate is
// pinned on first use and the caller is told the fingerprint (the same the
// server printed), the local admin.token is found on loopback, nothing is
// written to stderr by the SDK itself, and a pin that no longer matches is
// refused with PinMismatchError.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Logins, PinMismatchError, connect, type CmdopClient } from '../sdk';
import { CLI, cliEnv, tempDir, track, waitForLine } from './helpers/cluster';

describe('sdk connect(): a default `cmdop server --tls` in one call', () => {
  const dir = tempDir('cmdop-sdkconnect-');
  const dataDir = path.join(dir, 'cp');
  const knownServersFile = path.join(dir, 'config', 'known_servers.json');
  // A login store of the test's own, so the user's real sign-ins are never read.
  const logins = new Logins(path.join(dir, 'config', 'logins.json'));
  let server: ChildProcess;
  let address: string;
  let fingerprint: string;
  const saved = { token: process.env.CMDOP_TOKEN, fp: process.env.CMDOP_TLS_FINGERPRINT };

  before(async () => {
    delete process.env.CMDOP_TOKEN;
    delete process.env.CMDOP_TLS_FINGERPRINT;
    server = track(
      spawn(process.execPath, [CLI, 'server', '--tls', '--listen', '127.0.0.1:0', '--web-listen', '127.0.0.1:0', '--data-dir', dataDir], {
        env: cliEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    [, address, fingerprint] = await waitForLine(server, /listening on (\S+)[\s\S]*TLS certificate SHA256 (\S+)/);
  });
  after(async () => {
    if (saved.token !== undefined) process.env.CMDOP_TOKEN = saved.token;
    if (saved.fp !== undefined) process.env.CMDOP_TLS_FINGERPRINT = saved.fp;
    server.kill('SIGTERM');
    await new Promise((r) => (server.exitCode !== null ? r(null) : server.once('exit', r)));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** connect() with stderr watched: the SDK must leave telling the user to its callbacks. */
  async function quietly<T>(fn: () => Promise<T>): Promise<T> {
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string | Uint8Array) => (written.push(String(chunk)), true)) as typeof process.stderr.write;
    try {
      return await fn();
    } finally {
      process.stderr.write = write;
      assert.deepEqual(written, [], 'the SDK wrote to stderr');
    }
  }

  it('pins the certificate on first use, tells the caller its fingerprint, and signs in with the local admin.token', async () => {
    assert.match(address, /^grpcs:\/\/127\.0\.0\.1:\d+$/);
    const firstUse: [string, string][] = [];
    const client: CmdopClient = await quietly(() =>
      connect({ server: address, knownServersFile, dataDir, logins, onFirstUse: (s, fp) => firstUse.push([s, fp]) }),
    );
    try {
      assert.deepEqual(firstUse, [[address, fingerprint]], 'told once, with the fingerprint the server printed');
      const me = await client.auth.whoami();
      assert.equal(me.admin, true);
      assert.deepEqual(await client.machines.list(), []);
      const pins = JSON.parse(fs.readFileSync(knownServersFile, 'utf8')).servers;
      assert.equal(pins[address.replace('grpcs://', '')].fingerprint, fingerprint);
    } finally {
      client.close();
    }

    // Pinned now: a second connect is silent and works.
    const again = await quietly(() => connect({ server: address, knownServersFile, dataDir, logins, onFirstUse: (s, fp) => firstUse.push([s, fp]) }));
    try {
      assert.equal((await again.auth.whoami()).admin, true);
      assert.equal(firstUse.length, 1);
    } finally {
      again.close();
    }
  });

  it('a pin that no longer matches is refused with PinMismatchError, and so is a wrong expected fingerprint', async () => {
    const other = fingerprint.split(':').reverse().join(':');
    assert.notEqual(other, fingerprint);
    // The pin store says this address had another certificate.
    const known = JSON.parse(fs.readFileSync(knownServersFile, 'utf8'));
    known.servers[address.replace('grpcs://', '')].fingerprint = other;
    fs.writeFileSync(knownServersFile, JSON.stringify(known));
    const firstUse: string[] = [];
    await assert.rejects(
      quietly(() => connect({ server: address, knownServersFile, dataDir, logins, onFirstUse: (_s, fp) => firstUse.push(fp) })),
      (e: unknown) => {
        assert.ok(e instanceof PinMismatchError, String(e));
        assert.equal(e.expected, other);
        assert.equal(e.actual, fingerprint);
        assert.match(e.message, /HAS CHANGED/);
        return true;
      },
    );
    assert.deepEqual(firstUse, []);
    const still = JSON.parse(fs.readFileSync(knownServersFile, 'utf8'));
    assert.equal(still.servers[address.replace('grpcs://', '')].fingerprint, other, 'a mismatch does not overwrite the pin');

    // With no pin at all, an expected fingerprint that differs is refused too.
    const fresh = path.join(dir, 'other-config', 'known_servers.json');
    await assert.rejects(
      connect({ server: address, knownServersFile: fresh, dataDir, logins, fingerprint: other }),
      (e: unknown) => e instanceof PinMismatchError && e.actual === fingerprint,
    );
  });
});
