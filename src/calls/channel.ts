/**
 * Channel and bridge state as the engine tracks it. Only the engine (engine.ts) mutates
 * these objects and decides which channels form one call; everything else sees immutable
 * {@link ChannelSnapshot}s.
 */
import type { ChannelSnapshot } from './events.ts';

/** Asterisk channel states (`ChannelState` in AMI events). */
export const AST_STATE_DOWN = 0;
export const AST_STATE_RING = 4;
export const AST_STATE_RINGING = 5;
export const AST_STATE_UP = 6;

/** `<unknown>` in a caller ID field means "no value". */
export function cleanCallerIdPart(value: string | undefined): string {
  return value === undefined || value === '<unknown>' ? '' : value;
}

/** One Asterisk bridge (`BridgeCreate` ... `BridgeDestroy`) and the channels in it. */
export class Bridge {
  /** `BridgeUniqueid`. */
  readonly uniqueid: string;
  /** Channels currently in the bridge (`BridgeEnter` adds, `BridgeLeave` removes). */
  readonly peers = new Set<Channel>();

  constructor(uniqueid: string) {
    this.uniqueid = uniqueid;
  }
}

/** Fields a channel is created from: a `Newchannel` event or a `CoreShowChannel` list item. */
export interface ChannelInit {
  name: string;
  uniqueid: string;
  linkedid: string;
  state: number;
  exten: string;
  accountCode: string;
  callerIdName: string;
  callerIdNum: string;
  connectedLineName: string;
  connectedLineNum: string;
}

/** One Asterisk channel, from `Newchannel` until `Hangup`. */
export class Channel {
  name: string;
  readonly uniqueid: string;
  linkedid: string;
  state: number;
  exten: string;
  accountCode: string;
  callerIdName: string;
  callerIdNum: string;
  connectedLineName: string;
  connectedLineNum: string;
  /** Raw `CID-CallingPres` of the last `NewCallerid`; `null` until one is seen. */
  callingPres: string | null = null;
  /** `Local/` half-channel: the two halves are one hop of the call, not a phone. */
  readonly isLocal: boolean;

  /** For a `;1` Local half: its `;2` half (`LocalBridge`). */
  fwdLocal: Channel | null = null;
  /** For a `;2` Local half: its `;1` half (`LocalBridge`). */
  backLocal: Channel | null = null;
  /** The channel dialling this one (`DialBegin` until `DialEnd`). */
  backDial: Channel | null = null;
  /** The channels this one is dialling (`DialBegin` until `DialEnd`), in dial order. */
  fwdDials: Channel[] = [];
  /** The bridge the channel is in, if any. */
  bridge: Bridge | null = null;

  /** Dialled by an `Originate` (a `DialBegin` with a destination but no source). */
  isOriginated = false;
  /** This channel is the calling side of its call. */
  isCalling: boolean;
  /** `up` was reported for this caller (cleared by a blind or blonde transfer). */
  isPickedUp = false;
  /** A `b_dial` (or `blind_transfer`) was reported with this channel as a target. */
  bDialSent = false;
  /** A reported dial to this channel was still open at a resync (its DialEnd may have been missed). */
  dialAcrossResync = false;
  /** The next ringing of this channel was already reported together with another target. */
  ignoreBDial = false;
  /** A transfer took over this caller's call: its hangup is not reported. */
  ignoreHangup = false;
  /** A blind transfer of this channel was announced by this transferer; its targets do not ring yet. */
  blindTransferer: Channel | null = null;
  /** The party of the last `up` reported for this caller (or of the attended transfer that joined it). */
  upTarget: Channel | null = null;
  /**
   * After a resync: the caller this channel was up with, gone while the connection was down.
   * Its hangup is reported when this channel is with another phone or hangs up; not at all
   * if this channel turns out transferred (it becomes the caller).
   */
  orphanOf: Channel | null = null;
  /**
   * First learnt from a `CoreShowChannel` (a resync), not from its `Newchannel`: its `exten`
   * is where the channel was in the dialplan then, not the one it was created with, and its
   * `callingPres` is unknown until a `NewCallerid`.
   */
  resynced = false;

  constructor(init: ChannelInit) {
    this.name = init.name;
    this.uniqueid = init.uniqueid;
    this.linkedid = init.linkedid;
    this.state = init.state;
    this.exten = init.exten;
    this.accountCode = init.accountCode;
    this.callerIdName = cleanCallerIdPart(init.callerIdName);
    this.callerIdNum = cleanCallerIdPart(init.callerIdNum);
    this.connectedLineName = cleanCallerIdPart(init.connectedLineName);
    this.connectedLineNum = cleanCallerIdPart(init.connectedLineNum);
    this.isLocal = init.name.startsWith('Local/');
    this.isCalling = init.uniqueid === init.linkedid;
  }

  /**
   * An immutable copy of the reportable fields, in the schema's shape and key order. A
   * {@link resynced} channel's snapshot also has `resynced: true`, as a non-enumerable
   * property: JSON output (and the schema's shape) never contains it.
   */
  snapshot(): ChannelSnapshot {
    const snapshot: ChannelSnapshot = {
      name: this.name,
      uniqueid: this.uniqueid,
      linkedid: this.linkedid,
      state: this.state,
      accountCode: this.accountCode,
      callerId: { name: this.callerIdName, num: this.callerIdNum },
      connectedLine: { name: this.connectedLineName, num: this.connectedLineNum },
      exten: this.exten,
      callingPres: this.callingPres,
    };
    if (this.resynced) Object.defineProperty(snapshot, 'resynced', { value: true });
    return snapshot;
  }
}

/** Guards the graph walks below against cycles that a malformed stream could create. */
const MAX_HOPS = 64;

/**
 * The channel on whose behalf `channel` is being dialled: follow `backDial` links, hopping
 * from a `;2` Local half to its `;1` half, until a channel that nobody dials.
 */
export function dialingChannel(channel: Channel): Channel {
  let current = channel;
  for (let hops = 0; hops < MAX_HOPS; hops++) {
    let dialer = current.backDial;
    if (dialer === null) return current;
    if (dialer.backLocal !== null) dialer = dialer.backLocal;
    current = dialer;
  }
  return current;
}

/**
 * The non-Local channels dialled on behalf of `channel`: its open dials, following each
 * `;1` Local half through to the dials of its `;2` half. Insertion-ordered.
 */
export function dialedChannels(
  channel: Channel,
  into = new Set<Channel>(),
  depth = 0,
): Set<Channel> {
  if (depth > MAX_HOPS) return into;
  for (const dialed of channel.fwdDials) {
    if (dialed.fwdLocal !== null) dialedChannels(dialed.fwdLocal, into, depth + 1);
    else into.add(dialed);
  }
  return into;
}

/**
 * The non-Local channels in `channel`'s bridge, following Local channel pairs into the
 * bridges on their other side; for a Local half also looks through its partner.
 */
export function bridgePeersRecursive(channel: Channel): Set<Channel> {
  const peers = new Set<Channel>();
  const seen = new Set<Channel>();
  collectBridgePeers(channel, peers, seen);
  if (channel.fwdLocal !== null) collectBridgePeers(channel.fwdLocal, peers, seen);
  if (channel.backLocal !== null) collectBridgePeers(channel.backLocal, peers, seen);
  return peers;
}

function collectBridgePeers(channel: Channel, peers: Set<Channel>, seen: Set<Channel>): void {
  const bridge = channel.bridge;
  if (bridge === null || seen.has(channel)) return;
  seen.add(channel);
  if (!channel.isLocal) peers.add(channel);
  for (const peer of bridge.peers) {
    if (peer === channel) continue;
    if (!peer.isLocal) peers.add(peer);
    else if (peer.fwdLocal !== null) collectBridgePeers(peer.fwdLocal, peers, seen);
    else if (peer.backLocal !== null) collectBridgePeers(peer.backLocal, peers, seen);
  }
}

/** Ordinal (code-point) comparison of two strings. */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate (0xD800-0xDFFF) encodes a code point above 0xFFFF: it sorts after the BMP.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** Snapshots of `channels`, sorted by name (code-point order), ties broken by uniqueid. */
export function sortedSnapshots(channels: Iterable<Channel>): ChannelSnapshot[] {
  const list = [...channels];
  list.sort(
    (a, b) => compareCodePoints(a.name, b.name) || compareCodePoints(a.uniqueid, b.uniqueid),
  );
  return list.map((channel) => channel.snapshot());
}
