/**
 * Benchmark helper process: the ceiling of the AMI path on this machine. Logs in to the fake
 * Asterisk on PORT and only counts `\r\n\r\n` in the bytes it receives, until EVENTS events
 * arrived; prints `{"events", "seconds", "lastAtMs", "maxRssMb"}`. Arguments: PORT EVENTS.
 */
import net from 'node:net';

const port = Number(process.argv[2]);
const expected = Number(process.argv[3]);
const socket = net.connect({ port, host: '127.0.0.1' });
socket.write('Action: Login\r\nUsername: bench\r\nSecret: bench\r\n\r\n');
let count = -1; // the login answer
let start = 0n;
let tail: Buffer = Buffer.alloc(0);
socket.on('data', (chunk: Buffer) => {
  if (start === 0n) start = process.hrtime.bigint();
  const data = tail.length > 0 ? Buffer.concat([tail, chunk]) : chunk;
  let at = data.indexOf('\r\n\r\n');
  let last = -1;
  while (at !== -1) {
    count++;
    last = at;
    at = data.indexOf('\r\n\r\n', at + 4);
  }
  tail = data.subarray(last === -1 ? Math.max(0, data.length - 3) : last + 4);
  if (count >= expected) {
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const maxRssMb = process.resourceUsage().maxRSS / 1024;
    process.stdout.write(
      `${JSON.stringify({ events: count, seconds, lastAtMs: Date.now(), maxRssMb })}\n`,
    );
    process.exit(0);
  }
});
