// A measuring preload for the auth bench's control plane (`node -r
// dist/bench/auditProbe.js`, with BENCH_AUDIT_PROBE=FILE in its environment;
// never loaded by the product itself). It wraps AuthRepo.audit, unchanged in
// what it does, and times every call that records an `input` message: the
// cost of one audit insert where it really happens, on the control plane's
// event loop between keystrokes, rather than in a hot loop. On SIGUSR2 it
// writes the durations since the last SIGUSR2 (µs, JSON) to FILE.N (N = 1,
// 2, ...) and starts over.
//
// The bench side is AuditProbe (below), used by bench/authCost.ts.
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { AuthRepo } from '../control-plane/db';
import { sleep } from './procs';

// Only where asked: the bench process imports this module too (for AuditProbe) and never sets it.
const out = process.env.BENCH_AUDIT_PROBE;
if (out) install(out);

function install(file: string): void {
  const audit = AuthRepo.prototype.audit;
  let samples: number[] = [];
  let seq = 0;
  AuthRepo.prototype.audit = function (this: AuthRepo, e) {
    const t0 = performance.now();
    try {
      return audit.call(this, e);
    } finally {
      if (e.action === 'input') samples.push((performance.now() - t0) * 1000);
    }
  };
  process.on('SIGUSR2', () => {
    const f = `${file}.${++seq}`;
    fs.writeFileSync(`${f}.tmp`, JSON.stringify(samples));
    fs.renameSync(`${f}.tmp`, f);
    samples = [];
  });
}

/** The bench's handle on a probed control plane. */
export class AuditProbe {
  private seq = 0;

  /** `node` arguments and environment for the control plane that `file` and the probe are for. */
  static options(file: string): { nodeArgs: string[]; env: NodeJS.ProcessEnv } {
    // No launcher in front (cli/relaunch.ts): SIGUSR2 must reach the control plane itself, not a parent that loaded the probe too.
    return { nodeArgs: ['-r', __filename], env: { BENCH_AUDIT_PROBE: file, CMDOP_RELAUNCH: '0' } };
  }

  constructor(
    private readonly pid: number,
    private readonly file: string,
  ) {}

  /** The `input` audit calls' durations (µs) since the last take(), and starts over. */
  async take(): Promise<number[]> {
    const f = `${this.file}.${++this.seq}`;
    process.kill(this.pid, 'SIGUSR2');
    for (let waited = 0; !fs.existsSync(f); waited += 10) {
      if (waited > 10_000) throw new Error(`the audit probe in pid ${this.pid} wrote no ${f}`);
      await sleep(10);
    }
    const us = JSON.parse(fs.readFileSync(f, 'utf8')) as number[];
    fs.rmSync(f, { force: true });
    return us;
  }
}
