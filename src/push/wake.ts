/**
 * Why this file is long: {@link WakeService} is one race per held call (re-sent pushes, the
 * apps' answers, the caller's hangup, the PBX closing the request, the budget, shutdown); it
 * is kept in one class so every way a held call ends is decided in one place. The
 * cross-process coordinators are in coordinator.ts.
 *
 * Waking the app and waiting for its answer: the heart of the push middleware.
 *
 * `POST /api/incoming-call/` becomes a {@link HeldCall}: the push goes to every device of the
 * SIP account, is re-sent every `intervalMs` (at most `maxPushes` per device), and the PBX's
 * request is held until one of these happens (event-driven: a promise resolved by the event
 * itself, no polling):
 *
 * - an app answers `available` → `status=ACK` (the other devices get a cancel push);
 * - every device answered unavailable, or its token was rejected (device removed), or its
 *   platform is not configured → `status=NAK` at once;
 * - the caller hangs up (call event) or the PBX closes the request → NAK, cancel pushes;
 * - the budget (`budgetMs`) runs out → NAK, cancel pushes.
 *
 * The push's `unique_key` is the PBX's `call_id` when it sent one (as the original: the PBX
 * correlates pushes, call-responses, hangup reasons and app metrics with its own `${UNIQUEID}`),
 * else a random key. Several calls may be held under one key (a queue ringing several SIP
 * accounts with the caller's id): a call-response goes to the call whose push carried its
 * `message_start_time`; when none did (a client that does not echo it), to the held calls of
 * its `sip_user_id` if it sent one (the current Vialer apps do), else to every call held
 * under the key (the original's shared cache entry did the same). A response that matches no
 * call held here is forwarded to the other processes holding the key.
 *
 * The app's `POST /api/call-response/` may reach another process: a {@link Coordinator}
 * routes it to the holder. {@link createMemoryCoordinator} (one process) or
 * {@link createRedisCoordinator}: each holder adds its instance id to the set
 * `<prefix>push:held:<key>` (expiring with the budget) and subscribes to
 * `<prefix>push:resp:<instance>`; a responder that does not hold the key runs one Lua script
 * that publishes the response to the channel of every holder in the set (so an unknown key is
 * one round trip and changes nothing).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Route } from './apps.ts';
import type { Coordinator } from './coordinator.ts';
import type { Device, DeviceStore, Platform } from './devices.ts';
import type { PushMetrics } from './metrics.ts';
import type { PushPayload, SendResult } from './senders/types.ts';

export {
  type Coordinator,
  type CoordinatorHandlers,
  createMemoryCoordinator,
  createRedisCoordinator,
  type RedisCoordinatorOptions,
} from './coordinator.ts';

/** What the PBX sent (validated). */
export interface IncomingCall {
  sipUserId: string;
  phonenumber: string;
  callerId: string;
  /**
   * The PBX's reference of the call (`''` = none): the `unique_key` of the push and the
   * call-response, and matched against call events' `uniqueid` / `linkedid`.
   */
  callId: string;
  /** URL the app posts its call-response to (`response_api` of the payload). */
  responseApi: string;
}

/** NAK reasons (also the `reason` label of `switchboard_push_answers_total`). */
export type NakReason =
  | 'no_device'
  | 'unavailable'
  | 'token_rejected'
  | 'push_failed'
  | 'timeout'
  | 'caller_hangup'
  | 'pbx_gone'
  | 'shutdown'
  | 'error';

/**
 * The answer for the PBX. `platform`: of the device that answered (ACK, unavailable) or, for
 * other NAKs, of the call's first device (the original's `os` label of its metrics).
 */
export type WakeAnswer =
  | { status: 'ACK'; reason: 'available'; uniqueKey: string; platform?: Platform }
  | { status: 'NAK'; reason: NakReason; uniqueKey?: string; platform?: Platform };

/** The app's `POST /api/call-response/` (validated). */
export interface CallResponse {
  uniqueKey: string;
  available: boolean;
  /** `message_start_time` echoed by the app: epoch seconds (float), from the push payload. */
  messageStartTime: number;
  /** `sip_user_id` the current Vialer apps add (optional): narrows a key shared by several calls. */
  sipUserId?: string;
}

// ---------------------------------------------------------------------------------------------
// The wake-up service
// ---------------------------------------------------------------------------------------------

/** Settings of the wake-up (from `push`). */
export interface WakeSettings {
  /** Longest hold of an incoming-call request, ms (default 4000). */
  budgetMs: number;
  /** Push re-send interval, ms (default 1000). */
  intervalMs: number;
  /** Pushes per call and device (default 3). */
  maxPushes: number;
  /**
   * Send `{type: "cancel"}` pushes to the devices that were woken when the call is taken on
   * another device or abandoned (default true; `createPushModule` turns them on with
   * `devicesPerAccount: several` only: the original sent none, and an iOS app that does not
   * report a VoIP push to CallKit is terminated by iOS).
   */
  cancelPushes?: boolean;
}

/** Dependencies of {@link WakeService}. */
export interface WakeServiceOptions {
  settings: WakeSettings;
  devices: DeviceStore;
  /** Where a device's pushes go; undefined counts as `not_configured` (see `apps.ts`). */
  route: (device: Device) => Route | undefined;
  coordinator: Coordinator;
  metrics: PushMetrics;
  logger: Logger;
  /**
   * Called once per answer given to the PBX (ACK or NAK), e.g. to publish it on the bus for
   * the console. Must not throw. Never receives a push token.
   */
  onWake?: (wake: WakeRecord) => void;
}

/**
 * One finished wake-up as the console shows it (`push.wake.answered` on the bus): what the
 * PBX was answered and how long it took. Never contains a push token.
 */
export interface WakeRecord {
  /** When the answer was given, epoch ms. */
  atMs: number;
  status: 'ACK' | 'NAK';
  /** `available` for ACK, else the {@link NakReason}. */
  reason: string;
  /** The SIP account the PBX asked for ('' when the answer came before the call was read). */
  sipUserId: string;
  /** Platform of the answering (or first) device, when any. */
  platform?: Platform;
  /** Devices pushed. */
  devices: number;
  /** From the incoming-call request to the answer, ms. */
  heldMs: number;
  /** From the push answered to the app's call-response (its `message_start_time`), ms. */
  roundTripMs?: number;
}

type DeviceState = 'pending' | 'unavailable' | 'gone' | 'failed';

interface DeviceEntry {
  device: Device;
  state: DeviceState;
  /** Push attempts made. */
  attempts: number;
  /** Pushes accepted by the push service. */
  delivered: number;
  /** The last push in flight (cancel pushes wait for it). */
  inflight: Promise<void>;
}

interface HeldCall {
  key: string;
  call: IncomingCall;
  entries: Map<string, DeviceEntry>;
  /** `message_start_time` (epoch ms) of each push → device id, to attribute responses. */
  sentAt: Map<number, string>;
  anonymousUnavailable: number;
  /** Platform of the device that answered unavailable (metrics), when known. */
  unavailablePlatform?: Platform;
  settled: boolean;
  /** When the PBX's request arrived, epoch ms. */
  startedMs: number;
  /** Round trip of the last call-response matched to this call, ms. */
  roundTripMs?: number;
  resolve(answer: WakeAnswer): void;
  budgetTimer?: NodeJS.Timeout;
  resendTimer?: NodeJS.Timeout;
}

/** Short description of an error, never containing tokens or credentials. */
function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : 'unknown error';
}

/**
 * Holds incoming calls until an app answers. One per process; {@link WakeService.start}
 * subscribes the coordinator, {@link WakeService.stop} answers every held call NAK (shutdown)
 * and closes the coordinator (not the senders: {@link createPushModule} owns those).
 */
export class WakeService {
  readonly #options: WakeServiceOptions;
  /** Held calls by unique key (several when a PBX sends one call_id for several accounts). */
  readonly #held = new Map<string, Set<HeldCall>>();
  readonly #byCallId = new Map<string, Set<HeldCall>>();
  /** Calls announced to the coordinator per key (released when the last one settles). */
  readonly #holds = new Map<string, number>();
  #heldCount = 0;
  #stopped = false;

  constructor(options: WakeServiceOptions) {
    this.#options = options;
  }

  /** Incoming calls held now by this process. */
  get heldCount(): number {
    return this.#heldCount;
  }

  /** Subscribes to the coordinator (call before serving). */
  async start(): Promise<void> {
    await this.#options.coordinator.start({
      onResponse: (response) => this.#respondLocal(response) === 'accepted',
      onHangup: (callId) => this.#hangupLocal(callId),
    });
  }

  /** Answers every held call `NAK` (reason `shutdown`) and stops the coordinator. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const calls of [...this.#held.values()]) {
      for (const held of [...calls]) this.#settle(held, 'NAK', 'shutdown');
    }
    await this.#options.coordinator.stop();
  }

  /**
   * Handles `POST /api/incoming-call/`: pushes the account's devices and resolves with the
   * answer for the PBX. Never rejects (store errors answer NAK `error`).
   * @param signal aborted when the PBX closed the request (→ NAK `pbx_gone`, cancel pushes).
   */
  async incomingCall(call: IncomingCall, signal?: AbortSignal): Promise<WakeAnswer> {
    const { metrics, logger, settings } = this.#options;
    const key = call.callId !== '' ? call.callId : randomBytes(16).toString('hex');
    const startedMs = Date.now();
    const record = { sipUserId: call.sipUserId, devices: 0, startedMs };
    if (this.#stopped) {
      return this.#count({ status: 'NAK', reason: 'shutdown', uniqueKey: key }, record);
    }
    let devices: Device[];
    try {
      devices = await this.#options.devices.listBySipUser(call.sipUserId);
    } catch (error) {
      logger.error({ err: describe(error) }, 'push: device store failed');
      metrics.incomingFailed.inc({ reason: 'error' });
      return this.#count({ status: 'NAK', reason: 'error', uniqueKey: key }, record);
    }
    metrics.vialerIncoming(devices.length > 0);
    if (devices.length === 0) {
      return this.#count({ status: 'NAK', reason: 'no_device', uniqueKey: key }, record);
    }

    // Counted before the hold is announced, so that a call settling meanwhile under the same
    // key does not release it.
    this.#holds.set(key, (this.#holds.get(key) ?? 0) + 1);
    try {
      await this.#options.coordinator.hold(key, settings.budgetMs + 1000);
    } catch (error) {
      // The app's answer can still reach this process; other processes will answer 404/503.
      logger.warn({ err: describe(error) }, 'push: cannot announce the call to other processes');
    }
    return new Promise<WakeAnswer>((resolve) => {
      const held: HeldCall = {
        key,
        call,
        entries: new Map(
          devices.map((device) => [
            device.id,
            { device, state: 'pending', attempts: 0, delivered: 0, inflight: Promise.resolve() },
          ]),
        ),
        sentAt: new Map(),
        anonymousUnavailable: 0,
        settled: false,
        startedMs,
        resolve,
      };
      let calls = this.#held.get(key);
      if (!calls) {
        calls = new Set();
        this.#held.set(key, calls);
      }
      calls.add(held);
      this.#heldCount += 1;
      if (call.callId !== '') {
        const byCall = this.#byCallId.get(call.callId) ?? new Set<HeldCall>();
        this.#byCallId.set(call.callId, byCall);
        byCall.add(held);
      }
      metrics.held.inc();
      held.budgetTimer = setTimeout(() => this.#settle(held, 'NAK', 'timeout'), settings.budgetMs);
      if (settings.maxPushes > 1) {
        held.resendTimer = setInterval(() => this.#pushAll(held), settings.intervalMs);
      }
      if (signal) {
        if (signal.aborted) this.#settle(held, 'NAK', 'pbx_gone');
        else signal.addEventListener('abort', () => this.#settle(held, 'NAK', 'pbx_gone'));
      }
      if (this.#stopped) this.#settle(held, 'NAK', 'shutdown');
      this.#pushAll(held);
    });
  }

  /**
   * Handles `POST /api/call-response/`: releases the held call here, or forwards the
   * response to the processes holding its key.
   * @returns `accepted` (202) or `not_found` (404: unknown key, or the call is over).
   * @throws when the response must be forwarded and the coordination service is down.
   */
  async callResponse(response: CallResponse): Promise<'accepted' | 'not_found'> {
    let result = this.#respondLocal(response);
    if (result === 'not_found' && this.#options.coordinator.kind !== 'memory') {
      result = (await this.#options.coordinator.forward(response)) ? 'accepted' : 'not_found';
    }
    this.#options.metrics.callResponses.inc({ result });
    return result;
  }

  /**
   * A caller hung up: every call held for `callId` (matched against the PBX's `call_id`) is
   * answered NAK `caller_hangup` and its devices get a cancel push. Also told to the other
   * processes when a coordinator is shared.
   */
  callerHungUp(callId: string): void {
    if (callId === '') return;
    this.#hangupLocal(callId);
    this.#options.coordinator.broadcastHangup(callId);
  }

  #hangupLocal(callId: string): void {
    const calls = this.#byCallId.get(callId);
    if (!calls) return;
    for (const held of [...calls]) this.#settle(held, 'NAK', 'caller_hangup');
  }

  /**
   * The calls held here a response is for: the one whose push carried its
   * `message_start_time`; else those of its `sip_user_id` when it sent one; else all.
   */
  #targets(response: CallResponse, sentMs: number): HeldCall[] {
    const live = [...(this.#held.get(response.uniqueKey) ?? [])].filter((h) => !h.settled);
    const exact = live.filter((h) => h.sentAt.has(sentMs));
    if (exact.length > 0) return exact;
    if (response.sipUserId === undefined) return live;
    return live.filter((h) => h.call.sipUserId === response.sipUserId);
  }

  #respondLocal(response: CallResponse): 'accepted' | 'not_found' {
    const sentMs = Math.round(response.messageStartTime * 1000);
    const targets = this.#targets(response, sentMs);
    if (targets.length === 0) return 'not_found';
    for (const held of targets) {
      const deviceId = held.sentAt.get(sentMs);
      const entry = deviceId === undefined ? undefined : held.entries.get(deviceId);
      const platform = entry?.device.platform ?? this.#onlyPlatform(held);
      const roundTripMs = Date.now() - sentMs;
      this.#options.logger.info(
        {
          uniqueKey: response.uniqueKey,
          device: deviceId,
          platform,
          available: response.available,
        },
        'push: app answered',
      );
      if (Number.isFinite(roundTripMs) && roundTripMs >= 0 && roundTripMs < 3_600_000) {
        this.#options.metrics.roundTrip.observe(
          { platform: platform ?? 'unknown' },
          roundTripMs / 1000,
        );
        held.roundTripMs = roundTripMs;
      }
      if (response.available) {
        this.#settle(held, 'ACK', 'available', entry?.device.id, platform);
        continue;
      }
      held.unavailablePlatform ??= platform;
      if (entry && entry.state === 'pending') entry.state = 'unavailable';
      else held.anonymousUnavailable += 1;
      this.#checkDone(held);
    }
    return 'accepted';
  }

  #onlyPlatform(held: HeldCall): Platform | undefined {
    const platforms = new Set([...held.entries.values()].map((e) => e.device.platform));
    return platforms.size === 1 ? [...platforms][0] : undefined;
  }

  /** Sends the next push to every pending device that has attempts left. */
  #pushAll(held: HeldCall): void {
    if (held.settled) return;
    let any = false;
    for (const entry of held.entries.values()) {
      if (entry.state !== 'pending' || entry.attempts >= this.#options.settings.maxPushes) continue;
      any = true;
      entry.attempts += 1;
      entry.inflight = this.#pushOne(held, entry, entry.attempts);
    }
    if (!any && held.resendTimer) {
      clearInterval(held.resendTimer);
      held.resendTimer = undefined;
    }
  }

  async #pushOne(held: HeldCall, entry: DeviceEntry, attempt: number): Promise<void> {
    // A unique message_start_time per push (ms resolution) tells which device answered; it
    // is unique among the calls sharing the key too.
    let sentMs = Date.now();
    const shared = this.#held.get(held.key) ?? new Set([held]);
    while ([...shared].some((h) => h.sentAt.has(sentMs))) sentMs += 1;
    held.sentAt.set(sentMs, entry.device.id);
    const payload: PushPayload = {
      type: 'call',
      unique_key: held.key,
      phonenumber: held.call.phonenumber,
      caller_id: held.call.callerId,
      response_api: held.call.responseApi,
      message_start_time: sentMs / 1000,
      attempt,
    };
    const result = await this.#send(entry.device, payload, 'call');
    if (result.ok) {
      entry.delivered += 1;
      return;
    }
    if (held.settled || entry.state !== 'pending') return;
    if (result.reason === 'rejected') {
      entry.state = 'gone';
      await this.#removeDevice(entry.device);
      this.#checkDone(held);
    } else if (result.reason === 'not_configured') {
      entry.state = 'failed';
      this.#checkDone(held);
    } else if (entry.attempts >= this.#options.settings.maxPushes && entry.delivered === 0) {
      // Every attempt failed: nothing will wake this device.
      entry.state = 'failed';
      this.#checkDone(held);
    }
  }

  async #send(device: Device, payload: PushPayload, kind: 'call' | 'cancel'): Promise<SendResult> {
    const { metrics, logger } = this.#options;
    const route = this.#options.route(device);
    const result: SendResult = route
      ? await route.sender.send(route.target, payload)
      : {
          ok: false,
          reason: 'not_configured',
          detail: `app not configured for ${device.platform}`,
        };
    if (result.ok) {
      metrics.pushesSent.inc({ platform: device.platform, kind });
      logger.info(
        {
          uniqueKey: payload.unique_key,
          device: device.id,
          platform: device.platform,
          kind,
          ...('attempt' in payload ? { attempt: payload.attempt } : {}),
        },
        'push: notification sent',
      );
    } else {
      metrics.pushesFailed.inc({ platform: device.platform, reason: result.reason });
      logger.warn(
        {
          device: device.id,
          platform: device.platform,
          kind,
          reason: result.reason,
          detail: result.detail,
        },
        'push: notification failed',
      );
    }
    return result;
  }

  async #removeDevice(device: Device): Promise<void> {
    try {
      if (await this.#options.devices.remove(device.id)) {
        this.#options.metrics.devicesRemoved.inc({ platform: device.platform });
        this.#options.logger.info(
          { device: device.id, platform: device.platform, sipUserId: device.sipUserId },
          'push: device removed (token rejected by the push service)',
        );
      }
    } catch (error) {
      this.#options.logger.error({ err: describe(error) }, 'push: cannot remove device');
    }
  }

  /** NAK at once when no device can still answer. */
  #checkDone(held: HeldCall): void {
    if (held.settled) return;
    const states = [...held.entries.values()].map((e) => e.state);
    const pending = states.filter((s) => s === 'pending').length;
    if (pending > held.anonymousUnavailable) return;
    if (states.includes('unavailable') || held.anonymousUnavailable > 0) {
      this.#settle(held, 'NAK', 'unavailable', undefined, held.unavailablePlatform);
    } else if (states.includes('gone')) {
      this.#settle(held, 'NAK', 'token_rejected');
    } else {
      this.#settle(held, 'NAK', 'push_failed');
    }
  }

  #settle(
    held: HeldCall,
    status: 'ACK',
    reason: 'available',
    winner?: string,
    platform?: Platform,
  ): void;
  #settle(
    held: HeldCall,
    status: 'NAK',
    reason: NakReason,
    winner?: undefined,
    platform?: Platform,
  ): void;
  #settle(
    held: HeldCall,
    status: 'ACK' | 'NAK',
    reason: string,
    winner?: string,
    platform?: Platform,
  ): void {
    if (held.settled) return;
    held.settled = true;
    clearTimeout(held.budgetTimer);
    clearInterval(held.resendTimer);
    const calls = this.#held.get(held.key);
    calls?.delete(held);
    if (calls?.size === 0) this.#held.delete(held.key);
    const holds = (this.#holds.get(held.key) ?? 1) - 1;
    if (holds > 0) this.#holds.set(held.key, holds);
    else {
      this.#holds.delete(held.key);
      this.#options.coordinator.release(held.key);
    }
    this.#heldCount -= 1;
    const byCall = this.#byCallId.get(held.call.callId);
    byCall?.delete(held);
    if (byCall?.size === 0) this.#byCallId.delete(held.call.callId);
    this.#options.metrics.held.dec();
    const first = held.entries.values().next().value?.device.platform;
    const answer = {
      status,
      reason,
      uniqueKey: held.key,
      ...((platform ?? first) ? { platform: platform ?? first } : {}),
    } as WakeAnswer;
    held.resolve(
      this.#count(answer, {
        sipUserId: held.call.sipUserId,
        devices: held.entries.size,
        startedMs: held.startedMs,
        ...(held.roundTripMs === undefined ? {} : { roundTripMs: held.roundTripMs }),
      }),
    );
    // Cancel pushes: devices that were (or may be being) woken and did not answer.
    if (this.#options.settings.cancelPushes === false) return;
    const cancelReason = status === 'ACK' ? 'answered_elsewhere' : reason;
    for (const entry of held.entries.values()) {
      if (entry.device.id === winner || entry.state !== 'pending' || entry.attempts === 0) continue;
      entry.inflight.then(() => {
        if (entry.delivered === 0) return;
        this.#send(
          entry.device,
          { type: 'cancel', unique_key: held.key, reason: cancelReason },
          'cancel',
        ).catch((error: unknown) => {
          this.#options.logger.warn(
            { err: describe(error), device: entry.device.id, uniqueKey: held.key },
            'push: cancel push failed',
          );
        });
      });
    }
  }

  /**
   * Counts and logs (one line: `push: ACK` / `push: NAK` with its reason) the PBX's answer,
   * and hands it to `onWake` (the console's wake-ups).
   */
  #count(
    answer: WakeAnswer,
    call: { sipUserId: string; devices: number; startedMs: number; roundTripMs?: number },
  ): WakeAnswer {
    this.#options.logger.info(
      { uniqueKey: answer.uniqueKey, reason: answer.reason, platform: answer.platform },
      `push: ${answer.status}`,
    );
    this.#options.metrics.answers.inc({ status: answer.status, reason: answer.reason });
    this.#options.metrics.vialerAnswer(answer);
    if (this.#options.onWake !== undefined) {
      const now = Date.now();
      try {
        this.#options.onWake({
          atMs: now,
          status: answer.status,
          reason: answer.reason,
          sipUserId: call.sipUserId,
          ...(answer.platform === undefined ? {} : { platform: answer.platform }),
          devices: call.devices,
          heldMs: now - call.startedMs,
          ...(call.roundTripMs === undefined ? {} : { roundTripMs: call.roundTripMs }),
        });
      } catch (error) {
        this.#options.logger.warn({ err: describe(error) }, 'push: wake-up listener failed');
      }
    }
    return answer;
  }
}
