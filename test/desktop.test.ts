// The desktop app's main-process wiring under plain Node: Desktop with an
// EventEmitter for powerMonitor, a tray that records what it is told to show,
// and an AES-GCM stand-in for safeStorage (the Electron binary is the one
// edge that cannot run here). Behind them everything is real: the embedded
// control plane, the agent, a shell in a PTY, an SDK client watching output
// byte for byte while the lid "closes" and "opens".
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Desktop, type DesktopHost } from '../app/main/desktop';
import type { SecretBox } from '../app/main/secrets';
import { defaultSettings } from '../app/main/settings';
import type { MenuAction, MenuItem, TrayModel } from '../app/main/trayMenu';
import { startControlPlane, type ControlPlane } from '../control-plane/server';
import { SessionState, TokenKind } from '../protocol';
import { CmdopClient } from '../sdk';
import { createLogger } from '../lib/logger';
import { SERVER_NODE_FLAGS } from '../lib/serverFlags';
import { approveDevice } from './helpers/browser';
import { eventually, restartablePort } from './helpers/cluster';

/** safeStorage's contract with a real cipher: a key per "login session", so what is on disk is ciphertext. */
class TestSecretBox implements SecretBox {
  private key = crypto.randomBytes(32);
  constructor(public available = true) {}
  isEncryptionAvailable() {
    return this.available;
  }
  encryptString(plain: string): Buffer {
    const iv = crypto.randomBytes(12);
    const c = crypto.createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]);
  }
  decryptString(b: Buffer): string {
    const d = crypto.createDecipheriv('aes-256-gcm', this.key, b.subarray(0, 12));
    d.setAuthTag(b.subarray(12, 28));
    return Buffer.concat([d.update(b.subarray(28)), d.final()]).toString('utf8');
  }
}

class TestHost implements DesktopHost {
  power = new EventEmitter();
  models: TrayModel[] = [];
  consoles: string[] = [];
  notes: { title: string; body: string }[] = [];
  external: string[] = [];
  copied: string[] = [];
  quits = 0;
  settingsOpened = 0;
  autostart: boolean[] = [];
  tray = { render: (m: TrayModel) => void this.models.push(m) };
  constructor(public secrets: SecretBox = new TestSecretBox()) {}
  openConsole(url: string) {
    this.consoles.push(url);
  }
  notify(title: string, body: string) {
    this.notes.push({ title, body });
  }
  openExternal(url: string) {
    this.external.push(url);
  }
  copyText(t: string) {
    this.copied.push(t);
  }
  openSettings() {
    this.settingsOpened++;
  }
  setAutostart(on: boolean) {
    this.autostart.push(on);
  }
  quit() {
    this.quits++;
  }
  get icon() {
    return this.models[this.models.length - 1]?.icon;
  }
  get model() {
    return this.models[this.models.length - 1]!;
  }
  /** The menu item with this label (anywhere in the menu), as the user would pick it. */
  item(label: string | RegExp, menu: MenuItem[] = this.model.menu): MenuItem | undefined {
    for (const i of menu) {
      if (typeof label === 'string' ? i.label === label : label.test(i.label)) return i;
      const sub = i.submenu && this.item(label, i.submenu);
      if (sub) return sub;
    }
    return undefined;
  }
}

const GRACE_S = 6;
const quiet = createLogger('test', 'warn');

function tempDirs() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-desktop-'));
  return { root, dataDir: path.join(root, 'cp'), stateDir: path.join(root, 'agent') };
}

async function machineState(c: CmdopClient, name: string): Promise<SessionState | undefined> {
  return (await c.machines.list()).find((m) => m.name === name)?.state;
}

describe('desktop app: embedded control plane, sleep and wake', () => {
  const dirs = tempDirs();
  let host: TestHost;
  let desktop: Desktop;
  let admin: CmdopClient;

  before(async () => {
    host = new TestHost();
    desktop = new Desktop(host, {
      settings: { ...defaultSettings('laptop'), listen: '127.0.0.1:0' },
      ...dirs,
      gracePeriodS: GRACE_S,
      pollMs: 300,
      logger: quiet,
    });
    await desktop.start();
    admin = new CmdopClient({ server: desktop.controlPlane!.address, token: fs.readFileSync(desktop.controlPlane!.adminTokenFile, 'utf8').trim(), machine: 'laptop' });
  });
  after(async () => {
    admin?.close();
    await desktop?.stop();
  });

  it('starts the control plane and the agent; the tray shows connected and offers this machine', async () => {
    assert.equal(host.icon, 'connected');
    assert.equal(await machineState(admin, 'laptop'), SessionState.CONNECTED);
    await eventually(() => host.item('laptop') !== undefined, 5000, '"laptop" under New terminal to…');
    assert.deepEqual(host.item('laptop')!.action, { kind: 'new-terminal', machine: 'laptop' });
    assert.match(host.model.tooltip, /laptop — Connected/);
  });

  it('suspend → GRACE_PERIOD → resume → CONNECTED, and the output of a running command arrives byte-exact', async () => {
    const n = 300;
    const script = `for i in $(seq 1 ${n}); do echo line-$i; sleep 0.02; done`;
    const run = admin.terminal.execute(['sh', '-c', script], { machine: 'laptop' });
    await new Promise((r) => setTimeout(r, 1000));
    host.power.emit('suspend');
    await eventually(async () => (await machineState(admin, 'laptop')) === SessionState.GRACE_PERIOD, 5000, 'GRACE_PERIOD');
    assert.equal(host.icon, 'grace');
    assert.match(host.model.tooltip, /Away: sessions kept for \d+ s \(suspend\)/);
    await new Promise((r) => setTimeout(r, 2000)); // asleep; the command keeps running
    host.power.emit('resume');
    await eventually(async () => (await machineState(admin, 'laptop')) === SessionState.CONNECTED, 5000, 'CONNECTED again');
    await eventually(() => host.icon === 'connected', 5000, 'tray connected');
    const r = await run;
    assert.equal(r.exitCode, 0);
    assert.deepEqual(r.gaps, []);
    const expected = Array.from({ length: n }, (_, i) => `line-${i + 1}\n`).join('');
    assert.equal(r.stdout, expected);
  });

  it('lock-screen and unlock-screen do the same', async () => {
    host.power.emit('lock-screen');
    await eventually(async () => (await machineState(admin, 'laptop')) === SessionState.GRACE_PERIOD, 5000, 'GRACE_PERIOD');
    assert.equal(host.icon, 'grace');
    host.power.emit('unlock-screen');
    await eventually(async () => (await machineState(admin, 'laptop')) === SessionState.CONNECTED, 5000, 'CONNECTED');
    assert.equal((await admin.terminal.execute('echo awake', { machine: 'laptop' })).stdout, 'awake\n');
  });

  it('"Simulate sleep for 5 seconds" goes through the grace period and comes back by itself', async () => {
    const item = host.item('5 seconds');
    assert.ok(item?.action, 'the menu offers it');
    const t0 = Date.now();
    await desktop.run(item.action!);
    assert.equal(host.icon, 'grace');
    await eventually(async () => (await machineState(admin, 'laptop')) === SessionState.GRACE_PERIOD, 3000, 'GRACE_PERIOD');
    await eventually(async () => (await machineState(admin, 'laptop')) === SessionState.CONNECTED, 10_000, 'CONNECTED after 5 s');
    assert.ok(Date.now() - t0 >= 4900, `slept ${Date.now() - t0} ms`);
    assert.equal(host.icon, 'connected');
  });

  it('"Pause agent" holds through a wake-up event; only "Resume agent" brings it back', async () => {
    await desktop.run(host.item('Pause agent')!.action!);
    await eventually(async () => (await machineState(admin, 'laptop')) === SessionState.GRACE_PERIOD, 3000, 'GRACE_PERIOD');
    host.power.emit('resume'); // the lid opens: a paused agent stays paused
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(await machineState(admin, 'laptop'), SessionState.GRACE_PERIOD);
    assert.match(host.model.tooltip, /Paused/);
    const resume = host.item('Resume agent');
    assert.ok(resume, 'the menu offers Resume');
    await desktop.run(resume.action!);
    await eventually(async () => (await machineState(admin, 'laptop')) === SessionState.CONNECTED, 5000, 'CONNECTED');
    await eventually(() => host.icon === 'connected', 3000, 'tray connected');
  });

  it('a sleep longer than the grace period: the tray says DISCONNECTED, then the machine is back with a new session, and says so', async () => {
    const before = desktop.agent!.sessionId;
    const shell = await admin.terminal.create({ machine: 'laptop' });
    desktop.simulateSleep(GRACE_S + 2);
    await eventually(() => host.icon === 'disconnected', (GRACE_S + 2) * 1000, 'tray disconnected');
    assert.match(host.model.tooltip, /grace period/);
    await eventually(async () => (await machineState(admin, 'laptop')) === SessionState.CONNECTED, 15_000, 'CONNECTED with a new session');
    await eventually(() => host.icon === 'connected', 5000, 'tray connected');
    assert.notEqual(desktop.agent!.sessionId, before);
    assert.ok(host.notes.some((n) => /previous session ended/.test(n.title)), JSON.stringify(host.notes));
    const t = (await admin.terminal.list('laptop')).find((x) => x.terminalId === shell.terminalId);
    assert.ok(!t || t.exited, 'the old terminal is gone: DISCONNECTED closed it');
  });

  it('Open console and New terminal give signed-in console URLs; Share copies a working read-only link', async () => {
    await desktop.run({ kind: 'open-console' });
    const url = new URL(host.consoles.at(-1)!);
    assert.equal(url.pathname, '/');
    const token = decodeURIComponent(url.hash.replace(/^#token=/, ''));
    const viaConsole = new CmdopClient({ server: desktop.controlPlane!.address, token });
    try {
      assert.equal((await viaConsole.auth.whoami()).user, 'admin');
    } finally {
      viaConsole.close();
    }
    await desktop.run({ kind: 'new-terminal', machine: 'laptop' });
    assert.match(host.consoles.at(-1)!, /\/\?open=laptop#token=/);
    const t = await admin.terminal.create({ machine: 'laptop' });
    await eventually(() => host.item(new RegExp(t.terminalId.slice(0, 8))) !== undefined, 5000, 'the terminal under Share');
    await desktop.run(host.item(new RegExp(t.terminalId.slice(0, 8)))!.action!);
    assert.match(host.copied.at(-1)!, /\/share#cmdop_shr_/);
    const share = decodeURIComponent(host.copied.at(-1)!.split('#')[1]);
    const viewer = new CmdopClient({ server: desktop.controlPlane!.address, token: share });
    try {
      const me = await viewer.auth.whoami();
      assert.equal(me.kind, TokenKind.SHARE);
      assert.equal(me.terminalId, t.terminalId);
    } finally {
      viewer.close();
    }
  });

  it("keeps the agent's credential only as ciphertext, and a restart reuses it without enrolling again", async () => {
    const file = path.join(dirs.stateDir, 'desktop-secrets.bin');
    const raw = fs.readFileSync(file);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.doesNotMatch(raw.toString('latin1'), /cmdop_/, 'no token in clear');
    const agents = async () => (await admin.auth.listTokens({ allUsers: true, kind: TokenKind.AGENT })).filter((t) => t.machine === 'laptop' && !t.revokedMs);
    assert.equal((await agents()).length, 1);
    const box = host.secrets;
    await desktop.stop();
    admin.close();
    host = new TestHost(box);
    desktop = new Desktop(host, { settings: { ...defaultSettings('laptop'), listen: '127.0.0.1:0' }, ...dirs, gracePeriodS: GRACE_S, pollMs: 300, logger: quiet });
    await desktop.start();
    admin = new CmdopClient({ server: desktop.controlPlane!.address, token: fs.readFileSync(desktop.controlPlane!.adminTokenFile, 'utf8').trim(), machine: 'laptop' });
    assert.equal(host.icon, 'connected');
    assert.equal((await agents()).length, 1, 'the same credential, not a second enrollment');
  });
});

/** Every process below `pid` (Linux /proc), zombies excepted. */
function descendants(pid: number): number[] {
  const kids = new Map<number, number[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z') continue;
      kids.set(Number(ppid), [...(kids.get(Number(ppid)) ?? []), Number(d)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const k of kids.get(p) ?? []) {
      out.push(k);
      walk(k);
    }
  };
  walk(pid);
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const cmdline = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

describe('desktop app: the control plane and the agent run in processes of their own', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
  const dirs = tempDirs();
  const HOST_GRACE_S = 15;
  let host: TestHost;
  let desktop: Desktop;
  let admin: CmdopClient;

  before(async () => {
    host = new TestHost();
    // A port the control plane can be restarted on (a killed one's ephemeral port may be taken meanwhile).
    const listen = `127.0.0.1:${await restartablePort()}`;
    desktop = new Desktop(host, { settings: { ...defaultSettings('laptop'), listen }, ...dirs, gracePeriodS: HOST_GRACE_S, pollMs: 300, logger: quiet });
    await desktop.start();
    admin = new CmdopClient({ server: desktop.controlPlane!.address, token: fs.readFileSync(desktop.controlPlane!.adminTokenFile, 'utf8').trim(), machine: 'laptop' });
  });
  after(async () => {
    admin?.close();
    await desktop?.stop();
  });

  it('each runs in a child process of its own, started with the server heap flag', () => {
    const cp = desktop.controlPlane!.pid;
    const agent = desktop.agent!.pid!;
    assert.ok(cp > 0 && agent > 0, `pids ${cp} ${agent}`);
    assert.notEqual(cp, process.pid);
    assert.notEqual(agent, process.pid);
    assert.notEqual(cp, agent);
    assert.deepEqual(descendants(process.pid).filter((p) => p === cp || p === agent).sort(), [cp, agent].sort(), 'children of this process');
    for (const pid of [cp, agent]) for (const f of SERVER_NODE_FLAGS) assert.ok(cmdline(pid).includes(f), `${f} in ${cmdline(pid).join(' ')}`);
    assert.ok(desktop.controlPlane!.execArgv.includes('--initial-old-space-size=128'));
    assert.ok(cmdline(cp).some((a) => a.endsWith('controlPlaneHost.js')));
    assert.ok(cmdline(agent).some((a) => a.endsWith('agentHost.js')));
  });

  it('suspend from the power events reaches the agent process: GRACE_PERIOD, and resume brings the same session back', async () => {
    const session = desktop.agent!.sessionId;
    host.power.emit('suspend');
    await eventually(async () => (await machineState(admin, 'laptop')) === SessionState.GRACE_PERIOD, 5000, 'GRACE_PERIOD');
    assert.equal(host.icon, 'grace');
    host.power.emit('resume');
    await eventually(async () => (await machineState(admin, 'laptop')) === SessionState.CONNECTED, 5000, 'CONNECTED');
    await eventually(() => host.icon === 'connected', 3000, 'tray connected');
    assert.equal(desktop.agent!.sessionId, session);
  });

  it('the control plane killed with SIGKILL is restarted on the same port; the tray says so; the session and its terminal survive', async () => {
    const shell = await admin.terminal.create({ machine: 'laptop' });
    const session = desktop.agent!.sessionId;
    const before = desktop.controlPlane!.pid;
    const address = desktop.controlPlane!.address;
    process.kill(before, 'SIGKILL');
    await eventually(() => host.item(/The control plane stopped unexpectedly \(killed by SIGKILL\)/) !== undefined, 5000, 'the tray shows the restart');
    assert.match(host.model.tooltip, /control plane stopped unexpectedly/);
    await eventually(() => desktop.controlPlane!.pid !== before && alive(desktop.controlPlane!.pid), 15_000, 'a new control-plane process');
    assert.equal(desktop.controlPlane!.address, address);
    await eventually(async () => (await machineState(admin, 'laptop')) === SessionState.CONNECTED, HOST_GRACE_S * 1000, 'CONNECTED within the grace period');
    await eventually(() => host.item(/stopped unexpectedly/) === undefined, 5000, 'the tray note is gone');
    assert.equal((await admin.machines.list()).find((m) => m.name === 'laptop')?.sessionId, session, 'the same session');
    const t = (await admin.terminal.list('laptop')).find((x) => x.terminalId === shell.terminalId);
    assert.ok(t && !t.exited, 'the terminal is still there');
    assert.equal((await admin.terminal.execute('echo still-here', { machine: 'laptop' })).stdout, 'still-here\n');
  });

  it('the agent killed with SIGKILL is restarted; the machine is back with a new session, and the user is told', async () => {
    const before = desktop.agent!.pid!;
    const session = desktop.agent!.sessionId;
    process.kill(before, 'SIGKILL');
    await eventually(() => host.item(/The agent stopped unexpectedly/) !== undefined, 5000, 'the tray shows the restart');
    await eventually(() => desktop.agent!.pid !== undefined && desktop.agent!.pid !== before, 15_000, 'a new agent process');
    await eventually(async () => (await machineState(admin, 'laptop')) === SessionState.CONNECTED, 15_000, 'CONNECTED');
    await eventually(() => host.icon === 'connected' && host.item(/stopped unexpectedly/) === undefined, 5000, 'tray connected');
    assert.notEqual(desktop.agent!.sessionId, session);
    assert.ok(host.notes.some((n) => /agent restarted/.test(n.title)), JSON.stringify(host.notes));
    assert.equal((await admin.terminal.execute('echo back', { machine: 'laptop' })).stdout, 'back\n');
  });

  it('quitting stops both processes and leaves no child behind (shells included)', async () => {
    await admin.terminal.create({ machine: 'laptop' });
    const children = descendants(process.pid);
    const hosts = [desktop.controlPlane!.pid, desktop.agent!.pid!];
    assert.ok(children.length > hosts.length, `the hosts and a shell: ${children.join(' ')}`);
    admin.close();
    await desktop.stop();
    await eventually(() => children.every((p) => !alive(p)), 5000, `no child left of ${children.join(' ')}`);
    assert.deepEqual(descendants(process.pid), []);
  });
});

describe('desktop app: no keychain', () => {
  it('refuses to keep credentials in the clear and says why in the tray', async () => {
    const dirs = tempDirs();
    const host = new TestHost(new TestSecretBox(false));
    const desktop = new Desktop(host, { settings: { ...defaultSettings('laptop'), listen: '127.0.0.1:0' }, ...dirs, logger: quiet });
    try {
      await desktop.start();
      assert.equal(host.icon, 'signed-out');
      assert.match(host.model.tooltip, /keychain is not available/);
      assert.equal(fs.existsSync(path.join(dirs.stateDir, 'desktop-secrets.bin')), false);
    } finally {
      await desktop.stop();
    }
  });
});

describe('desktop app: a remote control plane and the device flow', () => {
  let cp: ControlPlane;
  before(async () => {
    cp = await startControlPlane({ listen: '127.0.0.1:0', dataDir: tempDirs().dataDir, logger: quiet });
    const admin = new CmdopClient({ server: cp.address, token: fs.readFileSync(cp.adminTokenFile, 'utf8').trim() });
    await admin.auth.addUser('bob', { password: 'bob-password-1' });
    admin.close();
  });
  after(async () => cp?.close());

  it('starts signed out; Sign in… opens the browser, and once approved the machine is enrolled as the user\'s; Sign out revokes both', async () => {
    const dirs = tempDirs();
    const host = new TestHost();
    const desktop = new Desktop(host, { settings: { ...defaultSettings('bobs-laptop'), server: cp.address }, ...dirs, pollMs: 300, logger: quiet });
    try {
      await desktop.start();
      assert.equal(host.icon, 'signed-out');
      assert.equal(host.item('Open console')?.enabled, false);
      const signIn = desktop.run(host.item('Sign in…')!.action as MenuAction);
      const url = new URL(await eventually(() => host.external[0], 10_000, 'the browser opened'));
      const code = url.searchParams.get('user_code')!;
      assert.ok(code, url.href);
      assert.ok(host.notes.some((n) => n.body.includes(code)), 'the code is shown to compare');
      await approveDevice(`${url.origin}${url.pathname}`, code, 'bob', 'bob-password-1');
      await signIn;
      assert.equal(host.icon, 'connected', JSON.stringify(host.notes));
      const bob = desktop.client!;
      const mine = (await bob.machines.list()).find((m) => m.name === 'bobs-laptop');
      assert.equal(mine?.state, SessionState.CONNECTED, 'bob reaches his own machine');
      assert.equal((await bob.auth.whoami()).user, 'bob');
      const cred = new TestSecretBox(); // not the host's: must not decrypt
      assert.throws(() => cred.decryptString(fs.readFileSync(path.join(dirs.stateDir, 'desktop-secrets.bin'))));
      const token = desktop.agent!.token;
      await desktop.run(host.item('Sign out')!.action!);
      assert.equal(host.icon, 'signed-out');
      const probe = new CmdopClient({ server: cp.address, token });
      try {
        await assert.rejects(probe.auth.whoami(), /revoked|unknown|invalid/);
      } finally {
        probe.close();
      }
    } finally {
      await desktop.stop();
    }
  });
});
