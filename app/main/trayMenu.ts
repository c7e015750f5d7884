// What the tray shows, as plain data: the icon for the machine's state, a
// tooltip, and the menu. Electron turns it into a Tray and Menu (main.ts);
// tests read it directly. Rebuilt whenever something it shows changes.

/** The four icons in resources/ (tray-STATE.png). */
export type TrayIcon = 'connected' | 'grace' | 'disconnected' | 'signed-out';

export type DesktopState =
  /** No credential for the agent yet: sign in first. */
  | { kind: 'signed-out'; why?: string }
  | { kind: 'connecting' }
  | { kind: 'connected' }
  /** Away (sleep, lock, pause, lost network): the control plane keeps the session until `deadlineMs`. */
  | { kind: 'grace'; reason: string; deadlineMs: number; paused: boolean }
  /** Over: the grace period passed, or the control plane refused the agent. */
  | { kind: 'disconnected'; why: string };

export type MenuAction =
  | { kind: 'open-console' }
  | { kind: 'new-terminal'; machine: string }
  | { kind: 'share'; machine: string; terminalId: string }
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'simulate-sleep'; seconds: number }
  | { kind: 'sign-in' }
  | { kind: 'sign-out' }
  | { kind: 'autostart'; on: boolean }
  | { kind: 'settings' }
  | { kind: 'quit' };

export interface MenuItem {
  label: string;
  action?: MenuAction;
  enabled?: boolean;
  separator?: boolean;
  /** A check box, ticked or not. */
  checked?: boolean;
  submenu?: MenuItem[];
}

export interface TrayModel {
  icon: TrayIcon;
  tooltip: string;
  menu: MenuItem[];
}

export interface TrayFacts {
  state: DesktopState;
  /** This machine's name, once known. */
  machine: string;
  /** Where the agent connects ("this computer" for the embedded control plane). */
  server: string;
  /** Machines the signed-in user may open terminals on (CONNECTED or BACKGROUND ones). */
  machines: string[];
  /** This machine's live terminals, for "Share read-only". */
  terminals: { terminalId: string; title: string }[];
  /** Sign-in and sign-out make sense only against a remote control plane. */
  embedded: boolean;
  autostart: boolean;
  nowMs: number;
  /** A server process (the control plane, the agent) that stopped unexpectedly and is being restarted: one line each. */
  trouble?: string[];
}

/** Sleep lengths offered by "Simulate sleep": shorter and longer than the default 30 s grace period. */
export const SIMULATED_SLEEPS_S = [5, 20, 45];

const ICON: Record<DesktopState['kind'], TrayIcon> = {
  'signed-out': 'signed-out',
  connecting: 'disconnected',
  connected: 'connected',
  grace: 'grace',
  disconnected: 'disconnected',
};

export function stateLine(s: DesktopState, nowMs: number): string {
  switch (s.kind) {
    case 'signed-out':
      return `Signed out${s.why ? ` (${s.why})` : ''}`;
    case 'connecting':
      return 'Connecting…';
    case 'connected':
      return 'Connected';
    case 'grace': {
      const left = Math.max(0, Math.ceil((s.deadlineMs - nowMs) / 1000));
      return `${s.paused ? 'Paused' : 'Away'}: sessions kept for ${left} s (${s.reason})`;
    }
    case 'disconnected':
      return `Disconnected: ${s.why}`;
  }
}

export function trayModel(f: TrayFacts): TrayModel {
  const s = f.state;
  const signedIn = s.kind !== 'signed-out';
  const title = f.machine ? `${f.machine} — ${stateLine(s, f.nowMs)}` : stateLine(s, f.nowMs);
  const trouble = f.trouble ?? [];
  const menu: MenuItem[] = [
    { label: title, enabled: false },
    ...trouble.map((t) => ({ label: t, enabled: false })),
    { label: `Control plane: ${f.server}`, enabled: false },
    { label: '', separator: true },
    { label: 'Open console', action: { kind: 'open-console' }, enabled: signedIn },
    {
      label: 'New terminal to…',
      enabled: signedIn && f.machines.length > 0,
      submenu: f.machines.map((m) => ({ label: m, action: { kind: 'new-terminal', machine: m } })),
    },
    {
      label: 'Share this machine read-only…',
      enabled: signedIn && f.terminals.length > 0,
      submenu: f.terminals.map((t) => ({ label: t.title, action: { kind: 'share', machine: f.machine, terminalId: t.terminalId } })),
    },
    { label: '', separator: true },
    s.kind === 'grace' && s.paused
      ? { label: 'Resume agent', action: { kind: 'resume' } }
      : { label: 'Pause agent', action: { kind: 'pause' }, enabled: s.kind === 'connected' },
    {
      label: 'Simulate sleep for…',
      enabled: s.kind === 'connected',
      submenu: SIMULATED_SLEEPS_S.map((n) => ({ label: `${n} seconds`, action: { kind: 'simulate-sleep', seconds: n } })),
    },
    { label: '', separator: true },
  ];
  if (!f.embedded) menu.push(signedIn ? { label: 'Sign out', action: { kind: 'sign-out' } } : { label: 'Sign in…', action: { kind: 'sign-in' } });
  menu.push(
    { label: 'Start at login', checked: f.autostart, action: { kind: 'autostart', on: !f.autostart } },
    { label: 'Settings…', action: { kind: 'settings' } },
    { label: 'Quit CMDOP', action: { kind: 'quit' } },
  );
  return { icon: ICON[s.kind], tooltip: [`CMDOP — ${title}`, ...trouble].join('\n'), menu };
}
