// `switchboard listen --queue NAME` acknowledges each message only after its line is
// written: a listen process killed (SIGKILL) while messages are delivered to it loses none,
// the next listen on the same queue gets them again (issue 13 §7). Real RabbitMQ, real
// child processes: the first one's stdout is a pipe nobody reads, so it fills up and the
// process blocks in the middle of the stream, holding delivered messages it has not printed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { connect } from 'amqplib';
import { BROKER_URL, deleteExchange, uniqueName } from '../bus/helpers.ts';
import { ROOT, type RunningCli, startCli, until } from '../support/cli.ts';

const ENTRY = join(ROOT, 'test', 'serve', 'cli-entry.ts');
const MESSAGES = 3000;
const PAD = 'x'.repeat(2000);

/** The `n` of every complete JSON line of `text`. */
function numbers(text: string): Set<number> {
  const seen = new Set<number>();
  for (const line of text.split('\n')) {
    try {
      const n = (JSON.parse(line) as { n?: unknown }).n;
      if (typeof n === 'number') seen.add(n);
    } catch {
      // the last, partly written line of the killed process
    }
  }
  return seen;
}

test('listen --queue killed before acknowledging: the next listen gets every message', {
  timeout: 120_000,
}, async () => {
  const exchange = uniqueName('test-listen-ack');
  const queue = uniqueName('test-listen-ack-q');
  const dir = mkdtempSync(join(tmpdir(), 'sb-listen-ack-'));
  const config = join(dir, 'switchboard.yaml');
  writeFileSync(config, `amqp:\n  exchange: ${exchange}\n`);
  const args = ['listen', 'call.#', '--amqp', BROKER_URL, '--config', config, '--queue', queue];
  const conn = await connect(BROKER_URL);
  const children: RunningCli[] = [];
  after(async () => {
    for (const child of children) child.child.kill('SIGKILL');
    const ch = await conn.createChannel();
    await ch.deleteQueue(queue).catch(() => {});
    await conn.close().catch(() => {});
    await deleteExchange(exchange).catch(() => {});
  });

  // 1. The first listen: stderr read, stdout a pipe left unread.
  const first = spawn(process.execPath, [ENTRY, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let firstErr = '';
  first.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    firstErr += chunk;
  });
  const firstExit = new Promise<void>((resolve) => first.on('close', () => resolve()));
  await until(() => firstErr.includes('listening on'), `first listen ready (${firstErr})`, 30_000);

  // 2. Persistent messages on the exchange, far more than the pipe holds.
  const ch = await conn.createConfirmChannel();
  for (let n = 0; n < MESSAGES; n++) {
    ch.publish(exchange, 'call.hangup', Buffer.from(JSON.stringify({ n, pad: PAD })), {
      persistent: true,
      contentType: 'application/json',
    });
  }
  await ch.waitForConfirms();

  // 3. Once this side stopped reading (its buffer is full), the child is blocked writing.
  await until(
    () => first.stdout.readableLength >= first.stdout.readableHighWaterMark,
    'the first listen filling its stdout',
    30_000,
  );
  first.kill('SIGKILL');
  let printed = '';
  first.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    printed += chunk;
  });
  await firstExit;
  const before = numbers(printed);
  assert.ok(before.size < MESSAGES, 'the first listen was killed in the middle of the stream');

  // 4. A second listen on the same queue: with what the first printed, every message.
  const second = startCli(args, [process.execPath, ENTRY]);
  children.push(second);
  const missing = () => {
    const all = new Set([...before, ...numbers(second.stdout())]);
    return MESSAGES - all.size;
  };
  await until(() => missing() === 0, 'every message printed by one listen or the other', 60_000);
  assert.equal(missing(), 0);
});
