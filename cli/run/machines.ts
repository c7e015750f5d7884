// `cmdop machines`, run (its options are in ../commands/machines.ts).
import type { Command } from 'commander';
import { MachineInfo, SessionState, TerminalKind, protocolOf } from '../../protocol';
import { uptimeText } from '../../protocol/liveness';
import { fail, table } from '../output';
import { clientFor } from '../connection';

export async function listMachines(o: { json?: boolean }, cmd: Command): Promise<void> {
  const client = await clientFor(cmd);
  const machines = await client.machines.list().catch((e) => fail(e.message));
  client.close();
  if (o.json) {
    process.stdout.write(JSON.stringify(machines.map(machineJson), null, 2) + '\n');
    return;
  }
  if (machines.length === 0) {
    process.stdout.write('no machines yet: start an agent (cmdop agent, or cmdop up on this machine)\n');
    return;
  }
  process.stdout.write(formatMachines(machines));
}

function stateText(m: MachineInfo): string {
  const s = SessionState[m.state];
  if ((m.state === SessionState.GRACE_PERIOD || m.state === SessionState.BACKGROUND) && m.graceDeadlineMs) {
    return `${s} (${Math.max(0, Math.round((m.graceDeadlineMs - Date.now()) / 1000))} s left)`;
  }
  return s;
}

export function machineJson(m: MachineInfo) {
  return {
    ...m,
    state: SessionState[m.state],
    secondsLeft: m.graceDeadlineMs ? Math.max(0, Math.round((m.graceDeadlineMs - Date.now()) / 1000)) : undefined,
    agentVersion: m.capabilities?.version || undefined,
    agentProtocol: m.capabilities ? protocolOf(m.capabilities.protocolVersion) : undefined,
    agentUptimeS: m.agentUptimeMs ? Math.floor(m.agentUptimeMs / 1000) : undefined,
    agentNotice: m.agentNotice || undefined,
    terminals: m.terminals.map((t) => ({ ...t, spec: t.spec && { ...t.spec, kind: TerminalKind[t.spec.kind] } })),
  };
}

function formatMachines(machines: MachineInfo[]): string {
  const rows = [['NAME', 'STATE', 'OS/ARCH', 'VERSION', 'UPTIME', 'CPU', 'MEM', 'DISK', 'BATTERY', 'TERMINALS', 'SINCE']];
  for (const m of machines) {
    const hb = m.lastHeartbeat;
    const pct = (n: number | undefined) => (hb && n !== undefined ? `${Math.round(n)}%` : '-');
    const live = m.terminals.filter((t) => !t.exited);
    rows.push([
      m.name,
      stateText(m),
      m.capabilities ? `${m.capabilities.os}/${m.capabilities.arch}` : '-',
      (m.capabilities?.version || '-') + (m.agentNotice ? ' (old)' : ''),
      m.agentUptimeMs ? uptimeText(m.agentUptimeMs) : '-',
      pct(hb?.cpuPercent),
      pct(hb?.memoryPercent),
      pct(hb?.diskPercent),
      hb?.batteryPercent !== undefined ? `${Math.round(hb.batteryPercent)}%${hb.charging ? '+' : ''}` : '-',
      live.length ? live.map((t) => t.terminalId).join(',') : '-',
      new Date(m.stateSinceMs).toISOString().replace('T', ' ').slice(0, 19),
    ]);
  }
  const reasons = machines
    .filter((m) => m.state !== SessionState.CONNECTED)
    .map((m) => `  ${m.name}: ${m.stateReason}`);
  const notices = machines.filter((m) => m.agentNotice).map((m) => `  ${m.name}: ${m.agentNotice}`);
  const notes = [...reasons, ...notices];
  return table(rows) + (notes.length ? `\n${notes.join('\n')}\n` : '');
}

