/**
 * The announcement worker on the shared worker primitive (issue 13 §2), on SQLite and
 * PostgreSQL: a message left `playing` by a dead process is failed (`interrupted`) by a
 * running worker once its lease runs out, not only at start; a message that plays longer
 * than its lease keeps it (renewed), so a second worker neither takes nor fails it; a
 * message added while the worker is busy is played right after, without waiting for a poll.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import pino from 'pino';
import type { PlayResult } from '../../src/announce/playback.ts';
import {
  announceMigrations,
  MessageRepository,
  type MessageRow,
} from '../../src/announce/repository.ts';
import { AnnounceScheduler } from '../../src/announce/scheduler.ts';
import { type Database, migrate, openDatabase } from '../../src/store/db.ts';
import { dropSchema, PG_URL, tempDir } from './helpers.ts';

function message(requestedAt: number, durationMs = 1000) {
  return {
    description: '',
    extension: '42300',
    kind: 'audio' as const,
    text: '',
    language: '',
    audio_path: '/dev/null',
    duration_ms: durationMs,
    requested_at: requestedAt,
  };
}

/** Polls the async `condition` every 10 ms until true, or throws after `timeoutMs`. */
async function eventually(condition: () => Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`announce worker on ${kind}`, () => {
    const dir = tempDir('sb-announce-worker-');
    const schema = `announce_worker_${process.pid}_${Date.now().toString(36)}`;
    let db: Database;
    let repository: MessageRepository;
    const schedulers: AnnounceScheduler[] = [];

    before(async () => {
      db =
        kind === 'sqlite'
          ? await openDatabase(join(dir, 'w.db'))
          : await openDatabase(PG_URL, { schema });
      await migrate(db, [announceMigrations]);
      repository = new MessageRepository(db);
    });
    after(async () => {
      for (const s of schedulers) await s.stop();
      await db.close();
      if (kind === 'postgres') await dropSchema(schema);
    });
    beforeEach(async () => {
      for (const s of schedulers.splice(0)) await s.stop();
      await repository.db.deleteFrom('announce_message').execute();
    });

    function scheduler(
      owner: string,
      play: (m: MessageRow) => Promise<PlayResult>,
      extra: { leaseMs?: number; pollMs?: number } = {},
    ): AnnounceScheduler {
      const s = new AnnounceScheduler({
        repository,
        play,
        ringTimeS: 0,
        gapS: 0,
        maxRetries: 0,
        retryTimeS: 0,
        logger: pino({ level: 'silent' }),
        owner,
        ...extra,
      });
      schedulers.push(s);
      return s;
    }

    const played = async (): Promise<MessageRow[]> => repository.list();

    test('a message left playing by a dead process is failed while the worker runs', async () => {
      const s = scheduler('alive', async () => ({ status: 'played', outcome: 'answered' }), {
        pollMs: 20,
      });
      await s.start();
      // another process claimed it, started the call and died: lease already over
      const row = await repository.insert(message(Date.now() + 3_600_000));
      await repository.db
        .updateTable('announce_message')
        .set({ status: 'playing', lease_owner: 'dead', lease_until: Date.now() - 1 })
        .where('id', '=', row.id)
        .execute();
      await eventually(
        async () => (await repository.get(row.id))?.status === 'failed',
        'the interrupted message to be failed',
      );
      const failed = await repository.get(row.id);
      assert.equal(failed?.outcome, 'interrupted');
    });

    test('a message longer than its lease keeps it: a second worker neither takes nor fails it', async () => {
      const leaseMs = 600;
      let plays = 0;
      let release: () => void = () => {};
      const releasable = new Promise<void>((resolve) => {
        release = resolve;
      });
      const a = scheduler(
        'a',
        async () => {
          plays += 1;
          await releasable;
          return { status: 'played', outcome: 'answered' };
        },
        { leaseMs, pollMs: 20 },
      );
      const b = scheduler(
        'b',
        async () => {
          plays += 1;
          return { status: 'played', outcome: 'answered' };
        },
        { leaseMs, pollMs: 20 },
      );
      const row = await repository.insert(message(Date.now()));
      await a.start();
      await eventually(async () => plays === 1, 'the message to start playing');
      const claimedUntil = Number((await repository.get(row.id))?.lease_until);
      await b.start();
      // b runs rounds (sweeps, claims) while a plays beyond several leases
      await eventually(
        async () => Date.now() > claimedUntil + 3 * leaseMs,
        'three leases to pass',
        30_000,
      );
      const during = await repository.get(row.id);
      assert.equal(during?.status, 'playing');
      assert.equal(during?.lease_owner, 'a');
      release();
      await eventually(
        async () => (await repository.get(row.id))?.status === 'played',
        'the message to be played',
      );
      assert.equal(plays, 1, 'played once, by a');
      assert.equal((await played()).length, 1);
    });

    test('a message added during a round is played without waiting for a poll', async () => {
      const done: number[] = [];
      let first = true;
      let release: () => void = () => {};
      const releasable = new Promise<void>((resolve) => {
        release = resolve;
      });
      // an hour's poll: only the wake-up can start the second message in time
      const s = scheduler(
        'w',
        async (m) => {
          if (first) {
            first = false;
            await releasable;
          }
          done.push(m.id);
          return { status: 'played', outcome: 'answered' };
        },
        { pollMs: 3_600_000 },
      );
      const one = await repository.insert(message(Date.now()));
      await s.start();
      await eventually(async () => !first, 'the first message to start');
      const two = await repository.insert(message(Date.now()));
      s.poke();
      release();
      await eventually(async () => done.length === 2, 'both messages to be played');
      assert.deepEqual(done, [one.id, two.id]);
    });
  });
}
