// The Twilio provider against a local fake of the Twilio REST API that calls back like
// Twilio: fetches the TwiML, posts the Gather result and the status callback, every request
// signed with X-Twilio-Signature. A bad signature is refused with 403.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { twilioSignature } from '../../src/callout/providers/twilio.ts';
import { freePort } from '../support/net.ts';
import { calloutConfig, postCurlStyle, startServe, testDb, waitHistory } from './helpers.ts';

const SID = 'AC0123456789abcdef0123456789abcdef';
const TOKEN = 'twilio-auth-token-0123456789';

interface Script {
  /** Terminal status without answering (busy, no-answer, failed). */
  status?: string;
  /** Keys pressed at successive Gathers. */
  digits?: string[];
  /** Status callbacks sent (and expected to be ignored) before the call is played. */
  ignoredStatuses?: string[];
}

interface FakeTwilio {
  url: string;
  calls: Array<Record<string, string>>;
  twiml: string[];
  /** HTTP statuses of the `ignoredStatuses` callbacks. */
  ignored: number[];
  close(): Promise<void>;
}

async function signedPost(url: string, params: Record<string, string>) {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': twilioSignature(TOKEN, url, params),
    },
    body: new URLSearchParams(params),
  });
}

function xmlUnescape(url: string): string {
  return url.replaceAll('&amp;', '&');
}

async function fakeTwilio(scripts: Record<string, Script>): Promise<FakeTwilio> {
  const calls: Array<Record<string, string>> = [];
  const twiml: string[] = [];
  const ignored: number[] = [];
  let n = 0;
  const play = async (call: Record<string, string>, sid: string) => {
    const script = scripts[call.To ?? ''] ?? { status: 'no-answer' };
    const base = { CallSid: sid, AccountSid: SID, To: call.To ?? '', From: call.From ?? '' };
    for (const status of script.ignoredStatuses ?? []) {
      const answer = await signedPost(call.StatusCallback ?? '', { ...base, CallStatus: status });
      ignored.push(answer.status);
    }
    if (script.status) {
      await signedPost(call.StatusCallback ?? '', { ...base, CallStatus: script.status });
      return;
    }
    let doc = await (
      await signedPost(call.Url ?? '', { ...base, CallStatus: 'in-progress' })
    ).text();
    twiml.push(doc);
    for (const digit of script.digits ?? []) {
      const action = /<Gather[^>]*action="([^"]+)"/.exec(doc)?.[1];
      if (!action) break;
      doc = await (await signedPost(xmlUnescape(action), { ...base, Digits: digit })).text();
      twiml.push(doc);
    }
    await signedPost(call.StatusCallback ?? '', { ...base, CallStatus: 'completed' });
  };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      const ok =
        request.method === 'POST' &&
        request.url === `/2010-04-01/Accounts/${SID}/Calls.json` &&
        request.headers.authorization ===
          `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString('base64')}`;
      if (!ok) {
        response.writeHead(401, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ code: 20003, message: 'Authenticate', status: 401 }));
        return;
      }
      const call = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString()));
      calls.push(call);
      n += 1;
      const sid = `CA${String(n).padStart(32, '0')}`;
      response.writeHead(201, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ sid, status: 'queued', to: call.To, from: call.From }));
      setTimeout(() => void play(call, sid).catch(() => {}), 10);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    twiml,
    ignored,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('callout via Twilio (fake Twilio API)', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  test('sequential: busy, wrong key then 2, then 1; TwiML, signatures, 403 on a bad one', async () => {
    const twilio = await fakeTwilio({
      '+81701': { status: 'busy' },
      // CallStatus values naming Object.prototype members are no outcome (own keys only).
      '+81702': { digits: ['9', '2'], ignoredStatuses: ['constructor', '__proto__', 'toString'] },
      '+81703': { digits: ['1'] },
    });
    cleanups.push(() => twilio.close());
    const db = testDb('sqlite');
    const config = calloutConfig(db);
    const port = await freePort();
    config.http.listen = `127.0.0.1:${port}`;
    config.callout.provider = 'twilio';
    config.callout.twilio = {
      accountSid: SID,
      authToken: TOKEN,
      from: '+15005550006',
      baseUrl: twilio.url,
      publicUrl: `http://127.0.0.1:${port}`,
    };
    const { url, service } = await startServe(config, db);
    cleanups.push(() => service.stop());
    const response = await postCurlStyle(url, [
      ['hostname', 'web1'],
      ['operator', 'op'],
      ['calltype', '1'],
      ['frequency', '2'],
      ['language', 'ja-jp'],
      // curl -d sends values raw; & must be percent-encoded by the caller as with curl.
      ['message', encodeURIComponent('ディスク&満杯<です>')],
      ['headid', '2'],
      ['footid', '1'],
      ['addressee', '1:a:81701:A:1'],
      ['addressee', '2:b:81702:B:1'],
      ['addressee', '3:c:81703:C:1'],
    ]);
    const { eventid } = (await response.json()) as { eventid: string };
    const h = await waitHistory(url, eventid, (x) => x.eventstatus === '2');
    assert.equal(h.provider, 'twilio');
    assert.deepEqual(twilio.ignored, [204, 204, 204]);
    assert.deepEqual(
      h.result.map((r) => [r.numofcall, r.status]),
      [
        ['1', '3'],
        ['1', '2'],
        ['1', '1'],
      ],
    );
    assert.deepEqual(
      twilio.calls.map((c) => c.To),
      ['+81701', '+81702', '+81703'],
    );
    const call = twilio.calls[0] ?? {};
    assert.equal(call.From, '+15005550006');
    assert.equal(call.Timeout, '30');
    assert.match(call.Url ?? '', /\/api\/v1\/call\/twilio\/twiml\?attempt=/);
    assert.match(call.StatusCallback ?? '', /\/api\/v1\/call\/twilio\/status\?attempt=/);
    const first = twilio.twiml[0] ?? '';
    assert.match(first, /<Gather numDigits="1"[^>]*><Say language="ja-JP">/);
    assert.match(first, /ディスク&amp;満杯&lt;です&gt;/, 'message escaped in TwiML');
    assert.match(twilio.twiml[1] ?? '', /<Gather/, 'a wrong key re-prompts');
    assert.match(twilio.twiml[2] ?? '', /<Say language="ja-JP">承知しました。<\/Say><Hangup\/>/);

    // Webhooks without or with a wrong signature are refused.
    const target = twilio.calls[1]?.StatusCallback ?? '';
    const unsigned = await fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'CallStatus=busy',
    });
    assert.equal(unsigned.status, 403);
    const forged = await fetch(target, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': twilioSignature('wrong-token', target, { CallStatus: 'busy' }),
      },
      body: 'CallStatus=busy',
    });
    assert.equal(forged.status, 403);
    const tampered = await fetch(target, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': twilioSignature(TOKEN, target, { CallStatus: 'completed' }),
      },
      body: 'CallStatus=busy',
    });
    assert.equal(tampered.status, 403);
  });

  test('signature: the documented example', () => {
    // Twilio's "Webhooks security" example.
    const url = 'https://mycompany.com/myapp.php?foo=1&bar=2';
    const params = {
      CallSid: 'CA1234567890ABCDE',
      Caller: '+12349013030',
      Digits: '1234',
      From: '+12349013030',
      To: '+18005551212',
    };
    assert.equal(twilioSignature('12345', url, params), '0/KCTR6DLpKmkAf8muzZqo1nDgQ=');
  });
});
