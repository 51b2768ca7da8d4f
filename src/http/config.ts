/**
 * The `http` and `auth` sections: the HTTP server and the access rule of its APIs.
 * Schema and defaults are defined here, once; `src/config/schema.ts` composes the sections.
 *
 * @module
 */
import Type, { type Static } from 'typebox';
import { bool, formatted, int, item, section, str } from '../config/section.ts';

/** `http`: the one HTTP server every API is mounted on. */
export const HttpSection = section(
  {
    listen: formatted('switchboard-listen', '127.0.0.1:8080', 'HOST:PORT of the HTTP server'),
    bodyLimitBytes: int(1_048_576, 1024, 1_073_741_824, 'largest accepted request body (bytes)'),
    trustProxy: Type.Union(
      [Type.Boolean(), Type.Array(Type.String({ format: 'switchboard-cidr' }))],
      {
        default: false,
        description:
          'false, or the reverse proxies (addresses/CIDRs) whose X-Forwarded-For gives the client IP',
      },
    ),
    docs: bool(true, 'serve the OpenAPI document and UI at /docs'),
    shutdownTimeoutMs: int(10_000, 0, 600_000, 'longest wait for in-flight requests at shutdown'),
    headersTimeoutMs: int(10_000, 100, 600_000, 'request line and headers must arrive within'),
    requestTimeoutMs: int(
      30_000,
      100,
      3_600_000,
      'a request body must arrive within this after its headers (else 408, connection closed)',
    ),
    uploadTimeoutMs: int(
      300_000,
      100,
      3_600_000,
      'the same for audio uploads (POST /messages/add)',
    ),
    keepAliveTimeoutMs: int(5_000, 100, 600_000, 'an idle keep-alive connection is closed after'),
    jsonMaxDepth: int(32, 1, 1_000, 'deepest nesting of arrays/objects accepted in a JSON body'),
    sseMaxStreams: int(100, 1, 100_000, 'concurrent /api/events streams; beyond: 503'),
    sseMaxBufferedBytes: int(
      1_048_576,
      1024,
      1_073_741_824,
      'bytes an /api/events client may fall behind before its connection is closed',
    ),
  },
  'HTTP server',
);

/** A credential for the HTTP APIs (`modules` empty = every module). */
const Modules = Type.Array(Type.String({ minLength: 1 }), {
  default: [],
  description:
    'modules this credential may use (callout, announce, cti, events, console, ...); empty = all',
});

/** An API token accepted as `Authorization: Bearer <token>`. */
export const ApiToken = item(
  {
    name: str('', 'who uses it (logged instead of the token)'),
    token: Type.String({ minLength: 16, description: 'the token (at least 16 characters)' }),
    modules: Modules,
  },
  'an API token',
);

/** A Basic-auth user. */
export const BasicUser = item(
  {
    username: Type.String({ minLength: 1, pattern: '^[^:]+$', description: 'user name' }),
    password: Type.String({ minLength: 8, description: 'password (at least 8 characters)' }),
    modules: Modules,
  },
  'a Basic-auth user',
);

/** `auth`: the access rule of the Barista, Gong and CTI APIs. */
export const AuthSection = section(
  {
    tokens: Type.Array(ApiToken, { default: [], description: 'Bearer tokens' }),
    users: Type.Array(BasicUser, { default: [], description: 'Basic users' }),
    allowNetworks: Type.Array(Type.String({ format: 'switchboard-cidr' }), {
      default: [],
      description: 'networks allowed without a credential (CIDR, IPv4 or IPv6)',
    }),
    allowLoopback: bool(true, 'allow 127.0.0.0/8 and ::1 without a credential'),
  },
  'access rule of the HTTP APIs',
);

/** The `auth` section (also accepted by {@link createAccessRule} in `./auth.ts`). */
export type AuthConfig = Static<typeof AuthSection>;
