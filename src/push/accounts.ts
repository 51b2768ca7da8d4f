/**
 * Who may act for a SIP account: the app's `Authorization` header, forwarded unchanged to an
 * external account API (the original middleware's design, `api/authentication.py`), answers
 * cached briefly; or, as the embedded default, the static `push.users` list of the
 * configuration.
 *
 * The account API (`push.accountApi`, the VoIPGRID API shape by default) is asked in two
 * steps, both with the request's `Authorization` header forwarded as it came (any scheme:
 * `Basic ...`, `Token <email>:<api token>` as the current Vialer apps send, `Bearer ...`):
 *
 * 1. `GET <baseUrl><profilePath>` (default `/api/permission/systemuser/profile/`): the user's
 *    profile; its `app_account` field (`appAccountField`) is the path of the user's phone
 *    account (e.g. `/api/phoneaccount/basic/phoneaccount/31337/`, the phone account's internal
 *    id, not the SIP account id); empty or null: the user has no app account → 403.
 * 2. `GET <baseUrl><app_account>`: the phone account; its `account_id` (`accountIdField`) is
 *    the SIP account id, compared with the request's `sip_user_id` (different → 403).
 *
 * At each step 200 goes on, 401 → 401, 403 → 403, anything else (a redirect, 5xx, a timeout,
 * a network error, an unreadable body, a missing field) → 503: never a silent allow. The
 * second GET only ever goes to the configured account API's origin: an `app_account` that is
 * an absolute URL elsewhere or a protocol-relative `//host` path is refused (503, logged), and
 * redirects are not followed (SSRF: the answer must not choose where the credential goes).
 * A profile answer with a `sip_user_ids` list (the single-lookup shape of earlier Switchboard
 * versions) is used as is, without the second GET.
 *
 * Good and refused answers are cached for `cacheTtlS` under the SHA-256 of the header (never
 * the header itself); failures are not cached. Concurrent checks of one header share one
 * lookup.
 */
import { createHash } from 'node:crypto';
import { constantTimeEqual } from '../http/auth.ts';

/** Result of a check: `ok`, or the HTTP status to answer (401 wrong/missing, 403 not the owner, 503 API down). */
export type AccountDecision = { ok: true } | { ok: false; statusCode: 401 | 403 | 503 };

/** Checks that the credential of a request may act for a SIP account. */
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

/**
 * Reads a user and password from `Basic base64(user:password)` (RFC 7617) or from
 * `Token user:password` (the VoIPGRID API-token scheme the Vialer apps use: user = e-mail,
 * password = API token). Undefined when absent or another scheme.
 */
export function parseCredential(
  authorization: string | undefined,
): { username: string; password: string } | undefined {
  if (!authorization) return undefined;
  const basic = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
  const token = basic ? undefined : /^\s*token\s+(\S+)\s*$/i.exec(authorization);
  const pair = basic?.[1]
    ? Buffer.from(basic[1], 'base64').toString('utf8')
    : (token?.[1] ?? undefined);
  if (pair === undefined) return undefined;
  const colon = pair.indexOf(':');
  if (colon <= 0) return undefined;
  return { username: pair.slice(0, colon), password: pair.slice(colon + 1) };
}

/**
 * The embedded default: the configured users, with `Basic` or `Token user:password`.
 * Passwords are compared in constant time against every entry (no early exit).
 */
export function createStaticAccounts(users: readonly StaticUser[]): AccountChecker {
  return {
    async check(authorization, sipUserId) {
      const credential = parseCredential(authorization);
      if (!credential) return { ok: false, statusCode: 401 };
      let match: StaticUser | undefined;
      for (const user of users) {
        const userOk = constantTimeEqual(credential.username, user.username);
        const passwordOk = constantTimeEqual(credential.password, user.password);
        if (userOk && passwordOk && !match) match = user;
      }
      if (!match) return { ok: false, statusCode: 401 };
      if (!match.sipUserIds.includes(sipUserId)) return { ok: false, statusCode: 403 };
      return { ok: true };
    },
  };
}

/** Options of {@link createAccountApi}. */
export interface AccountApiOptions {
  /**
   * The account API (`push.accountApi.baseUrl`), e.g. `https://partner.voipgrid.nl`: the
   * profile path and the `app_account` path are appended to it, and the second GET must stay
   * on its origin.
   */
  baseUrl: string;
  /** Path of the profile (`push.accountApi.profilePath`), starting with `/`. */
  profilePath: string;
  /** Profile field with the phone-account path (default `app_account`). */
  appAccountField?: string;
  /** Phone-account field with the SIP account id (default `account_id`). */
  accountIdField?: string;
  /** How long answers are cached, seconds (`push.accountApi.cacheTtlS`); 0 = no cache. */
  cacheTtlS: number;
  /** Timeout of each request, ms (`push.accountApi.timeoutMs`). */
  timeoutMs: number;
  /** Most cached credentials (default 10,000; the oldest are dropped). */
  maxEntries?: number;
  /** Called when the API fails (for logs: never carries the credential). */
  onError?: (detail: string) => void;
}

/**
 * The {@link AccountApiOptions} location from the `push.accountApi` section: `baseUrl` +
 * `profilePath`, or the deprecated `url` (a full profile URL: base = its origin). Undefined
 * when neither is set (static users).
 */
export function accountApiLocation(section: {
  baseUrl: string;
  profilePath: string;
  url: string;
}): { baseUrl: string; profilePath: string } | undefined {
  if (section.baseUrl !== '') return { baseUrl: section.baseUrl, profilePath: section.profilePath };
  if (section.url === '') return undefined;
  const url = new URL(section.url);
  return { baseUrl: url.origin, profilePath: `${url.pathname}${url.search}` };
}

type Answer = { kind: 'valid'; sipUserIds: Set<string> } | { kind: 'refused'; status: 401 | 403 };

/** Thrown inside a lookup: the account API is down or answered something unusable (→ 503). */
class Unusable extends Error {}

/**
 * The URL of the second GET: `base` + `path` when `path` is a path (`/...`, not `//...`), or
 * `path` itself when it is an absolute URL on `base`'s origin; undefined otherwise.
 */
export function followUrl(base: string, path: string): URL | undefined {
  const origin = new URL(base).origin;
  let url: URL;
  try {
    if (/^[a-z][a-z0-9+.-]*:/i.test(path)) url = new URL(path);
    else if (path.startsWith('/') && !/^\/[/\\]/.test(path)) {
      url = new URL(`${base.replace(/\/+$/, '')}${path}`);
    } else return undefined;
  } catch {
    return undefined;
  }
  return url.origin === origin && url.username === '' && url.password === '' ? url : undefined;
}

/** The external account API with a short cache (see the module comment for the contract). */
export function createAccountApi(options: AccountApiOptions): AccountChecker {
  const cache = new Map<string, { answer: Answer; expiresAt: number }>();
  const inflight = new Map<string, Promise<Answer | undefined>>();
  const maxEntries = options.maxEntries ?? 10_000;
  const appAccountField = options.appAccountField ?? 'app_account';
  const accountIdField = options.accountIdField ?? 'account_id';
  const profileUrl = followUrl(options.baseUrl, options.profilePath);
  if (!profileUrl) throw new Error('push.accountApi: profilePath must be a path on baseUrl');

  /** GET with the header: the JSON object, a refusal, or {@link Unusable}. */
  async function get(
    url: URL,
    authorization: string,
    step: string,
  ): Promise<{ ok: true; body: Record<string, unknown> } | { ok: false; status: 401 | 403 }> {
    const response = await fetch(url, {
      headers: { authorization, accept: 'application/json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      return { ok: false, status: response.status as 401 | 403 };
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new Unusable(`account API ${step} answered ${response.status}`);
    }
    const body: unknown = await response.json().catch(() => undefined);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new Unusable(`account API ${step}: not a JSON object`);
    }
    return { ok: true, body: body as Record<string, unknown> };
  }

  async function ask(authorization: string): Promise<Answer | undefined> {
    try {
      const profile = await get(profileUrl as URL, authorization, 'profile');
      if (!profile.ok) return { kind: 'refused', status: profile.status };
      const listed = profile.body.sip_user_ids;
      if (Array.isArray(listed)) {
        const ids = listed.filter((id) => typeof id === 'string' || typeof id === 'number');
        return { kind: 'valid', sipUserIds: new Set(ids.map(String)) };
      }
      if (!(appAccountField in profile.body)) {
        throw new Unusable(`account API profile has no ${appAccountField}`);
      }
      const appAccount = profile.body[appAccountField];
      if (appAccount === null || appAccount === '' || appAccount === false) {
        return { kind: 'refused', status: 403 };
      }
      if (typeof appAccount !== 'string') {
        throw new Unusable(`account API profile: ${appAccountField} is not a path`);
      }
      const url = followUrl(options.baseUrl, appAccount);
      if (!url) {
        throw new Unusable(
          `account API profile: ${appAccountField} points outside the account API (not followed)`,
        );
      }
      const account = await get(url, authorization, 'app account');
      if (!account.ok) return { kind: 'refused', status: account.status };
      const id = account.body[accountIdField];
      if (typeof id !== 'string' && typeof id !== 'number') {
        throw new Unusable(`account API app account has no ${accountIdField}`);
      }
      return { kind: 'valid', sipUserIds: new Set([String(id)]) };
    } catch (error) {
      options.onError?.(
        error instanceof Unusable
          ? error.message
          : `account API unreachable: ${(error as Error).name}`,
      );
      return undefined;
    }
  }

  return {
    async check(authorization, sipUserId) {
      if (authorization === undefined || authorization.trim() === '') {
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
      if (result.kind === 'refused') return { ok: false, statusCode: result.status };
      if (!result.sipUserIds.has(sipUserId)) return { ok: false, statusCode: 403 };
      return { ok: true };
    },
  };
}
