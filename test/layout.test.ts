// The layout a reader relies on, checked: the control plane's core is
// transport-neutral (it never sees a grpc-js call, a socket or an HTTP
// exchange: transports adapt to its ports, core/ports.ts), the agent
// library never imports electron, and connecting belongs to the SDK: the
// desktop app never reaches into the CLI, and the SDK into neither.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers/cluster';

/** Every import specifier in the .ts files under `dir` (recursively), with the file it is in. */
function importsUnder(dir: string): { file: string; spec: string }[] {
  const out: { file: string; spec: string }[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...importsUnder(p));
    else if (e.name.endsWith('.ts')) {
      const src = fs.readFileSync(p, 'utf8');
      for (const m of src.matchAll(/(?:from|import|require\()\s*['"]([^'"]+)['"]/g)) out.push({ file: path.relative(ROOT, p), spec: m[1] });
    }
  }
  return out;
}

describe('layout', () => {
  it('control-plane/core imports no transport: no grpc-js, ws, http(s)/http2, nor anything under transports/', () => {
    const bad = importsUnder(path.join(ROOT, 'control-plane', 'core')).filter(
      ({ spec }) => /^@grpc\/grpc-js$|^ws$|^node:https?$|^node:http2$|^https?$|^http2$|transports\//.test(spec),
    );
    assert.deepEqual(bad, [], 'the core reaches transports only through its ports');
    // And the check itself finds imports (it is not vacuous).
    assert.ok(importsUnder(path.join(ROOT, 'control-plane', 'core')).some((i) => i.spec === '../../protocol'));
  });

  it('app/agent never imports electron', () => {
    const bad = importsUnder(path.join(ROOT, 'app', 'agent')).filter(({ spec }) => spec === 'electron' || spec.startsWith('electron/'));
    assert.deepEqual(bad, []);
  });

  it('app/main never imports cli/, and sdk/ imports neither cli/ nor app/ nor control-plane/', () => {
    const isCli = (spec: string) => /(^|\/)cli\//.test(spec);
    const main = importsUnder(path.join(ROOT, 'app', 'main'));
    assert.deepEqual(main.filter(({ spec }) => isCli(spec)), [], 'the desktop app connects through the SDK, not the CLI');
    const sdk = importsUnder(path.join(ROOT, 'sdk'));
    assert.deepEqual(sdk.filter(({ spec }) => isCli(spec) || /(^|\/)(app|control-plane)\//.test(spec)), []);
    assert.ok(main.some((i) => i.spec === '../../sdk/connect'), 'the check finds the imports it looks at');
  });

  it('the CLI uses the SDK through its public API only: sdk/index.ts, and none of the members marked @internal', () => {
    const cli = importsUnder(path.join(ROOT, 'cli'));
    const deep = cli.filter(({ spec }) => /(^|\/)sdk\/./.test(spec));
    assert.deepEqual(deep, [], 'import the SDK as ../sdk (sdk/index.ts), not its modules');
    assert.ok(cli.some((i) => i.spec === '../../sdk'), 'the check finds the imports it looks at');
    // The client's members for the SDK's own modules (sdk/client.ts, @internal) and the attachment's transport.
    const internal = /\.(transport|unary|authUnary|serverStream|duplex|machineOr|metadata|onClose)\(|TerminalAttachment\.start\(/;
    const uses: string[] = [];
    const scan = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) scan(p);
        else if (e.name.endsWith('.ts')) {
          fs.readFileSync(p, 'utf8').split('\n').forEach((line, i) => {
            if (internal.test(line)) uses.push(`${path.relative(ROOT, p)}:${i + 1}: ${line.trim()}`);
          });
        }
      }
    };
    scan(path.join(ROOT, 'cli'));
    assert.deepEqual(uses, [], 'SDK internals used by the CLI');
  });
});
