/**
 * The Jenkins watcher against a local fake Jenkins (real-shaped JSON, folders, Basic auth):
 * state in the real databases (SQLite and PostgreSQL), and end to end inside `serve`: a job
 * turning red gives exactly one announcement, received by the PBX simulator as an Originate to
 * the ringer's extension.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { defaultConfig } from '../../src/config/load.ts';
import { jenkinsServiceModule } from '../../src/jenkins/index.ts';
import {
  JenkinsWatcher,
  jenkinsMigrations,
  sentence,
  spokenName,
} from '../../src/jenkins/watcher.ts';
import type { Simulator } from '../../src/sim/index.ts';
import { type Database, migrate, openDatabase } from '../../src/store/db.ts';
import {
  type AnnounceServer,
  announceYaml,
  dropSchema,
  listMessages,
  PG_URL,
  startAnnounceServer,
  startRingerSim,
  tempDir,
  until,
} from '../announce/helpers.ts';
import { type FakeJenkins, JENKINS_TOKEN, JENKINS_USER, startFakeJenkins } from './fake-jenkins.ts';

const silent = pino({ level: 'silent' });

function jenkinsConfig(url: string) {
  return {
    ...defaultConfig().jenkins,
    enabled: true,
    url,
    user: JENKINS_USER,
    token: JENKINS_TOKEN,
    extension: '42399',
    recoveryTemplate: 'Job {job} is back to normal.',
  };
}

test('job names are read with - and _ as spaces; templates fill {job} {url} {color}', () => {
  assert.equal(spokenName('team/my-app_nightly'), 'team my app nightly');
  assert.equal(
    sentence('Job {job} is {color} at {url}', {
      name: 'a-b',
      url: 'http://j/job/a-b/',
      color: 'red_anime',
    }),
    'Job a b is red at http://j/job/a-b/',
  );
});

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`watcher state on ${kind}`, () => {
    let jenkins: FakeJenkins;
    let db: Database;
    const schema = `jenkins_${process.pid}_${Date.now().toString(36)}`;
    const said: string[] = [];
    let failAnnounce = false;
    let watcher: JenkinsWatcher;

    before(async () => {
      jenkins = await startFakeJenkins({
        'app-build': 'blue',
        'team/lib_test': 'blue',
        'multi/main': 'blue',
        'multi/feature-x': 'yellow',
      });
      db =
        kind === 'sqlite'
          ? await openDatabase(join(tempDir(), 'j.db'))
          : await openDatabase(PG_URL, { schema });
      await migrate(db, [jenkinsMigrations]);
      watcher = new JenkinsWatcher({
        config: jenkinsConfig(jenkins.url),
        database: db,
        logger: silent,
        retryDelayMs: 10,
        timeoutMs: 1000,
        announce: async (text) => {
          if (failAnnounce) throw new Error('ringer API down');
          said.push(text);
        },
      });
    });
    after(async () => {
      await db.close();
      await jenkins.close().catch(() => undefined);
      if (kind === 'postgres') await dropSchema(schema);
    });

    test('first poll records the state only; nested jobs are seen', async () => {
      const result = await watcher.poll();
      assert.equal(result.status, 'ok');
      assert.equal(result.baseline, true);
      assert.equal(result.jobs, 4);
      assert.deepEqual(said, []);
      assert.match(jenkins.requests[0] ?? '', /tree=jobs/);
      assert.equal((await watcher.state()).get('multi/feature-x')?.failed, 1);
    });

    test('a job turning red is announced once; still red: nothing; building keeps state', async () => {
      jenkins.colors.set('team/lib_test', 'red');
      assert.deepEqual((await watcher.poll()).announced, ['Jenkins job team lib test has failed.']);
      assert.deepEqual((await watcher.poll()).announced, []);
      jenkins.colors.set('team/lib_test', 'red_anime');
      assert.deepEqual((await watcher.poll()).announced, []);
      assert.equal((await watcher.state()).get('team/lib_test')?.color, 'red');
      jenkins.colors.set('team/lib_test', 'blue');
      assert.deepEqual((await watcher.poll()).announced, ['Job team lib test is back to normal.']);
      said.length = 0;
    });

    test('Jenkins garbage, 500 or unreachable: no announcement, state kept', async () => {
      const before = await watcher.state();
      jenkins.colors.set('app-build', 'red');
      for (const mode of ['garbage', '500'] as const) {
        jenkins.mode = mode;
        const result = await watcher.poll();
        assert.equal(result.status, 'jenkins_error');
        assert.deepEqual(result.announced, []);
      }
      assert.equal(jenkins.requests.filter((r) => r.startsWith('/api/json')).length >= 6, true);
      assert.deepEqual(await watcher.state(), before);
      jenkins.mode = 'json';
      // The announcement fails: the job keeps its old state and is announced at the next poll.
      failAnnounce = true;
      assert.deepEqual((await watcher.poll()).announced, []);
      failAnnounce = false;
      assert.deepEqual((await watcher.poll()).announced, ['Jenkins job app build has failed.']);
      await jenkins.down();
      const down = await watcher.poll();
      assert.equal(down.status, 'jenkins_error');
      assert.match(down.error ?? '', /unreachable/);
      assert.equal((await watcher.state()).get('app-build')?.failed, 1);
    });
  });
}

describe('serve with announce + jenkins: a job turning red → one Originate to the ringer', () => {
  const dir = tempDir();
  let sim: Simulator;
  let jenkins: FakeJenkins;
  let s: AnnounceServer;

  before(async () => {
    sim = await startRingerSim();
    jenkins = await startFakeJenkins({ 'deploy-prod': 'blue', 'team/api_tests': 'blue' });
    s = await startAnnounceServer({
      ami: [sim.url()],
      yaml: announceYaml(dir),
      mutate(config) {
        Object.assign(config.jenkins, {
          ...jenkinsConfig(jenkins.url),
          intervalS: 1,
          recoveryTemplate: '',
        });
      },
      extra: () => [
        jenkinsServiceModule(() => s?.module.instance?.service, {
          retryDelayMs: 10,
          timeoutMs: 1000,
        }),
      ],
    });
  });
  after(async () => {
    await s.close();
    await sim.close();
    await jenkins.close();
  });

  test('exactly one announcement, played by Originate to the jenkins extension', async () => {
    await until(() => (jenkins.requests.length >= 1 ? true : undefined), 30_000);
    jenkins.colors.set('team/api_tests', 'red');
    const action = await sim.waitForAction('Originate', () => true, 30_000);
    assert.equal(action.fields.Channel, 'PJSIP/42399');
    const polls = jenkins.requests.length;
    await until(() => (jenkins.requests.length >= polls + 2 ? true : undefined), 30_000);
    const ringer = sim.originates().filter((o) => o.channel === 'PJSIP/42399');
    assert.equal(ringer.length, 1);
    const history = await listMessages(s.url, true);
    assert.equal(history.length, 1);
    assert.equal(history[0]?.description, 'jenkins');
  });
});
