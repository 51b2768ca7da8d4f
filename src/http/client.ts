/**
 * Who sent a request: the client address (derived through trusted reverse proxies only),
 * whether that address may be used for network-based access, and whether the request is a
 * browser's cross-site request.
 *
 * - **Trusted proxies** (`http.trustProxy`: a list of addresses/CIDRs): Fastify derives
 *   `request.ip` from `X-Forwarded-For`, walking from the TCP peer towards the client and
 *   stopping at the first address that is not a trusted proxy (`@fastify/proxy-addr`).
 * - **Forwarded by an untrusted peer**: a request carrying `Forwarded`, `X-Forwarded-For` or
 *   `X-Real-IP` whose TCP peer is not a trusted proxy has no trustworthy network identity: a
 *   reverse proxy on the same host would otherwise make every client look like 127.0.0.1.
 *   Such a request gets no loopback or allow-list access (a credential still works).
 *   Likewise a trusted proxy that sends only `Forwarded` / `X-Real-IP` (which Switchboard
 *   does not read) but no `X-Forwarded-For`: the client is unknown. Each case is logged
 *   once per server with the configuration that fixes it.
 * - **Cross-site**: `Sec-Fetch-Site` (Fetch Metadata, sent by current browsers) other than
 *   `same-origin` / `none`, or else an `Origin` that is not the request's own origin
 *   (`Origin: null` included). Non-browser clients (curl, monitoring, the PBX, the mobile
 *   apps) send neither header.
 */
import type { FastifyRequest } from 'fastify';

/** A request's client, as the access rules see it. */
export interface ClientIdentity {
  /** Client address: `request.ip` (through trusted proxies), else the TCP peer. */
  address: string;
  /** The TCP peer's address (the proxy, when there is one). */
  peer: string;
  /**
   * True when `address` may be matched against loopback and allow-lists; false when the
   * request carries forwarding headers that were not resolved through a trusted proxy.
   */
  networkTrusted: boolean;
  /** Why `networkTrusted` is false. */
  untrusted?: 'forwarded_by_untrusted_peer' | 'proxy_without_x_forwarded_for';
}

/** How a server decides trust and where it logs (set by `createServer`). */
export interface ClientTrust {
  /** True when `address` (a TCP peer or a forwarded hop) is a trusted reverse proxy. */
  isTrustedProxy: (address: string) => boolean;
  /** Warn-level logger for the once-per-server hints. */
  warn: (fields: Record<string, unknown>, message: string) => void;
}

interface TrustState extends ClientTrust {
  logged: Set<string>;
}

const NO_TRUST: ClientTrust = { isTrustedProxy: () => false, warn: () => {} };
const trustByServer = new WeakMap<object, TrustState>();
const identities = new WeakMap<FastifyRequest, ClientIdentity>();

/**
 * Registers the trust of the HTTP server `server` (Fastify's `app.server`, shared by every
 * encapsulated plugin). Servers without one trust no proxy.
 */
export function setClientTrust(server: object, trust: ClientTrust): void {
  trustByServer.set(server, { ...trust, logged: new Set() });
}

/** `::ffff:127.0.0.1` → `127.0.0.1` (for messages). */
function plain(address: string): string {
  return address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
}

/**
 * The identity of a request whose forwarding headers cannot be believed: the TCP peer, no
 * network trust. The first such request of each `reason` on a server is logged at warn with
 * `message()` (the fix).
 */
function untrusted(
  trust: TrustState,
  peer: string,
  reason: NonNullable<ClientIdentity['untrusted']>,
  forwarding: string[],
  message: () => string,
): ClientIdentity {
  if (!trust.logged.has(reason)) {
    trust.logged.add(reason);
    trust.warn({ peer, headers: forwarding }, message());
  }
  return { address: peer, peer, networkTrusted: false, untrusted: reason };
}

/**
 * The client of `request` (computed once per request). Logs once per server, at warn, the
 * first request of each kind that gets no network identity, with the fix.
 */
export function clientOf(request: FastifyRequest): ClientIdentity {
  const known = identities.get(request);
  if (known) return known;
  const trust = trustByServer.get(request.server.server) ?? { ...NO_TRUST, logged: new Set() };
  const peer = request.raw.socket?.remoteAddress ?? '';
  const headers = request.headers;
  const forwarding = ['forwarded', 'x-forwarded-for', 'x-real-ip'].filter(
    (name) => headers[name] !== undefined,
  );
  let identity: ClientIdentity;
  if (forwarding.length === 0) {
    identity = { address: peer, peer, networkTrusted: true };
  } else if (!trust.isTrustedProxy(peer)) {
    identity = untrusted(
      trust,
      peer,
      'forwarded_by_untrusted_peer',
      forwarding,
      () =>
        `a request from ${plain(peer)} carries ${forwarding.join(', ')} but ${plain(peer)} is not ` +
        'a trusted proxy: such requests get no loopback or allow-list access (a credential ' +
        `still works). If a reverse proxy runs on ${plain(peer)}, set http.trustProxy: ` +
        `[${plain(peer)}] (logged once)`,
    );
  } else if (headers['x-forwarded-for'] === undefined) {
    identity = untrusted(
      trust,
      peer,
      'proxy_without_x_forwarded_for',
      forwarding,
      () =>
        `the trusted proxy ${plain(peer)} sends ${forwarding.join(', ')} but no ` +
        'X-Forwarded-For, so the client address is unknown: such requests get no loopback or ' +
        'allow-list access. Make the proxy send X-Forwarded-For (nginx: proxy_set_header ' +
        'X-Forwarded-For $proxy_add_x_forwarded_for;) (logged once)',
    );
  } else {
    identity = { address: request.ip, peer, networkTrusted: true };
  }
  identities.set(request, identity);
  return identity;
}

/** Methods that change state (no CORS preflight needed for forms and multipart). */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** True for GET, HEAD and OPTIONS. */
export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method.toUpperCase());
}

function originOf(url: string): string | undefined {
  try {
    const origin = new URL(url).origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

/**
 * Why `request` is a browser's cross-site request, or undefined when it is not (same
 * origin, a user's own navigation, or no browser headers at all).
 * - `Sec-Fetch-Site` present: cross-site unless `same-origin` or `none`.
 * - else `Origin` present: cross-site unless it equals `<protocol>://<host>` of the request
 *   (`Host`, or `X-Forwarded-Proto` / `X-Forwarded-Host` from a trusted proxy).
 */
export function crossSiteOf(request: FastifyRequest): string | undefined {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined) {
    const value = String(site).trim().toLowerCase();
    return value === 'same-origin' || value === 'none' ? undefined : `Sec-Fetch-Site: ${value}`;
  }
  const origin = request.headers.origin;
  if (origin === undefined) return undefined;
  const theirs = originOf(String(origin));
  const ours = originOf(`${request.protocol}://${request.host}`);
  if (theirs !== undefined && ours !== undefined && theirs === ours) return undefined;
  return 'Origin of another site';
}
