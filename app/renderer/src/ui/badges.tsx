import { SessionState } from '../../../../protocol/generated/cmdop/v1/cmdop';
import { stateName } from '../state/store';

export function StateBadge({ state, testId }: { state: SessionState; testId: string }) {
  const name = stateName(state);
  return (
    <span className={`state state-${name.toLowerCase()}`} data-testid={testId} data-state={name}>
      {name}
    </span>
  );
}
