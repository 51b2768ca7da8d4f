import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cancelCallFile, placeCallFile, renderCallFile } from '../../src/telephony/callfile.ts';
import { expandDialString } from '../../src/telephony/dialstring.ts';

let root: string;
let spool: string;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'sb-spool-'));
  spool = path.join(root, 'outgoing');
  await mkdir(spool);
});
after(() => rm(root, { recursive: true, force: true }));

const gong = {
  channel: expandDialString('Local/{extension}', { extension: '42300@default' }),
  callerId: 'XGong',
  maxRetries: 3,
  retryTimeS: 60,
  waitTimeS: 30,
  context: 'switchboard-announce',
  variables: {
    SWITCHBOARD_CALL_ID: 'msg-7',
    SWITCHBOARD_MESSAGE: '/var/lib/switchboard/sounds/msg-7',
  },
};

describe('renderCallFile', () => {
  test('Gong-style announcement file, field by field', () => {
    assert.equal(
      renderCallFile({ ...gong, archive: true }),
      [
        'Channel: Local/42300@default',
        'CallerID: XGong',
        'MaxRetries: 3',
        'RetryTime: 60',
        'WaitTime: 30',
        'Context: switchboard-announce',
        'Extension: s',
        'Priority: 1',
        'Setvar: SWITCHBOARD_CALL_ID=msg-7',
        'Setvar: SWITCHBOARD_MESSAGE=/var/lib/switchboard/sounds/msg-7',
        'Archive: yes',
        '',
      ].join('\n'),
    );
  });
  test('Application/Data form', () => {
    assert.equal(
      renderCallFile({ channel: 'PJSIP/100', application: 'Playback', data: '/tmp/m' }),
      'Channel: PJSIP/100\nApplication: Playback\nData: /tmp/m\n',
    );
  });
  for (const [label, spec, field] of [
    ['newline in channel', { ...gong, channel: 'Local/1\nApplication: System' }, 'channel'],
    ['newline in caller id', { ...gong, callerId: 'X\nData: rm -rf /' }, 'callerId'],
    ['newline in variable', { ...gong, variables: { A: 'x\nApplication: System' } }, 'variables.A'],
    ['comma in variable', { ...gong, variables: { A: 'x,y' } }, 'variables.A'],
    ['bad variable name', { ...gong, variables: { 'A=B\nX': 'y' } }, 'variables.A=B\nX'],
    ['newline in context', { ...gong, context: 'a\nb' }, 'context'],
    ['negative retries', { ...gong, maxRetries: -1 }, 'maxRetries'],
    ['application with args', { channel: 'PJSIP/1', application: 'System(rm)' }, 'application'],
    [
      'data with CR',
      { channel: 'PJSIP/1', application: 'Playback', data: 'a\rb' },
      'variables.data',
    ],
  ] as const) {
    test(`refuses ${label}`, () => {
      assert.throws(() => renderCallFile(spec as never), {
        name: 'TelephonyValidationError',
        field,
      });
    });
  }
});

describe('placeCallFile / cancelCallFile (temporary spool)', () => {
  test('content, future mtime, atomic move: nothing left in tmp', async () => {
    const startAt = new Date(Date.now() + 3_600_000);
    startAt.setMilliseconds(0);
    const placed = await placeCallFile(gong, { spoolDir: spool, name: 'msg-7.call', startAt });
    assert.equal(placed.path, path.join(spool, 'msg-7.call'));
    assert.equal(await readFile(placed.path, 'utf8'), renderCallFile(gong));
    const info = await stat(placed.path);
    assert.equal(info.mtime.getTime(), startAt.getTime());
    assert.deepEqual(await readdir(path.join(root, 'tmp')), []);
    assert.deepEqual(await readdir(spool), ['msg-7.call']);
  });

  test('the spool only ever shows complete files (watching while placing many)', async () => {
    const seen: string[] = [];
    const spec = { ...gong, variables: { ...gong.variables, PAD: 'x'.repeat(1000) } };
    const expected = renderCallFile(spec);
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const name of await readdir(spool)) {
          if (!name.startsWith('many-')) continue;
          const text = await readFile(path.join(spool, name), 'utf8').catch(() => expected);
          if (text !== expected) seen.push(name);
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        placeCallFile(spec, { spoolDir: spool, name: `many-${i}.call` }),
      ),
    );
    watching = false;
    await watcher;
    assert.deepEqual(seen, []);
    assert.ok((await readdir(spool)).filter((n) => n.startsWith('many-')).length === 50);
  });

  test('default start is now; names are validated', async () => {
    const before = Date.now();
    const placed = await placeCallFile(gong, { spoolDir: spool });
    assert.match(path.basename(placed.path), /^switchboard-[0-9a-f]{16}\.call$/);
    assert.ok(Math.abs((await stat(placed.path)).mtimeMs - before) < 5000);
    await assert.rejects(placeCallFile(gong, { spoolDir: spool, name: '../evil.call' }), {
      field: 'name',
    });
    await assert.rejects(placeCallFile(gong, { spoolDir: spool, name: 'x.sh' }), { field: 'name' });
  });

  test('cancel: cancelled before pickup, stopped after StartRetry, gone afterwards', async () => {
    const a = await placeCallFile(gong, { spoolDir: spool, name: 'cancel-a.call' });
    assert.equal(await cancelCallFile(a.path), 'cancelled');
    await assert.rejects(stat(a.path));
    assert.equal(await cancelCallFile(a.path), 'gone');
    const b = await placeCallFile(gong, { spoolDir: spool, name: 'cancel-b.call' });
    await writeFile(b.path, `${b.content}StartRetry: 1234 1 (1795268702)\n`);
    assert.equal(await cancelCallFile(b.path), 'stopped');
    await assert.rejects(cancelCallFile('/etc/passwd'), { field: 'path' });
  });
});
