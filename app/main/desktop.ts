// The desktop app without Electron: the agent for this laptop, the embedded
// control plane (or a remote one and the user's sign-in to it), sleep and
// wake, and what the tray shows. main.ts hands it the real tray, windows,
// powerMonitor, safeStorage and utilityProcess.fork; tests hand it stand-ins
// and child_process.fork, and drive it with a real control plane, agent and
// shell. Everything here runs under plain Node.
//
// The control plane and the agent do not run here: each is a process of its
// own (app/host/), started and restarted by hosts.ts and spoken to over the
// typed channel (app/host/channel.ts). This process keeps the tray, the
// windows, the power events, the keychain and the user's SDK client.
import path from 'node:path';
import { DEFAULT_TIMEOUTS, SessionState, TokenKind } from '../../protocol';
import { CmdopClient } from '../../sdk';
import { createLogger, type Logger } from '../../lib/logger';
import { connectionTo, oauthClientFor, type Connection, type TrustOptions } from '../../sdk/connect';
import { agentCredential } from '../../sdk/signin/agentCredential';
import { deviceLogin } from '../../sdk/signin/deviceLogin';
import { freshLogin } from '../../sdk/signin/logins';
import { wirePower, type PowerEvents, type Sleeper } from './power';
import { SecretFile, type SecretBox } from './secrets';
import type { DesktopSettings } from './settings';
import { trayModel, type DesktopState, type MenuAction, type TrayModel } from './trayMenu';
import { HOST_MODULES, HostProcess, nodeFork, type ForkHost, type HostProcessOptions } from './hosts';
import type { AgentCalls, AgentEvent, AgentStart, AgentStatus, ControlPlaneCalls, ControlPlaneReady, ControlPlaneStart, Methods } from '../host/channel';

/** What the operating system gives the app; Electron in main.ts, stand-ins in tests. */
export interface DesktopHost {
  power: PowerEvents;
  tray: { render(model: TrayModel): void };
  /** Opens (or focuses) the main console window at `url`. */
  openConsole(url: string): void;
  secrets: SecretBox;
  notify(title: string, body: string): void;
  openExternal(url: string): void;
  copyText(text: string): void;
  openSettings(): void;
  /** Start at login (or not), and keep the choice in the settings file. */
  setAutostart(on: boolean): void;
  quit(): void;
}

export interface DesktopOptions {
  settings: DesktopSettings;
  /** The embedded control plane's data. */
  dataDir: string;
  /** The agent's identity and the encrypted credentials. */
  stateDir: string;
  /** The embedded control plane's grace period (tests shorten it); a remote one is assumed to use the default. */
  gracePeriodS?: number;
  /** How often the tray's machine list is refreshed. */
  pollMs?: number;
  logger?: Logger;
  /** How the server processes are made: Electron's utilityProcess.fork from main.ts; child_process.fork by default. */
  fork?: ForkHost;
}

/** The agent as the main process sees it: mirrored from its process's events. */
export interface AgentView {
  status: AgentStatus;
  sessionId: string;
  /** The credential it connects with. */
  readonly token: string;
  /** Its process (undefined while that is restarting). */
  readonly pid: number | undefined;
}

/** The embedded control plane as its process reported it when it (last) started. */
export type ControlPlaneView = ControlPlaneReady;

/** A console token lasts the working day; it is revoked when the app quits. */
const CONSOLE_TOKEN_S = 12 * 3600;

export class Desktop {
  state: DesktopState = { kind: 'connecting' };
  machine: string;
  agent: AgentView | undefined;
  /** The embedded control plane, when there is one. */
  controlPlane: ControlPlaneView | undefined;
  /** Signed in as the user (the local admin when embedded). */
  client: CmdopClient | undefined;
  private conn: Connection | undefined;
  private cpHost: HostProcess<ControlPlaneCalls, never> | undefined;
  private agentHost: HostProcess<AgentCalls, AgentEvent> | undefined;
  /** What the tray says about a server process that stopped unasked, by process. */
  private hostTrouble = new Map<string, string>();
  /** Why the agent sleeps (set by suspend, cleared by resume): a restarted agent process is put back to sleep. */
  private asleep: string | undefined;
  private consoleToken: { id: string; token: string } | undefined;
  private webUrl = '';
  private machines: string[] = [];
  private terminals: { terminalId: string; title: string }[] = [];
  private paused = false;
  private everConnected = false;
  private graceTimer: NodeJS.Timeout | undefined;
  private tick: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private unwirePower: (() => void) | undefined;
  private readonly secrets: SecretFile;
  private readonly log: Logger;
  private readonly gracePeriodS: number;

  constructor(
    private readonly host: DesktopHost,
    private readonly opts: DesktopOptions,
  ) {
    this.machine = opts.settings.machineName;
    this.secrets = new SecretFile(host.secrets, path.join(opts.stateDir, 'desktop-secrets.bin'));
    this.log = opts.logger ?? createLogger('desktop');
    this.gracePeriodS = opts.gracePeriodS ?? DEFAULT_TIMEOUTS.gracePeriodS;
  }

  get embedded(): boolean {
    return !this.opts.settings.server;
  }

  /** Where the agent connects, for people. */
  get serverLabel(): string {
    return this.embedded ? `this computer (${this.controlPlane?.address ?? this.opts.settings.listen})` : this.opts.settings.server;
  }

  async start(): Promise<void> {
    this.render();
    this.unwirePower = wirePower(this.host.power, this.sleeper());
    if (this.embedded) await this.startEmbedded();
    else await this.startRemote();
    this.poller = setInterval(() => void this.poll(), this.opts.pollMs ?? 5000);
    this.poller.unref();
  }

  async stop(): Promise<void> {
    this.unwirePower?.();
    for (const t of [this.graceTimer, this.tick, this.wakeTimer]) clearTimeout(t);
    clearInterval(this.poller);
    await this.stopAgent();
    if (this.consoleToken) await this.revokeConsoleToken();
    this.client?.close();
    await this.cpHost?.stop();
  }

  /** The tray as it should look now. */
  model(): TrayModel {
    return trayModel({
      state: this.state,
      machine: this.machine,
      server: this.serverLabel,
      machines: this.machines,
      terminals: this.terminals,
      embedded: this.embedded,
      autostart: this.opts.settings.autostart,
      nowMs: Date.now(),
      trouble: [...this.hostTrouble.values()],
    });
  }

  /** A tray menu item was chosen. Errors are shown, never thrown at Electron. */
  async run(a: MenuAction): Promise<void> {
    try {
      switch (a.kind) {
        case 'open-console':
          return this.host.openConsole(await this.consoleUrl());
        case 'new-terminal':
          return this.host.openConsole(await this.consoleUrl(`/?open=${encodeURIComponent(a.machine)}`));
        case 'share': {
          const s = await this.requireClient().auth.share(a.machine, a.terminalId, 3600);
          this.host.copyText(s.url);
          this.host.notify('Read-only link copied', `Anyone with the link can watch ${a.machine} ${a.terminalId.slice(0, 8)} for 1 hour (revoke it with \`cmdop tokens revoke\`).`);
          return;
        }
        case 'pause':
          this.paused = true;
          return this.suspend('paused');
        case 'resume':
          this.paused = false;
          return this.resume('resumed by the user');
        case 'simulate-sleep':
          return this.simulateSleep(a.seconds);
        case 'sign-in':
          return await this.signIn();
        case 'sign-out':
          return await this.signOut();
        case 'autostart':
          this.host.setAutostart(a.on);
          this.opts.settings.autostart = a.on;
          return this.render();
        case 'settings':
          return this.host.openSettings();
        case 'quit':
          return this.host.quit();
      }
    } catch (e) {
      this.host.notify('CMDOP', (e as Error).message);
    }
  }

  /** Suspends the agent for `seconds`, as a closed lid would, then wakes it. */
  simulateSleep(seconds: number): void {
    if (!this.agent) return;
    this.suspend(`simulated sleep of ${seconds} s`);
    clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => this.resume('the simulated sleep ended'), seconds * 1000);
  }

  // ---- sleep and wake

  private sleeper(): Sleeper {
    return {
      // A paused agent stays paused whatever the lid does; only the user resumes it.
      suspend: (reason) => !this.paused && this.suspend(reason),
      resume: (reason) => !this.paused && this.resume(reason),
    };
  }

  private suspend(reason: string): void {
    if (!this.agent || this.agent.status === 'suspended' || this.agent.status === 'stopped') return;
    this.log.info({ reason }, 'suspending the agent');
    this.agent.status = 'suspended';
    this.asleep = reason;
    this.agentHost?.call('suspend', { reason }).catch((e: Error) => this.log.warn({ err: e.message }, 'the agent was not told to suspend'));
    this.away(reason);
  }

  private resume(reason: string): void {
    if (!this.agent || this.agent.status === 'stopped') return;
    this.log.info({ reason }, 'resuming the agent');
    clearTimeout(this.wakeTimer);
    this.asleep = undefined;
    this.agentHost?.call('resume', {}).catch((e: Error) => this.log.warn({ err: e.message }, 'the agent was not told to resume'));
    // The state returns to connected when the agent says so.
    if (this.state.kind === 'grace') this.setState({ ...this.state, paused: false });
  }

  /** Not connected, but the control plane keeps the session until the grace period ends. */
  private away(reason: string): void {
    if (this.state.kind === 'grace') {
      // Already away: keep the deadline the control plane is counting down.
      this.setState({ ...this.state, reason, paused: this.paused });
      return;
    }
    if (this.state.kind !== 'connected') return;
    const deadlineMs = Date.now() + this.gracePeriodS * 1000;
    this.setState({ kind: 'grace', reason, deadlineMs, paused: this.paused });
    clearTimeout(this.graceTimer);
    this.graceTimer = setTimeout(() => {
      if (this.state.kind !== 'grace') return;
      this.setState({
        kind: 'disconnected',
        why: `away longer than the ${this.gracePeriodS} s grace period: the control plane has closed this machine's terminals`,
      });
    }, this.gracePeriodS * 1000);
  }

  // ---- start-up

  /** A supervised server process whose troubles the tray shows. */
  private hostProcess<C extends Methods<C>, E>(
    which: 'agent' | 'control plane',
    module: string,
    more: Partial<HostProcessOptions<E>> = {},
  ): HostProcess<C, E> {
    const h: HostProcess<C, E> = new HostProcess<C, E>({
      name: which,
      module,
      fork: this.opts.fork ?? nodeFork,
      serviceName: `CMDOP ${which}`,
      ...more,
      onDown: (why, delayMs) => {
        this.log.warn({ why, delayMs }, `the ${which} process stopped unexpectedly; restarting it`);
        this.hostTrouble.set(which, `The ${which} stopped unexpectedly (${why}); restarting…`);
        more.onDown?.(why, delayMs);
        this.render();
      },
      onUp: () => {
        this.log.info({ pid: h.pid, restarts: h.restarts }, `the ${which} process is running again`);
        this.hostTrouble.delete(which);
        more.onUp?.();
        this.render();
      },
    });
    return h;
  }

  private async startEmbedded(): Promise<void> {
    // In a process of its own (app/host/controlPlaneHost.ts); a desktop pointed at a remote control plane never starts it.
    const h = this.hostProcess<ControlPlaneCalls, never>('control plane', HOST_MODULES.controlPlane);
    this.cpHost = h;
    let start: ControlPlaneStart = { listen: this.opts.settings.listen, dataDir: this.opts.dataDir, gracePeriodS: this.gracePeriodS, logLevel: this.log.level };
    await h.run(async () => {
      const ready = await h.call('start', start);
      // A restart binds the same port: agents, clients and open windows find it again.
      start = { ...start, listen: ready.boundListen };
      this.controlPlane = ready;
    });
    const cp = this.controlPlane!;
    this.webUrl = cp.issuer;
    const api = await h.call('issueToken', { kind: TokenKind.API, name: 'desktop app', expiresInS: CONSOLE_TOKEN_S });
    this.consoleToken = api;
    this.conn = await connectionTo(cp.address, this.trustNotices());
    this.client = this.newClient(api.token);
    // Spent only when the agent has no working credential yet; revoked right after either way.
    const enroll = await h.call('issueToken', { kind: TokenKind.ENROLLMENT, name: `desktop ${this.machine}`, machine: this.machine, expiresInS: 600 });
    try {
      await this.startAgent({ enrollToken: enroll.token });
    } finally {
      await h.call('revokeToken', { id: enroll.id });
    }
  }

  private async startRemote(): Promise<void> {
    this.conn = await connectionTo(this.opts.settings.server, this.trustNotices());
    const info = await new CmdopClient({ server: this.conn.address.display, credentials: this.conn.credentials, channelOptions: this.conn.channelOptions }).auth.serverInfo();
    this.webUrl = info.webUrl;
    if (!this.secrets.login(this.conn.address.display)) {
      this.setState({ kind: 'signed-out' });
      return;
    }
    this.client = this.newClient(await this.userToken());
    await this.startAgent({ userToken: await this.userToken() });
  }

  /** Device flow in the system browser; then the agent is enrolled as the user's. */
  private async signIn(): Promise<void> {
    const conn = this.conn!;
    const anon = this.newClient(undefined);
    try {
      const login = await deviceLogin(conn, anon, {
        present: (d) => {
          this.host.openExternal(d.verificationUriComplete);
          this.host.notify('Sign in to CMDOP', `Check that the browser shows the code ${d.userCode}, then approve.`);
        },
      });
      const me = await this.newClient(login.accessToken).auth.whoami();
      this.secrets.setLogin(conn.address.display, { ...login, user: me.user });
    } finally {
      anon.close();
    }
    this.client = this.newClient(await this.userToken());
    await this.startAgent({ userToken: await this.userToken() });
  }

  private async signOut(): Promise<void> {
    const conn = this.conn!;
    const key = conn.address.display;
    const login = this.secrets.login(key);
    const cred = this.secrets.agentStore().read(key);
    await this.stopAgent();
    // The machine's own credential and the sign-in both stop working now, not at expiry.
    if (this.client && cred) await this.client.auth.revokeToken(cred.tokenId).catch(() => {});
    if (this.consoleToken) await this.revokeConsoleToken();
    if (login) await oauthClientFor(conn, login.clientId).revoke(login.revocationEndpoint, login.refreshToken).catch(() => {});
    this.secrets.update((v) => {
      delete v.agents[key];
      delete v.logins[key];
    });
    this.client?.close();
    this.client = undefined;
    this.everConnected = false;
    this.setState({ kind: 'signed-out' });
  }

  private async startAgent(how: { enrollToken?: string; userToken?: string }): Promise<void> {
    const conn = this.conn!;
    const unavailable = this.secrets.unavailable();
    if (unavailable) {
      this.setState({ kind: 'signed-out', why: `cannot keep the agent's credential: ${unavailable}` });
      return;
    }
    const cred = await agentCredential(conn, {
      stateDir: this.opts.stateDir,
      machine: this.machine,
      nameGiven: true,
      ...how,
      interactive: false,
      store: this.secrets.agentStore(),
      log: (line) => this.log.info(line),
    });
    this.machine = cred.machine;
    // In a process of its own (app/host/agentHost.ts); it resolves the server's trust itself, from the same pins.
    const start: AgentStart = { server: conn.server, token: cred.token, name: cred.machine, stateDir: this.opts.stateDir, logLevel: this.log.level };
    const h: HostProcess<AgentCalls, AgentEvent> = this.hostProcess<AgentCalls, AgentEvent>('agent', HOST_MODULES.agent, {
      onEvent: (e) => {
        if (h !== this.agentHost) return;
        if (e.event === 'status') {
          agent.sessionId = e.sessionId || agent.sessionId;
          this.onAgentStatus(e.status);
        } else if (e.event === 'fatal') {
          agent.status = 'stopped';
          this.setState({ kind: 'disconnected', why: e.message });
        } else {
          this.host.notify('CMDOP: the previous session ended', `${e.reason}. Its terminals were closed; this machine is reachable again.`);
        }
      },
      // Its process is gone, and with it the session's resume token: the control plane keeps the session until the grace period ends.
      onDown: () => {
        agent.status = 'offline';
        if (this.everConnected) this.away('the agent process stopped unexpectedly');
      },
    });
    const agent: AgentView = {
      status: 'connecting',
      sessionId: '',
      token: cred.token,
      get pid() {
        return h.pid;
      },
    };
    this.agentHost = h;
    this.agent = agent;
    try {
      await h.run(async () => {
        const restarted = agent.sessionId !== '';
        const ready = await h.call('start', start);
        agent.sessionId = ready.sessionId;
        if (restarted) {
          this.host.notify('CMDOP: the agent restarted', 'Its process stopped unexpectedly. This machine is reachable again with a new session; the terminals it had were closed.');
        }
        // Asleep or paused while the process restarted: it stays so.
        if (this.asleep !== undefined) await h.call('suspend', { reason: this.asleep });
      });
    } catch (e) {
      this.agentHost = undefined;
      this.agent = undefined;
      throw e;
    }
    this.onAgentStatus(this.asleep === undefined ? 'connected' : 'suspended');
    void this.poll();
  }

  /** The agent's process is told to quit (the agent ends its terminals), and killed if it does not. */
  private async stopAgent(): Promise<void> {
    const h = this.agentHost;
    this.agentHost = undefined;
    if (this.agent) this.agent.status = 'stopped';
    this.agent = undefined;
    this.asleep = undefined;
    this.hostTrouble.delete('agent');
    await h?.stop();
  }

  private onAgentStatus(s: AgentStatus): void {
    if (this.agent) this.agent.status = s;
    if (s === 'connected') {
      clearTimeout(this.graceTimer);
      this.everConnected = true;
      this.setState({ kind: 'connected' });
    } else if (s === 'suspended' && this.state.kind === 'grace') {
      // The agent confirming a suspend asked for here: the tray already says why.
    } else if ((s === 'offline' || s === 'suspended') && this.everConnected) {
      this.away(s === 'offline' ? 'the connection to the control plane dropped' : 'suspended');
    }
  }

  /** What the CLI prints about TLS trust goes to the log here (sdk/connect.ts writes nothing itself). */
  private trustNotices(): TrustOptions {
    return {
      onFirstUse: (server, fp) => this.log.info({ server, fingerprint: fp }, `first connection to ${server}: pinned its certificate SHA256 ${fp}`),
      onNotice: (message) => this.log.warn(message),
    };
  }

  // ---- the user's side: console, machine list

  private newClient(token: string | undefined): CmdopClient {
    const c = this.conn!;
    return new CmdopClient({ server: c.address.display, credentials: c.credentials, channelOptions: c.channelOptions, token });
  }

  private requireClient(): CmdopClient {
    if (!this.client) throw new Error('sign in first');
    return this.client;
  }

  /** The console, signed in: a 12-hour API token of the user's in the fragment (never sent to a server). */
  private async consoleUrl(pathAndQuery = '/'): Promise<string> {
    if (!this.consoleToken) {
      const t = await this.requireClient().auth.createToken('desktop console', CONSOLE_TOKEN_S);
      this.consoleToken = { id: t.info!.id, token: t.token };
    }
    return `${this.webUrl}${pathAndQuery}#token=${encodeURIComponent(this.consoleToken.token)}`;
  }

  private async revokeConsoleToken(): Promise<void> {
    const t = this.consoleToken!;
    this.consoleToken = undefined;
    if (this.cpHost) await this.cpHost.call('revokeToken', { id: t.id }).catch((e: Error) => this.log.warn({ err: e.message }, 'the console token was not revoked'));
    else await this.client?.auth.revokeToken(t.id).catch(() => {});
  }

  /**
   * The user's access token for a remote control plane, refreshed when due
   * by the SDK's refresher, one at a time under the vault's lock (refresh
   * tokens rotate). A refused refresh throws its OAuthError and keeps the
   * sign-in.
   */
  private async userToken(): Promise<string> {
    const conn = this.conn!;
    const l = await freshLogin(this.secrets.loginStore(), conn.address.display, {
      oauth: (clientId) => oauthClientFor(conn, clientId),
      onRefreshed: (next) => this.client?.setToken(next.accessToken),
    });
    if (!l) throw new Error('sign in first');
    return l.accessToken;
  }

  /** The machines for "New terminal to…" and this machine's terminals for "Share read-only…". */
  async poll(): Promise<void> {
    if (!this.client) return;
    try {
      if (!this.embedded) this.client.setToken(await this.userToken());
      const list = await this.client.machines.list();
      this.machines = list.filter((m) => m.state === SessionState.CONNECTED || m.state === SessionState.BACKGROUND).map((m) => m.name);
      const mine = list.find((m) => m.name === this.machine);
      this.terminals = (mine?.terminals ?? []).filter((t) => !t.exited).map((t) => ({ terminalId: t.terminalId, title: t.terminalId.slice(0, 8) }));
      this.render();
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'machine list not refreshed');
    }
  }

  // ---- tray

  private setState(s: DesktopState): void {
    this.state = s;
    clearInterval(this.tick);
    // The tooltip counts the grace period down.
    if (s.kind === 'grace') {
      this.tick = setInterval(() => this.render(), 1000);
      this.tick.unref();
    }
    this.render();
  }

  private render(): void {
    this.host.tray.render(this.model());
  }
}
