import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { after, test } from 'node:test';
import { AmiParser } from '../../src/ami/protocol.ts';
import { AmiServer } from '../../src/ami/server.ts';

const server = new AmiServer({
  users: { admin: 'secret' },
  handlers: {
    Hangup: (action) =>
      action.Channel === 'nope'
        ? { response: { Response: 'Error', Message: 'No such channel' } }
        : { response: { Message: 'Channel Hungup' } },
  },
});
const port = await server.listen();
after(() => server.close());

/** A raw TCP conversation: send text, read the server's raw bytes. */
async function converse(lines: string[], waitMs = 80): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (d) => {
    received += d.toString();
  });
  await new Promise((resolve) => socket.once('connect', resolve));
  for (const text of lines) {
    socket.write(text);
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
  socket.destroy();
  return received;
}

test('answers like Asterisk 22: banner, login, FullyBooted, Ping, unknown action, Logoff (exact bytes)', async () => {
  const text = await converse([
    'Action: Login\r\nActionID: trial-1\r\nUsername: admin\r\nSecret: secret\r\nEvents: on\r\n\r\n',
    'Action: Ping\r\nActionID: p\r\n\r\nAction: Bogus\r\nActionID: b\r\n\r\n',
    'Action: Logoff\r\nActionID: trial-6\r\n\r\n',
  ]);
  const ping = /Response: Success\r\nActionID: p\r\nPing: Pong\r\nTimestamp: \d+\.\d{6}\r\n\r\n/;
  assert.match(text, ping);
  assert.ok(
    text.startsWith(
      'Asterisk Call Manager/11.0.0\r\n' +
        'Response: Success\r\nActionID: trial-1\r\nMessage: Authentication accepted\r\n\r\n' +
        'Event: FullyBooted\r\n',
    ),
  );
  assert.match(
    text,
    /Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: \d+\r\nLastReload: \d+\r\nStatus: Fully Booted\r\n\r\n/,
  );
  assert.ok(
    text.includes('Response: Error\r\nActionID: b\r\nMessage: Invalid/unknown command\r\n\r\n'),
  );
  assert.ok(
    text.endsWith(
      'Response: Goodbye\r\nActionID: trial-6\r\nMessage: Thanks for all the fish.\r\n\r\n',
    ),
  );
});

test('failed login answers Authentication failed and closes; actions before login are denied', async () => {
  const denied = await converse(['Action: Ping\r\nActionID: x\r\n\r\n']);
  assert.ok(
    denied.includes('Response: Error\r\nActionID: x\r\nMessage: Permission denied\r\n\r\n'),
  );
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (d) => {
    received += d.toString();
  });
  socket.write('Action: Login\r\nActionID: 1\r\nUsername: admin\r\nSecret: wrong\r\n\r\n');
  await new Promise((resolve) => socket.once('close', resolve));
  assert.equal(
    received,
    'Asterisk Call Manager/11.0.0\r\nResponse: Error\r\nActionID: 1\r\nMessage: Authentication failed\r\n\r\n',
  );
});

test('MD5 challenge login and handler replies (success and error)', async () => {
  const socket = net.connect(port, '127.0.0.1');
  const messages: Record<string, string | string[]>[] = [];
  const parser = new AmiParser({ onMessage: (m) => messages.push({ ...m }) });
  socket.on('data', (d) => parser.push(d));
  const next = async (count: number) => {
    while (messages.length < count) await new Promise((resolve) => setTimeout(resolve, 5));
    return messages[count - 1] as Record<string, string>;
  };
  socket.write('Action: Challenge\r\nActionID: c\r\nAuthType: MD5\r\n\r\n');
  const challenge = (await next(1)).Challenge as string;
  assert.match(challenge, /^\d{9}$/);
  const key = createHash('md5').update(`${challenge}secret`).digest('hex');
  socket.write(
    `Action: Login\r\nActionID: l\r\nAuthType: MD5\r\nUsername: admin\r\nKey: ${key}\r\n\r\n`,
  );
  assert.equal((await next(2)).Message, 'Authentication accepted');
  assert.equal((await next(3)).Event, 'FullyBooted');
  socket.write(
    'Action: Hangup\r\nActionID: h1\r\nChannel: nope\r\n\r\nAction: Hangup\r\nActionID: h2\r\nChannel: SIP/1\r\n\r\n',
  );
  assert.deepEqual(await next(4), {
    Response: 'Error',
    ActionID: 'h1',
    Message: 'No such channel',
  });
  assert.deepEqual(await next(5), {
    Response: 'Success',
    ActionID: 'h2',
    Message: 'Channel Hungup',
  });
  assert.equal(server.broadcast({ Event: 'Test', N: '1' }), 1);
  assert.deepEqual(await next(6), { Event: 'Test', N: '1' });
  socket.destroy();
});
