/**
 * Apple Push Notification service client: HTTP/2 (node:http2) to `api.push.apple.com`
 * (or `api.sandbox.push.apple.com` for sandbox devices), port 443, hosts and port from config.
 *
 * Authentication (Apple, "Establishing a token-based connection to APNs"): a provider token,
 * an ES256 JWT `{alg: ES256, kid: <keyId>}.{iss: <teamId>, iat: <s>}` signed with the .p8
 * key, sent as `authorization: bearer <jwt>`, reused and refreshed every 50 minutes (Apple
 * refuses tokens older than one hour, and refreshing more often than every 20 minutes).
 * Alternatively certificate authentication (`certFile` + `certKeyFile`): TLS client
 * certificate, no authorization header.
 *
 * Each notification (Apple, "Sending notification requests to APNs"): `POST
 * /3/device/<token>` with `apns-push-type: voip`, `apns-topic: <bundle id>.voip`,
 * `apns-priority: 10`, `apns-expiration: 0` (deliver now or never), and the JSON body
 * `{"aps": {}, ...payload}`: the payload's keys at the top level beside an empty `aps`
 * dictionary, as the original middleware's APNs library (apns2 `Payload(custom=...)`) sent it
 * and the Vialer iOS app reads it (`dictionaryPayload["unique_key"]`). Answers: 200 accepted;
 * 410 `Unregistered` and 400 `BadDeviceToken` / `DeviceTokenNotForTopic` → token rejected;
 * 403 `ExpiredProviderToken` / `InvalidProviderToken` → new token, one retry; anything else
 * (429, 5xx, network) → transient error.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { signJwt } from '../../util/jwt.ts';
import type { PushPayload, PushSender, PushTarget, SendResult } from './types.ts';

/** The `push.apns` settings this sender uses. */
export interface ApnsOptions {
  keyFile: string;
  keyId: string;
  teamId: string;
  topic: string;
  certFile: string;
  certKeyFile: string;
  certPassphrase: string;
  host: string;
  sandboxHost: string;
  port: number;
  caFile: string;
  /** Per-request timeout, ms (default 10,000). */
  requestTimeoutMs?: number;
  /** Provider-token lifetime before refresh, ms (default 50 minutes). */
  tokenRefreshMs?: number;
}

const REJECTED_REASONS = new Set(['BadDeviceToken', 'Unregistered', 'DeviceTokenNotForTopic']);
const EXPIRED_REASONS = new Set(['ExpiredProviderToken', 'InvalidProviderToken']);

/**
 * Creates the APNs sender. Key and certificate files are read now.
 * With neither `keyFile` nor `certFile` set, every send answers `not_configured`.
 * @throws Error when a configured file cannot be read.
 */
export function createApnsSender(options: ApnsOptions): PushSender {
  const useToken = options.keyFile !== '';
  const useCert = !useToken && options.certFile !== '';
  const key = useToken ? readFileSync(options.keyFile, 'utf8') : '';
  const tls = {
    ...(options.caFile ? { ca: readFileSync(options.caFile, 'utf8') } : {}),
    ...(useCert
      ? {
          cert: readFileSync(options.certFile, 'utf8'),
          key: readFileSync(options.certKeyFile || options.certFile, 'utf8'),
          ...(options.certPassphrase ? { passphrase: options.certPassphrase } : {}),
        }
      : {}),
  };
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const refreshMs = options.tokenRefreshMs ?? 50 * 60_000;
  const sessions = new Map<string, http2.ClientHttp2Session>();
  let jwt: { value: string; issuedAt: number } | undefined;
  let closed = false;

  function providerToken(force = false): string {
    const now = Date.now();
    if (force || !jwt || now - jwt.issuedAt >= refreshMs) {
      jwt = {
        issuedAt: now,
        value: signJwt(
          'ES256',
          { alg: 'ES256', kid: options.keyId },
          { iss: options.teamId, iat: Math.floor(now / 1000) },
          key,
        ),
      };
    }
    return jwt.value;
  }

  function session(sandbox: boolean): http2.ClientHttp2Session {
    const host = sandbox ? options.sandboxHost : options.host;
    const authority = `https://${host.includes(':') ? `[${host}]` : host}:${options.port}`;
    const existing = sessions.get(authority);
    if (existing && !existing.closed && !existing.destroyed) return existing;
    const created = http2.connect(authority, tls);
    const forget = () => {
      if (sessions.get(authority) === created) sessions.delete(authority);
    };
    created.on('error', forget);
    created.on('close', forget);
    created.on('goaway', forget);
    created.unref();
    sessions.set(authority, created);
    return created;
  }

  function request(
    target: PushTarget,
    body: string,
    bearer: string | undefined,
  ): Promise<{ status: number; reason: string }> {
    return new Promise((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      try {
        const topicBase = target.topic || options.topic || target.app;
        const topic = topicBase.endsWith('.voip') ? topicBase : `${topicBase}.voip`;
        stream = session(target.sandbox).request({
          ':method': 'POST',
          ':path': `/3/device/${encodeURIComponent(target.token)}`,
          'apns-push-type': 'voip',
          'apns-topic': topic,
          'apns-priority': '10',
          'apns-expiration': '0',
          'apns-id': randomUUID(),
          'content-type': 'application/json',
          ...(bearer ? { authorization: `bearer ${bearer}` } : {}),
        });
      } catch (error) {
        reject(error);
        return;
      }
      let status = 0;
      const chunks: Buffer[] = [];
      stream.setTimeout(timeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
      stream.on('response', (headers) => {
        status = Number(headers[':status'] ?? 0);
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', reject);
      stream.on('close', () => {
        if (status === 0) {
          reject(new Error('APNs stream closed without an answer'));
          return;
        }
        let reason = '';
        if (chunks.length > 0) {
          try {
            reason = String(
              (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { reason?: unknown }).reason ??
                '',
            );
          } catch {
            reason = '';
          }
        }
        resolve({ status, reason });
      });
      stream.end(body);
    });
  }

  return {
    platform: 'apns',
    async send(target, payload: PushPayload): Promise<SendResult> {
      if (closed) return { ok: false, reason: 'error', detail: 'sender closed' };
      if (!useToken && !useCert) {
        return { ok: false, reason: 'not_configured', detail: 'no APNs key or certificate' };
      }
      const body = JSON.stringify({ aps: {}, ...payload });
      try {
        let answer = await request(target, body, useToken ? providerToken() : undefined);
        if (answer.status === 403 && useToken && EXPIRED_REASONS.has(answer.reason)) {
          answer = await request(target, body, providerToken(true));
        }
        if (answer.status === 200) return { ok: true };
        if (
          answer.status === 410 ||
          (answer.status === 400 && REJECTED_REASONS.has(answer.reason))
        ) {
          return { ok: false, reason: 'rejected', detail: `${answer.status} ${answer.reason}` };
        }
        return { ok: false, reason: 'error', detail: `${answer.status} ${answer.reason}` };
      } catch (error) {
        return { ok: false, reason: 'error', detail: (error as Error).message };
      }
    },
    async close() {
      closed = true;
      await Promise.all(
        [...sessions.values()].map(
          (s) =>
            new Promise<void>((resolve) => {
              if (s.closed || s.destroyed) {
                resolve();
                return;
              }
              s.close(() => resolve());
              setTimeout(() => {
                s.destroy();
                resolve();
              }, 1000).unref();
            }),
        ),
      );
      sessions.clear();
    },
  };
}
