// Issue 6's "Done when", through the real command: two `switchboard serve` processes sharing
// PostgreSQL and Redis. The device registers on one, the PBX asks the first, the (fake) app
// answers the second, and the PBX gets `status=ACK`: the answer crosses processes through
// Redis, the device through the shared database. Push goes to a fake APNs (HTTP/2 + TLS).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { dropSchema, PG_URL, postForm, REDIS_URL, startFakeApns, tempDir } from '../push/fakes.ts';
import { type RunningCli, startCli } from '../support/cli.ts';
import { freePort, until } from './helpers.ts';

const ENTRY = join(import.meta.dirname, 'cli-entry.ts');

test('two serve processes share PostgreSQL and Redis: register on A, call on A, answer on B → ACK', {
  timeout: 120_000,
}, async () => {
  const dir = tempDir();
  const apns = await startFakeApns(dir);
  const schema = `two_serves_${process.pid}_${Date.now().toString(36)}`;
  const sip = String(100_000_000 + Math.floor(Math.random() * 899_999_999));
  const children: RunningCli[] = [];
  after(async () => {
    for (const child of children) child.child.kill('SIGKILL');
    await apns.close();
    await dropSchema(schema).catch(() => {});
  });
  const a = apns.config;
  const config = join(dir, 'switchboard.yaml');
  writeFileSync(
    config,
    [
      'log: {level: warn}',
      'callout: {enabled: false}',
      'announce: {enabled: false}',
      `database: {url: "${PG_URL}", schema: "${schema}"}`,
      `redis: {url: "${REDIS_URL}"}`,
      'push:',
      '  budgetMs: 8000',
      '  intervalMs: 3000',
      `  users: [{username: alice, password: alice-password, sipUserIds: ["${sip}"]}]`,
      '  apps: [{id: com.example.voip-app, platforms: [apns]}]',
      `  apns: {keyFile: "${a.keyFile}", keyId: "${a.keyId}", teamId: "${a.teamId}", topic: "${a.topic}", host: "${a.host}", sandboxHost: "${a.sandboxHost}", port: ${a.port}, caFile: "${a.caFile}"}`,
      '',
    ].join('\n'),
  );
  const ports = [await freePort(), await freePort()];
  const [urlA, urlB] = ports.map((port) => `http://127.0.0.1:${port}`) as [string, string];
  for (const port of ports) {
    const serve = startCli(
      ['serve', '--config', config, '--listen', `127.0.0.1:${port}`],
      [process.execPath, ENTRY],
    );
    children.push(serve);
    await until(
      async () =>
        (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200,
      `serve on ${port} ready (${serve.stderr().slice(-400)})`,
      40_000,
    );
  }
  const alice = `Basic ${Buffer.from('alice:alice-password').toString('base64')}`;
  const registered = await postForm(
    `${urlA}/api/apns-device/`,
    { sip_user_id: sip, token: 'a1b2c3d4e5f6', app: 'com.example.voip-app', sandbox: 'false' },
    { authorization: alice },
  );
  assert.ok([200, 201].includes(registered.status), `register: ${registered.status}`);

  // The fake app wakes up on the push and answers process B.
  const answers: number[] = [];
  apns.onPush = (push) => {
    if (push.payload.type !== 'call') return;
    void postForm(`${urlB}/api/call-response/`, {
      unique_key: String(push.payload.unique_key),
      message_start_time: String(push.payload.message_start_time),
      available: 'true',
    }).then((r) => answers.push(r.status));
  };
  const pbx = await postForm(`${urlA}/api/incoming-call/`, {
    sip_user_id: sip,
    phonenumber: '+31501234567',
    caller_id: 'Bob',
    call_id: '1700000000.7',
  });
  assert.equal(pbx.status, 200);
  assert.equal(pbx.body, 'status=ACK');
  assert.match(pbx.contentType, /^text\/plain/);
  // B's 202 may reach the app just after A released the PBX.
  await until(() => answers.length > 0, "the app's answer to B");
  assert.deepEqual(answers, [202]);
  // ACK (not the NAK of an expired budget): released by the answer.
  assert.equal(apns.pushes.filter((p) => p.payload.type === 'call').length, 1);

  const removed = await postForm(
    `${urlB}/api/apns-device/`,
    { sip_user_id: sip, token: 'a1b2c3d4e5f6', app: 'com.example.voip-app' },
    { authorization: alice },
    'DELETE',
  );
  assert.equal(removed.status, 200);
  for (const child of children) child.child.kill('SIGTERM');
  for (const child of children) assert.equal(await child.exited, 0, child.stderr());
});
