/**
 * Firebase Cloud Messaging HTTP v1 client (the legacy API the seed used is gone).
 *
 * OAuth2 (Google, "Using OAuth 2.0 for Server to Server Applications"): a JWT assertion
 * `{alg: RS256, typ: JWT, kid: <private_key_id>}.{iss: <client_email>, scope:
 * https://www.googleapis.com/auth/firebase.messaging, aud: <token URL>, iat, exp: iat+3600}`
 * signed with the service account's RSA key, POSTed form-encoded to the token URL
 * (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>`); the answer's
 * `access_token` is cached until 60 s before `expires_in` runs out; concurrent sends share
 * one token request.
 *
 * Each notification (Firebase, "projects.messages.send"): `POST
 * <baseUrl>/v1/projects/<project>/messages:send` with `{message: {token, data, android:
 * {priority: "HIGH", ttl: "0s"}}}` (data values are strings; TTL 0 = now or never). The
 * payload's `message_start_time` (epoch seconds) is written with exactly seven decimals
 * ({@link fcmStartTime}), the form of the original's Python `time()` that the Vialer Android
 * app parses (`VialerStatistics.calculateTimeToInitialResponse`: the digits without the
 * point, divided by 10,000, are epoch ms) and echoes back unchanged in its call-response.
 * Answers: 200 accepted; 404 `UNREGISTERED` / `NOT_FOUND` and 400 `INVALID_ARGUMENT` about the
 * token → token rejected; 401 → new access token, one retry; else (429, 5xx, network) →
 * transient error.
 */
import { readFileSync } from 'node:fs';
import { signJwt } from '../../util/jwt.ts';
import type { PushPayload, PushSender, PushTarget, SendResult } from './types.ts';

/** The `push.fcm` settings this sender uses. */
export interface FcmOptions {
  serviceAccountFile: string;
  projectId: string;
  baseUrl: string;
  tokenUrl: string;
  /** Per-request timeout, ms (default 10,000). */
  requestTimeoutMs?: number;
}

/** The fields of a Google service-account JSON file this sender reads. */
interface ServiceAccount {
  client_email: string;
  private_key: string;
  private_key_id?: string;
  project_id?: string;
}

/** FCM OAuth2 scope. */
export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';

/**
 * `message_start_time` as an FCM data string: epoch seconds with exactly seven decimals,
 * built from whole milliseconds (`1700000000123` → `"1700000000.1230000"`), so the Android
 * app's digits-without-the-point / 10,000 gives back the same ms and Switchboard's round trip
 * (`Number(value) * 1000`) stays exact to the ms.
 * @param seconds epoch seconds (ms resolution).
 */
export function fcmStartTime(seconds: number): string {
  const ms = Math.round(seconds * 1000);
  const whole = Math.floor(ms / 1000);
  return `${whole}.${String(ms - whole * 1000).padStart(3, '0')}0000`;
}

interface FcmError {
  error?: {
    status?: string;
    message?: string;
    details?: Array<{
      errorCode?: string;
      fieldViolations?: Array<{ field?: string }>;
    }>;
  };
}

function isTokenRejection(status: number, body: FcmError): boolean {
  const error = body.error;
  const codes = (error?.details ?? []).map((d) => d.errorCode).filter(Boolean);
  if (codes.includes('UNREGISTERED')) return true;
  if (status === 404 && (error?.status === 'NOT_FOUND' || error?.status === 'UNREGISTERED')) {
    return true;
  }
  if (status === 400 && error?.status === 'INVALID_ARGUMENT') {
    const fields = (error.details ?? []).flatMap((d) =>
      (d.fieldViolations ?? []).map((v) => v.field ?? ''),
    );
    if (fields.some((f) => f === 'message.token')) return true;
    return /registration token/i.test(error.message ?? '');
  }
  return false;
}

/**
 * Creates the FCM sender. The service-account file is read now.
 * With no `serviceAccountFile`, every send answers `not_configured`.
 * @throws Error when the file cannot be read or lacks `client_email` / `private_key`, or no
 *   project id is known.
 */
export function createFcmSender(options: FcmOptions): PushSender {
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  let account: ServiceAccount | undefined;
  let projectId = options.projectId;
  if (options.serviceAccountFile) {
    const parsed = JSON.parse(readFileSync(options.serviceAccountFile, 'utf8')) as ServiceAccount;
    if (typeof parsed.client_email !== 'string' || typeof parsed.private_key !== 'string') {
      throw new Error('push.fcm.serviceAccountFile: client_email or private_key missing');
    }
    account = parsed;
    projectId ||= parsed.project_id ?? '';
    if (!projectId) throw new Error('push.fcm: no project id (set push.fcm.projectId)');
  }
  let cached: { token: string; expiresAt: number } | undefined;
  let fetching: Promise<string> | undefined;
  let closed = false;

  async function fetchToken(sa: ServiceAccount): Promise<string> {
    const iat = Math.floor(Date.now() / 1000);
    const assertion = signJwt(
      'RS256',
      { alg: 'RS256', typ: 'JWT', ...(sa.private_key_id ? { kid: sa.private_key_id } : {}) },
      { iss: sa.client_email, scope: FCM_SCOPE, aud: options.tokenUrl, iat, exp: iat + 3600 },
      sa.private_key,
    );
    const response = await fetch(options.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
        assertion,
      }).toString(),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new Error(`token endpoint answered ${response.status}`);
    }
    const body = (await response.json()) as { access_token?: unknown; expires_in?: unknown };
    if (typeof body.access_token !== 'string') throw new Error('token endpoint: no access_token');
    const expiresInS = typeof body.expires_in === 'number' ? body.expires_in : 3600;
    cached = {
      token: body.access_token,
      expiresAt: Date.now() + Math.max(0, expiresInS - 60) * 1000,
    };
    return body.access_token;
  }

  async function accessToken(sa: ServiceAccount, force: boolean): Promise<string> {
    if (!force && cached && cached.expiresAt > Date.now()) return cached.token;
    if (force) cached = undefined;
    fetching ??= fetchToken(sa).finally(() => {
      fetching = undefined;
    });
    return fetching;
  }

  async function post(target: PushTarget, payload: PushPayload, bearer: string) {
    const data: Record<string, string> = {};
    for (const [k, v] of Object.entries(payload)) {
      data[k] = k === 'message_start_time' && typeof v === 'number' ? fcmStartTime(v) : String(v);
    }
    const response = await fetch(
      `${options.baseUrl.replace(/\/+$/, '')}/v1/projects/${encodeURIComponent(projectId)}/messages:send`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          message: { token: target.token, data, android: { priority: 'HIGH', ttl: '0s' } },
        }),
        signal: AbortSignal.timeout(timeoutMs),
      },
    );
    const text = await response.text();
    let body: FcmError = {};
    try {
      body = JSON.parse(text) as FcmError;
    } catch {
      body = {};
    }
    return { status: response.status, body };
  }

  return {
    platform: 'fcm',
    async send(target, payload): Promise<SendResult> {
      if (closed) return { ok: false, reason: 'error', detail: 'sender closed' };
      if (!account) {
        return { ok: false, reason: 'not_configured', detail: 'no FCM service account' };
      }
      try {
        let answer = await post(target, payload, await accessToken(account, false));
        if (answer.status === 401) {
          answer = await post(target, payload, await accessToken(account, true));
        }
        if (answer.status === 200) return { ok: true };
        const status = answer.body.error?.status ?? '';
        if (isTokenRejection(answer.status, answer.body)) {
          return { ok: false, reason: 'rejected', detail: `${answer.status} ${status}` };
        }
        return { ok: false, reason: 'error', detail: `${answer.status} ${status}` };
      } catch (error) {
        return { ok: false, reason: 'error', detail: (error as Error).message };
      }
    },
    async close() {
      closed = true;
    },
  };
}
