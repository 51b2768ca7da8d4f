/**
 * The apps the middleware knows (`push.apps`, the original's `App` table: an app id per
 * platform with its push credentials) and the sender that reaches each app's devices.
 *
 * A device registration for an app that is not configured for the platform of its path is
 * answered 404, as the original does. Credentials left empty in an app entry fall back to
 * `push.apns.*` / `push.fcm.*`; apps with the same credentials share one sender (one HTTP/2
 * connection per APNs host, one OAuth2 token per service account); the APNs topic is per app
 * (`apps[].apns.topic`, else `push.apns.topic`, else the app id; `.voip` is appended).
 */
import type { PushAppConfig, PushConfig } from '../config/schema.ts';
import type { Device, Platform } from './devices.ts';
import { type ApnsOptions, createApnsSender } from './senders/apns.ts';
import { createFcmSender, type FcmOptions } from './senders/fcm.ts';
import type { PushSender, PushTarget } from './senders/types.ts';

/** The sender for a device and the target it is sent to. */
export interface Route {
  sender: PushSender;
  target: PushTarget;
}

/** The configured apps. */
export interface KnownApps {
  /** True when app `id` may register devices on `platform`. */
  has(id: string, platform: Platform): boolean;
  /**
   * Where a device's pushes go; undefined when its app is no longer configured for its
   * platform (the push then fails as `not_configured`).
   */
  route(device: Device): Route | undefined;
  /** Closes the senders this registry made (not the overrides). Idempotent. */
  close(): Promise<void>;
}

/** The APNs options of one app: its own credentials, else the section's. */
export function apnsOptionsFor(app: PushAppConfig, base: PushConfig['apns']): ApnsOptions {
  const own = app.apns;
  const ownKey = own.keyFile !== '';
  const ownCert = own.certFile !== '';
  return {
    ...base,
    topic: '',
    keyFile: ownCert && !ownKey ? '' : own.keyFile || base.keyFile,
    keyId: own.keyId || base.keyId,
    teamId: own.teamId || base.teamId,
    certFile: ownKey && !ownCert ? '' : own.certFile || base.certFile,
    certKeyFile: ownCert ? own.certKeyFile : base.certKeyFile,
    certPassphrase: ownCert ? own.certPassphrase : base.certPassphrase,
  };
}

/** The FCM options of one app: its own service account (and project), else the section's. */
export function fcmOptionsFor(app: PushAppConfig, base: PushConfig['fcm']): FcmOptions {
  const own = app.fcm;
  return own.serviceAccountFile !== ''
    ? { ...base, serviceAccountFile: own.serviceAccountFile, projectId: own.projectId }
    : { ...base, projectId: own.projectId || base.projectId };
}

/**
 * Builds the registry and the senders of every configured app.
 * @param overrides senders used for every app of their platform instead (tests, benchmarks).
 * @throws Error when a configured APNs key/certificate or FCM service-account file cannot be
 *   read.
 */
export function createKnownApps(
  config: Pick<PushConfig, 'apps' | 'apns' | 'fcm'>,
  overrides: Partial<Record<Platform, PushSender>> = {},
): KnownApps {
  const own = new Map<string, PushSender>();
  const routes = new Map<string, { sender: PushSender; topic: string }>();
  const key = (id: string, platform: Platform) => `${platform}\0${id}`;
  for (const app of config.apps) {
    for (const platform of new Set(app.platforms)) {
      let sender = overrides[platform];
      if (!sender) {
        const options =
          platform === 'apns' ? apnsOptionsFor(app, config.apns) : fcmOptionsFor(app, config.fcm);
        const id = `${platform}\0${JSON.stringify(options)}`;
        sender = own.get(id);
        if (!sender) {
          sender =
            platform === 'apns'
              ? createApnsSender(options as ApnsOptions)
              : createFcmSender(options as FcmOptions);
          own.set(id, sender);
        }
      }
      const topic = platform === 'apns' ? app.apns.topic || config.apns.topic || app.id : '';
      routes.set(key(app.id, platform), { sender, topic });
    }
  }
  let closing: Promise<void> | undefined;
  return {
    has: (id, platform) => routes.has(key(id, platform)),
    route(device) {
      const found = routes.get(key(device.app, device.platform));
      if (!found) return undefined;
      return {
        sender: found.sender,
        target: {
          token: device.token,
          app: device.app,
          sandbox: device.sandbox,
          ...(found.topic ? { topic: found.topic } : {}),
        },
      };
    },
    close() {
      closing ??= Promise.all([...own.values()].map((s) => s.close())).then(() => {});
      return closing;
    },
  };
}
