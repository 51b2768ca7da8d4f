import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ROOT, runCli } from '../support/cli.ts';
import { fixturePath, loadFixture, loadGolden } from '../support/conformance.ts';

const dir = mkdtempSync(join(tmpdir(), 'switchboard-replay-'));

function parseLines(stdout: string): unknown[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as unknown);
}

describe('switchboard replay', () => {
  test('--format jsonl prints exactly the golden lines and nothing else', async () => {
    const name = 'xfer_blonde/xfer_blonde_abbcac';
    const result = await runCli(['replay', fixturePath(name), '--format', 'jsonl']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.ok(result.stdout.endsWith('\n'));
    assert.deepStrictEqual(parseLines(result.stdout), loadGolden(name));
  });

  test('jsonl is the default when stdout is not a terminal', async () => {
    const result = await runCli(['replay', join(ROOT, 'examples', 'attended-transfer.json')]);
    assert.equal(result.code, 0);
    assert.deepStrictEqual(parseLines(result.stdout), loadGolden('xfer_attended/xfer_abacbc'));
  });

  test('reads JSON Lines and standard input', async () => {
    const name = 'xfer_blind/xfer_blind_group';
    const jsonl = `${loadFixture(name)
      .map((event) => JSON.stringify(event))
      .join('\n')}\n`;
    const file = join(dir, 'blind.jsonl');
    writeFileSync(file, jsonl);
    const fromFile = await runCli(['replay', file, '--format', 'jsonl']);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.deepStrictEqual(parseLines(fromFile.stdout), loadGolden(name));
    const fromStdin = await runCli(['replay', '-', '--format', 'jsonl'], jsonl);
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.deepStrictEqual(parseLines(fromStdin.stdout), loadGolden(name));
    const arrayOnStdin = await runCli(
      ['replay', '-', '--format', 'jsonl'],
      readFileSync(fixturePath(name), 'utf8'),
    );
    assert.deepStrictEqual(parseLines(arrayOnStdin.stdout), loadGolden(name));
  });

  test('--format pretty prints one readable line per call event', async () => {
    const result = await runCli([
      'replay',
      fixturePath('xfer_attended/xfer_abacbc'),
      '--format',
      'pretty',
    ]);
    assert.equal(result.code, 0);
    const lines = result.stdout.trimEnd().split('\n');
    assert.equal(lines.length, loadGolden('xfer_attended/xfer_abacbc').length);
    assert.match(
      lines[0] ?? '',
      /^ringing +Andrew Garza <201> \[SIP\/150010001-00000028\] calls 202/,
    );
    assert.ok(lines.some((line) => /joined .* \(attended\)$/.test(line)));
    assert.match(lines.at(-1) ?? '', /^hung up .*: completed$/);
  });

  test('a recording with no call events prints nothing', async () => {
    const result = await runCli([
      'replay',
      fixturePath('originate/ctd-account-world-deny-a'),
      '-f',
      'jsonl',
    ]);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, '');
  });

  test('malformed JSON: one line naming file and line, exit 1, no stack trace', async () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '[\n{"Event": "FullyBooted"},\n{"Event": oops}\n]\n');
    const result = await runCli(['replay', file]);
    assert.equal(result.code, 1);
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0] ?? '', new RegExp(`^switchboard: ${file.replaceAll('/', '\\/')}:3: `));
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });

  test('--verbose adds the stack trace', async () => {
    const file = join(dir, 'broken2.json');
    writeFileSync(file, '{"Event": "A"}\nnot json\n');
    const result = await runCli(['--verbose', 'replay', file]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^switchboard: .*broken2\.json:2: /);
    assert.match(result.stderr, /\n\s+at /);
  });

  test('a missing file and a wrong command line give distinct exit codes', async () => {
    const missing = await runCli(['replay', join(dir, 'nope.json')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^switchboard: .*nope\.json.*ENOENT/);
    const usage = await runCli(['replay', 'x.json', '--format', 'xml']);
    assert.equal(usage.code, 2);
    const noArgument = await runCli(['replay']);
    assert.equal(noArgument.code, 2);
  });
});
