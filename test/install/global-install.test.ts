// The packed tarball installed globally (`npm pack`, then `npm install -g` of the .tgz into a
// temporary prefix, by the machine's npm and Node as a user would) gives a working
// `switchboard` command: it brings its own Node 24 (the optional dependency `node`), so
// `switchboard replay` and `switchboard serve` on embedded defaults work even where the
// machine's Node is older than 22.12. Needs the npm registry (the dependencies, and the
// `node` package's install script downloads the Node binary): skipped, with the reason,
// when the registry does not answer.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { BIN, ROOT, until } from '../support/cli.ts';
import { machinePath, nodeVersion, onMachinePath } from '../support/machine.ts';

const exec = promisify(execFile);
const PATH = machinePath();
const npm = onMachinePath('npm');
const node = onMachinePath('node');

/** The environment of a user's shell: the machine's PATH, no npm_* of the running script. */
const env = Object.fromEntries(
  Object.entries({ ...process.env, PATH }).filter(
    ([key]) => !key.toLowerCase().startsWith('npm_') && key !== 'NODE_TEST_CONTEXT',
  ),
);

async function registryProblem(): Promise<string | false> {
  if (npm === undefined) return 'no npm on the machine PATH';
  try {
    await exec(npm, ['ping', '--fetch-timeout=15000', '--fetch-retries=0'], { env, cwd: tmpdir() });
    return false;
  } catch {
    return 'the npm registry does not answer `npm ping` (a global install needs it)';
  }
}

const skip = await registryProblem();
const machineNode = node === undefined ? 'none' : nodeVersion(node);

describe('npm pack + npm install -g of the tarball', { skip }, () => {
  test('a working switchboard command: replay, and serve on embedded defaults in an empty directory', {
    timeout: 900_000,
  }, async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli', 'index.js')), 'dist/ is built (npm run build)');
    const dir = mkdtempSync(join(tmpdir(), 'sb-global-'));
    // --ignore-scripts: `prepare` would rebuild dist/ under the feet of other running tests.
    await exec(npm ?? 'npm', ['pack', '--ignore-scripts', '--pack-destination', dir], {
      cwd: ROOT,
      env,
    });
    const [tarball] = readdirSync(dir).filter((name) => name.endsWith('.tgz'));
    assert.ok(tarball !== undefined, 'npm pack wrote a tarball');
    const prefix = join(dir, 'prefix');
    await exec(
      npm ?? 'npm',
      ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', join(dir, tarball)],
      { cwd: dir, env, maxBuffer: 16 * 1024 * 1024 },
    );
    const command = join(prefix, 'bin', 'switchboard');
    const installed = join(prefix, 'lib', 'node_modules', 'switchboard');
    assert.ok(existsSync(command), 'the switchboard command is linked');
    // Its own Node came with it (the optional dependency `node`, its install script run).
    assert.ok(existsSync(join(installed, 'node_modules', 'node', 'bin', 'node')));

    // The command as a user runs it: its shebang finds the machine's Node on PATH.
    const expected = await exec(process.execPath, [BIN, 'replay', 'examples/simple-call.json'], {
      cwd: ROOT,
    });
    const replay = await exec(
      command,
      ['replay', join(installed, 'examples', 'simple-call.json')],
      {
        cwd: dir,
        env,
      },
    );
    assert.equal(replay.stdout, expected.stdout, `on the machine's Node ${machineNode}`);

    const cwd = mkdtempSync(join(dir, 'run-'));
    const serve = spawn(command, ['serve', '--listen', '127.0.0.1:0'], {
      cwd,
      // Embedded defaults but for Gong's fixed port 9600 (another serve may hold it).
      env: { ...env, SWITCHBOARD_ANNOUNCE_LISTEN: '127.0.0.1:0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    serve.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    serve.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    const exited = new Promise<number | null>((resolve) => serve.on('close', resolve));
    try {
      let url = '';
      await until(
        () => {
          url =
            /"url":"(http:\/\/127\.0\.0\.1:\d+)","msg":"HTTP server listening"/.exec(output)?.[1] ??
            '';
          return url !== '' || serve.exitCode !== null || serve.signalCode !== null;
        },
        'serve to listen',
        60_000,
      );
      assert.notEqual(url, '', output);
      const health = await fetch(`${url}/healthz`);
      assert.equal(health.status, 200);
      serve.kill('SIGTERM');
      assert.equal(await exited, 0, output);
      assert.ok(existsSync(join(cwd, 'data', 'switchboard.db')), 'the embedded default database');
    } finally {
      // The launcher forwards SIGTERM to the Node 24 child it started.
      if (serve.exitCode === null) serve.kill('SIGTERM');
    }
  });
});
