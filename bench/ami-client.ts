/**
 * Benchmark helper process: connects an AmiClient to the fake Asterisk on PORT, feeds every
 * event to a CallEngine until EVENTS events arrived, and prints
 * `{"events", "seconds", "maxRssMb", "callEvents"}`. Arguments: PORT EVENTS.
 */
import { AmiClient } from '../src/ami/client.ts';
import { CallEngine } from '../src/calls/engine.ts';

const port = Number(process.argv[2]);
const expected = Number(process.argv[3]);
let callEvents = 0;
const engine = new CallEngine({
  onCallEvent: () => {
    callEvents++;
  },
});
const client = new AmiClient({ port, username: 'bench', secret: 'bench', pingIntervalMs: 0 });
let received = 0;
let start = 0n;
const done = new Promise<void>((resolve) => {
  client.on('event', (event) => {
    if (received === 0) start = process.hrtime.bigint();
    received++;
    engine.handle(event);
    if (received === expected) resolve();
  });
});
await client.connect();
await done;
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const maxRssMb = process.resourceUsage().maxRSS / 1024;
process.stdout.write(`${JSON.stringify({ events: received, seconds, maxRssMb, callEvents })}\n`);
await client.close();
process.exit(0);
