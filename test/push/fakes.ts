/**
 * Test fakes for the push module, speaking the real protocols over real sockets:
 * - {@link startFakeApns}: APNs over HTTP/2 + TLS (self-signed certificate made with openssl),
 *   verifying the ES256 provider token like Apple does.
 * - {@link startFakeFcm}: the OAuth2 token endpoint (verifies the RS256 assertion) and the
 *   FCM HTTP v1 send endpoint.
 * - {@link startFakeAccountApi}: the external account API.
 * - {@link fakeApp}: answers pushes by POSTing the call-response after a delay.
 * Plus database and server helpers.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, verify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { defaultConfig } from '../../src/config/load.ts';
import type { PushConfig } from '../../src/config/schema.ts';
import { createLogger, createServer, type SwitchboardServer } from '../../src/http/server.ts';
import { createPushModule, type PushModule, type PushModuleOptions } from '../../src/push/index.ts';
import { type Database, migrate, openDatabase } from '../../src/store/db.ts';
import { tempDir } from '../support/net.ts';

export const PG_URL =
  process.env.SWITCHBOARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const run = promisify(execFile);

export { tempDir };

/** Self-signed TLS certificate for 127.0.0.1 / localhost (openssl). */
export async function selfSignedCert(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(dir, 'apns-cert.pem');
  const keyFile = join(dir, 'apns-key.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '1',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ]);
  return { certFile, keyFile };
}

/** One push received by a fake service. */
export interface ReceivedPush {
  token: string;
  /** Which host was addressed (`:authority` for APNs). */
  authority: string;
  headers: Record<string, string>;
  payload: Record<string, unknown>;
  at: number;
}

/** How a fake push service answers a token. */
export type TokenBehaviour = 'ok' | 'unregistered' | 'invalid' | 'error';

/** A fake push service (APNs or FCM). */
export interface FakePushService {
  port: number;
  pushes: ReceivedPush[];
  /** Per-token answers (default ok). */
  behaviour: Map<string, TokenBehaviour>;
  /** Called for every accepted push (the fake app hooks in here). */
  onPush?: (push: ReceivedPush) => void;
  close(): Promise<void>;
}

/** Fake APNs plus the .p8 key and CA the sender needs. */
export interface FakeApns extends FakePushService {
  /** `push.apns` settings pointing at this fake (token authentication). */
  config: PushConfig['apns'];
  /** Provider tokens seen (JWT strings). */
  providerTokens: Set<string>;
  /** Answer 403 ExpiredProviderToken to the next N requests. */
  expireNext: number;
  /** Client certificates presented (certificate authentication). */
  clientCerts: number;
}

function verifyEs256(jwt: string, publicKeyPem: string, keyId: string, teamId: string): boolean {
  const [h, c, s] = jwt.split('.');
  if (!h || !c || !s) return false;
  const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
  const claims = JSON.parse(Buffer.from(c, 'base64url').toString()) as Record<string, unknown>;
  if (header.alg !== 'ES256' || header.kid !== keyId || claims.iss !== teamId) return false;
  if (typeof claims.iat !== 'number' || Math.abs(claims.iat - Date.now() / 1000) > 3600) {
    return false;
  }
  return verify(
    'sha256',
    Buffer.from(`${h}.${c}`),
    { key: publicKeyPem, dsaEncoding: 'ieee-p1363' },
    Buffer.from(s, 'base64url'),
  );
}

/**
 * Starts a fake APNs: HTTP/2 over TLS on 127.0.0.1, `POST /3/device/<token>`, checking the
 * headers Apple requires and the provider token (ES256, key id, team id), answering per token
 * as Apple does (200, 410 Unregistered, 400 BadDeviceToken, 500 InternalServerError).
 * Production host `127.0.0.1`, sandbox host `localhost` (same port; `authority` tells them).
 */
export async function startFakeApns(dir: string, options: { requestCert?: boolean } = {}) {
  const { certFile, keyFile } = await selfSignedCert(dir);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const p8 = join(dir, 'AuthKey_TEST.p8');
  writeFileSync(p8, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const keyId = 'ABC123DEFG';
  const teamId = 'TEAM123456';
  const server = http2.createSecureServer({
    key: readFileSync(keyFile),
    cert: readFileSync(certFile),
    ...(options.requestCert ? { requestCert: true, rejectUnauthorized: false } : {}),
  });
  const fake = {
    port: 0,
    pushes: [] as ReceivedPush[],
    behaviour: new Map<string, TokenBehaviour>(),
    providerTokens: new Set<string>(),
    expireNext: 0,
    clientCerts: 0,
  } as unknown as FakeApns;
  server.on('secureConnection', (socket) => {
    if (socket.getPeerCertificate?.() && Object.keys(socket.getPeerCertificate()).length > 0) {
      fake.clientCerts += 1;
    }
  });
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const answer = (status: number, reason?: string) => {
        stream.respond({ ':status': status, 'apns-id': String(headers['apns-id'] ?? '') });
        stream.end(reason ? JSON.stringify({ reason }) : undefined);
      };
      const path = String(headers[':path'] ?? '');
      const match = /^\/3\/device\/([^/]+)$/.exec(path);
      if (headers[':method'] !== 'POST' || !match?.[1]) return answer(404, 'BadPath');
      if (headers['apns-push-type'] !== 'voip') return answer(400, 'InvalidPushType');
      if (!String(headers['apns-topic'] ?? '').endsWith('.voip')) return answer(400, 'BadTopic');
      if (headers['apns-priority'] !== '10') return answer(400, 'BadPriority');
      if (headers['apns-expiration'] !== '0') return answer(400, 'BadExpirationDate');
      const auth = String(headers.authorization ?? '');
      if (!options.requestCert) {
        const jwt = auth.replace(/^bearer /, '');
        const known = fake.providerTokens.has(jwt);
        if (
          !known &&
          (!auth.startsWith('bearer ') || !verifyEs256(jwt, publicPem, keyId, teamId))
        ) {
          return answer(403, 'InvalidProviderToken');
        }
        if (fake.expireNext > 0) {
          fake.expireNext -= 1;
          return answer(403, 'ExpiredProviderToken');
        }
        fake.providerTokens.add(jwt);
      }
      const token = decodeURIComponent(match[1]);
      const behaviour = fake.behaviour.get(token) ?? 'ok';
      if (behaviour === 'unregistered') return answer(410, 'Unregistered');
      if (behaviour === 'invalid') return answer(400, 'BadDeviceToken');
      if (behaviour === 'error') return answer(500, 'InternalServerError');
      const push: ReceivedPush = {
        token,
        authority: String(headers[':authority'] ?? ''),
        headers: Object.fromEntries(
          Object.entries(headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : String(v)]),
        ),
        payload: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown>,
        at: Date.now(),
      };
      fake.pushes.push(push);
      answer(200);
      fake.onPush?.(push);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.port = (server.address() as AddressInfo).port;
  fake.config = {
    keyFile: p8,
    keyId,
    teamId,
    topic: 'com.example.voip-app',
    certFile: '',
    certKeyFile: '',
    certPassphrase: '',
    host: '127.0.0.1',
    sandboxHost: 'localhost',
    port: fake.port,
    caFile: certFile,
  };
  fake.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Drop open sessions so close completes.
      setTimeout(() => resolve(), 200).unref();
    });
  return fake;
}

/** Fake FCM: token endpoint + send endpoint, plus the service-account file for it. */
export interface FakeFcm extends FakePushService {
  config: PushConfig['fcm'];
  /** Token requests received (valid ones). */
  tokenRequests: number;
  /** `expires_in` the token endpoint answers (default 3600). */
  expiresInS: number;
  /** Answer 401 to the next N sends. */
  unauthorizedNext: number;
  /** Access tokens issued. */
  issued: string[];
}

/**
 * Starts a fake Google OAuth2 token endpoint (`POST /token`, verifying the RS256 JWT
 * assertion against the service account's public key, scope and audience) and FCM HTTP v1
 * (`POST /v1/projects/<id>/messages:send`, answering per token as FCM does: 200 `{name}`,
 * 404 UNREGISTERED, 400 INVALID_ARGUMENT on message.token, 500 INTERNAL).
 */
export async function startFakeFcm(dir: string): Promise<FakeFcm> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const fake = {
    port: 0,
    pushes: [] as ReceivedPush[],
    behaviour: new Map<string, TokenBehaviour>(),
    tokenRequests: 0,
    expiresInS: 3600,
    unauthorizedNext: 0,
    issued: [] as string[],
  } as unknown as FakeFcm;
  const projectId = 'switchboard-test';
  const clientEmail = 'push@switchboard-test.iam.gserviceaccount.com';
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const base = `http://127.0.0.1:${fake.port}`;
      if (req.method === 'POST' && req.url === '/token') {
        const form = new URLSearchParams(body);
        const assertion = form.get('assertion') ?? '';
        const [h, c, s] = assertion.split('.');
        const ok =
          form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:jwt-bearer' &&
          h &&
          c &&
          s &&
          verify('sha256', Buffer.from(`${h}.${c}`), publicKey, Buffer.from(s, 'base64url'));
        const claims = ok
          ? (JSON.parse(Buffer.from(c as string, 'base64url').toString()) as Record<
              string,
              unknown
            >)
          : {};
        if (
          !ok ||
          claims.iss !== clientEmail ||
          claims.aud !== `${base}/token` ||
          claims.scope !== 'https://www.googleapis.com/auth/firebase.messaging'
        ) {
          return json(res, 400, { error: 'invalid_grant' });
        }
        fake.tokenRequests += 1;
        const token = `ya29.fake-${fake.tokenRequests}`;
        fake.issued.push(token);
        return json(res, 200, {
          access_token: token,
          expires_in: fake.expiresInS,
          token_type: 'Bearer',
        });
      }
      if (req.method === 'POST' && req.url === `/v1/projects/${projectId}/messages:send`) {
        const bearer = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
        if (!fake.issued.includes(bearer) || fake.unauthorizedNext > 0) {
          if (fake.unauthorizedNext > 0) fake.unauthorizedNext -= 1;
          return json(res, 401, { error: { code: 401, status: 'UNAUTHENTICATED' } });
        }
        const message = (JSON.parse(body) as { message: Record<string, unknown> }).message;
        const token = String(message.token ?? '');
        const behaviour = fake.behaviour.get(token) ?? 'ok';
        if (behaviour === 'unregistered') {
          return json(res, 404, {
            error: {
              code: 404,
              message: 'Requested entity was not found.',
              status: 'NOT_FOUND',
              details: [
                {
                  '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError',
                  errorCode: 'UNREGISTERED',
                },
              ],
            },
          });
        }
        if (behaviour === 'invalid') {
          return json(res, 400, {
            error: {
              code: 400,
              message: 'The registration token is not a valid FCM registration token',
              status: 'INVALID_ARGUMENT',
              details: [
                {
                  '@type': 'type.googleapis.com/google.rpc.BadRequest',
                  fieldViolations: [
                    { field: 'message.token', description: 'Invalid registration token' },
                  ],
                },
              ],
            },
          });
        }
        if (behaviour === 'error') {
          return json(res, 500, { error: { code: 500, status: 'INTERNAL' } });
        }
        const push: ReceivedPush = {
          token,
          authority: String(req.headers.host ?? ''),
          headers: { android: JSON.stringify(message.android) },
          payload: (message.data ?? {}) as Record<string, unknown>,
          at: Date.now(),
        };
        fake.pushes.push(push);
        json(res, 200, { name: `projects/${projectId}/messages/${fake.pushes.length}` });
        fake.onPush?.(push);
        return;
      }
      json(res, 404, { error: { code: 404, status: 'NOT_FOUND' } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.port = (server.address() as AddressInfo).port;
  const accountFile = join(dir, 'service-account.json');
  writeFileSync(
    accountFile,
    JSON.stringify({
      type: 'service_account',
      project_id: projectId,
      private_key_id: 'key-1',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      client_email: clientEmail,
    }),
  );
  fake.config = {
    serviceAccountFile: accountFile,
    projectId: '',
    baseUrl: `http://127.0.0.1:${fake.port}`,
    tokenUrl: `http://127.0.0.1:${fake.port}/token`,
  };
  fake.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return fake;
}

/**
 * A fake app: for every call push, POSTs the call-response (`unique_key`, the push's
 * `message_start_time` echoed, `available`, plus `extra(push)`) to `response_api` (or
 * `url(push)`) after `delayMs`, form-encoded (the Android app), as JSON (the iOS app: the
 * APNs payload's values as they came) or multipart.
 */
export function fakeApp(
  service: FakePushService,
  options: {
    delayMs?: number;
    available?: (push: ReceivedPush) => boolean | undefined;
    url?: (push: ReceivedPush) => string;
    onAnswer?: (status: number, push: ReceivedPush) => void;
    extra?: (push: ReceivedPush) => Record<string, string>;
    encoding?: 'form' | 'json' | 'multipart';
  } = {},
): void {
  service.onPush = (push) => {
    if (push.payload.type !== 'call') return;
    const available = options.available?.(push);
    if (available === undefined && options.available) return; // this device stays silent
    setTimeout(async () => {
      const url = options.url?.(push) ?? String(push.payload.response_api);
      const fields = {
        unique_key: String(push.payload.unique_key),
        message_start_time: String(push.payload.message_start_time),
        available: String(available ?? true),
        ...options.extra?.(push),
      };
      const encoding = options.encoding ?? 'form';
      const response =
        encoding === 'json'
          ? await postJson(url, {
              ...fields,
              unique_key: push.payload.unique_key,
              message_start_time: push.payload.message_start_time,
            })
          : encoding === 'multipart'
            ? await postMultipart(url, fields)
            : await postForm(url, fields);
      options.onAnswer?.(response.status, push);
    }, options.delayMs ?? 0);
  };
}

/** One user of the fake account API. */
export interface FakeAccountUser {
  /** The exact `Authorization` header this user sends (any scheme). */
  authorization: string;
  /** The SIP account id of the user's app account; null = the user has no app account. */
  sipUserId: string | null;
  /** Answer the profile in the single-lookup shape `{sip_user_ids: [...]}` instead. */
  sipUserIds?: string[];
}

/** A request the fake account API received. */
export interface FakeAccountRequest {
  path: string;
  authorization: string;
}

/** The fake account API's state, changeable by a test. */
export interface FakeAccountApi {
  port: number;
  url: string;
  requests: FakeAccountRequest[];
  /** Forces this status on every answer (0 = normal answers). */
  status: number;
  /** Forces this status on the phone-account answers only (0 = normal). */
  accountStatus: number;
  /** Replaces the `app_account` of every profile (SSRF tests). */
  appAccount?: string | null;
  close(): Promise<void>;
}

/**
 * A fake VoIPGRID API speaking its real shapes:
 * `GET /api/permission/systemuser/profile/` → the system user (`app_account`: the path of
 * the phone account, by its internal id, not the SIP account id), and
 * `GET /api/phoneaccount/basic/phoneaccount/<id>/` → the phone account (`account_id`: the
 * SIP account id, a number). Unknown `Authorization` → 401 `{"detail": ...}`; a phone
 * account of another user → 403.
 */
export async function startFakeAccountApi(users: FakeAccountUser[]): Promise<FakeAccountApi> {
  const internalId = (index: number) => 31_000 + index;
  const state = {
    port: 0,
    url: '',
    requests: [] as FakeAccountRequest[],
    status: 0,
    accountStatus: 0,
    close: async () => {},
  } as FakeAccountApi;
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const authorization = String(req.headers.authorization ?? '');
    const path = String(req.url ?? '');
    state.requests.push({ path, authorization });
    if (state.status) return json(res, state.status, { detail: 'forced' });
    const index = users.findIndex((u) => u.authorization === authorization);
    const user = users[index];
    if (!user) {
      return json(res, 401, { detail: 'Authentication credentials were not provided.' });
    }
    if (path === '/api/permission/systemuser/profile/') {
      if (user.sipUserIds) return json(res, 200, { sip_user_ids: user.sipUserIds });
      const own =
        user.sipUserId === null
          ? null
          : `/api/phoneaccount/basic/phoneaccount/${internalId(index)}/`;
      return json(res, 200, {
        id: 40 + index,
        email: `user${index}@example.com`,
        first_name: 'Test',
        last_name: `User ${index}`,
        outgoing_cli: '+31501234567',
        mobile_nr: '+31612345678',
        client: '/api/apprelation/client/7/',
        partner: null,
        app_account: state.appAccount === undefined ? own : state.appAccount,
      });
    }
    const account = /^\/api\/phoneaccount\/basic\/phoneaccount\/(\d+)\/$/.exec(path);
    if (account) {
      if (state.accountStatus) return json(res, state.accountStatus, { detail: 'forced' });
      if (Number(account[1]) !== internalId(index) || user.sipUserId === null) {
        return json(res, 403, { detail: 'You do not have permission to perform this action.' });
      }
      return json(res, 200, {
        id: internalId(index),
        account_id: Number(user.sipUserId),
        internal_number: 200 + index,
        description: `Vialer app of user ${index}`,
        password: 'sip-password-not-for-logs',
        country: 'nl',
      });
    }
    return json(res, 404, { detail: 'Not found.' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.url = `http://127.0.0.1:${state.port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

/** `Token <email>:<api token>`, the header the current Vialer apps send. */
export function tokenHeader(email: string, apiToken: string): string {
  return `Token ${email}:${apiToken}`;
}

/** Collects pino lines. */
export function logSink() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      callback();
    },
  });
  return { stream, lines, text: () => lines.join('\n') };
}

/** Opens a migrated test database: SQLite in a temp dir, or a fresh PostgreSQL schema. */
export async function openTestDb(
  kind: 'sqlite' | 'postgres',
  schema = `push_${process.pid}_${Date.now().toString(36)}`,
): Promise<Database> {
  const db =
    kind === 'sqlite'
      ? await openDatabase(join(tempDir(), 'push.db'))
      : await openDatabase(PG_URL, { schema });
  const { pushMigrations } = await import('../../src/push/devices.ts');
  await migrate(db, [pushMigrations]);
  return db;
}

/** Drops a PostgreSQL test schema. */
export async function dropSchema(schema: string): Promise<void> {
  const db = await openDatabase(PG_URL);
  const { sql } = await import('kysely');
  await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(db.db);
  await db.close();
}

/** App ids the tests register (each on APNs and FCM), beside the default Vialer app. */
export const TEST_APPS = ['com.example.app', 'com.example.voip-app', 'com.x', 'com.bench'];

/**
 * A push config for tests: fast budget, static user alice (SIP 123456789, 987654321), the
 * {@link TEST_APPS} known.
 */
export function testPushConfig(overrides: Partial<PushConfig> = {}): PushConfig {
  const push = defaultConfig().push;
  const app = defaultConfig().push.apps[0];
  return {
    ...push,
    budgetMs: 1500,
    intervalMs: 400,
    maxPushes: 3,
    apps: [
      ...push.apps,
      ...TEST_APPS.map((id) => ({ ...structuredClone(app as NonNullable<typeof app>), id })),
    ],
    users: [
      { username: 'alice', password: 'alice-password', sipUserIds: ['123456789', '987654321'] },
      { username: 'bob', password: 'bob-password', sipUserIds: ['555555555'] },
    ],
    ...overrides,
  };
}

/** Basic header. */
export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** A running server with the push module. */
export interface PushServer {
  server: SwitchboardServer;
  push: PushModule;
  url: string;
  logs: ReturnType<typeof logSink>;
  close(): Promise<void>;
}

/** Starts createServer + createPushModule on 127.0.0.1:0. */
export async function startPushServer(
  options: Omit<PushModuleOptions, 'registry' | 'logger'> & { logLevel?: string },
): Promise<PushServer> {
  const config = defaultConfig();
  config.http.listen = '127.0.0.1:0';
  config.http.docs = false;
  const logs = logSink();
  const logger = createLogger(options.logLevel ?? 'info', logs.stream);
  const server = await createServer({ config, logger });
  const push = createPushModule({ ...options, registry: server.metrics.registry, logger });
  await push.start();
  await server.app.register(push.plugin);
  const { url } = await server.listen();
  return {
    server,
    push,
    url,
    logs,
    async close() {
      await server.close(2000);
      await push.stop();
    },
  };
}

/** POSTs a form. */
export async function postForm(
  url: string,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
  method = 'POST',
): Promise<{ status: number; body: string; contentType: string }> {
  const response = await fetch(url, {
    method,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
  return {
    status: response.status,
    body: await response.text(),
    contentType: response.headers.get('content-type') ?? '',
  };
}

/** Sends `fields` as multipart/form-data (the original's test client, Django's APIClient). */
export async function postMultipart(
  url: string,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
  method = 'POST',
): Promise<{ status: number; body: string; contentType: string }> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  const response = await fetch(url, { method, headers, body: form });
  return {
    status: response.status,
    body: await response.text(),
    contentType: response.headers.get('content-type') ?? '',
  };
}

/** Sends a JSON body (the iOS app's AFJSONRequestSerializer, the Android app's log-metrics). */
export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  method = 'POST',
): Promise<{ status: number; body: string; contentType: string }> {
  const response = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    body: await response.text(),
    contentType: response.headers.get('content-type') ?? '',
  };
}

/** Reads one sample of a metric from the Prometheus text. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}) {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (ok) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/** A push server in a second OS process (test/push/fixtures/push-process.ts). */
export interface PushProcess {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts {@link PushProcess}: by default sharing PostgreSQL `schema` and Redis `keyPrefix`;
 * `dbUrl` (e.g. a SQLite file) and `redisUrl: ''` (in-process coordination) override.
 */
export async function startPushProcess(settings: {
  push: PushConfig;
  schema?: string;
  keyPrefix?: string;
  dbUrl?: string;
  redisUrl?: string;
}): Promise<PushProcess> {
  const { spawn } = await import('node:child_process');
  const script = new URL('./fixtures/push-process.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, [script], {
    env: {
      ...process.env,
      PUSH_PROCESS_CONFIG: JSON.stringify({
        dbUrl: PG_URL,
        redisUrl: REDIS_URL,
        ...settings,
      }),
    },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const first = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const newline = buffer.indexOf('\n');
      if (newline >= 0) resolve(buffer.slice(0, newline));
    });
    child.once('exit', (code) => reject(new Error(`push process exited (${code})`)));
  });
  const { url, pid } = JSON.parse(first) as { url: string; pid: number };
  return {
    url,
    pid,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) {
          resolve();
          return;
        }
        child.once('exit', () => resolve());
        child.stdin.end();
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}
