// The desktop app's embedded control plane, in a process of its own (an
// Electron utilityProcess; under plain Node a child_process.fork), started by
// app/main/hosts.ts with the server heap flag (lib/serverFlags.ts). It
// answers the calls of ControlPlaneCalls (channel.ts) through the control
// plane's public API (control-plane/server.ts), never its store. A flood of
// terminal output or a file transfer here never shares an event loop with
// the tray and the windows.
import { parseListen, startControlPlane, type ControlPlane } from '../../control-plane/server';
import { createLogger } from '../../lib/logger';
import type { ControlPlaneCalls } from './channel';
import { serveHost } from './serve';

let cp: ControlPlane | undefined;

const running = (): ControlPlane => {
  if (!cp) throw new Error('the control plane has not started');
  return cp;
};

serveHost<ControlPlaneCalls, never>(
  {
    async start(o) {
      if (cp) throw new Error('the control plane is already running');
      const logger = createLogger('desktop', o.logLevel).child({ part: 'control-plane' });
      cp = await startControlPlane({ listen: o.listen, dataDir: o.dataDir, gracePeriodS: o.gracePeriodS, logger });
      const { host } = parseListen(o.listen);
      return {
        address: cp.address,
        boundListen: `${host.includes(':') ? `[${host}]` : host}:${cp.port}`,
        issuer: cp.issuer,
        adminTokenFile: cp.adminTokenFile,
        pid: process.pid,
        execArgv: process.execArgv,
      };
    },
    issueToken: (o) => running().adminTokens.issue(o.kind, { name: o.name, machine: o.machine, expiresInS: o.expiresInS }),
    revokeToken: async ({ id }) => ({ streamsClosed: await running().adminTokens.revoke(id) }),
  },
  async () => {
    // Agents are told to come back (to the next process, should there be one); sessions stay open in the store.
    await cp?.close();
  },
);
