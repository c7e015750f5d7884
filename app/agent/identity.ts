// The agent's stable identity: an agent_id generated once and kept in its
// state directory, so a restarted agent is recognised as the same machine.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface AgentIdentity {
  agentId: string;
}

export function loadIdentity(stateDir: string): AgentIdentity {
  const file = path.join(stateDir, 'agent.json');
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (typeof parsed.agentId === 'string' && parsed.agentId) return { agentId: parsed.agentId };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`cannot read the agent identity ${file}: ${(e as Error).message}`);
    }
  }
  const identity = { agentId: randomUUID() };
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, JSON.stringify(identity, null, 2) + '\n', { mode: 0o600 });
  return identity;
}
