// Control-plane memory under a flood: a shell terminal runs `yes` for a few
// seconds while an SDK operator attached to it consumes the output as fast
// as it can; the control plane's RSS is sampled the whole time. The bounds
// in docs/ARCHITECTURE.md ("Flow control" and "5. Delivery guarantees") say
// it must stay bounded.
import { performance } from 'node:perf_hooks';
import type { CmdopClient } from '../sdk';
import { rssMb, sampleRss } from './procfs';
import { sleep } from './procs';
import { ShellChannel, waitForOutput } from './echo';
import { sdkShellChannel } from './channels';

export interface FloodResult {
  controlPlaneIdleMb: number;
  controlPlaneMaxMb: number;
  agentMaxMb: number;
  /** Rate the operator received output at, MB/s. */
  receivedMBps: number;
  /** From Ctrl-C to the terminal's exit, ms; undefined if it did not stop. */
  stopMs: number | undefined;
  /** Output ranges the operator was told it skipped (an operator should never skip). */
  gaps: number;
  problems: string[];
}

export async function measureFlood(
  client: CmdopClient,
  pids: { controlPlane: number; agent: number },
  seconds: number,
  sampleMs: number,
): Promise<FloodResult> {
  const problems: string[] = [];
  const a = await client.terminal.open({ cols: 80, rows: 24 });
  try {
    let gaps = 0;
    a.on('gap', () => gaps++);
    const ch: ShellChannel = sdkShellChannel(a);
    const ready = waitForOutput(ch, 'READY', 20_000);
    ch.write("echo RE''ADY\r");
    await ready;
    await sleep(500);
    const controlPlaneIdleMb = rssMb(pids.controlPlane);

    let bytes = 0;
    a.on('output', (d) => (bytes += d.length));
    const sampler = sampleRss([pids.controlPlane, pids.agent], sampleMs);
    const t0 = performance.now();
    ch.write('exec yes\r'); // exec: Ctrl-C then ends the terminal, which marks the flood's end
    await sleep(seconds * 1000);
    const floodBytes = bytes;
    const floodMs = performance.now() - t0;

    const tStop = performance.now();
    ch.write('\x03');
    const stopped = await Promise.race([a.done.then(() => true, () => true), sleep(15_000).then(() => false)]);
    const stopMs = stopped ? performance.now() - tStop : undefined;
    const max = sampler.stop();
    if (!stopped) {
      problems.push('flood: Ctrl-C did not end `yes` within 15 s');
      await a.signal('SIGKILL').catch(() => {});
    }
    if (gaps > 0) problems.push(`flood: the operator was told of ${gaps} skipped output range(s); operators should pace, never skip`);
    return {
      controlPlaneIdleMb,
      controlPlaneMaxMb: max.get(pids.controlPlane)!,
      agentMaxMb: max.get(pids.agent)!,
      receivedMBps: floodBytes / 1e6 / (floodMs / 1000),
      stopMs,
      gaps,
      problems,
    };
  } finally {
    const id = a.terminalId;
    a.close();
    await client.terminal.close(id).catch(() => {}); // already exited: nothing to close
  }
}
