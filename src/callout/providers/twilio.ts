/**
 * The Twilio provider and its webhooks.
 *
 * - Call creation (Twilio REST, "Create a Call resource"):
 *   `POST {baseUrl}/2010-04-01/Accounts/{AccountSid}/Calls.json`, HTTP Basic
 *   `AccountSid:AuthToken`, form fields `To`, `From`, `Url` (TwiML), `Method`,
 *   `StatusCallback`, `StatusCallbackMethod`, `Timeout` (ring seconds); answer 201 JSON with
 *   `sid` (the `CallSid`).
 * - TwiML (`POST /api/v1/call/twilio/twiml?attempt=ID&round=N`): `<Gather numDigits="1">`
 *   around `<Say language="ja-JP">head message foot</Say>` (the key counts during the speech);
 *   nothing pressed → one repeat (round 2) then `<Hangup/>`.
 * - Gather callback (`.../twilio/gather`, field `Digits`): 1 or 2 is written at once and the
 *   callee hears the confirmation; another key re-prompts (at most 3 rounds).
 * - Status callback (`.../twilio/status`, field `CallStatus`): `completed` → answered,
 *   `busy`, `no-answer`, `failed`, `canceled` → the attempt's outcome.
 * - Every webhook must carry a valid `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the
 *   auth token, of the full URL Twilio requested (`publicUrl` + path and query) followed by
 *   every POST parameter as name + value, sorted by name (Twilio docs, "Webhooks security").
 *   A missing or wrong signature answers 403.
 *
 * Webhooks are stateless (everything is read from the database), so a restart between the
 * call's creation and its callbacks loses nothing.
 */
import { createHmac } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import Type from 'typebox';
import { constantTimeEqual } from '../../http/auth.ts';
import { HttpError } from '../../http/errors.ts';
import { errorResponses } from '../../http/schemas.ts';
import type { App } from '../../http/server.ts';
import { TELNO_PATTERN } from '../../telephony/dialstring.ts';
import { BaristaErrorBody } from '../routes.ts';
import type { CalloutService } from '../service.ts';
import type { AttemptOutcome, AttemptSink, CalloutProvider, DialRequest } from './types.ts';
import { statusOfDigit } from './types.ts';

/** Options of {@link createTwilioProvider} (the `callout.twilio` section). */
export interface TwilioProviderOptions {
  accountSid: string;
  authToken: string;
  /** Caller number, E.164. */
  from: string;
  /** REST base URL (`https://api.twilio.com`, or a local fake). */
  baseUrl: string;
  /** Public base URL of this server (Twilio calls the webhooks there). */
  publicUrl: string;
  /** Timeout of the REST request, in ms. Default 10000. */
  timeoutMs?: number;
  logger?: Logger;
}

const WEBHOOK = '/api/v1/call/twilio';

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/**
 * `X-Twilio-Signature` of a request: base64(HMAC-SHA1(authToken, url + sorted name+value)).
 * Repeated parameters contribute each value, in order, under their name.
 */
export function twilioSignature(
  authToken: string,
  url: string,
  params: Readonly<Record<string, string | readonly string[]>>,
): string {
  let data = url;
  for (const name of Object.keys(params).sort()) {
    const value = params[name];
    for (const v of Array.isArray(value) ? value : [value]) data += name + v;
  }
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

/** Twilio's `<Say language>` for the seed's languages. */
export function twilioLanguage(language: string): string {
  return language === 'ja-jp' ? 'ja-JP' : language === 'en' ? 'en-US' : language;
}

function xml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
}

/** Builds the Twilio provider (call creation). */
export function createTwilioProvider(options: TwilioProviderOptions): CalloutProvider {
  const base = trimSlash(options.baseUrl);
  const publicUrl = trimSlash(options.publicUrl);
  return {
    name: 'twilio',
    async dial(request: DialRequest, sink: AttemptSink) {
      // Checked at the API already; checked again here since Twilio's `To` also takes
      // `sip:...` and `client:...` addresses: only a telephone number may get through.
      if (!TELNO_PATTERN.test(request.telno)) {
        options.logger?.error({ attempt: request.attemptId }, 'callout: not a telephone number');
        await sink.finished(request.attemptId, 'failed');
        return;
      }
      const to = request.telno.startsWith('+') ? request.telno : `+${request.telno}`;
      const attempt = encodeURIComponent(request.attemptId);
      const form = new URLSearchParams({
        To: to,
        From: options.from,
        Url: `${publicUrl}${WEBHOOK}/twiml?attempt=${attempt}&round=1`,
        Method: 'POST',
        StatusCallback: `${publicUrl}${WEBHOOK}/status?attempt=${attempt}`,
        StatusCallbackMethod: 'POST',
        Timeout: String(Math.max(5, Math.round(request.ringTimeoutMs / 1000))),
      });
      const url = `${base}/2010-04-01/Accounts/${encodeURIComponent(options.accountSid)}/Calls.json`;
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: {
            authorization: `Basic ${Buffer.from(`${options.accountSid}:${options.authToken}`).toString('base64')}`,
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: form,
          signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
        });
        const body = (await response.json().catch(() => ({}))) as {
          sid?: string;
          message?: string;
        };
        if (!response.ok || typeof body.sid !== 'string') {
          options.logger?.warn(
            { status: response.status, message: body.message, attempt: request.attemptId },
            'callout: Twilio refused the call',
          );
          await sink.finished(request.attemptId, 'failed');
          return;
        }
        await sink.placed(request.attemptId, body.sid);
      } catch (error) {
        // The request may have reached Twilio: leave the attempt to its lease (unknown).
        options.logger?.warn(
          { err: error, attempt: request.attemptId },
          'callout: Twilio request failed',
        );
      }
    },
  };
}

/** Options of {@link twilioWebhookRoutes}. */
export interface TwilioWebhookOptions {
  service: CalloutService;
  authToken: string;
  publicUrl: string;
  confirm: Readonly<Record<string, string>>;
}

/** The query of every webhook: the attempt, and the prompt round (1–3). */
const TwilioQuery = Type.Object({
  attempt: Type.Optional(Type.String({ description: 'the attempt id (required)' })),
  round: Type.Optional(Type.String({ description: 'prompt round, 1–3' })),
});

/** Twilio's request parameters (`CallSid`, `Digits`, `CallStatus`, ...), all signed. */
const TwilioParams = Type.Record(
  Type.String(),
  Type.Union([Type.String(), Type.Array(Type.String())]),
);

const STATUS_OUTCOMES: Readonly<Record<string, AttemptOutcome>> = {
  completed: 'answered',
  busy: 'busy',
  'no-answer': 'noanswer',
  failed: 'failed',
  canceled: 'failed',
};

/**
 * Registers the Twilio webhooks under `/api/v1/call/twilio/` (no access rule: Twilio cannot
 * authenticate otherwise; the signature is checked instead).
 */
export async function twilioWebhookRoutes(app: App, options: TwilioWebhookOptions): Promise<void> {
  const publicUrl = trimSlash(options.publicUrl);
  const verify = async (request: FastifyRequest) => {
    const presented = request.headers['x-twilio-signature'];
    const params = (request.body ?? {}) as Record<string, string | string[]>;
    const expected = twilioSignature(options.authToken, publicUrl + request.url, params);
    if (
      typeof presented !== 'string' ||
      options.authToken === '' ||
      !constantTimeEqual(presented, expected)
    ) {
      request.log.warn({ url: request.url }, 'callout: bad X-Twilio-Signature');
      throw new HttpError(403, 'invalid X-Twilio-Signature', '99');
    }
  };
  const load = async (request: FastifyRequest) => {
    const attemptId = (request.query as Record<string, unknown>).attempt;
    if (typeof attemptId !== 'string') throw new HttpError(400, 'attempt: is required', '1');
    const attempt = await options.service.attempt(attemptId);
    if (!attempt) throw new HttpError(404, 'attempt: unknown', '1');
    return attempt;
  };
  const twiml = (reply: FastifyReply, body: string) =>
    reply
      .type('text/xml')
      .send(`<?xml version="1.0" encoding="UTF-8"?><Response>${body}</Response>`);
  const prompt = async (attemptId: string, eventId: string, round: number) => {
    const history = await options.service.history(eventId);
    const event = history?.event;
    const text = event
      ? [event.headmsg, event.message, event.footmsg].filter((t) => t).join(' ')
      : '';
    const language = twilioLanguage(event?.language ?? 'en');
    const a = encodeURIComponent(attemptId);
    const gather = `${publicUrl}${WEBHOOK}/gather?attempt=${a}&amp;round=${round}`;
    const again =
      round < 2
        ? `<Redirect method="POST">${publicUrl}${WEBHOOK}/twiml?attempt=${a}&amp;round=${round + 1}</Redirect>`
        : '<Hangup/>';
    return `<Gather numDigits="1" timeout="5" action="${gather}" method="POST"><Say language="${language}">${xml(text)}</Say></Gather>${again}`;
  };
  const schema = (operationId: string, summary: string, answer: unknown) => ({
    schema: {
      tags: ['callout'],
      summary,
      operationId,
      security: [{ twilioSignature: [] }],
      querystring: TwilioQuery,
      body: { content: { 'application/x-www-form-urlencoded': { schema: TwilioParams } } },
      response: {
        ...(answer as Record<number, unknown>),
        ...errorResponses(BaristaErrorBody, [400, 403, 404]),
      },
    },
  });
  const twimlAnswer = {
    200: {
      description: 'TwiML',
      content: { 'text/xml': { schema: Type.String() } },
    },
  };
  app.post(
    `${WEBHOOK}/twiml`,
    schema('twilioTwiml', 'Twilio fetches the TwiML of an attempt (prompt)', twimlAnswer),
    async (request, reply) => {
      await verify(request);
      const attempt = await load(request);
      const round = Number((request.query as Record<string, unknown>).round ?? 1) || 1;
      return twiml(reply, await prompt(attempt.id, attempt.event_id, round));
    },
  );
  app.post(
    `${WEBHOOK}/gather`,
    schema('twilioGather', 'Twilio posts the key the person pressed', twimlAnswer),
    async (request, reply) => {
      await verify(request);
      const attempt = await load(request);
      const body = (request.body ?? {}) as Record<string, unknown>;
      const digits = typeof body.Digits === 'string' ? body.Digits : '';
      const round = Number((request.query as Record<string, unknown>).round ?? 1) || 1;
      if (statusOfDigit(digits) !== undefined) {
        await options.service.recordDigit(attempt.id, digits);
        const history = await options.service.history(attempt.event_id);
        const language = history?.event.language ?? 'en';
        const confirm = options.confirm[language];
        return twiml(
          reply,
          `${confirm ? `<Say language="${twilioLanguage(language)}">${xml(confirm)}</Say>` : ''}<Hangup/>`,
        );
      }
      // A wrong key re-prompts (at most 3 rounds in all).
      if (round >= 3) return twiml(reply, '<Hangup/>');
      return twiml(reply, await prompt(attempt.id, attempt.event_id, round + 1));
    },
  );
  app.post(
    `${WEBHOOK}/status`,
    schema('twilioStatus', 'Twilio posts the final status of an attempt', {
      204: { description: 'Recorded', type: 'null' },
    }),
    async (request, reply) => {
      await verify(request);
      const attempt = await load(request);
      const body = (request.body ?? {}) as Record<string, unknown>;
      const status = String(body.CallStatus ?? '');
      // own keys only: `CallStatus=constructor` must not read Object.prototype
      const outcome = Object.hasOwn(STATUS_OUTCOMES, status) ? STATUS_OUTCOMES[status] : undefined;
      if (outcome) await options.service.recordOutcome(attempt.id, outcome);
      return reply.code(204).send();
    },
  );
}
