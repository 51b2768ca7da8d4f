/**
 * `switchboard watch` runs with V8's young generation capped (`--max-semi-space-size=4`,
 * issue 16: peak RSS): bin/switchboard.js replaces its process with one under the flag
 * (`process.execve`, same pid), unless the flag is given already in NODE_OPTIONS. Read from
 * the running watch process's /proc/<pid>/cmdline while it is logged in to a fake Asterisk.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { AmiServer } from '../../src/ami/server.ts';
import { startCli, until } from '../support/cli.ts';

const SECRET = 'semi-secret';

/** This process's environment without NODE_OPTIONS. */
function env(): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _options, ...rest } = process.env;
  return rest;
}

/** Starts watch against a fake Asterisk; returns its command line once it logged in. */
async function watchCommandLine(env: NodeJS.ProcessEnv): Promise<{ argv: string[]; pid: number }> {
  const server = new AmiServer({ users: { switchboard: SECRET }, fullyBooted: false });
  server.handle('CoreShowChannels', () => ({ events: [], complete: 'CoreShowChannelsComplete' }));
  let loggedIn = false;
  server.on('login', (_connection, ok) => {
    if (ok) loggedIn = true;
  });
  const port = await server.listen();
  const cli = startCli(
    ['watch', '--ami', `tcp://switchboard:${SECRET}@127.0.0.1:${port}`],
    undefined,
    {
      env,
    },
  );
  try {
    await until(() => loggedIn || cli.child.exitCode !== null);
    assert.equal(cli.child.exitCode, null, cli.stderr());
    const pid = cli.child.pid as number;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    return { argv, pid };
  } finally {
    cli.child.kill('SIGTERM');
    await cli.exited;
    await server.close();
  }
}

test('watch runs under --max-semi-space-size=4, in the process that was started', async () => {
  const { argv } = await watchCommandLine(env());
  assert.ok(argv.includes('--max-semi-space-size=4'), argv.join(' '));
  assert.ok(argv.includes('watch'), argv.join(' '));
});

test('a --max-semi-space-size in NODE_OPTIONS is kept, not overridden', async () => {
  const { argv } = await watchCommandLine({
    ...env(),
    NODE_OPTIONS: '--max-semi-space-size=2',
  });
  assert.ok(!argv.some((a) => a.startsWith('--max-semi-space-size')), argv.join(' '));
});
