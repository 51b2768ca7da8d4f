/**
 * The `push` section: mobile wake-up (push middleware API).
 * Schema and defaults are defined here, once; `src/config/schema.ts` composes the sections.
 *
 * @module
 */
import Type, { type Static } from 'typebox';
import { bool, formatted, int, item, oneOf, section, str } from '../config/section.ts';

/** Push platforms of `push.apps[].platforms`: `apns` (`/api/apns-device/`) or `fcm` (`/api/gcm-device/`, `/api/android-device/`). */
export const PushPlatform = Type.Enum(['apns', 'fcm'], { description: 'apns or fcm' });

/**
 * One `push.apps` entry: an app the middleware knows (the original's `App` rows: app id and
 * platform, with that app's push credentials). Empty credentials fall back to `push.apns.*` /
 * `push.fcm.*`.
 */
export const PushApp = item(
  {
    id: Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
      description: 'the app identifier the apps send as `app` (bundle id / package name)',
    }),
    platforms: Type.Array(PushPlatform, {
      default: ['apns', 'fcm'],
      minItems: 1,
      description: 'platforms this app registers on',
    }),
    apns: section(
      {
        topic: str('', 'bundle id (".voip" is appended); empty = push.apns.topic, else the app id'),
        keyFile: str('', '.p8 key file; empty = push.apns.keyFile'),
        keyId: str('', 'key id of keyFile; empty = push.apns.keyId'),
        teamId: str('', 'Apple team id; empty = push.apns.teamId'),
        certFile: str('', 'certificate (PEM) instead of a key; empty = push.apns.certFile'),
        certKeyFile: str('', 'private key (PEM) of certFile; empty = push.apns.certKeyFile'),
        certPassphrase: str('', 'passphrase of certKeyFile; empty = push.apns.certPassphrase'),
      },
      "this app's APNs credentials",
    ),
    fcm: section(
      {
        serviceAccountFile: str(
          '',
          'service-account JSON file; empty = push.fcm.serviceAccountFile',
        ),
        projectId: str('', 'Firebase project id; empty = push.fcm.projectId, else the file'),
      },
      "this app's FCM credentials",
    ),
  },
  'an app known to the push middleware',
);

/** `push`: mobile wake-up (VoIPGRID push middleware API, issues 6 and 12). */
export const PushSection = section(
  {
    enabled: bool(true, 'mount the push middleware API (/api/incoming-call/ ...)'),
    budgetMs: int(4_000, 100, 60_000, 'longest hold of an incoming-call request'),
    intervalMs: int(1_000, 100, 60_000, 'push re-send interval'),
    maxPushes: int(3, 1, 100, 'pushes per call and device'),
    allowNetworks: Type.Array(Type.String({ format: 'switchboard-cidr' }), {
      default: [],
      description: 'PBX networks allowed to POST /api/incoming-call/ (loopback always allowed)',
    }),
    devicesPerAccount: oneOf(
      ['one', 'several'],
      'one',
      "one: a registration replaces the SIP account's device (the original); several: every device is pushed",
    ),
    apps: Type.Array(PushApp, {
      default: [{ id: 'com.voipgrid.vialer', platforms: ['apns', 'fcm'] }],
      description: 'the apps devices may register for; any other `app` is answered 404',
    }),
    accountApi: section(
      {
        baseUrl: formatted(
          'switchboard-http-url',
          '',
          'account API (e.g. https://partner.voipgrid.nl); empty = users below',
          true,
        ),
        profilePath: str(
          '/api/permission/systemuser/profile/',
          "path of the user's profile, GET with the app's Authorization header",
          { pattern: '^/' },
        ),
        appAccountField: str(
          'app_account',
          "profile field holding the path of the user's phone account",
          { minLength: 1 },
        ),
        accountIdField: str('account_id', 'phone-account field compared with sip_user_id', {
          minLength: 1,
        }),
        url: formatted(
          'switchboard-http-url',
          '',
          'deprecated: a full profile URL; use baseUrl + profilePath',
          true,
        ),
        cacheTtlS: int(60, 0, 86_400, 'how long an answer is cached'),
        timeoutMs: int(2_000, 100, 60_000, 'request timeout'),
      },
      'external account API (the VoIPGRID API shape by default)',
    ),
    users: Type.Array(
      item(
        {
          username: Type.String({ minLength: 1, pattern: '^[^:]+$' }),
          password: Type.String({ minLength: 8 }),
          sipUserIds: Type.Array(Type.String({ pattern: '^[0-9]{9}$' }), { default: [] }),
        },
        'a static app user',
      ),
      { default: [], description: 'static users (when no account API)' },
    ),
    apns: section(
      {
        keyFile: str('', '.p8 token-signing key file (default of every app)'),
        keyId: str('', 'key id of the .p8 key'),
        teamId: str('', 'Apple team id'),
        topic: str('', 'bundle id (".voip" is appended); empty = each app\'s id'),
        certFile: str('', 'certificate (PEM) for certificate authentication instead of a key'),
        certKeyFile: str('', 'private key (PEM) of certFile'),
        certPassphrase: str('', 'passphrase of certKeyFile'),
        host: str('api.push.apple.com', 'production host'),
        sandboxHost: str('api.sandbox.push.apple.com', 'sandbox host'),
        port: int(443, 1, 65535, 'port'),
        caFile: str('', 'extra CA (PEM) trusted, for tests'),
      },
      'Apple Push Notification service',
    ),
    fcm: section(
      {
        serviceAccountFile: str('', 'service-account JSON file (default of every app)'),
        projectId: str('', 'project id; empty = from the service account'),
        baseUrl: formatted('switchboard-http-url', 'https://fcm.googleapis.com', 'FCM base URL'),
        tokenUrl: formatted(
          'switchboard-http-url',
          'https://oauth2.googleapis.com/token',
          'OAuth2 token URL',
        ),
      },
      'Firebase Cloud Messaging HTTP v1',
    ),
  },
  'mobile wake-up (push middleware API)',
);

/** The `push` section. */
export type PushConfig = Static<typeof PushSection>;
/** One `push.apps` entry. */
export type PushAppConfig = Static<typeof PushApp>;
