import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AmiClient } from '../../src/ami/client.ts';
import type { AmiEvent } from '../../src/ami/message.ts';
import { simOptionsFromCli } from '../../src/cli/sim.ts';
import { DEMO_RECORDING } from '../../src/sim/index.ts';

const ENTRY = join(import.meta.dirname, 'sim-entry.ts');

describe('switchboard sim', () => {
  test('starts, accepts a login, answers Originate by script, logs actions without secrets, stops on SIGINT', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-cli-'));
    const script = join(dir, 'script.yaml');
    writeFileSync(script, "'202': {result: busy, answerAfterMs: 10}\n'*': {answerAfterMs: 10}\n");
    const child = spawn(
      process.execPath,
      [
        ENTRY,
        '--listen',
        '127.0.0.1:0',
        '--user',
        'demo',
        '--secret',
        's3cret-x',
        '--script',
        script,
        '--log-actions',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setInterval(() => {
          const match = /listening on tcp:\/\/demo:\*\*\*@127\.0\.0\.1:(\d+)/.exec(stderr);
          if (match) {
            clearInterval(timer);
            resolve(Number(match[1]));
          }
        }, 10);
        child.on('close', () => reject(new Error(`exited early: ${stderr}`)));
      });
      const bad = new AmiClient({ port, username: 'demo', secret: 'wrong', pingIntervalMs: 0 });
      await assert.rejects(bad.connect(), /Authentication failed/);
      const client = new AmiClient({
        port,
        username: 'demo',
        secret: 's3cret-x',
        pingIntervalMs: 0,
      });
      const events: AmiEvent[] = [];
      client.on('event', (event) => events.push(event));
      await client.connect();
      await client.action({
        Action: 'Originate',
        Channel: 'PJSIP/202@trunk',
        Context: 'alert',
        Exten: 's',
        Async: 'true',
      });
      const end = Date.now() + 3000;
      while (!events.some((e) => e.Event === 'OriginateResponse') && Date.now() < end)
        await new Promise((r) => setTimeout(r, 10));
      assert.equal(events.find((e) => e.Event === 'OriginateResponse')?.Reason, '5');
      await client.close();
      assert.match(stderr, /action \{"Action":"Originate".*"Channel":"PJSIP\/202@trunk"/);
      assert.ok(!stderr.includes('s3cret-x'), 'secret printed');
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited, 0);
    assert.match(stderr, /stopped/);
  });

  test('flags: --listen, --replay --loop, --rate; config section with flags winning', () => {
    const options = simOptionsFromCli({ replay: 'x.json', loop: true, rate: 5, loopGapMs: 0 });
    assert.equal(options.port, 5038);
    assert.equal(options.host, '127.0.0.1');
    assert.deepEqual(options.replay, {
      recording: 'x.json',
      loop: true,
      loopGapMs: 0,
      pace: { eventsPerSecond: 5 },
    });
    const dir = mkdtempSync(join(tmpdir(), 'sim-cfg-'));
    const config = join(dir, 'switchboard.yaml');
    writeFileSync(
      config,
      "simulator:\n  listen: 127.0.0.1:6038\n  username: u\n  secret: s\n  scripts:\n    '201': {outcome: noanswer}\n",
    );
    const fromConfig = simOptionsFromCli({ config, loop: true });
    assert.equal(fromConfig.port, 6038);
    assert.equal(fromConfig.username, 'u');
    assert.equal(fromConfig.scripts?.['201']?.outcome, 'noanswer');
    assert.equal(fromConfig.replay?.recording, DEMO_RECORDING);
    assert.equal(simOptionsFromCli({ config }).replay, undefined);
    assert.equal(simOptionsFromCli({ config, listen: '[::1]:7000' }).host, '::1');
  });
});
