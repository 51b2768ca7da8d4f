/**
 * Prometheus series of the push module, served directly at `/metrics` instead of through a
 * separate exporter:
 *
 * - Switchboard's own, every name starting with `switchboard_push_`;
 * - the original middleware's (its exporter `main/prometheus/prometheus.py`), same names and
 *   label names, so existing dashboards keep working: `vialer_call_success_total`,
 *   `vialer_call_failure_total`, `vialer_hangup_reason_total` (from `POST /api/log-metrics/`),
 *   `vialer_middleware_incoming_call_{success,failed}_total` and
 *   `vialer_middleware_push_notification_{success,failed}_total` (from the wake-up).
 *
 * Label values that come from apps are bounded so that a client cannot create unbounded
 * series: Switchboard's with {@link boundedLabel}, the original's with {@link VialerLabels}
 * (the values the Vialer apps send pass unchanged, anything else becomes `other`).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Label names of `vialer_call_success_total` (the original's exporter). */
export const VIALER_SUCCESS_LABELS = [
  'app_version',
  'codec',
  'connection_type',
  'direction',
  'mos',
  'network',
  'network_operator',
  'os',
  'os_version',
] as const;
/** Label names of `vialer_call_failure_total`. */
export const VIALER_FAILURE_LABELS = [
  'app_version',
  'connection_type',
  'direction',
  'failed_reason',
  'network',
  'network_operator',
  'os',
  'os_version',
] as const;
/** Label names of `vialer_hangup_reason_total`. */
export const VIALER_HANGUP_LABELS = [
  'app_version',
  'connection_type',
  'direction',
  'hangup_reason',
  'network',
  'network_operator',
  'os',
  'os_version',
] as const;

type VialerLabel =
  | (typeof VIALER_SUCCESS_LABELS)[number]
  | (typeof VIALER_FAILURE_LABELS)[number]
  | (typeof VIALER_HANGUP_LABELS)[number];

/** The push module's metrics, registered on the application's registry. */
export interface PushMetrics {
  /** `switchboard_push_incoming_calls_total`: valid `POST /api/incoming-call/` requests. */
  incomingReceived: Counter;
  /**
   * `switchboard_push_incoming_calls_failed_total{reason}`: incoming-call requests refused or
   * not processed: `bad_request`, `forbidden`, `error` (store unreachable).
   */
  incomingFailed: Counter<'reason'>;
  /** `switchboard_push_notifications_sent_total{platform,kind}`: accepted by APNs/FCM; kind `call` | `cancel`. */
  pushesSent: Counter<'platform' | 'kind'>;
  /**
   * `switchboard_push_notifications_failed_total{platform,reason}`: `rejected` (token
   * unregistered/invalid: device removed), `error` (network, 5xx, 429), `not_configured`.
   */
  pushesFailed: Counter<'platform' | 'reason'>;
  /**
   * `switchboard_push_answers_total{status,reason}`: answers given to the PBX. status `ACK`
   * (reason `available`) or `NAK` (`no_device`, `unavailable`, `token_rejected`, `timeout`,
   * `caller_hangup`, `pbx_gone`, `push_failed`, `error`).
   */
  answers: Counter<'status' | 'reason'>;
  /** `switchboard_push_wakeup_roundtrip_seconds{platform}`: push sent → app's call-response received. */
  roundTrip: Histogram<'platform'>;
  /** `switchboard_push_call_responses_total{result}`: `accepted` (202) or `not_found` (404). */
  callResponses: Counter<'result'>;
  /** `switchboard_push_held_calls`: incoming-call requests held by this process now. */
  held: Gauge;
  /** `switchboard_push_devices_removed_total{platform}`: devices removed after a token rejection. */
  devicesRemoved: Counter<'platform'>;
  /** `switchboard_push_hangup_reasons_total{reason}`: from `POST /api/hangup-reason/`. */
  hangupReasons: Counter<'reason'>;
  /**
   * `switchboard_push_app_calls_total{result,reason,os,direction}`: from
   * `POST /api/log-metrics/` (`call_setup_successful` → `success` | `failure` | `unknown`,
   * reason = `failed_reason`).
   */
  appCalls: Counter<'result' | 'reason' | 'os' | 'direction'>;
  /** `vialer_call_success_total{app_version,codec,connection_type,direction,mos,network,network_operator,os,os_version}`. */
  vialerCallSuccess: Counter<(typeof VIALER_SUCCESS_LABELS)[number]>;
  /** `vialer_call_failure_total{app_version,connection_type,direction,failed_reason,network,network_operator,os,os_version}`. */
  vialerCallFailure: Counter<(typeof VIALER_FAILURE_LABELS)[number]>;
  /** `vialer_hangup_reason_total{app_version,connection_type,direction,hangup_reason,network,network_operator,os,os_version}`. */
  vialerHangupReason: Counter<(typeof VIALER_HANGUP_LABELS)[number]>;
  /**
   * Counts an incoming call as the original did: `vialer_middleware_incoming_call_success_total
   * {action="Received",os="Middleware"}` when the SIP account has a device, else
   * `vialer_middleware_incoming_call_failed_total{action="Received",failed_reason="failed no
   * sip_user_id",os="Middleware"}`.
   */
  vialerIncoming(deviceFound: boolean): void;
  /**
   * Counts an answer to the PBX as the original did: ACK → `vialer_middleware_push_notification_
   * success_total{direction="Incoming",os}`; NAK unavailable / timeout → `..._failed_total
   * {direction="Incoming",os,failed_reason="Device not available" | "Unable to get response
   * from phone"}`; `os` is the device platform as the original named it (`apns`, `android`).
   */
  vialerAnswer(answer: { status: string; reason: string; platform?: string }): void;
}

/**
 * Registers the push metrics on `registry`.
 * @throws Error when they are already registered there (one push module per registry).
 */
export function createPushMetrics(registry: Registry): PushMetrics {
  const registers = [registry];
  const incomingSuccess = new Counter({
    name: 'vialer_middleware_incoming_call_success_total',
    help: 'The amount of times an incoming call was presented at the middleware',
    labelNames: ['action', 'os'] as const,
    registers,
  });
  const incomingFailed = new Counter({
    name: 'vialer_middleware_incoming_call_failed_total',
    help: "The amount of times an incoming call that were presented but couldn't be handled",
    labelNames: ['action', 'failed_reason', 'os'] as const,
    registers,
  });
  const pushSuccess = new Counter({
    name: 'vialer_middleware_push_notification_success_total',
    help: 'The amount of push notifications that were successful processed by the app',
    labelNames: ['direction', 'os'] as const,
    registers,
  });
  const pushFailed = new Counter({
    name: 'vialer_middleware_push_notification_failed_total',
    help: 'The amount of failed called due to the device not responding to a push notification',
    labelNames: ['direction', 'os', 'failed_reason'] as const,
    registers,
  });
  const originalOs = (platform: string | undefined) =>
    platform === 'fcm' ? 'android' : platform === 'apns' ? 'apns' : 'None';
  return {
    incomingReceived: new Counter({
      name: 'switchboard_push_incoming_calls_total',
      help: 'Incoming-call requests received from the PBX (valid ones)',
      registers,
    }),
    incomingFailed: new Counter({
      name: 'switchboard_push_incoming_calls_failed_total',
      help: 'Incoming-call requests refused or not processed, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    pushesSent: new Counter({
      name: 'switchboard_push_notifications_sent_total',
      help: 'Push notifications accepted by the push service, by platform and kind',
      labelNames: ['platform', 'kind'] as const,
      registers,
    }),
    pushesFailed: new Counter({
      name: 'switchboard_push_notifications_failed_total',
      help: 'Push notifications that failed, by platform and reason',
      labelNames: ['platform', 'reason'] as const,
      registers,
    }),
    answers: new Counter({
      name: 'switchboard_push_answers_total',
      help: 'Answers to the PBX (status=ACK / status=NAK), by reason',
      labelNames: ['status', 'reason'] as const,
      registers,
    }),
    roundTrip: new Histogram({
      name: 'switchboard_push_wakeup_roundtrip_seconds',
      help: 'Time from sending the push to receiving the app call-response, by platform',
      labelNames: ['platform'] as const,
      buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 10],
      registers,
    }),
    callResponses: new Counter({
      name: 'switchboard_push_call_responses_total',
      help: 'App call-responses, by result (accepted = 202, not_found = 404)',
      labelNames: ['result'] as const,
      registers,
    }),
    held: new Gauge({
      name: 'switchboard_push_held_calls',
      help: 'Incoming-call requests currently held by this process',
      registers,
    }),
    devicesRemoved: new Counter({
      name: 'switchboard_push_devices_removed_total',
      help: 'Devices removed because the push service rejected their token',
      labelNames: ['platform'] as const,
      registers,
    }),
    hangupReasons: new Counter({
      name: 'switchboard_push_hangup_reasons_total',
      help: 'Reasons apps gave for not answering a call (POST /api/hangup-reason/)',
      labelNames: ['reason'] as const,
      registers,
    }),
    appCalls: new Counter({
      name: 'switchboard_push_app_calls_total',
      help: 'Call setup results reported by apps (POST /api/log-metrics/)',
      labelNames: ['result', 'reason', 'os', 'direction'] as const,
      registers,
    }),
    vialerCallSuccess: new Counter({
      name: 'vialer_call_success_total',
      help: 'The amount of successful calls that were made using the Vialer app',
      labelNames: VIALER_SUCCESS_LABELS,
      registers,
    }),
    vialerCallFailure: new Counter({
      name: 'vialer_call_failure_total',
      help: 'The amount of calls that failed during setup using the Vialer app',
      labelNames: VIALER_FAILURE_LABELS,
      registers,
    }),
    vialerHangupReason: new Counter({
      name: 'vialer_hangup_reason_total',
      help: 'The amount of why a call was ended for the Vialer app',
      labelNames: VIALER_HANGUP_LABELS,
      registers,
    }),
    vialerIncoming(deviceFound) {
      if (deviceFound) incomingSuccess.inc({ action: 'Received', os: 'Middleware' });
      else {
        incomingFailed.inc({
          action: 'Received',
          failed_reason: 'failed no sip_user_id',
          os: 'Middleware',
        });
      }
    },
    vialerAnswer(answer) {
      const os = originalOs(answer.platform);
      if (answer.status === 'ACK') pushSuccess.inc({ direction: 'Incoming', os });
      else if (answer.reason === 'unavailable') {
        pushFailed.inc({ direction: 'Incoming', os, failed_reason: 'Device not available' });
      } else if (answer.reason === 'timeout') {
        pushFailed.inc({
          direction: 'Incoming',
          os,
          failed_reason: 'Unable to get response from phone',
        });
      }
    },
  };
}

/** Values of a label the Vialer apps send (their `StatsConstants` / `VialerStats`). */
const KNOWN_VALUES: Partial<Record<VialerLabel, readonly string[]>> = {
  os: ['Android', 'iOS'],
  direction: ['incoming', 'outgoing', 'Incoming', 'Outgoing'],
  connection_type: ['TLS', 'TCP', 'UDP'],
  network: ['WiFi', '5G', '4G', '3G', '2G', 'unknown', 'NoConnection'],
  hangup_reason: ['user', 'remote', 'REMOTE'],
  failed_reason: [
    'AUDIO_RX_TX',
    'AUDIO_TX',
    'AUDIO_RX',
    'OK_MIDDLEWARE_NO_CALL',
    'INSUFFICIENT_NETWORK',
    'DECLINED_ANOTHER_CALL_IN_PROGRESS',
    'DECLINED_ANOTHER_VIALER_CALL_IN_PROGRESS',
    'DECLINED',
    'CALL_COMPLETED_ELSEWHERE',
    'ORIGINATOR_CANCELLED',
    'ORIGINATOR_CANCELED',
  ],
};

/** Distinct free-form values kept per label (app and OS versions, operators, codecs). */
const FREE_FORM_CAPS: Partial<Record<VialerLabel, number>> = {
  app_version: 50,
  os_version: 50,
  network_operator: 50,
  codec: 20,
};

/**
 * Bounds the label values of the original's `vialer_*` series, keeping what the Vialer apps
 * send unchanged:
 * - a missing value is `None` (the original's exporter wrote Python's `str(None)`), and
 *   `network_operator` is empty on WiFi (the original dropped it there);
 * - `os`, `direction`, `connection_type`, `network`, `hangup_reason`, `failed_reason`: the
 *   apps' constants (case-insensitive, written as the apps write them), and for
 *   `failed_reason` also a SIP status code (`486`); anything else `other`;
 * - `mos`: a number from 0 to 5, one decimal (`4.50` → `4.5`); else `other`;
 * - `app_version`, `os_version`, `network_operator`, `codec`: printable, at most 40
 *   characters, and at most a few dozen distinct values per label; later new ones `other`.
 */
export class VialerLabels {
  readonly #seen = new Map<VialerLabel, Set<string>>();

  /** The labels `names` of one `POST /api/log-metrics/` body (`fields`: its text values). */
  labels<L extends VialerLabel>(
    names: readonly L[],
    fields: Readonly<Record<string, string>>,
  ): Record<L, string> {
    const out = {} as Record<L, string>;
    for (const name of names) out[name] = this.value(name, fields);
    return out;
  }

  /** One bounded label value. */
  value(name: VialerLabel, fields: Readonly<Record<string, string>>): string {
    if (name === 'network_operator' && (fields.network ?? '').toLowerCase() === 'wifi') return '';
    const raw = fields[name];
    if (raw === undefined) return 'None';
    const known = KNOWN_VALUES[name];
    if (known) {
      const match =
        known.find((v) => v === raw) ?? known.find((v) => v.toLowerCase() === raw.toLowerCase());
      if (match) return match;
      return name === 'failed_reason' && /^[1-6][0-9]{2}$/.test(raw) ? raw : 'other';
    }
    if (name === 'mos') {
      const mos = /^[0-9]+(\.[0-9]+)?$/.test(raw) ? Number(raw) : Number.NaN;
      return mos >= 0 && mos <= 5 ? mos.toFixed(1) : 'other';
    }
    // biome-ignore lint/suspicious/noControlCharactersInRegex: printable only
    if (raw.length > 40 || /[\u0000-\u001f\u007f"\\]/.test(raw)) return 'other';
    let seen = this.#seen.get(name);
    if (!seen) {
      seen = new Set();
      this.#seen.set(name, seen);
    }
    if (seen.has(raw)) return raw;
    if (seen.size >= (FREE_FORM_CAPS[name] ?? 20)) return 'other';
    seen.add(raw);
    return raw;
  }
}

/**
 * Bounds a client-supplied label value: lower-cased, characters outside `[a-z0-9_.-]` become
 * `_`, at most 40 characters, empty → `none`. At most `maxDistinct` (default 50) distinct
 * values per `seen` set; later new values become `other`.
 */
export function boundedLabel(value: string, seen: Set<string>, maxDistinct = 50): string {
  let label = value
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '_')
    .slice(0, 40);
  if (label === '') label = 'none';
  if (seen.has(label)) return label;
  if (seen.size >= maxDistinct) return 'other';
  seen.add(label);
  return label;
}
