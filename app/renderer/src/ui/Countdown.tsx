import { useNow } from './hooks';

/** Seconds left until `deadlineMs` (the control plane's clock), ticking. */
export function Countdown({ deadlineMs, testId }: { deadlineMs: number; testId: string }) {
  const now = useNow(250, deadlineMs > 0);
  const left = Math.max(0, Math.ceil((deadlineMs - now) / 1000));
  return (
    <span className="countdown" data-testid={testId} data-seconds={left} title="until the session is given up">
      {left} s
    </span>
  );
}
