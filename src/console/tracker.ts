/**
 * What the console shows beyond the call engine's state, kept in memory as events arrive:
 *
 * - per AMI server: connected since / disconnected since (`connect` / `disconnect` of the
 *   `AmiClient`), the time of the last AMI event;
 * - per channel (`server` + `Uniqueid`): when it appeared (AMI `Newchannel`, else first
 *   seen) and when it went up (`Newstate` with `ChannelState: 6`), dropped at `Hangup`;
 * - the channels of a transfer (`call.attended_transfer`, `call.blind_transfer`,
 *   `call.blonde_transfer` of the bus);
 * - the recent push wake-ups (`push.wake.answered` of the bus), newest last, bounded.
 *
 * Everything is bounded: channel entries are pruned against the engine's live channels at
 * each read ({@link ConsoleTracker.prune}), wake-ups by {@link MAX_WAKEUPS}.
 */
import type { AmiClient } from '../ami/client.ts';
import type { AmiEvent } from '../ami/message.ts';
import type { Wakeup } from './sources.ts';

/** Wake-ups kept for the console. */
export const MAX_WAKEUPS = 500;

/** Channel entries kept per server beyond the live ones before a prune is forced. */
const MAX_CHANNEL_TIMES = 100_000;

/** Connection state of one AMI server. */
export interface AmiServerTrack {
  connected: boolean;
  /** Since when `connected` holds, epoch ms (the console's start when never changed). */
  sinceMs: number;
  /** The last AMI event received, epoch ms; null before any. */
  lastEventMs: number | null;
  /** Why the last connection ended ('' when none did or it was closed on purpose). */
  lastError: string;
}

/** Times of one channel, epoch ms. */
export interface ChannelTimes {
  createdMs: number;
  answeredMs: number | null;
}

/** The console's own memory of what happened (see the module comment). */
export class ConsoleTracker {
  readonly servers = new Map<string, AmiServerTrack>();
  readonly #channels = new Map<string, ChannelTimes>();
  readonly #transferred = new Set<string>();
  readonly wakeups: Wakeup[] = [];
  readonly #detach: Array<() => void> = [];

  /** Follows the connection and events of each client. */
  attach(clients: readonly AmiClient[], startedMs = Date.now()): void {
    for (const client of clients) {
      const track: AmiServerTrack = {
        connected: client.connected,
        sinceMs: startedMs,
        lastEventMs: null,
        lastError: '',
      };
      this.servers.set(client.name, track);
      const onConnect = () => {
        track.connected = true;
        track.sinceMs = Date.now();
        track.lastError = '';
      };
      const onDisconnect = (_server: string, error: Error | undefined) => {
        track.connected = false;
        track.sinceMs = Date.now();
        track.lastError = error === undefined ? '' : error.message.slice(0, 200);
      };
      const onEvent = (event: AmiEvent) => {
        track.lastEventMs = Date.now();
        this.#onAmiEvent(client.name, event);
      };
      client.on('connect', onConnect);
      client.on('disconnect', onDisconnect);
      client.on('event', onEvent);
      this.#detach.push(() => {
        client.off('connect', onConnect);
        client.off('disconnect', onDisconnect);
        client.off('event', onEvent);
      });
    }
  }

  /** Stops following the clients. */
  detach(): void {
    for (const off of this.#detach.splice(0)) off();
  }

  #onAmiEvent(server: string, event: AmiEvent): void {
    const uniqueid = event.Uniqueid;
    if (typeof uniqueid !== 'string' || uniqueid === '') return;
    const key = `${server}\u0000${uniqueid}`;
    switch (event.Event) {
      case 'Newchannel':
        if (this.#channels.size >= MAX_CHANNEL_TIMES) this.#channels.clear();
        this.#channels.set(key, {
          createdMs: Date.now(),
          answeredMs: event.ChannelState === '6' ? Date.now() : null,
        });
        break;
      case 'Newstate': {
        if (event.ChannelState !== '6') break;
        const times = this.times(server, uniqueid);
        times.answeredMs ??= Date.now();
        break;
      }
      case 'Hangup':
        this.#channels.delete(key);
        this.#transferred.delete(key);
        break;
      default:
    }
  }

  /** The times of a channel; first seen now when unknown (e.g. learnt by a resync). */
  times(server: string, uniqueid: string, up = false): ChannelTimes {
    const key = `${server}\u0000${uniqueid}`;
    let times = this.#channels.get(key);
    if (times === undefined) {
      if (this.#channels.size >= MAX_CHANNEL_TIMES) this.#channels.clear();
      times = { createdMs: Date.now(), answeredMs: up ? Date.now() : null };
      this.#channels.set(key, times);
    } else if (up && times.answeredMs === null) times.answeredMs = Date.now();
    return times;
  }

  /** Marks the channels of a transfer (by `Uniqueid`) on `server`. */
  markTransferred(server: string, uniqueids: readonly string[]): void {
    if (this.#transferred.size >= MAX_CHANNEL_TIMES) this.#transferred.clear();
    for (const id of uniqueids) if (id !== '') this.#transferred.add(`${server}\u0000${id}`);
  }

  /** Whether the channel took part in a transfer. */
  transferred(server: string, uniqueid: string): boolean {
    return this.#transferred.has(`${server}\u0000${uniqueid}`);
  }

  /** Forgets the channels of `server` that are not in `live` (uniqueids). */
  prune(server: string, live: ReadonlySet<string>): void {
    const prefix = `${server}\u0000`;
    for (const map of [this.#channels, this.#transferred]) {
      for (const key of map.keys()) {
        if (key.startsWith(prefix) && !live.has(key.slice(prefix.length))) map.delete(key);
      }
    }
  }

  /** Keeps one wake-up (oldest dropped beyond {@link MAX_WAKEUPS}). */
  addWakeup(wake: Wakeup): void {
    this.wakeups.push(wake);
    if (this.wakeups.length > MAX_WAKEUPS)
      this.wakeups.splice(0, this.wakeups.length - MAX_WAKEUPS);
  }
}
