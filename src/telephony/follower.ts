/**
 * Following an originated call to its outcome ({@link CallFollower}): `OriginateResponse`,
 * the dialplan's DTMF user events, `Hangup`, a lost connection. The wire facts are in
 * originate.ts, which places the call and re-exports this module.
 *
 * @module
 */
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
