// The one door to the service manager: every systemctl, journalctl,
// launchctl and loginctl call of the service commands and of `cmdop doctor`
// goes through a ServiceRunner, so tests replace it with one that records
// the calls (the real ones cannot run in a test machine's container).
import { spawn } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ServiceRunner {
  /** Runs a command to its end and captures its output. A command that is not installed gives code 127. */
  run(cmd: string, args: string[]): Promise<RunResult>;
  /** Runs a command on this terminal (logs, logs -f) and resolves with its exit code. */
  interactive(cmd: string, args: string[]): Promise<number>;
}

export const systemRunner: ServiceRunner = {
  run: (cmd, args) =>
    new Promise((resolve) => {
      const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('error', (e) => resolve({ code: 127, stdout, stderr: e.message }));
      p.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    }),
  interactive: (cmd, args) =>
    new Promise((resolve) => {
      const p = spawn(cmd, args, { stdio: 'inherit' });
      p.on('error', (e) => {
        process.stderr.write(`cmdop: cannot run ${cmd}: ${e.message}\n`);
        resolve(127);
      });
      p.on('close', (code) => resolve(code ?? 1));
    }),
};
