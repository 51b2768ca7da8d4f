/**
 * The console's read APIs (docs/console.md), each with a TypeBox schema and an operationId in
 * the OpenAPI document, behind the access rule of `src/http/auth.ts` (module name
 * `console`). Times are epoch ms. Nothing here ever returns a secret, a push token or a
 * webhook URL.
 *
 * - `GET /api/calls`: calls in progress per AMI server, from the call engine's state.
 * - `GET /api/escalations`, `GET /api/escalations/:eventid`: Barista escalations with their
 *   people and attempts, newest first, `status` filter, paged (`limit`, `offset`).
 * - `GET /api/announcements/schedule`, `GET /api/announcements/history`: Gong's queue (with
 *   effective start and duration) and what was played, failed or cancelled (paged).
 * - `GET /api/push`: devices per platform and app (counts), the recent wake-ups, a histogram.
 * - `GET /api/health`: AMI servers, bus, database, Redis, dropped-message counters.
 *
 * The response schemas are in schemas.ts, the views the routes answer with in views.ts; the
 * escalations, announcements and push devices come from the sources the features provide
 * (sources.ts), an empty list when absent.
 */

import type { Redis } from 'ioredis';
import Type from 'typebox';
import {
  AMI_CLASSES,
  type AmiFeature,
  describeNeed,
  permissionProblems,
} from '../ami/permissions.ts';
import { createAccessRule } from '../http/auth.ts';
import { sendError } from '../http/errors.ts';
import { ACCESS_RULE_SECURITY, errorResponses } from '../http/schemas.ts';
import type { App } from '../http/server.ts';
import type { ServiceContext } from '../serve/module.ts';
import { VERSION } from '../version.ts';
import {
  AnnouncementSchema,
  CallsResponse,
  ErrorBody,
  EscalationSchema,
  HealthResponse,
  Ms,
  PageOf,
  Paging,
  PushResponse,
  ROUND_TRIP_BUCKETS_MS,
} from './schemas.ts';
import { type EscalationStatusName, sourceOf } from './sources.ts';
import type { ConsoleTracker } from './tracker.ts';
import { callsOf, counters, DROPPED_COUNTERS, serverTimeZone } from './views.ts';

export {
  CallChannelSchema,
  CallSchema,
  EscalationSchema,
  ROUND_TRIP_BUCKETS_MS,
} from './schemas.ts';

/** Options of {@link consoleRoutes}. */
export interface ConsoleRoutesOptions {
  ctx: ServiceContext;
  tracker: ConsoleTracker;
  /** Redis client for the health view, when `redis.url` is set. */
  redis: () => Redis | undefined;
}

/** An empty page (the answer of a list whose source is absent, docs/console.md). */
const EMPTY_PAGE = { total: 0, items: [] };

/** Registers the console's read APIs on `app` (inside the console plugin). */
export async function consoleRoutes(app: App, options: ConsoleRoutesOptions): Promise<void> {
  const { ctx, tracker } = options;
  app.addHook('onRequest', createAccessRule({ ...ctx.config.auth, module: 'console' }));
  const tags = ['console'];

  app.get(
    '/api/calls',
    {
      schema: {
        operationId: 'listCalls',
        security: ACCESS_RULE_SECURITY,
        tags,
        summary: 'Calls in progress, per AMI server',
        description:
          "From the call engine's state: channels grouped by Linkedid, who dials whom " +
          '(`dialing`, `dialedBy`), who is bridged with whom (`bridge`), since when. Live ' +
          'changes: the `call.*` events of `/api/events`.',
        querystring: Type.Object({ server: Type.Optional(Type.String({ maxLength: 200 })) }),
        response: {
          ...errorResponses(ErrorBody, [401, 403]),
          200: CallsResponse,
          400: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const { server } = request.query as { server?: string };
      const servers = [...ctx.ami.engines]
        .filter(([name]) => server === undefined || name === server)
        .map(([name, engine]) => ({
          server: name,
          connected: ctx.ami.clients.find((c) => c.name === name)?.connected ?? false,
          calls: callsOf(name, engine.channels.values(), tracker),
        }));
      // Serialized here: the shape is built to the schema above, and JSON.stringify is
      // several times faster than the schema serializer on a thousand calls (bench/console.ts).
      reply.serializer(JSON.stringify);
      return {
        nowMs: Date.now(),
        total: servers.reduce((n, s) => n + s.calls.length, 0),
        servers,
      };
    },
  );

  app.get(
    '/api/escalations',
    {
      schema: {
        operationId: 'listEscalations',
        security: ACCESS_RULE_SECURITY,
        tags,
        summary: 'Escalations (Barista alert calls), newest first',
        description:
          'Each with its people (state per person) and attempts (when, outcome, key). Paged ' +
          'with `limit` (1-200, default 50) and `offset`; `status` filters. Live changes: the ' +
          '`callout.*` events of `/api/events`. An empty page when the service runs without ' +
          'the callout feature.',
        querystring: Type.Object({
          status: Type.Optional(
            Type.Enum(['waiting', 'running', 'finished', 'error'], {
              description: 'only escalations in this state',
            }),
          ),
          ...Paging,
        }),
        response: {
          ...errorResponses(ErrorBody, [401, 403]),
          200: PageOf(EscalationSchema),
          400: ErrorBody,
        },
      },
    },
    async (request) => {
      const q = request.query as {
        status?: EscalationStatusName;
        limit?: number;
        offset?: number;
      };
      const limit = q.limit ?? 50;
      const offset = q.offset ?? 0;
      const source = sourceOf(app, 'escalations');
      const page = source
        ? await source.list({
            ...(q.status === undefined ? {} : { status: q.status }),
            limit,
            offset,
          })
        : EMPTY_PAGE;
      return { total: page.total, limit, offset, items: page.items };
    },
  );

  app.get(
    '/api/escalations/:eventid',
    {
      schema: {
        operationId: 'getEscalation',
        security: ACCESS_RULE_SECURITY,
        tags,
        summary: 'One escalation with its people and attempts',
        description: '404 `not_found` when unknown (always, without the callout feature).',
        params: Type.Object({ eventid: Type.String({ minLength: 1, maxLength: 100 }) }),
        response: {
          ...errorResponses(ErrorBody, [401, 403]),
          200: EscalationSchema,
          400: ErrorBody,
          404: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const { eventid } = request.params as { eventid: string };
      const source = sourceOf(app, 'escalations');
      const page = source ? await source.list({ eventid, limit: 1, offset: 0 }) : EMPTY_PAGE;
      const item = page.items[0];
      if (item === undefined) {
        return sendError(reply, request, {
          statusCode: 404,
          code: 'not_found',
          message: 'no escalation with this eventid',
          field: 'params.eventid',
          headers: {},
        });
      }
      return item;
    },
  );

  app.get(
    '/api/announcements/schedule',
    {
      schema: {
        operationId: 'listAnnouncementSchedule',
        security: ACCESS_RULE_SECURITY,
        tags,
        summary: 'Announcements to come (scheduled, playing), by effective start',
        description:
          'The computed start and the duration of each message (the queue as a timeline). ' +
          'Live changes: the `announce.*` events of `/api/events`. Empty without the ' +
          'announce feature.',
        response: {
          ...errorResponses(ErrorBody, [401, 403]),
          200: Type.Object({ nowMs: Ms('server time'), items: Type.Array(AnnouncementSchema) }),
        },
      },
    },
    async () => {
      const source = sourceOf(app, 'announcements');
      return { nowMs: Date.now(), items: source ? await source.schedule() : [] };
    },
  );

  app.get(
    '/api/announcements/history',
    {
      schema: {
        operationId: 'listAnnouncementHistory',
        security: ACCESS_RULE_SECURITY,
        tags,
        summary: 'Announcements played, failed (with the reason), spooled or cancelled',
        description:
          'Newest first; paged with `limit` (1-200, default 50) and `offset`. An empty page ' +
          'without the announce feature.',
        querystring: Type.Object(Paging),
        response: {
          ...errorResponses(ErrorBody, [401, 403]),
          200: PageOf(AnnouncementSchema),
          400: ErrorBody,
        },
      },
    },
    async (request) => {
      const q = request.query as { limit?: number; offset?: number };
      const limit = q.limit ?? 50;
      const offset = q.offset ?? 0;
      const source = sourceOf(app, 'announcements');
      const page = source ? await source.history({ limit, offset }) : EMPTY_PAGE;
      return { total: page.total, limit, offset, items: page.items };
    },
  );

  app.get(
    '/api/push',
    {
      schema: {
        operationId: 'getPushOverview',
        security: ACCESS_RULE_SECURITY,
        tags,
        summary: 'Push devices (counts per platform and app) and the recent wake-ups',
        description:
          'Never a token. Wake-ups: the last ones answered to the PBX (ACK/NAK with reason), ' +
          'their round trip (push to the app’s call-response) and a histogram of it. Live ' +
          'changes: `push.wake.answered` on `/api/events`. `enabled` false and no devices ' +
          'when push is disabled or not in the service.',
        response: {
          ...errorResponses(ErrorBody, [401, 403]),
          200: PushResponse,
        },
      },
    },
    async () => {
      const source = sourceOf(app, 'pushDevices');
      const devices = source ? await source.counts() : [];
      const counts = ROUND_TRIP_BUCKETS_MS.map(() => 0).concat([0]);
      for (const wake of tracker.wakeups) {
        if (wake.roundTripMs === undefined) continue;
        const i = ROUND_TRIP_BUCKETS_MS.findIndex((bound) => (wake.roundTripMs ?? 0) <= bound);
        const at = i === -1 ? ROUND_TRIP_BUCKETS_MS.length : i;
        counts[at] = (counts[at] ?? 0) + 1;
      }
      return {
        enabled: source !== undefined,
        devices,
        wakeups: tracker.wakeups.slice(-100).reverse(),
        histogram: { boundsMs: ROUND_TRIP_BUCKETS_MS, counts },
      };
    },
  );

  app.get(
    '/api/health',
    {
      schema: {
        operationId: 'getHealth',
        security: ACCESS_RULE_SECURITY,
        tags,
        summary: 'AMI servers, bus, database, Redis, dropped-message counters',
        description:
          'Login classes are what the AMI session proved (docs/ami.md, "Permissions"). Live ' +
          'changes: `switchboard.health` on `/api/events` (AMI connected / disconnected).',
        response: {
          ...errorResponses(ErrorBody, [401, 403]),
          200: HealthResponse,
        },
      },
    },
    async () => {
      const features: AmiFeature[] = ['calls'];
      if (ctx.config.callout.enabled) features.push('callout');
      if (ctx.config.announce.enabled) features.push('announce');
      const ami = ctx.ami.clients.map((client) => {
        const track = tracker.servers.get(client.name);
        const permissions = ctx.ami.permissions(client.name);
        const engine = ctx.ami.engines.get(client.name);
        return {
          server: client.name,
          connected: client.connected,
          sinceMs: track?.sinceMs ?? Date.now(),
          lastEventMs: track?.lastEventMs ?? null,
          lastError: track?.lastError ?? '',
          read: permissions ? AMI_CLASSES.filter((c) => permissions.read[c] === 'granted') : [],
          write: permissions ? AMI_CLASSES.filter((c) => permissions.write[c] === 'granted') : [],
          problems: permissions
            ? permissionProblems(permissions, features)
                .filter((p) => p.state === 'missing')
                .map((p) => `${p.feature}: ${describeNeed(p)}`)
            : [],
          channels: engine?.channels.size ?? 0,
          bridges: engine?.bridges.size ?? 0,
        };
      });
      const bus = ctx.bus.status();
      const database = await ctx.db.check().catch((error: unknown) => ({
        ok: false,
        detail: (error as Error).message,
      }));
      const redis = options.redis();
      return {
        nowMs: Date.now(),
        ...serverTimeZone(),
        instance: {
          name: ctx.config.instance.name,
          uuid: ctx.config.instance.uuid,
          version: VERSION,
        },
        ami,
        bus: {
          kind: bus.kind,
          connected: bus.connected,
          buffered: bus.buffered,
          published: bus.published,
          dropped: bus.dropped,
        },
        database: { dialect: ctx.db.dialect, ok: database.ok, detail: database.detail ?? '' },
        redis: { configured: redis !== undefined, connected: redis?.status === 'ready' },
        dropped: await counters(ctx, DROPPED_COUNTERS),
      };
    },
  );
}
