/**
 * The reporter interface: cacofonisk's `BaseReporter`, typed. Implement any of the methods
 * (all optional) and hand the reporter to a runner (runner.ts).
 */
import type { AmiEvent } from '../ami/message.ts';
import type {
  AttendedTransferEvent,
  BDialEndEvent,
  BDialEvent,
  BlindTransferEvent,
  BlondeTransferEvent,
  CallEvent,
  HangupEvent,
  QueueCallerAbandonEvent,
  UpEvent,
  UserEventEvent,
} from './events.ts';

/** Where an event came from. */
export interface EventContext {
  /** Name of the Asterisk server (its configured name, or `host:port`; `recording` for files). */
  server: string;
}

/**
 * Receives call events from a runner. Every method is optional; each gets the call event
 * (shapes in events.ts) and the {@link EventContext}. Methods may return a promise: runners
 * do not wait for it (a slow reporter must not hold up the engine); rejections are logged.
 */
export interface Reporter {
  /** Phones started ringing for a caller (`b_dial`). */
  onBDial?(event: BDialEvent, context: EventContext): void | Promise<void>;
  /** A reported dial ended (`b_dial_end`), with the lower-case `DialStatus`. */
  onBDialEnd?(event: BDialEndEvent, context: EventContext): void | Promise<void>;
  /** A call was connected (`up`). */
  onUp?(event: UpEvent, context: EventContext): void | Promise<void>;
  /** An attended transfer completed (`attended_transfer`). */
  onAttendedTransfer?(event: AttendedTransferEvent, context: EventContext): void | Promise<void>;
  /** A blind transfer's destination started ringing (`blind_transfer`). */
  onBlindTransfer?(event: BlindTransferEvent, context: EventContext): void | Promise<void>;
  /** An attended transfer completed while the targets were ringing (`blonde_transfer`). */
  onBlondeTransfer?(event: BlondeTransferEvent, context: EventContext): void | Promise<void>;
  /** A call ended (`hangup`), with its reason. */
  onHangup?(event: HangupEvent, context: EventContext): void | Promise<void>;
  /** A caller left a queue unanswered (`queue_caller_abandon`). */
  onQueueCallerAbandon?(
    event: QueueCallerAbandonEvent,
    context: EventContext,
  ): void | Promise<void>;
  /** A dialplan `UserEvent` on a known channel (`user_event`). */
  onUserEvent?(event: UserEventEvent, context: EventContext): void | Promise<void>;
  /** Every call event, whatever its kind, after its specific method. */
  onCallEvent?(event: CallEvent, context: EventContext): void | Promise<void>;
  /** Every raw AMI event, before the engine sees it. */
  onAmiEvent?(event: AmiEvent, context: EventContext): void | Promise<void>;
  /** The run ended (recording finished, or the live runner stopped). */
  close?(): void | Promise<void>;
}

/** The reporter method for each call event name. */
export const REPORTER_METHODS = {
  b_dial: 'onBDial',
  b_dial_end: 'onBDialEnd',
  up: 'onUp',
  attended_transfer: 'onAttendedTransfer',
  blind_transfer: 'onBlindTransfer',
  blonde_transfer: 'onBlondeTransfer',
  hangup: 'onHangup',
  queue_caller_abandon: 'onQueueCallerAbandon',
  user_event: 'onUserEvent',
} as const satisfies Record<CallEvent['event'], keyof Reporter>;

/** Called with a reporter's rejected promise or thrown error; the run goes on. */
export type ReporterErrorHandler = (error: unknown, event: CallEvent | AmiEvent) => void;

function settle(result: unknown, onError: ReporterErrorHandler, event: CallEvent | AmiEvent) {
  if (result instanceof Promise) result.catch((error: unknown) => onError(error, event));
}

/** Calls `method` and routes a throw or a rejection to `onError`; never throws. */
function invoke(
  call: () => unknown,
  onError: ReporterErrorHandler,
  event: CallEvent | AmiEvent,
): void {
  try {
    settle(call(), onError, event);
  } catch (error) {
    onError(error, event);
  }
}

/**
 * Hands one call event to the matching reporter method, then to `onCallEvent`. Each method
 * is called whatever the other does: one that throws or rejects is reported to `onError`
 * and never stops the other or the caller.
 */
export function dispatchCallEvent(
  reporter: Reporter,
  event: CallEvent,
  context: EventContext,
  onError: ReporterErrorHandler,
): void {
  const method = reporter[REPORTER_METHODS[event.event]] as
    | ((event: CallEvent, context: EventContext) => void | Promise<void>)
    | undefined;
  if (method !== undefined) invoke(() => method.call(reporter, event, context), onError, event);
  const generic = reporter.onCallEvent;
  if (generic !== undefined) invoke(() => generic.call(reporter, event, context), onError, event);
}

/**
 * The reporter's `onAmiEvent` wrapped so that a throw or rejection goes to `onError`, or
 * `undefined` when the reporter has no such method (runners skip the call altogether).
 */
export function amiEventHandler(
  reporter: Reporter,
  context: EventContext,
  onError: ReporterErrorHandler,
): ((event: AmiEvent) => void) | undefined {
  const method = reporter.onAmiEvent;
  if (method === undefined) return undefined;
  return (event) => invoke(() => method.call(reporter, event, context), onError, event);
}
