/**
 * Benchmark helper process: a fake Asterisk (AmiServer) for the AMI-event-to-bus latency.
 * Prints `{"port"}` when listening and `{"login": true}` once a client logged in; on the
 * line `go RATE TOTAL` on stdin it broadcasts TOTAL `UserEvent`s at RATE per second (paced
 * by the elapsed time), each carrying `SentAtUs`: the wall clock in µs
 * (`performance.timeOrigin + performance.now()`, shared by the processes of one machine),
 * then prints `{"sent": TOTAL}`. `warm N` sends N events with `UserEvent: Warmup` at once.
 */
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { AmiServer } from '../src/ami/server.ts';

const server = new AmiServer({ users: { bench: 'bench-secret' } });
server.handle('CoreShowChannels', () => ({ events: [], complete: 'CoreShowChannelsComplete' }));
server.on('login', (_connection, ok) => {
  if (ok) process.stdout.write(`${JSON.stringify({ login: true })}\n`);
});
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const event = (kind: string, i: number) => ({
  Event: 'UserEvent',
  Privilege: 'user,all',
  UserEvent: kind,
  Channel: `PJSIP/bench-${i}`,
  Uniqueid: `bench.${i}`,
  SentAtUs: String(nowUs()),
});

async function paced(rate: number, total: number): Promise<void> {
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
    while (sent < due) server.broadcast(event('Bench', sent++));
    await new Promise((r) => setTimeout(r, 1));
  }
  process.stdout.write(`${JSON.stringify({ sent })}\n`);
}

const port = await server.listen();
process.stdout.write(`${JSON.stringify({ port })}\n`);
const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  const [verb, a, b] = line.trim().split(/\s+/);
  if (verb === 'warm') for (let i = 0; i < Number(a); i++) server.broadcast(event('Warmup', i));
  if (verb === 'go') void paced(Number(a), Number(b));
});
input.on('close', () => process.exit(0));
