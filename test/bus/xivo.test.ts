import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateRoutingKey } from '../../src/bus/bus.ts';
import {
  amiEventMessage,
  buildCtiEvent,
  callEventMessage,
  defaultEndpointId,
  messagesForAmiEvent,
  serviceDeregisteredMessage,
  serviceRegisteredMessage,
  statusEventsFromAmi,
} from '../../src/bus/xivo.ts';

const UUID = 'ca7f87e9-c2c8-5fad-ba1b-c3140ebb9be3';

describe('XiVO envelopes and routing keys', () => {
  it('AMI events go on ami.<EventName> with their fields as data (seed example)', () => {
    const ev = {
      Event: 'QueueMemberStatus',
      Status: '1',
      Queue: 'petak',
      MemberName: 'sip/m3ylhs',
      ChanVariable: ['A=1', 'B=2'],
    };
    const { routingKey, message } = amiEventMessage(ev, UUID);
    assert.equal(routingKey, 'ami.QueueMemberStatus');
    assert.deepEqual(message, { name: 'QueueMemberStatus', origin_uuid: UUID, data: ev });
    assert.throws(() => amiEventMessage({ Event: '' }, UUID), TypeError);
    assert.throws(() => amiEventMessage({ Event: 'a.b' }, UUID), TypeError);
  });

  it('call events go on call.<event>, data unchanged plus an optional server tag', () => {
    const ev = { event: 'hangup', caller: { name: 'SIP/1-1' }, reason: 'completed' };
    const plain = callEventMessage(ev, UUID);
    assert.equal(plain.routingKey, 'call.hangup');
    assert.deepEqual(plain.message, { name: 'hangup', origin_uuid: UUID, data: ev });
    const tagged = callEventMessage(ev, UUID, 'pbx1');
    assert.deepEqual(tagged.message.data, { ...ev, server: 'pbx1' });
    assert.equal('server' in ev, false, 'the input event is not mutated');
    assert.throws(() => callEventMessage({ event: 'a.b' }, UUID), TypeError);
  });

  it('AgentLogin/AgentLogoff become agent_status_update on status.agent', () => {
    const login = statusEventsFromAmi(
      { Event: 'AgentLogin', Agent: '42', Channel: 'SIP/x' },
      {
        originUuid: UUID,
      },
    );
    assert.deepEqual(login, [
      {
        routingKey: 'status.agent',
        message: {
          name: 'agent_status_update',
          origin_uuid: UUID,
          data: { agent_id: 42, xivo_id: UUID, status: 'logged_in' },
        },
      },
    ]);
    const logoff = statusEventsFromAmi(
      { Event: 'AgentLogoff', Agent: 'Agent/7' },
      {
        originUuid: UUID,
        xivoId: 'other',
      },
    );
    assert.deepEqual(logoff[0]?.message.data, {
      agent_id: 7,
      xivo_id: 'other',
      status: 'logged_out',
    });
    assert.deepEqual(
      statusEventsFromAmi({ Event: 'AgentLogin', Agent: 'bob' }, { originUuid: UUID }),
      [],
    );
    assert.deepEqual(
      statusEventsFromAmi(
        { Event: 'AgentLogin', Agent: 'bob' },
        {
          originUuid: UUID,
          agentId: (a) => (a === 'bob' ? 3 : undefined),
        },
      )[0]?.message.data,
      { agent_id: 3, xivo_id: UUID, status: 'logged_in' },
    );
    assert.deepEqual(
      statusEventsFromAmi({ Event: 'QueueMemberPause', Paused: '1' }, { originUuid: UUID }),
      [],
    );
  });

  it('DeviceStateChange becomes endpoint_status_update with hint status integers', () => {
    const table: [string, number][] = [
      ['NOT_INUSE', 0],
      ['UNKNOWN', 0],
      ['INUSE', 1],
      ['BUSY', 2],
      ['UNAVAILABLE', 4],
      ['INVALID', 4],
      ['RINGING', 8],
      ['RINGINUSE', 9],
      ['ONHOLD', 16],
    ];
    for (const [state, status] of table) {
      const out = statusEventsFromAmi(
        { Event: 'DeviceStateChange', Device: 'PJSIP/67', State: state },
        { originUuid: UUID },
      );
      assert.deepEqual(out, [
        {
          routingKey: 'status.endpoint',
          message: {
            name: 'endpoint_status_update',
            origin_uuid: UUID,
            data: { endpoint_id: 67, xivo_id: UUID, status },
          },
        },
      ]);
    }
    assert.deepEqual(
      statusEventsFromAmi(
        { Event: 'DeviceStateChange', Device: 'Queue:q1_avail', State: 'INUSE' },
        {
          originUuid: UUID,
        },
      ),
      [],
    );
    assert.deepEqual(
      statusEventsFromAmi(
        { Event: 'DeviceStateChange', Device: 'PJSIP/67', State: 'WEIRD' },
        {
          originUuid: UUID,
        },
      ),
      [],
    );
    assert.equal(defaultEndpointId('SIP/1001'), 1001);
    assert.equal(defaultEndpointId('Local/1001@ctx'), undefined);
    const all = messagesForAmiEvent(
      { Event: 'DeviceStateChange', Device: 'SIP/5', State: 'BUSY' },
      {
        originUuid: UUID,
      },
    );
    assert.deepEqual(
      all.map((r) => r.routingKey),
      ['ami.DeviceStateChange', 'status.endpoint'],
    );
  });

  it('service (de)registration events have the seed data shape', () => {
    const reg = serviceRegisteredMessage({ originUuid: UUID, address: '192.168.1.42', port: 9495 });
    assert.equal(reg.routingKey, 'service.registered.switchboard');
    assert.deepEqual(reg.message, {
      name: 'service_registered_event',
      origin_uuid: UUID,
      data: {
        service_name: 'switchboard',
        service_id: UUID,
        address: '192.168.1.42',
        port: 9495,
        tags: ['switchboard', UUID],
      },
    });
    const dereg = serviceDeregisteredMessage({ originUuid: UUID, serviceId: 'sid', tags: ['t'] });
    assert.equal(dereg.routingKey, 'service.deregistered.switchboard');
    assert.deepEqual(dereg.message.data, {
      service_name: 'switchboard',
      service_id: 'sid',
      tags: ['t'],
    });
  });
});

describe('CTI events (schemas + builder)', () => {
  it('accepts the seed examples and routes them', () => {
    const form = buildCtiEvent(
      'call_form_result',
      { user_id: 40, variables: { firstname: 'John', lastname: 'Doe' } },
      UUID,
    );
    assert.ok(form.ok);
    assert.equal(form.routingKey, 'call_form_result');
    assert.deepEqual(form.message, {
      name: 'call_form_result',
      origin_uuid: UUID,
      data: { user_id: 40, variables: { firstname: 'John', lastname: 'Doe' } },
    });
    const status = buildCtiEvent(
      'user_status_update',
      { user_id: 42, xivo_id: UUID, status: 'busy' },
      UUID,
    );
    assert.ok(status.ok);
    assert.equal(status.routingKey, 'status.user');
    const chat = buildCtiEvent(
      'chat_message_event',
      { alias: 'Alice', to: [UUID, 42], from: [UUID, 22], msg: 'Hi!' },
      UUID,
    );
    assert.ok(chat.ok);
    assert.equal(chat.routingKey, `chat.message.${UUID}.42`);
    validateRoutingKey(chat.routingKey);
    assert.equal(chat.message.name, 'chat_message_event');
  });

  it('rejects bad bodies with reasons', () => {
    const cases: [string, unknown, RegExp][] = [
      ['call_form_result', { user_id: '40', variables: {} }, /\/user_id: .*integer/],
      ['call_form_result', { user_id: 40 }, /required.*variables/],
      ['call_form_result', { user_id: 40.5, variables: {} }, /\/user_id/],
      ['user_status_update', { user_id: 1, xivo_id: 'not-a-uuid', status: 'busy' }, /\/xivo_id/],
      [
        'user_status_update',
        { user_id: 1, xivo_id: UUID, status: 'busy', extra: 1 },
        /additional.*extra/,
      ],
      ['chat_message_event', { alias: 'A', to: [UUID], from: [UUID, 1], msg: 'x' }, /\/to/],
      ['chat_message_event', { alice: 'A', to: [UUID, 1], from: [UUID, 1], msg: 'x' }, /alias/],
      ['chat_message_event', { alias: 'A', to: ['a.b', 1], from: [UUID, 1], msg: 'x' }, /\/to\/0/],
      ['nope', {}, /unknown event "nope"/],
      ['call_form_result', null, /\//],
    ];
    for (const [name, body, reason] of cases) {
      const result = buildCtiEvent(name, body, UUID);
      assert.equal(result.ok, false, `${name} ${JSON.stringify(body)}`);
      if (!result.ok) assert.match(result.errors.join('; '), reason);
    }
  });
});

describe('XivoPublisher', () => {
  it('publishes AMI, status, call, service and CTI events on the bus', async () => {
    const { MemoryBus } = await import('../../src/bus/memory.ts');
    const { XivoPublisher } = await import('../../src/bus/xivo.ts');
    const { createBus } = await import('../../src/bus/index.ts');
    assert.ok(createBus() instanceof MemoryBus);
    const bus = new MemoryBus();
    const got: string[] = [];
    bus.subscribe('#', (m, rk) => {
      got.push(`${rk} ${m.name}`);
    });
    const pub = new XivoPublisher(bus, { originUuid: UUID });
    assert.equal(pub.ami({ Event: 'AgentLogin', Agent: '42' }), 2);
    assert.equal(pub.call({ event: 'up', caller: {}, target: {} }, 'pbx1'), 1);
    assert.equal(pub.registered({ address: '127.0.0.1', port: 8080 }), 1);
    assert.equal(pub.deregistered(), 1);
    const bad = pub.cti('user_status_update', { user_id: 'x' });
    assert.equal(bad.ok, false);
    const good = pub.cti('user_status_update', { user_id: 1, xivo_id: UUID, status: 'away' });
    assert.deepEqual(good, { ok: true, routingKey: 'status.user', published: true });
    await bus.flush();
    assert.deepEqual(got, [
      'ami.AgentLogin AgentLogin',
      'status.agent agent_status_update',
      'call.up up',
      'service.registered.switchboard service_registered_event',
      'service.deregistered.switchboard service_deregistered_event',
      'status.user user_status_update',
    ]);
    await bus.close();
  });
});
