// Everything the console shows: the connection, the machine list (polled
// every 2 s, with a short history of each machine's heartbeat for the
// sparklines), and the terminal tabs in their order.
import { AttachMode, SessionState, type Identity, type MachineInfo } from '../../../../protocol/generated/cmdop/v1/cmdop';
import { heartbeatLate } from '../../../../protocol/liveness';
import { GatewayError } from '../../../../sdk/gateway';
import type { ConsoleConnection } from '../net/connection';
import { cannotOpen, explainError, type TypedError } from './explain';
import { FilesModel } from './files';
import { Observable } from './observable';
import { loadTabs, saveTabs } from './persistedTabs';
import { loadSettings, saveSettings, type Settings } from './settings';
import { Tab } from './tab';
import { applyPageTheme, onSystemThemeChange } from './theme';

/** The key of the machines view, which sits before the terminal tabs. */
export const MACHINES = 'machines';
export const POLL_MS = 2000;
/** Heartbeat samples kept per machine for the sparklines. */
export const SAMPLES = 60;

export interface MetricSeries {
  cpu: number[];
  memory: number[];
  disk: number[];
  /** NaN where the machine reported no battery. */
  battery: number[];
  lastTimestampMs: number;
}

/** When the last heartbeat came (this page's clock) and how often they come, from the last poll. */
export interface Liveness {
  heartbeatAtMs: number;
  intervalMs: number;
}

/** A message for the whole console (not one tab): what happened, and what the user can do. */
export interface ConsoleMessage {
  kind: 'cannot-open' | 'waiting-to-open' | 'error';
  text: string;
  machine: string;
}

/** Asking before ending a terminal in which something other than its shell runs. */
export interface EndRequest {
  machine: string;
  terminalId: string;
  /** What runs in it (the agent's report), '' for nothing. */
  foreground: string;
  /** The tab it was asked from, closed once the terminal is ended. */
  tabKey?: string;
}

export const canOpen = (s: SessionState | undefined) => s === SessionState.CONNECTED || s === SessionState.BACKGROUND;

/** The machine is CONNECTED but its heartbeat is late: it may have stopped answering (the grace period has not started yet). */
export function notResponding(m: MachineInfo, l: Liveness | undefined, now = Date.now()): boolean {
  return m.state === SessionState.CONNECTED && !!l && heartbeatLate(now - l.heartbeatAtMs, l.intervalMs);
}

export class ConsoleStore extends Observable {
  tabs: Tab[] = [];
  active: string = MACHINES;
  machines: MachineInfo[] = [];
  machinesError = '';
  metrics = new Map<string, MetricSeries>();
  liveness = new Map<string, Liveness>();
  message: ConsoleMessage | undefined;
  /** An "End terminal" waiting for the user's yes. */
  ending: EndRequest | undefined;
  settings: Settings = loadSettings();
  identity: Identity | undefined;
  /** The machine whose file panel is open ('' for none), and each machine's panel once opened. */
  filesMachine = '';
  private filePanels = new Map<string, FilesModel>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private polling = false;
  private saveQueued = false;
  /** A machine to open a shell on once the machine list has come (the desktop's "New terminal to…"). */
  private openOnLoad = '';
  /** When the machine list last came. */
  private polledAtMs = 0;
  private stopped = false;
  private unwatchTheme: (() => void) | undefined;

  constructor(
    readonly conn: ConsoleConnection,
    /** persistTabs: the tab list survives a reload (the console; not a share or watch window). */
    private readonly opts: { listMachines: boolean; persistTabs?: boolean },
  ) {
    super();
  }

  start(): void {
    if (this.opts.persistTabs) this.restoreTabs();
    // "system": the terminals follow the system's light/dark switch as the page's CSS does.
    this.unwatchTheme = onSystemThemeChange(() => {
      if (this.settings.theme === 'system') for (const t of this.tabs) t.applySettings(this.settings);
    });
    this.conn.subscribe(() => {
      if (this.conn.status === 'open') {
        void this.poll();
        if (!this.identity) void this.loadIdentity();
      }
      this.changed();
    });
    this.conn.start();
    if (this.opts.listMachines) this.timer = setInterval(() => void this.poll(), POLL_MS);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.unwatchTheme?.();
    for (const t of this.tabs) t.dispose();
    this.conn.stop();
  }

  tab(key: string): Tab | undefined {
    return this.tabs.find((t) => t.key === key);
  }

  get activeTab(): Tab | undefined {
    return this.tab(this.active);
  }

  machine(name: string): MachineInfo | undefined {
    return this.machines.find((m) => m.name === name);
  }

  /** Shows `machine`'s file panel (its transfers carry on while it is closed). */
  toggleFiles(machine: string): void {
    this.filesMachine = this.filesMachine === machine ? '' : machine;
    this.changed();
  }

  closeFiles(): void {
    this.filesMachine = '';
    this.changed();
  }

  files(machine: string): FilesModel {
    let m = this.filePanels.get(machine);
    if (!m) this.filePanels.set(machine, (m = new FilesModel(this.conn, machine)));
    return m;
  }

  /** Opens a shell on `machine` as soon as the machine list shows it reachable (now, or once it is back). */
  openWhenListed(machine: string): void {
    this.openOnLoad = machine;
    if (this.machines.length > 0) this.message = { kind: 'waiting-to-open', machine, text: `A terminal opens on ${machine} as soon as it is back.` };
    this.changed();
  }

  dismissMessage(): void {
    if (this.message?.kind === 'waiting-to-open') this.openOnLoad = '';
    this.message = undefined;
    this.changed();
  }

  /**
   * A new shell on `machine`, in a new tab that becomes active. A machine
   * that cannot take one now (in its grace period, offline) gets no tab,
   * which could only die at once: the console says why and offers to open
   * one when the machine is back.
   */
  openTerminal(machine: string): Tab | undefined {
    const m = this.machine(machine);
    let known = m && { state: m.state, reason: m.stateReason, deadlineMs: m.graceDeadlineMs };
    // A tab's stream hears of a grace period at once, the machine list up to POLL_MS later.
    for (const t of this.tabs) {
      if (m && t.machine === machine && !t.over && t.stateAtMs > this.polledAtMs) known = { state: t.state, reason: t.stateReason, deadlineMs: t.deadlineMs };
    }
    const why = cannotOpen(machine, known?.state, known?.reason ?? '', known ? Math.max(0, Math.ceil((known.deadlineMs - Date.now()) / 1000)) : 0);
    if (why) {
      this.message = { kind: 'cannot-open', machine, text: why };
      this.changed();
      return undefined;
    }
    if (this.message?.machine === machine) this.message = undefined;
    return this.add(new Tab(this.conn, { machine, mode: AttachMode.OPERATOR }, this.settings, known?.state));
  }

  /** A tab on an existing terminal; OBSERVER makes it a watch-only view. */
  attach(machine: string, terminalId: string, mode: AttachMode): Tab {
    const existing = this.tabs.find((t) => t.terminalId === terminalId && t.target.mode === mode && !t.over);
    if (existing) {
      this.activate(existing.key);
      return existing;
    }
    return this.add(new Tab(this.conn, { machine, terminalId, mode }, this.settings, this.machine(machine)?.state));
  }

  private add(t: Tab, activate = true): Tab {
    this.tabs = [...this.tabs, t];
    if (activate) this.active = t.key;
    // A tab's own changes (its terminal id once attached, a rename, its end) change what is saved.
    if (this.opts.persistTabs) t.subscribe(() => this.queueSave());
    this.changed();
    return t;
  }

  protected override changed(): void {
    super.changed();
    if (this.opts.persistTabs) this.queueSave();
  }

  /** The tabs of before a reload, re-attached (an existing terminal's first attach brings its current screen). */
  private restoreTabs(): void {
    const saved = loadTabs();
    saved.tabs.forEach((s, i) => {
      const t = this.add(new Tab(this.conn, { machine: s.machine, terminalId: s.terminalId, mode: s.mode }, this.settings), i === saved.active);
      if (s.title) t.rename(s.title);
    });
  }

  /** One write per turn, however many changes it had. */
  private queueSave(): void {
    if (this.saveQueued || this.stopped) return;
    this.saveQueued = true;
    queueMicrotask(() => {
      this.saveQueued = false;
      if (this.stopped) return;
      // Tabs that ended stay on screen for reading but are not brought back; nor is a shell not yet attached.
      const keep = this.tabs.filter((t) => t.terminalId && !t.over);
      saveTabs({
        tabs: keep.map((t) => ({ machine: t.machine, terminalId: t.terminalId, mode: t.target.mode, title: t.renamed ? t.title : undefined })),
        active: keep.findIndex((t) => t.key === this.active),
      });
    });
  }

  /**
   * Closes a tab: detaches. The terminal keeps running on its machine (the
   * point of CMDOP is that terminals survive), stays listed there, and can
   * be attached again; ending it is endTerminal's, asked for explicitly.
   */
  closeTab(key: string): void {
    const i = this.tabs.findIndex((t) => t.key === key);
    if (i < 0) return;
    const t = this.tabs[i];
    t.dispose();
    this.tabs = this.tabs.filter((x) => x !== t);
    if (this.active === key) this.active = this.tabs[Math.min(i, this.tabs.length - 1)]?.key ?? MACHINES;
    this.changed();
  }

  /** A tab that ended on an error, opened again in its place: the same terminal, or a new shell. */
  retry(key: string): void {
    const t = this.tab(key);
    if (!t) return;
    const i = this.tabs.indexOf(t);
    const { machine, terminalId, mode } = t.target;
    const again = terminalId ? this.attach(machine, terminalId, mode) : this.openTerminal(machine);
    if (!again) return; // said why (console message); the old tab stays for reading
    this.closeTab(key);
    this.moveTo(again.key, i);
    this.activate(again.key);
  }

  /**
   * "End terminal": ends the shell and whatever runs in it. Asked first
   * (`ending`) when something other than the shell runs in it, as the agent
   * reports it now (a fresh machine list, not the last poll's).
   */
  async endTerminal(machine: string, terminalId: string, tabKey?: string): Promise<void> {
    let foreground = '';
    try {
      const r = await this.conn.call('listMachines', {});
      const info = r.machines.find((m) => m.name === machine)?.terminals.find((t) => t.terminalId === terminalId);
      if (info && !info.exited) foreground = info.foreground;
      else if (!info || info.exited) return this.ended(tabKey); // nothing left to end
    } catch (e) {
      return this.failed(e, machine);
    }
    const req = { machine, terminalId, foreground, tabKey };
    if (foreground) {
      this.ending = req;
      this.changed();
      return;
    }
    await this.confirmEnd(req);
  }

  /** The user said yes (or there was nothing to ask). */
  async confirmEnd(req: EndRequest | undefined = this.ending): Promise<void> {
    this.ending = undefined;
    this.changed();
    if (!req) return;
    try {
      await this.conn.call('closeTerminal', { machine: req.machine, terminalId: req.terminalId });
    } catch (e) {
      return this.failed(e, req.machine);
    }
    this.ended(req.tabKey);
  }

  cancelEnd(): void {
    this.ending = undefined;
    this.changed();
  }

  private ended(tabKey: string | undefined): void {
    if (tabKey) this.closeTab(tabKey);
    void this.poll();
  }

  private failed(e: unknown, machine: string): void {
    const typed: TypedError = e instanceof GatewayError ? e : { code: 'INTERNAL', message: (e as Error).message };
    this.message = { kind: 'error', machine, text: explainError(typed, machine).text };
    this.changed();
  }

  activate(key: string): void {
    if (key !== MACHINES && !this.tab(key)) return;
    this.active = key;
    this.changed();
  }

  /** Next/previous in the strip, the machines view included, wrapping around. */
  cycle(delta: number): void {
    const keys = [MACHINES, ...this.tabs.map((t) => t.key)];
    const i = keys.indexOf(this.active);
    this.activate(keys[(i + delta + keys.length) % keys.length]);
  }

  /** Moves a tab to `index` among the terminal tabs (drag and drop, or the keyboard). */
  moveTo(key: string, index: number): void {
    const t = this.tab(key);
    if (!t) return;
    const rest = this.tabs.filter((x) => x !== t);
    const at = Math.max(0, Math.min(rest.length, index));
    this.tabs = [...rest.slice(0, at), t, ...rest.slice(at)];
    this.changed();
  }

  move(key: string, delta: number): void {
    const i = this.tabs.findIndex((t) => t.key === key);
    if (i >= 0) this.moveTo(key, i + delta);
  }

  updateSettings(s: Settings): void {
    this.settings = s;
    saveSettings(s);
    applyPageTheme(s.theme);
    for (const t of this.tabs) t.applySettings(s);
    this.changed();
  }

  private async loadIdentity(): Promise<void> {
    try {
      this.identity = await this.conn.call('whoAmI', {});
      this.changed();
    } catch {
      // Shown as "signed in" without a name; the calls themselves report errors.
    }
  }

  /** One listMachines: states, heartbeats, and the viewer counts of the open terminals. */
  async poll(): Promise<void> {
    if (!this.opts.listMachines || this.polling || this.conn.status !== 'open') return;
    this.polling = true;
    try {
      const r = await this.conn.call('listMachines', {});
      this.machines = [...r.machines].sort((a, b) => a.name.localeCompare(b.name));
      this.machinesError = '';
      const polledAt = (this.polledAtMs = Date.now());
      for (const m of this.machines) this.record(m, polledAt);
      if (this.openOnLoad) {
        const want = this.openOnLoad;
        const m = this.machine(want);
        if (canOpen(m?.state)) {
          this.openOnLoad = '';
          if (this.message?.kind === 'waiting-to-open') this.message = undefined;
          this.openTerminal(want);
        } else if (!m) {
          this.openOnLoad = '';
          this.message = { kind: 'cannot-open', machine: want, text: cannotOpen(want, undefined, '', 0) };
        } else if (this.message?.kind !== 'waiting-to-open') {
          // Away or offline: wait for it, saying so (and the user can give up).
          const away = m.state === SessionState.GRACE_PERIOD ? 'is not answering' : m.state === SessionState.PENDING ? 'is still connecting' : 'is offline';
          this.message = { kind: 'waiting-to-open', machine: want, text: `${want} ${away}. A terminal opens there as soon as it is back.` };
        }
      }
      for (const t of this.tabs) {
        const m = this.machine(t.machine);
        if (!m) continue;
        t.setMachineLate(notResponding(m, this.liveness.get(m.name), polledAt));
        t.pollState(m.state, m.stateReason, m.graceDeadlineMs);
        const info = m.terminals.find((x) => x.terminalId === t.terminalId);
        if (info) {
          t.setViewers(info.observers);
          t.followPtySize(info.cols, info.rows);
        }
      }
    } catch (e) {
      this.machinesError = (e as Error).message;
    } finally {
      this.polling = false;
      this.changed();
    }
  }

  private record(m: MachineInfo, polledAt: number): void {
    if (m.heartbeatAgeMs > 0) this.liveness.set(m.name, { heartbeatAtMs: polledAt - m.heartbeatAgeMs, intervalMs: m.heartbeatIntervalMs });
    else this.liveness.delete(m.name);
    const hb = m.lastHeartbeat;
    if (!hb || !hb.timestampMs) return;
    let s = this.metrics.get(m.name);
    if (!s) this.metrics.set(m.name, (s = { cpu: [], memory: [], disk: [], battery: [], lastTimestampMs: 0 }));
    // Heartbeats come every 30 s and polls every 2 s: one sample per heartbeat.
    if (hb.timestampMs === s.lastTimestampMs) return;
    s.lastTimestampMs = hb.timestampMs;
    const push = (a: number[], v: number) => {
      a.push(v);
      if (a.length > SAMPLES) a.shift();
    };
    push(s.cpu, hb.cpuPercent);
    push(s.memory, hb.memoryPercent);
    push(s.disk, hb.diskPercent);
    push(s.battery, hb.batteryPercent ?? NaN);
  }
}

export const stateName = (s: SessionState): string => SessionState[s] ?? String(s);
