/**
 * Call-file playback into a temporary spool directory (contents, modification time = start,
 * atomic placement), and restart durability on SQLite and PostgreSQL (no message lost, none
 * played twice; a message interrupted by a crash is not replayed).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Simulator } from '../../src/sim/index.ts';
import { openDatabase } from '../../src/store/db.ts';
import {
  announceYaml,
  dropSchema,
  listMessages,
  localStart,
  PG_URL,
  postForm,
  startAnnounceServer,
  startRingerSim,
  tempDir,
  until,
} from './helpers.ts';

describe('call-file playback', () => {
  const dir = tempDir();
  test('a due message becomes a call file: validated content, mtime = start, renamed in', async () => {
    mkdirSync(join(dir, 'spool', 'outgoing'), { recursive: true }); // Asterisk's own directory
    const s = await startAnnounceServer({ yaml: announceYaml(dir) });
    try {
      const spool = join(dir, 'spool', 'outgoing');
      const res = await postForm(`${s.url}/messages/tts/add`, {
        text: 'Lunch is served.',
        extension: '42355',
        description: 'lunch',
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const id = res.body.id as string;
      const file = join(spool, `announce-${id}.call`);
      await until(() =>
        readdirSync(spool, { withFileTypes: true }).length > 0 ? true : undefined,
      );
      const row = await s.module.instance?.repository.find(id);
      assert.ok(row);
      assert.deepEqual(readdirSync(spool), [`announce-${id}.call`]);
      const content = readFileSync(file, 'utf8');
      assert.equal(
        content,
        [
          'Channel: PJSIP/42355',
          'CallerID: Switchboard',
          'MaxRetries: 1',
          'RetryTime: 1',
          'WaitTime: 2',
          'Context: switchboard-announce',
          'Extension: s',
          'Priority: 1',
          `Setvar: SWITCHBOARD_MESSAGE=${row.audio_path.replace(/\.wav$/, '')}`,
          `Setvar: SWITCHBOARD_CALL_ID=announce-${id}-1`,
          '',
        ].join('\n'),
      );
      assert.equal(Math.floor(statSync(file).mtimeMs / 1000), Math.floor(row.due_at / 1000));
      // Written in the tmp directory next to the spool, then renamed: nothing left behind.
      assert.deepEqual(readdirSync(join(dir, 'spool', 'tmp')), []);
      const history = await until(async () => {
        const all = await listMessages(s.url, true);
        return all[0]?.status === 'spooled' ? all : undefined;
      });
      assert.equal(history[0]?.outcome, 'callfile');
      // A future message waits in the database (no call file yet).
      await postForm(`${s.url}/messages/tts/add`, {
        text: 'Later.',
        start: localStart(Date.now() + 3_600_000),
      });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(readdirSync(spool).length, 1);
    } finally {
      await s.close();
    }
  });
});

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`restart durability on ${kind}`, () => {
    const dir = tempDir();
    const schema = `announce_${process.pid}_${Date.now().toString(36)}`;
    const database = kind === 'sqlite' ? join(dir, 'switchboard.db') : PG_URL;
    let sim: Simulator;
    // The first server, closed by the test; closed here when the test fails before that
    // (left open, it would keep this file running until the runner's timeout).
    let first: { close(): Promise<void> } | undefined;
    after(async () => {
      await first?.close();
      await sim?.close();
      if (kind === 'postgres') await dropSchema(schema);
    });

    test('messages survive a restart and are played once; an interrupted one is not replayed', async () => {
      sim = await startRingerSim();
      const start = (await import('./helpers.ts')).startAnnounceServer;
      const opts = {
        ami: [sim.url()],
        yaml: announceYaml(dir),
        database,
        ...(kind === 'postgres' ? { schema } : {}),
      };
      let s = await start(opts);
      first = s;
      // Due in an hour while the first server runs (however slow the machine, it plays
      // nothing), moved to now in the database while no server runs.
      const due = Date.now() + 3_600_000;
      const a = await postForm(`${s.url}/messages/tts/add`, {
        text: 'First.',
        extension: '501',
        start: new Date(due).toISOString(),
      });
      const b = await postForm(`${s.url}/messages/tts/add`, {
        text: 'Second.',
        extension: '502',
        start: new Date(due).toISOString(),
      });
      assert.equal(a.status, 200);
      assert.equal(b.status, 200);
      // A message whose worker "died" mid-call (playing, lease expired).
      const repo = s.module.instance?.repository;
      assert.ok(repo);
      const c = await postForm(`${s.url}/messages/tts/add`, {
        text: 'Third.',
        extension: '503',
        start: localStart(Date.now() + 3_600_000),
      });
      await repo.db
        .updateTable('announce_message')
        .set({ status: 'playing', lease_owner: 'dead', lease_until: Date.now() - 1 })
        .where('public_id', '=', c.body.id as string)
        .execute();
      first = undefined;
      await s.close();
      assert.equal(sim.originates().length, 0);
      const db = await openDatabase(database, kind === 'postgres' ? { schema } : {});
      const now = Date.now();
      await (db.db as typeof repo.db)
        .updateTable('announce_message')
        .set({ requested_at: now, due_at: now })
        .where('public_id', 'in', [a.body.id as string, b.body.id as string])
        .execute();
      await db.close();
      s = await start(opts);
      try {
        await until(async () => {
          const all = await listMessages(s.url, true);
          return all.filter((m) => m.status === 'played').length === 2 ? true : undefined;
        }, 30_000);
        await new Promise((r) => setTimeout(r, 500));
        const channels = sim
          .originates()
          .map((o) => o.channel)
          .sort();
        assert.deepEqual(channels, ['PJSIP/501', 'PJSIP/502']);
        const all = await listMessages(s.url, true);
        const third = all.find((m) => m.id === c.body.id);
        assert.equal(third?.status, 'failed');
        assert.equal(third?.outcome, 'interrupted');
        // Not overlapping: the second call starts at least the gap (1 s) after the first.
        const at = sim.actionsNamed('Originate').map((x) => x.atMs);
        assert.ok((at[1] ?? 0) - (at[0] ?? 0) >= 1000, `originates ${at.join(', ')}`);
      } finally {
        await s.close();
      }
    });
  });
}
