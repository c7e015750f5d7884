// What went wrong, in words a terminal user reads, and what they can do
// next. Decided by the error's typed code and reason (never by its text,
// which is shown only as the detail a person may want).
import { SessionState } from '../../../../protocol/generated/cmdop/v1/cmdop';

/** Something the user can do about it; the UI that shows the explanation carries it out. */
export type NextStep = 'retry' | 'new-terminal' | 'machines' | 'close' | 'sign-in';

export interface Explained {
  /** What happened, as a sentence. */
  text: string;
  next: NextStep[];
}

/** A typed error: a StreamError, or a GatewayError from a unary call. */
export interface TypedError {
  code: string;
  message: string;
  reason?: string;
}

/** `e` from an attach stream or a call that concerned `machine`. */
export function explainError(e: TypedError, machine: string): Explained {
  const detail = e.message ? ` (${e.message})` : '';
  switch (e.reason) {
    case 'machine_not_found':
      return { text: `There is no machine called ${machine} that you may reach.`, next: ['machines', 'close'] };
    case 'terminal_not_found':
      return { text: `This terminal no longer exists on ${machine}: it was ended, or ${machine} started a new session.`, next: ['new-terminal', 'close'] };
    case 'session_disconnected':
      return { text: `The session on ${machine} has ended${detail}. Its terminals are gone.`, next: ['new-terminal', 'close'] };
  }
  switch (e.code) {
    case 'UNAVAILABLE':
      return { text: `${machine} cannot be reached right now${detail}.`, next: ['retry', 'close'] };
    case 'NOT_FOUND':
      return { text: `${machine} or this terminal was not found${detail}.`, next: ['machines', 'close'] };
    case 'PERMISSION_DENIED':
      return { text: `You are not allowed to do this on ${machine}${detail}.`, next: ['close'] };
    case 'UNAUTHENTICATED':
      return { text: `Your sign-in is no longer accepted${detail}.`, next: ['sign-in'] };
    case 'FAILED_PRECONDITION':
      return { text: `${machine} could not do it${detail}.`, next: ['retry', 'close'] };
    case 'RESOURCE_EXHAUSTED':
      return { text: `${machine} is at a limit${detail}.`, next: ['close'] };
    case 'INVALID_ARGUMENT':
      return { text: `The request was refused as malformed${detail}.`, next: ['close'] };
    case 'DEADLINE_EXCEEDED':
      return { text: `${machine} did not answer in time${detail}.`, next: ['retry', 'close'] };
    default:
      return { text: `Something went wrong${detail}.`, next: ['retry', 'close'] };
  }
}

/** Why a terminal cannot be opened on a machine in `state`; '' when it can. */
export function cannotOpen(machine: string, state: SessionState | undefined, reason: string, secondsLeft: number): string {
  const why = reason ? `: ${reason}` : '';
  switch (state) {
    case undefined:
      return `There is no machine called ${machine} that you may reach.`;
    case SessionState.CONNECTED:
    case SessionState.BACKGROUND:
      return '';
    case SessionState.GRACE_PERIOD:
      return `${machine} is not answering${why}. Its running terminals are kept for ${secondsLeft} s more; a new one can be opened once it is back.`;
    case SessionState.PENDING:
      return `${machine} is still connecting.`;
    default:
      return `${machine} is offline${why}. A new terminal can be opened once its agent connects again.`;
  }
}
