// The agent-only package (packages/agent, issue 18): what `cmdop-agent` can
// load needs exactly the npm packages that package lists, at the root's
// versions, and none of the control plane's or the desktop app's.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
// Plain JS under scripts/, run by `node scripts/pack-agent.js` too.
const packAgent = require(path.join(ROOT, 'scripts', 'pack-agent.js')) as {
  closure(): { files: string[]; packages: Map<string, string> };
  check(manifest: unknown, root: unknown, packages: Map<string, string>): void;
};

describe('the agent-only package', () => {
  it('lists exactly what the agent requires, at the root package.json versions', () => {
    const { files, packages } = packAgent.closure();
    const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'packages', 'agent', 'package.json'), 'utf8'));
    const root = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    assert.doesNotThrow(() => packAgent.check(manifest, root, packages));
    for (const heavy of ['better-sqlite3', 'oidc-provider', 'pg', 'kysely', 'nats', 'electron', 'selfsigned', 'ws']) {
      assert.ok(!packages.has(heavy), `the agent requires ${heavy} (from dist/${packages.get(heavy)})`);
    }
    assert.ok(!files.some((f) => f.startsWith('control-plane/') || f.startsWith('app/main/') || f.startsWith('app/renderer/')), 'no control-plane or desktop code');
    for (const need of ['cli/run/agent.js', 'cli/run/agentService.js', 'cli/run/doctor.js', 'app/agent/screenWorker.js']) assert.ok(files.includes(need), need);
  });
});
