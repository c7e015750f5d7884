// The comparison peer: a throwaway OpenSSH server on a loopback port, with
// its own host key, client key, config and pid file in the bench's temp dir.
// It runs in the foreground (-D) as a child of the bench, so it is stopped
// with everything else. Nothing of the system's ssh setup is read or changed
// (except /run/sshd, which sshd insists on for privilege separation).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ProcessSet, Tail, runTimed, waitForLine } from './procs';

const SSHD = '/usr/sbin/sshd';
const SSH = 'ssh';
const SSH_KEYGEN = 'ssh-keygen';

export interface SshPeer {
  readonly port: number;
  /** e.g. "OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 ..." */
  readonly version: string;
  /** Arguments for `ssh` up to and including the destination; append the remote command, if any. */
  args(opts: { tty: boolean }): string[];
  readonly bin: string;
  /** The listening sshd: each connection's processes are its children. */
  readonly pid: number;
  /** sshd's recent log lines, for error messages. */
  log(): string;
}

/** Why the ssh comparison cannot run here, or undefined when it can. */
export function sshMissing(): string | undefined {
  if (!fs.existsSync(SSHD)) return `${SSHD} not found`;
  for (const tool of [SSH, SSH_KEYGEN]) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} not found`;
    }
  }
  return undefined;
}

export const SSH_INSTALL_HINT = 'apt-get install -y openssh-server openssh-client';

/** A port that was free a moment ago (sshd cannot be told to pick one and report it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function keygen(file: string): void {
  execFileSync(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', 'cmdop-bench', '-f', file], { stdio: 'ignore' });
}

function writeConfig(dir: string, port: number): string {
  const config = path.join(dir, 'sshd_config');
  fs.writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${path.join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      'UsePAM no',
      'StrictModes no', // the temp dir's permissions are not sshd's business here
      'PermitRootLogin yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      // Quiet logins: the echo test types into a shell, banners would only add noise.
      'PrintMotd no',
      'PrintLastLog no',
      'UseDNS no',
      '',
    ].join('\n'),
  );
  return config;
}

/** Starts sshd in `dir` and checks that a login works. */
export async function startSshPeer(dir: string, procs: ProcessSet): Promise<SshPeer> {
  fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege-separation directory
  keygen(path.join(dir, 'host_key'));
  keygen(path.join(dir, 'client_key'));
  fs.copyFileSync(path.join(dir, 'client_key.pub'), path.join(dir, 'authorized_keys'));
  const port = await freePort();
  const config = writeConfig(dir, port);

  // -D: stay in the foreground (our child); -e: log to stderr (drained into `log`).
  const sshd = procs.spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  const log = new Tail();
  sshd.stderr!.on('data', (d: Buffer) => log.push(d));
  await waitForLine(sshd, 'stderr', /Server listening on/);

  const peer: SshPeer = {
    port,
    bin: SSH,
    pid: sshd.pid!,
    version: sshVersion(),
    log: () => log.toString(),
    args: ({ tty }) => [
      '-F', '/dev/null', // no user or system client config: the same ssh everywhere
      '-i', path.join(dir, 'client_key'),
      '-p', String(port),
      '-o', 'StrictHostKeyChecking=no',
      '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'BatchMode=yes',
      '-o', 'LogLevel=ERROR', // no "Permanently added ..." on every run
      ...(tty ? ['-tt'] : []),
      'root@127.0.0.1',
    ],
  };
  const check = await runTimed(SSH, [...peer.args({ tty: false }), 'true'], { stdout: 'count', timeoutMs: 20_000, procs });
  if (check.code !== 0) {
    throw new Error(`ssh login to the bench sshd failed (exit ${check.code}): ${check.stderr}\nsshd log: ${log}`);
  }
  return peer;
}

/** `ssh -V` prints its version on stderr. */
function sshVersion(): string {
  return spawnSync(SSH, ['-V'], { encoding: 'utf8' }).stderr.trim();
}
