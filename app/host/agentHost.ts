// The desktop app's agent, in a process of its own (an Electron
// utilityProcess; under plain Node a child_process.fork), started by
// app/main/hosts.ts with the server heap flag (lib/serverFlags.ts) and, as
// `cmdop agent` does, glibc's freed memory kept for reuse
// (lib/mallocReuse.ts). The main process hands it the credential (the
// keychain is the main process's) and forwards sleep and wake; it reports
// the agent's status back (AgentCalls, AgentEvent in channel.ts). Its PTYs,
// screen worker and file transfers never share an event loop with the tray.
import { Agent } from '../agent';
import { createLogger } from '../../lib/logger';
import { keepFreedMemoryForReuse } from '../../lib/mallocReuse';
import { connectionTo, pinnedCredentials } from '../../sdk/connect';
import type { AgentCalls, AgentEvent, AgentStatusEvent } from './channel';
import { serveHost } from './serve';

keepFreedMemoryForReuse();

let agent: Agent | undefined;

const running = (): Agent => {
  if (!agent) throw new Error('the agent has not started');
  return agent;
};

const status = (a: Agent): AgentStatusEvent => ({ event: 'status', status: a.status, sessionId: a.sessionId });

const channel = serveHost<AgentCalls, AgentEvent>(
  {
    async start(o) {
      if (agent) throw new Error('the agent is already running');
      const log = createLogger('desktop', o.logLevel);
      // Trust as the main process resolved it: the same known_servers.json, pinned there on first use.
      const conn = await connectionTo(o.server, {
        onFirstUse: (server, fp) => log.info({ server, fingerprint: fp }, `first connection to ${server}: pinned its certificate SHA256 ${fp}`),
        onNotice: (message) => log.warn(message),
      });
      const a = new Agent({
        server: conn.address.target,
        token: o.token,
        credentials: conn.address.tls ? pinnedCredentials(conn) : undefined,
        channelOptions: conn.channelOptions,
        name: o.name,
        stateDir: o.stateDir,
        logger: log.child({ part: 'agent' }),
      });
      agent = a;
      a.on('status', () => channel.emit(status(a)));
      a.on('connected', () => channel.emit(status(a)));
      a.on('fatal', (e: Error) => channel.emit({ event: 'fatal', message: e.message }));
      a.on('session-ended', ({ reason, terminals }: { reason: string; terminals: string[] }) =>
        channel.emit({ event: 'session-ended', reason, terminals }),
      );
      await a.start();
      return { sessionId: a.sessionId, pid: process.pid, execArgv: process.execArgv };
    },
    async suspend({ reason }) {
      const a = running();
      a.suspend(reason);
      return status(a);
    },
    async resume() {
      const a = running();
      a.resume();
      return status(a);
    },
  },
  async () => {
    await agent?.stop();
  },
);
