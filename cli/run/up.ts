// `cmdop up`, run (its options are in ../commands/up.ts).
import { fork } from 'node:child_process';
import { startControlPlane } from '../../control-plane/server';
import { DEFAULT_SERVER, SessionState, TokenKind } from '../../protocol';
import { defaultAgentStateDir, defaultDataDir } from '../../lib/paths';
import { fail } from '../output';
import { createLogger } from '../../lib/logger';

export async function up(o: { listen: string; dataDir: string; name: string }): Promise<void> {
  // A person is reading this terminal: warnings and errors only, unless asked.
  const level = process.env.CMDOP_LOG_LEVEL ?? 'warn';
  const cp = await startControlPlane({ listen: o.listen, dataDir: o.dataDir, logger: createLogger('control-plane', level) }).catch((e: Error) =>
    fail(/EADDRINUSE|address already in use/i.test(e.message)
      ? `${o.listen} is in use: is \`cmdop up\` already running? (choose another with --listen)`
      : e.message),
  );
  // The agent runs in its own process, as it would on any other machine,
  // enrolled as the local admin's machine with a short-lived one-time
  // token (spent only if it has no working credential yet).
  const admin = await cp.access.firstAdmin();
  const enroll = await cp.access.issue(TokenKind.ENROLLMENT, admin, { name: `cmdop up ${o.name}`, machine: o.name, expiresInS: 600 });
  const agent = fork(process.argv[1], ['agent', '--server', cp.address, '--name', o.name, '--state-dir', defaultAgentStateDir()], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, CMDOP_LOG_LEVEL: level, CMDOP_ENROLL_TOKEN: enroll.token },
  });
  let stopping = false;
  agent.on('exit', (code) => {
    if (!stopping) {
      process.stderr.write(`cmdop: the local agent exited (code ${code}); the control plane keeps running\n`);
    }
  });
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const m = (await cp.registry.listMachines()).find((x) => x.name === o.name);
    if (m?.state === SessionState.CONNECTED) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // The console, signed in as the local admin without a password: an API
  // token in the URL's fragment, which browsers never send to a server;
  // the console keeps it in sessionStorage and clears the address bar.
  // It lasts 12 h and is revoked when this process stops.
  const consoleToken = await cp.access.issue(TokenKind.API, admin, { name: 'console (cmdop up)', expiresInS: 12 * 3600 });
  cp.access.store.audit({
    actor: admin.name,
    action: 'token-create',
    ok: true,
    detail: `${consoleToken.row.id} console (cmdop up) for ${admin.name}`,
    peer: 'cmdop up',
    machine: '',
    terminalId: '',
    mode: 0,
    commandId: '',
  });
  // The CLI finds the default data dir's admin.token by itself; anything else needs saying.
  const env =
    (cp.address === DEFAULT_SERVER ? '' : `CMDOP_SERVER=${cp.address} `) +
    (o.dataDir === defaultDataDir() ? '' : `CMDOP_TOKEN=$(cat ${cp.adminTokenFile}) `);
  process.stdout.write(
    [
      `CMDOP is up.`,
      `  control plane  ${cp.address}   data: ${o.dataDir}`,
      `  agent          ${o.name}`,
      ``,
      `Console: ${cp.issuer}/#token=${consoleToken.token}`,
      `  (signs you in as admin for 12 h, until Ctrl-C; do not share this link)`,
      ``,
      `Next, in another terminal:`,
      `  ${env}npx cmdop machines`,
      `  ${env}npx cmdop connect ${o.name}`,
      `  ${env}npx cmdop exec ${o.name} -- uname -a`,
      ``,
      `Ctrl-C stops both.`,
      ``,
    ].join('\n'),
  );
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await cp.access.store.revokeToken(consoleToken.row.id);
    agent.kill('SIGTERM');
    await new Promise((r) => (agent.exitCode !== null ? r(null) : agent.once('exit', r)));
    await cp.close();
    process.exit(0);
  };
  // on, not once: a Ctrl-C reaches this process twice when it runs under cli/relaunch.ts.
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
