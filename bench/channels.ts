// Interactive shells as ShellChannels: a CMDOP terminal through the SDK,
// and `ssh -tt` as a child process with pipes.
import type { TerminalAttachment } from '../sdk';
import type { ShellChannel } from './echo';
import { ProcessSet, Tail } from './procs';
import type { SshPeer } from './sshPeer';

export function sdkShellChannel(a: TerminalAttachment): ShellChannel {
  return {
    write(text) {
      // Not awaited: the echo is the answer being timed, not the control plane's `accepted`.
      // A refused input is said at once; the wait for its echo then fails on its own.
      a.write(text).catch((e: Error) => process.stderr.write(`[bench] input refused by CMDOP: ${e.message}\n`));
    },
    onOutput(cb) {
      const listener = (d: Uint8Array) => cb(Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('latin1'));
      a.on('output', listener);
      return () => a.off('output', listener);
    },
  };
}

export interface SshShell extends ShellChannel {
  close(): void;
}

/** `ssh -tt host` with no command: the user's login shell in a PTY, as a terminal would get it. */
export function sshShellChannel(peer: SshPeer, procs: ProcessSet): SshShell {
  const child = procs.spawn(peer.bin, peer.args({ tty: true }), { stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr = new Tail();
  child.stderr!.on('data', (d: Buffer) => stderr.push(d));
  child.stdin!.on('error', () => {}); // EPIPE if ssh is gone; the echo wait then times out with its own message
  child.stdout!.setEncoding('latin1');
  child.stdout!.resume(); // output nobody listens for (the login banner, the prompt) is dropped, never piled up
  return {
    write(text) {
      child.stdin!.write(text, 'latin1');
    },
    onOutput(cb) {
      child.stdout!.on('data', cb);
      return () => child.stdout!.off('data', cb);
    },
    close() {
      child.stdin!.end();
      if (child.exitCode === null) child.kill('SIGTERM');
    },
  };
}
