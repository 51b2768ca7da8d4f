// Issue 11, §3: announcements used only the first AMI server, even when it was down and
// another was up. Here the first configured server is unreachable (a port nobody listens on)
// and the second is the PBX simulator: the announcement and the alert call are both placed
// through the second; with `amiServers` naming only the down server, nothing is placed.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { startSimulator } from '../../src/sim/index.ts';
import {
  announceYaml,
  listMessages,
  postForm,
  startAnnounceServer,
  startRingerSim,
  tempDir,
  until,
} from '../announce/helpers.ts';
import {
  alertFields,
  calloutConfig,
  calloutDialplan,
  postCurlStyle,
  startServe,
  testDb,
  waitHistory,
} from '../callout/helpers.ts';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

/** An AMI URL on a port nobody listens on (refused). */
async function downUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `tcp://admin:secret@127.0.0.1:${port}?name=pbx-down`;
}

test('announcement: the first AMI server is down, the message is played through the second', async () => {
  const sim = await startRingerSim();
  cleanups.push(() => sim.close());
  const dir = tempDir();
  const s = await startAnnounceServer({
    ami: [await downUrl(), sim.url()],
    yaml: announceYaml(dir),
  });
  cleanups.push(() => s.close());
  const [down, up] = s.service.context?.ami.clients ?? [];
  assert.equal(down?.name, 'pbx-down');
  await until(() => (up?.connected ? true : undefined));
  assert.equal(down?.connected, false);
  const res = await postForm(`${s.url}/messages/tts/add`, {
    text: 'The build is broken.',
    extension: '42310',
    description: 'via the second server',
    language: 'en',
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const id = res.body.id as string;
  const played = await until(async () => {
    const m = (await listMessages(s.url, true)).find((x) => x.id === id);
    return m?.status === 'played' ? m : undefined;
  }, 30_000);
  assert.equal(played.outcome, 'answered');
  assert.deepEqual(
    sim.originates().map((o) => o.channel),
    ['PJSIP/42310'],
  );
});

test('alert call: the first AMI server is down, the person is called through the second', async () => {
  const sim = await startSimulator({
    port: 0,
    dtmfDurationMs: 10,
    dialplan: calloutDialplan(5_000),
    scripts: { '621': { answerAfterMs: 50, dtmf: '1', dtmfAfterMs: 50, hangupAfterMs: 2_000 } },
  });
  cleanups.push(() => sim.close());
  const db = testDb('sqlite');
  cleanups.push(() => db.drop());
  const config = calloutConfig(db, '', sim.url());
  const second = config.ami.servers[0];
  assert.ok(second);
  config.ami.servers.unshift({ ...second, url: await downUrl(), name: 'pbx-down' });
  const { service, url } = await startServe(config, db);
  cleanups.push(() => service.stop());
  const up = service.context?.ami.clients[1];
  await until(() => up?.connected === true);
  const response = await postCurlStyle(url, alertFields(['1:a:621:A:1']));
  const { eventid } = (await response.json()) as { eventid: string };
  const h = await waitHistory(url, eventid, (x) => x.eventstatus === '2', 20_000);
  assert.deepEqual(
    h.result.map((r) => [r.numofcall, r.status]),
    [['1', '1']],
  );
  assert.equal(sim.originates().length, 1);
  assert.equal(service.context?.ami.clients[0]?.connected, false);
});
