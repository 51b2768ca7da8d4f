/**
 * Benchmark helper process: a fake Asterisk (AmiServer) that, once a client logs in, streams
 * the benchmark stream as fast as the socket takes it. Prints `{"port", "events", "bytes"}`
 * on stdout when listening, then `{"startedAtMs"}` when it starts streaming and
 * `{"doneAtMs"}` when the last byte was handed to the socket. Arguments: REPEAT [KIND]
 * (`corpus` or `asterisk`, see `benchEvents`).
 */
import { AmiServer } from '../src/ami/server.ts';
import { amiStream, type StreamKind } from './ami-stream.ts';

const repeat = Number(process.argv[2] ?? 200);
const kind = (process.argv[3] ?? 'corpus') as StreamKind;
const { chunks, events, bytes } = amiStream(repeat, kind);
const server = new AmiServer({
  users: { bench: 'bench' },
  fullyBooted: false,
  // `watch` resynchronises at login: nothing in progress.
  handlers: { CoreShowChannels: () => ({ events: [], complete: 'CoreShowChannelsComplete' }) },
});
server.on('login', (_connection, ok) => {
  if (!ok) return;
  void (async () => {
    process.stdout.write(`${JSON.stringify({ startedAtMs: Date.now() })}\n`);
    for (const chunk of chunks) {
      server.broadcastRaw(chunk);
      await server.drain();
    }
    process.stdout.write(`${JSON.stringify({ doneAtMs: Date.now() })}\n`);
  })();
});
const port = await server.listen();
process.stdout.write(`${JSON.stringify({ port, events, bytes })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
