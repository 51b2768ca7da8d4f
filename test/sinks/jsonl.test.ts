import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { JsonlSink } from '../../src/sinks/jsonl.ts';

describe('JsonlSink', () => {
  it('writes one JSON object per line, in order', async () => {
    const out = new PassThrough();
    const chunks: string[] = [];
    out.on('data', (c: Buffer) => chunks.push(c.toString()));
    const sink = new JsonlSink(out);
    sink.write({ event: 'b_dial', caller: { name: 'SIP/a' }, targets: [] });
    sink.write({ event: 'hangup', caller: { name: 'SIP/a' }, reason: 'completed' });
    await sink.close({ end: true });
    const lines = chunks.join('').split('\n');
    assert.equal(lines.at(-1), '', 'ends with a newline');
    assert.deepEqual(
      lines.slice(0, -1).map((l) => JSON.parse(l).event),
      ['b_dial', 'hangup'],
    );
    assert.equal(sink.written, 2);
  });

  it('drops (and counts) instead of buffering without bound when the stream is stuck', () => {
    const stuck = new Writable({ highWaterMark: 16, write() {} }); // never calls back
    const sink = new JsonlSink(stuck, { maxBufferedBytes: 100 });
    let accepted = 0;
    for (let i = 0; i < 50; i++) if (sink.write({ event: 'up', i })) accepted++;
    assert.ok(accepted > 0 && accepted < 50, `accepted ${accepted}`);
    assert.equal(sink.dropped, 50 - accepted);
    assert.equal(
      sink.write({
        toJSON: () => {
          throw new Error('x');
        },
      }),
      false,
    );
  });
});
