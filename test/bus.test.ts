// The cluster bus over a real nats-server: events reach the other replicas
// (never the sender), and a bus that lost NATS resynchronises when it is back.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NatsBus, type ClusterEvent } from '../control-plane/cluster/bus';
import { createLogger } from '../lib/logger';
import { eventually } from './helpers/cluster';
import { startNats, type NatsServer } from './helpers/nats';

const quiet = createLogger('bus', 'silent');

describe('cluster bus (NATS core)', () => {
  let nats: NatsServer;
  let a: NatsBus;
  let b: NatsBus;
  const gotA: [ClusterEvent, string][] = [];
  const gotB: [ClusterEvent, string][] = [];
  let resyncsA = 0;
  before(async () => {
    nats = await startNats();
    a = await NatsBus.connect({ servers: nats.url, replicaId: 'ra', cluster: 't1', logger: quiet });
    b = await NatsBus.connect({ servers: nats.url, replicaId: 'rb', cluster: 't1', logger: quiet });
    a.onEvent((e, from) => gotA.push([e, from]));
    b.onEvent((e, from) => gotB.push([e, from]));
    a.onResync(() => resyncsA++);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await nats?.stop();
  });

  it('an event reaches the other replica, with who sent it, and not the sender', async () => {
    const e: ClusterEvent = { type: 'revoke', id: 'rev-1', revocation: { kind: 'token', tokenId: 'tok_1', reason: 'token tok_1 was revoked' } };
    a.publish(e);
    await eventually(() => gotB.length === 1, 5000, 'the event at b');
    assert.deepEqual(gotB[0], [e, 'ra']);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(gotA.length, 0, 'not echoed to its sender');
  });

  it('NATS killed and started again: the bus reconnects, resynchronises, and carries events again', async () => {
    await nats.kill();
    await eventually(() => !a.connected, 10_000, 'a notices the loss');
    await nats.start();
    await eventually(() => a.connected && b.connected, 15_000, 'both reconnect');
    await eventually(() => resyncsA >= 1, 5000, 'a resynchronises');
    const e: ClusterEvent = { type: 'machines-changed', machine: 'box' };
    b.publish(e);
    await eventually(() => gotA.some(([x]) => x.type === 'machines-changed'), 5000, 'the event at a');
  });
});
