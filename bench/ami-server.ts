/**
 * Benchmark helper process: a fake Asterisk (AmiServer) that, once a client logs in, streams
 * the benchmark stream as fast as the socket takes it. Prints `{"port", "events", "bytes"}`
 * on stdout when listening. Arguments: REPEAT.
 */
import { AmiServer } from '../src/ami/server.ts';
import { amiStream } from './ami-stream.ts';

const repeat = Number(process.argv[2] ?? 200);
const { chunks, events, bytes } = amiStream(repeat);
const server = new AmiServer({ users: { bench: 'bench' }, fullyBooted: false });
server.on('login', (_connection, ok) => {
  if (!ok) return;
  void (async () => {
    for (const chunk of chunks) {
      server.broadcastRaw(chunk);
      await server.drain();
    }
  })();
});
const port = await server.listen();
process.stdout.write(`${JSON.stringify({ port, events, bytes })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
