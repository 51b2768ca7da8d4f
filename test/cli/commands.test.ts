import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMMANDS, program } from '../../src/cli/index.ts';
import { runCli } from '../support/cli.ts';

test('each lazily loaded command has the description the root help shows', async () => {
  for (const [name, spec] of Object.entries(COMMANDS)) {
    const command = await spec.load();
    assert.equal(command.name(), name);
    assert.equal(command.description(), spec.description, name);
  }
  const root = await program();
  assert.deepEqual(
    root.commands.map((command) => command.name()),
    Object.keys(COMMANDS),
  );
});

test('the root help lists every command; help of one command shows its own options', async () => {
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  for (const name of Object.keys(COMMANDS)) assert.match(help.stdout, new RegExp(`\\n  ${name} `));
  const watch = await runCli(['help', 'watch']);
  assert.equal(watch.code, 0);
  assert.match(watch.stdout, /--max-channels/);
  const unknown = await runCli(['wach']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Did you mean watch\?/);
});
