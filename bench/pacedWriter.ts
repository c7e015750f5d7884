// A paced, self-describing output stream for the observer figure (issue 3):
// run on the agent as a terminal's command, it waits for a flag file, then
// writes fixed-size blocks to stdout at a set rate for a set time. Each block
// starts with a header carrying its number and the time it was written, so a
// receiver can check every byte it got and measure its lag; the rest of the
// block is a pattern that depends on the block number (see streamFormat.ts).
//
//   node pacedWriter.js FLAG SUMMARY BLOCK_BYTES BYTES_PER_S SECONDS
//
// Writes are synchronous (stdout is a pipe, or a PTY): when the agent stops
// reading (flow control), the writer blocks, falls behind its schedule, and
// the header's time is when the block was actually handed over. SUMMARY gets
// a JSON line: blocks, bytes, start/end (ms since the epoch), CPU seconds.
import fs from 'node:fs';
import { blockBytesFor, now } from './streamFormat';

function main(): void {
  const [flag, summary, blockArg, rateArg, secondsArg] = process.argv.slice(2);
  const blockBytes = Number(blockArg);
  const rate = Number(rateArg);
  const seconds = Number(secondsArg);
  const total = Math.max(1, Math.round((rate * seconds) / blockBytes));
  const giveUp = Date.now() + 300_000; // a bench that died never sets the flag
  const waitForFlag = () => {
    if (Date.now() > giveUp) process.exit(3);
    if (!fs.existsSync(flag)) return void setTimeout(waitForFlag, 2);
    run();
  };
  const run = () => {
    const start = now();
    let sent = 0;
    let maxBehindMs = 0;
    const tick = () => {
      const t = now();
      // Blocks due by now on the schedule (block k is due at k * blockBytes / rate).
      const due = Math.min(total, Math.floor(((t - start) / 1000) * (rate / blockBytes)) + 1);
      while (sent < due) {
        fs.writeSync(1, blockBytesFor(sent, blockBytes, now()));
        sent++;
      }
      // How late the last block went out against its schedule (flow control, or this process starved).
      maxBehindMs = Math.max(maxBehindMs, now() - (start + ((sent - 1) * blockBytes * 1000) / rate));
      if (sent < total) {
        const nextDue = start + (sent * blockBytes * 1000) / rate;
        setTimeout(tick, Math.max(0, nextDue - now() - 0.5));
        return;
      }
      const cpu = process.cpuUsage();
      const end = now();
      fs.writeFileSync(
        summary,
        JSON.stringify({ blocks: sent, bytes: sent * blockBytes, start, end, cpuS: (cpu.user + cpu.system) / 1e6, maxBehindMs }) + '\n',
      );
    };
    tick();
  };
  waitForFlag();
}

main();
