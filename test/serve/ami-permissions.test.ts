// `serve` with a manager user that may not do what a module needs (issue 11 §2): one log line
// naming the class and what it breaks, switchboard_ami_permission_missing, and /readyz not
// ready for the module that cannot work. Over real sockets: a fake Asterisk 22 playing the
// user's manager.conf classes → serve with the callout module (asterisk provider).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { AmiServer, type AmiServerUser } from '../../src/ami/server.ts';
import { announceServiceModule } from '../../src/announce/index.ts';
import { calloutServiceModule } from '../../src/callout/index.ts';
import { createLogger } from '../../src/http/server.ts';
import type { ServiceModule } from '../../src/serve/module.ts';
import { createService } from '../../src/serve/service.ts';
import { logLines } from '../support/http.ts';
import { testConfig, until } from './helpers.ts';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** serve (callout module, in-memory SQLite) on a fake Asterisk whose user has these classes. */
async function serveAs(
  user: Omit<AmiServerUser, 'secret'>,
  modules: ServiceModule[] = [calloutServiceModule() as unknown as ServiceModule],
) {
  const server = new AmiServer({ users: { switchboard: { secret: 'amisecret', ...user } } });
  server.handle('CoreShowChannels', () => ({ events: [], complete: 'CoreShowChannelsComplete' }));
  const port = await server.listen();
  cleanups.push(() => server.close());
  const config = testConfig({ ami: [`tcp://switchboard:amisecret@127.0.0.1:${port}?name=pbx1`] });
  config.log.level = 'info';
  const logs = logLines();
  const service = createService({
    config,
    logger: createLogger('info', logs.stream),
    modules,
    ami: { name: 'pbx1' },
    amiPermissionProbeTimeoutMs: 300,
  });
  cleanups.push(() => service.stop());
  const { url } = await service.start();
  const checked = (): boolean =>
    logs.lines.some((line) => String(line.msg).startsWith('pbx1: AMI user checked'));
  await until(checked, 'the permission check');
  return { url, logs };
}

async function readyz(url: string) {
  const response = await fetch(`${url}/readyz`);
  return {
    status: response.status,
    body: (await response.json()) as {
      failed: string[];
      checks: Record<string, { ok: boolean; detail?: string }>;
    },
  };
}

/** `switchboard_ami_permission_missing` samples: `access class` → value. */
async function missing(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match =
      /^switchboard_ami_permission_missing\{server="pbx1",access="(\w+)",class="(\w+)"\} (\d+)$/.exec(
        line,
      );
    if (match) out.set(`${match[1]} ${match[2]}`, Number(match[3]));
  }
  return out;
}

describe('serve: AMI permissions', () => {
  test('no read = user: alert calls not ready, the missing class counted and logged once', async () => {
    const { url, logs } = await serveAs({ read: 'call,agent,system', write: 'all' });
    const ready = await readyz(url);
    assert.equal(ready.status, 503);
    assert.deepStrictEqual(ready.body.failed, ['ami-permissions:callout']);
    assert.deepStrictEqual(ready.body.checks['ami-permissions:callout'], {
      ok: false,
      detail: 'alert calls cannot work: pbx1: lacks read class user',
    });
    // Call events lose user_event only: degraded, still ready.
    assert.equal(ready.body.checks['ami-permissions:calls']?.ok, true);
    assert.match(
      String(ready.body.checks['ami-permissions:calls']?.detail),
      /degraded: pbx1: lacks read class user/,
    );
    const gauges = await missing(url);
    assert.equal(gauges.get('read user'), 1);
    assert.equal(gauges.get('write originate'), 0);
    assert.equal(gauges.get('write reporting'), 0);
    const warnings = logs.lines.filter(
      (line) => line.level === 40 && String(line.msg).includes('lacks read class user'),
    );
    assert.equal(warnings.length, 1);
    assert.match(
      String(warnings[0]?.msg),
      /^pbx1: the AMI user lacks read class user: call events: .*; alert calls: the key a callee presses \(UserEvent SwitchboardDTMF\) never arrives: every answered call counts as no answer and the person is called again \(add user to read = in manager.conf/,
    );
  });

  test('no originate: alert calls not ready, naming the action', async () => {
    const { url } = await serveAs({ read: 'all', write: 'reporting,user,call' });
    const ready = await readyz(url);
    assert.equal(ready.status, 503);
    assert.equal(
      ready.body.checks['ami-permissions:callout']?.detail,
      'alert calls cannot work: pbx1: lacks write class originate (Originate)',
    );
    assert.equal((await missing(url)).get('write originate'), 1);
  });

  test('announcements played by Originate: not ready without it', async () => {
    const { url } = await serveAs({ read: 'all', write: 'reporting,user,call' }, [
      announceServiceModule() as unknown as ServiceModule,
    ]);
    const ready = await readyz(url);
    assert.equal(ready.status, 503);
    assert.deepStrictEqual(ready.body.failed, ['ami-permissions:announce']);
    assert.equal(
      ready.body.checks['ami-permissions:announce']?.detail,
      'announcements cannot work: pbx1: lacks write class originate (Originate)',
    );
  });

  test('the recommended user (docs/ami.md): ready, nothing missing', async () => {
    const { url, logs } = await serveAs({
      read: 'call,agent,user,system',
      write: 'originate,call,reporting,user',
    });
    await until(async () => (await readyz(url)).status === 200, '/readyz 200');
    const gauges = await missing(url);
    assert.ok(gauges.size > 0);
    assert.ok(
      [...gauges.values()].every((value) => value === 0),
      JSON.stringify([...gauges]),
    );
    assert.ok(!logs.lines.some((line) => line.level === 40 && String(line.msg).includes('lacks')));
  });
});
