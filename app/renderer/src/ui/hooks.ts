import { useEffect, useState, useSyncExternalStore } from 'react';
import type { Observable } from '../state/observable';

/** Re-renders whenever `o` changes. */
export function useObservable(o: Observable): number {
  return useSyncExternalStore(o.subscribe, o.getVersion);
}

/** The current time, refreshed every `ms` while `active` (countdowns). */
export function useNow(ms: number, active = true): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    setNow(Date.now());
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms, active]);
  return now;
}
