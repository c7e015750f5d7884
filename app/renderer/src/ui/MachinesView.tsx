// Every machine the token can reach: state (with the time left in
// GRACE_PERIOD/BACKGROUND, and "not responding" once a CONNECTED machine's
// heartbeat is late), OS, the heartbeat's age and cpu/memory/disk/battery as
// sparklines, the agent's release and uptime (and a notice when it speaks an
// older protocol than the control plane's), its running terminals (attach,
// watch, end; tabs closed earlier are here to attach again), a button to open
// a shell, and one to open the machine's file panel (shown under the list).
import { AttachMode, SessionState, type MachineInfo } from '../../../../protocol/generated/cmdop/v1/cmdop';
import { uptimeText } from '../../../../protocol/liveness';
import { MACHINES, canOpen, notResponding, type ConsoleStore, type Liveness, type MetricSeries } from '../state/store';
import { StateBadge } from './badges';
import { Countdown } from './Countdown';
import { FilesPanel } from './FilesPanel';
import { useNow } from './hooks';
import { Sparkline } from './Sparkline';
import { panelId, tabId } from './tabIds';
import { openWatchWindow } from './watchWindow';

export function MachinesView({ store, visible }: { store: ConsoleStore; visible: boolean }) {
  const { machines } = store;
  return (
    <section
      className="machines"
      role="tabpanel"
      id={panelId(MACHINES)}
      aria-labelledby={tabId(MACHINES)}
      data-testid="machines-view"
      hidden={!visible}
    >
      {store.machinesError && <p className="error">Cannot list machines: {store.machinesError}</p>}
      {machines.length === 0 && !store.machinesError && (store.conn.status === 'open' ? <NoMachines /> : <p className="empty dim">Connecting…</p>)}
      {machines.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Machine</th>
              <th>State</th>
              <th>System</th>
              <th>Heartbeat</th>
              <th>Terminals</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {machines.map((m) => (
              <MachineRow key={m.name} m={m} store={store} series={store.metrics.get(m.name)} />
            ))}
          </tbody>
        </table>
      )}
      {store.filesMachine && <FilesPanel key={store.filesMachine} model={store.files(store.filesMachine)} close={() => store.closeFiles()} />}
    </section>
  );
}

/** A new user's first screen: how a machine gets here (README "Running the pieces separately"). */
function NoMachines() {
  return (
    <div className="empty" data-testid="machines-empty">
      <p>
        <strong>No machines yet.</strong> To add one, with the <code>cmdop</code> CLI:
      </p>
      <ol>
        <li>
          Sign the CLI in, as you: <code>cmdop login --server ADDRESS</code> (the control plane's address, e.g.{' '}
          <code>grpcs://cp.example.com:7420</code>).
        </li>
        <li>
          Get a one-time enrollment token (valid for an hour): <code>cmdop agents enroll --name NAME</code>
        </li>
        <li>
          On that machine, enroll it with the token: <code>cmdop agent --server ADDRESS --name NAME --enroll-token TOKEN</code>. It
          connects, appears here, and reconnects by itself from then on.
        </li>
      </ol>
    </div>
  );
}

function MachineRow({ m, store, series }: { m: MachineInfo; store: ConsoleStore; series: MetricSeries | undefined }) {
  const timed = (m.state === SessionState.GRACE_PERIOD || m.state === SessionState.BACKGROUND) && m.graceDeadlineMs > 0;
  const caps = m.capabilities;
  const hasBattery = series?.battery.some((v) => Number.isFinite(v)) ?? false;
  const live = m.terminals.filter((t) => !t.exited);
  const liveness = store.liveness.get(m.name);
  const now = useNow(1000, !!liveness);
  const late = notResponding(m, liveness, now);
  return (
    <tr data-testid="machine-row" data-machine={m.name} data-state={SessionState[m.state]} data-responding={late ? 'no' : 'yes'}>
      <td className="machine-name">
        <strong>{m.name}</strong>
        {caps?.hostname && caps.hostname !== m.name && <div className="dim">{caps.hostname}</div>}
      </td>
      <td>
        <StateBadge state={m.state} testId="machine-state" />
        {late && (
          <>
            {' '}
            <span className="state state-not_responding" data-testid="machine-not-responding" title="its heartbeat is late: the agent may be frozen or cut off">
              not responding
            </span>
          </>
        )}
        {timed && (
          <>
            {' '}
            <Countdown deadlineMs={m.graceDeadlineMs} testId="machine-countdown" />
          </>
        )}
        {m.stateReason && m.state !== SessionState.CONNECTED && <div className="dim reason">{m.stateReason}</div>}
      </td>
      <td>
        <span className="dim">{caps ? `${caps.os}/${caps.arch}` : '–'}</span>
        {caps?.version && (
          <div className="dim" data-testid="agent-version" title="the agent's release, and how long it has been running">
            agent {caps.version}
            {m.agentUptimeMs > 0 && <span data-testid="agent-uptime"> · up {uptimeText(m.agentUptimeMs)}</span>}
          </div>
        )}
        {m.agentNotice && (
          <div className="agent-notice" data-testid="agent-notice" role="note">
            {m.agentNotice}
          </div>
        )}
      </td>
      <td>
        <HeartbeatAge liveness={liveness} now={now} late={late} />
        <div className="metrics">
          <Sparkline label="cpu" values={series?.cpu ?? []} testId="metric-cpu" />
          <Sparkline label="mem" values={series?.memory ?? []} testId="metric-memory" />
          <Sparkline label="disk" values={series?.disk ?? []} testId="metric-disk" />
          {hasBattery && <Sparkline label="bat" values={series!.battery} testId="metric-battery" />}
        </div>
      </td>
      <td className="terminal-list">
        {live.length === 0 && <span className="dim">none</span>}
        {live.map((t) => (
          <div key={t.terminalId} className="terminal-item" data-testid="machine-terminal" data-terminal-id={t.terminalId}>
            <code>{t.terminalId.slice(0, 8)}</code>
            <span className="dim" title="operators / observers attached">
              {' '}
              {t.operators}op {t.observers}obs
            </span>{' '}
            {t.foreground && (
              <span className="dim" data-testid="terminal-foreground" title="what runs in it">
                running {t.foreground}{' '}
              </span>
            )}
            <button type="button" data-testid="attach-terminal" onClick={() => store.attach(m.name, t.terminalId, AttachMode.OPERATOR)}>
              Attach
            </button>{' '}
            <button
              type="button"
              data-testid="watch-terminal"
              title="Watch-only, in a window of its own"
              onClick={() => {
                // A blocked popup still gets the user their view, in a tab.
                if (!openWatchWindow(m.name, t.terminalId)) store.attach(m.name, t.terminalId, AttachMode.OBSERVER);
              }}
            >
              Watch
            </button>{' '}
            <button
              type="button"
              data-testid="watch-terminal-tab"
              title="Watch-only, in a tab here"
              onClick={() => store.attach(m.name, t.terminalId, AttachMode.OBSERVER)}
            >
              in a tab
            </button>{' '}
            <button type="button" data-testid="end-terminal-row" title="End the terminal and what runs in it" onClick={() => void store.endTerminal(m.name, t.terminalId)}>
              End
            </button>
          </div>
        ))}
      </td>
      <td>
        <button type="button" className="primary" data-testid="open-terminal" disabled={!canOpen(m.state)} onClick={() => store.openTerminal(m.name)}>
          Open terminal
        </button>{' '}
        <button
          type="button"
          data-testid="open-files"
          aria-pressed={store.filesMachine === m.name}
          disabled={!canOpen(m.state)}
          onClick={() => store.toggleFiles(m.name)}
        >
          Files
        </button>
      </td>
    </tr>
  );
}


/** "heartbeat 12 s ago", ticking; marked when late. */
function HeartbeatAge({ liveness, now, late }: { liveness: Liveness | undefined; now: number; late: boolean }) {
  if (!liveness) return null;
  const age = Math.max(0, Math.round((now - liveness.heartbeatAtMs) / 1000));
  return (
    <div className={`heartbeat-age${late ? ' late' : ''}`} data-testid="heartbeat-age" data-seconds={age} title={`heartbeats come every ${Math.round(liveness.intervalMs / 100) / 10} s`}>
      heartbeat {age} s ago
    </div>
  );
}
