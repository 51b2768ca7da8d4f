/**
 * The `ami` section: the Asterisk servers (defaults of the client library: `./defaults.ts`).
 * Schema and defaults are defined here, once; `src/config/schema.ts` composes the sections.
 *
 * @module
 */

import Type, { type Static } from 'typebox';
import { bool, formatted, int, item, oneOf, section, str } from '../config/section.ts';
import { AMI_CLIENT_DEFAULTS as AMI } from './defaults.ts';

/** One Asterisk server reached over AMI. */
export const AmiServer = item(
  {
    url: formatted(
      'switchboard-ami-url',
      undefined,
      'tcp://user:secret@host:5038 (tls:// for TLS); user and secret are the manager.conf login',
    ),
    name: str('', 'name in logs and metrics; empty = host:port'),
    auth: oneOf(['plain', 'md5'], AMI.auth, 'login method: plain secret or md5 challenge'),
    pingIntervalMs: int(AMI.pingIntervalMs, 0, 3_600_000, 'keep-alive Ping interval; 0 = never'),
    connectTimeoutMs: int(AMI.connectTimeoutMs, 100, 600_000, 'TCP (and TLS) connect timeout'),
    actionTimeoutMs: int(AMI.actionTimeoutMs, 100, 600_000, 'time to wait for an action response'),
    reconnectMinMs: int(
      AMI.reconnectInitialDelayMs,
      10,
      600_000,
      'first reconnect delay (doubles on each failure)',
    ),
    reconnectMaxMs: int(AMI.reconnectMaxDelayMs, 10, 3_600_000, 'longest reconnect delay'),
    tlsRejectUnauthorized: bool(true, 'verify the server certificate for tls://'),
  },
  'an Asterisk server',
);

/** `ami`: the Asterisk servers to connect to. */
export const AmiSection = section(
  {
    servers: Type.Array(AmiServer, { default: [], description: 'Asterisk servers' }),
    maxChannels: int(
      50_000,
      1,
      10_000_000,
      'live channels followed per server; beyond, the oldest are forgotten (counted, logged)',
    ),
    maxBridges: int(
      25_000,
      1,
      10_000_000,
      'live bridges followed per server; beyond, the oldest are forgotten (counted, logged)',
    ),
  },
  'Asterisk Manager Interface',
);

/** One `ami.servers` entry. */
export type AmiServerConfig = Static<typeof AmiServer>;
