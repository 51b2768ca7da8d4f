/**
 * Why an outgoing HTTP request (`fetch`, undici) failed, in words a person can act on.
 *
 * Node's `fetch` rejects every network failure with the same `TypeError: fetch failed`; the
 * reason (`ECONNREFUSED`, `ENOTFOUND`, a TLS certificate error, a timeout) is in its `cause`
 * chain (undici's `UND_ERR_*` errors, or a system error from `net`/`dns`/`tls`, possibly an
 * `AggregateError` when a name resolved to several addresses).
 *
 * @module
 */

interface Coded {
  code?: unknown;
  message?: unknown;
  name?: unknown;
  cause?: unknown;
  errors?: unknown;
}

function asCoded(value: unknown): Coded | undefined {
  return typeof value === 'object' && value !== null ? (value as Coded) : undefined;
}

function text(value: unknown): string {
  return typeof value === 'string' ? (value.split('\n')[0] ?? '') : '';
}

/**
 * One line saying why a request failed: the most specific error code in the `cause` chain
 * with its message (`connect ECONNREFUSED 127.0.0.1:9`, `getaddrinfo ENOTFOUND hooks.example`,
 * `UND_ERR_SOCKET: other side closed`, `CERT_HAS_EXPIRED: certificate has expired`),
 * `timed out` for an `AbortSignal.timeout`, else the error's own message. Never contains the
 * request's URL or headers (system errors name the address and port only).
 */
export function fetchErrorReason(error: unknown): string {
  let best: Coded | undefined;
  let timedOut = false;
  let current = asCoded(error);
  for (let depth = 0; current !== undefined && depth < 8; depth++) {
    if (current.name === 'TimeoutError') timedOut = true;
    if (typeof current.code === 'string' && current.code !== '') best = current;
    const inner = Array.isArray(current.errors) ? current.errors[0] : undefined;
    current = asCoded(current.cause) ?? asCoded(inner);
  }
  if (best !== undefined) {
    const code = best.code as string;
    let message = text(best.message);
    if (message === '' && Array.isArray(best.errors)) {
      message = text(asCoded(best.errors[0])?.message);
    }
    if (message === '') return code;
    return message.includes(code) ? message : `${code}: ${message}`;
  }
  if (timedOut) return 'timed out';
  const top = asCoded(error);
  return text(top?.message) || String(error);
}
