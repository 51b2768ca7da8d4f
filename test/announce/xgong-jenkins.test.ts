/**
 * The real, unmodified xgong-jenkins (`xgong-jenkins/xgong_jenkins/main.py` of the mirrored
 * original) against `serve` with Switchboard's default announce configuration: it reads a
 * (fake) Jenkins, keeps its JSON state file, and posts only `text` to Gong's default port
 * (here the Gong listener on a free port) without looking at the answer. Every newly failed
 * job must become one message on the default ringer `42300@default`, through `Local/`.
 *
 * The script is Python 2 (`from ConfigParser import ConfigParser`); it runs under the
 * machine's Python 3 with python-requests (no package is installed for it) and two
 * adaptations outside the script: a `ConfigParser` module re-exporting Python 3's
 * `configparser.ConfigParser` (Python 2's module name), and its `CONFIG_PATH` set to a
 * temporary `jenkins.ini` before `main()` is called (it is a module constant naming
 * `/etc/xgong/jenkins.ini`). Skipped, saying why, when the original is not mirrored or
 * Python 3 / requests are missing (`SWITCHBOARD_XGONG_GIT_DIR` points at another mirror);
 * test/announce/gong-compat.test.ts replays its request byte for byte in any case.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type FakeJenkins, startFakeJenkins } from '../jenkins/fake-jenkins.ts';
import {
  type AnnounceServer,
  listMessages,
  startAnnounceServer,
  tempDir,
  until,
  xgongFile,
} from './helpers.ts';

const run = promisify(execFile);

function python(): string | undefined {
  try {
    execFileSync('python3', ['-c', 'import requests'], { stdio: 'ignore' });
    return 'python3';
  } catch {
    return undefined;
  }
}

const script = xgongFile('xgong-jenkins/xgong_jenkins/main.py');
const interpreter = python();
const skip =
  script === undefined
    ? 'the original xgong is not mirrored (SWITCHBOARD_XGONG_GIT_DIR)'
    : interpreter === undefined
      ? 'python3 with requests is not available'
      : false;

describe('the real xgong-jenkins against the default configuration', { skip }, () => {
  const dir = tempDir('sb-xgong-jenkins-');
  const spool = join(dir, 'spool', 'outgoing');
  const pkg = join(dir, 'py');
  const shim = join(dir, 'py2-names');
  const ini = join(dir, 'jenkins.ini');
  let jenkins: FakeJenkins;
  let s: AnnounceServer;

  before(async () => {
    mkdirSync(spool, { recursive: true });
    mkdirSync(join(pkg, 'xgong_jenkins'), { recursive: true });
    mkdirSync(shim, { recursive: true });
    writeFileSync(join(pkg, 'xgong_jenkins', '__init__.py'), '');
    writeFileSync(join(pkg, 'xgong_jenkins', 'main.py'), script ?? '');
    // Python 2's module name for Python 3's class (the script's only Python 2-only line).
    writeFileSync(join(shim, 'ConfigParser.py'), 'from configparser import ConfigParser\n');
    // Top-level jobs only: the script reads job['color'], which folders lack.
    jenkins = await startFakeJenkins(
      { 'deploy-prod': 'red', api_tests: 'yellow_anime', docs: 'blue' },
      { auth: false },
    );
    s = await startAnnounceServer({
      yaml: `announce:\n  soundsDir: ${join(dir, 'sounds')}\n  spoolDir: ${spool}\n`,
    });
    const gong = s.module.listener;
    assert.ok(gong);
    // jenkins.ini as the Debian package ships it, pointed at the fakes.
    writeFileSync(
      ini,
      `[jenkins]\nurl = ${jenkins.url.replace(/\/$/, '')}\nhistory = ${join(dir, 'last_failed_jobs.json')}\nxgong_url = http://localhost:${gong.port}\nmessage = {job} est cassé\n`,
    );
  });
  after(async () => {
    await s?.close();
    await jenkins?.close();
  });

  const xgongJenkins = async () => {
    const code = `import sys; sys.path[:0] = [${JSON.stringify(shim)}, ${JSON.stringify(pkg)}]; import xgong_jenkins.main as m; m.CONFIG_PATH = ${JSON.stringify(ini)}; m.main()`;
    await run(interpreter ?? 'python3', ['-c', code], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? dir,
        PYTHONUTF8: '1',
        PYTHONDONTWRITEBYTECODE: '1',
        NO_PROXY: '*',
      },
      timeout: 60_000,
    });
  };

  test('an empty state file: every failed job in one message, played on 42300@default', async () => {
    await xgongJenkins();
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'last_failed_jobs.json'), 'utf8')), [
      'deploy-prod',
      'api_tests',
    ]);
    const messages = await listMessages(s.url, true);
    assert.equal(messages.length, 1, JSON.stringify(messages));
    const message = messages[0];
    assert.ok(message);
    assert.equal(message.extension, '42300@default');
    const row = await s.module.instance?.repository.find(message.id);
    assert.ok(row);
    // A set difference in the script: either order.
    assert.deepEqual(row.text.split('. ').sort(), ['api tests est cassé', 'deploy prod est cassé']);
    const file = join(spool, `announce-${message.id}.call`);
    await until(() => (existsSync(file) ? true : undefined), 30_000);
    const content = readFileSync(file, 'utf8');
    assert.match(content, /^Channel: Local\/42300@default\n/);
    assert.match(content, /\nContext: switchboard-announce\n/);
  });

  test('nothing new: no message; a job turning red: one more', async () => {
    await xgongJenkins();
    assert.equal((await listMessages(s.url, true)).length, 1);
    jenkins.colors.set('docs', 'red');
    await xgongJenkins();
    const all = await listMessages(s.url, true);
    assert.equal(all.length, 2);
    const latest = await s.module.instance?.repository.find(all.at(-1)?.id ?? '');
    assert.equal(latest?.text, 'docs est cassé');
    assert.equal(latest?.extension, '42300@default');
    assert.ok(readdirSync(spool).length >= 1);
  });
});
