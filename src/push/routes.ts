/**
 * Why this file is long: every endpoint of the original middleware in one plugin, each with
 * its own parsing and error rules copied from Django REST framework's behaviour (form, JSON,
 * multipart), so that its clients work unchanged; the domain logic is in devices.ts, wake.ts
 * and apps.ts.
 *
 * The push middleware API as the original middleware answers it (VoIPGRID vialer-middleware
 * `api/views.py`, `api/serializers.py`: paths, field names and rules, status codes), as a
 * Fastify plugin. Bodies are form-encoded (the Android app, the PBX), JSON (the iOS app) or
 * multipart/form-data (the original's own test client), as Django REST framework's parsers
 * accept; DELETE also reads the query string.
 *
 * | route | access | answers |
 * |---|---|---|
 * | `POST /api/incoming-call/` | PBX networks (`push.allowNetworks` + loopback) | 200 text/plain `status=ACK` / `status=NAK`; 400; 403 |
 * | `POST /api/call-response/` | open | 202; 404 unknown key or too late; 400; 503 coordination down |
 * | `POST /api/{apns,gcm,android}-device/` | account | 201 created / 200 updated; 404 unknown app; 400; 401; 403; 503 |
 * | `DELETE /api/{apns,gcm,android}-device/` | account | 200 removed / 404; 400; 401; 403; 503 |
 * | `POST /api/hangup-reason/`, `/api/check-in/` | account | 200; 404 no device; 400; 401; 403; 503 |
 * | `POST /api/log-metrics/` | account | 200; 400; 401; 403; 503 |
 *
 * "account": the request's `Authorization` header, whatever its scheme, checked by the
 * {@link AccountChecker} for the body's `sip_user_id` (`accounts.ts`).
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
import multipart from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import Type from 'typebox';
import { clientOf, crossSiteOf } from '../http/client.ts';
import { type ErrorFormatter, HttpError, useErrorFormatter } from '../http/errors.ts';
import {
  NO_SECURITY,
  plainSerializer,
  seedSchemaErrorFormatter,
  seedValidatorCompiler,
} from '../http/schemas.ts';
import type { App } from '../http/server.ts';
import { createCidrMatcher, LOOPBACK_NETWORKS } from '../util/cidr.ts';
import type { AccountChecker } from './accounts.ts';
import type { KnownApps } from './apps.ts';
import type { DeviceStore, Platform } from './devices.ts';
import {
  ACCOUNT_SECURITY,
  bad,
  bool,
  derivedResponseUrl,
  fieldsOf,
  phonenumber,
  printable,
  pushBody,
  pushFields,
  pushRoute,
  refuseInvalid,
  sipUserId,
  startTime,
  text,
} from './fields.ts';
import {
  boundedLabel,
  type PushMetrics,
  VIALER_FAILURE_LABELS,
  VIALER_HANGUP_LABELS,
  VIALER_SUCCESS_LABELS,
  VialerLabels,
} from './metrics.ts';
import type { WakeService } from './wake.ts';

/** Dependencies of {@link pushRoutes}. */
export interface PushRoutesOptions {
  wake: WakeService;
  devices: DeviceStore;
  /** The configured apps: registrations for others are answered 404. */
  apps: KnownApps;
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

/** The operationId suffix of each device path. */
const OPERATION: Record<string, string> = {
  'apns-device': 'ApnsDevice',
  'gcm-device': 'GcmDevice',
  'android-device': 'AndroidDevice',
};

const PLATFORMS: Record<string, Platform> = {
  'apns-device': 'apns',
  'gcm-device': 'fcm',
  'android-device': 'fcm',
};

// ---------------------------------------------------------------------------------------------
// Plugin
// ---------------------------------------------------------------------------------------------

/** Limits of multipart bodies: text fields only matter; files are read and ignored. */
const MULTIPART_LIMITS = {
  fields: 100,
  fieldSize: 65_536,
  files: 5,
  fileSize: 65_536,
  parts: 105,
};

/**
 * multipart/form-data bodies become a plain field object (`request.body`), as form-encoded
 * ones do. A malformed body is a 400, a too large one a 413.
 */
async function acceptMultipart(app: App): Promise<void> {
  await app.register(multipart, { limits: MULTIPART_LIMITS, throwFileSizeLimit: true });
  app.addHook('preValidation', async (request) => {
    if (!request.isMultipart()) return;
    const body: Record<string, string | string[]> = Object.create(null);
    try {
      for await (const part of request.parts()) {
        if (part.type === 'file') {
          await part.toBuffer();
          continue;
        }
        const value = typeof part.value === 'string' ? part.value : String(part.value ?? '');
        const previous = body[part.fieldname];
        body[part.fieldname] =
          previous === undefined
            ? value
            : [...(Array.isArray(previous) ? previous : [previous]), value];
      }
    } catch (error) {
      const status = (error as { statusCode?: unknown }).statusCode;
      throw status === 413 ? new HttpError(413, 'payload too large') : bad();
    }
    request.body = body;
  });
}

/** Registers the push middleware routes on `app` (use inside an encapsulated plugin). */
export async function pushRoutes(app: App, options: PushRoutesOptions): Promise<void> {
  const { wake, devices, apps, accounts, metrics } = options;
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) {
    await app.register(formbody);
  }
  if (!app.hasContentTypeParser('multipart/form-data')) await acceptMultipart(app);
  useErrorFormatter(app, pushErrorFormatter, PUSH_PREFIXES);
  app.setValidatorCompiler(seedValidatorCompiler);
  app.setSerializerCompiler(plainSerializer);
  app.setSchemaErrorFormatter(seedSchemaErrorFormatter);
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
  const vialerLabels = new VialerLabels();

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

  /** No credential at all (any scheme) → 401 before looking at the body, as the original. */
  function requireCredential(request: FastifyRequest): void {
    if ((request.headers.authorization ?? '').trim() === '') {
      throw new HttpError(401, 'unauthorized', undefined, {
        'www-authenticate': 'Basic realm="push"',
      });
    }
  }

  app.post(
    '/api/incoming-call/',
    pushRoute({
      operationId: 'pushIncomingCall',
      summary:
        'From the PBX: wake the app of sip_user_id; answers status=ACK or status=NAK (clients ' +
        'of push.allowNetworks and loopback only)',
      security: NO_SECURITY,
      body: pushBody(['sip_user_id', 'phonenumber'], ['caller_id', 'call_id']),
      answers: { 200: 'status=ACK (the app answered) or status=NAK' },
      errors: [400, 403, 413, 415],
    }),
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
        refuseInvalid(request);
        const fields = fieldsOf(request);
        call = {
          sipUserId: sipUserId(fields),
          phonenumber: phonenumber(fields),
          callerId: text(fields, 'caller_id', false) ?? '',
          callId: text(fields, 'call_id', false) ?? '',
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
          uniqueKey: answer.uniqueKey,
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
    pushRoute({
      operationId: 'pushCallResponse',
      summary: 'From the app: available (default true) for the call unique_key; 202 or 404',
      security: NO_SECURITY,
      body: pushBody(
        ['unique_key', 'message_start_time'],
        [
          'available',
          // Added by the current apps, not a field of the original: an unusable one is ignored.
          [
            'sip_user_id',
            Type.Unknown({ description: 'the SIP account (optional, ignored if unusable)' }),
          ],
        ],
      ),
      answers: { 202: 'Forwarded to the waiting incoming-call' },
      errors: [400, 403, 404, 413, 415, 503],
    }),
    async (request, reply) => {
      refuseInvalid(request);
      const fields = fieldsOf(request);
      const uniqueKey = text(fields, 'unique_key', true) as string;
      const messageStartTime = startTime(fields);
      const available = bool(fields, 'available', true);
      // The current apps add their sip_user_id; an unusable one is ignored (not a field of
      // the original's serializer).
      const given = printable(fields.sip_user_id);
      const sip =
        given === undefined ? undefined : /^\+?0*([1-9][0-9]{8})(\.0*)?$/.exec(given)?.[1];
      const response = {
        uniqueKey,
        messageStartTime,
        available,
        ...(sip === undefined ? {} : { sipUserId: sip }),
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
      pushRoute({
        operationId: `register${OPERATION[path]}`,
        summary: `Register or update a ${platform === 'apns' ? 'APNs' : 'FCM'} device`,
        security: ACCOUNT_SECURITY,
        body: pushBody(
          ['sip_user_id', 'token', 'app'],
          ['name', 'os_version', 'client_version', 'sandbox'],
        ),
        answers: { 200: 'Updated', 201: 'Registered' },
        errors: [400, 401, 403, 404, 413, 415, 503],
      }),
      async (request, reply) => {
        requireCredential(request);
        refuseInvalid(request);
        const fields = fieldsOf(request);
        const registration = {
          platform,
          sipUserId: sipUserId(fields),
          token: text(fields, 'token', true) as string,
          app: text(fields, 'app', true) as string,
          name: text(fields, 'name', false) ?? '',
          osVersion: text(fields, 'os_version', false) ?? '',
          clientVersion: text(fields, 'client_version', false) ?? '',
          sandbox: bool(fields, 'sandbox', false),
        };
        await authorize(request, registration.sipUserId);
        if (!apps.has(registration.app, platform)) {
          request.log.info({ app: registration.app, platform }, 'push: unknown app');
          throw new HttpError(404, 'not found');
        }
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
      pushRoute({
        operationId: `unregister${OPERATION[path]}`,
        summary: `Remove a ${platform === 'apns' ? 'APNs' : 'FCM'} device (fields in the body or the query)`,
        security: ACCOUNT_SECURITY,
        body: pushBody([], ['sip_user_id', 'token', 'app']),
        querystring: pushFields('form', [], ['sip_user_id', 'token', 'app']),
        answers: { 200: 'Removed' },
        errors: [400, 401, 403, 404, 413, 415, 503],
      }),
      async (request, reply) => {
        requireCredential(request);
        refuseInvalid(request);
        const fields = fieldsOf(request);
        const sip = sipUserId(fields);
        const t = text(fields, 'token', true) as string;
        const a = text(fields, 'app', true) as string;
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
    pushRoute({
      operationId: 'pushHangupReason',
      summary: 'Why the app did not answer a call; 404 when the SIP account has no device',
      security: ACCOUNT_SECURITY,
      body: pushBody(['sip_user_id', 'unique_key'], ['reason']),
      answers: { 200: 'Recorded' },
      errors: [400, 401, 403, 404, 413, 415, 503],
    }),
    async (request, reply) => {
      requireCredential(request);
      refuseInvalid(request);
      const fields = fieldsOf(request);
      const sip = sipUserId(fields);
      const uniqueKey = text(fields, 'unique_key', true);
      const reason = text(fields, 'reason', false) ?? '';
      await authorize(request, sip);
      const known = await devices.listBySipUser(sip);
      if (known.length === 0) {
        request.log.info({ sipUserId: sip, uniqueKey }, 'push: hangup reason, no device');
        throw new HttpError(404, 'not found');
      }
      metrics.hangupReasons.inc({ reason: boundedLabel(reason, hangupLabels) });
      request.log.info(
        { sipUserId: sip, uniqueKey, platform: known[0]?.platform, reason },
        'push: hangup reason',
      );
      return reply.code(200).type('text/plain; charset=utf-8').send('');
    },
  );

  /** The fields of a log-metrics body that are kept (logged, and the labels' sources). */
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
    'account_connection_type',
    'call_setup_successful',
    'client_country',
    'call_id',
    'log_id',
    'time_to_initial_response',
    'failed_reason',
    'hangup_reason',
    'codec',
    'mos',
    'attempt',
    'call_duration',
    'rx_packets',
    'tx_packets',
    'device_manufacturer',
    'device_model',
  ];

  app.post(
    '/api/log-metrics/',
    pushRoute({
      operationId: 'pushLogMetrics',
      summary: 'Call metrics reported by the app (vialer_* series on /metrics)',
      security: ACCOUNT_SECURITY,
      // The original takes any value in the other fields (unusable ones are left out).
      body: pushBody(['sip_user_id'], [], Type.Unknown()),
      answers: { 200: 'Recorded' },
      errors: [400, 401, 403, 413, 415, 503],
    }),
    async (request, reply) => {
      requireCredential(request);
      refuseInvalid(request);
      const fields = fieldsOf(request);
      const sip = sipUserId(fields);
      // The original takes any value here: one that is not short printable text is left out.
      const values: Record<string, string> = {};
      for (const name of LOG_FIELDS) {
        const value = printable(fields[name]);
        if (value !== undefined) values[name] = value;
      }
      await authorize(request, sip);
      // As the original: a hangup_reason makes a hangup count; else call_setup_successful
      // "true" / "false" a success / failure count.
      if (fields.hangup_reason !== undefined) {
        metrics.vialerHangupReason.inc(vialerLabels.labels(VIALER_HANGUP_LABELS, values));
      } else if (values.call_setup_successful === 'true') {
        metrics.vialerCallSuccess.inc(vialerLabels.labels(VIALER_SUCCESS_LABELS, values));
      } else if (values.call_setup_successful === 'false') {
        metrics.vialerCallFailure.inc(vialerLabels.labels(VIALER_FAILURE_LABELS, values));
      }
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
    pushRoute({
      operationId: 'pushCheckIn',
      summary: 'The app is alive: marks its devices as seen; 404 when none',
      security: ACCOUNT_SECURITY,
      body: pushBody(['sip_user_id'], ['token', 'app']),
      answers: { 200: 'Marked as seen' },
      errors: [400, 401, 403, 404, 413, 415, 503],
    }),
    async (request, reply) => {
      requireCredential(request);
      refuseInvalid(request);
      const fields = fieldsOf(request);
      const sip = sipUserId(fields);
      const t = text(fields, 'token', false);
      const a = text(fields, 'app', false);
      await authorize(request, sip);
      const updated = await devices.checkIn(sip, t, a);
      if (updated === 0) throw new HttpError(404, 'not found');
      return reply.code(200).type('text/plain; charset=utf-8').send('');
    },
  );
}
