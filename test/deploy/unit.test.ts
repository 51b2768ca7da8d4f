// deploy/switchboard.service: its ExecStart run as systemd would run it (the command of a
// global install, started on the machine's Node through its `#!/usr/bin/env node` line, in
// the unit's working directory, with the unit's environment), the configured user replaced
// by the current one and the configuration by a temporary file; then SIGHUP (still running,
// configuration reloaded), SIGTERM (exit 0), and the unit checked by `systemd-analyze verify`
// when the machine has it.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { freePort, until } from '../serve/helpers.ts';
import { BIN, ROOT, startCli } from '../support/cli.ts';
import { machinePath } from '../support/machine.ts';

const UNIT = join(ROOT, 'deploy', 'switchboard.service');
const dir = mkdtempSync(join(tmpdir(), 'sb-unit-'));

/** The unit file as `section → key → values` (a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1] as string, current);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(current && eq > 0, `not a key=value line: ${line}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

const unit = parseUnit(readFileSync(UNIT, 'utf8'));
const service = unit.get('Service') ?? new Map<string, string[]>();
const one = (key: string): string => {
  const values = service.get(key) ?? [];
  assert.equal(values.length, 1, `[Service] ${key}: exactly one`);
  return values[0] as string;
};

/** The path `npm install -g` gives the command (Debian's npm prefix is /usr/local). */
const INSTALLED = '/usr/local/bin/switchboard';

describe('deploy/switchboard.service', () => {
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('a dedicated user, reload on SIGHUP, restart on failure, KillMode=mixed, hardening, the writable paths', () => {
    assert.equal(one('User'), 'switchboard');
    assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
    assert.equal(one('Restart'), 'on-failure');
    assert.equal(one('KillMode'), 'mixed');
    assert.equal(one('NoNewPrivileges'), 'yes');
    assert.equal(one('ProtectSystem'), 'strict');
    assert.equal(one('PrivateTmp'), 'yes');
    assert.equal(one('StateDirectory'), 'switchboard');
    assert.equal(one('WorkingDirectory'), '/var/lib/switchboard');
    assert.deepEqual(one('ReadWritePaths').split(/\s+/), [
      '-/var/spool/asterisk/outgoing',
      '-/var/spool/asterisk/tmp',
    ]);
    assert.equal(service.has('MemoryDenyWriteExecute'), false, "V8's JIT needs it off");
    assert.deepEqual(unit.get('Install')?.get('WantedBy'), ['multi-user.target']);
  });

  test('ExecStart, run as systemd would: /healthz answers, SIGHUP reloads and it keeps running, SIGTERM exits 0', async () => {
    const [exe, ...args] = one('ExecStart').split(/\s+/);
    assert.equal(exe, INSTALLED);
    assert.deepEqual(args, ['serve'], 'the configuration comes from /etc/switchboard');
    // The configured user → the current one; /var/lib/switchboard → a temporary directory;
    // /etc/switchboard/switchboard.yaml → SWITCHBOARD_CONFIG (which wins over it).
    const cwd = mkdtempSync(join(dir, 'state-'));
    const port = await freePort();
    const config = join(dir, 'switchboard.yaml');
    writeFileSync(
      config,
      `http: {listen: "127.0.0.1:${port}"}\nannounce: {enabled: false}\nlog: {level: info}\n`,
    );
    const environment = Object.fromEntries(
      (service.get('Environment') ?? []).map((entry) => entry.split('=', 2) as [string, string]),
    );
    // The machine's PATH (not npm's node_modules/.bin): /usr/bin/env finds the machine's
    // Node, as under systemd; the command runs itself again on Node 24 when that is older.
    const path = machinePath();
    const cli = startCli(args, [BIN], {
      cwd,
      env: { ...process.env, ...environment, PATH: path, SWITCHBOARD_CONFIG: config },
    });
    cleanups.push(() => cli.child.kill('SIGKILL'));
    const base = `http://127.0.0.1:${port}`;
    await until(
      async () =>
        cli.child.exitCode !== null ||
        (await fetch(`${base}/healthz`).catch(() => undefined))?.status === 200,
      'serve to answer /healthz',
      60_000,
    );
    assert.equal(cli.child.exitCode, null, cli.stderr());
    assert.match(
      cli.stdout(),
      /"msg":"switchboard [^"]*: configuration from [^"]*switchboard\.yaml"/,
    );

    // systemctl reload → ExecReload → SIGHUP to $MAINPID (the launcher, which forwards it).
    writeFileSync(
      config,
      `http: {listen: "127.0.0.1:${port}"}\nannounce: {enabled: false}\nlog: {level: debug}\n`,
    );
    cli.child.kill('SIGHUP');
    await until(
      () => cli.stdout().includes('SIGHUP: configuration reloaded; applied: log.level'),
      'the reload',
    ).catch((error: unknown) => {
      cli.child.kill('SIGKILL');
      throw error;
    });
    assert.equal((await fetch(`${base}/healthz`)).status, 200, 'still running');

    // systemctl stop with KillMode=mixed: SIGTERM to the main process only.
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0, cli.stderr());
    assert.match(cli.stdout(), /"msg":"stopped"/);
  });

  test('KillMode=control-group would signal the launcher and the re-executed Node both: still one graceful stop, exit 0', async (t) => {
    const port = await freePort();
    const config = join(dir, 'control-group.yaml');
    writeFileSync(config, `http: {listen: "127.0.0.1:${port}"}\nannounce: {enabled: false}\n`);
    const cli = startCli(['serve'], [BIN], {
      cwd: mkdtempSync(join(dir, 'state-')),
      env: { ...process.env, PATH: machinePath(), SWITCHBOARD_CONFIG: config },
    });
    cleanups.push(() => cli.child.kill('SIGKILL'));
    await until(
      async () =>
        cli.child.exitCode !== null ||
        (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.status === 200,
      'serve to answer /healthz',
      60_000,
    );
    const children = readFileSync(`/proc/${cli.child.pid}/task/${cli.child.pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((pid) => pid !== '')
      .map(Number);
    if (children.length === 0) {
      t.skip("the machine's Node runs serve itself (no launcher, one process)");
      cli.child.kill('SIGTERM');
      await cli.exited;
      return;
    }
    cli.child.kill('SIGTERM');
    for (const pid of children) process.kill(pid, 'SIGTERM');
    assert.equal(await cli.exited, 0, cli.stderr());
    assert.match(cli.stdout(), /"msg":"stopped"/);
  });

  test('systemd-analyze verify accepts the unit (ExecStart pointed at this checkout)', (t) => {
    const which = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    if (which.error !== undefined || which.status !== 0) {
      t.skip('systemd-analyze is not installed on this machine');
      return;
    }
    // verify checks that the executable exists: the installed path is replaced by the bin
    // of this checkout (the file `npm install -g` links there).
    const copy = join(dir, 'switchboard.service');
    const text = readFileSync(UNIT, 'utf8').replace(`ExecStart=${INSTALLED} `, `ExecStart=${BIN} `);
    writeFileSync(copy, text);
    assert.notEqual(text, readFileSync(UNIT, 'utf8'));
    const result = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
    assert.equal(result.stderr.trim(), '', 'no warning');
    // And its exposure stays low ("OK" or better in systemd's own scale).
    const security = execFileSync(
      'systemd-analyze',
      ['security', '--offline=yes', '--no-pager', copy],
      { encoding: 'utf8' },
    );
    const level = /Overall exposure level for \S+: ([\d.]+)/.exec(security)?.[1];
    assert.ok(level !== undefined && Number(level) <= 3, security.split('\n').slice(-3).join('\n'));
  });
});
