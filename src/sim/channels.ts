/**
 * What a PBX knows about its channels, derived from the AMI events it has sent: the answer to
 * `CoreShowChannels`. Used by the simulator at run time (replayed and originated calls alike)
 * and by tests that play the part of Asterisk.
 *
 * The `CoreShowChannel` shape follows Asterisk 22 (`test/fixtures/asterisk22/recordings/
 * dtmf_local.raw.txt`, action `trial-3`): `Channel`, `ChannelState`, `ChannelStateDesc`,
 * caller and connected line, `Language`, `AccountCode`, `Context`, `Exten`, `Priority`,
 * `Uniqueid`, `Linkedid`, `Application`, `ApplicationData`, `Duration` (`HH:MM:SS`),
 * `BridgeId`.
 *
 * @module
 */
import { type AmiEvent, field } from '../ami/message.ts';

/** Description Asterisk gives each channel state (`ast_state2str`). */
export const CHANNEL_STATE_DESC: Readonly<Record<string, string>> = {
  '0': 'Down',
  '1': 'Rsrvd',
  '2': 'OffHook',
  '3': 'Dialing',
  '4': 'Ring',
  '5': 'Ringing',
  '6': 'Up',
  '7': 'Busy',
  '8': 'Dialing Offhook',
  '9': 'Pre-ring',
};

/**
 * The description of a channel state (`ChannelState` value), '' for an unknown one. Looks
 * at own keys only: a `ChannelState: constructor` from a recording reads as unknown.
 */
export function channelStateDesc(state: string): string {
  return Object.hasOwn(CHANNEL_STATE_DESC, state) ? (CHANNEL_STATE_DESC[state] as string) : '';
}

/** Default {@link ChannelTable} bound: live channels kept. */
export const DEFAULT_SIM_MAX_CHANNELS = 100_000;

/** One live channel as the table keeps it (all values are AMI strings). */
export interface LiveChannel {
  Channel: string;
  ChannelState: string;
  ChannelStateDesc: string;
  CallerIDNum: string;
  CallerIDName: string;
  ConnectedLineNum: string;
  ConnectedLineName: string;
  Language: string;
  AccountCode: string;
  Context: string;
  Exten: string;
  Priority: string;
  Uniqueid: string;
  Linkedid: string;
  Application: string;
  ApplicationData: string;
  BridgeId: string;
  /** When the table first saw the channel (`Date.now()` ms), for `Duration`. */
  createdAtMs: number;
}

/** The channel fields every channel event carries and a later event may change. */
export const UPDATED_KEYS = [
  'ChannelState',
  'ChannelStateDesc',
  'CallerIDNum',
  'CallerIDName',
  'ConnectedLineNum',
  'ConnectedLineName',
  'Language',
  'AccountCode',
  'Context',
  'Exten',
  'Priority',
] as const;

function hms(ms: number): string {
  const totalS = Math.max(0, Math.floor(ms / 1000));
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(Math.floor(totalS / 3600))}:${pad(Math.floor(totalS / 60) % 60)}:${pad(totalS % 60)}`;
}

/**
 * The live channels of a PBX, kept up to date by {@link ChannelTable.apply} with every event
 * the PBX sends, in order. Uses `Newchannel` (adds), `Hangup` (removes), `FullyBooted`
 * (clears: a restarted Asterisk has no channels), `Rename`, `Newexten` (application),
 * `BridgeEnter`/`BridgeLeave` (bridge id) and the channel fields (`ChannelState`,
 * caller id, context, ...) of any other event carrying the channel's `Uniqueid`.
 */
export class ChannelTable {
  readonly #live = new Map<string, LiveChannel>();
  readonly #now: () => number;
  readonly #max: number;
  /** Channels forgotten because the table was full (the oldest go first). */
  forgotten = 0;

  /**
   * @param now clock for `Duration`, in ms. Default `Date.now`.
   * @param maxChannels most channels kept; a `Newchannel` beyond it forgets the oldest one
   *   (a recording or script that never hangs up cannot grow the table). Default
   *   {@link DEFAULT_SIM_MAX_CHANNELS}.
   */
  constructor(now: () => number = Date.now, maxChannels = DEFAULT_SIM_MAX_CHANNELS) {
    this.#now = now;
    this.#max = Math.max(1, maxChannels);
  }

  /** Number of live channels. */
  get size(): number {
    return this.#live.size;
  }

  /** The live channel with this `Uniqueid`. */
  get(uniqueid: string): LiveChannel | undefined {
    return this.#live.get(uniqueid);
  }

  /** The live channel with this name (e.g. `PJSIP/trunk-0000000a`). */
  byName(name: string): LiveChannel | undefined {
    for (const channel of this.#live.values()) if (channel.Channel === name) return channel;
    return undefined;
  }

  /** Every live channel, oldest first. */
  list(): LiveChannel[] {
    return [...this.#live.values()];
  }

  /** Forgets every channel. */
  clear(): void {
    this.#live.clear();
  }

  /** Updates the table with one event the PBX sent. Unknown channels and events are ignored. */
  apply(event: AmiEvent): void {
    const uniqueid = field(event, 'Uniqueid') ?? '';
    switch (event.Event) {
      case 'FullyBooted':
        this.#live.clear();
        return;
      case 'Newchannel': {
        const state = field(event, 'ChannelState') ?? '0';
        if (this.#live.size >= this.#max && !this.#live.has(uniqueid)) {
          this.#live.delete(this.#live.keys().next().value as string);
          this.forgotten++;
        }
        this.#live.set(uniqueid, {
          Channel: field(event, 'Channel') ?? '',
          ChannelState: state,
          ChannelStateDesc: field(event, 'ChannelStateDesc') ?? channelStateDesc(state),
          CallerIDNum: field(event, 'CallerIDNum') ?? '',
          CallerIDName: field(event, 'CallerIDName') ?? '',
          ConnectedLineNum: field(event, 'ConnectedLineNum') ?? '',
          ConnectedLineName: field(event, 'ConnectedLineName') ?? '',
          Language: field(event, 'Language') ?? 'en',
          AccountCode: field(event, 'AccountCode') ?? '',
          Context: field(event, 'Context') ?? '',
          Exten: field(event, 'Exten') ?? '',
          Priority: field(event, 'Priority') ?? '1',
          Uniqueid: uniqueid,
          Linkedid: field(event, 'Linkedid') ?? uniqueid,
          Application: '',
          ApplicationData: '',
          BridgeId: '',
          createdAtMs: this.#now(),
        });
        return;
      }
      case 'Hangup':
        this.#live.delete(uniqueid);
        return;
    }
    const channel = this.#live.get(uniqueid);
    if (channel === undefined) return;
    switch (event.Event) {
      case 'Rename':
        channel.Channel = field(event, 'Newname') ?? channel.Channel;
        return;
      case 'BridgeEnter':
        channel.BridgeId = field(event, 'BridgeUniqueid') ?? '';
        break;
      case 'BridgeLeave':
        channel.BridgeId = '';
        break;
      case 'Newexten':
        channel.Application = field(event, 'Application') ?? '';
        channel.ApplicationData = field(event, 'AppData') ?? '';
        break;
    }
    for (const key of UPDATED_KEYS) {
      const value = field(event, key);
      if (value !== undefined) channel[key] = value;
    }
  }

  /**
   * The `CoreShowChannel` events Asterisk would list now (without `ActionID`), oldest
   * channel first.
   */
  coreShowChannels(): AmiEvent[] {
    const now = this.#now();
    return this.list().map((channel) => {
      const { createdAtMs, BridgeId, ...fields } = channel;
      return {
        Event: 'CoreShowChannel',
        ...fields,
        Duration: hms(now - createdAtMs),
        BridgeId,
      };
    });
  }
}

/**
 * What Asterisk would list in `CoreShowChannels` after `events` (each a `CoreShowChannel`
 * event without `ActionID`, `Duration` 00:00:00): live channels with their state and bridge.
 */
export function coreShowChannels(events: readonly AmiEvent[]): AmiEvent[] {
  const table = new ChannelTable(() => 0);
  for (const event of events) table.apply(event);
  return table.coreShowChannels();
}
