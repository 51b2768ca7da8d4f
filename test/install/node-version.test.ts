// bin/switchboard.js on the machine's own, older Node (Debian's Node 20, as `/usr/bin/node
// bin/switchboard.js ...`, a global install's shebang or a systemd `ExecStart=/usr/bin/node`
// would run it): it re-executes itself under the project's Node 24 with the same arguments,
// output, exit code and signals, or — without that Node — prints one line and exits 1
// before loading anything (better-sqlite3's binary crashes Node 20 without a message).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { BIN, ROOT, until } from '../support/cli.ts';
import { oldMachineNode } from '../support/machine.ts';

const old = oldMachineNode();
const skip =
  old === undefined ? 'no Node older than 22.12 on this machine to run the bin with' : false;
const dir = mkdtempSync(join(tmpdir(), 'sb-node-version-'));

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(exe: string, args: string[], cwd = ROOT, detached = false): Started {
  // Embedded defaults but for Gong's fixed port 9600 (announce.listen): another serve of the
  // machine may hold it.
  const env = { ...process.env, SWITCHBOARD_ANNOUNCE_LISTEN: '127.0.0.1:0' };
  const child = spawn(exe, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached, env });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

function run(exe: string, args: string[], cwd = ROOT): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The pids of the children of `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/** The process group of `pid` (field 5 of Linux /proc/PID/stat). */
function processGroup(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

/** Starts `serve` through the old Node in an empty directory and waits for /healthz. */
const pids: number[] = [];

async function serve(detached = false): Promise<Started & { url: string; cwd: string }> {
  const cwd = mkdtempSync(join(dir, 'serve-'));
  // As a systemd unit would: absolute paths, the working directory elsewhere.
  const s = start(old?.exe ?? '', [BIN, 'serve', '--listen', '127.0.0.1:0'], cwd, detached);
  let url = '';
  await until(
    () => {
      url =
        /"url":"(http:\/\/127\.0\.0\.1:\d+)","msg":"HTTP server listening"/.exec(s.output())?.[1] ??
        '';
      return url !== '' || s.child.exitCode !== null || s.child.signalCode !== null;
    },
    'serve to listen',
    60_000,
  );
  // Whatever happens next, the launcher and its child are killed after the tests.
  pids.push(...childrenOf(s.child.pid ?? 0), s.child.pid ?? 0);
  assert.notEqual(url, '', s.output());
  const health = await fetch(`${url}/healthz`);
  assert.equal(health.status, 200);
  return { ...s, url, cwd };
}

describe(`bin/switchboard.js on the machine's Node ${old?.version ?? ''}`, { skip }, () => {
  // Launchers and the children they started (in a process group of their own).
  after(() => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });

  test('re-executes itself under the project Node: the same output and exit codes as Node 24', async () => {
    const cases = [
      ['replay', 'examples/simple-call.json'],
      ['replay', join(dir, 'no-such-file.json')],
      ['replay'],
    ];
    const codes: (number | null)[] = [];
    for (const args of cases) {
      const expected = await run(process.execPath, [BIN, ...args]);
      const actual = await run(old?.exe ?? '', [BIN, ...args]);
      assert.deepEqual(actual, expected, args.join(' '));
      codes.push(actual.code);
    }
    assert.deepEqual(codes, [0, 1, 2]);
  });

  test('without the project Node: one line, exit 1, nothing of the CLI loaded', async () => {
    // A copy of the package without node_modules (no `node` package next to it or above it),
    // whose dist/ would leave a mark if the bin imported it.
    const pkg = mkdtempSync(join(dir, 'pkg-'));
    mkdirSync(join(pkg, 'bin'));
    mkdirSync(join(pkg, 'dist', 'cli'), { recursive: true });
    copyFileSync(BIN, join(pkg, 'bin', 'switchboard.js'));
    copyFileSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
    const mark = join(pkg, 'loaded');
    writeFileSync(
      join(pkg, 'dist', 'cli', 'index.js'),
      `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(mark)}, 'x');\nexport async function main() { return 0; }\n`,
    );
    const bin = join(pkg, 'bin', 'switchboard.js');
    const none = await run(
      old?.exe ?? '',
      [bin, 'replay', join(ROOT, 'examples', 'simple-call.json')],
      pkg,
    );
    assert.equal(none.code, 1);
    assert.equal(none.stdout, '');
    assert.match(
      none.stderr,
      new RegExp(
        `^switchboard: Node ${old?.version.replaceAll('.', '\\.')} is too old; needs >= 22\\.12 \\([^\\n]*\\)\\n$`,
      ),
    );
    assert.equal(existsSync(mark), false);

    // A `node` package that is too old itself (or whose install script did not run) is no way out.
    mkdirSync(join(pkg, 'node_modules', 'node', 'bin'), { recursive: true });
    writeFileSync(
      join(pkg, 'node_modules', 'node', 'package.json'),
      '{"name":"node","version":"20.0.0"}',
    );
    writeFileSync(join(pkg, 'node_modules', 'node', 'bin', 'node'), '#!/bin/sh\nexit 99\n', {
      mode: 0o755,
    });
    const stale = await run(old?.exe ?? '', [bin, '--help'], pkg);
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /^switchboard: Node \S+ is too old; needs >= 22\.12 [^\n]*\n$/);
    assert.equal(existsSync(mark), false);
  });

  test('serve (as ExecStart=/usr/bin/node .../bin/switchboard.js serve): embedded defaults, /healthz, SIGTERM to the launcher stops it gracefully', async () => {
    const s = await serve();
    s.child.kill('SIGTERM');
    assert.deepEqual(await s.exited, { code: 0, signal: null }, s.output());
    // Embedded defaults: the SQLite file under the working directory.
    assert.ok(existsSync(join(s.cwd, 'data', 'switchboard.db')));
  });

  test('Ctrl-C (SIGINT to the whole process group) reaches serve once: graceful stop, exit 0', async () => {
    // A second SIGINT would make serve exit at once with 1 (serve's "second signal" rule).
    const s = await serve(true);
    const launcher = s.child.pid ?? 0;
    const [inner] = childrenOf(launcher);
    assert.ok(inner !== undefined, 'the re-executed child');
    // The child is outside the launcher's group: a group signal reaches it only forwarded.
    assert.notEqual(processGroup(inner), processGroup(launcher));
    process.kill(-launcher, 'SIGINT');
    assert.deepEqual(await s.exited, { code: 0, signal: null }, s.output());
  });

  test("the child's death by a signal is the launcher's", async () => {
    const s = await serve();
    const [inner] = childrenOf(s.child.pid ?? 0);
    assert.ok(inner !== undefined, 'the re-executed child');
    process.kill(inner, 'SIGKILL');
    assert.deepEqual(await s.exited, { code: null, signal: 'SIGKILL' });
  });
});
