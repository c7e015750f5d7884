// The control plane's Prometheus metrics: one prom-client Registry per
// control plane (never the library's global one: several control planes may
// share a process), its gauges computed when /metrics is scraped from what
// the core holds (sessions, terminals, attachments), its totals read from
// the plain counters the core keeps (core/counters.ts), the gRPC latency
// histogram fed by the gRPC transport (transports/grpc/callTiming.ts), and
// prom-client's process defaults (CPU, memory, event-loop lag, GC, handles).
// Every series is listed in the README, "Metrics".
import { Counter, Gauge, Histogram, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';
import { AttachMode, SessionState } from '../../../protocol';
import type { Counters } from '../../core/counters';
import type { Registry } from '../../core/registry';
import type { CallObserver } from '../grpc/callTiming';

/** The states a session held here can be in (an ended session is forgotten at once). */
const STATES = [SessionState.PENDING, SessionState.CONNECTED, SessionState.BACKGROUND, SessionState.GRACE_PERIOD] as const;

export interface ControlPlaneMetrics {
  readonly registry: PromRegistry;
  /** For the gRPC ports: each unary call's method, status code and seconds. */
  readonly observeCall: CallObserver;
}

export function createMetrics(src: { registry: Registry; counters: Counters; version: string; replica: string }): ControlPlaneMetrics {
  const registry = new PromRegistry();
  const { counters } = src;
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'cmdop_build_info',
    help: 'This control plane: its version and replica id (always 1).',
    labelNames: ['version', 'replica'],
    registers: [registry],
  }).set({ version: src.version, replica: src.replica }, 1);

  new Gauge({
    name: 'cmdop_sessions',
    help: 'Agent sessions this control plane holds, by state.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const n = new Map<SessionState, number>(STATES.map((s) => [s, 0]));
      for (const s of src.registry.sessions()) if (n.has(s.state)) n.set(s.state, n.get(s.state)! + 1);
      for (const [state, count] of n) this.set({ state: SessionState[state] }, count);
    },
  });

  new Gauge({
    name: 'cmdop_agents_connected',
    help: 'Agents whose Connect stream is open to this control plane now.',
    registers: [registry],
    collect() {
      let n = 0;
      for (const s of src.registry.sessions()) if (s.agentConnected()) n++;
      this.set(n);
    },
  });

  new Gauge({
    name: 'cmdop_terminals',
    help: 'Terminals of the sessions held here: running, or exited and still kept for their clients.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      let running = 0;
      let exited = 0;
      for (const s of src.registry.sessions()) for (const t of s.terminals.values()) t.exit ? exited++ : running++;
      this.set({ state: 'running' }, running);
      this.set({ state: 'exited' }, exited);
    },
  });

  new Gauge({
    name: 'cmdop_attachments',
    help: 'Clients attached to terminals here, by mode.',
    labelNames: ['mode'],
    registers: [registry],
    collect() {
      let operators = 0;
      let observers = 0;
      for (const s of src.registry.sessions()) {
        for (const t of s.terminals.values()) for (const a of t.attachments) a.mode === AttachMode.OPERATOR ? operators++ : observers++;
      }
      this.set({ mode: 'OPERATOR' }, operators);
      this.set({ mode: 'OBSERVER' }, observers);
    },
  });

  /** A counter whose values the core keeps: set from them at each scrape. */
  const totals = <L extends string>(name: string, help: string, label: L, read: () => Iterable<[string, number]>) =>
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        this.reset();
        for (const [v, n] of read()) this.inc({ [label]: v } as Record<L, string>, n);
      },
    });

  totals('cmdop_relay_bytes_total', 'Terminal bytes through the relay: output from agents, output to clients (each attachment counted), input to agents.', 'direction', () => [
    ['from_agent', counters.relayFromAgent],
    ['to_clients', counters.relayToClients],
    ['to_agent', counters.relayToAgent],
  ]);
  totals('cmdop_file_bytes_total', 'File bytes routed between clients and agents: downloads (from agents), uploads (to agents).', 'direction', () => [
    ['download', counters.fileDownload],
    ['upload', counters.fileUpload],
  ]);
  totals('cmdop_auth_refusals_total', 'Calls refused for their token (UNAUTHENTICATED, by why) or for what it may do (denied).', 'reason', () => counters.authRefusals);

  const calls = new Histogram({
    name: 'cmdop_grpc_call_duration_seconds',
    help: 'Unary gRPC calls (client, auth and peer ports), from arrival to answer, by method and status code.',
    labelNames: ['method', 'code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  return {
    registry,
    observeCall: (method, code, seconds) => calls.observe({ method, code }, seconds),
  };
}
