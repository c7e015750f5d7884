// Where the browser tests get their Chromium (test/helpers/chromium.ts), on
// made-up machines: which files exist, who runs, whether apt-get is there.
// CI (.ci/run) exercises the real install path: it no longer installs
// chromium itself, so `npm test` must, as root on a fresh Debian machine.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { APT_INSTALL, chooseChromium, chromiumPath, ensureChromium, SYSTEM_CHROMIUM, thisMachine, type Machine } from './helpers/chromium';

const PW = '/root/.cache/ms-playwright/chromium-1234/chrome-linux/chrome';

/** A machine with these files, as root with apt-get unless told otherwise. */
const machine = (files: string[], o: Partial<Omit<Machine, 'exists'>> = {}): Machine => ({
  playwrightChromium: PW,
  uid: 0,
  aptGet: true,
  ...o,
  exists: (f) => files.includes(f),
});

describe('which Chromium the browser tests use', () => {
  it('a Chromium Playwright installed comes first, then the system one', () => {
    assert.deepEqual(chooseChromium(machine([PW, SYSTEM_CHROMIUM])), { action: 'use', path: PW, source: 'playwright' });
    assert.deepEqual(chooseChromium(machine([SYSTEM_CHROMIUM])), { action: 'use', path: SYSTEM_CHROMIUM, source: 'system' });
    // Playwright naming no path at all (a platform it has no Chromium for) is the same as none installed.
    assert.deepEqual(chooseChromium(machine([SYSTEM_CHROMIUM], { playwrightChromium: undefined })), { action: 'use', path: SYSTEM_CHROMIUM, source: 'system' });
  });

  it('CMDOP_CHROMIUM wins when set, and a missing one is an error, not a silent fallback', () => {
    assert.deepEqual(chooseChromium(machine([PW, SYSTEM_CHROMIUM, '/opt/c/chrome'], { override: '/opt/c/chrome' })), {
      action: 'use',
      path: '/opt/c/chrome',
      source: 'CMDOP_CHROMIUM',
    });
    const c = chooseChromium(machine([PW, SYSTEM_CHROMIUM], { override: '/opt/c/chrome' }));
    assert.equal(c.action, 'fail');
    assert.match(c.action === 'fail' ? c.message : '', /CMDOP_CHROMIUM names \/opt\/c\/chrome, which is not there/);
  });

  it('with none, root with apt-get installs Debian’s chromium', () => {
    assert.deepEqual(chooseChromium(machine([])), { action: 'install', path: SYSTEM_CHROMIUM, commands: APT_INSTALL });
    assert.deepEqual(APT_INSTALL.at(-1), ['apt-get', 'install', '-y', '-qq', 'chromium']);
  });

  it('with none and no way to install, fails naming the one command to run', () => {
    const notRoot = chooseChromium(machine([], { uid: 1000 }));
    assert.equal(notRoot.action, 'fail');
    const m1 = notRoot.action === 'fail' ? notRoot.message : '';
    assert.match(m1, /none at \/usr\/bin\/chromium/);
    assert.match(m1, /\n {4}sudo sh -c "apt-get update && apt-get install -y chromium"\n/);
    const noApt = chooseChromium(machine([], { aptGet: false }));
    assert.equal(noApt.action, 'fail');
    assert.match(noApt.action === 'fail' ? noApt.message : '', /\n {4}npx playwright install chromium\n/);
    // No user id (not a POSIX system): not root, so no install either.
    assert.equal(chooseChromium(machine([], { uid: undefined })).action, 'fail');
  });

  it('the config’s path is the one chosen, or the one about to be installed; a failure is left for the setup to report', () => {
    assert.equal(chromiumPath(machine([PW])), PW);
    assert.equal(chromiumPath(machine([])), SYSTEM_CHROMIUM);
    assert.equal(chromiumPath(machine([], { uid: 1000 })), SYSTEM_CHROMIUM);
    assert.equal(chromiumPath(machine([], { override: '/opt/c/chrome' })), '/opt/c/chrome');
  });

  it('ensureChromium runs apt-get in order, says so, and checks the browser is then there', () => {
    const files: string[] = [];
    const ran: string[] = [];
    const log: string[] = [];
    const m = machine(files);
    const got = ensureChromium(m, (l) => log.push(l), (cmd, args) => {
      ran.push([cmd, ...args].join(' '));
      if (args.includes('install')) files.push(SYSTEM_CHROMIUM);
      return undefined;
    });
    assert.equal(got, SYSTEM_CHROMIUM);
    assert.deepEqual(ran, ['apt-get update -qq', 'apt-get install -y -qq chromium']);
    assert.match(log[0], /installing Debian's chromium \(apt-get update -qq && apt-get install -y -qq chromium\) as root/);

    // A failing apt-get stops there and says which command failed.
    const ran2: string[] = [];
    assert.throws(
      () => ensureChromium(machine([]), () => {}, (cmd, args) => (ran2.push(args[0]), args[0] === 'update' ? 'exit 100' : undefined)),
      /apt-get update -qq failed \(exit 100\)/,
    );
    assert.deepEqual(ran2, ['update'], 'nothing after the failure');
    // Installed, yet no browser where it should be.
    assert.throws(() => ensureChromium(machine([]), () => {}, () => undefined), /yet there is no \/usr\/bin\/chromium/);
    // Nothing to do: nothing is run.
    assert.equal(ensureChromium(machine([SYSTEM_CHROMIUM]), () => assert.fail('no log'), () => assert.fail('nothing run')), SYSTEM_CHROMIUM);
    assert.throws(() => ensureChromium(machine([], { aptGet: false }), () => {}, () => assert.fail('nothing run')), /npx playwright install chromium/);
  });

  it('reads this machine: CMDOP_CHROMIUM, the user id, and a Playwright path', () => {
    const saved = process.env.CMDOP_CHROMIUM;
    try {
      process.env.CMDOP_CHROMIUM = '/opt/x/chrome';
      const m = thisMachine();
      assert.equal(m.override, '/opt/x/chrome');
      assert.equal(m.uid, process.getuid?.());
      assert.match(m.playwrightChromium ?? '', /chrom/i);
      assert.equal(m.exists(process.execPath), true);
      process.env.CMDOP_CHROMIUM = '';
      assert.equal(thisMachine().override, undefined, 'an empty CMDOP_CHROMIUM is unset');
    } finally {
      if (saved === undefined) delete process.env.CMDOP_CHROMIUM;
      else process.env.CMDOP_CHROMIUM = saved;
    }
  });
});
