/**
 * The push middleware API exactly as the seed defines it (paths, field names, answers), as a
 * Fastify plugin. Bodies are form-encoded (the seed's clients) or JSON; DELETE also reads the
 * query string.
 *
 * | route | access | answers |
 * |---|---|---|
 * | `POST /api/incoming-call/` | PBX networks (`push.allowNetworks` + loopback) | 200 text/plain `status=ACK` / `status=NAK`; 400; 403 |
 * | `POST /api/call-response/` | open | 202; 404 unknown key or too late; 400; 503 coordination down |
 * | `POST /api/{apns,gcm,android}-device/` | Basic | 201 created / 200 updated; 400; 401; 403; 503 |
 * | `DELETE /api/{apns,gcm,android}-device/` | Basic | 200 removed / 404; 400; 401; 403; 503 |
 * | `POST /api/hangup-reason/`, `/api/log-metrics/`, `/api/check-in/` | Basic | 200 (check-in: 404 no device); 400; 401; 403; 503 |
 *
 * Errors are short text/plain bodies (`bad request`, `unauthorized`, ...) that never say which
 * field or rule failed.
 *
 * Browser cross-site requests (`Sec-Fetch-Site` / `Origin` of another site, see
 * `src/http/client.ts`) are refused on every route with 403: the PBX and the apps are not
 * browsers, and a page must not make a browser on the PBX network wake phones or use its
 * cached Basic credentials. The PBX network check uses the client address only when it is
 * trustworthy (not forwarded by a proxy missing from `http.trustProxy`).
 */
import formbody from '@fastify/formbody';
import type { FastifyRequest } from 'fastify';
import { createCidrMatcher, LOOPBACK_NETWORKS } from '../http/auth.ts';
import { clientOf, crossSiteOf } from '../http/client.ts';
import { type ErrorFormatter, HttpError, useErrorFormatter } from '../http/errors.ts';
import type { App } from '../http/server.ts';
import type { AccountChecker } from './accounts.ts';
import type { DeviceStore, Platform } from './devices.ts';
import { boundedLabel, type PushMetrics } from './metrics.ts';
import type { WakeService } from './wake.ts';

/** Dependencies of {@link pushRoutes}. */
export interface PushRoutesOptions {
  wake: WakeService;
  devices: DeviceStore;
  accounts: AccountChecker;
  metrics: PushMetrics;
  /** PBX networks (CIDR) besides loopback allowed to POST /api/incoming-call/. */
  allowNetworks: readonly string[];
  /**
   * `response_api` sent in the push payload; empty = derived from the incoming-call request
   * (`<protocol>://<host>/api/call-response/`).
   */
  responseUrl?: string;
}

const MESSAGES: Record<number, string> = {
  400: 'bad request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not found',
  405: 'method not allowed',
  413: 'payload too large',
  415: 'unsupported media type',
  503: 'service unavailable',
};

/** Errors as short text bodies; never the failed rule or field. */
export const pushErrorFormatter: ErrorFormatter = (error) => ({
  body: MESSAGES[error.statusCode] ?? (error.statusCode >= 500 ? 'internal error' : 'error'),
  contentType: 'text/plain; charset=utf-8',
});

// ---------------------------------------------------------------------------------------------
// Field validation (the seed's limits)
// ---------------------------------------------------------------------------------------------

type Fields = Record<string, unknown>;

function bad(): HttpError {
  return new HttpError(400, 'bad request');
}

function fieldsOf(request: FastifyRequest): Fields {
  const body = request.body;
  if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body))) {
    throw bad();
  }
  const query = (request.query ?? {}) as Fields;
  return { ...(request.method === 'DELETE' ? query : {}), ...((body ?? {}) as Fields) };
}

/** True when `value` has a control character (C0 or DEL). */
function hasControl(value: string): boolean {
  for (let i = 0; i < value.length; i += 1) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

function text(fields: Fields, name: string, required: boolean, max = 255): string | undefined {
  let value = fields[name];
  if (Array.isArray(value)) throw bad();
  if (typeof value === 'number' || typeof value === 'boolean') value = String(value);
  if (value === undefined || value === null || value === '') {
    if (required) throw bad();
    return undefined;
  }
  if (typeof value !== 'string' || value.length > max || hasControl(value)) {
    throw bad();
  }
  return value;
}

function matching(fields: Fields, name: string, pattern: RegExp, required: boolean) {
  const value = text(fields, name, required, 10_000);
  if (value !== undefined && !pattern.test(value)) throw bad();
  return value;
}

/** `sip_user_id`: integer of 9 digits. */
function sipUserId(fields: Fields): string {
  return matching(fields, 'sip_user_id', /^[0-9]{9}$/, true) as string;
}

/** Token: 1–250 characters, no whitespace. */
function token(fields: Fields, required = true): string | undefined {
  return matching(fields, 'token', /^[^\s]{1,250}$/, required);
}

/** App identifier like `com.voipgrid.vialer`. */
function appId(fields: Fields, required = true): string | undefined {
  return matching(fields, 'app', /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/, required);
}

function bool(fields: Fields, name: string, fallback: boolean): boolean {
  const value = fields[name];
  if (value === undefined || value === null || value === '') return fallback;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number' && (value === 0 || value === 1)) return value === 1;
  if (typeof value === 'string') {
    const v = value.toLowerCase();
    if (v === 'true' || v === '1' || v === 'yes') return true;
    if (v === 'false' || v === '0' || v === 'no') return false;
  }
  throw bad();
}

/** `Host` (or a trusted proxy's `X-Forwarded-Host`): a host name or IP, optional port. */
const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/**
 * `<protocol>://<host>/api/call-response/` of the incoming-call request: the address the
 * app answers to when `push.responseUrl` is empty.
 * @throws {HttpError} 400 when the Host header is not a host name (it goes into the push).
 */
function derivedResponseUrl(request: FastifyRequest): string {
  const host = request.host;
  if (host.length > 255 || !HOST.test(host)) throw bad();
  return `${request.protocol}://${host}/api/call-response/`;
}

/** Paths of the push API (their 404s and malformed URLs answer in its shape). */
const PUSH_PREFIXES = [
  '/api/incoming-call',
  '/api/call-response',
  '/api/apns-device',
  '/api/gcm-device',
  '/api/android-device',
  '/api/hangup-reason',
  '/api/log-metrics',
  '/api/check-in',
];

const PLATFORMS: Record<string, Platform> = {
  'apns-device': 'apns',
  'gcm-device': 'fcm',
  'android-device': 'fcm',
};

// ---------------------------------------------------------------------------------------------
// Plugin
// ---------------------------------------------------------------------------------------------

/** Registers the push middleware routes on `app` (use inside an encapsulated plugin). */
export async function pushRoutes(app: App, options: PushRoutesOptions): Promise<void> {
  const { wake, devices, accounts, metrics } = options;
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) {
    await app.register(formbody);
  }
  useErrorFormatter(app, pushErrorFormatter, PUSH_PREFIXES);
  const pbx = createCidrMatcher([...options.allowNetworks, ...LOOPBACK_NETWORKS]);
  app.addHook('onRequest', async (request) => {
    if (crossSiteOf(request) !== undefined) {
      request.log.info({ ip: clientOf(request).address }, 'push: cross-site request refused');
      throw new HttpError(403, 'forbidden', 'cross_site');
    }
  });
  const hangupLabels = new Set<string>();
  const reasonLabels = new Set<string>();
  const osLabels = new Set<string>();
  const directionLabels = new Set<string>();

  const docs = (summary: string) => ({ schema: { tags: ['push'], summary } });

  async function authorize(request: FastifyRequest, sipUser: string): Promise<void> {
    const decision = await accounts.check(request.headers.authorization, sipUser);
    if (decision.ok) return;
    const headers: Record<string, string> =
      decision.statusCode === 401 ? { 'www-authenticate': 'Basic realm="push"' } : {};
    request.log.info({ status: decision.statusCode }, 'push: access refused');
    throw new HttpError(
      decision.statusCode,
      MESSAGES[decision.statusCode] ?? '',
      undefined,
      headers,
    );
  }

  /** No credential at all → 401 before looking at the body. */
  function requireBasic(request: FastifyRequest): void {
    if (!/^\s*basic\s+\S/i.test(request.headers.authorization ?? '')) {
      throw new HttpError(401, 'unauthorized', undefined, {
        'www-authenticate': 'Basic realm="push"',
      });
    }
  }

  app.post(
    '/api/incoming-call/',
    docs('From the PBX: wake the app of sip_user_id; answers status=ACK or status=NAK'),
    async (request, reply) => {
      const client = clientOf(request);
      if (!client.networkTrusted || !pbx(client.address)) {
        metrics.incomingFailed.inc({ reason: 'forbidden' });
        request.log.info(
          { ip: client.address, peer: client.peer, untrusted: client.untrusted },
          'push: incoming-call from a network not allowed',
        );
        throw new HttpError(403, 'forbidden');
      }
      let call: Parameters<WakeService['incomingCall']>[0];
      try {
        const fields = fieldsOf(request);
        call = {
          sipUserId: sipUserId(fields),
          phonenumber: matching(fields, 'phonenumber', /^[0-9+()\- x]{1,32}$/, true) as string,
          callerId: text(fields, 'caller_id', false, 255) ?? '',
          callId: matching(fields, 'call_id', /^[^\s]{1,128}$/, false) ?? '',
          responseApi: options.responseUrl || derivedResponseUrl(request),
        };
      } catch (error) {
        metrics.incomingFailed.inc({ reason: 'bad_request' });
        throw error;
      }
      metrics.incomingReceived.inc();
      const abort = new AbortController();
      const onClose = () => {
        if (!reply.raw.writableEnded) abort.abort();
      };
      reply.raw.once('close', onClose);
      const answer = await wake.incomingCall(call, abort.signal);
      reply.raw.off('close', onClose);
      request.log.info(
        {
          sipUserId: call.sipUserId,
          callId: call.callId,
          status: answer.status,
          reason: answer.reason,
        },
        'push: incoming call answered',
      );
      return reply.type('text/plain; charset=utf-8').send(`status=${answer.status}`);
    },
  );

  app.post(
    '/api/call-response/',
    docs('From the app: available (default true) for the call unique_key; 202 or 404'),
    async (request, reply) => {
      const fields = fieldsOf(request);
      const uniqueKey = matching(fields, 'unique_key', /^[A-Za-z0-9_-]{1,64}$/, true) as string;
      const startText = matching(
        fields,
        'message_start_time',
        /^[0-9]{1,12}(\.[0-9]{1,9})?$/,
        true,
      );
      const response = {
        uniqueKey,
        messageStartTime: Number(startText),
        available: bool(fields, 'available', true),
      };
      let result: 'accepted' | 'not_found';
      try {
        result = await wake.callResponse(response);
      } catch (error) {
        request.log.error({ err: (error as Error).message }, 'push: cannot forward call-response');
        throw new HttpError(503, 'service unavailable');
      }
      if (result === 'not_found') throw new HttpError(404, 'not found');
      return reply.code(202).type('text/plain; charset=utf-8').send('');
    },
  );

  for (const [path, platform] of Object.entries(PLATFORMS)) {
    app.post(
      `/api/${path}/`,
      docs(`Register or update a ${platform === 'apns' ? 'APNs' : 'FCM'} device (Basic auth)`),
      async (request, reply) => {
        requireBasic(request);
        const fields = fieldsOf(request);
        const registration = {
          platform,
          sipUserId: sipUserId(fields),
          token: token(fields) as string,
          app: appId(fields) as string,
          name: text(fields, 'name', false) ?? '',
          osVersion: text(fields, 'os_version', false) ?? '',
          clientVersion: text(fields, 'client_version', false) ?? '',
          sandbox: bool(fields, 'sandbox', false),
        };
        await authorize(request, registration.sipUserId);
        const { device, created } = await devices.register(registration);
        request.log.info(
          { device: device.id, platform, sipUserId: device.sipUserId, created },
          'push: device registered',
        );
        return reply
          .code(created ? 201 : 200)
          .type('text/plain; charset=utf-8')
          .send('');
      },
    );
    app.delete(
      `/api/${path}/`,
      docs(`Remove a ${platform === 'apns' ? 'APNs' : 'FCM'} device (Basic auth)`),
      async (request, reply) => {
        requireBasic(request);
        const fields = fieldsOf(request);
        const sip = sipUserId(fields);
        const t = token(fields) as string;
        const a = appId(fields) as string;
        await authorize(request, sip);
        const removed = await devices.unregister(platform, sip, t, a);
        if (!removed) throw new HttpError(404, 'not found');
        request.log.info({ platform, sipUserId: sip }, 'push: device removed');
        return reply.code(200).type('text/plain; charset=utf-8').send('');
      },
    );
  }

  app.post(
    '/api/hangup-reason/',
    docs('Why the app did not answer a call (Basic auth)'),
    async (request, reply) => {
      requireBasic(request);
      const fields = fieldsOf(request);
      const sip = sipUserId(fields);
      const key = matching(fields, 'unique_key', /^[A-Za-z0-9_-]{1,64}$/, true);
      const reason = text(fields, 'reason', true) as string;
      await authorize(request, sip);
      metrics.hangupReasons.inc({ reason: boundedLabel(reason, hangupLabels) });
      request.log.info({ sipUserId: sip, uniqueKey: key, reason }, 'push: hangup reason');
      return reply.code(200).type('text/plain; charset=utf-8').send('');
    },
  );

  const LOG_FIELDS = [
    'os',
    'os_version',
    'app_version',
    'app_status',
    'middleware_unique_key',
    'bluetooth_audio',
    'bluetooth_device',
    'network',
    'network_operator',
    'network_signal_strength',
    'direction',
    'connection_type',
    'call_setup_successful',
    'client_country',
    'call_id',
    'log_id',
    'time_to_initial_response',
    'failed_reason',
  ];

  app.post(
    '/api/log-metrics/',
    docs('Call metrics reported by the app (Basic auth)'),
    async (request, reply) => {
      requireBasic(request);
      const fields = fieldsOf(request);
      const sip = sipUserId(fields);
      const values: Record<string, string> = {};
      for (const name of LOG_FIELDS) {
        const value = text(fields, name, false);
        if (value !== undefined) values[name] = value;
      }
      await authorize(request, sip);
      const setup = (values.call_setup_successful ?? '').toLowerCase();
      const result =
        setup === 'true' || setup === '1'
          ? 'success'
          : setup === 'false' || setup === '0'
            ? 'failure'
            : 'unknown';
      metrics.appCalls.inc({
        result,
        reason: result === 'failure' ? boundedLabel(values.failed_reason ?? '', reasonLabels) : '',
        os: boundedLabel(values.os ?? '', osLabels, 10),
        direction: boundedLabel(values.direction ?? '', directionLabels, 5),
      });
      request.log.info({ sipUserId: sip, metrics: values }, 'push: app metrics');
      return reply.code(200).type('text/plain; charset=utf-8').send('');
    },
  );

  app.post(
    '/api/check-in/',
    docs('The app is alive: marks its devices as seen (Basic auth)'),
    async (request, reply) => {
      requireBasic(request);
      const fields = fieldsOf(request);
      const sip = sipUserId(fields);
      const t = token(fields, false);
      const a = appId(fields, false);
      await authorize(request, sip);
      const updated = await devices.checkIn(sip, t, a);
      if (updated === 0) throw new HttpError(404, 'not found');
      return reply.code(200).type('text/plain; charset=utf-8').send('');
    },
  );
}
