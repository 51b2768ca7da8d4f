/**
 * Schedule recomputation on the real databases (SQLite and PostgreSQL): a message added in
 * front of a packed queue moves every queued message by its slot, in one recompute, and the
 * rows being played (or finished) are never rewritten. Also the worst case of the benchmark
 * (bench/announce.ts): 10,000 queued, all move, and the result is stable. How long that takes
 * is measured by the benchmark (docs/benchmarks.md), not asserted here.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { type AnnounceModule, createAnnounceModule } from '../../src/announce/index.ts';
import { defaultConfig } from '../../src/config/load.ts';
import { type Database, migrate, openDatabase } from '../../src/store/db.ts';
import { dropSchema, PG_URL, tempDir } from './helpers.ts';

const SLOT_EXTRA_MS = (defaultConfig().announce.ringTimeS + defaultConfig().announce.gapS) * 1000;

function message(requestedAt: number, durationMs = 5000) {
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

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`schedule recomputation on ${kind}`, () => {
    const dir = tempDir('sb-announce-schedule-');
    const schema = `announce_sched_${process.pid}_${Date.now().toString(36)}`;
    let db: Database;
    let module: AnnounceModule;

    before(async () => {
      db =
        kind === 'sqlite'
          ? await openDatabase(join(dir, 's.db'))
          : await openDatabase(PG_URL, { schema });
      const config = defaultConfig();
      config.announce.soundsDir = join(dir, 'sounds');
      module = createAnnounceModule({
        config: config.announce,
        tts: config.tts,
        auth: config.auth,
        database: db,
        logger: pino({ level: 'silent' }),
        playback: 'callfile',
      });
      await migrate(db, [module.migrations]);
    });
    after(async () => {
      await db.close();
      if (kind === 'postgres') await dropSchema(schema);
    });

    async function dues(): Promise<Map<number, number>> {
      const rows = await module.repository.db
        .selectFrom('announce_message')
        .select(['id', 'due_at'])
        .execute();
      return new Map(rows.map((r) => [Number(r.id), Number(r.due_at)]));
    }

    test('a message in front of a packed queue moves every queued one by its slot', async () => {
      const base = Date.now() + 86_400_000;
      const ids: number[] = [];
      for (let i = 0; i < 50; i += 1) ids.push((await module.repository.insert(message(base))).id);
      assert.equal(await module.scheduler.recompute(), 49); // the first keeps its requested start
      const packed = await dues();
      ids.forEach((id, i) => {
        assert.equal(packed.get(id), base + i * (5000 + SLOT_EXTRA_MS));
      });
      const front = await module.repository.insert(message(base - 1, 2000));
      assert.equal(await module.scheduler.recompute(), 50);
      const moved = await dues();
      assert.equal(moved.get(front.id), base - 1);
      ids.forEach((id, i) => {
        assert.equal(moved.get(id), base - 1 + 2000 + SLOT_EXTRA_MS + i * (5000 + SLOT_EXTRA_MS));
      });
      assert.equal(await module.scheduler.recompute(), 0);
      await module.repository.db.deleteFrom('announce_message').execute();
    });

    test('worst case: 10,000 queued all move in one recompute, and stay put after', async () => {
      const base = Date.now() + 86_400_000;
      const rows = Array.from({ length: 10_000 }, (_, i) => ({
        ...message(base + (i % 97) * 1000),
        public_id: `bulk-${i}`,
        due_at: base + (i % 97) * 1000,
        status: 'scheduled',
        outcome: '',
        attempts: 0,
        callfile_path: '',
        created_at: Date.now(),
      }));
      for (let i = 0; i < rows.length; i += 500) {
        await module.repository.db
          .insertInto('announce_message')
          .values(rows.slice(i, i + 500) as never)
          .execute();
      }
      await module.scheduler.recompute();
      await module.repository.insert(message(base - 1));
      assert.equal(await module.scheduler.recompute(), 10_000);
      // Nothing left to move: the moved schedule is consistent.
      assert.equal(await module.scheduler.recompute(), 0);
      await module.repository.db.deleteFrom('announce_message').execute();
    });
  });
}
