// One terminal tab: an xterm.js terminal wired to a TerminalSession. Output
// is written to xterm and acknowledged from xterm's write callback; input
// (operators only) goes from xterm's onData to the session. A watch-only tab
// never subscribes to onData, so it has no input path at all.
import { AttachMode, SessionState, type TerminalExit, type TerminalInfo } from '../../../../protocol/generated/cmdop/v1/cmdop';
import type { ConsoleConnection } from '../net/connection';
import { TerminalSession, type NoticeKind, type SessionSink, type SessionTarget } from '../net/terminalSession';
import { THEMES, type ThemeName } from '../term/themes';
import { bufferText, createXterm, type Xterm } from '../term/xterm';
import { explainError, type Explained, type TypedError } from './explain';
import { Observable } from './observable';
import type { Settings } from './settings';
import { cleanShellTitle, withMachine } from './tabTitle';
import { effectiveTheme } from './theme';

export interface Notice {
  id: number;
  kind: NoticeKind;
  text: string;
  atMs: number;
  /** The same notice again (e.g. every keystroke refused during a grace period) counts up instead of piling up. */
  count: number;
}

const MAX_NOTICES = 6;
/** A reconnect is news for a moment, then noise: its notice goes by itself. */
export const RECONNECTED_NOTICE_MS = 5000;
/** A poll result must not overwrite a fresher state the stream just pushed. */
const STREAM_STATE_WINS_MS = 3000;
let nextKey = 1;
let nextNotice = 1;

export class Tab extends Observable {
  readonly key = `tab-${nextKey++}`;
  /** What the shell last set (OSC 0/2), cleaned; '' for none. */
  shellTitle = '';
  renamed = false;
  theme: ThemeName;
  private customTitle = '';
  state: SessionState;
  stateReason = '';
  deadlineMs = 0;
  exit: TerminalExit | undefined;
  /** Set once the attachment is over for good. */
  endedWhy = '';
  /** What the control plane said when it ended the attachment, in words, with what to do next. */
  endedExplained: Explained | undefined;
  /** Bytes typed that wait to be sent (the machine away, or the page reconnecting). */
  pendingInput = 0;
  /** The machine list says this machine's heartbeat is late (see protocol/liveness.ts). */
  machineLate = false;
  viewers = 0;
  /** Bytes handed to xterm (snapshots included): equal to the stream position when nothing was skipped or repeated. */
  written = 0;
  notices: Notice[] = [];
  readonly xterm: Xterm;
  readonly session: TerminalSession;
  /** When the stream last said what state the session is in (0: never). */
  stateAtMs = 0;
  private mounted = false;
  private visible = false;
  private readonly encoder = new TextEncoder();

  constructor(
    conn: ConsoleConnection,
    readonly target: SessionTarget,
    settings: Settings,
    initialState: SessionState = SessionState.CONNECTED,
  ) {
    super();
    this.state = initialState;
    this.theme = effectiveTheme(settings.theme);
    this.xterm = createXterm(settings, this.theme, !this.operator);
    this.session = new TerminalSession(conn, target, this.sink());
    this.xterm.term.onTitleChange((raw) => {
      const t = cleanShellTitle(raw);
      if (t === this.shellTitle) return;
      this.shellTitle = t;
      this.changed();
    });
    if (this.operator) {
      const { term } = this.xterm;
      term.onData((s) => this.session.input(this.encoder.encode(s)));
      // Some mouse reports are raw bytes, not UTF-8 text.
      term.onBinary((s) => this.session.input(Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff)));
    }
  }

  /** The user's name for the tab if they renamed it, else the shell's title with the machine, else machine and terminal id. */
  get title(): string {
    if (this.renamed) return this.customTitle;
    if (this.shellTitle) return withMachine(this.shellTitle, this.machine);
    return this.terminalId ? `${this.machine} ${this.terminalId.slice(0, 8)}` : this.machine;
  }

  get operator(): boolean {
    return this.target.mode === AttachMode.OPERATOR;
  }

  get machine(): string {
    return this.target.machine;
  }

  get terminalId(): string {
    return this.session.terminalId;
  }

  /** Final: DISCONNECTED, exited, or refused. The screen stays for reading. */
  get over(): boolean {
    return this.endedWhy !== '' || this.exit !== undefined;
  }

  /** Called once with the tab's container; starts the attachment with the fitted size. */
  mount(el: HTMLElement): void {
    if (this.mounted) return;
    this.mounted = true;
    this.xterm.open(el);
    this.fitNow();
    if (this.visible) this.xterm.term.focus();
    this.session.start();
  }

  setVisible(v: boolean): void {
    this.visible = v;
    if (!v || !this.mounted) return;
    // After layout, so the container has its size.
    requestAnimationFrame(() => {
      this.fitNow();
      // Not from a field the user is typing in (renaming this tab by double-click activates it first),
      // nor from the tab strip, where the arrow keys go from tab to tab.
      const a = document.activeElement;
      if (!(a instanceof HTMLInputElement) && !a?.closest('[role=tablist]')) this.xterm.term.focus();
    });
  }

  /** Puts the keyboard in this tab's terminal, once it is laid out (it may just have been shown). */
  focus(): void {
    requestAnimationFrame(() => {
      // A rename box opened meanwhile (a double-click is two clicks first) keeps it.
      if (document.activeElement instanceof HTMLInputElement) return;
      if (this.mounted && this.visible) this.xterm.term.focus();
    });
  }

  /** Operators: the terminal follows its container and the PTY follows the terminal. */
  fitNow(): void {
    if (!this.mounted || !this.operator || !this.visible) return;
    const el = this.xterm.term.element;
    if (!el || el.offsetParent === null) return; // hidden: keep the size it has
    const dims = this.xterm.fit.proposeDimensions();
    if (!dims || !Number.isFinite(dims.cols) || !Number.isFinite(dims.rows) || dims.cols < 2 || dims.rows < 1) return;
    if (dims.cols !== this.xterm.term.cols || dims.rows !== this.xterm.term.rows) this.xterm.term.resize(dims.cols, dims.rows);
    this.session.resize(this.xterm.term.cols, this.xterm.term.rows);
  }

  /** Observers show the PTY at its own size (they cannot resize it). */
  followPtySize(cols: number, rows: number): void {
    if (this.operator || !cols || !rows) return;
    if (cols !== this.xterm.term.cols || rows !== this.xterm.term.rows) this.xterm.term.resize(cols, rows);
  }

  applySettings(s: Settings): void {
    this.xterm.term.options.fontSize = s.fontSize;
    this.theme = effectiveTheme(s.theme);
    this.xterm.term.options.theme = THEMES[this.theme];
    this.fitNow();
  }

  rename(title: string): void {
    const t = title.trim();
    if (!t) return;
    this.customTitle = t;
    this.renamed = true;
    this.changed();
  }

  setViewers(n: number): void {
    if (n === this.viewers) return;
    this.viewers = n;
    this.changed();
  }

  setMachineLate(late: boolean): void {
    if (late === this.machineLate) return;
    this.machineLate = late;
    this.changed();
  }

  /** The machine list's view of the session; the stream's own `state` messages take precedence. */
  pollState(state: SessionState, reason: string, deadlineMs: number): void {
    if (this.over || Date.now() - this.stateAtMs < STREAM_STATE_WINS_MS) return;
    if (state === this.state && deadlineMs === this.deadlineMs) return;
    this.session.listedState(state);
    this.state = state;
    this.stateReason = reason;
    this.deadlineMs = deadlineMs;
    this.changed();
  }

  /** A paste, through xterm so bracketed-paste mode and newline handling apply. */
  paste(text: string): void {
    if (!this.operator || this.over) return;
    this.xterm.term.paste(text);
  }

  /** Ctrl+Shift+V. The browser may refuse (no permission, not a secure page): say so. */
  async pasteFromClipboard(): Promise<void> {
    if (!this.operator) return;
    try {
      this.paste(await navigator.clipboard.readText());
    } catch (e) {
      this.notice('error', `cannot read the clipboard (${(e as Error).message}); the browser's own paste (Shift+Insert, menu) works`);
    }
  }

  /** Ctrl+Shift+C. */
  async copySelection(): Promise<void> {
    const sel = this.xterm.term.getSelection();
    if (!sel) return;
    try {
      await navigator.clipboard.writeText(sel);
    } catch (e) {
      this.notice('error', `cannot write the clipboard: ${(e as Error).message}`);
    }
  }

  screenText(): string {
    return bufferText(this.xterm.term);
  }

  dismissNotice(id: number): void {
    if (!this.notices.some((n) => n.id === id)) return;
    this.notices = this.notices.filter((n) => n.id !== id);
    this.changed();
  }

  dispose(): void {
    this.session.close();
    this.xterm.term.dispose();
  }

  private notice(kind: NoticeKind, text: string): void {
    if (kind === 'reconnected') {
      // One at a time, and only for a while: a flaky network must not fill the pane with them.
      const n: Notice = { id: nextNotice++, kind, text, atMs: Date.now(), count: 1 };
      this.notices = [...this.notices.filter((x) => x.kind !== 'reconnected'), n].slice(-MAX_NOTICES);
      setTimeout(() => this.dismissNotice(n.id), RECONNECTED_NOTICE_MS);
      this.changed();
      return;
    }
    const last = this.notices[this.notices.length - 1];
    if (last && last.kind === kind && last.text === text) {
      this.notices = [...this.notices.slice(0, -1), { ...last, count: last.count + 1, atMs: Date.now() }];
    } else {
      this.notices = [...this.notices, { id: nextNotice++, kind, text, atMs: Date.now(), count: 1 }].slice(-MAX_NOTICES);
    }
    this.changed();
  }

  private sink(): SessionSink {
    const term = () => this.xterm.term;
    return {
      write: (data, done) => {
        this.written += data.length;
        term().write(data, done);
      },
      snapshot: (data, cols, rows, done) => {
        this.written += data.length;
        term().reset();
        if (cols && rows) term().resize(cols, rows);
        term().write(data, () => {
          done();
          this.fitNow();
        });
      },
      attached: (info: TerminalInfo) => {
        this.followPtySize(info.cols, info.rows);
        this.fitNow();
        this.changed();
      },
      notice: (kind, text) => this.notice(kind, text),
      state: (state, reason, deadlineMs) => {
        this.state = state;
        this.stateReason = reason;
        this.deadlineMs = deadlineMs;
        this.stateAtMs = Date.now();
        this.changed();
      },
      exit: (e) => {
        this.exit = e;
        this.changed();
      },
      ended: (why, error?: TypedError) => {
        this.endedWhy = why;
        this.endedExplained = error ? explainError(error, this.machine) : undefined;
        this.changed();
      },
      pending: (bytes) => {
        this.pendingInput = bytes;
        this.changed();
      },
    };
  }
}
