// Every `cmdop` invocation pays for the modules it loads before doing
// anything: `cmdop --version` once loaded the control plane's and the
// agent's dependencies (~0.3 s here), and `cmdop cp` paid the same on top of
// each copy. cli/main.ts registers every command up front but requires a
// command's implementation (cli/run/) only when it runs. These tests run the
// real entry points in a child process and look at what it loaded.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Cluster, cliEnv, startCluster, tempDir } from './helpers/cluster';

const MAIN = path.join(__dirname, '..', 'cli', 'main.js');

/** The npm packages a help or version invocation may load: the parser, and env-paths for the defaults it shows. */
const PARSING_ONLY = ['commander', 'env-paths'];

/**
 * Dependencies of the control plane (OAuth server, SQLite store, logging,
 * certificate generation, the browser gateway, terminal snapshots) and of
 * the agent (PTYs, metrics), and the progress bar that only a copy to a
 * terminal draws: a client command has no use for any of them.
 */
const NOT_FOR_CLIENTS = [
  'oidc-provider', 'better-sqlite3', 'pino', 'rate-limiter-flexible', 'ws', '@xterm/headless', '@xterm/addon-serialize',
  'selfsigned', '@peculiar/x509', 'asn1js',
  'node-pty', 'systeminformation',
  'cli-progress',
];

/** What only running a command needs (paths relative to dist/): its cli/run/ module and what that brings. */
const IMPLEMENTATION = ['cli/run/', 'cli/connection', 'cli/deviceCode', 'sdk/', 'protocol/generated/', 'lib/tls', 'lib/logger', 'control-plane/', 'app/'];

interface Loaded {
  /** npm packages, by name. */
  packages: Set<string>;
  /** Files of this build, relative to dist/ (e.g. "cli/run/files.js"). */
  own: string[];
  stdout: string;
}

/**
 * Runs an entry point of cli/main.js (`main` for cmdop, `agentMain` for
 * cmdop-agent) with ARGS in a fresh node, and reports every module in its
 * require cache when it exits.
 */
function probe(entry: 'main' | 'agentMain', args: string[], env: Record<string, string> = cliEnv()): Promise<Loaded> {
  const out = path.join(tempDir('cmdop-load-'), 'loaded.json');
  const script = `
    const { main, entry, out, args } = JSON.parse(process.env.CMDOP_LOAD_PROBE);
    process.on('exit', () => require('fs').writeFileSync(out, JSON.stringify(Object.keys(require.cache))));
    require(main)[entry](['node', 'cmdop', ...args]);`;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['-e', script],
      { env: { ...env, CMDOP_LOAD_PROBE: JSON.stringify({ main: MAIN, entry, out, args }) }, timeout: 60_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`${entry} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        const files: string[] = JSON.parse(fs.readFileSync(out, 'utf8'));
        fs.rmSync(path.dirname(out), { recursive: true, force: true });
        const packages = new Set<string>();
        for (const f of files) {
          const m = /.*\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f);
          if (m) packages.add(m[1]);
        }
        const dist = path.join(__dirname, '..') + path.sep;
        const own = files.filter((f) => f.startsWith(dist)).map((f) => f.slice(dist.length));
        resolve({ packages, own, stdout });
      },
    );
  });
}

function assertParsingOnly(l: Loaded, what: string): void {
  const extra = [...l.packages].filter((p) => !PARSING_ONLY.includes(p));
  assert.deepEqual(extra, [], `${what} loaded packages it does not need: ${extra.join(', ')}`);
  const impl = l.own.filter((f) => IMPLEMENTATION.some((prefix) => f.startsWith(prefix)));
  assert.deepEqual(impl, [], `${what} loaded command implementations: ${impl.join(', ')}`);
}

function assertNoServerCode(l: Loaded, what: string): void {
  const heavy = NOT_FOR_CLIENTS.filter((p) => l.packages.has(p));
  assert.deepEqual(heavy, [], `${what} loaded control-plane or agent dependencies: ${heavy.join(', ')}`);
  const own = l.own.filter((f) => f.startsWith('control-plane/') || f.startsWith('app/'));
  assert.deepEqual(own, [], `${what} loaded control-plane or agent code: ${own.join(', ')}`);
}

describe('CLI start-up: each command loads only what it uses', () => {
  it('--version, --help and a command\'s --help load only the command definitions', async () => {
    for (const args of [['--version'], ['--help'], ['server', '--help'], ['help', 'cp'], ['agent', '--help'], ['agent', 'install-service', '--help'], ['doctor', '--help']]) {
      const l = await probe('main', args);
      assertParsingOnly(l, `cmdop ${args.join(' ')}`);
    }
    const l = await probe('agentMain', ['--help']);
    assert.match(l.stdout, /Usage: cmdop-agent/);
    assertParsingOnly(l, 'cmdop-agent --help');
  });

  it('every implementation a command requires when it runs exists', () => {
    // The lazy require() strings are not checked by the compiler (only the
    // `typeof import()` next to them is): a typo would only show when that
    // command is run.
    const dir = path.join(__dirname, '..', 'cli', 'commands');
    const files = fs.readdirSync(dir).filter((x) => x.endsWith('.js'));
    for (const f of files) {
      let lazy = 0;
      for (const m of fs.readFileSync(path.join(dir, f), 'utf8').matchAll(/require\(['"](\.[^'"]+)['"]\)/g)) {
        assert.doesNotThrow(() => require.resolve(path.join(dir, m[1])), `${f} requires ${m[1]}, which does not exist`);
        if (m[1].startsWith('../run/')) lazy++;
      }
      // agent.ts has two: the agent itself, and its service commands (run/agentService).
      assert.ok(lazy >= 1, `${f} requires its cli/run/ module`);
    }
  });

  describe('against a control plane', () => {
    let c: Cluster;
    let dir: string;
    before(async () => {
      c = await startCluster();
      dir = tempDir('cmdop-load-files-');
      fs.writeFileSync(path.join(dir, 'a.txt'), 'hello\n');
    });
    after(async () => {
      await c.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('client commands load no control-plane or agent code', async () => {
      const env = cliEnv(c.server);
      const run = async (args: string[]) => {
        const l = await probe('main', ['--server', c.server, ...args], env);
        assertNoServerCode(l, `cmdop ${args.join(' ')}`);
        return l;
      };
      assert.match((await run(['ls', `box:${dir}`])).stdout, /a\.txt/);
      assert.match((await run(['machines'])).stdout, /box/);
      assert.equal((await run(['exec', '-n', 'box', '--', 'echo', 'hi'])).stdout, 'hi\n');
      // Piped stderr: no progress bar, so not even cli-progress.
      await run(['cp', path.join(dir, 'a.txt'), `box:${dir}/b.txt`]);
      assert.equal(fs.readFileSync(path.join(dir, 'b.txt'), 'utf8'), 'hello\n');
      await run(['whoami']);
      await run(['tokens', 'list']);
    });
  });
});
