/**
 * Backpressure of `switchboard watch` (issue 16): while nobody reads its stdout, it stops
 * reading the AMI socket, so the fake Asterisk's writes back up (they wait in its socket
 * buffer) instead of the events piling up in the watch process; once stdout is read again,
 * every call event comes out, none lost, none twice. Assertions on counts and sizes, none on
 * durations.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { AmiEvent } from '../../src/ami/message.ts';
import { serializeMessage } from '../../src/ami/protocol.ts';
import { remapIdentifiers } from '../../src/ami/remap.ts';
import { AmiServer, type AmiServerConnection } from '../../src/ami/server.ts';
import { CallEngine } from '../../src/calls/engine.ts';
import { BIN, ROOT, until } from '../support/cli.ts';
import { conformanceNames, loadFixture } from '../support/conformance.ts';

const SECRET = 'bp-secret';
const PASSES = 12;

/** The conformance recordings, `PASSES` times with identifiers remapped per pass. */
function events(): AmiEvent[] {
  const base = conformanceNames().flatMap((name) =>
    loadFixture(name).filter((event) => event.Event !== 'FullyBooted'),
  );
  const out: AmiEvent[] = [];
  for (let pass = 0; pass < PASSES; pass++) {
    for (const event of base) {
      // As the wire carries it: without the recordings' `content` key.
      const { content: _content, ...wire } = remapIdentifiers(event, pass === 0 ? '' : `-p${pass}`);
      out.push(wire as AmiEvent);
    }
  }
  return out;
}

/** What `watch --format jsonl` must print for `events` (the engine in this process). */
function expectedLines(all: readonly AmiEvent[]): string[] {
  const lines: string[] = [];
  const engine = new CallEngine({ onCallEvent: (event) => lines.push(JSON.stringify(event)) });
  for (const event of all) engine.handle(event);
  return lines;
}

/** ~64 KiB wire chunks of `events`. */
function chunks(all: readonly AmiEvent[]): Buffer[] {
  const out: Buffer[] = [];
  let pending = '';
  for (const event of all) {
    pending += serializeMessage(event);
    if (pending.length >= 65536) {
      out.push(Buffer.from(pending));
      pending = '';
    }
  }
  if (pending.length > 0) out.push(Buffer.from(pending));
  return out;
}

/** Resident set size of a process in MB (`VmRSS`). */
function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 'NaN') / 1024;
}

test('watch with an unread stdout stops reading AMI; nothing is lost once stdout is read', async (t) => {
  if (process.platform !== 'linux') {
    t.skip('reads /proc');
    return;
  }
  const all = events();
  const expected = expectedLines(all);
  const wire = chunks(all);
  const totalBytes = wire.reduce((sum, chunk) => sum + chunk.length, 0);
  let handedBytes = 0;
  let finished = false;
  let connection: AmiServerConnection | undefined;
  const server = new AmiServer({ users: { switchboard: SECRET }, fullyBooted: false });
  server.handle('CoreShowChannels', () => ({ events: [], complete: 'CoreShowChannelsComplete' }));
  server.on('login', (conn, ok) => {
    if (!ok) return;
    connection = conn;
    void (async () => {
      for (const chunk of wire) {
        server.broadcastRaw(chunk);
        handedBytes += chunk.length;
        await server.drain();
      }
      finished = true;
    })();
  });
  const port = await server.listen();
  const child = spawn(
    process.execPath,
    [BIN, 'watch', '--ami', `tcp://switchboard:${SECRET}@127.0.0.1:${port}`, '--format', 'jsonl'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // Nobody reads stdout for now.
  child.stdout.pause();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  try {
    const pid = child.pid as number;
    // Stalled: the server's writes wait in its socket buffer and it has handed nothing more
    // to the socket for 50 polls in a row (or it finished: the assertions below fail).
    let last = -1;
    let same = 0;
    await until(
      () => {
        if (finished) return true;
        if (handedBytes === last) same++;
        else {
          last = handedBytes;
          same = 0;
        }
        return same >= 50 && (connection?.socket.writableLength ?? 0) > 0;
      },
      'the watch to stall on its stdout',
      60_000,
    );
    assert.equal(finished, false, 'the whole stream went out although stdout was not read');
    assert.ok(handedBytes < totalBytes);
    assert.ok(
      (connection?.socket.writableLength ?? 0) > 0,
      "the server's socket writes wait (the watch does not read)",
    );
    const rss = rssMb(pid);
    assert.ok(rss < 200, `watch RSS ${rss.toFixed(0)} MB while blocked`);

    // Now read: every call event comes out, in order, none lost.
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.stdout.resume();
    await until(
      () => out.split('\n').length - 1 >= expected.length,
      `all ${expected.length} call events (stderr: ${stderr})`,
      120_000,
    );
    assert.ok(finished, 'the server sent everything');
    assert.deepEqual(out.trimEnd().split('\n'), expected);
    assert.doesNotMatch(stderr, /connection lost/, 'the connection stayed up');
  } finally {
    // SIGKILL: a graceful stop would wait for its stdout to drain.
    child.kill('SIGKILL');
    await server.close();
  }
});
