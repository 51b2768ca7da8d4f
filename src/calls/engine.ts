/**
 * Why this file is long: it is one state machine kept together on purpose. cacofonisk's
 * rule is that only the engine decides which channels form one call (transfers, pickups,
 * queues, forwards and bridge merges all re-link the same channel and bridge tables), so
 * every handler reads and writes the same state; splitting the handlers across files would
 * spread that one decision. The pure helpers (channel/bridge models, formatting) already
 * live in their own modules beside it.
 *
 * The call-event engine: AMI events in, call events out, with cacofonisk's semantics
 * (see test/fixtures/conformance/SCHEMA.md). It is the single place that decides which
 * channels form one call; reporters and sinks only format what it reports.
 *
 * One engine follows one Asterisk server. Events that refer to a channel or bridge the
 * engine has never seen (it attached mid-call) are skipped; every channel and bridge is
 * forgotten once Asterisk says it is gone (`Hangup`, `BridgeDestroy`), so the state stays
 * bounded by the calls in progress. A PBX that never says so (a flood of `Newchannel`
 * without `Hangup`) cannot grow it beyond `maxChannels` / `maxBridges`: the oldest are
 * forgotten, each reported to `onLimit`.
 */
import { type AmiEvent, field as str } from '../ami/message.ts';
import {
  AST_STATE_DOWN,
  AST_STATE_RINGING,
  AST_STATE_UP,
  Bridge,
  bridgePeersRecursive,
  Channel,
  type ChannelInit,
  cleanCallerIdPart,
  compareCodePoints,
  dialedChannels,
  dialingChannel,
  sortedSnapshots,
} from './channel.ts';
import type { CallEvent, HangupReason } from './events.ts';

/** Default {@link CallEngineOptions.maxChannels}: live channels kept per server. */
export const DEFAULT_MAX_CHANNELS = 50_000;
/** Default {@link CallEngineOptions.maxBridges}: live bridges kept per server. */
export const DEFAULT_MAX_BRIDGES = 25_000;
/**
 * Most channels one bridge, or one channel's open dials, is followed with: beyond, further
 * members (`BridgeEnter`) or dials (`DialBegin`) are skipped, so that one hostile bridge or
 * dial cannot make every event cost time proportional to the whole state. Far above what a
 * call can use (a conference beyond it reports nothing anyway: call events need two phones).
 */
export const MAX_LINKS_PER_CHANNEL = 1_000;

/**
 * The Q.850 cause assumed for a channel that ended while the connection was down: 16, normal
 * clearing, by far the most common one (what `Hangup()` in the dialplan and a phone hanging
 * up give). See {@link CallEngine.resync}.
 */
export const ASSUMED_HANGUP_CAUSE = 16;

/** What a bound made the engine forget: a live channel or a live bridge (the oldest). */
export type EngineLimitKind = 'channel' | 'bridge';

/** Receives every call event, synchronously, in the order the engine reports them. */
export type CallEventListener = (event: CallEvent) => void;

/** Options of {@link CallEngine}. */
export interface CallEngineOptions {
  /** Where call events go. */
  onCallEvent: CallEventListener;
  /**
   * Forget every channel and bridge on `FullyBooted` (cacofonisk's rule, right for
   * recordings). The live runner turns this off and resynchronises with
   * {@link CallEngine.resync} instead, so calls in progress survive a reconnect.
   * Default `true`.
   */
  resetOnFullyBooted?: boolean;
  /** Told about skipped events (unknown channel or bridge, unknown transfer type). */
  onSkip?: (reason: string, event: AmiEvent) => void;
  /**
   * Most live channels kept; a new channel beyond it makes the engine forget the oldest one
   * (no call event is reported for it; its later events are skipped as unknown). Default
   * {@link DEFAULT_MAX_CHANNELS}; config `ami.maxChannels`.
   */
  maxChannels?: number;
  /** Most live bridges kept, same policy. Default {@link DEFAULT_MAX_BRIDGES}; config `ami.maxBridges`. */
  maxBridges?: number;
  /** Told about every channel or bridge forgotten because of `maxChannels` / `maxBridges`. */
  onLimit?: (kind: EngineLimitKind, uniqueid: string) => void;
}

/** One channel as Asterisk lists it in a `CoreShowChannel` event (action `CoreShowChannels`). */
export type CoreShowChannel = AmiEvent;

function int(value: string | undefined): number {
  if (value === undefined) return Number.NaN;
  return Number.parseInt(value, 10);
}

function channelInit(event: AmiEvent): ChannelInit {
  return {
    name: str(event, 'Channel') ?? '',
    uniqueid: str(event, 'Uniqueid') ?? '',
    linkedid: str(event, 'Linkedid') ?? str(event, 'Uniqueid') ?? '',
    state: int(str(event, 'ChannelState')) || 0,
    exten: str(event, 'Exten') ?? '',
    accountCode: str(event, 'AccountCode') ?? '',
    callerIdName: str(event, 'CallerIDName') ?? '',
    callerIdNum: str(event, 'CallerIDNum') ?? '',
    connectedLineName: str(event, 'ConnectedLineName') ?? '',
    connectedLineNum: str(event, 'ConnectedLineNum') ?? '',
  };
}

/**
 * `hangup.reason` from the `Hangup` event's `Cause` (Q.850 cause code) and the caller's
 * state at that moment, as the schema's table defines.
 */
export function hangupReason(cause: number, state: number): HangupReason {
  switch (cause) {
    case 16:
      return state === AST_STATE_UP ? 'completed' : 'no-answer';
    case 17:
      return 'busy';
    case 18:
    case 19:
      return 'no-answer';
    case 21:
      return 'rejected';
    case 26:
      return 'answered-elsewhere';
    case 0:
    case 127:
      return state === AST_STATE_UP ? 'completed' : 'cancelled';
    default:
      return 'failed';
  }
}

/** The part of a channel name after its last `-` (Asterisk's per-channel sequence number). */
function channelSequence(name: string): string {
  const dash = name.lastIndexOf('-');
  return dash === -1 ? name : name.slice(dash + 1);
}

/**
 * The `Event` names {@link CallEngine.handle} uses; it ignores every other event, so a
 * reader may skip them unparsed (lazy parsing, `AmiClientOptions.wantEvent`). Keep in step
 * with the `switch` in `handle` (a test checks both).
 */
export const ENGINE_EVENTS: ReadonlySet<string> = new Set([
  'FullyBooted',
  'Newchannel',
  'Newstate',
  'NewCallerid',
  'NewConnectedLine',
  'NewAccountCode',
  'LocalBridge',
  'DialBegin',
  'DialEnd',
  'BridgeCreate',
  'BridgeEnter',
  'BridgeLeave',
  'BridgeDestroy',
  'Hangup',
  'AttendedTransfer',
  'BlindTransfer',
  'UserEvent',
  'QueueCallerAbandon',
]);

/**
 * Turns the AMI events of one Asterisk server into call events.
 *
 * Feed every event, in order, to {@link handle}; call events arrive synchronously at
 * `onCallEvent`. Never throws for unexpected input: malformed or out-of-context events
 * are skipped (and reported to `onSkip`).
 */
export class CallEngine {
  /** Live channels by `Uniqueid`. */
  readonly channels = new Map<string, Channel>();
  /** Live bridges by `BridgeUniqueid`. */
  readonly bridges = new Map<string, Bridge>();

  /** Channels and bridges forgotten so far because of `maxChannels` / `maxBridges`. */
  readonly forgotten = { channels: 0, bridges: 0 };

  /**
   * While a resync is pending: the Uniqueids that live events touched since it began (at
   * most `maxChannels`; beyond, newer ones are not recorded).
   */
  #touched: Set<string> | null = null;
  readonly #emit: CallEventListener;
  readonly #resetOnFullyBooted: boolean;
  readonly #onSkip: ((reason: string, event: AmiEvent) => void) | undefined;
  readonly #onLimit: ((kind: EngineLimitKind, uniqueid: string) => void) | undefined;
  readonly #maxChannels: number;
  readonly #maxBridges: number;

  constructor(options: CallEngineOptions) {
    this.#emit = options.onCallEvent;
    this.#resetOnFullyBooted = options.resetOnFullyBooted ?? true;
    this.#onSkip = options.onSkip;
    this.#onLimit = options.onLimit;
    this.#maxChannels = Math.max(1, options.maxChannels ?? DEFAULT_MAX_CHANNELS);
    this.#maxBridges = Math.max(1, options.maxBridges ?? DEFAULT_MAX_BRIDGES);
  }

  /** The bounds in force: `maxChannels` and `maxBridges`. */
  get limits(): { maxChannels: number; maxBridges: number } {
    return { maxChannels: this.#maxChannels, maxBridges: this.#maxBridges };
  }

  /** Forgets every channel and bridge. */
  reset(): void {
    this.channels.clear();
    this.bridges.clear();
  }

  /** Adds (or replaces) a live channel, forgetting the oldest one when the bound is reached. */
  #addChannel(channel: Channel): void {
    if (this.channels.size >= this.#maxChannels && !this.channels.has(channel.uniqueid)) {
      const oldest = this.channels.values().next().value as Channel;
      this.#forgetChannel(oldest);
    }
    this.channels.set(channel.uniqueid, channel);
  }

  /** Drops a channel the bound pushed out, and every link of other state to it. */
  #forgetChannel(channel: Channel): void {
    this.channels.delete(channel.uniqueid);
    this.#touched?.delete(channel.uniqueid);
    if (channel.bridge !== null) channel.bridge.peers.delete(channel);
    channel.bridge = null;
    if (channel.fwdLocal !== null) channel.fwdLocal.backLocal = null;
    if (channel.backLocal !== null) channel.backLocal.fwdLocal = null;
    const dialer = channel.backDial;
    if (dialer !== null) {
      const index = dialer.fwdDials.indexOf(channel);
      if (index !== -1) dialer.fwdDials.splice(index, 1);
    }
    for (const dialed of channel.fwdDials) if (dialed.backDial === channel) dialed.backDial = null;
    channel.fwdDials = [];
    channel.orphanOf = null;
    this.forgotten.channels++;
    this.#onLimit?.('channel', channel.uniqueid);
  }

  /** Adds a live bridge, forgetting the oldest one when the bound is reached. */
  #addBridge(bridge: Bridge): void {
    if (this.bridges.size >= this.#maxBridges && !this.bridges.has(bridge.uniqueid)) {
      const oldest = this.bridges.values().next().value as Bridge;
      this.bridges.delete(oldest.uniqueid);
      for (const peer of oldest.peers) if (peer.bridge === oldest) peer.bridge = null;
      oldest.peers.clear();
      this.forgotten.bridges++;
      this.#onLimit?.('bridge', oldest.uniqueid);
    }
    this.bridges.set(bridge.uniqueid, bridge);
  }

  #touch(uniqueid: string): void {
    const touched = this.#touched;
    if (touched !== null && touched.size < this.#maxChannels) touched.add(uniqueid);
  }

  /**
   * Processes one AMI event. Event types the engine does not use are ignored (those not in
   * {@link ENGINE_EVENTS}).
   *
   * Uses: FullyBooted, Newchannel, Newstate, NewCallerid, NewConnectedLine, NewAccountCode,
   * LocalBridge, DialBegin, DialEnd, BridgeCreate, BridgeEnter, BridgeLeave, BridgeDestroy,
   * Hangup, AttendedTransfer, BlindTransfer, UserEvent, QueueCallerAbandon.
   */
  handle(event: AmiEvent): void {
    switch (event.Event) {
      case 'Newchannel':
        this.#onNewchannel(event);
        return;
      case 'Newstate':
        this.#onNewstate(event);
        return;
      case 'NewCallerid':
        this.#onNewCallerid(event);
        return;
      case 'NewConnectedLine':
        this.#onNewConnectedLine(event);
        return;
      case 'NewAccountCode':
        this.#onNewAccountCode(event);
        return;
      case 'LocalBridge':
        this.#onLocalBridge(event);
        return;
      case 'DialBegin':
        this.#onDialBegin(event);
        return;
      case 'DialEnd':
        this.#onDialEnd(event);
        return;
      case 'BridgeCreate':
        this.#onBridgeCreate(event);
        return;
      case 'BridgeEnter':
        this.#onBridgeEnter(event);
        return;
      case 'BridgeLeave':
        this.#onBridgeLeave(event);
        return;
      case 'BridgeDestroy':
        this.bridges.delete(str(event, 'BridgeUniqueid') ?? '');
        return;
      case 'Hangup':
        this.#onHangup(event);
        return;
      case 'AttendedTransfer':
        this.#onAttendedTransfer(event);
        return;
      case 'BlindTransfer':
        this.#onBlindTransfer(event);
        return;
      case 'UserEvent':
        this.#onUserEvent(event);
        return;
      case 'QueueCallerAbandon':
        this.#onQueueCallerAbandon(event);
        return;
      case 'FullyBooted':
        if (this.#resetOnFullyBooted) this.reset();
        return;
      default:
        return;
    }
  }

  /**
   * Marks the start of a resynchronisation: call it when the `CoreShowChannels` action is
   * sent after a (re)connect, keep feeding live events to {@link handle} meanwhile, then
   * call {@link resync} with the list, or {@link abortResync} when there is none. Channels
   * that live events touched in between are newer than the list and are left as the events
   * made them.
   */
  beginResync(): void {
    this.#touched = new Set();
  }

  /**
   * Ends a resynchronisation for which Asterisk gave no list (the user may not run
   * `CoreShowChannels`, the action failed or timed out): every channel is kept as it is and
   * followed by its live events. Nothing is reported: a call that ended while the connection
   * was down cannot be told from one still in progress, so no hangup is invented.
   */
  abortResync(): void {
    this.#touched = null;
  }

  /**
   * Brings the engine in line with what Asterisk reports after a (re)connect, instead of
   * forgetting everything as cacofonisk does; docs/ami.md ("After a reconnect") has the
   * table of what is reported for each thing that can happen while the connection was down.
   *
   * `channels` are the `CoreShowChannel` events of the `CoreShowChannels` action (their
   * `BridgeId` gives bridge membership). Channels touched by live events since
   * {@link beginResync} are left alone; for the others, in this order:
   *
   * 1. Every dial reported before (`b_dial`) that ended meanwhile reports its one
   *    `b_dial_end`: `answer` if the target is up now; `cancel` if the caller is gone, or if
   *    another of its targets is up now; `noanswer` if only the target is gone. A dial whose
   *    target began to ring unseen reports its `b_dial` first (as live events would have).
   * 2. Known channels that Asterisk no longer has ended meanwhile: each is hung up as if a
   *    `Hangup` with `Cause: 16` (normal clearing, the common cause) had arrived, so a
   *    caller's call reports `hangup` `completed` if it was up, `no-answer` otherwise. A
   *    caller that was up with a party that is still there reports it only once that party
   *    is with another phone (now or later) or hangs up: if the party is handed on to a
   *    phone nobody calls, that was a transfer, and no hangup is reported (as live).
   * 3. Known channels get their state, caller ID, connected line and account code from the
   *    list; unknown ones are added ({@link ChannelSnapshot.resynced}), `Local/` halves
   *    paired by name as `LocalBridge` would have.
   * 4. Bridge membership follows the list. A caller now in a bridge with another phone
   *    reports `up` (a call answered meanwhile, or already up when Switchboard attached); so
   *    does a caller now with another party than at its last `up` (transferred meanwhile),
   *    and a phone left with another after its caller went (it becomes the caller).
   */
  resync(channels: readonly CoreShowChannel[]): void {
    const touched = this.#touched ?? new Set<string>();
    this.#touched = null;
    const present = new Map<string, CoreShowChannel>();
    for (const item of channels) {
      const uniqueid = str(item, 'Uniqueid');
      if (uniqueid && !touched.has(uniqueid)) present.set(uniqueid, item);
    }
    const alive = (channel: Channel): boolean =>
      this.channels.get(channel.uniqueid) === channel &&
      (present.has(channel.uniqueid) || touched.has(channel.uniqueid));

    // 1. Dials that ended while we were away: exactly one b_dial_end for each reported one.
    const ended = this.#endDials(present, touched, alive);

    // 2. Channels that ended while we were away: Local halves first, so that their partners'
    // links are cleared the way real hangups would have, then the phones.
    const gone: Channel[] = [];
    for (const channel of this.channels.values()) {
      if (!present.has(channel.uniqueid) && !touched.has(channel.uniqueid)) gone.push(channel);
    }
    gone.sort((a, b) => Number(b.isLocal) - Number(a.isLocal));
    // Open dials to them or ended end now: one pass over the channels, not one per channel
    // (that was quadratic: 50,000 channels gone at once took minutes).
    const goneSet = new Set(gone);
    if (goneSet.size > 0 || ended.size > 0) {
      const unlink = (dialed: Channel): boolean => goneSet.has(dialed) || ended.has(dialed);
      for (const other of this.channels.values()) {
        if (other.fwdDials.length > 0 && other.fwdDials.some(unlink)) {
          other.fwdDials = other.fwdDials.filter((dialed) => !unlink(dialed));
        }
      }
    }
    for (const target of ended) target.backDial = null;
    // A caller that went while the party it was connected to stayed: that party may have been
    // transferred on (it is the caller then, see #bridgeEntered) or be about to hang up too;
    // the caller's hangup waits until that is known (Channel.orphanOf).
    const orphans: Channel[] = [];
    for (const channel of gone) {
      channel.backDial = null;
      if (channel.bridge !== null) {
        channel.bridge.peers.delete(channel);
        channel.bridge = null;
      }
      const partner = channel.upTarget;
      const left =
        channel.isCalling &&
        channel.isPickedUp &&
        !channel.isLocal &&
        !channel.ignoreHangup &&
        channel.blindTransferer === null &&
        partner !== null &&
        partner.orphanOf === null &&
        !goneSet.has(partner) &&
        this.channels.get(partner.uniqueid) === partner;
      if (left) {
        partner.orphanOf = channel;
        orphans.push(partner);
      }
      this.#hangup(channel, ASSUMED_HANGUP_CAUSE, !left);
    }

    // 3. Channels Asterisk has: add the unknown ones, update the known ones.
    const added: Channel[] = [];
    for (const [uniqueid, item] of present) {
      let channel = this.channels.get(uniqueid);
      if (channel === undefined) {
        channel = new Channel(channelInit(item));
        channel.resynced = true;
        this.#addChannel(channel);
        added.push(channel);
      } else {
        const state = int(str(item, 'ChannelState'));
        if (!Number.isNaN(state)) channel.state = state;
        channel.callerIdName = cleanCallerIdPart(str(item, 'CallerIDName'));
        channel.callerIdNum = cleanCallerIdPart(str(item, 'CallerIDNum'));
        channel.connectedLineName = cleanCallerIdPart(str(item, 'ConnectedLineName'));
        channel.connectedLineNum = cleanCallerIdPart(str(item, 'ConnectedLineNum'));
        channel.accountCode = str(item, 'AccountCode') ?? channel.accountCode;
      }
    }
    this.#pairLocalHalves(added);

    // 4. Bridge membership: leave bridges Asterisk no longer reports, enter the reported ones.
    const entered: Channel[] = [];
    for (const [uniqueid, item] of present) {
      const channel = this.channels.get(uniqueid);
      if (channel === undefined) continue;
      const bridgeId = str(item, 'BridgeId') ?? '';
      if (channel.bridge !== null && channel.bridge.uniqueid !== bridgeId) {
        channel.bridge.peers.delete(channel);
        channel.bridge = null;
      }
      if (bridgeId !== '' && channel.bridge === null) {
        let bridge = this.bridges.get(bridgeId);
        if (bridge === undefined) {
          bridge = new Bridge(bridgeId);
          this.#addBridge(bridge);
        }
        if (bridge.peers.size >= MAX_LINKS_PER_CHANNEL) continue;
        bridge.peers.add(channel);
        channel.bridge = bridge;
        entered.push(channel);
      }
    }
    // A caller no longer with the party of its last `up`: its conversation with it is over,
    // the next one (now, or when it is answered) is reported.
    for (const uniqueid of present.keys()) {
      const channel = this.channels.get(uniqueid);
      if (channel === undefined || !channel.isCalling || !channel.isPickedUp) continue;
      const partner = channel.upTarget;
      const peers = bridgePeersRecursive(channel);
      const partnerHere = partner !== null && this.channels.get(partner.uniqueid) === partner;
      if (partnerHere && (peers.has(partner) || peers.size < 2)) continue;
      channel.isPickedUp = false;
      entered.push(channel);
    }
    for (const channel of entered) this.#bridgeEntered(channel);
    for (const [bridgeId, bridge] of this.bridges) {
      if (bridge.peers.size === 0) this.bridges.delete(bridgeId);
    }
    // A party not handed on and with another phone now: its caller's call ended meanwhile.
    // One alone (ringing a transfer target, in a queue, ...) keeps it pending.
    for (const partner of orphans) {
      if (partner.orphanOf !== null && bridgePeersRecursive(partner).size >= 2) {
        this.#releaseOrphan(partner);
      }
    }
  }

  /** The hangup of `channel`'s former caller, pending since a resync (see Channel.orphanOf). */
  #releaseOrphan(channel: Channel): void {
    const caller = channel.orphanOf;
    if (caller === null) return;
    channel.orphanOf = null;
    this.#emit({
      event: 'hangup',
      caller: caller.snapshot(),
      reason: hangupReason(ASSUMED_HANGUP_CAUSE, caller.state),
    });
  }

  /**
   * Step 1 of {@link resync}: the open dials (`DialBegin` without `DialEnd`) whose target no
   * live event touched. A dial goes on while its target is listed and not up and its dialler
   * and caller are there; every other one ended while we were away. Each ended dial that
   * was reported reports its `b_dial_end` (target state from the list, caller's as last
   * seen: the order live events have). Returns the targets of the ended dials; their links
   * are cleared by the caller, after every reason was derived from intact links.
   */
  #endDials(
    present: ReadonlyMap<string, CoreShowChannel>,
    touched: ReadonlySet<string>,
    alive: (channel: Channel) => boolean,
  ): Set<Channel> {
    const ended = new Set<Channel>();
    for (const target of this.channels.values()) {
      const dialer = target.backDial;
      if (dialer === null || touched.has(target.uniqueid)) continue;
      const item = present.get(target.uniqueid);
      if (item !== undefined) {
        const listed = int(str(item, 'ChannelState'));
        if (!Number.isNaN(listed) && listed !== target.state) {
          const before = target.state;
          const rings =
            !target.isLocal &&
            !target.bDialSent &&
            before === AST_STATE_DOWN &&
            (listed === AST_STATE_RINGING || listed === AST_STATE_UP) &&
            alive(dialer);
          if (rings) {
            // It began to ring (and maybe answered) unseen: the b_dial live events would
            // have given, with the target ringing.
            target.state = AST_STATE_RINGING;
            this.#bDialRinging(target);
          }
          target.state = listed;
        }
      }
      const caller = dialingChannel(target);
      const answered = item !== undefined && target.state === AST_STATE_UP;
      if (item !== undefined && !answered && alive(dialer) && alive(caller)) {
        // Still dialling, as far as the list shows: its DialEnd may have gone by unseen all
        // the same; then the target's Hangup ends it (#hangup).
        if (target.bDialSent) target.dialAcrossResync = true;
        continue;
      }
      ended.add(target);
      if (!target.bDialSent || target.isLocal || caller.isLocal) continue;
      let reason: string;
      if (answered) reason = 'answer';
      else if (!alive(caller)) reason = 'cancel';
      else reason = this.#answeredElsewhere(caller, target, present) ? 'cancel' : 'noanswer';
      // Its DialEnd may still come (an answered target is listed up before it): not twice.
      target.bDialSent = false;
      this.#emit({
        event: 'b_dial_end',
        caller: caller.snapshot(),
        targets: [target.snapshot()],
        reason,
      });
    }
    return ended;
  }

  /**
   * The `b_dial_end` of a dial kept open by a resync whose `DialEnd` went by while the
   * connection was down: its target hangs up with the dial still open. The reason comes
   * from the `Hangup` cause (17 `busy`, 26 `cancel`, 34/42 `congestion`, else `noanswer`),
   * `cancel` if the caller is gone already.
   */
  #missedDialEnd(target: Channel, cause: number): void {
    target.dialAcrossResync = false;
    if (!target.bDialSent || target.backDial === null || target.isLocal) return;
    const caller = dialingChannel(target);
    if (caller.isLocal) return;
    target.bDialSent = false;
    let reason: string;
    if (this.channels.get(caller.uniqueid) !== caller || cause === 26) reason = 'cancel';
    else if (cause === 17) reason = 'busy';
    else if (cause === 34 || cause === 42) reason = 'congestion';
    else reason = 'noanswer';
    this.#emit({
      event: 'b_dial_end',
      caller: caller.snapshot(),
      targets: [target.snapshot()],
      reason,
    });
  }

  /** Another target of `caller`'s open dials is up in the list: one answered, the rest are cancelled. */
  #answeredElsewhere(
    caller: Channel,
    target: Channel,
    present: ReadonlyMap<string, CoreShowChannel>,
  ): boolean {
    for (const other of dialedChannels(caller)) {
      if (other === target) continue;
      const item = present.get(other.uniqueid);
      if (item !== undefined && int(str(item, 'ChannelState')) === AST_STATE_UP) return true;
    }
    return false;
  }

  /** `Local/x@ctx-00000001;1` and `;2` learnt from a list: link them as `LocalBridge` does. */
  #pairLocalHalves(added: readonly Channel[]): void {
    const ones = new Map<string, Channel>();
    for (const channel of added) {
      if (channel.isLocal && channel.name.endsWith(';1') && channel.fwdLocal === null) {
        ones.set(channel.name.slice(0, -2), channel);
      }
    }
    if (ones.size === 0) return;
    for (const channel of added) {
      if (!channel.isLocal || !channel.name.endsWith(';2') || channel.backLocal !== null) continue;
      const one = ones.get(channel.name.slice(0, -2));
      if (one === undefined || this.channels.get(one.uniqueid) !== one) continue;
      one.fwdLocal = channel;
      channel.backLocal = one;
    }
  }

  #channel(event: AmiEvent, key: string): Channel | undefined {
    const uniqueid = str(event, key);
    if (this.#touched !== null && uniqueid !== undefined) this.#touch(uniqueid);
    const channel = uniqueid === undefined ? undefined : this.channels.get(uniqueid);
    if (channel === undefined) this.#onSkip?.(`unknown channel ${key}=${uniqueid}`, event);
    return channel;
  }

  #bridge(event: AmiEvent, key: string): Bridge | undefined {
    const uniqueid = str(event, key);
    const bridge = uniqueid === undefined ? undefined : this.bridges.get(uniqueid);
    if (bridge === undefined) this.#onSkip?.(`unknown bridge ${key}=${uniqueid}`, event);
    return bridge;
  }

  // --- channel life cycle ---------------------------------------------------------------

  #onNewchannel(event: AmiEvent): void {
    if (!str(event, 'Uniqueid')) {
      this.#onSkip?.('Newchannel without Uniqueid', event);
      return;
    }
    const channel = new Channel(channelInit(event));
    this.#addChannel(channel);
    this.#touch(channel.uniqueid);
  }

  #onNewstate(event: AmiEvent): void {
    const channel = this.#channel(event, 'Uniqueid');
    if (channel === undefined) return;
    const oldState = channel.state;
    const state = int(str(event, 'ChannelState'));
    if (Number.isNaN(state) || state === oldState) return;
    channel.state = state;
    // Down → ringing (or answered at once) on the called side: its phone starts to ring.
    if (
      !channel.isLocal &&
      oldState === AST_STATE_DOWN &&
      (state === AST_STATE_RINGING || state === AST_STATE_UP) &&
      channel.backDial !== null
    ) {
      this.#bDialRinging(channel);
    }
  }

  #onNewCallerid(event: AmiEvent): void {
    const channel = this.#channel(event, 'Uniqueid');
    if (channel === undefined) return;
    channel.callerIdName = cleanCallerIdPart(str(event, 'CallerIDName'));
    channel.callerIdNum = cleanCallerIdPart(str(event, 'CallerIDNum'));
    channel.callingPres = str(event, 'CID-CallingPres') ?? null;
  }

  #onNewConnectedLine(event: AmiEvent): void {
    const channel = this.#channel(event, 'Uniqueid');
    if (channel === undefined) return;
    channel.connectedLineName = cleanCallerIdPart(str(event, 'ConnectedLineName'));
    channel.connectedLineNum = cleanCallerIdPart(str(event, 'ConnectedLineNum'));
  }

  #onNewAccountCode(event: AmiEvent): void {
    const channel = this.#channel(event, 'Uniqueid');
    if (channel === undefined) return;
    channel.accountCode = str(event, 'AccountCode') ?? '';
  }

  #onLocalBridge(event: AmiEvent): void {
    const one = this.#channel(event, 'LocalOneUniqueid');
    if (one === undefined) return;
    const two = this.#channel(event, 'LocalTwoUniqueid');
    if (two === undefined) return;
    one.fwdLocal = two;
    two.backLocal = one;
  }

  #onHangup(event: AmiEvent): void {
    const channel = this.#channel(event, 'Uniqueid');
    if (channel === undefined) return;
    this.#hangup(channel, int(str(event, 'Cause')));
  }

  /** Forgets a channel that hung up; reports the hangup of a caller's call unless `report` is false. */
  #hangup(channel: Channel, cause: number, report = true): void {
    if (channel.dialAcrossResync) this.#missedDialEnd(channel, cause);
    this.#releaseOrphan(channel);
    if (!channel.isLocal && report) {
      const transferer = channel.blindTransferer;
      if (transferer !== null) {
        // A blind transfer was announced but its destination never rang.
        channel.blindTransferer = null;
        const caller = transferer.isCalling ? transferer : channel;
        this.#emit({ event: 'hangup', caller: caller.snapshot(), reason: 'completed' });
      } else if (!channel.ignoreHangup && channel.isCalling) {
        this.#emit({
          event: 'hangup',
          caller: channel.snapshot(),
          reason: hangupReason(cause, channel.state),
        });
      }
    }
    if (channel.fwdLocal !== null) channel.fwdLocal.backLocal = null;
    if (channel.backLocal !== null) channel.backLocal.fwdLocal = null;
    this.channels.delete(channel.uniqueid);
  }

  // --- dials ----------------------------------------------------------------------------

  #onDialBegin(event: AmiEvent): void {
    if (str(event, 'DestUniqueid') === undefined) return;
    if (str(event, 'Uniqueid') === undefined) {
      // A destination without a source: the dial of an Originate.
      const destination = this.#channel(event, 'DestUniqueid');
      if (destination !== undefined) destination.isOriginated = true;
      return;
    }
    const channel = this.#channel(event, 'Uniqueid');
    if (channel === undefined) return;
    const destination = this.#channel(event, 'DestUniqueid');
    if (destination === undefined) return;
    if (channel.fwdDials.length >= MAX_LINKS_PER_CHANNEL) {
      this.#onSkip?.('too many open dials on one channel', event);
      return;
    }
    channel.isCalling = true;
    channel.fwdDials.push(destination);
    destination.backDial = channel;
    if (!destination.isLocal && destination.state === AST_STATE_RINGING) {
      this.#bDialRinging(destination);
    }
  }

  #onDialEnd(event: AmiEvent): void {
    if (str(event, 'Uniqueid') === undefined || str(event, 'DestUniqueid') === undefined) return;
    const channel = this.#channel(event, 'Uniqueid');
    if (channel === undefined) return;
    const destination = this.#channel(event, 'DestUniqueid');
    if (destination === undefined) return;
    if (destination.bDialSent && !destination.isLocal) {
      const caller = dialingChannel(destination);
      if (!caller.isLocal) {
        this.#emit({
          event: 'b_dial_end',
          caller: caller.snapshot(),
          targets: [destination.snapshot()],
          reason: (str(event, 'DialStatus') ?? '').toLowerCase(),
        });
      }
    }
    const index = channel.fwdDials.indexOf(destination);
    if (index !== -1) channel.fwdDials.splice(index, 1);
    destination.backDial = null;
    destination.dialAcrossResync = false;
  }

  /** A dialled phone started to ring: report it once, for all targets ringing with it. */
  #bDialRinging(channel: Channel): void {
    if (channel.ignoreBDial) {
      // Already reported together with another target.
      channel.ignoreBDial = false;
      return;
    }
    let caller = dialingChannel(channel);

    const transferer = caller.blindTransferer;
    if (transferer !== null) {
      // The destination of an announced blind transfer rings: that is the transfer.
      caller.blindTransferer = null;
      const targets = dialedChannels(caller);
      for (const target of targets) {
        target.bDialSent = true;
        if (target !== channel) target.ignoreBDial = true;
      }
      this.#emit({
        event: 'blind_transfer',
        caller: caller.snapshot(),
        transferer: transferer.snapshot(),
        targets: sortedSnapshots(targets),
      });
      return;
    }

    const firstDial = caller.fwdDials[0];
    if (caller.isOriginated && firstDial !== undefined && caller.fwdLocal !== null) {
      // Originate (click-to-dial): the phone that answered the first leg sits in a bridge
      // with the other Local half; report it as calling the number that is dialled now.
      const originating = caller;
      const bridge = originating.fwdLocal?.bridge;
      if (bridge === null || bridge === undefined) return;
      let phone: Channel | undefined;
      for (const peer of bridge.peers) {
        if (!peer.isLocal) {
          phone = peer;
          break;
        }
      }
      if (phone === undefined) return;
      caller = phone;
      caller.exten = firstDial.exten;
      caller.isCalling = true;
      channel.bDialSent = true;
      this.#emit({ event: 'b_dial', caller: caller.snapshot(), targets: [channel.snapshot()] });
      return;
    }

    if (caller.isLocal) return;
    const ringing: Channel[] = [];
    for (const dialed of dialedChannels(caller)) {
      if (dialed.state === AST_STATE_RINGING && !dialed.ignoreBDial) ringing.push(dialed);
    }
    this.#emit({ event: 'b_dial', caller: caller.snapshot(), targets: sortedSnapshots(ringing) });
    for (const target of ringing) {
      target.ignoreBDial = true;
      target.bDialSent = true;
    }
  }

  // --- bridges --------------------------------------------------------------------------

  #onBridgeCreate(event: AmiEvent): void {
    const uniqueid = str(event, 'BridgeUniqueid');
    if (uniqueid === undefined || this.bridges.has(uniqueid)) return;
    this.#addBridge(new Bridge(uniqueid));
  }

  #onBridgeEnter(event: AmiEvent): void {
    const channel = this.#channel(event, 'Uniqueid');
    if (channel === undefined) return;
    const bridge = this.#bridge(event, 'BridgeUniqueid');
    if (bridge === undefined) return;
    if (bridge.peers.size >= MAX_LINKS_PER_CHANNEL && !bridge.peers.has(channel)) {
      this.#onSkip?.('too many channels in one bridge', event);
      return;
    }
    bridge.peers.add(channel);
    channel.bridge = bridge;
    this.#bridgeEntered(channel);
  }

  #onBridgeLeave(event: AmiEvent): void {
    const channel = this.#channel(event, 'Uniqueid');
    if (channel === undefined) return;
    const bridge = this.#bridge(event, 'BridgeUniqueid');
    if (bridge === undefined) return;
    bridge.peers.delete(channel);
    channel.bridge = null;
  }

  /**
   * Two phones (one calling) now share a bridge, possibly through Local channels: `up`.
   * After a resync, a phone whose caller went while the connection was down (`orphanOf`)
   * and is now with a phone nobody calls was transferred to it: it becomes the caller, as a
   * transferee does, and its former caller's hangup is not reported (as live); likewise if
   * it is the caller itself (it dialled on). With another caller, that hangup is reported.
   */
  #bridgeEntered(channel: Channel): void {
    const phones = bridgePeersRecursive(channel);
    if (phones.size < 2) return;
    const callers: Channel[] = [];
    const targets: Channel[] = [];
    let orphaned = 0;
    for (const phone of phones) {
      (phone.isCalling ? callers : targets).push(phone);
      if (phone.orphanOf !== null) orphaned++;
    }
    if (orphaned > 0) {
      const candidates = callers.length === 0 ? targets.filter((p) => p.orphanOf !== null) : [];
      const heir = candidates.length === 1 ? candidates[0] : undefined;
      if (heir !== undefined) {
        heir.orphanOf = null;
        heir.isCalling = true;
        heir.isPickedUp = false;
        callers.push(heir);
        targets.splice(targets.indexOf(heir), 1);
      }
      for (const phone of phones) {
        if (phone.orphanOf === null) continue;
        // Calling now (it dialled on, or is the heir): handed on, its old caller's hangup is
        // not reported. Called by someone else: its old caller's call is over.
        if (callers.includes(phone)) phone.orphanOf = null;
        else this.#releaseOrphan(phone);
      }
    }
    if (callers.length === 0) return;
    if (callers.length > 1) {
      // Several callers (e.g. after an AB-CB-AC transfer): the oldest channel stays the
      // caller, the others become targets.
      callers.sort(
        (a, b) =>
          compareCodePoints(channelSequence(a.name), channelSequence(b.name)) ||
          compareCodePoints(a.name, b.name),
      );
      for (const other of callers.slice(1)) {
        other.isCalling = false;
        targets.push(other);
      }
    }
    const caller = callers[0];
    const target = targets[0];
    if (caller === undefined || target === undefined || targets.length !== 1) return;
    if (!caller.isPickedUp) {
      caller.isPickedUp = true;
      caller.upTarget = target;
      // A blind transfer whose destination answered unseen (it rang while the connection
      // was down): it did not fail, so no hangup for it at the caller's end (#hangup).
      caller.blindTransferer = null;
      this.#emit({ event: 'up', caller: caller.snapshot(), target: target.snapshot() });
    }
  }

  // --- transfers ------------------------------------------------------------------------

  #onAttendedTransfer(event: AmiEvent): void {
    const origTransferer = this.#channel(event, 'OrigTransfererUniqueid');
    if (origTransferer === undefined) return;
    const secondTransferer = this.#channel(event, 'SecondTransfererUniqueid');
    if (secondTransferer === undefined) return;
    const destType = str(event, 'DestType');
    if (destType === 'Bridge') {
      this.#attendedTransfer(origTransferer, secondTransferer, event);
    } else if (destType === 'App' && str(event, 'DestApp') === 'Dial') {
      this.#blondeTransfer(origTransferer, secondTransferer, event);
    } else {
      this.#onSkip?.(`unknown attended transfer type ${destType}`, event);
    }
  }

  #attendedTransfer(origTransferer: Channel, secondTransferer: Channel, event: AmiEvent): void {
    let transferee: Channel | undefined;
    let target: Channel | undefined;
    if (
      str(event, 'TransfereeUniqueid') !== undefined &&
      str(event, 'TransferTargetUniqueid') !== undefined
    ) {
      transferee = this.#channel(event, 'TransfereeUniqueid');
      if (transferee === undefined) return;
      target = this.#channel(event, 'TransferTargetUniqueid');
      if (target === undefined) return;
    } else {
      // Older Asterisk, or Asterisk 22 when the target already left the consultation
      // bridge (cacofonisk crashed on it): find both in the destination bridge; the
      // transferee shares the linkedid of the call before the transfer.
      const bridge = this.#bridge(event, 'DestBridgeUniqueid');
      if (bridge === undefined) return;
      if (bridge.peers.size !== 2) {
        this.#onSkip?.(
          'attended transfer: no transferee and target in the destination bridge',
          event,
        );
        return;
      }
      const [one, two] = [...bridge.peers] as [Channel, Channel];
      const linkedid = str(event, 'OrigTransfererLinkedid');
      if (one.linkedid === linkedid) [transferee, target] = [one, two];
      else if (two.linkedid === linkedid) [transferee, target] = [two, one];
      else {
        this.#onSkip?.('attended transfer: transferee not found in destination bridge', event);
        return;
      }
    }
    if (transferee.isLocal) {
      // Not optimised away yet: the real transferee is the phone behind the Local channel.
      for (const peer of bridgePeersRecursive(transferee)) {
        if (peer !== target && peer !== secondTransferer && peer !== origTransferer) {
          transferee = peer;
        }
      }
    }
    transferee.isCalling = true;
    // The transferee becomes the caller: give it the extension the transfer went to.
    transferee.exten =
      str(event, 'SecondTransfererExten') ||
      str(event, 'OrigTransfererExten') ||
      str(event, 'TransferTargetCallerIDNum') ||
      '';
    target.isCalling = false;
    transferee.upTarget = target;
    this.#emit({
      event: 'attended_transfer',
      caller: transferee.snapshot(),
      transferer: secondTransferer.snapshot(),
      target: target.snapshot(),
    });
    origTransferer.ignoreHangup = true;
    secondTransferer.ignoreHangup = true;
  }

  #blondeTransfer(origTransferer: Channel, secondTransferer: Channel, event: AmiEvent): void {
    const transferee = this.#channel(event, 'TransfereeUniqueid');
    if (transferee === undefined) return;
    transferee.isPickedUp = false;
    transferee.isCalling = true;
    transferee.exten = secondTransferer.exten;
    const targets = dialedChannels(secondTransferer);
    dialedChannels(transferee, targets);
    this.#emit({
      event: 'blonde_transfer',
      caller: transferee.snapshot(),
      transferer: secondTransferer.snapshot(),
      targets: sortedSnapshots(targets),
    });
    origTransferer.ignoreHangup = true;
    secondTransferer.ignoreHangup = true;
  }

  #onBlindTransfer(event: AmiEvent): void {
    const transferer = this.#channel(event, 'TransfererUniqueid');
    if (transferer === undefined) return;
    const transferee = this.#channel(event, 'TransfereeUniqueid');
    if (transferee === undefined) return;
    // Reported when the destination starts to ring (see #bDialRinging).
    transferee.blindTransferer = transferer;
    transferee.isPickedUp = false;
    transferer.ignoreHangup = true;
    transferee.isCalling = true;
    const extension = str(event, 'Extension') ?? '';
    transferee.exten = extension;
    transferer.exten = extension;
  }

  // --- other ----------------------------------------------------------------------------

  #onUserEvent(event: AmiEvent): void {
    const channel = this.#channel(event, 'Uniqueid');
    if (channel === undefined) return;
    this.#emit({ event: 'user_event', caller: channel.snapshot(), amiEvent: event });
  }

  #onQueueCallerAbandon(event: AmiEvent): void {
    const channel = this.#channel(event, 'Uniqueid');
    if (channel === undefined) return;
    this.#emit({ event: 'queue_caller_abandon', caller: channel.snapshot() });
  }
}
