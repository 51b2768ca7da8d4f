// Issue 4, item 4: the callout series on the service's registry, served at /metrics.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { calloutConfig, postCurlStyle, startServe, testDb, waitHistory } from './helpers.ts';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const fields = (calltype: string, people: string[]): Array<[string, string]> => [
  ['testflg', '1'],
  ['hostname', 'db1'],
  ['operator', 'zabbix'],
  ['calltype', calltype],
  ['frequency', '2'],
  ['language', 'en'],
  ['message', 'Disk full'],
  ['headid', '2'],
  ['footid', '1'],
  ...people.map((p): [string, string] => ['addressee', p]),
];

test('/metrics: escalations by type, attempts by outcome, due → placed histogram', async () => {
  const db = testDb('sqlite');
  const config = calloutConfig(
    db,
    'callout:\n  dryRun:\n    numbers: {"100": "1", "200": "busy", "300": "2"}\n',
  );
  const { service, url } = await startServe(config, db);
  cleanups.push(() => service.stop());
  const ids: string[] = [];
  for (const [type, people] of [
    ['1', ['1:a:100:A:1']],
    ['2', ['1:b:200:B:1', '2:c:300:C:1']],
    ['2', ['1:d:100:D:1']],
  ] as const) {
    const response = await postCurlStyle(url, fields(type, [...people]));
    ids.push(((await response.json()) as { eventid: string }).eventid);
  }
  for (const id of ids) await waitHistory(url, id, (h) => h.eventstatus === '2');
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (series: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    assert.ok(line, `${series} in /metrics`);
    return Number(line.split(' ')[1]);
  };
  assert.equal(
    value('switchboard_callout_escalations_created_total{type="sequential",testflg="1"}'),
    1,
  );
  assert.equal(
    value('switchboard_callout_escalations_created_total{type="parallel",testflg="1"}'),
    2,
  );
  // 100 presses 1 twice (two events), 300 presses 2, 200 is busy twice (frequency 2).
  assert.equal(value('switchboard_callout_attempts_total{outcome="answered",answer="1"}'), 2);
  assert.equal(value('switchboard_callout_attempts_total{outcome="answered",answer="2"}'), 1);
  assert.equal(value('switchboard_callout_attempts_total{outcome="busy",answer="none"}'), 2);
  assert.equal(value('switchboard_callout_due_to_placed_seconds_count'), 5);
  assert.ok(value('switchboard_callout_due_to_placed_seconds_bucket{le="+Inf"}') === 5);
  assert.match(text, /# HELP switchboard_callout_due_to_placed_seconds /);
});
