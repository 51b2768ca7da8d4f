// scripts/test.js (the runner behind `npm test`) checks what the tests need before any test
// runs: a missing external tool or a service that is down is one line naming it and how to
// fix it, exit 1, no test started (so nothing fails one by one or waits for a timeout).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe, test } from 'node:test';
import { BROKER_URL } from '../bus/helpers.ts';
import { ROOT } from '../support/cli.ts';
import { machinePath } from '../support/machine.ts';

const RUNNER = join(ROOT, 'scripts', 'test.js');
const INSTALL = 'install them: apt-get install sox libsox-fmt-all espeak-ng chromium';
const dir = mkdtempSync(join(tmpdir(), 'sb-preflight-'));

/** A test file that needs no service and passes. */
const PLAIN = join(dir, 'plain.test.ts');
writeFileSync(PLAIN, "import { test } from 'node:test';\ntest('plain', () => {});\n");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runner(args: string[], env: Record<string, string>): Promise<Run> {
  // Without node:test's marker for a child of a test run, the inner run reports as on a terminal.
  const { NODE_TEST_CONTEXT: _, ...parent } = process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUNNER, ...args], {
      cwd: ROOT,
      env: { ...parent, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Where `name` is on the machine's PATH. */
function which(name: string): string {
  for (const d of machinePath().split(delimiter)) {
    if (existsSync(join(d, name))) return join(d, name);
  }
  throw new Error(`${name} not on PATH`);
}

/** A directory for PATH holding the real tools named in `real` and shell stubs. */
function bin(real: string[], stubs: Record<string, string> = {}): string {
  const d = mkdtempSync(join(dir, 'bin-'));
  for (const name of real) symlinkSync(which(name), join(d, name));
  for (const [name, script] of Object.entries(stubs)) {
    writeFileSync(join(d, name), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  }
  return d;
}

/** A TCP port nothing listens on (was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

const PG_URL = process.env.SWITCHBOARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const TOOLS = ['sox', 'soxi', 'espeak-ng'];
const SOX_NO_MP3 = `[ "$1" = -h ] && echo 'AUDIO FILE FORMATS: 8svx aif au flac ogg wav'\nexit 0`;

describe('scripts/test.js preflight', () => {
  test('no sox, no espeak-ng: one line naming both and the install command, no test run', async () => {
    const r = await runner([PLAIN], { PATH: bin([]) });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `test: missing sox, espeak-ng; ${INSTALL}\n`);
  });

  test('sox without its MP3 handler; espeak-ng without its Japanese voice', async () => {
    const noMp3 = await runner([PLAIN], {
      PATH: bin(['espeak-ng'], { sox: SOX_NO_MP3, soxi: 'exit 0' }),
    });
    assert.equal(noMp3.code, 1);
    assert.equal(noMp3.stderr, `test: missing sox's MP3 handler (libsox-fmt-mp3); ${INSTALL}\n`);
    const noJa = await runner([PLAIN], {
      PATH: bin(['sox', 'soxi'], {
        'espeak-ng': 'for a in "$@"; do [ "$a" = ja ] && exit 1; done\nexit 0',
      }),
    });
    assert.equal(noJa.code, 1);
    assert.equal(
      noJa.stderr,
      `test: missing espeak-ng's Japanese voice (espeak-ng-data); ${INSTALL}\n`,
    );
  });

  test('no Chromium (the console browser tests): named with the install command', async () => {
    const r = await runner([PLAIN], {
      PATH: bin(TOOLS),
      SWITCHBOARD_TEST_CHROMIUM: '/nonexistent/chromium',
    });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `test: missing chromium (/nonexistent/chromium); ${INSTALL}\n`);
  });

  test('a service that is down: one line for it, only when the selected files use it', async () => {
    const pg = await closedPort();
    const redis = await closedPort();
    const env = {
      SWITCHBOARD_TEST_PG_URL: `postgres://postgres@127.0.0.1:${pg}/test`,
      SWITCHBOARD_TEST_REDIS_URL: `redis://127.0.0.1:${redis}`,
    };
    // test/push/store.test.ts uses PostgreSQL and Redis (through test/push/fakes.ts).
    const down = await runner(['test/push/store.test.ts', PLAIN], env);
    assert.equal(down.code, 1);
    assert.equal(down.stdout, '');
    assert.deepEqual(down.stderr.split('\n'), [
      `postgresql: not reachable at 127.0.0.1:${pg} (start it: systemctl start postgresql; or set SWITCHBOARD_TEST_PG_URL)`,
      `redis: not reachable at 127.0.0.1:${redis} (start it: systemctl start redis-server; or set SWITCHBOARD_TEST_REDIS_URL)`,
      'test: not run; start the services above (README, Requirements), or run only the files that do not need them',
      '',
    ]);
    // A file that needs neither runs.
    const plain = await runner([PLAIN], env);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /1 passed, 0 failed/);
  });

  test('a service that answers but not as the tests expect: what it said, what the tests expect', async () => {
    const pg = new URL(PG_URL);
    pg.pathname = '/no_such_database_here';
    const wrongDb = await runner(['test/store/db.test.ts'], { SWITCHBOARD_TEST_PG_URL: pg.href });
    assert.equal(wrongDb.code, 1);
    assert.match(
      wrongDb.stderr,
      /^postgresql: at [^ ]+: database "no_such_database_here" does not exist \(the tests expect user postgres, trust auth, database "test"; or set SWITCHBOARD_TEST_PG_URL\)\n/,
    );
    const amqp = new URL(BROKER_URL);
    amqp.password = 'not-the-password';
    const wrongLogin = await runner(['test/bus/amqp.test.ts'], {
      SWITCHBOARD_TEST_AMQP_URL: amqp.href,
    });
    assert.equal(wrongLogin.code, 1);
    assert.match(
      wrongLogin.stderr,
      /^rabbitmq: at [^ ]+: .*ACCESS-REFUSED.*\(the tests expect user guest\/guest, vhost \/; or set SWITCHBOARD_TEST_AMQP_URL\)\n/,
    );
    assert.doesNotMatch(wrongLogin.stderr, /not-the-password/);
  });

  test('RabbitMQ up but no rabbitmqctl to manage it: one line', async () => {
    const r = await runner(['test/bus/amqp.test.ts'], { PATH: bin(TOOLS) });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^rabbitmq: rabbitmqctl not found on PATH \(the tests close connections with it\)\n/,
    );
  });
});
