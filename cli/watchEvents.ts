// Notices every attached command prints on stderr: connection lost and back,
// the machine's session state, output ranges skipped. Never silent.
import type { TerminalAttachment } from '../sdk';
import { SessionState } from '../protocol';
import { notice } from './output';

export function watchAttachment(a: TerminalAttachment, machine: string): void {
  a.on('reconnecting', (reason) => notice(`connection lost (${reason}); re-attaching from byte ${a.cursor}`));
  a.on('reconnected', () => notice(`re-attached at byte ${a.cursor}`));
  a.on('gap', (g) => notice(`skipped output bytes ${g.fromSeq}-${g.toSeq} (${g.toSeq - g.fromSeq} bytes): ${g.reason}`));
  a.on('refused', (e) => notice(e.message));
  a.on('state', (s) => {
    if (s.state === SessionState.GRACE_PERIOD) {
      const left = Math.max(0, Math.round((s.deadlineMs - Date.now()) / 1000));
      notice(`machine ${machine} is in GRACE_PERIOD (${s.reason}); waiting up to ${left} s for it to return`);
    } else if (s.state === SessionState.CONNECTED) {
      notice(`machine ${machine} is back`);
    } else if (s.state === SessionState.BACKGROUND) {
      notice(`machine ${machine} is in the background`);
    }
  });
}
