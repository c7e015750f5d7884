// `cmdop connect`, run (its options are in ../commands/connect.ts).
import type { Command } from 'commander';
import { fail } from '../output';
import { runInteractive } from '../interactive';
import { clientFor } from '../connection';

export async function connect(machine: string, o: { terminal?: string }, cmd: Command): Promise<void> {
  const client = await clientFor(cmd, { machine });
  const cols = process.stdout.columns || 80;
  const rows = process.stdout.rows || 24;
  const a = await (o.terminal
    ? client.terminal.attach(o.terminal, { mode: 'operator' })
    : client.terminal.open({ cols, rows })
  ).catch((e) => fail(e.message, 255));
  if (o.terminal && process.stdout.isTTY) a.resize(cols, rows).catch(() => {});
  runInteractive(a, { machine, input: true, reattachHint: true });
}
