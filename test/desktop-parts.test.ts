// The desktop app's plain parts, each on its own: the tray's model, the
// power wiring, the navigation rules, settings and window bounds, with the
// bad input each must survive.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AUTOSTART_FILE, autostartEntry, setXdgAutostart } from '../app/main/autostart';
import { HostProcess, nodeFork } from '../app/main/hosts';
import { wirePower } from '../app/main/power';
import { desktopConsoleCsp, isConsoleUrl, isExternalLinkAllowed, isWatchWindowUrl, secureWebPreferences } from '../app/main/security';
import { defaultSettings, loadSettings, saveSettings } from '../app/main/settings';
import { trayModel, type DesktopState, type MenuItem, type TrayFacts } from '../app/main/trayMenu';
import { WindowStates } from '../app/main/windowState';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-desktop-parts-'));
const facts = (state: DesktopState, o: Partial<TrayFacts> = {}): TrayFacts => ({
  state,
  machine: 'laptop',
  server: 'this computer',
  machines: ['laptop', 'build'],
  terminals: [{ terminalId: 'abcdef0123', title: 'abcdef01' }],
  embedded: true,
  autostart: false,
  nowMs: 1_000_000,
  ...o,
});
const find = (menu: MenuItem[], label: string): MenuItem | undefined =>
  menu.find((i) => i.label === label) ?? menu.flatMap((i) => (i.submenu ? [find(i.submenu, label)] : [])).find(Boolean);

describe('tray model', () => {
  it('an icon per state, and the grace countdown in the tooltip', () => {
    assert.equal(trayModel(facts({ kind: 'connected' })).icon, 'connected');
    assert.equal(trayModel(facts({ kind: 'connecting' })).icon, 'disconnected');
    assert.equal(trayModel(facts({ kind: 'disconnected', why: 'x' })).icon, 'disconnected');
    assert.equal(trayModel(facts({ kind: 'signed-out' })).icon, 'signed-out');
    const g = trayModel(facts({ kind: 'grace', reason: 'suspend', deadlineMs: 1_000_000 + 12_300, paused: false }));
    assert.equal(g.icon, 'grace');
    assert.match(g.tooltip, /laptop — Away: sessions kept for 13 s \(suspend\)/);
  });

  it('signed out: nothing to open or share; embedded: no sign-in item', () => {
    const m = trayModel(facts({ kind: 'signed-out' }, { embedded: false })).menu;
    assert.equal(find(m, 'Open console')?.enabled, false);
    assert.equal(find(m, 'New terminal to…')?.enabled, false);
    assert.ok(find(m, 'Sign in…'));
    const e = trayModel(facts({ kind: 'connected' })).menu;
    assert.equal(find(e, 'Sign in…'), undefined);
    assert.equal(find(e, 'Sign out'), undefined);
    assert.deepEqual(find(e, 'build')?.action, { kind: 'new-terminal', machine: 'build' });
    assert.deepEqual(find(e, 'abcdef01')?.action, { kind: 'share', machine: 'laptop', terminalId: 'abcdef0123' });
  });

  it('pause becomes resume while paused; simulate sleep only when connected; start at login is a check box', () => {
    const paused = trayModel(facts({ kind: 'grace', reason: 'paused', deadlineMs: 0, paused: true })).menu;
    assert.ok(find(paused, 'Resume agent'));
    assert.equal(find(paused, 'Pause agent'), undefined);
    assert.equal(find(paused, 'Simulate sleep for…')?.enabled, false);
    const on = trayModel(facts({ kind: 'connected' }, { autostart: true })).menu;
    assert.deepEqual(find(on, 'Start at login'), { label: 'Start at login', checked: true, action: { kind: 'autostart', on: false } });
    assert.deepEqual(find(on, '20 seconds')?.action, { kind: 'simulate-sleep', seconds: 20 });
  });
});

describe('tray model: a server process restarting', () => {
  it('one line per process in the menu and the tooltip, gone once it runs again', () => {
    const m = trayModel(facts({ kind: 'connected' }, { trouble: ['The control plane stopped unexpectedly (exit code 1); restarting…'] }));
    assert.equal(m.menu[1].label, 'The control plane stopped unexpectedly (exit code 1); restarting…');
    assert.equal(m.menu[1].enabled, false);
    assert.match(m.tooltip, /Connected\nThe control plane stopped/);
    assert.doesNotMatch(trayModel(facts({ kind: 'connected' }, { trouble: [] })).tooltip, /\n/);
  });
});

describe('host processes (app/main/hosts.ts) under child_process.fork', () => {
  /** A host that answers `ping` and, when told to, ignores quit (as a hung one would). */
  const script = (ignoreQuit: boolean) => {
    const file = path.join(tmp(), 'host.js');
    fs.writeFileSync(
      file,
      `process.on('message', (m) => {
        if (m.type === 'request') process.send({ type: 'reply', id: m.id, ok: true, result: { pid: process.pid, execArgv: process.execArgv } });
        else if (m.type === 'quit' && !${ignoreQuit}) process.exit(0);
      });`,
    );
    return file;
  };
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it('a host that ignores quit is killed after the timeout; one killed unasked is restarted after a backoff delay', async () => {
    const downs: string[] = [];
    let ups = 0;
    type Calls = { ping: { params: Record<string, never>; result: { pid: number; execArgv: string[] } } };
    const h = new HostProcess<Calls, never>({
      name: 'test host',
      module: script(true),
      fork: nodeFork,
      serviceName: 'test',
      backoff: { initialMs: 100, maxMs: 200 },
      quitTimeoutMs: 500,
      onDown: (why) => downs.push(why),
      onUp: () => ups++,
    });
    let pings = 0;
    await h.run(async () => {
      pings++;
      await h.call('ping', {});
    });
    const first = h.pid!;
    assert.deepEqual((await h.call('ping', {})).execArgv, ['--initial-old-space-size=128']);
    process.kill(first, 'SIGKILL');
    const t0 = Date.now();
    while (ups === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(downs, ['killed by SIGKILL']);
    assert.equal(pings, 2, 'the start ran again on the new process');
    const second = h.pid!;
    assert.notEqual(second, first);
    const s0 = Date.now();
    await h.stop();
    assert.ok(Date.now() - s0 >= 450, 'waited for the quit timeout');
    assert.equal(alive(second), false);
    assert.equal(h.pid, undefined);
    await assert.rejects(h.call('ping', {}), /not running/);
    assert.equal(downs.length, 1, 'a stop is not a crash');
  });

  it('a first start that fails kills the process and is not retried', async () => {
    let pid = 0;
    const h = new HostProcess<{ ping: { params: Record<string, never>; result: { pid: number } } }, never>({ name: 'test host', module: script(false), fork: nodeFork, serviceName: 'test' });
    await assert.rejects(
      h.run(async () => {
        pid = (await h.call('ping', {})).pid;
        throw new Error('refused');
      }),
      /refused/,
    );
    assert.equal(alive(pid), false);
  });
});

describe('power wiring', () => {
  it('suspend and lock-screen suspend; resume and unlock-screen resume; unwiring removes every listener', () => {
    const power = new EventEmitter();
    const calls: string[] = [];
    const unwire = wirePower(power, { suspend: (r) => calls.push(`suspend:${r}`), resume: (r) => calls.push(`resume:${r}`) });
    for (const e of ['suspend', 'resume', 'lock-screen', 'unlock-screen', 'shutdown']) power.emit(e);
    assert.deepEqual(calls, ['suspend:suspend', 'resume:resume', 'suspend:lock-screen', 'resume:unlock-screen']);
    unwire();
    assert.equal(power.eventNames().length, 0);
  });
});

describe('window security', () => {
  const origin = 'http://127.0.0.1:7421';
  it('only the console origin is the console; watch windows only at /watch', () => {
    assert.equal(isConsoleUrl('http://127.0.0.1:7421/share#x', origin), true);
    for (const bad of ['http://127.0.0.1:7422/', 'https://127.0.0.1:7421/', 'http://localhost:7421/', 'javascript:alert(1)', 'file:///etc/passwd', 'not a url']) {
      assert.equal(isConsoleUrl(bad, origin), false, bad);
    }
    assert.equal(isWatchWindowUrl('http://127.0.0.1:7421/watch?machine=a&terminal=b', origin), true);
    assert.equal(isWatchWindowUrl('http://127.0.0.1:7421/?watch', origin), false);
    assert.equal(isConsoleUrl('http://127.0.0.1:7421/', ''), false, 'before the console is known, nothing is');
  });

  it('links leave for the system browser only as http(s)', () => {
    assert.equal(isExternalLinkAllowed('https://example.com/x'), true);
    for (const bad of ['file:///etc/passwd', 'javascript:alert(1)', 'smb://host/share', 'ms-settings:', 'x']) assert.equal(isExternalLinkAllowed(bad), false, bad);
  });

  it('every console window is isolated, sandboxed and without Node; the CSP allows only its own socket', () => {
    const p = secureWebPreferences('/p.js');
    assert.equal(p.contextIsolation, true);
    assert.equal(p.sandbox, true);
    assert.equal(p.nodeIntegration, false);
    assert.equal(p.webSecurity, true);
    assert.equal(p.webviewTag, false);
    const csp = desktopConsoleCsp(origin);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /connect-src 'self' ws:\/\/127\.0\.0\.1:7421/);
    // Scripts only from the origin (xterm.js sets inline styles, so style-src has to allow them).
    assert.match(csp, /script-src 'self';/);
    assert.doesNotMatch(csp, /unsafe-eval/);
  });
});

describe('desktop settings', () => {
  it('bad values are reported and replaced by defaults; saving bad settings writes nothing', () => {
    const dir = tmp();
    const file = path.join(dir, 'settings.json');
    assert.deepEqual(loadSettings(file, 'host'), { settings: defaultSettings('host'), problems: [] });
    fs.writeFileSync(file, '{nope');
    assert.match(loadSettings(file, 'host').problems[0], /not valid JSON/);
    fs.writeFileSync(file, JSON.stringify({ server: 'grpcs://cp.example.com:7420', machineName: '../x', autostart: 'yes', listen: 7 }));
    const r = loadSettings(file, 'host');
    assert.equal(r.settings.server, 'grpcs://cp.example.com:7420');
    assert.equal(r.settings.machineName, 'host');
    assert.equal(r.settings.autostart, false);
    assert.equal(r.settings.listen, defaultSettings('host').listen);
    assert.equal(r.problems.length, 3, r.problems.join('\n'));
    const saved = fs.readFileSync(file, 'utf8');
    assert.throws(() => saveSettings(file, { ...r.settings, machineName: 'bad name!' }), /machine name/);
    assert.equal(fs.readFileSync(file, 'utf8'), saved);
    saveSettings(file, { ...r.settings, autostart: true });
    assert.equal(loadSettings(file, 'host').settings.autostart, true);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });
});

describe('window bounds', () => {
  const display = { x: 0, y: 0, width: 1920, height: 1080 };
  it('remembers bounds, drops a position that is on no display, enforces a minimum size, forgets the oldest', () => {
    const file = path.join(tmp(), 'windows.json');
    const w = new WindowStates(file);
    assert.deepEqual(w.boundsFor('main', [display], { width: 1200, height: 800 }), { width: 1200, height: 800 });
    w.remember('main', { x: 100, y: 50, width: 1000, height: 700 });
    assert.deepEqual(new WindowStates(file).boundsFor('main', [display], { width: 1, height: 1 }), { x: 100, y: 50, width: 1000, height: 700 });
    w.remember('main', { x: 2500, y: 50, width: 100, height: 100 }); // on a monitor since unplugged, and tiny
    assert.deepEqual(w.boundsFor('main', [display], { width: 1, height: 1 }), { width: 480, height: 320 });
    w.remember('bad', { x: NaN, y: 0, width: 10, height: 10 });
    assert.deepEqual(w.boundsFor('bad', [display], { width: 9, height: 9 }), { width: 9, height: 9 });
    for (let i = 0; i < 60; i++) w.remember(`watch:${i}`, { x: 10, y: 10, width: 600, height: 400 });
    assert.ok(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8'))).length <= 50);
    fs.writeFileSync(file, 'garbage');
    assert.deepEqual(new WindowStates(file).boundsFor('main', [display], { width: 5, height: 5 }), { width: 5, height: 5 });
  });
});

describe('start at login on Linux (XDG autostart)', () => {
  it('writes a desktop entry that starts hidden, quoting the path; off removes it', () => {
    const dir = path.join(tmp(), 'autostart');
    setXdgAutostart(dir, true, '/opt/My Apps/CMDOP "x".AppImage');
    const text = fs.readFileSync(path.join(dir, AUTOSTART_FILE), 'utf8');
    assert.match(text, /^\[Desktop Entry\]\nType=Application\n/);
    assert.match(text, /^Exec="\/opt\/My Apps\/CMDOP \\"x\\".AppImage" --hidden$/m);
    assert.equal(autostartEntry('/usr/bin/cmdop-desktop').includes('Exec="/usr/bin/cmdop-desktop" --hidden'), true);
    setXdgAutostart(dir, false, '');
    assert.equal(fs.existsSync(path.join(dir, AUTOSTART_FILE)), false);
    setXdgAutostart(dir, false, ''); // already off: no error
  });
});
