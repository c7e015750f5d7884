// An agent of an older release, as the control plane sees it: a real agent
// that claims protocol 1 (release 0.1.0), connected to `c` as "oldbox".
import path from 'node:path';
import { Agent } from '../../app/agent';
import { createLogger } from '../../lib/logger';
import { type Cluster, eventually, tempDir } from './cluster';

export async function startOlderAgent(c: Cluster, name = 'oldbox'): Promise<Agent> {
  const old = new Agent({
    server: c.server,
    token: await c.agentToken(name),
    name,
    stateDir: path.join(tempDir('cmdop-versions-'), name),
    protocolVersion: 1,
    logger: createLogger('agent', 'silent'),
  });
  await old.start();
  await eventually(async () => (await c.client.machines.list()).find((m) => m.name === name), 10_000, `${name} listed`);
  return old;
}
