/**
 * `switchboard jenkins-watch --once` as a real process (run from the TypeScript sources through
 * test/serve/cli-entry.ts), against a local fake Jenkins and a fake Gong API recording the
 * `POST /messages/tts/add` bodies; job states in a SQLite file kept between runs.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { tempDir } from '../announce/helpers.ts';
import { type CliResult, startCli } from '../support/cli.ts';
import { type FakeJenkins, JENKINS_TOKEN, JENKINS_USER, startFakeJenkins } from './fake-jenkins.ts';

const ENTRY = join(import.meta.dirname, '..', 'serve', 'cli-entry.ts');
const COMMAND = [process.execPath, ENTRY];

interface FakeGong {
  url: string;
  /** Form bodies of `POST /messages/tts/add`, decoded. */
  posts: Record<string, string>[];
  close(): Promise<void>;
}

async function startFakeGong(): Promise<FakeGong> {
  const posts: Record<string, string>[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/messages/tts/add') {
        posts.push(Object.fromEntries(new URLSearchParams(body)));
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ id: posts.length }));
        return;
      }
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    posts,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Runs `switchboard ...args` to completion (killed after 60 s). */
async function run(args: string[]): Promise<CliResult> {
  const cli = startCli(args, COMMAND);
  const timer = setTimeout(() => cli.child.kill('SIGKILL'), 60_000);
  const code = await cli.exited;
  clearTimeout(timer);
  return { code, stdout: cli.stdout(), stderr: cli.stderr() };
}

/** The `switchboard: ...` lines of stderr (log lines are JSON). */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.startsWith('switchboard:'));
}

describe('switchboard jenkins-watch --once (real process)', () => {
  const dir = tempDir('sb-jenkins-cli-');
  let jenkins: FakeJenkins;
  let gong: FakeGong;
  let config: string;

  before(async () => {
    jenkins = await startFakeJenkins({ 'deploy-prod': 'blue', 'team/api_tests': 'blue' });
    gong = await startFakeGong();
    config = join(dir, 'switchboard.yaml');
    writeFileSync(
      config,
      `log:
  level: warn
database:
  url: ${join(dir, 'state.db')}
jenkins:
  url: ${jenkins.url}
  user: ${JENKINS_USER}
  token: ${JENKINS_TOKEN}
  extension: '42399'
  language: en
`,
    );
  });
  after(async () => {
    await jenkins.close().catch(() => undefined);
    await gong.close();
  });

  test('a job turned red: one announcement posted, JSON result printed, exit 0; still red: nothing', async () => {
    const baseline = await run([
      'jenkins-watch',
      '--once',
      '--config',
      config,
      '--announce-url',
      gong.url,
    ]);
    assert.equal(baseline.code, 0, baseline.stderr);
    assert.deepEqual(JSON.parse(baseline.stdout), {
      status: 'ok',
      announced: [],
      jobs: 2,
      baseline: true,
    });
    assert.deepEqual(gong.posts, []);

    jenkins.colors.set('team/api_tests', 'red');
    const red = await run([
      'jenkins-watch',
      '--once',
      '--config',
      config,
      '--announce-url',
      gong.url,
    ]);
    assert.equal(red.code, 0, red.stderr);
    assert.deepEqual(JSON.parse(red.stdout), {
      status: 'ok',
      announced: ['Jenkins job team api tests has failed.'],
      jobs: 2,
      jobsAnnounced: ['team/api_tests'],
    });
    assert.deepEqual(gong.posts, [
      { text: 'Jenkins job team api tests has failed.', extension: '42399', language: 'en' },
    ]);

    // The state was kept in the database between the two processes: nothing new to say.
    const again = await run([
      'jenkins-watch',
      '--once',
      '--config',
      config,
      '--announce-url',
      gong.url,
    ]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout), { status: 'ok', announced: [], jobs: 2 });
    assert.equal(gong.posts.length, 1);
  });

  test('Jenkins unreachable: exit 1, one switchboard: line, no announcement', async () => {
    jenkins.colors.set('deploy-prod', 'red');
    await jenkins.down();
    const down = await run([
      'jenkins-watch',
      '--once',
      '--config',
      config,
      '--announce-url',
      gong.url,
    ]);
    assert.equal(down.code, 1, down.stderr);
    const errors = errorLines(down.stderr);
    assert.equal(errors.length, 1, down.stderr);
    assert.match(errors[0] ?? '', /^switchboard: Jenkins: Jenkins unreachable: /);
    assert.equal(gong.posts.length, 1);
  });

  test('jenkins.url empty: exit 1 naming the key, nothing posted', async () => {
    const empty = join(dir, 'empty.yaml');
    writeFileSync(empty, `database:\n  url: ${join(dir, 'other.db')}\n`);
    const result = await run([
      'jenkins-watch',
      '--once',
      '--config',
      empty,
      '--announce-url',
      gong.url,
    ]);
    assert.equal(result.code, 1, result.stderr);
    assert.deepEqual(errorLines(result.stderr), ['switchboard: jenkins.url is not configured']);
    assert.equal(result.stdout, '');
    assert.equal(gong.posts.length, 1);
  });
});
