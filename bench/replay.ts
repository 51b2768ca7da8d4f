/**
 * File replay benchmark: `switchboard replay FILE --format jsonl > /dev/null` on a large
 * recording in the fixtures' JSON array format (process start-up included), and the same
 * pipeline in-process (reader → engine → JSON lines).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { readRecordingBatches } from '../src/ami/recording.ts';
import { runRecording } from '../src/calls/runner.ts';
import { consoleReporter, LineWriter } from '../src/sinks/console.ts';
import { jsonArrayRecording } from './files.ts';
import type { BenchResult } from './table.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');

/**
 * A checkout of github.com/VoIPGRID/cacofonisk for the side-by-side figure:
 * `$CACOFONISK_DIR`, else `.bench/cacofonisk` (fetch it there; nothing to install, see
 * bench/cacofonisk-filerunner.py).
 */
const CACOFONISK =
  process.env.CACOFONISK_DIR ?? join(import.meta.dirname, '..', '.bench', 'cacofonisk');

/** Wall time of one command with stdout (and with `quiet` stderr) to /dev/null, in seconds. */
async function timeCommand(exe: string, args: string[], quiet = false): Promise<number> {
  const devnull = await open('/dev/null', 'w');
  const start = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(exe, args, {
      stdio: ['ignore', devnull.fd, quiet ? 'ignore' : 'inherit'],
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${exe} ${args[0]} exited ${code}`)),
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
  for (let run = 0; run < 3; run++) {
    bestCli = Math.min(
      bestCli,
      await timeCommand(process.execPath, [BIN, 'replay', path, '--format', 'jsonl']),
    );
  }
  const side: BenchResult[] = [];
  if (existsSync(join(CACOFONISK, 'cacofonisk', 'runners', 'file_runner.py'))) {
    const script = join(import.meta.dirname, 'cacofonisk-filerunner.py');
    let bestCaco = Number.POSITIVE_INFINITY;
    let cliRun = Number.POSITIVE_INFINITY;
    // Alternating, each best of 2, so that both see the same load.
    for (let run = 0; run < 2; run++) {
      bestCaco = Math.min(bestCaco, await timeCommand('python3', [script, CACOFONISK, path], true));
      cliRun = Math.min(
        cliRun,
        await timeCommand(process.execPath, [BIN, 'replay', path, '--format', 'jsonl']),
      );
    }
    side.push(
      {
        name: 'cacofonisk FileRunner, same file, JSON lines (python3)',
        value: events / bestCaco,
        unit: 'events/s',
        note: `${note}; whole process; best of 2, alternating with switchboard replay`,
      },
      {
        name: 'replay speed-up over cacofonisk FileRunner (whole process)',
        value: bestCaco / Math.min(cliRun, bestCli),
        unit: '×',
        target: 3,
        note: `${bestCaco.toFixed(2)} s vs ${Math.min(cliRun, bestCli).toFixed(2)} s`,
      },
    );
  } else {
    process.stderr.write(`bench: no cacofonisk at ${CACOFONISK}: replay comparison skipped\n`);
  }

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
    ...side,
    {
      name: 'file replay, in-process (reader → engine → JSON lines)',
      value: events / bestInProcess,
      unit: 'events/s',
      note: `${note}; best of 3`,
    },
  ];
}
