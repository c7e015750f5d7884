// Many idle agents in one process, for the 10,000-agent figure (issue 3):
// each is a real AgentService.Connect stream that registers with a unique
// agent_id and name, then sends a heartbeat at a set interval, like an agent
// with no terminals. Run as a child of the bench (bench/idleAgents.ts), which
// talks to it over the IPC channel:
//
//   argv[2]: JSON { server, count, perChannel, prefix, heartbeatS, credentials, connectPerS? }
//            (credentials: a JSON file holding one agent credential per agent, in order;
//            agent i registers as `${prefix}-${i padded to 5}`, the machine its credential is for)
//   child -> parent: { t: 'progress' | 'ready', registered, refused, lost, retries }
//                    { t: 'stats', heartbeats, registered, lost, retries, resumed, live }
//                    { t: 'allLive', resumed, lost } (every agent's stream is up again)
//   parent -> child: { t: 'interval', s } (new heartbeat interval)
//                    { t: 'stats' } | { t: 'stop' }
//
// Streams are spread over channels of `perChannel` streams each. Every
// channel uses a local subchannel pool, so it has its own TCP connection
// (grpc-js otherwise shares one connection between channels to the same
// address with the same options).
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import {
  AgentMessage,
  AgentServiceDefinition,
  ControlMessage,
  DEFAULT_TIMEOUTS,
  toGrpcService,
  PROTOCOL_VERSION,
} from '../protocol';
import { RESUME_BACKOFF_MAX_MS, agentChannelOptions } from '../app/agent/agent';

interface SimConfig {
  server: string;
  count: number;
  perChannel: number;
  prefix: string;
  heartbeatS: number;
  credentials: string;
  /** Like the agent: a registered agent whose stream is lost resumes its session (the restart bench). */
  resume?: boolean;
  /** First connects spread at this many per second (a fleet coming up over time); absent: all at once. */
  connectPerS?: number;
}

type Call = grpc.ClientDuplexStream<AgentMessage, ControlMessage>;

interface SimAgent {
  call: Call;
  sessionId: string;
  resumeToken: Uint8Array;
  attempts: number;
  /** Its current stream is registered or resumed. */
  live: boolean;
}

interface Channel {
  connect(metadata: grpc.Metadata): Call;
}

/** The name agent `i` of a simulator registers as; the bench enrolls exactly these. */
export function simAgentName(prefix: string, i: number): string {
  return `${prefix}-${String(i).padStart(5, '0')}`;
}

const AgentClient = grpc.makeGenericClientConstructor(toGrpcService(AgentServiceDefinition), 'AgentService');

const send = (m: object) => process.send?.(m);

function main(): void {
  const cfg = JSON.parse(process.argv[2]) as SimConfig;
  const credentials = JSON.parse(fs.readFileSync(cfg.credentials, 'utf8')) as string[];
  if (credentials.length !== cfg.count) throw new Error(`${cfg.credentials}: ${credentials.length} credentials for ${cfg.count} agents`);
  const channels: grpc.Client[] = [];
  const agents: SimAgent[] = [];
  let registered = 0;
  let refused = 0;
  let lost = 0;
  let heartbeats = 0;
  let retries = 0;
  let resumed = 0;
  /** Agents whose current stream is registered or resumed. */
  let live = 0;
  let stopping = false;
  let readySent = false;
  const capabilities = {
    os: 'linux',
    arch: 'x64',
    hostname: 'sim-host',
    shells: ['/bin/bash', '/bin/sh'],
    pty: true,
    files: true,
    version: '0.1.0',
    protocolVersion: PROTOCOL_VERSION,
    uptimeMs: 0,
  };

  const keepaliveMs = DEFAULT_TIMEOUTS.keepaliveS * 1000;
  for (let i = 0; i < cfg.count; i++) {
    if (i % cfg.perChannel === 0) {
      // The agent's own channel options (app/agent/agent.ts), plus a channel of its own.
      channels.push(
        new AgentClient(cfg.server, grpc.credentials.createInsecure(), {
          ...agentChannelOptions(keepaliveMs),
          'grpc.use_local_subchannel_pool': 1,
          // The agent dials a fresh channel on every attempt (no grpc-js backoff of its own);
          // a shared channel's reconnects follow the agent's policy instead (RESUME_BACKOFF_MAX_MS).
          'grpc.initial_reconnect_backoff_ms': 250,
          'grpc.max_reconnect_backoff_ms': RESUME_BACKOFF_MAX_MS,
        }),
      );
    }
    const agent: SimAgent = { call: undefined as unknown as Call, sessionId: '', resumeToken: new Uint8Array(), attempts: 0, live: false };
    agents.push(agent);
    const channel = channels[channels.length - 1] as unknown as Channel;
    if (cfg.connectPerS) setTimeout(() => connect(agent, channel, i), (i / cfg.connectPerS) * 1000);
    else connect(agent, channel, i);
  }

  /**
   * One agent's stream. A stream that fails before it is registered is
   * retried like the agent does (exponential backoff with jitter, here
   * capped at 5 s): with one connection per agent, thousands of connects at
   * once overflow the listen backlog, and real agents retry too.
   */
  function connect(agent: SimAgent, channel: Channel, i: number): void {
    const name = simAgentName(cfg.prefix, i);
    // Like the agent: its credential as a bearer token on every connect.
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${credentials[i]}`);
    const call = channel.connect(md);
    agent.call = call;
    agent.attempts++;
    let failed = false;
    const retry = (ceilingMs: number) => {
      const ceiling = Math.min(ceilingMs, 250 * 2 ** Math.min(agent.attempts - 1, 10));
      setTimeout(() => connect(agent, channel, i), ceiling / 2 + (Math.random() * ceiling) / 2);
    };
    const down = () => {
      if (!agent.live) return;
      agent.live = false;
      live--;
    };
    const onFail = () => {
      if (stopping || failed) return;
      failed = true;
      down();
      if (agent.sessionId) {
        lost++;
        // The agent's own policy with a session to resume (app/agent/agent.ts).
        if (cfg.resume) retry(RESUME_BACKOFF_MAX_MS);
        return;
      }
      retries++;
      retry(5000);
    };
    const up = () => {
      agent.attempts = 0;
      agent.live = true;
      if (++live === cfg.count) send({ t: 'allLive', resumed, lost });
    };
    call.on('data', (m: ControlMessage) => {
      if (m.msg?.$case === 'registered') {
        agent.sessionId = m.msg.value.sessionId;
        agent.resumeToken = m.msg.value.resumeToken;
        registered++;
        up();
        if (registered % 250 === 0) send({ t: 'progress', registered, refused, lost, retries });
        checkReady();
      } else if (m.msg?.$case === 'resumed') {
        resumed++;
        up();
      } else if (m.msg?.$case === 'drain') {
        // Told to come back after a delay of its own (a control plane stopping).
        failed = true;
        down();
        lost++;
        call.cancel();
        setTimeout(() => connect(agent, channel, i), m.msg.value.reconnectAfterMs);
      } else if (m.msg?.$case === 'refused') {
        refused++;
        process.stderr.write(`agent ${name} refused: ${m.msg.value.code} ${m.msg.value.message}\n`);
        failed = true; // final: not retried
        checkReady();
      }
    });
    call.on('error', onFail);
    call.on('end', onFail);
    const agentId = `${cfg.prefix}-agent-${i}`;
    if (agent.sessionId) {
      call.write({
        msg: {
          $case: 'resume',
          value: { agentId, sessionId: agent.sessionId, resumeToken: agent.resumeToken, terminals: [], capabilities },
        },
      });
    } else {
      call.write({ msg: { $case: 'register', value: { agentId, name, capabilities, orphanedTerminalIds: [] } } });
    }
  }

  function checkReady(): void {
    if (!readySent && registered + refused === cfg.count) {
      readySent = true;
      send({ t: 'ready', registered, refused, lost, retries });
    }
  }

  // Heartbeats spread evenly: every tick, the next slice of agents round-robin,
  // so that each agent beats once per interval and the rate is steady.
  const TICK_MS = 100;
  let intervalS = cfg.heartbeatS;
  let next = 0;
  let owed = 0;
  const ticker = setInterval(() => {
    owed += (agents.length * TICK_MS) / 1000 / intervalS;
    while (owed >= 1) {
      owed--;
      const a = agents[next];
      next = (next + 1) % agents.length;
      if (!a.live) continue;
      a.call.write({
        msg: {
          $case: 'heartbeat',
          value: {
            sessionId: a.sessionId,
            timestampMs: Date.now(),
            cpuPercent: 3.5,
            memoryPercent: 41.2,
            diskPercent: 63.0,
          },
        },
      });
      heartbeats++;
    }
  }, TICK_MS);

  process.on('message', (m: { t: string; s?: number }) => {
    if (m.t === 'interval' && m.s) {
      intervalS = m.s;
      owed = 0;
    } else if (m.t === 'stats') {
      send({ t: 'stats', heartbeats, registered, lost, retries, resumed, live });
    } else if (m.t === 'stop') {
      stopping = true;
      clearInterval(ticker);
      for (const a of agents) a.call?.cancel(); // (an agent paced by connectPerS may not have connected yet)
      for (const c of channels) c.close();
      setTimeout(() => process.exit(0), 200);
    }
  });
  // The bench went away without saying stop: do not linger.
  process.on('disconnect', () => process.exit(0));
}

if (require.main === module) main();
