/**
 * JWT signing (RFC 7519, JWS compact serialization, RFC 7515) with `node:crypto`, one
 * function for the two algorithms the push senders need: ES256 for APNs provider tokens
 * (Apple, "Establishing a token-based connection to APNs") and RS256 for the FCM OAuth2
 * assertion (Google, "Using OAuth 2.0 for Server to Server Applications").
 */
import { sign } from 'node:crypto';

/** The JWS algorithms {@link signJwt} supports (RFC 7518 §3.1). */
export type JwtAlgorithm = 'ES256' | 'RS256';

/**
 * A signed JWT `base64url(header).base64url(claims).base64url(signature)`. The header's
 * `alg` is set to `alg` (other header fields, e.g. `kid`, `typ`, are kept). ES256 signatures
 * are the raw `r || s` pair (IEEE P1363) that JWS requires, not DER.
 * @param key PEM private key: EC P-256 for ES256 (e.g. Apple's .p8), RSA for RS256.
 * @throws Error from `node:crypto` when the key cannot be read or does not fit `alg`.
 */
export function signJwt(
  alg: JwtAlgorithm,
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
  key: string,
): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${encode({ ...header, alg })}.${encode(claims)}`;
  const signature =
    alg === 'ES256'
      ? sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
      : sign('sha256', Buffer.from(input), key);
  return `${input}.${signature.toString('base64url')}`;
}
