/**
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
 * `docs/asterisk/extensions.conf`); it is in follower.ts (re-exported).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { AmiNotSentError } from '../ami/errors.ts';
import type { AmiAction } from '../ami/protocol.ts';
import {
  TelephonyValidationError,
  validateCallerId,
  validateChannel,
  validateDialplanName,
  validateVariables,
} from './dialstring.ts';
import {
  type CallEventSource,
  CallFollower,
  type CallResult,
  type FollowOptions,
} from './follower.ts';

export {
  type CallEnd,
  type CallEventSource,
  CallFollower,
  type CallOutcome,
  type CallResult,
  CallTrackingError,
  type FollowOptions,
  outcomeFromReason,
} from './follower.ts';

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
