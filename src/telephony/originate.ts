/**
 * Why this file is long: {@link CallFollower} follows one originated call through its
 * events (OriginateResponse, DTMF user events, hangup, connection loss) as one state machine;
 * the functions that build and send the action stay beside it because both callers (alert
 * calls, announcements) use them together.
 *
 * Placing a call through AMI `Originate` and following it to its outcome.
 *
 * Wire facts (Asterisk 22, `test/fixtures/asterisk22/recordings/dtmf_local.raw.txt`):
 * `Action: Originate` with `Async: true` is answered at once with `Response: Success` /
 * `Message: Originate successfully queued`; the outcome arrives later as
 * `Event: OriginateResponse` carrying the action's `ActionID`, `Response: Success|Failure`,
 * `Reason` (Asterisk's `AST_CONTROL_*` code: 0 failed, 1 hung up / no answer, 3 ringing until
 * the timeout, 4 answered, 5 busy, 8 congestion) and the originated channel's `Uniqueid`.
 * The dialplan then reports the key pressed with `UserEvent(SwitchboardDTMF,Digit: 1,CallId:
 * ...)` (`Event: UserEvent`, `UserEvent: SwitchboardDTMF`, `Digit: 1`, same `Uniqueid`) and
 * the call ends with `Event: Hangup` (`Cause: 16`, `Cause-txt: Normal Clearing`).
 *
 * {@link CallFollower} is the reusable part: the alert-call module reads `digits`, the
 * announcement module reads the outcome and its `SwitchboardPlayed` user event (see
 * `docs/asterisk/extensions.conf`).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { AmiOriginateOptions, AmiOriginateResult } from '../ami/client.ts';
import {
  AmiActionError,
  AmiConnectionLostError,
  AmiNotSentError,
  AmiTimeoutError,
} from '../ami/errors.ts';
import type { AmiEvent } from '../ami/message.ts';
import { field } from '../ami/message.ts';
import type { AmiAction } from '../ami/protocol.ts';
import {
  TelephonyValidationError,
  validateCallerId,
  validateChannel,
  validateDialplanName,
  validateVariables,
} from './dialstring.ts';
import { type PlacedCallEvents, type PlacedCallRoute, placedCalls } from './placed-calls.ts';

/** How a call ended up. */
export type CallOutcome = 'answered' | 'busy' | 'noanswer' | 'congestion' | 'failed';

/** Why a {@link CallResult} was settled. */
export type CallEnd =
  /** The channel hung up (normal end of an answered call). */
  | 'hangup'
  /** `endOnDigit` and a digit arrived. */
  | 'digit'
  /** The call was not answered (busy, no answer, congestion, failure). */
  | 'unanswered'
  /** Asterisk refused the `Originate` action itself (`Response: Error`). */
  | 'refused'
  /** No `OriginateResponse` in time, or the answered call outlived `maxCallMs`. */
  | 'timeout'
  /** The caller's `AbortSignal` fired. */
  | 'aborted';

/** The result of following one call. Times are `Date`s; causes are Q.850 numbers. */
export interface CallResult {
  /** Switchboard's id of the call (channel variable `SWITCHBOARD_CALL_ID`). */
  callId: string;
  /** ActionID of the `Originate` (empty when it was never sent). */
  actionId: string;
  outcome: CallOutcome;
  end: CallEnd;
  /** `Reason` of the `OriginateResponse` (undefined when none arrived). */
  reason: number | undefined;
  /** `Uniqueid` of the originated channel (the `;1` half for Local channels). */
  uniqueid: string | undefined;
  /** Name of the originated channel. */
  channel: string | undefined;
  /** Valid keys reported by the dialplan (`UserEvent: SwitchboardDTMF`, `Digit`), in order. */
  digits: string[];
  /** Every `UserEvent` of this call (any name), in order. */
  userEvents: AmiEvent[];
  /** `Cause` of the channel's `Hangup` (Q.850: 16 normal, 17 busy, 19 no answer, ...). */
  hangupCause: number | undefined;
  /** `Cause-txt` of the `Hangup`. */
  hangupCauseText: string | undefined;
  /** When the `OriginateResponse` said answered. */
  answeredAt: Date | undefined;
  /** When the result was settled. */
  endedAt: Date;
  /** Asterisk's `Message` when the action was refused (`end: 'refused'`). */
  error: string | undefined;
}

/**
 * Maps an `OriginateResponse` `Reason` to an outcome: 4 answered, 5 busy, 8 congestion,
 * 1 and 3 no answer, anything else (0, missing) failed.
 */
export function outcomeFromReason(reason: number | undefined): CallOutcome {
  switch (reason) {
    case 4:
      return 'answered';
    case 5:
      return 'busy';
    case 8:
      return 'congestion';
    case 1:
    case 3:
      return 'noanswer';
    default:
      return 'failed';
  }
}

/**
 * What placing and following a call needs from an AMI client ({@link AmiClient} satisfies
 * it): its events (through the connection's {@link PlacedCalls} index), `originate` and
 * `action` (for `Hangup`).
 */
export interface CallEventSource extends PlacedCallEvents {
  /** See {@link AmiClient.originate}. */
  originate(action: AmiAction, options?: AmiOriginateOptions): Promise<AmiOriginateResult>;
  action(
    action: AmiAction,
    options?: { timeoutMs?: number },
  ): Promise<{ response: Record<string, string | string[]> }>;
}

/** Options of {@link CallFollower} (and of {@link originate}). */
export interface FollowOptions {
  /** Name of the user event carrying a valid key (`Digit` field). Default `SwitchboardDTMF`. */
  digitEvent?: string;
  /** Settle as soon as the first digit arrives (end `digit`). Default false: wait for the hangup. */
  endOnDigit?: boolean;
  /** Longest wait for the `OriginateResponse` after the action was queued, in ms. Default: ring time + 30000. */
  originateResponseTimeoutMs?: number;
  /** Longest answered call, in ms; then (end `timeout`) it is hung up if `hangupOnTimeout`. Default 600000. */
  maxCallMs?: number;
  /** Send AMI `Hangup` for the channel on `maxCallMs` or abort. Default true. */
  hangupOnTimeout?: boolean;
  /** Called once when the call is answered. */
  onAnswered?: (call: { uniqueid: string | undefined; channel: string | undefined }) => void;
  /** Called for each valid key. */
  onDigit?: (digit: string, event: AmiEvent) => void;
  /** Called for each user event of the call (any name). */
  onUserEvent?: (event: AmiEvent) => void;
  /** Aborts following (end `aborted`; the channel is hung up if known and `hangupOnTimeout`). */
  signal?: AbortSignal;
}

/**
 * The `Originate` WAS SENT and the AMI connection dropped before the call's end was known
 * (before its `OriginateResponse`, or while the answered call went on): the call may exist,
 * ring, be answered. Never redial blindly: its later events reach the stored-call listeners
 * of the {@link PlacedCalls} index (by call id), else leave it to a lease.
 */
export class CallTrackingError extends Error {
  /** What was known when tracking was lost (outcome may still be `failed`). */
  readonly partial: CallResult;
  constructor(message: string, partial: CallResult, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'CallTrackingError';
    this.partial = partial;
  }
}

const DTMF = /^[0-9*#A-D]$/;

/**
 * Follows one call: sends its `Originate` ({@link CallEventSource.originate}, which completes
 * with the `OriginateResponse`) and takes the call's `UserEvent`s and `Hangup` from the
 * connection's {@link PlacedCalls} index (by call id, then by the channel's `Uniqueid`).
 * Events of the call that arrive before its answer is known are buffered (at most 1,000).
 */
export class CallFollower {
  /**
   * Settles with the result; rejects with {@link CallTrackingError} (sent, connection lost),
   * {@link AmiNotSentError} (never sent), {@link AmiTimeoutError} (no response to the action).
   */
  readonly result: Promise<CallResult>;
  readonly #source: CallEventSource;
  readonly #options: FollowOptions;
  readonly #digitEvent: string;
  readonly #state: CallResult;
  readonly #route: PlacedCallRoute;
  #resolve!: (result: CallResult) => void;
  #reject!: (error: Error) => void;
  #settled = false;
  #responded = false;
  #buffer: AmiEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #onAbort = (): void => {
    this.#hangupChannel();
    this.#finish('aborted');
  };

  constructor(source: CallEventSource, callId: string, options: FollowOptions = {}) {
    this.#source = source;
    this.#options = options;
    this.#digitEvent = (options.digitEvent ?? 'SwitchboardDTMF').toLowerCase();
    this.#state = {
      callId,
      actionId: '',
      outcome: 'failed',
      end: 'timeout',
      reason: undefined,
      uniqueid: undefined,
      channel: undefined,
      digits: [],
      userEvents: [],
      hangupCause: undefined,
      hangupCauseText: undefined,
      answeredAt: undefined,
      endedAt: new Date(0),
      error: undefined,
    };
    this.result = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#route = placedCalls(source).follow(callId, {
      event: (event) => this.#handle(event),
      // Before the OriginateResponse, the client rejects the pending Originate itself
      // (AmiConnectionLostError, handled in send()); after it, only this tells.
      disconnect: (error) =>
        this.#responded &&
        this.#fail(
          new CallTrackingError(
            'AMI connection lost while following the call',
            this.#snapshot(),
            error,
          ),
        ),
    });
    if (options.signal?.aborted) queueMicrotask(this.#onAbort);
    else options.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /**
   * Sends the `Originate` (the call id as `ActionID` tag) and follows the answer.
   * @param actionTimeoutMs timeout of the action's own response (default: the client's).
   */
  send(action: AmiAction, actionTimeoutMs?: number): void {
    if (this.#settled) return;
    this.#source
      .originate(action, {
        tag: this.#state.callId,
        ...(actionTimeoutMs === undefined ? {} : { timeoutMs: actionTimeoutMs }),
        responseTimeoutMs: this.#options.originateResponseTimeoutMs ?? 60_000,
        onQueued: (response) => {
          this.#state.actionId = field(response, 'ActionID') ?? '';
        },
        onOriginateResponse: (event) => this.#onOriginateResponse(event),
      })
      .then(
        // handled synchronously by onOriginateResponse (a fake client may only resolve)
        ({ originateResponse }) => this.#onOriginateResponse(originateResponse),
        (error: Error) => {
          if (this.#settled) return;
          if (error instanceof AmiActionError) {
            this.#state.error = error.amiMessage;
            this.#finish('refused');
          } else if (error instanceof AmiTimeoutError && error.action === 'OriginateResponse') {
            // queued, and no outcome in time: not answered (as before; Asterisk always sends one)
            this.#finish('timeout');
          } else if (error instanceof AmiConnectionLostError) {
            this.#state.actionId = error.actionId;
            this.#fail(
              new CallTrackingError(
                'AMI connection lost after the Originate was sent: the call may have been placed',
                this.#snapshot(),
                error,
              ),
            );
          } else {
            this.#fail(error);
          }
        },
      );
  }

  #snapshot(): CallResult {
    return {
      ...this.#state,
      digits: [...this.#state.digits],
      userEvents: [...this.#state.userEvents],
      endedAt: new Date(),
    };
  }

  #arm(ms: number, fn: () => void): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(fn, ms);
  }

  #handle(event: AmiEvent): void {
    if (this.#settled) return;
    if (this.#state.answeredAt === undefined) {
      // not attributable yet: keep the events naming the call until the answer is known
      if (field(event, 'CallId') === this.#state.callId && this.#buffer.length < 1000) {
        this.#buffer.push(event);
      }
      return;
    }
    if (event.Event === 'UserEvent') this.#onUserEvent(event);
    else if (event.Event === 'Hangup') this.#onHangup(event);
  }

  #onOriginateResponse(event: AmiEvent): void {
    if (this.#settled || this.#responded) return;
    this.#responded = true;
    this.#state.actionId = field(event, 'ActionID') ?? this.#state.actionId;
    const reasonText = field(event, 'Reason');
    const reason = reasonText === undefined || reasonText === '' ? undefined : Number(reasonText);
    const uniqueid = field(event, 'Uniqueid');
    this.#state.reason = Number.isFinite(reason) ? reason : undefined;
    this.#state.uniqueid = uniqueid === undefined || uniqueid === '<null>' ? undefined : uniqueid;
    this.#state.channel = field(event, 'Channel');
    const success = field(event, 'Response') === 'Success';
    const outcome = outcomeFromReason(this.#state.reason);
    this.#state.outcome =
      success && outcome === 'answered' ? 'answered' : outcome === 'answered' ? 'failed' : outcome;
    if (this.#state.outcome !== 'answered') {
      this.#finish('unanswered');
      return;
    }
    this.#state.answeredAt = new Date();
    if (this.#state.uniqueid !== undefined) this.#route.setUniqueid(this.#state.uniqueid);
    this.#arm(this.#options.maxCallMs ?? 600_000, () => {
      this.#hangupChannel();
      this.#finish('timeout');
    });
    this.#options.onAnswered?.({ uniqueid: this.#state.uniqueid, channel: this.#state.channel });
    // events of this call that arrived before its OriginateResponse was handled
    const buffered = this.#buffer;
    this.#buffer = [];
    for (const early of buffered) this.#handle(early);
  }

  #onUserEvent(event: AmiEvent): void {
    this.#state.userEvents.push(event);
    this.#options.onUserEvent?.(event);
    if ((field(event, 'UserEvent') ?? '').toLowerCase() !== this.#digitEvent) return;
    const digit = field(event, 'Digit')?.trim() ?? '';
    if (!DTMF.test(digit)) return;
    this.#state.digits.push(digit);
    this.#options.onDigit?.(digit, event);
    if (this.#options.endOnDigit) this.#finish('digit');
  }

  #onHangup(event: AmiEvent): void {
    const cause = Number(field(event, 'Cause'));
    this.#state.hangupCause = Number.isFinite(cause) ? cause : undefined;
    this.#state.hangupCauseText = field(event, 'Cause-txt');
    this.#finish('hangup');
  }

  #hangupChannel(): void {
    const channel = this.#state.channel;
    if (channel === undefined || this.#options.hangupOnTimeout === false) return;
    this.#source.action({ Action: 'Hangup', Channel: channel, Cause: 16 }).catch(() => undefined);
  }

  #cleanup(lost: boolean): void {
    this.#settled = true;
    clearTimeout(this.#timer);
    this.#buffer = [];
    this.#route.close(lost);
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
  }

  #finish(end: CallEnd): void {
    if (this.#settled) return;
    this.#cleanup(false);
    this.#state.end = end;
    this.#resolve(this.#snapshot());
  }

  #fail(error: Error): void {
    if (this.#settled) return;
    this.#cleanup(error instanceof CallTrackingError);
    this.#reject(error);
  }
}

/** What to originate. Values are validated before anything is sent. */
export interface OriginateRequest {
  /** The channel to call, already expanded from a template (`expandDialString`); re-checked. */
  dialString: string;
  /** Dialplan context the answered call enters (e.g. `switchboard-callout`). */
  context?: string;
  /** Extension in `context`. Default `s`. */
  exten?: string;
  /** Priority (number or label). Default 1. */
  priority?: number | string;
  /** Instead of context/exten/priority: an application to run (e.g. `Playback`). */
  application?: string;
  /** Arguments of `application` (checked like a variable value: no `,` `&` ...). */
  data?: string;
  /** Caller ID, e.g. `"Switchboard" <999>` (checked by `validateCallerId`). */
  callerId?: string;
  /** Ring time before giving up, in ms (`Timeout`). Default 30000. */
  timeoutMs?: number;
  /** Channel variables (`Variable: NAME=value`, checked by `validateVariables`). */
  variables?: Readonly<Record<string, string>>;
  /** Switchboard's id of the call, set as `SWITCHBOARD_CALL_ID`. Default: 16 random hex digits. */
  callId?: string;
  /** `Account` (CDR account code), checked like a dialplan name. */
  account?: string;
  /**
   * Must be true or absent: only asynchronous originates are supported (a synchronous one
   * blocks the AMI connection for the whole ring time and hides the outcome).
   */
  async?: true;
  /** Timeout of the AMI action's own response, in ms. Default: the client's. */
  actionTimeoutMs?: number;
}

/**
 * Builds the AMI `Originate` action for a request (validated). Source: Asterisk
 * `manager.c` `action_originate` (Channel, Context, Exten, Priority, Application, Data,
 * Timeout, CallerID, Variable, Account, Async).
 *
 * @throws {TelephonyValidationError} naming the bad field.
 */
export function buildOriginateAction(request: OriginateRequest, callId: string): AmiAction {
  if (request.async !== undefined && request.async !== true) {
    throw new TelephonyValidationError('async', 'only asynchronous Originate is supported');
  }
  const action: AmiAction = {
    Action: 'Originate',
    Channel: validateChannel(request.dialString, 'dialString'),
  };
  if (request.application !== undefined) {
    if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(request.application)) {
      throw new TelephonyValidationError('application', 'must be an application name');
    }
    action.Application = request.application;
    if (request.data !== undefined && request.data !== '') {
      validateVariables({ data: request.data });
      action.Data = request.data;
    }
  } else {
    if (request.context === undefined) {
      throw new TelephonyValidationError('context', 'is required (or give an application)');
    }
    action.Context = validateDialplanName(request.context, 'context');
    action.Exten = validateDialplanName(request.exten ?? 's', 'exten');
    action.Priority = validateDialplanName(String(request.priority ?? 1), 'priority');
  }
  const timeoutMs = request.timeoutMs ?? 30_000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1000 || timeoutMs > 3_600_000) {
    throw new TelephonyValidationError('timeoutMs', 'must be an integer 1000–3600000');
  }
  action.Timeout = timeoutMs;
  if (request.callerId !== undefined && request.callerId !== '') {
    action.CallerID = validateCallerId(request.callerId);
  }
  if (request.account !== undefined && request.account !== '') {
    action.Account = validateDialplanName(request.account, 'account');
  }
  action.Variable = validateVariables({ SWITCHBOARD_CALL_ID: callId, ...request.variables });
  action.Async = 'true';
  return action;
}

/** A new call id: 16 random hex digits. */
export function newCallId(): string {
  return randomBytes(8).toString('hex');
}

/**
 * Sends AMI `Originate` (Async; the client completes it with its `OriginateResponse`; the
 * call id travels as `SWITCHBOARD_CALL_ID` and as the `ActionID` tag) and follows the call to
 * its outcome with a {@link CallFollower}: resolves with the {@link CallResult} once the call
 * is unanswered (busy / noanswer / congestion / failed), hung up, timed out, or
 * (`endOnDigit`) a key was pressed. A `Response: Error` to the action resolves `failed` /
 * `refused`.
 *
 * @throws {TelephonyValidationError} a request field is invalid (nothing is sent).
 * @throws {AmiNotSentError} not connected: NEVER SENT, safe to retry (here or elsewhere).
 * @throws {AmiLimitError} too many actions waiting (nothing sent).
 * @throws {CallTrackingError} SENT, and the AMI connection dropped before the call's end was
 *   known: the call may exist; never redial blindly.
 * @throws {AmiTimeoutError} sent, no response to the action in time: maybe executed.
 */
export async function originate(
  client: CallEventSource,
  request: OriginateRequest,
  options: FollowOptions = {},
): Promise<CallResult> {
  const callId = request.callId ?? newCallId();
  if (!/^[0-9A-Za-z_.-]{1,64}$/.test(callId)) {
    throw new TelephonyValidationError('callId', 'must be 1–64 letters, digits, _ . -');
  }
  const action = buildOriginateAction(request, callId);
  const follower = new CallFollower(client, callId, {
    ...options,
    originateResponseTimeoutMs:
      options.originateResponseTimeoutMs ?? (request.timeoutMs ?? 30_000) + 30_000,
  });
  follower.send(action, request.actionTimeoutMs);
  return follower.result;
}

/** No AMI server of the set was connected: nothing was sent (safe to retry later). */
export class NoAmiServerError extends AmiNotSentError {
  constructor(servers: readonly string[]) {
    super(
      servers.join(',') || 'none',
      'Originate',
      servers.length === 0
        ? 'no AMI server configured to place calls through'
        : `no AMI server connected (of ${servers.join(', ')})`,
    );
    this.name = 'NoAmiServerError';
  }
}

/**
 * {@link originate} through the first connected client of `clients` (best first, e.g. from
 * `connectedInOrder`); when the chosen one turns out not connected at the moment of sending
 * ({@link AmiNotSentError}: nothing was sent), the next one is tried.
 *
 * @param clients candidates, evaluated at each try.
 * @throws {NoAmiServerError} none was connected (nothing sent).
 * @throws what {@link originate} throws otherwise.
 */
export async function originateThrough<T extends CallEventSource & { readonly name: string }>(
  clients: () => readonly T[],
  request: OriginateRequest,
  options: FollowOptions & { onServer?: (client: T) => void } = {},
): Promise<CallResult> {
  const tried = new Set<string>();
  const names: string[] = [];
  for (;;) {
    const client = clients().find((c) => !tried.has(c.name));
    if (client === undefined) throw new NoAmiServerError(names);
    tried.add(client.name);
    names.push(client.name);
    try {
      options.onServer?.(client);
      return await originate(client, request, options);
    } catch (error) {
      if (error instanceof AmiNotSentError && !(error instanceof NoAmiServerError)) continue;
      throw error;
    }
  }
}
