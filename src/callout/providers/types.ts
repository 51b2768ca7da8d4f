/**
 * The contract between the escalation service and a telephony provider (Asterisk, Twilio,
 * dry run). A provider places ONE call per {@link DialRequest} and reports what happened
 * through the {@link AttemptSink}; the service has already written the attempt row before
 * `dial` is called, and writes every report before acting on it.
 */

/** How an attempt ended (Asterisk's outcomes; Twilio's statuses are mapped onto them). */
export type AttemptOutcome = 'answered' | 'busy' | 'noanswer' | 'congestion' | 'failed';

/** One call to place. */
export interface DialRequest {
  /** The attempt's id (unique; used as the provider-side call id where possible). */
  attemptId: string;
  /** The event (escalation) id. */
  eventId: string;
  /** Validated number: digits with an optional leading `+`. */
  telno: string;
  /** `en` or `ja-jp`. */
  language: string;
  /** Head text (hostname substituted). */
  head: string;
  /** The caller's message. */
  message: string;
  /** Foot text. */
  foot: string;
  /** Ring time before no answer, in ms. */
  ringTimeoutMs: number;
}

/** Where a provider reports; each method writes to the database before resolving. */
export interface AttemptSink {
  /** The provider's id of the call (Twilio `CallSid`, Asterisk `Uniqueid`). */
  placed(attemptId: string, providerCallId: string): Promise<void>;
  /** A valid key (`1` or `2`), reported as soon as it is known (before the hang-up). */
  digit(attemptId: string, digit: string): Promise<void>;
  /** The attempt's end: its outcome and, if any, the key pressed. */
  finished(attemptId: string, outcome: AttemptOutcome, digit?: string): Promise<void>;
  /**
   * The call could not be prepared (its message could not be synthesized or converted: a
   * missing tool, a TTS service down): no call was placed, and none can be for this event.
   * The service ends the attempt `failed` and the event with status 99 (system error, the
   * seed's `eventstatus`), `reason` in its history. Missing: reported as `finished(failed)`.
   * @param reason one phrase, no secret (e.g. `espeak-ng is not installed or not executable`).
   */
  unprepared?(attemptId: string, reason: string): Promise<void>;
}

/**
 * Where a provider reports what it learns about calls it does not follow: placed before an
 * AMI reconnect (the follower was lost with the connection) or by another process (before
 * `serve` restarted, or a second `serve` on the same database). Found by the call's id (the
 * attempt id) or its provider call id; written to the stored attempt when it exists and is
 * not finished (the database is the truth), else ignored.
 */
export interface StoredAttemptSink {
  /** A valid key of such a call (`1` or `2`). */
  digit(attemptId: string, digit: string): Promise<void>;
  /** The provider's id of such a call (Asterisk `Uniqueid`), learnt from its answer. */
  placed(attemptId: string, providerCallId: string): Promise<void>;
  /** Its end, learnt from `source` (`Hangup`, `OriginateResponse`). */
  finished(
    attemptId: string,
    outcome: AttemptOutcome,
    source: 'hangup' | 'originate_response',
  ): Promise<void>;
  /**
   * The attempt not yet finished (`dialing` or `unknown`) of this provider whose provider call
   * id is `providerCallId`, if any.
   */
  attemptByProviderCallId(providerCallId: string): Promise<string | undefined>;
}

/** A telephony provider. */
export interface CalloutProvider {
  /** `asterisk`, `twilio` or `dryrun` (stored on the event and attempt). */
  readonly name: string;
  /**
   * Places the call and follows it, reporting to `sink`. Resolves when this process has
   * nothing more to do for the call (Asterisk/dry run: at its end; Twilio: once created, the
   * rest arrives by webhooks). Never rejects: failures are reported as outcome `failed`.
   */
  dial(request: DialRequest, sink: AttemptSink): Promise<void>;
  /**
   * False while the provider cannot place calls at all (Asterisk: no AMI connection, e.g.
   * just after `serve` started, or while it reconnects). The worker then dials nobody and
   * decides the event again later, instead of spending the person's attempt on a call that
   * never left. Missing = always ready.
   */
  ready?(): boolean;
  /**
   * Starts reporting results of calls this process does not follow (see
   * {@link StoredAttemptSink}); called once by the service at start. Missing = none (Twilio
   * routes its webhooks by `CallSid` already; dry run has nothing to follow).
   */
  listen?(sink: StoredAttemptSink): void;
  /** Releases resources (idempotent). */
  close?(): Promise<void>;
}

/** Maps a pressed key to the seed's person status: `1` → 1, `2` → 2, anything else undefined. */
export function statusOfDigit(digit: string | undefined | null): 1 | 2 | undefined {
  if (digit === '1') return 1;
  if (digit === '2') return 2;
  return undefined;
}
