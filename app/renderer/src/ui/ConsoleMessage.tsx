// The console's own messages, under the tab strip: a terminal that could not
// be opened (and why, in words), one that will open when its machine is
// back, an action that failed. Each says what the user can do next.
import type { ConsoleStore } from '../state/store';

export function ConsoleMessageBar({ store }: { store: ConsoleStore }) {
  const m = store.message;
  if (!m) return null;
  return (
    <div className={`banner console-message message-${m.kind}`} data-testid="console-message" data-kind={m.kind} role="alert">
      <span data-testid="console-message-text">{m.text}</span>{' '}
      {m.kind === 'cannot-open' && store.machine(m.machine) && (
        <button type="button" data-testid="open-when-back" onClick={() => store.openWhenListed(m.machine)}>
          Open when {m.machine} is back
        </button>
      )}{' '}
      <button type="button" data-testid="console-message-dismiss" onClick={() => store.dismissMessage()}>
        {m.kind === 'waiting-to-open' ? 'Cancel' : 'Dismiss'}
      </button>
    </div>
  );
}

/** "End terminal" when something runs in it: what runs, and a clear yes or no. */
export function EndDialog({ store }: { store: ConsoleStore }) {
  const e = store.ending;
  if (!e) return null;
  return (
    <div className="overlay end-dialog" data-testid="end-dialog" role="alertdialog" aria-label="End terminal">
      <h2>End terminal?</h2>
      <p>
        <code data-testid="end-foreground">{e.foreground}</code> is running in {e.machine} {e.terminalId.slice(0, 8)}. Ending the terminal
        stops it, and whatever it has not saved is lost.
      </p>
      <div>
        <button type="button" className="danger" data-testid="end-confirm" onClick={() => void store.confirmEnd()}>
          End terminal
        </button>{' '}
        <button type="button" data-testid="end-cancel" autoFocus onClick={() => store.cancelEnd()}>
          Keep it running
        </button>
      </div>
    </div>
  );
}
