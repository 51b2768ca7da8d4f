// Issue 11, §4: `serve --ami 'tcp://u:s@host:5038?auth=md5&name=pbx1'` ignored `auth` and
// `name` (an MD5-only manager user could not log in, the server was called host:port) while
// `watch` honoured them. One reading of a server now (amiServerOptions): the URL's
// parameters fill the keys, a key contradicting them is a configuration problem.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { amiServerOptions } from '../../src/ami/client.ts';
import type { AmiMessage } from '../../src/ami/message.ts';
import { AmiServer } from '../../src/ami/server.ts';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import { amiClientOptions, checkServiceConfig, createService } from '../../src/serve/service.ts';
import { connectedInOrder } from '../../src/telephony/placed-calls.ts';
import { testConfig, until } from './helpers.ts';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

test('serve --ami with ?auth=md5&name=pbx1 logs in by MD5 challenge, as pbx1', async () => {
  const server = new AmiServer({ users: { switchboard: 'amisecret' } });
  const actions: string[] = [];
  server.on('action', (action: AmiMessage) => {
    actions.push(`${action.Action}${action.AuthType ? ` ${action.AuthType}` : ''}`);
  });
  const port = await server.listen();
  cleanups.push(() => server.close());
  const config = testConfig({
    ami: [`tcp://switchboard:amisecret@127.0.0.1:${port}?auth=md5&name=pbx1`],
  });
  assert.equal(config.ami.servers[0]?.name, 'pbx1');
  assert.equal(config.ami.servers[0]?.auth, 'md5');
  const service = createService({ config, modules: [] });
  cleanups.push(() => service.stop());
  await service.start();
  const client = service.context?.ami.clients[0];
  assert.equal(client?.name, 'pbx1');
  await until(() => client?.connected === true, 'the MD5 login');
  assert.deepEqual(actions.slice(0, 2), ['Challenge MD5', 'Login MD5']);
});

test('one reading of a server: URL parameters fill the keys; keys win only where the URL is silent', () => {
  const load = (yaml: string) => loadConfig({ text: yaml, env: {} }).ami.servers[0];
  // the URL alone
  let server = load("ami:\n  servers:\n    - url: 'tcp://u:s@pbx:5038?auth=md5&name=pbx1'\n");
  assert.deepEqual([server?.name, server?.auth], ['pbx1', 'md5']);
  // the keys alone
  server = load("ami:\n  servers:\n    - url: 'tcp://u:s@pbx'\n      name: a\n      auth: md5\n");
  assert.deepEqual([server?.name, server?.auth], ['a', 'md5']);
  // neither: host:port, plain
  server = load("ami:\n  servers:\n    - url: 'tcp://u:s@pbx'\n");
  assert.deepEqual([server?.name, server?.auth], ['pbx:5038', 'plain']);
  // both, the same: fine
  server = load(
    "ami:\n  servers:\n    - url: 'tcp://u:s@pbx?name=b&auth=md5'\n      name: b\n      auth: md5\n",
  );
  assert.deepEqual([server?.name, server?.auth], ['b', 'md5']);
  // both, different: a problem naming the key, never the secret
  assert.throws(
    () => load("ami:\n  servers:\n    - url: 'tcp://u:s3cret@pbx?name=b'\n      name: c\n"),
    (error: unknown) =>
      error instanceof ConfigError &&
      error.problems.length === 1 &&
      error.problems[0]?.key === 'ami.servers[0].url' &&
      /name "c" contradicts name=b/.test(error.problems[0].reason) &&
      !error.message.includes('s3cret'),
  );
  // what serve, doctor, watch and record connect with
  const config = loadConfig({
    text: '',
    env: {},
    overrides: { ami: ['tcp://u:s@pbx:5039?auth=md5&name=pbx1'] },
  });
  const options = amiClientOptions(config.ami.servers[0] as (typeof config.ami.servers)[0]);
  const watch = amiServerOptions({ url: 'tcp://u:s@pbx:5039?auth=md5&name=pbx1' });
  for (const o of [options, watch]) {
    assert.deepEqual([o.name, o.auth, o.host, o.port], ['pbx1', 'md5', 'pbx', 5039]);
  }
});

test('callout/announce.amiServers: the connected servers in that order, unknown names refused', () => {
  const clients = [
    { name: 'pbx1', connected: false },
    { name: 'pbx2', connected: true },
    { name: 'pbx3', connected: true },
  ];
  assert.deepEqual(
    connectedInOrder(clients).map((c) => c.name),
    ['pbx2', 'pbx3'],
  );
  assert.deepEqual(
    connectedInOrder(clients, ['pbx3', 'pbx1']).map((c) => c.name),
    ['pbx3'],
  );
  const config = loadConfig({
    text: [
      'ami:',
      "  servers: [{url: 'tcp://u:s@a?name=pbx1'}, {url: 'tcp://u:s@b?name=pbx2'}]",
      'callout: {amiServers: [pbx2, pbx9]}',
      'announce: {amiServers: [pbx1]}',
    ].join('\n'),
    env: {},
  });
  assert.deepEqual(checkServiceConfig(config), [
    { key: 'callout.amiServers[1]', reason: 'no AMI server is named "pbx9" (names: pbx1, pbx2)' },
  ]);
});
