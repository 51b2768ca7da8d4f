/**
 * The access rule shared by the Barista (callout), Gong (announce) and CTI APIs, and a CIDR
 * matcher (also used by the push module's PBX allow-list).
 *
 * Rule, in order:
 * 1. `Authorization: Bearer <token>` matching a configured token → allowed (if the token's
 *    `modules` include this module, else 403). Unknown token → 401.
 * 2. `Authorization: Basic user:password` matching a configured user → allowed (same
 *    `modules` check → 403). Wrong user or password → 401.
 * 3. Any other Authorization scheme → 401. A presented credential is never ignored: a wrong
 *    one is refused even from an allowed network.
 * 4. No credential: allowed when the client IP is in `allowNetworks`, or is loopback and
 *    `allowLoopback` (default true). Otherwise 401 when credentials are configured (the client
 *    can retry with one; `WWW-Authenticate` is sent), 403 when none are (only the network
 *    decides).
 *
 * Secrets are compared with {@link constantTimeEqual} against every configured credential
 * (no early exit), so timing reveals neither a secret nor which entry matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorFormatter, type ErrorInfo, HttpError, sendError } from './errors.ts';

// ---------------------------------------------------------------------------------------------
// IP addresses and CIDR
// ---------------------------------------------------------------------------------------------

/** A network: 16 address bytes (IPv4 as IPv4-mapped IPv6) and the prefix length over 128. */
export interface Cidr {
  bytes: Uint8Array;
  prefix: number;
}

function ipv4Bytes(address: string): number[] {
  return address.split('.').map((part) => Number(part));
}

/**
 * An IP address as 16 bytes; IPv4 (and IPv4-mapped IPv6 `::ffff:a.b.c.d`) becomes
 * `::ffff:a.b.c.d`, so one comparison serves both families. A zone (`%eth0`) is ignored.
 * @returns undefined when `address` is not an IP address.
 */
export function ipBytes(address: string): Uint8Array | undefined {
  const ip = address.replace(/%.*$/, '');
  if (isIPv4(ip))
    return Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...ipv4Bytes(ip)]);
  if (!isIPv6(ip)) return undefined;
  let text = ip;
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    tail.push(...ipv4Bytes(v4[1]));
    text = `${text.slice(0, -v4[1].length)}0:0`;
  }
  const [head = '', rest] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups =
    rest === undefined
      ? left
      : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    const value = Number.parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  });
  if (tail.length === 4) bytes.set(tail, 12);
  return bytes;
}

/**
 * Parses `10.0.0.0/8`, `fd00::/8`, `::ffff:10.0.0.0/104` or a bare address (one host).
 * @throws Error naming the value when it is not an address or the prefix is out of range.
 */
export function parseCidr(text: string): Cidr {
  const [address = '', prefixText, extra] = text.trim().split('/');
  const bytes = ipBytes(address);
  const v4 = isIPv4(address);
  const max = v4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (
    !bytes ||
    extra !== undefined ||
    (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) ||
    prefix > max
  ) {
    throw new Error(`invalid CIDR network: ${JSON.stringify(text)}`);
  }
  return { bytes, prefix: v4 ? prefix + 96 : prefix };
}

/** True when `address` (16 bytes) is inside `network`. */
export function cidrContains(network: Cidr, address: Uint8Array): boolean {
  let bits = network.prefix;
  for (let i = 0; i < 16 && bits > 0; i += 1, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((network.bytes[i] ?? 0) & mask) !== ((address[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** Loopback networks: 127.0.0.0/8 and ::1/128. */
export const LOOPBACK_NETWORKS: readonly string[] = ['127.0.0.0/8', '::1/128'];

/**
 * A matcher for a list of networks (IPv4 and IPv6; IPv4-mapped IPv6 clients match IPv4
 * networks). Use it for any allow-list, e.g. the push module's PBX networks.
 * @throws Error when an entry is not a valid network (see {@link parseCidr}).
 * @returns a function: IP address string → inside one of the networks (false for non-IPs).
 */
export function createCidrMatcher(networks: readonly string[]): (address: string) => boolean {
  const parsed = networks.map(parseCidr);
  return (address) => {
    const bytes = ipBytes(address);
    return bytes !== undefined && parsed.some((network) => cidrContains(network, bytes));
  };
}

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
    | 'network_not_allowed';
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
}

const principals = new WeakMap<FastifyRequest, Principal>();
const matchers = new WeakMap<AccessRuleOptions, (address: string) => boolean>();

/** The principal an access rule allowed `request` as (undefined before or without a rule). */
export function principalOf(request: FastifyRequest): Principal | undefined {
  return principals.get(request);
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
): Principal | Refusal {
  const compare = options.compare ?? constantTimeEqual;
  const tokens = options.tokens ?? [];
  const users = options.users ?? [];
  const module = options.module;
  if (authorization !== undefined && authorization.trim() !== '') {
    const [scheme = '', ...rest] = authorization.trim().split(/\s+/);
    const value = rest.join(' ');
    if (scheme.toLowerCase() === 'bearer' && value !== '') {
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
  if (matcher(clientIp)) return { kind: 'network', address: clientIp };
  if (tokens.length > 0 || users.length > 0) {
    return { statusCode: 401, reason: 'credential_required', message: 'credential required' };
  }
  return { statusCode: 403, reason: 'network_not_allowed', message: 'network not allowed' };
}

/**
 * Builds a Fastify `onRequest`/`preHandler` hook enforcing the rule. Use it inside a feature
 * module's plugin: `app.addHook('onRequest', createAccessRule({...config.auth, module:
 * 'callout', formatter: baristaErrors}))`. Allowed requests get a {@link principalOf}; refused
 * ones are answered with `formatter` (401 carries `WWW-Authenticate: Bearer, Basic`).
 *
 * The client IP is `request.ip` (honours `http.trustProxy`).
 * @throws Error at creation when an `allowNetworks` entry is invalid.
 */
export function createAccessRule(
  options: AccessRuleOptions,
): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  createCidrMatcher(options.allowNetworks ?? []); // validate early
  const realm = options.realm ?? 'switchboard';
  return async (request, reply) => {
    const decision = decideAccess(options, request.headers.authorization, request.ip);
    if ('kind' in decision) {
      principals.set(request, decision);
      return;
    }
    request.log.info(
      { reason: decision.reason, ip: request.ip, module: options.module },
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
