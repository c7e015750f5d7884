// The console's machines view shows each agent's release and uptime, and
// the notice for an agent older than the control plane's protocol (the
// machines list's agent_notice; test/versions.test.ts checks the list and
// `cmdop machines` without a browser).
import assert from 'node:assert/strict';
import type { BrowserContext } from '@playwright/test';
import { consoleContext, test } from '../fixtures';
import type { Agent as AgentType } from '../../app/agent';
import type { Cluster } from '../../test/helpers/cluster';

const VERSION: string = require('../../package.json').version;
// The agent as built (dist/), as the rest of the suite runs it: its own
// version lookup assumes the build's layout. Typed from the source; the
// node:test suite starts the same older agent (test/versions.test.ts).
const { startOlderAgent } = require('../../dist/test/helpers/olderAgent') as typeof import('../../test/helpers/olderAgent');

test.describe.configure({ mode: 'serial' });
test.use({ clusterSetup: { group: 'versions' } });

test.describe('browser console: agent versions', () => {
  let c: Cluster;
  let old: AgentType;
  let context: BrowserContext;
  test.beforeAll(async ({ cluster, browser }) => {
    c = cluster;
    old = await startOlderAgent(c);
    context = await consoleContext(browser);
  });
  test.afterAll(async () => {
    await context?.close();
    await old?.stop();
  });

  test("the machines view shows version, uptime, and the notice for the older agent", async () => {
    const page = await context.newPage();
    const web = (await c.client.auth.serverInfo()).webUrl;
    await page.goto(`${web}/#token=${c.token}`);
    const row = (m: string) => `[data-testid=machine-row][data-machine="${m}"]`;
    await page.waitForSelector(`${row('oldbox')} [data-testid=agent-notice]`, { timeout: 15_000 });
    assert.match((await page.textContent(`${row('box')} [data-testid=agent-version]`)) ?? '', new RegExp(`^agent ${VERSION.replace(/\./g, '\\.')} · up \\d+[smhd]`));
    assert.equal(await page.$(`${row('box')} [data-testid=agent-notice]`), null);
    assert.match(
      (await page.textContent(`${row('oldbox')} [data-testid=agent-notice]`)) ?? '',
      /^agent \S+ speaks protocol 1, older than this control plane's protocol \d+: upgrade it$/,
    );
  });
});
