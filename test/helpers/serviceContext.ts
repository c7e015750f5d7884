// A service context for the agent-service code (cli/service/manage.ts) with
// its system commands recorded instead of run: systemctl, journalctl,
// loginctl and launchctl are the edge these machines cannot exercise.
import path from 'node:path';
import type { ServiceContext } from '../../cli/service/manage';
import type { RunResult, ServiceRunner } from '../../cli/service/runner';

/** A runner that records each call and answers from `answers` (by "cmd arg…" prefix), else exit 0. */
export function fakeRunner(answers: Record<string, Partial<RunResult>> = {}): ServiceRunner & { calls: string[] } {
  const calls: string[] = [];
  const answer = (line: string): RunResult => {
    const key = Object.keys(answers).find((k) => line.startsWith(k));
    return { code: 0, stdout: '', stderr: '', ...(key ? answers[key] : {}) };
  };
  return {
    calls,
    run: async (cmd, args) => {
      calls.push([cmd, ...args].join(' '));
      return answer([cmd, ...args].join(' '));
    },
    interactive: async (cmd, args) => {
      calls.push([cmd, ...args].join(' '));
      return answer([cmd, ...args].join(' ')).code;
    },
  };
}

export function context(dir: string, o: Partial<ServiceContext> = {}): ServiceContext {
  return {
    platform: 'linux',
    runner: fakeRunner(),
    uid: 0,
    env: {},
    home: path.join(dir, 'home'),
    systemUnitDir: path.join(dir, 'etc'),
    userUnitDir: path.join(dir, 'home', '.config', 'systemd', 'user'),
    systemStateDir: path.join(dir, 'var-lib', 'cmdop-agent'),
    lookupUser: (u) => ({ uid: process.getuid!(), gid: process.getgid!(), group: `${u}-group` }),
    version: 'VERSION',
    node: '/usr/bin/node',
    agentBin: '/opt/cmdop/bin/cmdop-agent.js',
    ...o,
  };
}
