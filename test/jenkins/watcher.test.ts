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
  baseColor,
  JenkinsWatcher,
  jenkinsMigrations,
  joinSentences,
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

test('one announcement per poll: sentences joined with ". " as xgong-jenkins, never ".."', () => {
  // xgong-jenkins' default template ({job} est cassé) has no final period.
  assert.equal(
    joinSentences(['app build est cassé', 'team lib test est cassé']),
    'app build est cassé. team lib test est cassé',
  );
  // Switchboard's default template ends with one: a space only.
  assert.equal(
    joinSentences(['Jenkins job a has failed.', 'Jenkins job b has failed.']),
    'Jenkins job a has failed. Jenkins job b has failed.',
  );
  assert.equal(joinSentences(['Alarm!', ' b ', '']), 'Alarm! b');
  assert.equal(joinSentences([]), '');
});

test('_anime counts as the color it carries', () => {
  assert.equal(baseColor('red_anime'), 'red');
  assert.equal(baseColor('yellow_anime'), 'yellow');
  assert.equal(baseColor('blue'), 'blue');
});

describe('first poll with an empty state (jenkins.firstPoll)', () => {
  for (const firstPoll of ['record', 'announce'] as const) {
    test(`${firstPoll}`, async () => {
      const jenkins = await startFakeJenkins({
        'deploy-prod': 'red',
        api_tests: 'yellow_anime',
        docs: 'blue',
      });
      const db = await openDatabase(join(tempDir(), 'first.db'));
      try {
        await migrate(db, [jenkinsMigrations]);
        const said: string[] = [];
        const watcher = new JenkinsWatcher({
          config: { ...jenkinsConfig(jenkins.url), firstPoll, template: '{job} est cassé' },
          database: db,
          logger: silent,
          retryDelayMs: 10,
          timeoutMs: 1000,
          announce: async (text) => {
            said.push(text);
          },
        });
        const first = await watcher.poll();
        assert.equal(first.baseline, true);
        assert.deepEqual(
          said,
          firstPoll === 'announce' ? ['deploy prod est cassé. api tests est cassé'] : [],
        );
        assert.equal((await watcher.state()).size, 3);
        // Either way the second poll announces nothing more.
        assert.deepEqual((await watcher.poll()).announced, []);
      } finally {
        await db.close();
        await jenkins.close();
      }
    });
  }
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

    test('a job turning red is announced once; still red, or red and building: nothing', async () => {
      jenkins.colors.set('team/lib_test', 'red');
      assert.deepEqual((await watcher.poll()).announced, ['Jenkins job team lib test has failed.']);
      assert.deepEqual((await watcher.poll()).announced, []);
      // A new build of a failed job: *_anime carries the last result's color (xgong-jenkins'
      // ^(red|yellow)), so it is still failed: nothing new, and nothing when the build ends red.
      jenkins.colors.set('team/lib_test', 'red_anime');
      assert.deepEqual((await watcher.poll()).announced, []);
      const building = (await watcher.state()).get('team/lib_test');
      assert.deepEqual([building?.color, building?.failed], ['red_anime', 1]);
      jenkins.colors.set('team/lib_test', 'red');
      assert.deepEqual((await watcher.poll()).announced, []);
      jenkins.colors.set('team/lib_test', 'blue');
      assert.deepEqual((await watcher.poll()).announced, ['Job team lib test is back to normal.']);
      assert.deepEqual(said, [
        'Jenkins job team lib test has failed.',
        'Job team lib test is back to normal.',
      ]);
      said.length = 0;
    });

    test('yellow_anime then yellow is one failure, not two; blue_anime is not failed', async () => {
      // multi/feature-x has been yellow since the first poll.
      jenkins.colors.set('multi/feature-x', 'yellow_anime');
      assert.deepEqual((await watcher.poll()).announced, []);
      jenkins.colors.set('multi/feature-x', 'yellow');
      assert.deepEqual((await watcher.poll()).announced, []);
      // A job first seen while a build runs after a red one: failed, announced.
      jenkins.colors.set('new-job', 'red_anime');
      assert.deepEqual((await watcher.poll()).announced, ['Jenkins job new job has failed.']);
      jenkins.colors.set('app-build', 'blue_anime');
      assert.deepEqual((await watcher.poll()).announced, []);
      assert.equal((await watcher.state()).get('app-build')?.failed, 0);
      jenkins.colors.delete('new-job');
      jenkins.colors.set('app-build', 'blue');
      said.length = 0;
    });

    test('several jobs failed in one poll: ONE announcement, sentences joined with ". "', async () => {
      jenkins.colors.set('app-build', 'red');
      jenkins.colors.set('multi/main', 'yellow_anime');
      const result = await watcher.poll();
      assert.deepEqual(result.announced, [
        'Jenkins job app build has failed. Jenkins job multi main has failed.',
      ]);
      assert.deepEqual(result.jobsAnnounced, ['app-build', 'multi/main']);
      assert.equal(said.length, 1);
      // The announcement fails: none of its jobs is recorded, both are announced next poll.
      jenkins.colors.set('app-build', 'blue');
      jenkins.colors.set('multi/main', 'blue');
      assert.equal((await watcher.poll()).announced.length, 1); // the two recoveries
      said.length = 0;
      jenkins.colors.set('app-build', 'red');
      jenkins.colors.set('multi/main', 'red');
      failAnnounce = true;
      assert.deepEqual((await watcher.poll()).announced, []);
      assert.equal((await watcher.state()).get('app-build')?.failed, 0);
      assert.equal((await watcher.state()).get('multi/main')?.failed, 0);
      failAnnounce = false;
      assert.deepEqual((await watcher.poll()).announced, [
        'Jenkins job app build has failed. Jenkins job multi main has failed.',
      ]);
      jenkins.colors.set('app-build', 'blue');
      jenkins.colors.set('multi/main', 'blue');
      await watcher.poll();
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
        // Announces through the announce plugin's exported service (app.announce).
        jenkinsServiceModule({ retryDelayMs: 10, timeoutMs: 1000 }),
      ],
    });
  });
  after(async () => {
    await s.close();
    await sim.close();
    await jenkins.close();
  });

  test('two jobs failed in one poll: exactly one announcement, one Originate to the jenkins extension', async () => {
    await until(() => (jenkins.requests.length >= 1 ? true : undefined), 30_000);
    // Both in the same poll (the fake answers from this process: no poll in between).
    jenkins.colors.set('team/api_tests', 'red');
    jenkins.colors.set('deploy-prod', 'red_anime');
    const action = await sim.waitForAction('Originate', () => true, 30_000);
    assert.equal(action.fields.Channel, 'PJSIP/42399');
    const polls = jenkins.requests.length;
    await until(() => (jenkins.requests.length >= polls + 2 ? true : undefined), 30_000);
    const ringer = sim.originates().filter((o) => o.channel === 'PJSIP/42399');
    assert.equal(ringer.length, 1);
    const history = await listMessages(s.url, true);
    assert.equal(history.length, 1);
    assert.equal(history[0]?.description, 'jenkins');
    const row = await s.module.instance?.repository.find(history[0]?.id ?? '');
    assert.equal(
      row?.text,
      'Jenkins job deploy prod has failed. Jenkins job team api tests has failed.',
    );
  });
});
