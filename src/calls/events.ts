/**
 * Call events: the output of the call-event engine, in the shape `SCHEMA.md` (the
 * conformance schema, test/fixtures/conformance/SCHEMA.md) defines. These are the lines
 * `switchboard replay --format jsonl` prints, the `data` of `call.*` bus messages and the
 * argument of every reporter method.
 */
import type { AmiEvent } from '../ami/message.ts';

/** A caller ID or connected line: Asterisk's `<unknown>` is reported as `""`. */
export interface CallerId {
  name: string;
  num: string;
}

/**
 * A snapshot of one channel, taken when the call event was reported (later changes to the
 * channel do not alter it). Exactly cacofonisk's `SimpleChannel` fields, in camelCase.
 */
export interface ChannelSnapshot {
  /** Asterisk channel name, e.g. `SIP/150010001-00000004` or `PJSIP/201-0000000a`. */
  name: string;
  /** The channel's `Uniqueid`. */
  uniqueid: string;
  /** The channel's `Linkedid` (the `Uniqueid` of the channel that started the call chain). */
  linkedid: string;
  /** Asterisk channel state from the last `Newchannel`/`Newstate`: 0 down, 4 ring, 5 ringing, 6 up. */
  state: number;
  /** `AccountCode`, from `Newchannel`, updated by `NewAccountCode`. */
  accountCode: string;
  /** From `Newchannel` `CallerIDName`/`CallerIDNum`, updated by `NewCallerid`. */
  callerId: CallerId;
  /** From `Newchannel` `ConnectedLineName`/`ConnectedLineNum`, updated by `NewConnectedLine`. */
  connectedLine: CallerId;
  /** `Exten` from `Newchannel`; rewritten to the transfer extension or the dialled number (originate). */
  exten: string;
  /** Raw `CID-CallingPres` of the last `NewCallerid`, or `null` if none was seen. */
  callingPres: string | null;
  /**
   * `true` when Switchboard first learnt of the channel from `CoreShowChannels` after a
   * (re)connect, not from its `Newchannel` (it began while the connection was down, or
   * before Switchboard attached). Such a channel's `exten` is the extension it was at when
   * listed, not the one it was created with, and its `callingPres` is `null` (the list
   * does not carry it) until a `NewCallerid`. Absent otherwise. Not enumerable, so JSON
   * output (`replay`/`watch --format jsonl`, the bus, webhooks, SSE) never contains it and
   * keeps cacofonisk's shape; spreading a snapshot (`{...snapshot}`) drops it too.
   */
  readonly resynced?: true;
}

/** `hangup.reason`: derived from the `Hangup` event's `Cause` and the caller's state. */
export type HangupReason =
  | 'completed'
  | 'no-answer'
  | 'busy'
  | 'rejected'
  | 'answered-elsewhere'
  | 'cancelled'
  | 'failed';

/** One or more phones on the called side started ringing on behalf of `caller`. */
export interface BDialEvent {
  event: 'b_dial';
  caller: ChannelSnapshot;
  /** Sorted by `name` (code-point order), ties by `uniqueid`. */
  targets: ChannelSnapshot[];
}

/** A dial reported earlier (`b_dial` or `blind_transfer`) ended; `targets` has one channel. */
export interface BDialEndEvent {
  event: 'b_dial_end';
  caller: ChannelSnapshot;
  targets: ChannelSnapshot[];
  /** `DialStatus` of the AMI `DialEnd` event in lower case: `answer`, `busy`, `cancel`, `noanswer`, ... */
  reason: string;
}

/** The call between `caller` and `target` is connected (audio bridged). */
export interface UpEvent {
  event: 'up';
  caller: ChannelSnapshot;
  target: ChannelSnapshot;
}

/** `transferer` joined `caller` to `target`, who had answered a consultation call. */
export interface AttendedTransferEvent {
  event: 'attended_transfer';
  caller: ChannelSnapshot;
  transferer: ChannelSnapshot;
  target: ChannelSnapshot;
}

/** `transferer` sent `caller` to another extension without consulting; `targets` ring. */
export interface BlindTransferEvent {
  event: 'blind_transfer';
  caller: ChannelSnapshot;
  transferer: ChannelSnapshot;
  /** Sorted by `name` (code-point order), ties by `uniqueid`. */
  targets: ChannelSnapshot[];
}

/** An attended transfer completed while the `targets` were still ringing. */
export interface BlondeTransferEvent {
  event: 'blonde_transfer';
  caller: ChannelSnapshot;
  transferer: ChannelSnapshot;
  /** Sorted by `name` (code-point order), ties by `uniqueid`. */
  targets: ChannelSnapshot[];
}

/** The call that `caller` started (or owns after a transfer) ended. */
export interface HangupEvent {
  event: 'hangup';
  caller: ChannelSnapshot;
  reason: HangupReason;
}

/** `caller` left a queue before an agent answered (AMI `QueueCallerAbandon`). */
export interface QueueCallerAbandonEvent {
  event: 'queue_caller_abandon';
  caller: ChannelSnapshot;
}

/** A dialplan `UserEvent` on a known channel; `amiEvent` is the AMI event exactly as received. */
export interface UserEventEvent {
  event: 'user_event';
  caller: ChannelSnapshot;
  amiEvent: AmiEvent;
}

/** Every call event the engine reports, discriminated by `event`. */
export type CallEvent =
  | BDialEvent
  | BDialEndEvent
  | UpEvent
  | AttendedTransferEvent
  | BlindTransferEvent
  | BlondeTransferEvent
  | HangupEvent
  | QueueCallerAbandonEvent
  | UserEventEvent;

/** The call event names: `b_dial`, `b_dial_end`, `up`, ... */
export type CallEventName = CallEvent['event'];

/** Every call event name, in the order of the schema's table. */
export const CALL_EVENT_NAMES: readonly CallEventName[] = [
  'b_dial',
  'b_dial_end',
  'up',
  'attended_transfer',
  'blind_transfer',
  'blonde_transfer',
  'hangup',
  'queue_caller_abandon',
  'user_event',
];
