// Retention (issue 14 §4) on SQLite and PostgreSQL: finished escalations and announcements
// older than retention.historyDays are deleted with their people and calls, newer ones kept,
// pending ones never deleted whatever their age; converted audio goes once its escalation or
// announcement finished mediaGraceMinutes ago; the speech cache is capped by age and size.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { type AnnounceTables, announceMigrations } from '../../src/announce/repository.ts';
import { announceRetention } from '../../src/announce/retention.ts';
import { calloutDb, calloutMigrations, type EventRow } from '../../src/callout/repository.ts';
import { calloutRetention } from '../../src/callout/retention.ts';
import { loadConfig } from '../../src/config/load.ts';
import { pruneSpeechCache } from '../../src/media/tts/cache.ts';
import { featureModules } from '../../src/serve/modules.ts';
import { runRetention } from '../../src/serve/retention.ts';
import { createService } from '../../src/serve/service.ts';
import { type Database, migrate, newId, openDatabase } from '../../src/store/db.ts';
import { type Kind, tempDir, testDb } from '../callout/helpers.ts';
import { until } from '../serve/helpers.ts';

/** The rules serve registers (callout's and announce's). */
const RULES = [calloutRetention, announceRetention];
const DAY = 86_400_000;
const NOW = Date.now();

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
});

/** One escalation with one person and one call; `finishedAgoMs` null = still pending. */
async function escalation(
  database: Database,
  status: number,
  createdAgoMs: number,
  finishedAgoMs: number | null,
): Promise<string> {
  const db = calloutDb(database);
  const id = newId(NOW - createdAgoMs);
  const event: EventRow = {
    id,
    status,
    testflg: 0,
    provider: 'asterisk',
    hostname: 'db1',
    operator: 'zabbix',
    calltype: 1,
    frequency: 1,
    language: 'en',
    message: 'Disk full',
    headid: 1,
    footid: 1,
    headmsg: '',
    footmsg: '',
    last_order: 1,
    created_at: NOW - createdAgoMs,
    started_at: NOW - createdAgoMs,
    finished_at: finishedAgoMs === null ? null : NOW - finishedAgoMs,
    due_at: finishedAgoMs === null ? NOW : null,
    lease_until: null,
    lease_owner: null,
  };
  await db.insertInto('callout_event').values(event).execute();
  const person = newId();
  await db
    .insertInto('callout_person')
    .values({
      id: person,
      event_id: id,
      numorder: 1,
      ghid: 'tarou',
      name: 'Taro',
      telno: '601',
      sleep_s: 1,
      calls: 1,
      latest_at: NOW - createdAgoMs,
      status: finishedAgoMs === null ? null : 1,
    })
    .execute();
  await db
    .insertInto('callout_attempt')
    .values({
      id: newId(),
      event_id: id,
      person_id: person,
      n: 1,
      state: finishedAgoMs === null ? 'dialing' : 'done',
      outcome: finishedAgoMs === null ? null : 'answered',
      digit: finishedAgoMs === null ? null : '1',
      provider: 'asterisk',
      provider_call_id: null,
      placed_at: NOW - createdAgoMs,
      due_at: NOW - createdAgoMs,
      ended_at: finishedAgoMs === null ? null : NOW - finishedAgoMs,
      lease_until: null,
      lease_owner: null,
    })
    .execute();
  return id;
}

/** One announcement in `status`, its audio file in `soundsDir`. */
async function announcement(
  database: Database,
  soundsDir: string,
  status: string,
  createdAgoMs: number,
  finishedAgoMs: number | null,
): Promise<{ publicId: string; audio: string }> {
  const db = database.db as Kysely<AnnounceTables>;
  const publicId = newId();
  const audio = join(
    soundsDir,
    `announce-${NOW - createdAgoMs}-${publicId
      .toLowerCase()
      .slice(-8)
      .replace(/[^0-9a-f]/g, 'a')}.wav`,
  );
  writeFileSync(audio, 'RIFF');
  const old = new Date(NOW - createdAgoMs);
  utimesSync(audio, old, old);
  await db
    .insertInto('announce_message')
    .values({
      public_id: publicId,
      description: '',
      extension: '42300',
      kind: 'tts',
      text: 'Lunch',
      language: 'en',
      audio_path: audio,
      duration_ms: 1000,
      requested_at: NOW - createdAgoMs,
      due_at: NOW - createdAgoMs,
      status: status as never,
      outcome: '',
      attempts: 0,
      callfile_path: '',
      lease_until: null,
      lease_owner: null,
      created_at: NOW - createdAgoMs,
      finished_at: finishedAgoMs === null ? null : NOW - finishedAgoMs,
    } as never)
    .execute();
  return { publicId, audio };
}

for (const kind of ['sqlite', 'postgres'] as const satisfies Kind[]) {
  describe(`retention (${kind})`, () => {
    test('history: finished rows older than historyDays go with their people and calls; newer and pending rows stay', async () => {
      const location = testDb(kind);
      cleanups.push(() => location.drop());
      const database = await openDatabase(location.url, {
        ...(location.schema ? { schema: location.schema } : {}),
      });
      cleanups.push(() => database.close());
      await migrate(database, [calloutMigrations, announceMigrations]);
      const dir = tempDir();
      const mediaDir = join(dir, 'media');
      const soundsDir = join(dir, 'sounds');
      mkdirSync(mediaDir, { recursive: true });
      mkdirSync(soundsDir, { recursive: true });
      const config = loadConfig({
        text: [
          `callout: {mediaDir: ${JSON.stringify(mediaDir)}}`,
          `announce: {soundsDir: ${JSON.stringify(soundsDir)}}`,
          'retention: {historyDays: 30, mediaGraceMinutes: 60}',
          '',
        ].join('\n'),
        env: {},
      });

      const oldDone = await escalation(database, 2, 40 * DAY, 31 * DAY);
      const oldError = await escalation(database, 99, 40 * DAY, 35 * DAY);
      const newDone = await escalation(database, 2, 3 * DAY, 2 * DAY);
      const oldWaiting = await escalation(database, 0, 90 * DAY, null);
      const oldInProgress = await escalation(database, 1, 90 * DAY, null);
      // The converted message of each (and the shared confirmation file).
      const wav = (id: string) => join(mediaDir, `callout-${id}-en.wav`);
      for (const id of [oldDone, newDone, oldInProgress]) writeFileSync(wav(id), 'RIFF');
      const recentlyDone = await escalation(database, 2, 2 * 60_000, 10 * 60_000);
      writeFileSync(wav(recentlyDone), 'RIFF');
      writeFileSync(join(mediaDir, 'callout-confirm-en.wav'), 'RIFF');

      const played = await announcement(database, soundsDir, 'spooled', 40 * DAY, 40 * DAY);
      const cancelled = await announcement(database, soundsDir, 'cancelled', 32 * DAY, 31 * DAY);
      const recent = await announcement(database, soundsDir, 'spooled', 2 * DAY, 2 * DAY);
      const justSpooled = await announcement(
        database,
        soundsDir,
        'spooled',
        5 * 60_000,
        5 * 60_000,
      );
      const scheduled = await announcement(database, soundsDir, 'scheduled', 60 * DAY, null);
      const playing = await announcement(database, soundsDir, 'playing', 60 * DAY, null);

      const result = await runRetention(database, config, RULES, NOW, (step, error) => {
        throw new Error(`${step}: ${String(error)}`);
      });
      assert.equal(result.escalations, 2);
      assert.equal(result.announcements, 2);

      const db = calloutDb(database);
      const events = (
        await db.selectFrom('callout_event').select('id').orderBy('id').execute()
      ).map((r) => r.id);
      assert.deepEqual(
        events,
        [oldWaiting, oldInProgress, oldDone, oldError, newDone, recentlyDone]
          .filter((id) => ![oldDone, oldError].includes(id))
          .sort(),
      );
      for (const table of ['callout_person', 'callout_attempt'] as const) {
        const left = await db.selectFrom(table).select('event_id').execute();
        assert.deepEqual(
          [...new Set(left.map((r) => r.event_id))].sort(),
          [newDone, oldWaiting, oldInProgress, recentlyDone].sort(),
          `${table}: the deleted escalations' rows are gone, the others kept`,
        );
      }
      const messages = (
        await (database.db as Kysely<AnnounceTables>)
          .selectFrom('announce_message')
          .select('public_id')
          .execute()
      ).map((r) => r.public_id);
      assert.deepEqual(
        messages.sort(),
        [recent, justSpooled, scheduled, playing].map((m) => m.publicId).sort(),
      );

      // Media: finished more than an hour ago → deleted; pending, recent, shared → kept.
      assert.equal(existsSync(wav(oldDone)), false);
      assert.equal(existsSync(wav(newDone)), false, 'finished 2 days ago: past the grace');
      assert.equal(existsSync(wav(oldInProgress)), true, 'escalation in progress: kept');
      assert.equal(existsSync(wav(recentlyDone)), true, 'finished 10 minutes ago: kept');
      assert.equal(existsSync(join(mediaDir, 'callout-confirm-en.wav')), true);
      assert.equal(existsSync(played.audio), false);
      assert.equal(existsSync(cancelled.audio), false);
      assert.equal(existsSync(recent.audio), false, 'spooled 2 days ago: past the grace');
      assert.equal(
        existsSync(justSpooled.audio),
        true,
        'spooled 5 minutes ago: Asterisk may still retry',
      );
      assert.equal(existsSync(scheduled.audio), true, 'pending: kept');
      assert.equal(existsSync(playing.audio), true, 'playing: kept');
      assert.equal(result.mediaFiles, 5);

      // Idempotent: a second run deletes nothing more.
      const again = await runRetention(database, config, RULES, NOW);
      assert.deepEqual([again.escalations, again.announcements, again.mediaFiles], [0, 0, 0]);
    });
  });
}

test('historyDays 0 keeps every row', async () => {
  const location = testDb('sqlite');
  const database = await openDatabase(location.url);
  cleanups.push(() => database.close());
  await migrate(database, [calloutMigrations, announceMigrations]);
  await escalation(database, 2, 4000 * DAY, 3000 * DAY);
  const dir = tempDir();
  const config = loadConfig({
    text: `retention: {historyDays: 0}\ncallout: {mediaDir: ${JSON.stringify(join(dir, 'm'))}}\nannounce: {soundsDir: ${JSON.stringify(join(dir, 's'))}}\n`,
    env: {},
  });
  const result = await runRetention(database, config, RULES, NOW);
  assert.equal(result.escalations, 0);
  assert.equal(
    (await calloutDb(database).selectFrom('callout_event').select('id').execute()).length,
    1,
  );
});

test('speech cache: entries unused for maxAgeMs go, then the least recently used above maxBytes; recent ones stay', async () => {
  const dir = join(tempDir(), 'cache');
  mkdirSync(dir, { recursive: true });
  const entry = (n: number, agoMs: number, bytes: number) => {
    const file = join(dir, `${n.toString(16).padStart(64, '0')}.wav`);
    writeFileSync(file, Buffer.alloc(bytes));
    const at = new Date(NOW - agoMs);
    utimesSync(file, at, at);
    return file;
  };
  const ancient = entry(1, 40 * DAY, 1000);
  const old = entry(2, 5 * DAY, 1000);
  const older = entry(3, 6 * DAY, 1000);
  const recent = entry(4, 60_000, 1000);
  const fresh = entry(5, 1000, 1000);
  const other = join(dir, 'notes.txt');
  writeFileSync(other, 'not a cache entry');
  const result = await pruneSpeechCache(dir, { nowMs: NOW, maxAgeMs: 30 * DAY, maxBytes: 3500 });
  assert.deepEqual(
    [ancient, older, old, recent, fresh].map((f) => existsSync(f)),
    [false, false, true, true, true],
    'the 40-day entry by age, then the least recently used (6 days) down to the cap',
  );
  assert.deepEqual([result.removed, result.removedBytes, result.keptBytes], [2, 2000, 3000]);
  assert.equal(existsSync(other), true, 'files not of the cache are left alone');
  // A cap below what was used in the last 10 minutes: those entries stay all the same.
  const tight = await pruneSpeechCache(dir, { nowMs: NOW, maxBytes: 500 });
  assert.deepEqual(
    [old, recent, fresh].map((f) => existsSync(f)),
    [false, true, true],
  );
  assert.deepEqual([tight.removed, tight.keptBytes], [1, 2000]);
});

test('serve runs it at start (and every intervalMinutes): an old escalation is gone, a pending one stays', async () => {
  const dir = tempDir();
  const file = join(dir, 'serve.db');
  const seeded = await openDatabase(file);
  await migrate(seeded, [calloutMigrations, announceMigrations]);
  const old = await escalation(seeded, 2, 50 * DAY, 45 * DAY);
  const pending = await escalation(seeded, 0, 50 * DAY, null);
  await seeded.close();
  const config = loadConfig({
    text: [
      'http: {listen: "127.0.0.1:0"}',
      `database: {url: ${JSON.stringify(file)}}`,
      `callout: {mediaDir: ${JSON.stringify(join(dir, 'media'))}}`,
      `announce: {soundsDir: ${JSON.stringify(join(dir, 'sounds'))}, listen: '', playback: originate}`,
      'push: {enabled: false}',
      'retention: {historyDays: 30}',
      '',
    ].join('\n'),
    env: {},
  });
  const service = createService({ config, modules: featureModules() });
  const { url } = await service.start();
  cleanups.push(() => service.stop());
  const history = async (id: string) => (await fetch(`${url}/api/v1/call?eventid=${id}`)).status;
  await until(async () => (await history(old)) === 404, 'the old escalation to go');
  assert.equal(await history(pending), 200, 'the pending escalation stays');
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /^switchboard_retention_deleted_total\{what="escalations"\} 1$/m);
});
