/**
 * The access rule shared by the Barista (callout), Gong (announce), CTI and event-stream APIs,
 * and (re-exported from util/cidr.ts) the CIDR matcher it uses for `auth.allowNetworks`.
 *
 * Rule, in order:
 * 0. A browser's cross-site request ({@link crossSiteOf}: `Sec-Fetch-Site` / `Origin` of
 *    another site) that changes state (any method but GET/HEAD/OPTIONS; every method with
 *    `refuseCrossSite: 'all'`) and carries no Bearer token → 403 `cross_site`. A web page
 *    can POST forms and multipart to any address without a CORS preflight, and a browser
 *    adds cached Basic credentials by itself, so only a Bearer token (which a page cannot
 *    make the browser send without a preflight Switchboard never answers) proves intent.
 * 1. `Authorization: Bearer <token>` matching a configured token → allowed (if the token's
 *    `modules` include this module, else 403). Unknown token → 401.
 * 2. `Authorization: Basic user:password` matching a configured user → allowed (same
 *    `modules` check → 403). Wrong user or password → 401.
 * 3. Any other Authorization scheme → 401. A presented credential is never ignored: a wrong
 *    one is refused even from an allowed network.
 * 4. No credential: allowed when the client IP is in `allowNetworks`, or is loopback and
 *    `allowLoopback` (default true), and the request has a trustworthy network identity
 *    (not forwarded by an untrusted peer: see `./client.ts`). Otherwise 401 when
 *    credentials are configured (the client can retry with one; `WWW-Authenticate` is
 *    sent), 403 when none are (only the network decides).
 *
 * Secrets are compared with {@link constantTimeEqual} against every configured credential
 * (no early exit), so timing reveals neither a secret nor which entry matched.
 *
 * The lists can change while the server runs: a rule built from a section marked with
 * {@link followAuth} reads the section's current lists at each request (SIGHUP reload).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createCidrMatcher, LOOPBACK_NETWORKS } from '../util/cidr.ts';
import { clientOf, crossSiteOf, isSafeMethod } from './client.ts';
import { type ErrorFormatter, type ErrorInfo, HttpError, sendError } from './errors.ts';

// IP addresses and CIDR: util/cidr.ts (re-exported here for the modules that import them).
export { type Cidr, createCidrMatcher, LOOPBACK_NETWORKS, parseCidr } from '../util/cidr.ts';

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/**
 * Compares two secrets in time independent of where they differ and of their lengths (both
 * are hashed with SHA-256, then compared with `crypto.timingSafeEqual`).
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

// ---------------------------------------------------------------------------------------------
// The access rule
// ---------------------------------------------------------------------------------------------

/** Who a request was allowed as. */
export type Principal =
  | { kind: 'token'; name: string }
  | { kind: 'user'; name: string }
  | { kind: 'network'; address: string };

/** Why a request was refused. */
export interface Refusal {
  /** 401: no or invalid credential; 403: credential valid but not for this module, or network not allowed. */
  statusCode: 401 | 403;
  reason:
    | 'credential_required'
    | 'invalid_credential'
    | 'module_not_allowed'
    | 'network_not_allowed'
    | 'cross_site';
  /** Readable message, never containing the credential. */
  message: string;
}

/** Options of {@link createAccessRule}: the `auth` config section plus module settings. */
export interface AccessRuleOptions {
  /** Bearer tokens (`modules` empty or absent = all modules). */
  tokens?: ReadonlyArray<{ token: string; name?: string; modules?: readonly string[] }>;
  /** Basic users. */
  users?: ReadonlyArray<{ username: string; password: string; modules?: readonly string[] }>;
  /** Networks allowed without credential. */
  allowNetworks?: readonly string[];
  /** Allow loopback clients without credential (default true). */
  allowLoopback?: boolean;
  /** Module name checked against each credential's `modules` (e.g. `callout`). */
  module?: string;
  /** Renders refusals in the module's error shape (default: Switchboard's JSON shape). */
  formatter?: ErrorFormatter;
  /** `WWW-Authenticate` realm (default `switchboard`). */
  realm?: string;
  /** Secret comparison (default {@link constantTimeEqual}); exposed for tests. */
  compare?: (presented: string, configured: string) => boolean;
  /**
   * Which browser cross-site requests without a Bearer token are refused: `unsafe` (default:
   * every method but GET, HEAD, OPTIONS) or `all` (e.g. the event stream).
   */
  refuseCrossSite?: 'unsafe' | 'all';
}

/** What {@link decideAccess} knows about the request besides its credential and address. */
export interface AccessContext {
  /** The request is a browser's cross-site request that the rule must refuse without a Bearer token. */
  crossSite?: boolean;
  /**
   * False when the client address is not trustworthy (forwarded by an untrusted peer):
   * loopback and `allowNetworks` do not apply. Default true.
   */
  networkTrusted?: boolean;
}

/**
 * The symbol marking a live `auth` section ({@link followAuth}). An own enumerable symbol
 * property, so that it survives the spread (`{ ...config.auth, module: 'callout' }`) with
 * which modules build their access rules.
 */
const LIVE_AUTH = Symbol('switchboard.liveAuth');

/** The fields of an `auth` section an access rule reads at each request when it is live. */
type AuthLists = Pick<AccessRuleOptions, 'tokens' | 'users' | 'allowNetworks' | 'allowLoopback'>;

/**
 * Makes `section` (the `auth` configuration section) live: every access rule built from it,
 * or from a spread copy of it, reads its `tokens`, `users`, `allowNetworks` and
 * `allowLoopback` at each request instead of once. `serve` reloads the section in place on
 * SIGHUP (assigning new lists; do not mutate a list in place). Returns `section`.
 */
export function followAuth<T extends object>(section: T): T {
  if (!Object.hasOwn(section, LIVE_AUTH)) {
    Object.defineProperty(section, LIVE_AUTH, { value: section, enumerable: true });
  }
  return section;
}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Who the access rule allowed the request as (null before or without a rule). Decorated
     * by `createServer` (and the Gong listener): see {@link decoratePrincipal}.
     */
    principal: Principal | null;
  }
}

/** Declares the `request.principal` decorator on a Fastify instance (its root). */
export function decoratePrincipal(app: FastifyInstance): void {
  if (!app.hasRequestDecorator('principal')) app.decorateRequest('principal', null);
}

const matchers = new WeakMap<AccessRuleOptions, (address: string) => boolean>();

/** The principal an access rule allowed `request` as (undefined before or without a rule). */
export function principalOf(request: FastifyRequest): Principal | undefined {
  return request.principal ?? undefined;
}

function allowed(modules: readonly string[] | undefined, module: string | undefined): boolean {
  return (
    module === undefined ||
    modules === undefined ||
    modules.length === 0 ||
    modules.includes(module)
  );
}

/**
 * Decides one request (pure: no reply). Exposed for callers outside Fastify hooks.
 * @returns the principal, or the refusal.
 */
export function decideAccess(
  options: AccessRuleOptions,
  authorization: string | undefined,
  clientIp: string,
  context: AccessContext = {},
): Principal | Refusal {
  const compare = options.compare ?? constantTimeEqual;
  const tokens = options.tokens ?? [];
  const users = options.users ?? [];
  const module = options.module;
  const [scheme = '', ...rest] = (authorization ?? '').trim().split(/\s+/);
  const bearer = scheme.toLowerCase() === 'bearer' && rest.join(' ') !== '';
  if (context.crossSite === true && !bearer) {
    return {
      statusCode: 403,
      reason: 'cross_site',
      message:
        'cross-site request refused: a page of another site may not use this API ' +
        '(API clients send no Origin, or a Bearer token)',
    };
  }
  if (authorization !== undefined && authorization.trim() !== '') {
    const value = rest.join(' ');
    if (bearer) {
      let match: (typeof tokens)[number] | undefined;
      for (const entry of tokens) if (compare(value, entry.token) && !match) match = entry;
      if (!match)
        return { statusCode: 401, reason: 'invalid_credential', message: 'invalid token' };
      if (!allowed(match.modules, module)) {
        return { statusCode: 403, reason: 'module_not_allowed', message: 'token not allowed here' };
      }
      return { kind: 'token', name: match.name || 'token' };
    }
    if (scheme.toLowerCase() === 'basic' && value !== '') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const username = colon < 0 ? decoded : decoded.slice(0, colon);
      const password = colon < 0 ? '' : decoded.slice(colon + 1);
      let match: (typeof users)[number] | undefined;
      for (const entry of users) {
        // Both comparisons always run: no early exit on the user name.
        const userOk = compare(username, entry.username);
        const passwordOk = compare(password, entry.password);
        if (userOk && passwordOk && !match) match = entry;
      }
      if (!match) {
        return {
          statusCode: 401,
          reason: 'invalid_credential',
          message: 'invalid user or password',
        };
      }
      if (!allowed(match.modules, module)) {
        return { statusCode: 403, reason: 'module_not_allowed', message: 'user not allowed here' };
      }
      return { kind: 'user', name: match.username };
    }
    return { statusCode: 401, reason: 'invalid_credential', message: 'unsupported authorization' };
  }
  let matcher = matchers.get(options);
  if (!matcher) {
    matcher = createCidrMatcher([
      ...(options.allowNetworks ?? []),
      ...((options.allowLoopback ?? true) ? LOOPBACK_NETWORKS : []),
    ]);
    matchers.set(options, matcher);
  }
  const trusted = context.networkTrusted !== false;
  if (trusted && matcher(clientIp)) return { kind: 'network', address: clientIp };
  const why = trusted
    ? ''
    : ' (a forwarded request whose client address is not known through http.trustProxy)';
  if (tokens.length > 0 || users.length > 0) {
    return {
      statusCode: 401,
      reason: 'credential_required',
      message: `credential required${why}`,
    };
  }
  return { statusCode: 403, reason: 'network_not_allowed', message: `network not allowed${why}` };
}

/**
 * Builds a Fastify `onRequest`/`preHandler` hook enforcing the rule. Use it inside a feature
 * module's plugin: `app.addHook('onRequest', createAccessRule({...config.auth, module:
 * 'callout', formatter: baristaErrors}))`. Allowed requests get a {@link principalOf}; refused
 * ones are answered with `formatter` (401 carries `WWW-Authenticate: Bearer, Basic`).
 *
 * The client is {@link clientOf} (`request.ip` through `http.trustProxy`; no network
 * identity when forwarded by an untrusted peer); cross-site requests per {@link crossSiteOf}.
 * @throws Error at creation when an `allowNetworks` entry is invalid.
 */
export function createAccessRule(
  options: AccessRuleOptions,
): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  createCidrMatcher(options.allowNetworks ?? []); // validate early
  const realm = options.realm ?? 'switchboard';
  const refuseAll = options.refuseCrossSite === 'all';
  const live = (options as { [LIVE_AUTH]?: AuthLists })[LIVE_AUTH];
  let current = options;
  /** The options with the live section's lists (a new object only when one was replaced). */
  const effective = (): AccessRuleOptions => {
    if (live === undefined) return options;
    if (
      current.tokens !== live.tokens ||
      current.users !== live.users ||
      current.allowNetworks !== live.allowNetworks ||
      current.allowLoopback !== live.allowLoopback
    ) {
      current = {
        ...options,
        tokens: live.tokens ?? [],
        users: live.users ?? [],
        allowNetworks: live.allowNetworks ?? [],
        allowLoopback: live.allowLoopback ?? true,
      };
    }
    return current;
  };
  return async (request, reply) => {
    const client = clientOf(request);
    const crossSite =
      (refuseAll || !isSafeMethod(request.method)) && crossSiteOf(request) !== undefined;
    const decision = decideAccess(effective(), request.headers.authorization, client.address, {
      crossSite,
      networkTrusted: client.networkTrusted,
    });
    if ('kind' in decision) {
      request.principal = decision;
      return;
    }
    request.log.info(
      { reason: decision.reason, ip: client.address, peer: client.peer, module: options.module },
      'access refused',
    );
    const headers: Record<string, string> =
      decision.statusCode === 401
        ? { 'www-authenticate': `Bearer realm="${realm}", Basic realm="${realm}"` }
        : {};
    const info: ErrorInfo = {
      statusCode: decision.statusCode,
      code: decision.reason,
      message: decision.message,
      headers,
    };
    await sendError(reply, request, info, options.formatter);
  };
}

/** Throws an {@link HttpError} for a refusal (for handlers deciding access themselves). */
export function refusalError(refusal: Refusal): HttpError {
  return new HttpError(refusal.statusCode, refusal.message, refusal.reason);
}
