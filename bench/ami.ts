/**
 * AMI benchmarks: wire parsing alone (AmiParser over a >= 100 MB stream built from the
 * recordings), and end to end over TCP (a fake Asterisk in its own process streaming as fast
 * as it can → AmiClient → CallEngine in another process), with that process's peak RSS.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { AmiParser } from '../src/ami/protocol.ts';
import { amiStream } from './ami-stream.ts';
import type { BenchResult } from './table.ts';

const REPEAT = 200;

function benchParser(): BenchResult {
  const { chunks, events, bytes } = amiStream(REPEAT);
  let best = 0;
  for (let pass = 0; pass < 4; pass++) {
    let count = 0;
    const parser = new AmiParser({
      onMessage: () => {
        count++;
      },
    });
    const start = process.hrtime.bigint();
    for (const chunk of chunks) parser.push(chunk);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (count !== events) throw new Error(`parsed ${count} of ${events} events`);
    if (pass > 0) best = Math.max(best, events / seconds);
  }
  return {
    name: 'AMI wire parsing (AmiParser)',
    value: best,
    unit: 'events/s',
    note: `${events.toLocaleString('en')} events, ${(bytes / 1e6).toFixed(0)} MB in 64 KiB chunks, best of 3 (${((best * bytes) / events / 1e6).toFixed(0)} MB/s)`,
  };
}

async function firstLine(child: ReturnType<typeof spawn>): Promise<string> {
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const [line] = (await once(lines, 'line')) as [string];
  lines.close();
  return line;
}

async function endToEnd(): Promise<{ events: number; seconds: number; maxRssMb: number }> {
  const server = spawn(
    process.execPath,
    [join(import.meta.dirname, 'ami-server.ts'), String(REPEAT)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  try {
    const { port, events } = JSON.parse(await firstLine(server)) as {
      port: number;
      events: number;
    };
    const client = spawn(
      process.execPath,
      [join(import.meta.dirname, 'ami-client.ts'), String(port), String(events)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    return JSON.parse(await firstLine(client)) as {
      events: number;
      seconds: number;
      maxRssMb: number;
    };
  } finally {
    server.stdin?.end();
    server.kill();
  }
}

export async function benchAmi(): Promise<BenchResult[]> {
  const parser = benchParser();
  let best = { events: 0, seconds: Number.POSITIVE_INFINITY, maxRssMb: 0 };
  for (let run = 0; run < 3; run++) {
    const result = await endToEnd();
    if (result.seconds < best.seconds) best = result;
  }
  return [
    parser,
    {
      name: 'end to end over TCP (fake Asterisk → AmiClient → CallEngine)',
      value: best.events / best.seconds,
      unit: 'events/s',
      target: 500_000,
      note: `${best.events.toLocaleString('en')} events, server in its own process, best of 3`,
    },
    {
      name: 'end to end: peak RSS of the client process',
      value: best.maxRssMb,
      unit: 'MB',
      target: 150,
      higherIsBetter: false,
      note: 'process.resourceUsage().maxRSS of the AmiClient + engine process',
    },
  ];
}
