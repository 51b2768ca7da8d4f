// The simulator and hostile input (issue 10 §4): names like Object.prototype members in
// dialplan UserEvent fields, Originate variables and replayed events; its channel table is
// bounded. Real sockets: the simulator and an AmiClient.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import type { AmiEvent } from '../../src/ami/message.ts';
import {
  type Simulator,
  type SimulatorOptions,
  startSimulator,
  validateDialplan,
} from '../../src/sim/index.ts';
import { PROTOTYPE_NAMES, valueFor } from '../support/hostile.ts';
import { type Connected, connect } from './helpers.ts';

const open: Array<{ sim: Simulator; c: Connected }> = [];
afterEach(async () => {
  for (const { sim, c } of open.splice(0)) {
    await c.client.close();
    await sim.close();
  }
});

async function setup(options: SimulatorOptions): Promise<{ sim: Simulator; c: Connected }> {
  const sim = await startSimulator({ dtmfDurationMs: 5, ...options });
  const c = await connect(sim);
  open.push({ sim, c });
  return { sim, c };
}

function newchannel(i: number, extra: Record<string, string> = {}): AmiEvent {
  return {
    Event: 'Newchannel',
    Privilege: 'call,all',
    Channel: `PJSIP/flood-${i}`,
    ChannelState: '4',
    ChannelStateDesc: 'Ring',
    Uniqueid: `1700000003.${i}`,
    Linkedid: `1700000003.${i}`,
    ...extra,
  };
}

describe('the simulator and hostile names', () => {
  test('UserEvent fields and Originate variables named like Object.prototype members reach the wire', async () => {
    const fields = Object.fromEntries(PROTOTYPE_NAMES.map((name) => [name, valueFor(name)]));
    const dialplan = validateDialplan('simulator.dialplan.hostile', {
      playback: '',
      read: 'KEY,,1,,,5',
      userEvent: { name: 'Hostile', fields },
    });
    const { sim, c } = await setup({
      scripts: { '*': { answerAfterMs: 0, dtmf: '1', dtmfAfterMs: 5, hangupAfterMs: 5000 } },
      dialplan: { hostile: dialplan },
    });
    const variables = PROTOTYPE_NAMES.map((name) => `${name}=${valueFor(name)}`);
    await c.client.action({
      Action: 'Originate',
      Channel: 'PJSIP/401@trunk',
      Context: 'hostile',
      Exten: 'start',
      Variable: variables,
      Async: 'true',
    });
    const user = await c.waitFor((e) => e.Event === 'UserEvent');
    assert.equal(user.UserEvent, 'Hostile');
    for (const name of PROTOTYPE_NAMES) {
      assert.equal(Object.getOwnPropertyDescriptor(user, name)?.value, valueFor(name), name);
    }
    const originate = sim.originates()[0];
    for (const name of PROTOTYPE_NAMES) {
      assert.equal(
        Object.getOwnPropertyDescriptor(originate?.variables, name)?.value,
        valueFor(name),
        name,
      );
      assert.ok(
        c.events.some(
          (e) => e.Event === 'VarSet' && e.Variable === name && e.Value === valueFor(name),
        ),
        `VarSet ${name}`,
      );
    }
  });

  test('a replayed ChannelState named like a member does not break CoreShowChannels', async () => {
    const { sim, c } = await setup({});
    const { ChannelStateDesc: _desc, ...noDesc } = newchannel(1, { ChannelState: 'constructor' });
    sim.emitEvent(noDesc as AmiEvent);
    sim.emitEvent(newchannel(2, { ChannelState: 'toString' }));
    const { events } = await c.client.action({ Action: 'CoreShowChannels' });
    const items = events.filter((e) => e.Event === 'CoreShowChannel');
    assert.equal(items.length, 2);
    assert.equal(items[0]?.ChannelStateDesc, '');
    assert.equal(c.client.connected, true);
  });
});

describe('the simulator stays bounded', () => {
  test('maxChannels: Newchannel without Hangup forgets the oldest; CoreShowChannels lists the cap', async () => {
    const { sim, c } = await setup({ maxChannels: 50 });
    for (let i = 0; i < 2000; i++) sim.emitEvent(newchannel(i));
    assert.equal(sim.channels.size, 50);
    assert.equal(sim.channels.forgotten, 1950);
    assert.equal(sim.channels.get('1700000003.1999')?.Channel, 'PJSIP/flood-1999');
    assert.equal(sim.channels.get('1700000003.0'), undefined);
    const { events } = await c.client.action({ Action: 'CoreShowChannels' });
    assert.equal(events.filter((e) => e.Event === 'CoreShowChannel').length, 50);
  });
});
