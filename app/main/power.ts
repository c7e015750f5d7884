// Sleep and wake, from the operating system to the agent. Electron's
// powerMonitor emits these; tests pass an EventEmitter. Closing the lid then
// tells the control plane "suspended" (GRACE_PERIOD at once, processes kept)
// instead of leaving it to notice a dead stream a minute later, and waking
// reconnects at once instead of after a backoff. Where the events never come
// (some Linux desktops), the agent's own late-timer check still notices the
// sleep once the machine wakes.

/** The part of Electron's powerMonitor used here. */
export interface PowerEvents {
  on(event: PowerEvent, listener: () => void): unknown;
  removeListener(event: PowerEvent, listener: () => void): unknown;
}

export type PowerEvent = 'suspend' | 'resume' | 'lock-screen' | 'unlock-screen';

export interface Sleeper {
  suspend(reason: string): void;
  resume(reason: string): void;
}

/** Which events put the agent to sleep and which wake it (the mapping: a locked screen counts as away). */
export const POWER_MAP: Readonly<Record<PowerEvent, 'suspend' | 'resume'>> = {
  suspend: 'suspend',
  'lock-screen': 'suspend',
  resume: 'resume',
  'unlock-screen': 'resume',
};

/** Wires the events to the sleeper; returns the unwiring. */
export function wirePower(power: PowerEvents, sleeper: Sleeper): () => void {
  const listeners = (Object.keys(POWER_MAP) as PowerEvent[]).map((event) => {
    const fn = () => (POWER_MAP[event] === 'suspend' ? sleeper.suspend(event) : sleeper.resume(event));
    power.on(event, fn);
    return [event, fn] as const;
  });
  return () => {
    for (const [event, fn] of listeners) power.removeListener(event, fn);
  };
}
