// Runs a long-lived server command (`cmdop server`, `cmdop up`) in a node
// started with the V8 flags it needs, when the node running it lacks them.
//
// Why a second process: the flag that matters, --initial-old-space-size,
// is read once when V8 sets up its heap. Node 20 refuses it in NODE_OPTIONS,
// v8.setFlagsFromString() at run time changes nothing (measured: the same
// full-collection storms with it), and npm's bin shims give no portable
// place for node flags (`env -S` is missing from busybox).
//
// The flag and why it matters: lib/serverFlags.ts (the desktop app starts
// its control-plane and agent processes with it too, app/main/hosts.ts).
//
// The parent only waits: it passes SIGINT, SIGTERM and SIGHUP on and exits
// as the child does; the child exits if the parent dies (its IPC channel
// closes), so no control plane is left behind holding the port.
import { spawn } from 'node:child_process';
import { SERVER_NODE_FLAGS } from '../lib/serverFlags';

export { SERVER_NODE_FLAGS };

/** Set in the child, so it never relaunches again. */
const MARK = 'CMDOP_RELAUNCHED';

/**
 * True when the command is now running in a child (the caller must do
 * nothing more); false when this process should run it itself: it already
 * has the flags, or CMDOP_RELAUNCH=0 says not to (to measure what it is worth).
 */
export function relaunchWithNodeFlags(flags: readonly string[], env: NodeJS.ProcessEnv = process.env): boolean {
  if (env[MARK]) {
    // Not passed on: shells of an agent that `cmdop up` forks from here would inherit it.
    delete env[MARK];
    watchParent();
    return false;
  }
  if (env.CMDOP_RELAUNCH === '0' || flags.every((f) => process.execArgv.includes(f))) return false;
  const child = spawn(process.execPath, [...process.execArgv, ...flags, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...env, [MARK]: '1' },
  });
  const pass = (sig: NodeJS.Signals) => () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, pass(sig));
  child.on('error', (e) => {
    process.stderr.write(`cmdop: could not start ${process.execPath}: ${e.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      // Die the same way, so whoever waits on this process sees the signal.
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
  return true;
}

/** In the child: the parent gone (even by SIGKILL) closes the IPC channel; the command stops as on SIGTERM. */
function watchParent(): void {
  if (!process.channel) return;
  process.channel.unref(); // the channel alone must not keep the process alive
  process.once('disconnect', () => {
    if (process.listenerCount('SIGTERM') > 0) process.emit('SIGTERM');
    else process.exit(1); // still starting: nothing to close gracefully
  });
}
