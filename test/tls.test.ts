/**
 * lib/tls/ and sdk/trust/ against real sockets: a grpc-js server with the generated
 * certificate, plaintext servers, an HTTPS server, and the pin store on disk.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { grpcChannelCredentials, grpcChannelOptions, httpsAgent, type Trust } from '../lib/tls/channelCredentials';
import { fingerprintOf, normalizeFingerprint } from '../lib/tls/fingerprint';
import { ensureSelfSignedCert, loadCertFiles, serverCredentials, type CertMaterial } from '../lib/tls/serverCertificate';
import { PinMismatchError, probeServerCertificate, resolveTrust } from '../sdk/trust/firstUse';
import { KnownServers, serverAddress } from '../sdk/trust/knownServers';
import { ListTrust, listChannelCredentials } from '../sdk/trust/replicaTrust';
import { LIST_CHANNEL_OPTIONS, registerListResolver } from '../lib/listResolver';
import { parseServerList } from '../lib/serverAddress';

const FP_RE = /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/;

const tmpDirs: string[] = [];
function tmpdir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-tls-'));
  tmpDirs.push(d);
  return d;
}
// grpc-js puts an IP target into SNI unless grpcChannelOptions overrides it,
// and Node then prints DEP0123 to stderr; collected to prove the options work.
const deprecations: string[] = [];
process.on('warning', (w: Error & { code?: string }) => {
  if (w.code === 'DEP0123') deprecations.push(w.stack ?? w.message);
});

after(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

// Two certificates generated once and shared: generation is cheap (EC) but
// there is no need to repeat it in every test.
let certA: CertMaterial;
let certB: CertMaterial;
async function certs(): Promise<{ a: CertMaterial; b: CertMaterial }> {
  certA ??= await ensureSelfSignedCert(tmpdir());
  certB ??= await ensureSelfSignedCert(tmpdir());
  return { a: certA, b: certB };
}

// --- a tiny gRPC service with Buffer pass-through serializers -------------

const passthrough = (b: Buffer) => b;
const pingService: grpc.ServiceDefinition = {
  ping: {
    path: '/cmdop.test.Ping/Ping',
    requestStream: false,
    responseStream: false,
    requestSerialize: passthrough,
    requestDeserialize: passthrough,
    responseSerialize: passthrough,
    responseDeserialize: passthrough,
  },
};
const PingClient = grpc.makeGenericClientConstructor(pingService, 'Ping');

interface Running {
  port: number;
  stop(): void;
}

async function startGrpc(creds: grpc.ServerCredentials, port = 0, host = '127.0.0.1'): Promise<Running> {
  const server = new grpc.Server();
  server.addService(pingService, {
    ping: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
      cb(null, Buffer.concat([Buffer.from('pong:'), call.request])),
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port: bound, stop: () => server.forceShutdown() };
}

/** One unary call with the trust's credentials and options; resolves with the reply text or rejects with the gRPC error. */
async function ping(target: string, trust: Trust, extraOptions: grpc.ChannelOptions = {}): Promise<string> {
  const host = target.slice(0, target.lastIndexOf(':'));
  const options = { ...grpcChannelOptions(trust, host), ...extraOptions };
  const client = new PingClient(target, grpcChannelCredentials(trust), options);
  try {
    return await new Promise<string>((resolve, reject) =>
      (client as unknown as { ping: Function }).ping(
        Buffer.from('hi'),
        { deadline: Date.now() + 5000 },
        (err: grpc.ServiceError | null, res?: Buffer) => (err ? reject(err) : resolve(res!.toString())),
      ),
    );
  } finally {
    client.close();
  }
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

// --- certificate generation and loading ------------------------------------

describe('ensureSelfSignedCert', () => {
  test('generates a private key and certificate once, then reuses them', async () => {
    const dir = tmpdir();
    const first = await ensureSelfSignedCert(dir, ['cp.example.com', '10.1.2.3']);
    assert.equal(first.generated, true);
    const certPath = path.join(dir, 'tls', 'cert.pem');
    const keyPath = path.join(dir, 'tls', 'key.pem');
    assert.equal(fs.statSync(keyPath).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(dir, 'tls')).mode & 0o777, 0o700);
    assert.equal(fs.readFileSync(certPath, 'utf8'), first.certPem);
    assert.equal(fs.readFileSync(keyPath, 'utf8'), first.keyPem);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'tls')).sort(), ['cert.pem', 'key.pem'], 'no temp files left');

    const x = new crypto.X509Certificate(first.certPem);
    assert.match(first.fingerprint, FP_RE);
    assert.equal(first.fingerprint, x.fingerprint256);
    assert.equal(first.fingerprint, crypto.createHash('sha256').update(x.raw).digest('hex').toUpperCase().match(/../g)!.join(':'));
    assert.ok(x.checkPrivateKey(crypto.createPrivateKey(first.keyPem)));
    assert.equal(crypto.createPrivateKey(first.keyPem).asymmetricKeyType, 'ec');
    const sans = x.subjectAltName!.split(', ');
    for (const want of [
      'DNS:localhost',
      'IP Address:127.0.0.1',
      'IP Address:0:0:0:0:0:0:0:1',
      `DNS:${os.hostname()}`,
      'DNS:cp.example.com',
      'IP Address:10.1.2.3',
    ]) {
      assert.ok(sans.includes(want), `SAN ${want} missing from ${x.subjectAltName}`);
    }
    const years = (Date.parse(x.validTo) - Date.now()) / (365.25 * 24 * 3600 * 1000);
    assert.ok(years > 9.9 && years < 10.1, `valid for ${years} years`);
    assert.ok(Date.parse(x.validFrom) < Date.now() - 3600 * 1000, 'backdated against clock skew');

    const second = await ensureSelfSignedCert(dir, ['other.example.com']);
    assert.equal(second.generated, false);
    assert.equal(second.fingerprint, first.fingerprint);
    assert.equal(second.certPem, first.certPem);
    assert.equal(second.keyPem, first.keyPem);
  });

  test('refuses a half pair instead of silently replacing the certificate', async () => {
    const dir = tmpdir();
    await ensureSelfSignedCert(dir);
    const keyPath = path.join(dir, 'tls', 'key.pem');
    fs.rmSync(keyPath);
    await assert.rejects(ensureSelfSignedCert(dir), (e: Error) => {
      assert.ok(e.message.includes(keyPath), e.message);
      assert.match(e.message, /incomplete/);
      return true;
    });
  });
});

describe('loadCertFiles', () => {
  test('loads a valid pair', async () => {
    const dir = tmpdir();
    const made = await ensureSelfSignedCert(dir);
    const loaded = loadCertFiles(path.join(dir, 'tls', 'cert.pem'), path.join(dir, 'tls', 'key.pem'));
    assert.deepEqual(loaded, { ...made, generated: false });
  });

  test('names the file that is missing, not PEM, or does not match', async () => {
    const { a, b } = await certs();
    const dir = tmpdir();
    const certPath = path.join(dir, 'cert.pem');
    const keyPath = path.join(dir, 'key.pem');
    const otherKey = path.join(dir, 'other-key.pem');
    const junk = path.join(dir, 'junk.pem');
    fs.writeFileSync(certPath, a.certPem);
    fs.writeFileSync(keyPath, a.keyPem);
    fs.writeFileSync(otherKey, b.keyPem);
    fs.writeFileSync(junk, 'hello\n');
    const missing = path.join(dir, 'nope.pem');

    assert.throws(() => loadCertFiles(missing, keyPath), (e: Error) => e.message.includes(missing) && /does not exist/.test(e.message));
    assert.throws(() => loadCertFiles(certPath, missing), (e: Error) => e.message.includes(missing) && /private key/.test(e.message));
    assert.throws(() => loadCertFiles(junk, keyPath), (e: Error) => e.message.includes(junk) && /not PEM/.test(e.message));
    assert.throws(
      () => loadCertFiles(certPath, otherKey),
      (e: Error) => e.message.includes(otherKey) && e.message.includes(certPath) && /does not match/.test(e.message),
    );
    // A key where the certificate should be (and vice versa) is reported too.
    assert.throws(() => loadCertFiles(keyPath, keyPath), (e: Error) => e.message.includes(keyPath) && /not a valid PEM certificate/.test(e.message));
    assert.throws(() => loadCertFiles(certPath, certPath), (e: Error) => e.message.includes(certPath) && /not a valid/.test(e.message));
    assert.equal(loadCertFiles(certPath, keyPath).fingerprint, a.fingerprint);
  });
});

// --- fingerprints and the pin store ------------------------------------------

test('normalizeFingerprint accepts the usual spellings and rejects truncated ones', async () => {
  const { a } = await certs();
  const bare = a.fingerprint.replace(/:/g, '');
  for (const s of [a.fingerprint, bare, bare.toLowerCase(), `SHA256:${bare}`, `sha256:${a.fingerprint.toLowerCase()}`, `sha256 Fingerprint=${a.fingerprint}`, ` ${a.fingerprint}\n`]) {
    assert.equal(normalizeFingerprint(s), a.fingerprint, s);
  }
  assert.throws(() => normalizeFingerprint(bare.slice(2)), /not a SHA-256 certificate fingerprint/);
  assert.throws(() => normalizeFingerprint(bare.slice(0, -1) + 'G'), /not a SHA-256/);
  assert.throws(() => normalizeFingerprint(''), /not a SHA-256/);
});

test('serverAddress brackets IPv6 and lowercases names', () => {
  assert.equal(serverAddress('LocalHost', 7420), 'localhost:7420');
  assert.equal(serverAddress('::1', 7420), '[::1]:7420');
  assert.equal(serverAddress('[::1]', 7420), '[::1]:7420');
  assert.equal(serverAddress('10.0.0.1', 1), '10.0.0.1:1');
});

describe('KnownServers', () => {
  test('pins, reads back, lists and forgets; the file is private and written whole', async () => {
    const { a, b } = await certs();
    const file = path.join(tmpdir(), 'config', 'cmdop', 'known_servers.json');
    const ks = new KnownServers(file);
    assert.equal(ks.get('localhost:7420'), undefined);
    assert.deepEqual(ks.list(), []);
    assert.equal(fs.existsSync(file), false, 'reading does not create the file');

    ks.pin('LOCALHOST:7420', a.fingerprint.replace(/:/g, '').toLowerCase());
    ks.pin('[::1]:7420', b.fingerprint);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['known_servers.json'], 'no temp files left');

    // A second instance (another process) sees the pins, normalized.
    const again = new KnownServers(file);
    assert.equal(again.get('localhost:7420'), a.fingerprint);
    assert.equal(again.get('[::1]:7420'), b.fingerprint);
    assert.equal(again.get('localhost:7421'), undefined);
    assert.deepEqual(
      again.list().map((k) => [k.address, k.fingerprint]),
      [
        ['[::1]:7420', b.fingerprint],
        ['localhost:7420', a.fingerprint],
      ],
    );
    assert.ok(!Number.isNaN(Date.parse(again.list()[0].pinnedAt)));

    assert.equal(again.forget('localhost:7420'), true);
    assert.equal(again.forget('localhost:7420'), false);
    assert.equal(ks.get('localhost:7420'), undefined);
    assert.equal(ks.get('[::1]:7420'), b.fingerprint);
    assert.throws(() => ks.pin('x:1', 'not-a-fingerprint'), /not a SHA-256/);
  });

  test('a corrupt file is a clear error naming the file', () => {
    const dir = tmpdir();
    const file = path.join(dir, 'known_servers.json');
    fs.writeFileSync(file, '{"servers": {"a:1": ');
    const ks = new KnownServers(file);
    assert.throws(() => ks.get('a:1'), (e: Error) => e.message.includes(file) && /corrupt/.test(e.message) && /not JSON/.test(e.message));
    assert.throws(() => ks.pin('a:1', 'AA'.repeat(32)), (e: Error) => e.message.includes(file));
    fs.writeFileSync(file, '{"servers": {"a:1": {"fingerprint": "12:34"}}}');
    assert.throws(() => ks.list(), (e: Error) => e.message.includes(file) && /malformed fingerprint/.test(e.message));
    fs.writeFileSync(file, '[]');
    assert.throws(() => ks.list(), (e: Error) => e.message.includes(file) && /corrupt/.test(e.message));
    assert.equal(fs.readFileSync(file, 'utf8'), '[]', 'a corrupt file is never overwritten');
  });
});

// --- probing -----------------------------------------------------------------

describe('probeServerCertificate', () => {
  test('reads the certificate of a TLS server', async () => {
    const { a } = await certs();
    const server = tls.createServer({ cert: a.certPem, key: a.keyPem }, (s) => s.end());
    const port = await listen(server);
    try {
      const p = await probeServerCertificate('127.0.0.1', port);
      assert.equal(p.fingerprint, a.fingerprint);
      assert.equal(fingerprintOf(p.pem), a.fingerprint);
      assert.equal(p.authorized, false, 'a self-signed certificate is not CA-valid');
      assert.match(p.authorizationError ?? '', /SELF_SIGNED|self-signed|self signed/i);
    } finally {
      server.close();
    }
  });

  test('a plaintext server that talks first: "does not speak TLS"', async () => {
    const server = net.createServer((s) => s.end('SSH-2.0-OpenSSH_9.2\r\n'));
    const port = await listen(server);
    try {
      await assert.rejects(probeServerCertificate('127.0.0.1', port), (e: Error) => {
        assert.ok(e.message.includes(`127.0.0.1:${port}`), e.message);
        assert.match(e.message, /does not speak TLS/);
        return true;
      });
    } finally {
      server.close();
    }
  });

  test('a plaintext gRPC control plane: "does not speak TLS"', async () => {
    const srv = await startGrpc(grpc.ServerCredentials.createInsecure());
    try {
      await assert.rejects(probeServerCertificate('127.0.0.1', srv.port), (e: Error) => {
        assert.ok(e.message.includes(`127.0.0.1:${srv.port}`), e.message);
        assert.match(e.message, /does not speak TLS/);
        return true;
      });
    } finally {
      srv.stop();
    }
  });

  test('a silent server times out with "does not speak TLS"', async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => sockets.push(s));
    const port = await listen(server);
    try {
      const t0 = Date.now();
      await assert.rejects(probeServerCertificate('127.0.0.1', port, 300), (e: Error) => {
        assert.ok(e.message.includes(`127.0.0.1:${port}`), e.message);
        assert.match(e.message, /within 300 ms: it does not speak TLS/);
        return true;
      });
      assert.ok(Date.now() - t0 < 3000);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });

  test('nothing listening: "connection refused"', async () => {
    const server = net.createServer();
    const port = await listen(server);
    await new Promise((r) => server.close(r));
    await assert.rejects(probeServerCertificate('127.0.0.1', port), (e: Error) => {
      assert.equal(e.message, `cannot connect to 127.0.0.1:${port}: connection refused (is the control plane running and listening there?)`);
      return true;
    });
  });
});

// --- trust on first use over real gRPC ---------------------------------------

describe('resolveTrust + grpcChannelCredentials', () => {
  test('first use pins and the call succeeds; the second use is silent', async () => {
    const { a } = await certs();
    const srv = await startGrpc(serverCredentials(a));
    try {
      const ks = new KnownServers(path.join(tmpdir(), 'known_servers.json'));
      const seen: string[] = [];
      const trust = await resolveTrust({ host: '127.0.0.1', port: srv.port, knownServers: ks, onFirstUse: (fp) => seen.push(fp) });
      assert.deepEqual(seen, [a.fingerprint]);
      assert.equal(trust.mode, 'pinned');
      assert.equal(trust.mode === 'pinned' && trust.fingerprint, a.fingerprint);
      assert.equal(ks.get(`127.0.0.1:${srv.port}`), a.fingerprint);
      assert.equal(await ping(`127.0.0.1:${srv.port}`, trust), 'pong:hi');

      const again = await resolveTrust({ host: '127.0.0.1', port: srv.port, knownServers: ks, onFirstUse: (fp) => seen.push(fp) });
      assert.deepEqual(seen, [a.fingerprint], 'onFirstUse not called again');
      assert.deepEqual(again, trust);
      assert.equal(await ping(`127.0.0.1:${srv.port}`, again), 'pong:hi');
    } finally {
      srv.stop();
    }
  });

  test('works by name and by IP, and by a name the certificate does not list', async () => {
    const { a } = await certs();
    const srv = await startGrpc(serverCredentials(a));
    try {
      const ks = new KnownServers(path.join(tmpdir(), 'known_servers.json'));
      const byName = await resolveTrust({ host: 'localhost', port: srv.port, knownServers: ks });
      const byIp = await resolveTrust({ host: '127.0.0.1', port: srv.port, knownServers: ks });
      assert.deepEqual(
        ks.list().map((k) => k.address),
        [`127.0.0.1:${srv.port}`, `localhost:${srv.port}`],
      );
      assert.equal(await ping(`localhost:${srv.port}`, byName), 'pong:hi');
      assert.equal(await ping(`127.0.0.1:${srv.port}`, byIp), 'pong:hi');
      assert.equal(await ping(`localhost:${srv.port}`, byIp), 'pong:hi');

      // grpc-js checks identity against the override name; the certificate
      // does not list it, so only the fingerprint check can let this through.
      const unlisted = 'not-in-the-cert.example';
      const peer = new crypto.X509Certificate(a.certPem);
      assert.ok(!peer.checkHost(unlisted), 'precondition: the name is not in the certificate');
      assert.equal(
        await ping(`127.0.0.1:${srv.port}`, byIp, { 'grpc.ssl_target_name_override': unlisted }),
        'pong:hi',
      );
    } finally {
      srv.stop();
    }
  });

  test('the credentials enforce the pin: wrong root or wrong fingerprint fails the call', async () => {
    const { a, b } = await certs();
    const srv = await startGrpc(serverCredentials(a));
    try {
      const target = `127.0.0.1:${srv.port}`;
      const wrongRoot: Trust = { mode: 'pinned', pem: b.certPem, fingerprint: b.fingerprint };
      await assert.rejects(ping(target, wrongRoot), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE);
      // The right root but another fingerprint: only checkServerIdentity can refuse this.
      const wrongFp: Trust = { mode: 'pinned', pem: a.certPem, fingerprint: b.fingerprint };
      await assert.rejects(ping(target, wrongFp), (e: grpc.ServiceError) => {
        assert.equal(e.code, grpc.status.UNAVAILABLE);
        assert.match(e.details, /does not match the pinned one/);
        return true;
      });
      // Control: the right trust works on the same server.
      assert.equal(await ping(target, { mode: 'pinned', pem: a.certPem, fingerprint: a.fingerprint }), 'pong:hi');
    } finally {
      srv.stop();
    }
  });

  test('a server restarted with another certificate is refused loudly until forgotten', async () => {
    const { a, b } = await certs();
    const ks = new KnownServers(path.join(tmpdir(), 'known_servers.json'));
    let srv = await startGrpc(serverCredentials(a));
    const port = srv.port;
    const address = `127.0.0.1:${port}`;
    let oldTrust: Trust;
    try {
      oldTrust = await resolveTrust({ host: '127.0.0.1', port, knownServers: ks });
    } finally {
      srv.stop();
    }
    srv = await startGrpc(serverCredentials(b), port);
    try {
      let firstUse = 0;
      await assert.rejects(resolveTrust({ host: '127.0.0.1', port, knownServers: ks, onFirstUse: () => firstUse++ }), (e: unknown) => {
        assert.ok(e instanceof PinMismatchError);
        assert.equal(e.address, address);
        assert.equal(e.expected, a.fingerprint);
        assert.equal(e.actual, b.fingerprint);
        assert.ok(e.message.includes(a.fingerprint), e.message);
        assert.ok(e.message.includes(b.fingerprint), e.message);
        assert.ok(e.message.includes(ks.file), e.message);
        assert.ok(e.message.includes(`cmdop trust --forget ${address}`), e.message);
        assert.match(e.message, /HAS CHANGED/);
        return true;
      });
      assert.equal(firstUse, 0);
      assert.equal(ks.get(address), a.fingerprint, 'a mismatch does not overwrite the pin');
      // Credentials made before the change refuse the new server too.
      await assert.rejects(ping(address, oldTrust), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE);

      // Accepting the new certificate on purpose.
      assert.equal(ks.forget(address), true);
      const seen: string[] = [];
      const trust = await resolveTrust({ host: '127.0.0.1', port, knownServers: ks, onFirstUse: (fp) => seen.push(fp) });
      assert.deepEqual(seen, [b.fingerprint]);
      assert.equal(await ping(address, trust), 'pong:hi');
    } finally {
      srv.stop();
    }
  });

  test('an expected fingerprint must match; a match is pinned', async () => {
    const { a, b } = await certs();
    const srv = await startGrpc(serverCredentials(a));
    try {
      const ks = new KnownServers(path.join(tmpdir(), 'known_servers.json'));
      const address = `127.0.0.1:${srv.port}`;
      await assert.rejects(
        resolveTrust({ host: '127.0.0.1', port: srv.port, knownServers: ks, expectedFingerprint: b.fingerprint }),
        (e: unknown) => {
          assert.ok(e instanceof PinMismatchError);
          assert.equal(e.expected, b.fingerprint);
          assert.equal(e.actual, a.fingerprint);
          assert.ok(e.message.includes(a.fingerprint) && e.message.includes(b.fingerprint), e.message);
          return true;
        },
      );
      assert.equal(ks.get(address), undefined, 'a refused server is not pinned');
      await assert.rejects(resolveTrust({ host: '127.0.0.1', port: srv.port, expectedFingerprint: 'abc' }), /not a SHA-256/);

      let firstUse = 0;
      const trust = await resolveTrust({
        host: '127.0.0.1',
        port: srv.port,
        knownServers: ks,
        expectedFingerprint: `SHA256:${a.fingerprint.replace(/:/g, '').toLowerCase()}`,
        onFirstUse: () => firstUse++,
      });
      assert.deepEqual(trust, { mode: 'pinned', pem: trust.mode === 'pinned' ? trust.pem : '', fingerprint: a.fingerprint });
      assert.equal(firstUse, 0, 'not "first use": the user vouched for it');
      assert.equal(ks.get(address), a.fingerprint);
      assert.equal(await ping(address, trust), 'pong:hi');
    } finally {
      srv.stop();
    }
  });

  test('IPv6 loopback: pinned as [::1]:PORT and reachable', async (t) => {
    const { a } = await certs();
    let srv: Running;
    try {
      srv = await startGrpc(serverCredentials(a), 0, '[::1]');
    } catch {
      t.skip('no IPv6 loopback on this machine');
      return;
    }
    try {
      const ks = new KnownServers(path.join(tmpdir(), 'known_servers.json'));
      const trust = await resolveTrust({ host: '::1', port: srv.port, knownServers: ks });
      assert.equal(ks.get(`[::1]:${srv.port}`), a.fingerprint);
      assert.equal(await ping(`[::1]:${srv.port}`, trust), 'pong:hi');
    } finally {
      srv.stop();
    }
  });

  test('connecting by IP with grpcChannelOptions raised no DEP0123 warning', async () => {
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    assert.deepEqual(deprecations, []);
    assert.deepEqual(grpcChannelOptions({ mode: 'ca' }, '127.0.0.1'), {}, 'CA trust keeps the real name');
    assert.deepEqual(grpcChannelOptions({ mode: 'pinned', pem: '', fingerprint: '' }, 'localhost'), {}, 'names keep SNI');
  });
});

// --- HTTPS on the web port -------------------------------------------------------

describe('httpsAgent', () => {
  function get(port: number, host: string, agent: https.Agent): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = https.get({ host, port, path: '/', agent, timeout: 5000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve(`${res.statusCode} ${body}`));
      });
      req.on('error', reject);
    });
  }

  test('reaches a server with the pinned certificate and refuses another', async () => {
    const { a, b } = await certs();
    const servers = [a, b].map((c) => https.createServer({ cert: c.certPem, key: c.keyPem }, (_req, res) => res.end('hello')));
    const agents: https.Agent[] = [];
    try {
      const [portA, portB] = await Promise.all(servers.map(listen));
      // Resolved against the web port itself (an HTTP/1.1 server: the probe must not offer only h2).
      const trust = await resolveTrust({ host: '127.0.0.1', port: portA });
      assert.equal(trust.mode === 'pinned' && trust.fingerprint, a.fingerprint);
      const agent = httpsAgent(trust);
      agents.push(agent);
      assert.equal(await get(portA, '127.0.0.1', agent), '200 hello');
      assert.equal(await get(portA, 'localhost', agent), '200 hello');
      // Another certificate does not chain to the pinned one as root.
      await assert.rejects(get(portB, '127.0.0.1', agent), (e: NodeJS.ErrnoException) => {
        assert.equal(e.code, 'DEPTH_ZERO_SELF_SIGNED_CERT', e.message);
        return true;
      });
      // Right root, wrong fingerprint: the fingerprint check refuses it.
      const wrongFp = httpsAgent({ mode: 'pinned', pem: a.certPem, fingerprint: b.fingerprint });
      agents.push(wrongFp);
      await assert.rejects(get(portA, '127.0.0.1', wrongFp), /does not match the pinned one/);
    } finally {
      for (const ag of agents) ag.destroy();
      for (const s of servers) {
        s.closeAllConnections();
        s.close();
      }
    }
  });
});

describe('a server list: each entry trusted on its own (ListTrust, listChannelCredentials)', () => {
  registerListResolver();

  /** One unary call over a list target; resolves with the reply or rejects with the gRPC error. */
  async function pingList(list: string, trust: ListTrust): Promise<string> {
    const l = parseServerList(list);
    const client = new PingClient(l.target, listChannelCredentials(l.entries, trust), LIST_CHANNEL_OPTIONS);
    try {
      return await new Promise<string>((resolve, reject) =>
        (client as unknown as { ping: Function }).ping(
          Buffer.from('hi'),
          { deadline: Date.now() + 5000 },
          (err: grpc.ServiceError | null, res?: Buffer) => (err ? reject(err) : resolve(res!.toString())),
        ),
      );
    } finally {
      client.close();
    }
  }
  const deadPort = async () => {
    const s = net.createServer();
    const port = await listen(s);
    await new Promise((r) => s.close(r));
    return port;
  };

  test('each entry is pinned on first use under its own host:port, whether replicas share a certificate or not', async () => {
    const { a, b } = await certs();
    const [one, two, shared] = await Promise.all([startGrpc(serverCredentials(a)), startGrpc(serverCredentials(b)), startGrpc(serverCredentials(a))]);
    const dead = await deadPort();
    try {
      const ks = new KnownServers(path.join(tmpdir(), 'known_servers.json'));
      const seen: string[] = [];
      const trust = new ListTrust({ knownServers: ks, onFirstUse: (addr, fp) => seen.push(`${addr} ${fp}`) });
      // By name too: SNI and the pin key are the entry's own.
      const list = `grpcs://127.0.0.1:${dead},grpcs://127.0.0.1:${one.port},grpcs://localhost:${two.port},grpcs://127.0.0.1:${shared.port}`;
      assert.equal(await pingList(list, trust), 'pong:hi');
      assert.deepEqual(seen, [`127.0.0.1:${one.port} ${a.fingerprint}`], 'the dead entry skipped, the first alive pinned');
      one.stop();
      assert.equal(await pingList(list, trust), 'pong:hi');
      two.stop();
      assert.equal(await pingList(list, trust), 'pong:hi');
      assert.deepEqual(seen, [
        `127.0.0.1:${one.port} ${a.fingerprint}`,
        `localhost:${two.port} ${b.fingerprint}`,
        `127.0.0.1:${shared.port} ${a.fingerprint}`,
      ]);
      assert.deepEqual(
        ks.list().map((k) => `${k.address} ${k.fingerprint}`).sort(),
        [`127.0.0.1:${one.port} ${a.fingerprint}`, `127.0.0.1:${shared.port} ${a.fingerprint}`, `localhost:${two.port} ${b.fingerprint}`].sort(),
      );
      assert.equal(trust.mismatch, undefined);
    } finally {
      for (const s of [one, two, shared]) s.stop();
    }
  });

  test('a changed certificate on one entry is refused loudly and never used; the others still serve', async () => {
    const { a, b } = await certs();
    const [changed, fine] = await Promise.all([startGrpc(serverCredentials(a)), startGrpc(serverCredentials(b))]);
    try {
      const ks = new KnownServers(path.join(tmpdir(), 'known_servers.json'));
      ks.pin(`127.0.0.1:${changed.port}`, b.fingerprint); // it presented b before: a now
      const refused: Error[] = [];
      const trust = new ListTrust({ knownServers: ks, onRefused: (e) => refused.push(e) });
      const list = `grpcs://127.0.0.1:${changed.port},grpcs://127.0.0.1:${fine.port}`;
      assert.equal(await pingList(list, trust), 'pong:hi');
      assert.ok(refused.length >= 1);
      assert.ok(refused[0] instanceof PinMismatchError);
      assert.match(refused[0].message, new RegExp(`THE TLS CERTIFICATE OF 127\\.0\\.0\\.1:${changed.port} HAS CHANGED`));
      assert.equal(trust.mismatch, refused[0], 'kept: the agent stops on it at its next reconnect');
      assert.equal(ks.get(`127.0.0.1:${changed.port}`), b.fingerprint, 'a mismatch does not overwrite the pin');
      assert.equal(ks.get(`127.0.0.1:${fine.port}`), b.fingerprint);
      // Probing the list (the CLI's first step) stops at the first entry that answers: refused, loudly.
      const entries = parseServerList(list).entries;
      await assert.rejects(new ListTrust({ knownServers: ks }).probeFirst(entries), /HAS CHANGED/);
      // The other order: the first answering entry is fine; the changed one is judged when reached.
      assert.equal((await new ListTrust({ knownServers: ks }).probeFirst([...entries].reverse())).mode, 'pinned');
    } finally {
      changed.stop();
      fine.stop();
    }
  });

  test('without a pin store (the SDK without credentials) only certificates the system CAs accept', async () => {
    const { a } = await certs();
    const srv = await startGrpc(serverCredentials(a));
    try {
      const list = `grpcs://127.0.0.1:${await deadPort()},grpcs://127.0.0.1:${srv.port}`;
      await assert.rejects(pingList(list, new ListTrust({ requireCa: true })), (e: grpc.ServiceError) => {
        assert.equal(e.code, grpc.status.UNAVAILABLE);
        assert.match(e.details, /not trusted by this system's CAs/);
        return true;
      });
      // An expected fingerprint must match on every entry.
      await assert.rejects(pingList(list, new ListTrust({ expectedFingerprint: '00'.repeat(32) })), /does not match the fingerprint you gave/);
      assert.equal(await pingList(list, new ListTrust({ expectedFingerprint: a.fingerprint })), 'pong:hi');
    } finally {
      srv.stop();
    }
  });
});
