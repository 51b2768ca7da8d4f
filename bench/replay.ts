/**
 * File replay benchmark: `switchboard replay FILE --format jsonl > /dev/null` on a large
 * recording in the fixtures' JSON array format (process start-up included), and the same
 * pipeline in-process (reader → engine → JSON lines).
 */
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { readRecordingBatches } from '../src/ami/recording.ts';
import { runRecording } from '../src/calls/runner.ts';
import { consoleReporter, LineWriter } from '../src/sinks/console.ts';
import { jsonArrayRecording } from './files.ts';
import type { BenchResult } from './table.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');

async function timeCli(path: string): Promise<number> {
  const devnull = await open('/dev/null', 'w');
  const start = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'replay', path, '--format', 'jsonl'], {
      stdio: ['ignore', devnull.fd, 'inherit'],
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`replay exited ${code}`)),
    );
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await devnull.close();
  return seconds;
}

export async function benchReplay(): Promise<BenchResult[]> {
  const { path, events, bytes } = await jsonArrayRecording(200);
  const note = `${events.toLocaleString('en')} events, ${(bytes / 1e6).toFixed(0)} MB JSON array`;
  let bestCli = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 3; run++) bestCli = Math.min(bestCli, await timeCli(path));

  let bestInProcess = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 3; run++) {
    const devnull = await open('/dev/null', 'w');
    const stream = devnull.createWriteStream();
    const writer = new LineWriter(stream);
    const start = process.hrtime.bigint();
    const summary = await runRecording(
      readRecordingBatches(path),
      consoleReporter(writer, { format: 'jsonl' }),
      {
        afterBatch: () => writer.ready(),
      },
    );
    await writer.flush();
    bestInProcess = Math.min(bestInProcess, Number(process.hrtime.bigint() - start) / 1e9);
    if (summary.amiEvents !== events)
      throw new Error(`read ${summary.amiEvents} of ${events} events`);
    stream.end();
  }
  return [
    {
      name: 'file replay, CLI, JSON output (switchboard replay --format jsonl)',
      value: events / bestCli,
      unit: 'events/s',
      target: 600_000,
      note: `${note}; process start-up included; best of 3`,
    },
    {
      name: 'file replay, in-process (reader → engine → JSON lines)',
      value: events / bestInProcess,
      unit: 'events/s',
      note: `${note}; best of 3`,
    },
  ];
}
