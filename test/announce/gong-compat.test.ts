/**
 * Existing Gong clients against `serve` with Switchboard's default announce configuration
 * (issue 12 §2): xgong-jenkins' exact request (no extension) is played on Gong's default
 * ringer `42300@default` through `Local/`, with Gong's leading silences (3 s without an
 * extension, 1 s with one); ids are opaque strings in every answer and on the bus; rows of
 * databases created before string ids keep working (SQLite and PostgreSQL); a call file for
 * Gong's installed `[xgong]` context is produced when configured, checked line by line
 * against that context's contract, and the same flavour through AMI Originate.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { announceMigrations } from '../../src/announce/index.ts';
import type { Simulator } from '../../src/sim/index.ts';
import { defineMigrations, migrate, openDatabase } from '../../src/store/db.ts';
import {
  type AnnounceServer,
  dropSchema,
  gongDialplanContract,
  leadingSilenceS,
  listMessages,
  localStart,
  PG_URL,
  postForm,
  postMultipart,
  rawHttp,
  sine,
  soxi,
  startAnnounceServer,
  startRingerSim,
  tempDir,
  until,
} from './helpers.ts';

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Only the paths: everything else of the announce section is Switchboard's default. */
function defaultAnnounceYaml(dir: string, extra = ''): string {
  return `announce:
  soundsDir: ${join(dir, 'sounds')}
  spoolDir: ${join(dir, 'spool', 'outgoing')}
${extra}`;
}

/**
 * The request xgong-jenkins sends (`xgong_jenkins/main.py` `send_message`:
 * `requests.post(url + "/messages/tts/add", data={'text': cleaned_message})`), byte for
 * byte as python-requests 2.x writes it (captured from requests 2.34 under Python 3.11):
 * form-encoded, `+` for spaces, UTF-8 percent-encoded, no extension, no language, no start.
 */
function xgongJenkinsRequest(port: number, text: string): Buffer {
  const body = new URLSearchParams({ text }).toString();
  return Buffer.from(
    `POST /messages/tts/add HTTP/1.1\r\nHost: localhost:${port}\r\nUser-Agent: python-requests/2.34.2\r\nAccept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n${body}`,
    'latin1',
  );
}

describe('the default configuration (call files, Gong listener)', () => {
  const dir = tempDir('sb-gong-default-');
  const spool = join(dir, 'spool', 'outgoing');
  let s: AnnounceServer;

  before(async () => {
    mkdirSync(spool, { recursive: true });
    s = await startAnnounceServer({ yaml: defaultAnnounceYaml(dir) });
  });
  after(async () => {
    await s.close();
  });

  test('the defaults are Gong’s ringer: 42300@default through Local/, 3 s and 1 s of silence', () => {
    const a = s.config.announce;
    assert.equal(a.extension, '42300@default');
    assert.equal(a.dialString, 'Local/{extension}');
    assert.equal(a.defaultLeadingSilenceMs, 3000);
    assert.equal(a.leadingSilenceMs, 1000);
    assert.equal(a.context, 'switchboard-announce');
    assert.equal(a.soundVariable, 'SWITCHBOARD_MESSAGE');
    assert.equal(a.contextExtension, 's');
  });

  test("xgong-jenkins' exact request on the Gong listener: 200, played on 42300@default via Local/", async () => {
    const listener = s.module.listener;
    assert.ok(listener, 'the Gong listener runs with the default configuration');
    const text = 'deploy prod est cassé. api tests est cassé';
    const answer = await rawHttp(listener.port, xgongJenkinsRequest(listener.port, text));
    assert.match(answer, /^HTTP\/1\.1 200 /);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Record<
      string,
      unknown
    >;
    assert.match(String(body.id), UUID4);
    assert.equal(body.extension, '42300@default');
    const id = body.id as string;
    const row = await s.module.instance?.repository.find(id);
    assert.ok(row);
    assert.equal(row.text, text);
    assert.equal(row.language, 'en');
    // Gong's 3 s before a message to the default ringer (server.py prepare_audio: silence).
    const silence = leadingSilenceS(row.audio_path);
    assert.ok(silence >= 2.95 && silence < 3.3, `leading silence ${silence} s`);
    const file = join(spool, `announce-${id}.call`);
    await until(() => (existsSync(file) ? true : undefined), 30_000);
    assert.deepEqual(readFileSync(file, 'utf8').split('\n'), [
      'Channel: Local/42300@default',
      'CallerID: Switchboard',
      'MaxRetries: 2',
      'RetryTime: 60',
      'WaitTime: 30',
      'Context: switchboard-announce',
      'Extension: s',
      'Priority: 1',
      `Setvar: SWITCHBOARD_MESSAGE=${row.audio_path.replace(/\.wav$/, '')}`,
      `Setvar: SWITCHBOARD_CALL_ID=announce-${id}-1`,
      '',
    ]);
  });

  test('an explicit extension (the default one, or absent from the allow-list) as Gong: 1 s, or 400', async () => {
    const later = localStart(Date.now() + 3_600_000);
    const res = await postForm(`${s.url}/messages/tts/add`, {
      text: 'Hello.',
      extension: '42300@default',
      start: later,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const row = await s.module.instance?.repository.find(res.body.id as string);
    assert.ok(row);
    const silence = leadingSilenceS(row.audio_path);
    assert.ok(silence >= 0.95 && silence < 1.3, `leading silence ${silence} s`);
    // Any other extension is refused (the default allow-list is empty: the ringer only).
    const other = await postForm(`${s.url}/messages/tts/add`, { text: 'Hi.', extension: '42301' });
    assert.equal(other.status, 400);
    assert.match(String(other.body.error), /^extension: is not an allowed ringer extension/);
    assert.equal(
      (await fetch(`${s.url}/messages/${row.public_id}`, { method: 'DELETE' })).status,
      200,
    );
  });

  test('ids are strings (uuid4) in add, list, delete and on the bus', async () => {
    const events: { id: unknown; kind: string }[] = [];
    s.service.context?.bus.subscribe('announce.#', (message, key) => {
      events.push({ id: (message as { data: { id: unknown } }).data.id, kind: key });
    });
    const later = localStart(Date.now() + 3_600_000);
    const upload = await postMultipart(
      `${s.url}/messages/add`,
      { start: later, description: 'sine' },
      { name: 'a.wav', path: sine(dir, 'wav') },
    );
    assert.equal(upload.status, 200, JSON.stringify(upload.body));
    const tts = await postForm(`${s.url}/messages/tts/add`, { text: 'Later.', start: later });
    assert.equal(tts.status, 200);
    for (const id of [upload.body.id, tts.body.id]) assert.match(String(id), UUID4);
    assert.equal(typeof upload.body.id, 'string');
    assert.notEqual(upload.body.id, tts.body.id);
    const listed = await listMessages(s.url);
    assert.deepEqual(
      listed.map((m) => typeof m.id),
      ['string', 'string'],
    );
    const all = await listMessages(s.url, true);
    assert.ok(all.every((m) => typeof m.id === 'string'));
    // A client doing '/messages/' + m['id'] (Python: str + str).
    const removed = await fetch(`${s.url}/messages/${listed[0]?.id}`, { method: 'DELETE' });
    assert.equal(removed.status, 200);
    const body = (await removed.json()) as { id: unknown; status: string };
    assert.equal(body.id, listed[0]?.id);
    assert.equal(body.status, 'cancelled');
    await fetch(`${s.url}/messages/${listed[1]?.id}`, { method: 'DELETE' });
    // Unknown ids, a uuid in upper case, and junk: 404 in Gong's shape.
    for (const id of [
      '00000000-0000-4000-8000-000000000000',
      String(tts.body.id).toUpperCase(),
      'x%20y',
    ]) {
      const res = await fetch(`${s.url}/messages/${id}`, { method: 'DELETE' });
      assert.equal(res.status, 404, id);
      assert.equal(((await res.json()) as { code: string }).code, 'not_found');
    }
    await until(() =>
      events.filter((e) => e.kind === 'announce.cancelled').length === 2 ? true : undefined,
    );
    assert.ok(events.length >= 4);
    for (const event of events) assert.match(String(event.id), UUID4, event.kind);
  });
});

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`a database from before string ids (${kind})`, () => {
    const dir = tempDir('sb-gong-migrate-');
    const schema = `announce_ids_${process.pid}_${Date.now().toString(36)}`;
    const database = kind === 'sqlite' ? join(dir, 'old.db') : PG_URL;
    after(async () => {
      if (kind === 'postgres') await dropSchema(schema);
    });

    test('integer ids become their string, still deletable; new ids are uuid4', async () => {
      // The announce schema as it was: only the first migration, two rows with integer ids.
      const old = await openDatabase(database, kind === 'postgres' ? { schema } : {});
      const first = announceMigrations.migrations[0];
      assert.ok(first);
      await migrate(old, [defineMigrations('announce', [first])]);
      const due = Date.now() + 3_600_000;
      for (const description of ['old one', 'old two']) {
        await (old.db as Kysely<{ announce_message: Record<string, unknown> }>)
          .insertInto('announce_message')
          .values({
            description,
            extension: '42300',
            kind: 'tts',
            text: description,
            language: 'en',
            audio_path: join(dir, `${description.replace(' ', '-')}.wav`),
            duration_ms: 1000,
            requested_at: due,
            due_at: due,
            status: 'scheduled',
            outcome: '',
            attempts: 0,
            callfile_path: '',
            created_at: Date.now(),
          })
          .execute();
      }
      await old.close();
      mkdirSync(join(dir, 'spool', 'outgoing'), { recursive: true });
      const s = await startAnnounceServer({
        yaml: defaultAnnounceYaml(dir),
        database,
        ...(kind === 'postgres' ? { schema } : {}),
      });
      try {
        const listed = await listMessages(s.url);
        assert.deepEqual(
          listed.map((m) => [m.id, m.description]),
          [
            ['1', 'old one'],
            ['2', 'old two'],
          ],
        );
        const removed = await fetch(`${s.url}/messages/1`, { method: 'DELETE' });
        assert.equal(removed.status, 200);
        assert.equal(((await removed.json()) as { id: unknown }).id, '1');
        const fresh = await postForm(`${s.url}/messages/tts/add`, {
          text: 'New.',
          start: localStart(due + 60_000),
        });
        assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
        assert.match(String(fresh.body.id), UUID4);
        assert.deepEqual(
          (await listMessages(s.url)).map((m) => m.id),
          ['2', fresh.body.id],
        );
      } finally {
        await s.close();
      }
    });
  });
}

describe("Gong's installed dialplan ([xgong]): the call-file flavour", () => {
  const dir = tempDir('sb-gong-xgong-');
  const spool = join(dir, 'spool', 'outgoing');
  const contract = gongDialplanContract();
  let s: AnnounceServer;

  before(async () => {
    mkdirSync(spool, { recursive: true });
    // docs/announce.md "Migrating from Gong": the three keys, Gong's caller ID and retries.
    s = await startAnnounceServer({
      yaml: defaultAnnounceYaml(
        dir,
        `  playback: callfile
  context: ${contract.context}
  contextExtension: ${contract.exten}
  soundVariable: ${contract.variable}
  callerId: XGong
  maxRetries: 3
  retryTimeS: 60
`,
      ),
    });
  });
  after(async () => {
    await s.close();
  });

  test(`a message without extension: a call file line by line as [${contract.context}] needs it (${contract.source})`, async () => {
    const res = await postForm(`${s.url}/messages/tts/add`, { text: 'Le build est cassé.' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const id = res.body.id as string;
    const file = join(spool, `announce-${id}.call`);
    await until(() => (existsSync(file) ? true : undefined), 30_000);
    const row = await s.module.instance?.repository.find(id);
    assert.ok(row);
    const sound = row.audio_path.replace(/\.wav$/, '');
    const lines = readFileSync(file, 'utf8').split('\n');
    assert.deepEqual(lines, [
      'Channel: Local/42300@default',
      'CallerID: XGong',
      'MaxRetries: 3',
      'RetryTime: 60',
      'WaitTime: 30',
      `Context: ${contract.context}`,
      `Extension: ${contract.exten}`,
      'Priority: 1',
      `Setvar: ${contract.variable}=${sound}`,
      `Setvar: SWITCHBOARD_CALL_ID=announce-${id}-1`,
      '',
    ]);
    // What the context does with it: Playback(${AUDIO_FILE}) finds <value>.wav (8 kHz mono
    // 16-bit, what Asterisk plays without transcoding), System(rm ${AUDIO_FILE}.wav) removes
    // that same file through a shell: the value holds no character a shell interprets.
    const value = lines.find((l) => l.startsWith(`Setvar: ${contract.variable}=`))?.split('=')[1];
    assert.equal(value, sound);
    const removed = contract.removes.replace(`\${${contract.variable}}`, value ?? '');
    assert.equal(removed, row.audio_path);
    assert.ok(existsSync(removed));
    const info = soxi(removed);
    assert.deepEqual([info.rate, info.channels, info.bits], [8000, 1, 16]);
    assert.match(value ?? '', /^[0-9A-Za-z_./-]+$/);
    assert.deepEqual(readdirSync(spool), [`announce-${id}.call`]);
  });

  test('config check refuses what [xgong] could not take', async () => {
    const { loadConfig } = await import('../../src/config/load.ts');
    const { checkServiceConfig } = await import('../../src/serve/service.ts');
    const problems = checkServiceConfig(
      loadConfig({
        text: `announce:\n  soundsDir: '/srv/so*unds'\n  soundVariable: SWITCHBOARD_CALL_ID\n  context: 'x,y'\n`,
        env: {},
      }),
    );
    assert.deepEqual(
      problems.map((p) => p.key),
      ['announce.context', 'announce.soundVariable', 'announce.soundsDir'],
    );
  });
});

describe("Gong's installed dialplan ([xgong]): the Originate flavour", () => {
  const dir = tempDir('sb-gong-xgong-ami-');
  const contract = gongDialplanContract();
  let sim: Simulator;
  let s: AnnounceServer;

  before(async () => {
    const { startSimulator } = await import('../../src/sim/index.ts');
    sim = await startSimulator({
      scripts: { '*': { outcome: 'answer', answerAfterMs: 100, hangupAfterMs: 5000 } },
      dialplan: {
        [contract.context]: {
          playback: 'xgong-message',
          playbackMs: 200,
          read: '',
          userEvent: null,
        },
      },
    });
    s = await startAnnounceServer({
      ami: [sim.url()],
      yaml: defaultAnnounceYaml(
        dir,
        `  context: ${contract.context}\n  soundVariable: ${contract.variable}\n  ringTimeS: 2\n`,
      ),
    });
    await until(() => (s.service.context?.ami.clients[0]?.connected ? true : undefined));
  });
  after(async () => {
    await s.close();
    await sim.close();
  });

  test('Originate into the context with the variable; answered = played', async () => {
    const res = await postForm(`${s.url}/messages/tts/add`, { text: 'Bonjour.' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const id = res.body.id as string;
    await sim.waitForAction('Originate', () => true, 30_000);
    const originate = sim.originates().at(-1);
    assert.ok(originate);
    const row = await s.module.instance?.repository.find(id);
    assert.ok(row);
    assert.equal(originate.channel, 'Local/42300@default');
    assert.equal(originate.context, contract.context);
    assert.equal(originate.exten, contract.exten);
    assert.equal(originate.priority, '1');
    assert.equal(originate.variables[contract.variable], row.audio_path.replace(/\.wav$/, ''));
    assert.equal(originate.variables.SWITCHBOARD_MESSAGE, undefined);
    const played = await until(async () => {
      const m = (await listMessages(s.url, true)).find((x) => x.id === id);
      return m?.status === 'played' ? m : undefined;
    }, 30_000);
    assert.equal(played.outcome, 'answered');
  });
});

test('the default ringer through the PBX simulator: Originate of Local/42300@default', async () => {
  const dir = tempDir('sb-gong-default-ami-');
  const sim = await startRingerSim();
  const s = await startAnnounceServer({
    ami: [sim.url()],
    yaml: defaultAnnounceYaml(dir, '  ringTimeS: 2\n'),
  });
  try {
    await until(() => (s.service.context?.ami.clients[0]?.connected ? true : undefined));
    const res = await postForm(`${s.url}/messages/tts/add`, { text: 'Build broken.' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await sim.waitForAction('Originate', () => true, 30_000);
    assert.equal(sim.originates().at(-1)?.channel, 'Local/42300@default');
    assert.equal(sim.originates().at(-1)?.context, 'switchboard-announce');
  } finally {
    await s.close();
    await sim.close();
  }
});
