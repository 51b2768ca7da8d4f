// Each feature step of a real `serve` process logs one info line with its ids (issue 14 §4):
// an alert call created / placed / answered with a key / finished, an announcement
// scheduled / played, a Jenkins job newly failed; never a secret. JSON lines on stdout (not
// a terminal), read from the child process.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startSimulator } from '../../src/sim/index.ts';
import {
  alertFields,
  calloutDialplan,
  postCurlStyle,
  tempDir,
  waitHistory,
} from '../callout/helpers.ts';
import { JENKINS_TOKEN, JENKINS_USER, startFakeJenkins } from '../jenkins/fake-jenkins.ts';
import { startCli } from '../support/cli.ts';
import { freePort, until } from './helpers.ts';

const ENTRY = join(import.meta.dirname, 'cli-entry.ts');

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
});

interface Entry {
  level: number;
  msg: string;
  [key: string]: unknown;
}

test('serve logs one info line per step of alert calls, announcements and the Jenkins watcher', {
  timeout: 120_000,
}, async () => {
  const sim = await startSimulator({
    port: 0,
    dtmfDurationMs: 10,
    dialplan: {
      ...calloutDialplan(5_000),
      'switchboard-announce': {
        playback: 'announcement',
        playbackMs: 200,
        read: '',
        userEvent: { name: 'SwitchboardPlayed', fields: { Status: 'SUCCESS' } },
      },
    },
    scripts: {
      '601': { answerAfterMs: 50, dtmf: '1', dtmfAfterMs: 100, hangupAfterMs: 2_000 },
      '*': { outcome: 'answer', answerAfterMs: 50, hangupAfterMs: 3_000 },
    },
  });
  cleanups.push(() => sim.close());
  const jenkins = await startFakeJenkins({ 'app/build-main': 'red', 'lib-core': 'blue' });
  cleanups.push(() => jenkins.close());
  const dir = tempDir();
  const port = await freePort();
  const config = join(dir, 'switchboard.yaml');
  writeFileSync(
    config,
    [
      'log: {level: info}',
      `database: {url: ${JSON.stringify(join(dir, 'switchboard.db'))}}`,
      'ami:',
      `  servers: [{url: "${sim.url()}", pingIntervalMs: 0, reconnectMinMs: 20, reconnectMaxMs: 100}]`,
      'callout:',
      `  mediaDir: ${JSON.stringify(join(dir, 'media'))}`,
      '  timeScale: 0.01',
      '  pollIntervalMs: 50',
      'announce:',
      `  soundsDir: ${JSON.stringify(join(dir, 'sounds'))}`,
      "  listen: ''",
      '  playback: originate',
      "  extension: '42300'",
      '  ringTimeS: 2',
      '  gapS: 1',
      'jenkins:',
      '  enabled: true',
      `  url: "${jenkins.url}"`,
      `  user: ${JENKINS_USER}`,
      `  token: ${JENKINS_TOKEN}`,
      '  intervalS: 3600',
      '  firstPoll: announce',
      'push: {enabled: false}',
      '',
    ].join('\n'),
  );
  const cli = startCli(
    ['serve', '--config', config, '--listen', `127.0.0.1:${port}`],
    [process.execPath, ENTRY],
  );
  cleanups.push(() => cli.child.kill('SIGKILL'));
  const url = `http://127.0.0.1:${port}`;
  await until(
    async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200,
    'serve ready',
    60_000,
  ).catch((error) => {
    throw new Error(`${error.message}: ${cli.stderr()} ${cli.stdout().slice(-2000)}`);
  });
  const entries = (): Entry[] =>
    cli
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Entry);
  const find = (msg: string) => entries().filter((e) => e.msg === msg);

  // An alert call answered with 1.
  const response = await postCurlStyle(url, alertFields(['1:tarou:601:Taro:1']));
  const { eventid } = (await response.json()) as { eventid: string };
  await waitHistory(url, eventid, (h) => h.eventstatus === '2', 30_000);
  // The escalation may finish (key 1: positive) before the call's hang-up is handled: wait
  // for every line, not for the last one in one particular order.
  await until(
    () =>
      [
        'callout: escalation finished',
        'callout: call finished',
        'callout: call answered with a key',
      ].every((message) => find(message).length > 0),
    'the callout lines',
  );
  const [created] = find('callout: escalation created');
  assert.equal(created?.event, eventid);
  assert.equal(created?.people, 1);
  const [placed] = find('callout: call placed');
  assert.equal(placed?.event, eventid);
  assert.equal(placed?.ghid, 'tarou');
  assert.equal(placed?.n, 1);
  assert.equal(typeof placed?.attempt, 'string');
  const [key] = find('callout: call answered with a key');
  assert.deepEqual([key?.event, key?.attempt, key?.digit], [eventid, placed?.attempt, '1']);
  const [ended] = find('callout: call finished');
  assert.deepEqual([ended?.attempt, ended?.outcome], [placed?.attempt, 'answered']);
  const [finished] = find('callout: escalation finished');
  assert.deepEqual([finished?.event, finished?.eventstatus], [eventid, 2]);

  // An announcement (TTS), played on the ringer.
  const added = await fetch(`${url}/messages/tts/add`, {
    method: 'POST',
    body: new URLSearchParams({ text: 'Lunch is ready', description: 'lunch' }),
  });
  assert.equal(added.status, 200, await added.clone().text());
  const { id } = (await added.json()) as { id: string };
  await until(() => find('announce: played').some((e) => e.id === id), 'the played line', 30_000);
  const scheduled = find('announce: scheduled').find((e) => e.id === id);
  assert.equal(scheduled?.extension, '42300');
  assert.equal(scheduled?.kind, 'tts');
  assert.match(String(scheduled?.start), /^\d{4}-\d\d-\d\dT/);

  // The Jenkins watcher's first poll (firstPoll: announce): the red job is newly failed.
  await until(() => find('jenkins: job newly failed').length > 0, 'the Jenkins line', 30_000);
  assert.deepEqual(
    find('jenkins: job newly failed').map((e) => [e.job, e.color]),
    [['app/build-main', 'red']],
  );

  // The same steps as series (issue 14 §5).
  let metrics = '';
  const value = (series: string) =>
    Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(metrics)?.[1]);
  // The Jenkins announcement is scheduled just after its line is logged.
  await until(async () => {
    metrics = await (await fetch(`${url}/metrics`)).text();
    return value('switchboard_announce_scheduled_total{kind="tts"}') === 2;
  }, 'both TTS messages counted');
  // Two TTS messages: the one above and the Jenkins watcher's; the second may still be queued.
  assert.equal(value('switchboard_announce_scheduled_total{kind="tts"}'), 2);
  assert.ok(value('switchboard_announce_played_total') >= 1);
  assert.equal(
    value('switchboard_announce_duration_seconds_count'),
    value('switchboard_announce_played_total'),
  );
  assert.equal(value('switchboard_jenkins_polls_total{result="ok"}'), 1);
  assert.equal(value('switchboard_jenkins_jobs_failed_total'), 1);
  assert.equal(value('switchboard_jenkins_poll_failures_total'), 0);

  for (const e of find('callout: call placed')) assert.equal(e.level, 30, 'info');
  assert.ok(!cli.stdout().includes(JENKINS_TOKEN), 'the Jenkins token is never logged');
  assert.ok(!cli.stdout().includes('Disk full'), 'the message text is not logged');
  cli.child.kill('SIGTERM');
  await cli.exited;
});
