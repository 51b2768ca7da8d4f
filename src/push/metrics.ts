/**
 * Prometheus series of the push module (the seed's metrics, served directly at `/metrics`
 * instead of through a separate exporter). Every name starts with `switchboard_push_`.
 *
 * Label values that come from apps (hangup reasons, failure reasons, OS) are bounded with
 * {@link boundedLabel} so that a client cannot create unbounded series.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

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
}

/**
 * Registers the push metrics on `registry`.
 * @throws Error when they are already registered there (one push module per registry).
 */
export function createPushMetrics(registry: Registry): PushMetrics {
  const registers = [registry];
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
  };
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
