/**
 * `npm run bench [-- NAME...]`: runs the benchmarks (all, or those named: startup, engine,
 * replay, ami, watch, serve, semispace, bus, push, callout, announce, console) and prints one Markdown table
 * with the machine's description. Not part of
 * the tests; copy the table into docs/benchmarks.md. Needs the build (`npm run build`) for
 * the CLI replay figure, and RabbitMQ / Redis on 127.0.0.1 for the bus and push figures.
 */
import { cpus, totalmem } from 'node:os';
import { benchAmi } from './ami.ts';
import { benchAnnounce } from './announce.ts';
import { benchBus } from './bus.ts';
import { benchCallout } from './callout.ts';
import { benchConsole } from './console.ts';
import { benchEngine } from './engine.ts';
import { benchPush } from './push.ts';
import { benchReplay } from './replay.ts';
import { benchSemiSpace } from './semi-space.ts';
import { benchServe } from './serve.ts';
import { benchStartup } from './startup.ts';
import { type BenchResult, formatTable } from './table.ts';
import { benchWatch } from './watch.ts';

const BENCHES: Record<string, () => Promise<BenchResult[]>> = {
  startup: benchStartup,
  engine: benchEngine,
  replay: benchReplay,
  ami: benchAmi,
  watch: benchWatch,
  serve: benchServe,
  semispace: benchSemiSpace,
  bus: benchBus,
  push: benchPush,
  callout: benchCallout,
  announce: benchAnnounce,
  console: benchConsole,
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !(name in BENCHES));
if (unknown.length > 0) {
  process.stderr.write(
    `bench: unknown benchmark ${unknown.join(', ')} (known: ${Object.keys(BENCHES).join(', ')})\n`,
  );
  process.exit(2);
}
const results: BenchResult[] = [];
for (const [name, run] of Object.entries(BENCHES)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  process.stderr.write(`bench: ${name}...\n`);
  results.push(...(await run()));
}
const cpu = cpus()[0]?.model ?? 'unknown CPU';
process.stdout.write(
  `Machine: ${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}\n\n`,
);
process.stdout.write(`${formatTable(results)}\n`);
