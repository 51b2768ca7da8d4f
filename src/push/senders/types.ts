/**
 * What a push sender (APNs, FCM) does: deliver one notification to one device token and say
 * what happened in terms the wake-up logic acts on.
 */

/** The notification data: the seed's payload (`type`, `unique_key`, ...), flat strings and numbers. */
export type PushPayload = Record<string, string | number>;

/** The device fields a sender needs. */
export interface PushTarget {
  /** Device token (secret: never logged). */
  token: string;
  /** App identifier (the APNs topic when neither `topic` nor the sender's topic is set). */
  app: string;
  /** APNs topic (bundle id, `.voip` appended) of the device's app; overrides the sender's. */
  topic?: string;
  /** APNs sandbox device. */
  sandbox: boolean;
}

/**
 * Outcome of one send:
 * - `ok`: accepted by the push service.
 * - `rejected`: the service says the token is unregistered or invalid; the device must go.
 * - `error`: transient (network, 5xx, 429, auth refresh failed): retry later.
 * - `not_configured`: this platform has no credentials; retrying will not help.
 */
export type SendResult =
  | { ok: true }
  | { ok: false; reason: 'rejected' | 'error' | 'not_configured'; detail: string };

/** A push service client. */
export interface PushSender {
  /** `apns` or `fcm`. */
  readonly platform: 'apns' | 'fcm';
  /** Sends `payload` to `target`; never throws (failures are results). */
  send(target: PushTarget, payload: PushPayload): Promise<SendResult>;
  /** Closes connections (HTTP/2 sessions). Idempotent. */
  close(): Promise<void>;
}
