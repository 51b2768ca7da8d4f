/**
 * Who may register devices for a SIP account: HTTP Basic credentials checked against an
 * external account API (the seed's design: that API holds the SIP accounts and says whether
 * the user owns the one in the request), answers cached briefly; or, as the embedded default,
 * the static `push.users` list of the configuration.
 *
 * The account API contract (configurable URL, `push.accountApi.url`): `GET <url>` with the
 * app's `Authorization: Basic ...` header forwarded.
 * - 200 with a JSON body naming the SIP accounts the user owns, either
 *   `{"sip_user_ids": ["123456789", ...]}` (numbers accepted) or the VoIPGRID shape
 *   `{"app_account": "/api/phoneaccount/basic/phoneaccount/123456789/"}` (the last numeric
 *   path segment is the SIP account id).
 * - 401 or 403: the credential is wrong.
 * - anything else, a timeout, a network error or an unreadable body: the API is down → the
 *   request is answered 503, never silently allowed.
 *
 * Good and wrong answers are cached for `cacheTtlS` under the SHA-256 of the credential
 * (never the credential itself); failures are not cached. Concurrent checks of one
 * credential share one request.
 */
import { createHash } from 'node:crypto';
import { constantTimeEqual } from '../http/auth.ts';

/** Result of a check: `ok`, or the HTTP status to answer (401 wrong/missing, 403 not the owner, 503 API down). */
export type AccountDecision =
  | { ok: true; username: string }
  | { ok: false; statusCode: 401 | 403 | 503 };

/** Checks that the Basic credential of a request may act for a SIP account. */
export interface AccountChecker {
  /**
   * @param authorization the request's `Authorization` header (may be undefined).
   * @param sipUserId the SIP account id the request is about (validated by the caller).
   */
  check(authorization: string | undefined, sipUserId: string): Promise<AccountDecision>;
}

/** A static user (`push.users[]`). */
export interface StaticUser {
  username: string;
  password: string;
  sipUserIds: readonly string[];
}

/** Decodes `Basic base64(user:password)`; undefined when absent or not Basic. */
export function parseBasic(
  authorization: string | undefined,
): { username: string; password: string } | undefined {
  if (!authorization) return undefined;
  const match = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * The embedded default: the configured users. Passwords are compared in constant time
 * against every entry (no early exit).
 */
export function createStaticAccounts(users: readonly StaticUser[]): AccountChecker {
  return {
    async check(authorization, sipUserId) {
      const credential = parseBasic(authorization);
      if (!credential) return { ok: false, statusCode: 401 };
      let match: StaticUser | undefined;
      for (const user of users) {
        const userOk = constantTimeEqual(credential.username, user.username);
        const passwordOk = constantTimeEqual(credential.password, user.password);
        if (userOk && passwordOk && !match) match = user;
      }
      if (!match) return { ok: false, statusCode: 401 };
      if (!match.sipUserIds.includes(sipUserId)) return { ok: false, statusCode: 403 };
      return { ok: true, username: match.username };
    },
  };
}

/** Options of {@link createAccountApi}. */
export interface AccountApiOptions {
  /** The account API URL (`push.accountApi.url`). */
  url: string;
  /** How long answers are cached, seconds (`push.accountApi.cacheTtlS`); 0 = no cache. */
  cacheTtlS: number;
  /** Request timeout, ms (`push.accountApi.timeoutMs`). */
  timeoutMs: number;
  /** Most cached credentials (default 10,000; the oldest are dropped). */
  maxEntries?: number;
  /** Called when the API fails (for logs: never carries the credential). */
  onError?: (detail: string) => void;
}

type Answer = { kind: 'valid'; username: string; sipUserIds: Set<string> } | { kind: 'invalid' };

function sipIdsFrom(body: unknown): Set<string> | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const record = body as Record<string, unknown>;
  const ids = new Set<string>();
  if (Array.isArray(record.sip_user_ids)) {
    for (const id of record.sip_user_ids) {
      if (typeof id === 'string' || typeof id === 'number') ids.add(String(id));
    }
    return ids;
  }
  if (typeof record.app_account === 'string' || record.app_account === null) {
    const segments = String(record.app_account ?? '')
      .split('/')
      .filter((s) => /^\d+$/.test(s));
    const last = segments.at(-1);
    if (last) ids.add(last);
    return ids;
  }
  return undefined;
}

/** The external account API with a short cache (see the module comment for the contract). */
export function createAccountApi(options: AccountApiOptions): AccountChecker {
  const cache = new Map<string, { answer: Answer; expiresAt: number }>();
  const inflight = new Map<string, Promise<Answer | undefined>>();
  const maxEntries = options.maxEntries ?? 10_000;

  async function ask(authorization: string): Promise<Answer | undefined> {
    try {
      const response = await fetch(options.url, {
        headers: { authorization, accept: 'application/json' },
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      if (response.status === 401 || response.status === 403) {
        await response.body?.cancel();
        return { kind: 'invalid' };
      }
      if (response.status !== 200) {
        await response.body?.cancel();
        options.onError?.(`account API answered ${response.status}`);
        return undefined;
      }
      const ids = sipIdsFrom(await response.json());
      if (!ids) {
        options.onError?.('account API answer has neither sip_user_ids nor app_account');
        return undefined;
      }
      const username = parseBasic(authorization)?.username ?? '';
      return { kind: 'valid', username, sipUserIds: ids };
    } catch (error) {
      options.onError?.(`account API unreachable: ${(error as Error).name}`);
      return undefined;
    }
  }

  return {
    async check(authorization, sipUserId) {
      if (!parseBasic(authorization) || authorization === undefined) {
        return { ok: false, statusCode: 401 };
      }
      const key = createHash('sha256').update(authorization).digest('base64');
      const now = Date.now();
      let answer = cache.get(key);
      if (answer && answer.expiresAt <= now) {
        cache.delete(key);
        answer = undefined;
      }
      let result = answer?.answer;
      if (!result) {
        let pending = inflight.get(key);
        if (!pending) {
          pending = ask(authorization).finally(() => inflight.delete(key));
          inflight.set(key, pending);
        }
        result = await pending;
        if (!result) return { ok: false, statusCode: 503 };
        if (options.cacheTtlS > 0) {
          if (cache.size >= maxEntries) {
            const oldest = cache.keys().next().value;
            if (oldest !== undefined) cache.delete(oldest);
          }
          cache.set(key, { answer: result, expiresAt: now + options.cacheTtlS * 1000 });
        }
      }
      if (result.kind === 'invalid') return { ok: false, statusCode: 401 };
      if (!result.sipUserIds.has(sipUserId)) return { ok: false, statusCode: 403 };
      return { ok: true, username: result.username };
    },
  };
}
