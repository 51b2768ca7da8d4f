// The Barista API through `serve`: the seed's sample curl (real curl), validation matrix,
// JSON bodies, history shape, access rule, dry-run escalations on SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
  calloutConfig,
  getHistory,
  type Kind,
  postCurlStyle,
  seedFields,
  startServe,
  testDb,
  waitHistory,
} from './helpers.ts';

const run = promisify(execFile);

describe('Barista API', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  async function serve(
    kind: Kind = 'sqlite',
    yaml = '',
    tweak?: (c: ReturnType<typeof calloutConfig>) => void,
  ) {
    const db = testDb(kind);
    const config = calloutConfig(db, yaml);
    tweak?.(config);
    const started = await startServe(config, db);
    cleanups.push(async () => {
      await started.service.stop();
      await db.drop();
    });
    return started;
  }

  test("the seed's sample curl, unchanged but the URL, starts a dry run with the seed's texts", async () => {
    const { url } = await serve('sqlite', '', (c) => {
      c.callout.dryRun.answer = 'noanswer';
      c.callout.dryRun.numbers = {};
    });
    // The seed's command line, testflg=1 (dry run) as the "Done when" asks; curl -d sends the
    // values raw (spaces and UTF-8 unencoded), joined with &.
    const args = seedFields('1').flatMap(([k, v]) => ['-d', `${k}=${v}`]);
    const { stdout } = await run('curl', ['-s', ...args, `${url}/api/v1/call`]);
    const answer = JSON.parse(stdout) as { success: string; eventid: string };
    assert.equal(answer.success, 'true');
    assert.match(answer.eventid, /^[0-9A-Z]{26}$/);
    const { stdout: got } = await run('curl', [
      '-s',
      `${url}/api/v1/call?eventid=${answer.eventid}`,
    ]);
    const history = (JSON.parse(got) as Array<Record<string, unknown>>)[0];
    assert.ok(history);
    assert.equal(history.success, 'true');
    assert.equal(history.type, '1');
    assert.equal(history.frequency, '10');
    assert.equal(history.language, 'ja-jp');
    assert.equal(history.headid, '2');
    assert.equal(history.footid, '1');
    assert.equal(history.headmsg, '障害を検知しました。サーバー名は、example.com。');
    assert.equal(history.announce, 'Socket timeout after 10 secondsです。');
    assert.equal(history.footmsg, '対応できる場合は1を、できない場合は2を押してください。');
    assert.equal(history.testflg, '1');
    assert.equal(history.provider, 'dryrun');
    const result = history.result as Array<Record<string, string>>;
    assert.deepEqual(
      result.map((r) => [r.ghid, r.order, r.telno, r.name]),
      [
        ['tarou', '1', '810000000000', '木村太郎'],
        ['baijyaku', '2', '810000000000', '中村梅雀'],
        ['kouji', '3', '810000000000', '加藤浩二'],
      ],
    );
  });

  for (const kind of ['sqlite', 'postgres'] as const) {
    test(`dry run, sequential (${kind}): 1 busy, 2 presses 2, 3 presses 1 → finished`, async () => {
      const { url, bus } = await serve(kind, '', (c) => {
        c.callout.dryRun.numbers = { '101': 'busy', '102': '2', '103': '1' };
      });
      const response = await postCurlStyle(url, [
        ...seedFields('1').filter(([k]) => k !== 'addressee'),
        ['addressee', '1:a:101:A:1'],
        ['addressee', '2:b:102:B:1'],
        ['addressee', '3:c:103:C:1'],
      ]);
      const { eventid } = (await response.json()) as { eventid: string };
      const h = await waitHistory(url, eventid, (x) => x.eventstatus === '2');
      assert.deepEqual(
        h.result.map((r) => [r.numofcall, r.status]),
        [
          ['1', '3'],
          ['1', '2'],
          ['1', '1'],
        ],
      );
      assert.ok(h.result.every((r) => /^\d{10}$/.test(r.latestcall)));
      const keys = bus.map(([k]) => k);
      assert.ok(keys.includes('callout.event.created'));
      assert.ok(keys.includes('callout.event.started'));
      assert.ok(keys.includes('callout.event.finished'));
      assert.equal(keys.filter((k) => k === 'callout.attempt.dialing').length, 3);
      assert.equal(keys.filter((k) => k === 'callout.attempt.answered').length, 2);
    });

    test(`dry run, parallel (${kind}): everyone called until all answered or attempts spent`, async () => {
      const { url } = await serve(kind, '', (c) => {
        c.callout.dryRun.numbers = { '201': 'noanswer', '202': '2', '203': '1' };
      });
      const response = await fetch(`${url}/api/v1/call`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          testflg: 1,
          hostname: 'db1',
          operator: 'op',
          calltype: 2,
          frequency: 3,
          language: 'en',
          message: 'Disk full',
          headid: 1,
          footid: 1,
          addressee: [
            '1:a:201:A:1',
            { order: 2, userid: 'b', telno: '202', name: 'B', interval: 1 },
            '3:c:203:C:1',
          ],
        }),
      });
      assert.equal(response.status, 200);
      const { eventid } = (await response.json()) as { eventid: string };
      const h = await waitHistory(url, eventid, (x) => x.eventstatus === '2');
      assert.deepEqual(
        h.result.map((r) => [r.numofcall, r.status]),
        [
          ['3', '3'],
          ['1', '2'],
          ['1', '1'],
        ],
      );
      assert.equal(h.headmsg, 'A failure has been detected.');
    });
  }

  test('validation matrix: error 1 naming the field', async () => {
    const { url } = await serve();
    const base: Record<string, unknown> = {
      testflg: '1',
      hostname: 'h',
      operator: 'o',
      calltype: '1',
      frequency: '3',
      language: 'en',
      message: 'm',
      headid: '1',
      footid: '1',
      addressee: ['1:a:101:A:10'],
    };
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ addressee: undefined }, /^addressee: is required/],
      [{ addressee: ['1:a:101:A'] }, /^addressee\[0\]: must be order:userid/],
      [{ addressee: ['x:a:101:A:1'] }, /^addressee\[0\]\.order/],
      [{ addressee: ['1:a:101:A:1', '1:b:102:B:1'] }, /^addressee\[1\]\.order: duplicate/],
      [{ addressee: ['1:a:12a4:A:1'] }, /^addressee\[0\]\.telno/],
      [{ addressee: ['1:a:101&Local/1:A:1'] }, /^addressee\[0\]\.telno/],
      [{ addressee: ['1:a:+81 3:A:1'] }, /^addressee\[0\]\.telno/],
      [{ addressee: ['1:a:101:A:-1'] }, /^addressee\[0\]\.min_seconds_between_calls/],
      [{ addressee: ['1::101:A:1'] }, /^addressee\[0\]\.userid/],
      [{ frequency: '0' }, /^frequency/],
      [{ frequency: '11' }, /^frequency/],
      [{ frequency: 'x' }, /^frequency/],
      [{ calltype: '3' }, /^calltype/],
      [{ testflg: '2' }, /^testflg/],
      [{ language: 'fr' }, /^language/],
      [{ headid: '7' }, /^headid/],
      [{ footid: '9' }, /^footid/],
      [{ hostname: '' }, /^hostname: is required/],
      [{ operator: undefined }, /^operator: is required/],
      [{ message: 'a\nb' }, /^message: must not contain control/],
      [{ hostname: ['a', 'b'] }, /^hostname/],
      [
        { addressee: Array.from({ length: 51 }, (_, i) => `${i + 1}:u:1:N:1`) },
        /^addressee: at most 50/,
      ],
    ];
    for (const [change, pattern] of cases) {
      const body = { ...base, ...change };
      for (const key of Object.keys(change)) if (change[key] === undefined) delete body[key];
      const response = await fetch(`${url}/api/v1/call`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const answer = (await response.json()) as Record<string, string>;
      assert.equal(response.status, 400, JSON.stringify(change));
      assert.equal(answer.success, 'false');
      assert.equal(answer.error, '1');
      assert.match(answer.message ?? '', pattern, JSON.stringify(change));
    }
    // Form-encoded: same checks.
    const form = await postCurlStyle(url, [
      ['hostname', 'h'],
      ['operator', 'o'],
      ['calltype', '1'],
      ['frequency', '3'],
      ['language', 'en'],
      ['message', 'm'],
      ['headid', '1'],
      ['footid', '1'],
      ['addressee', '1:a:0312345678:A:10'],
      ['addressee', '2:b:03-1234:B:10'],
    ]);
    assert.equal(form.status, 400);
    assert.match(((await form.json()) as { message: string }).message, /^addressee\[1\]\.telno/);
    // Unknown and malformed eventid, request too large, bad JSON.
    const unknown = await fetch(`${url}/api/v1/call?eventid=NOPE`);
    assert.equal(unknown.status, 404);
    assert.deepEqual(await unknown.json(), {
      success: 'false',
      error: '1',
      message: 'eventid: unknown event NOPE',
    });
    const missing = await fetch(`${url}/api/v1/call`);
    assert.equal(((await missing.json()) as { error: string }).error, '1');
    const big = await fetch(`${url}/api/v1/call`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...base, message: 'x'.repeat(70_000) }),
    });
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as { error: string }).error, '1');
    const bad = await fetch(`${url}/api/v1/call`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"x":',
    });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { success: string }).success, 'false');
  });

  test('access rule: 401/403 in the seed shape, Bearer and Basic accepted', async () => {
    const { url } = await serve('sqlite', '', (c) => {
      c.auth.allowLoopback = false;
      c.auth.tokens = [{ name: 'mon', token: 'a-very-long-token-123', modules: ['callout'] }];
      c.auth.users = [{ username: 'zabbix', password: 'password1', modules: [] }];
    });
    const fields = seedFields('1');
    const refused = await postCurlStyle(url, fields);
    assert.equal(refused.status, 401);
    assert.deepEqual(await refused.json(), {
      success: 'false',
      error: '99',
      message: 'credential required',
    });
    const body = Buffer.from(fields.map(([k, v]) => `${k}=${v}`).join('&'));
    const post = (authorization: string) =>
      fetch(`${url}/api/v1/call`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
        body,
      });
    assert.equal((await post('Bearer wrong-token-wrong-token')).status, 401);
    assert.equal((await post('Bearer a-very-long-token-123')).status, 200);
    const basic = `Basic ${Buffer.from('zabbix:password1').toString('base64')}`;
    const ok = await post(basic);
    assert.equal(ok.status, 200);
    const { eventid } = (await ok.json()) as { eventid: string };
    const history = await fetch(`${url}/api/v1/call?eventid=${eventid}`);
    assert.equal(history.status, 401);
    const { url: url2 } = await serve('sqlite', '', (c) => {
      c.auth.allowLoopback = false;
    });
    const forbidden = await postCurlStyle(url2, fields);
    assert.equal(forbidden.status, 403);
    assert.equal(((await forbidden.json()) as { error: string }).error, '99');
  });

  test('OpenAPI documents both bodies', async () => {
    const { url } = await serve();
    const spec = (await (await fetch(`${url}/docs/json`)).json()) as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> } }>>;
    };
    const content = spec.paths['/api/v1/call']?.post?.requestBody?.content ?? {};
    assert.ok('application/json' in content);
    assert.ok('application/x-www-form-urlencoded' in content);
    assert.ok(spec.paths['/api/v1/call']?.get);
  });

  test('history before any call: status empty, eventstatus 0 (worker not started)', async () => {
    const { url, service } = await serve();
    // Stop the worker only: the API keeps answering.
    await service.context?.db; // started
    const response = await postCurlStyle(url, seedFields('1'));
    const { eventid } = (await response.json()) as { eventid: string };
    const h = await getHistory(url, eventid);
    assert.ok(['0', '1', '2'].includes(h.eventstatus));
  });
});
