// The Twilio provider dials telephone numbers only: a `To` that Twilio would read as a SIP
// address or a client (`sip:...@host`, `client:alice`) never leaves the process, however it
// got past the API (e.g. a row written by an older version). A real local HTTP server stands
// for Twilio and counts the call creations it receives.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { createTwilioProvider } from '../../src/callout/providers/twilio.ts';
import type { AttemptOutcome, DialRequest } from '../../src/callout/providers/types.ts';

test('a To that is not a telephone number is failed without any request to Twilio', async () => {
  const creations: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      creations.push(new URLSearchParams(body).get('To') ?? '');
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"sid":"CA1"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    const provider = createTwilioProvider({
      accountSid: 'AC0123',
      authToken: 'token-0123456789',
      from: '+15005550006',
      baseUrl: base,
      publicUrl: 'http://switchboard.example',
    });
    const finished: Array<[string, AttemptOutcome]> = [];
    const sink = {
      placed: async () => undefined,
      digit: async () => undefined,
      finished: async (id: string, outcome: AttemptOutcome) => {
        finished.push([id, outcome]);
      },
    };
    const request = (attemptId: string, telno: string): DialRequest => ({
      attemptId,
      eventId: 'e1',
      telno,
      language: 'en',
      head: '',
      message: 'm',
      foot: '',
      ringTimeoutMs: 30_000,
    });
    for (const [id, telno] of [
      ['a1', 'sip:attacker@evil.example'],
      ['a2', 'client:alice'],
      ['a3', '+31900123456@pstn-trunk'],
      ['a4', '+81312345678\nFrom: +1'],
    ] as const) {
      await provider.dial(request(id, telno), sink);
    }
    assert.deepEqual(creations, []);
    assert.deepEqual(finished, [
      ['a1', 'failed'],
      ['a2', 'failed'],
      ['a3', 'failed'],
      ['a4', 'failed'],
    ]);
    // A telephone number is dialled (the fake answers the creation).
    await provider.dial(request('a5', '81312345678'), sink);
    assert.deepEqual(creations, ['+81312345678']);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
