/**
 * Gong's API end to end against `serve` with the announce module and the PBX simulator
 * (Originate playback), SQLite store: uploads converted with sox, TTS, the schedule after adds
 * and deletes, the Originate parameters, history, bad input.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Simulator } from '../../src/sim/index.ts';
import {
  type AnnounceServer,
  announceYaml,
  listMessages,
  localStart,
  postForm,
  postMultipart,
  sine,
  soxi,
  startAnnounceServer,
  startRingerSim,
  tempDir,
  until,
} from './helpers.ts';

describe('Gong API with Originate playback (PBX simulator)', () => {
  const dir = tempDir();
  let sim: Simulator;
  let s: AnnounceServer;

  before(async () => {
    sim = await startRingerSim();
    s = await startAnnounceServer({ ami: [sim.url()], yaml: announceYaml(dir) });
    await until(() => (s.service.context?.ami.clients[0]?.connected ? true : undefined));
  });
  after(async () => {
    await s.close();
    await sim.close();
  });

  test('uploads in several formats are converted to 8 kHz mono 16-bit with leading silence', async () => {
    for (const format of ['mp3', 'ogg', 'flac']) {
      const future = localStart(Date.now() + 3_600_000);
      const res = await postMultipart(
        `${s.url}/messages/add`,
        { extension: '42301', start: future, description: `sine ${format}` },
        { name: `a.${format}`, path: sine(dir, format) },
      );
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const row = await s.module.instance?.repository.find(res.body.id as string);
      assert.ok(row);
      const info = soxi(row.audio_path);
      assert.deepEqual([info.rate, info.channels, info.bits], [8000, 1, 16]);
      assert.ok(Math.abs(info.durationS - 1.5) < 0.1, `duration ${info.durationS}`);
      assert.equal(row.extension, '42301');
      const removed = await fetch(`${s.url}/messages/${res.body.id}`, { method: 'DELETE' });
      assert.equal(removed.status, 200);
      assert.equal(existsSync(row.audio_path), false);
    }
  });

  test('schedule: ordered by requested start, never overlapping, recomputed on add/delete', async () => {
    const base = Math.floor(Date.now() / 1000) * 1000 + 7_200_000;
    const audio = sine(dir, 'wav');
    const add = async (offsetS: number, description: string) => {
      const res = await postMultipart(
        `${s.url}/messages/add`,
        { start: localStart(base + offsetS * 1000), description },
        { name: 'a.wav', path: audio },
      );
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body as { id: string; start: string };
    };
    // Slot = 1.5 s audio + 2 s ring + 1 s gap = 4.5 s.
    const b = await add(10, 'b');
    const a = await add(0, 'a');
    await add(1, 'c'); // overlaps a: pushed to a's end
    let list = await listMessages(s.url);
    assert.deepEqual(
      list.map((m) => [m.description, m.start]),
      [
        ['a', localStart(base)],
        ['c', localStart(base + 4500)],
        ['b', localStart(base + 10_000)],
      ],
    );
    assert.deepEqual(Object.keys(list[0] ?? {}).sort(), [
      'description',
      'extension',
      'id',
      'start',
    ]);
    assert.equal(list[0]?.extension, '42300');
    // Deleting a: c moves back to its requested start.
    assert.equal((await fetch(`${s.url}/messages/${a.id}`, { method: 'DELETE' })).status, 200);
    list = await listMessages(s.url);
    assert.deepEqual(
      list.map((m) => [m.description, m.start]),
      [
        ['c', localStart(base + 1000)],
        ['b', localStart(base + 10_000)],
      ],
    );
    // ISO 8601 with an offset is accepted too.
    const iso = await postMultipart(
      `${s.url}/messages/add`,
      { start: new Date(base + 3000).toISOString(), description: 'iso' },
      { name: 'a.wav', path: audio },
    );
    assert.equal(iso.status, 200);
    list = await listMessages(s.url);
    assert.deepEqual(
      list.map((m) => [m.description, m.start]),
      [
        ['c', localStart(base + 1000)],
        ['iso', localStart(base + 5500)],
        ['b', localStart(base + 10_000)],
      ],
    );
    for (const m of list) await fetch(`${s.url}/messages/${m.id}`, { method: 'DELETE' });
    assert.deepEqual(await listMessages(s.url), []);
    const history = await listMessages(s.url, true);
    assert.ok(history.filter((m) => m.status === 'cancelled').length >= 4);
    // Deleting again: 404.
    const again = await fetch(`${s.url}/messages/${b.id}`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    assert.match(((await again.json()) as { error: string }).error, /not found/);
  });

  test('a message due now is played by Originate to the validated extension', async () => {
    const before = sim.originates().length;
    const res = await postForm(`${s.url}/messages/tts/add`, {
      text: 'The build is broken.',
      extension: '42310',
      description: 'tts now',
      language: 'en',
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const id = res.body.id as string;
    const row = await s.module.instance?.repository.find(id);
    assert.ok(row);
    // Generous budgets: TTS synthesis + conversion on a loaded 2-core machine can take seconds.
    await sim.waitForAction('Originate', () => sim.originates().length > before, 30_000);
    const originate = sim.originates().at(-1);
    assert.ok(originate);
    assert.equal(originate.channel, 'PJSIP/42310');
    assert.equal(originate.context, 'switchboard-announce');
    assert.equal(originate.exten, 's');
    assert.equal(originate.priority, '1');
    assert.equal(originate.timeoutMs, 2000);
    assert.equal(originate.callerIdName, 'Switchboard');
    assert.equal(originate.variables.SWITCHBOARD_MESSAGE, row.audio_path.replace(/\.wav$/, ''));
    const played = await until(async () => {
      const all = await listMessages(s.url, true);
      if (process.env.DEBUG_ANNOUNCE) console.log(JSON.stringify(all.find((x) => x.id === id)));
      const m = all.find((x) => x.id === id);
      return m?.status === 'played' ? m : undefined;
    }, 30_000);
    assert.equal(played.outcome, 'answered');
    assert.equal(sim.originates().length, before + 1);
    // Played: cannot be deleted any more.
    assert.equal((await fetch(`${s.url}/messages/${id}`, { method: 'DELETE' })).status, 404);
  });

  test('bad input answers 400/404/413 with the reason, and nothing reaches Asterisk', async () => {
    const count = sim.originates().length;
    const audio = sine(dir, 'wav');
    const cases: Array<
      [string, Promise<{ status: number; body: Record<string, unknown> }>, number, RegExp]
    > = [
      ['no file', postMultipart(`${s.url}/messages/add`, { extension: '1' }), 400, /audio/],
      [
        'not audio',
        postMultipart(
          `${s.url}/messages/add`,
          {},
          { name: 'x.wav', content: Buffer.from('hello, not audio at all') },
        ),
        400,
        /not an audio file/,
      ],
      [
        'oversized',
        postMultipart(
          `${s.url}/messages/add`,
          {},
          { name: 'big.wav', content: Buffer.alloc(1_200_000, 1) },
        ),
        413,
        /larger than 1000000/,
      ],
      [
        'extension with newline',
        postMultipart(
          `${s.url}/messages/add`,
          { extension: '42300\nApplication: System' },
          { name: 'a.wav', path: audio },
        ),
        400,
        /extension/,
      ],
      [
        'extension with comma',
        postForm(`${s.url}/messages/tts/add`, { text: 'hi', extension: '42300,1' }),
        400,
        /extension/,
      ],
      ['empty text', postForm(`${s.url}/messages/tts/add`, { text: '  ' }), 400, /text/],
      [
        'text too long',
        postForm(`${s.url}/messages/tts/add`, { text: 'a'.repeat(301) }),
        400,
        /longer than 300/,
      ],
      [
        'invalid start',
        postForm(`${s.url}/messages/tts/add`, { text: 'hi', start: '2024-02-30T10:00:00' }),
        400,
        /start/,
      ],
      [
        'garbage start',
        postForm(`${s.url}/messages/tts/add`, { text: 'hi', start: 'tomorrow' }),
        400,
        /YYYY-MM-DD/,
      ],
      [
        'bad language',
        postForm(`${s.url}/messages/tts/add`, { text: 'hi', language: '../x' }),
        400,
        /language/,
      ],
    ];
    for (const [name, promise, status, reason] of cases) {
      const res = await promise;
      assert.equal(res.status, status, `${name}: ${JSON.stringify(res.body)}`);
      assert.match(String(res.body.error), reason, name);
    }
    const unknown = await fetch(`${s.url}/messages/999999`, { method: 'DELETE' });
    assert.equal(unknown.status, 404);
    const bogus = await fetch(`${s.url}/messages/abc`, { method: 'DELETE' });
    assert.equal(bogus.status, 404);
    assert.equal(sim.originates().length, count);
  });
});
