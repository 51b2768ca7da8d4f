// deploy/grafana-dashboard.json references only series that exist: every metric name of
// every PromQL expression (panel targets and template queries) is exposed by a running
// `switchboard serve` at /metrics (a histogram's _bucket/_sum/_count by its family), or —
// for series a module registers only when it is in use — defined in src/.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { freePort, until } from '../serve/helpers.ts';
import { ROOT, startCli } from '../support/cli.ts';

const DASHBOARD = join(ROOT, 'deploy', 'grafana-dashboard.json');

/** PromQL words that are not metric names. */
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'and',
  'or',
  'unless',
  'inf',
  'nan',
]);

/** The metric names an expression reads (functions, labels, ranges and strings left out). */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    // label_values(metric, label): the second argument is a label.
    .replace(/\blabel_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*[a-zA-Z_]\w*\s*\)/g, ' $1 ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[a-zA-Z_:][\w:]*/g)) {
    const word = match[0];
    const next = stripped.slice((match.index ?? 0) + word.length).trimStart();
    if (next.startsWith('(') || KEYWORDS.has(word.toLowerCase()) || word.startsWith('$')) {
      continue;
    }
    if (stripped[(match.index ?? 0) - 1] === '$') continue;
    names.add(word);
  }
  return [...names];
}

interface Panel {
  title?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

function expressions(): { where: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    panels: Panel[];
    templating: { list: { name: string; query?: string | { query?: string } }[] };
  };
  const out: { where: string; expr: string }[] = [];
  const walk = (panels: Panel[]) => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        if (target.expr) out.push({ where: `panel "${panel.title}"`, expr: target.expr });
      }
      walk(panel.panels ?? []);
    }
  };
  walk(dashboard.panels);
  for (const variable of dashboard.templating.list) {
    const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
    if (query && /\(/.test(query)) out.push({ where: `variable $${variable.name}`, expr: query });
  }
  return out;
}

function sourceText(dir: string): string {
  let text = '';
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) text += sourceText(path);
    else if (entry.name.endsWith('.ts')) text += readFileSync(path, 'utf8');
  }
  return text;
}

describe('deploy/grafana-dashboard.json', () => {
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('metricNames reads PromQL as Prometheus does', () => {
    assert.deepEqual(
      metricNames(
        'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{instance=~"$instance", x="y z"}[$__rate_interval])))',
      ),
      ['a_bucket'],
    );
    assert.deepEqual(metricNames('sum(rate(b_total[5m])) / on (job) c'), ['b_total', 'c']);
    assert.deepEqual(metricNames('label_values(switchboard_build_info, instance)'), [
      'switchboard_build_info',
    ]);
  });

  test('every series it queries exists: on a running serve /metrics, or defined in src/', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-dashboard-'));
    const port = await freePort();
    const config = join(dir, 'switchboard.yaml');
    writeFileSync(
      config,
      `http: {listen: "127.0.0.1:${port}"}\nannounce: {enabled: false}\ndatabase: {url: ":memory:"}\nlog: {level: warn}\n`,
    );
    const cli = startCli(['serve', '--config', config]);
    cleanups.push(() => cli.child.kill('SIGKILL'));
    const base = `http://127.0.0.1:${port}`;
    await until(
      async () =>
        cli.child.exitCode !== null ||
        (await fetch(`${base}/healthz`).catch(() => undefined))?.status === 200,
      'serve to start',
      20_000,
    );
    const exposition = await (await fetch(`${base}/metrics`)).text();
    const source = sourceText(join(ROOT, 'src'));
    const exposed = (name: string): boolean => {
      const family = name.replace(/_(bucket|sum|count)$/, '');
      return (
        new RegExp(`^${name}[{ ]`, 'm').test(exposition) ||
        new RegExp(`^# TYPE ${name} `, 'm').test(exposition) ||
        (family !== name && new RegExp(`^# TYPE ${family} histogram$`, 'm').test(exposition))
      );
    };
    const defined = (name: string): boolean =>
      source.includes(`'${name.replace(/_(bucket|sum|count)$/, '')}'`);

    const all = expressions();
    assert.ok(all.length >= 20, 'the dashboard has its panels');
    const missing: string[] = [];
    let onMetrics = 0;
    for (const { where, expr } of all) {
      const names = metricNames(expr);
      assert.ok(names.length > 0, `${where}: no metric in ${expr}`);
      for (const name of names) {
        if (exposed(name)) onMetrics++;
        else if (!defined(name)) missing.push(`${where}: ${name}`);
      }
    }
    assert.deepEqual(missing, []);
    // The standard process series and the build information are really served.
    for (const name of [
      'switchboard_build_info',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'switchboard_http_request_duration_seconds_bucket',
    ]) {
      assert.ok(exposed(name), `${name} on /metrics`);
    }
    assert.ok(onMetrics > all.length / 2, 'most series are on /metrics of a plain serve');
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0);
  });
});
