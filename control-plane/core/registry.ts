// Which agents are here: registration (a new session), resume (the same
// session inside its grace period), lookup by machine name, and the machines
// list, which also shows agents seen before whose sessions have ended.
import { randomUUID, timingSafeEqual } from 'node:crypto';
import {
  ControlMessage,
  MachineInfo,
  BulkHello,
  Capabilities,
  Register,
  Resume,
  Resumed,
  SessionState,
  nameError,
  PROTOCOL_VERSION,
  protocolOf,
} from '../../protocol';
import { ApiError, HeldElsewhere, invalid, notFound, type ReplicaRef } from './errors';
import { AgentCall, AgentSession, SessionDeps, newResumeToken, resumeHash } from './session';
import { olderAgentNotice } from './versions';


export class Registry {
  /** Sessions not yet DISCONNECTED, by machine name and by session id. */
  private byName = new Map<string, AgentSession>();
  private bySession = new Map<string, AgentSession>();
  /** Sessions handed back by drain(), whose last writes settled() still waits for. */
  private draining: AgentSession[] = [];

  constructor(
    private deps: Omit<SessionDeps, 'onEnded' | 'onLost'> & {
      /** A session this replica took over from another (or from none): the others are told (cluster/bus.ts). */
      onClaimed?(session: AgentSession): void;
      /** Replicas heard from within this long are alive; sessions held by any other are orphans. */
      replicaDeadMs: number;
      /**
       * This replica is the only one there can be (the embedded default: one
       * process on its SQLite file), so a session held by any other replica
       * was held by a process before this one, which is gone.
       */
      alone?: boolean;
    },
  ) {}

  register(call: AgentCall, reg: Register): AgentSession {
    const badName = nameError('machine name', reg.name);
    if (badName) throw invalid(badName);
    if (!reg.agentId || reg.agentId.length > 128) throw invalid('agent_id must be 1-128 characters');
    const existing = this.byName.get(reg.name);
    if (existing) {
      if (existing.agentId !== reg.agentId) {
        throw new ApiError(
          'ALREADY_EXISTS',
          `machine name ${JSON.stringify(reg.name)} is in use by another agent (${SessionState[existing.state]}); choose another --name`,
        );
      }
      // The same agent registering again (it restarted): its old session is over.
      existing.transition(SessionState.DISCONNECTED, 'the agent registered a new session');
    }
    for (const s of this.bySession.values()) {
      if (s.agentId === reg.agentId) s.transition(SessionState.DISCONNECTED, `the agent registered again as ${reg.name}`);
    }
    const caps = reg.capabilities ?? EMPTY_CAPS;
    const resumeToken = newResumeToken();
    const session = AgentSession.create(randomUUID(), reg.agentId, reg.name, caps, resumeHash(resumeToken), this.sessionDeps());
    this.byName.set(reg.name, session);
    this.bySession.set(session.sessionId, session);
    session.bindStream(call);
    const registered: ControlMessage = {
      msg: {
        $case: 'registered',
        value: {
          sessionId: session.sessionId,
          resumeToken,
          heartbeatIntervalS: this.deps.timeouts.heartbeatIntervalS,
        },
      },
    };
    call.write(registered);
    session.transition(SessionState.CONNECTED, 'agent registered');
    warnIfOlder(session);
    if (reg.orphanedTerminalIds.length > 0) {
      session.logger.info({ terminals: reg.orphanedTerminalIds }, 'terminals of an ended session were closed by the agent');
    }
    return session;
  }

  async resume(call: AgentCall, res: Resume): Promise<AgentSession> {
    // Held elsewhere (another replica, or a process before this one): the session follows its agent here.
    const session = this.bySession.get(res.sessionId) ?? (await this.takeOver(res));
    if (!session) {
      const ended = await this.deps.store.session(res.sessionId);
      throw new ApiError(
        'NOT_FOUND',
        ended ? `session ${res.sessionId} has ended (${ended.reason}); register a new one` : `no session ${res.sessionId}`,
      );
    }
    if (session.agentId !== res.agentId || !sameToken(res.resumeToken, session.resumeHash)) {
      throw new ApiError('PERMISSION_DENIED', `resume token does not match session ${res.sessionId}`);
    }
    // Relays rebuilt after a restart learn here where their output stands.
    for (const t of res.terminals) session.terminals.get(t.terminalId)?.restoreFrom(t.ackedSeq, t.producedSeq);
    for (const t of res.terminals) {
      const relay = session.terminals.get(t.terminalId);
      if (relay && relay.log.head > t.producedSeq) {
        throw invalid(
          `terminal ${t.terminalId}: the control plane holds ${relay.log.head} bytes but the agent says it produced ${t.producedSeq}`,
        );
      }
    }
    const resumed: Resumed = { sessionId: session.sessionId, terminals: [], closedTerminalIds: [] };
    const agentHas = new Set<string>();
    for (const t of res.terminals) {
      agentHas.add(t.terminalId);
      const relay = session.terminals.get(t.terminalId);
      if (!relay) resumed.closedTerminalIds.push(t.terminalId);
      else resumed.terminals.push({ terminalId: t.terminalId, fromSeq: relay.log.head });
    }
    if (res.capabilities) session.setCapabilities(res.capabilities);
    session.bindStream(call);
    call.write({ msg: { $case: 'resumed', value: resumed } });
    for (const t of res.terminals) session.terminals.get(t.terminalId)?.onAgentResumed(t.ackedSeq);
    for (const relay of session.terminals.values()) {
      if (!agentHas.has(relay.id) && !relay.exit && !session.isOpening(relay.id)) {
        relay.onExit({
          terminalId: relay.id, exitCode: -1, signal: '', finalSeq: relay.log.head,
          error: 'the agent no longer has this terminal',
        });
      }
    }
    session.settleOpens(agentHas);
    session.transition(SessionState.CONNECTED, 'agent resumed its session');
    if (res.capabilities) warnIfOlder(session);
    return session;
  }

  /**
   * An agent resumes here a session the store says is live but this replica
   * does not hold: take it over (epoch + 1, so its previous holder's writes
   * change nothing from now on), rebuild it as after a restart, and let the
   * resume go on as for a session held here. Undefined: the store has no
   * live session by that id.
   */
  private async takeOver(res: Resume): Promise<AgentSession | undefined> {
    const row = await this.deps.store.openSession(res.sessionId);
    if (!row) return undefined;
    // Checked before anything changes: a wrong token takes nothing over.
    if (row.agentId !== res.agentId || !sameToken(res.resumeToken, row.resumeHash)) {
      throw new ApiError('PERMISSION_DENIED', `resume token does not match session ${res.sessionId}`);
    }
    const local = this.bySession.get(res.sessionId);
    if (local) return local; // taken over by an earlier resume while this one read the store
    const epoch = await this.deps.store.claim(row.sessionId, this.deps.replica, row.epoch);
    if (epoch === undefined) throw new ApiError('UNAVAILABLE', `session ${res.sessionId} is being taken over by another control plane replica; try again`);
    const already = this.bySession.get(res.sessionId);
    if (already) return already;
    const caps = (await this.deps.store.agentCapabilities(row.agentId)) ?? EMPTY_CAPS;
    const session = AgentSession.restore(row, epoch, caps, await this.deps.store.terminalsOf(row.sessionId), this.sessionDeps(), 'its agent moved to this control plane replica');
    const other = this.byName.get(session.name);
    if (other && other !== session) other.transition(SessionState.DISCONNECTED, 'another session of this machine was resumed');
    this.byName.set(session.name, session);
    this.bySession.set(session.sessionId, session);
    session.logger.info({ epoch, from: row.owner || '(none)' }, 'took the session over');
    this.deps.onClaimed?.(session);
    return session;
  }

  /**
   * Another replica took `sessionId` over (the bus says so, or a fenced
   * write found out): stop serving it here without ending it. Its agent is
   * there; clients attached here are told to re-attach.
   */
  release(sessionId: string, epoch: number, reason: string): void {
    const s = this.bySession.get(sessionId);
    if (!s || s.epoch >= epoch) return;
    this.drop(s, reason);
  }

  private drop(s: AgentSession, reason: string): void {
    s.logger.info({ reason }, 'no longer serving this session');
    s.drain(0, reason);
    this.forget(s);
  }

  /**
   * What happens to sessions whose replica stopped answering (any replica
   * may run it; the store decides, so each change happens once): the live
   * ones enter their grace period, the ones whose grace period ran out end.
   */
  async sweep(): Promise<{ graced: string[]; ended: string[] }> {
    const live = (await this.liveReplicas()).map((r) => r.id);
    if (!live.includes(this.deps.replica)) live.push(this.deps.replica);
    const r = await this.deps.store.sweepOrphans(live, this.deps.timeouts.gracePeriodS * 1000);
    return { graced: r.graced, ended: r.ended.map((e) => e.name) };
  }

  /** The other live replicas that take forwarded calls (their --peer-listen). */
  async peers(): Promise<ReplicaRef[]> {
    return (await this.liveReplicas()).filter((r) => r.id !== this.deps.replica && r.peer);
  }

  /** The replicas alive now (this one included). */
  private async liveReplicas(): Promise<ReplicaRef[]> {
    if (this.deps.alone) return [{ id: this.deps.replica, peer: '', peerCert: '' }];
    return this.deps.store.liveReplicas(Date.now() - this.deps.replicaDeadMs);
  }

  /** The machine name of a live session, if there is one. */
  /** The live session a Bulk stream's hello names, if its resume token matches. */
  bulkSession(hello: BulkHello): AgentSession {
    const session = this.bySession.get(hello.sessionId);
    if (!session) throw new ApiError('NOT_FOUND', `no session ${hello.sessionId}`);
    if (!sameToken(hello.resumeToken, session.resumeHash)) {
      throw new ApiError('PERMISSION_DENIED', `resume token does not match session ${hello.sessionId}`);
    }
    return session;
  }

  sessionName(sessionId: string): string | undefined {
    return this.bySession.get(sessionId)?.name;
  }

  /** A live (not DISCONNECTED) machine by name. */
  async machine(name: string): Promise<AgentSession> {
    const s = this.byName.get(name);
    if (s) return s;
    const held = await this.deps.store.openSessionNamed(name);
    if (held && held.owner && held.owner !== this.deps.replica) {
      const owner = (await this.liveReplicas()).find((r) => r.id === held.owner);
      // Its agent is on another live replica: the call goes there (core/clientCalls.ts forwards it).
      if (owner?.peer) throw new HeldElsewhere(name, owner);
      if (owner) {
        throw new ApiError('UNAVAILABLE', `machine ${name} is connected to another control plane replica, which takes no forwarded calls (it runs without --peer-listen); connect to that one`);
      }
    }
    if (held) {
      // Held by no live replica: its agent is on its way back to one (a restart, a replica gone).
      const left = Math.ceil((held.deadlineMs - Date.now()) / 1000);
      const why = held.state === SessionState.GRACE_PERIOD ? held.reason : 'the control plane restarted';
      const kept = held.state === SessionState.GRACE_PERIOD && left > 0 ? `; its session is kept for ${left} s more` : '';
      throw new ApiError('UNAVAILABLE', `machine ${name} is reconnecting (${why})${kept}`);
    }
    const agent = (await this.deps.store.agents()).find((a) => a.name === name);
    if (!agent) throw notFound(`no machine named ${JSON.stringify(name)}`, 'machine_not_found');
    // Say why it is gone, and how long ago: "DISCONNECTED" alone reads as "down" when it may be on its way back.
    const last = (await this.deps.store.latestSessions()).find((x) => x.agentId === agent.agentId);
    const ago = last ? ` ${ageText(Date.now() - last.updatedMs)} ago` : '';
    throw notFound(`machine ${name} is DISCONNECTED${last ? ` (${last.reason},${ago})` : ''}`, 'machine_not_found');
  }

  /** Resolves once every session's writes made so far have landed (before the store closes). */
  async settled(): Promise<void> {
    await Promise.all([...this.bySession.values(), ...this.draining].map((s) => s.settled()));
  }

  /**
   * This replica's view against the store's, after the store may have
   * moved on without it (its heartbeat was late: the others may have taken
   * it for dead and swept its sessions). A session the store no longer
   * gives to this replica at this epoch is dropped here: its agent
   * resumes, here or elsewhere, and the store is right again. The others
   * go on untouched. Resolves with how many were dropped.
   */
  async reconcile(): Promise<number> {
    const mine = this.sessions();
    const rows = new Map((await this.deps.store.holders(mine.map((s) => s.sessionId))).map((r) => [r.sessionId, r]));
    let dropped = 0;
    for (const s of mine) {
      const r = rows.get(s.sessionId);
      if (r && r.owner === this.deps.replica && r.epoch === s.epoch && r.state !== SessionState.GRACE_PERIOD && r.state !== SessionState.DISCONNECTED) continue;
      if (this.bySession.get(s.sessionId) !== s) continue; // gone meanwhile
      this.drop(s, 'the store gave this session up while this control plane replica was not heard from');
      dropped++;
    }
    return dropped;
  }

  sessions(): AgentSession[] {
    return [...this.bySession.values()];
  }

  async listMachines(): Promise<MachineInfo[]> {
    const [agents, sessions, open] = await Promise.all([this.deps.store.agents(), this.deps.store.latestSessions(), this.deps.store.openSessions()]);
    // Live on another replica (or waiting for its agent to come back to one): the store says how it stands.
    const elsewhere = new Map(open.filter((o) => !this.bySession.has(o.sessionId)).map((o) => [o.agentId, o]));
    const live = new Map<string, MachineInfo>();
    for (const s of this.byName.values()) live.set(s.agentId, s.info());
    const latest = new Map(sessions.map((s) => [s.agentId, s]));
    const out: MachineInfo[] = [];
    // A session registered a moment ago whose agent row is still being written is listed too.
    const known = new Set(agents.map((a) => a.agentId));
    for (const s of this.byName.values()) if (!known.has(s.agentId)) out.push(s.info());
    for (const a of agents) {
      const l = live.get(a.agentId);
      if (l) {
        out.push(l);
        continue;
      }
      if (this.byName.has(a.name)) continue; // the name now belongs to another agent
      const o = elsewhere.get(a.agentId);
      if (o) {
        out.push({
          agentId: a.agentId,
          name: a.name,
          capabilities: a.capabilities,
          state: o.state,
          stateReason: o.reason,
          stateSinceMs: o.updatedMs,
          sessionId: o.sessionId,
          graceDeadlineMs: o.deadlineMs,
          lastHeartbeat: undefined,
          heartbeatAgeMs: 0,
          heartbeatIntervalMs: 0,
          terminals: [],
          agentUptimeMs: 0,
          agentNotice: olderAgentNotice(a.capabilities),
        });
        continue;
      }
      const s = latest.get(a.agentId);
      out.push({
        agentId: a.agentId,
        name: a.name,
        capabilities: a.capabilities,
        state: SessionState.DISCONNECTED,
        stateReason: s?.reason ?? 'no session',
        stateSinceMs: s?.updatedMs ?? a.lastSeenMs,
        sessionId: s?.sessionId ?? '',
        graceDeadlineMs: 0,
        lastHeartbeat: undefined,
        heartbeatAgeMs: 0,
        heartbeatIntervalMs: 0,
        terminals: [],
        agentUptimeMs: 0,
        agentNotice: olderAgentNotice(a.capabilities),
      });
    }
    return out.sort((x, y) => x.name.localeCompare(y.name));
  }

  /**
   * On start: take over the sessions a previous run left open. Each waits in
   * GRACE_PERIOD for its agent (which reconnects by itself) unless its grace
   * period ran out while no control plane was running.
   */
  async restore(): Promise<{ restored: number; ended: number }> {
    let restored = 0;
    let ended = 0;
    const caps = new Map((await this.deps.store.agents()).map((a) => [a.agentId, a.capabilities]));
    // Sessions another live replica holds are its own; the rest (a previous process's, a dead replica's) are taken over here.
    const live = new Set((await this.liveReplicas()).map((r) => r.id));
    live.delete(this.deps.replica);
    for (const row of await this.deps.store.openSessions()) {
      if (row.owner && live.has(row.owner)) continue;
      const expired = row.state === SessionState.GRACE_PERIOD && row.deadlineMs <= Date.now();
      if (row.state === SessionState.PENDING || row.resumeHash.length === 0 || expired || this.byName.has(row.name)) {
        const reason = expired
          ? 'its grace period ran out while the control plane was not running'
          : 'the control plane restarted before this session could be resumed';
        if (await this.deps.store.transition(row.sessionId, row.state, SessionState.DISCONNECTED, reason, 0, { owner: row.owner, epoch: row.epoch })) ended++;
        continue;
      }
      const epoch = await this.deps.store.claim(row.sessionId, this.deps.replica, row.epoch);
      if (epoch === undefined) continue; // another replica took it first
      const session = AgentSession.restore(
        row,
        epoch,
        caps.get(row.agentId) ?? EMPTY_CAPS,
        await this.deps.store.terminalsOf(row.sessionId),
        this.sessionDeps(),
        'the control plane restarted',
      );
      this.byName.set(session.name, session);
      this.bySession.set(session.sessionId, session);
      restored++;
    }
    return { restored, ended };
  }

  /**
   * This process is stopping: every agent is told to come back (each after
   * its own delay within `spreadMs`, so they do not return at once) and every
   * client to re-attach. Sessions stay open in the store for the next process.
   */
  drain(reason: string, spreadMs: number): void {
    this.draining = [...this.bySession.values()];
    for (const s of this.draining) s.drain(Math.round(Math.random() * spreadMs), reason);
    this.byName.clear();
    this.bySession.clear();
  }

  private sessionDeps(): SessionDeps {
    return {
      ...this.deps,
      onEnded: (s) => this.forget(s),
      onLost: (s, reason) => {
        if (this.bySession.get(s.sessionId) === s) this.drop(s, reason);
      },
    };
  }

  private forget(s: AgentSession): void {
    this.bySession.delete(s.sessionId);
    if (this.byName.get(s.name) === s) this.byName.delete(s.name);
  }
}

/** An agent older than our protocol is logged as it registers or resumes (the machines list says so too). */
function warnIfOlder(session: AgentSession): void {
  const notice = olderAgentNotice(session.capabilities);
  if (notice) {
    session.logger.warn({ agentVersion: session.capabilities.version, agentProtocol: protocolOf(session.capabilities.protocolVersion), protocol: PROTOCOL_VERSION }, notice);
  }
}

/** A resume token against the hash kept of it (equal-length digests, compared in constant time). */
function sameToken(given: Uint8Array, expectedHash: Buffer): boolean {
  return expectedHash.length === 32 && timingSafeEqual(resumeHash(given), expectedHash);
}

const EMPTY_CAPS: Capabilities = { os: '', arch: '', hostname: '', shells: [], pty: false, files: false, version: '', protocolVersion: 0, uptimeMs: 0 };

/** "4 s", "3 min", "2 h": how long ago something happened, for people. */
export function ageText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}
