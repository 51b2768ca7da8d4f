/**
 * The index of the calls this process places, one per AMI connection: ONE `event` listener
 * and ONE `disconnect` listener on the client, whatever the number of calls in progress
 * (with one listener per call, 10,000 calls made every AMI event cost 10,000 calls: issue 4).
 * Alert calls (`src/callout/`) and announcements (`src/announce/`) place calls through
 * `originate()` (`./originate.ts`), which follows each one here.
 *
 * The `Originate` itself is matched once, by the AMI client ({@link AmiClient.originate}: the
 * action completes with its `OriginateResponse`). This index routes the OTHER events of a
 * placed call to whoever placed it:
 *
 * - `UserEvent` and `Hangup`: by the channel's `Uniqueid` (known once the call was answered),
 *   else by the `CallId` field the dialplan copies from `SWITCHBOARD_CALL_ID`
 *   (docs/asterisk/extensions.conf).
 * - `disconnect`: to every call followed on that connection (its state is unknown now).
 *
 * Events of calls nobody here follows any more (their follower was lost with an AMI
 * connection) or never followed here (placed by another process, e.g. before `serve`
 * restarted) go to the stored-call listeners ({@link PlacedCalls.addStoredListener}), with the
 * call id when it can be known: a `UserEvent`'s `CallId`; an `OriginateResponse`'s `ActionID`
 * tag (`originate()` sends the call id in the `ActionID`, see {@link actionIdTag}), for an
 * `OriginateResponse` the client no longer waited for ({@link completedAnAction}); a `Hangup`'s
 * `Uniqueid` learnt from such a `UserEvent` (one a listener says is of its calls), from an
 * answered `OriginateResponse`, or from a follower lost after the answer. A listener finds
 * the stored call by that id (the database is the truth, whatever connection or process
 * placed it).
 *
 * @module
 */
import { actionIdTag, completedAnAction } from '../ami/client.ts';
import { type AmiEvent, field } from '../ami/message.ts';

/** What the index needs from an AMI client ({@link AmiClient} satisfies it). */
export interface PlacedCallEvents {
  on(event: 'event', listener: (event: AmiEvent, server: string) => void): unknown;
  on(event: 'disconnect', listener: (server: string, error: Error | undefined) => void): unknown;
}

/**
 * Receives the `UserEvent`, `Hangup` and `OriginateResponse` events no follower takes, with
 * the call id (`SWITCHBOARD_CALL_ID`) when the index knows it (see the module comment).
 * Returns true for a `UserEvent` of one of its calls: the index then remembers the channel's
 * `Uniqueid` for that call id, so that the channel's `Hangup` comes with it.
 */
export type StoredCallListener = (
  event: AmiEvent,
  callId: string | undefined,
  server: string,
) => boolean | undefined;

/** What a follower of one call receives. */
export interface PlacedCallHandlers {
  /** A `UserEvent` or `Hangup` of the call. */
  event(event: AmiEvent): void;
  /** The connection the call was placed on dropped. */
  disconnect(error: Error | undefined): void;
}

/** A call followed by the index; {@link PlacedCallRoute.close} when done. */
export interface PlacedCallRoute {
  /** The channel's `Uniqueid` (from the answered `OriginateResponse`): routes its later events. */
  setUniqueid(uniqueid: string): void;
  /**
   * Stops routing to the follower. `lost` = the follower gave up without knowing the end
   * (connection lost): the call's later events go to the stored-call listeners, with its id.
   */
  close(lost?: boolean): void;
}

/** Entries of the learnt map (call id by Uniqueid); oldest out. */
const LEARNT_MAX = 10_000;

function usable(value: string | undefined): value is string {
  return value !== undefined && value !== '' && value !== '<null>';
}

interface Route {
  readonly callId: string;
  uniqueid: string | undefined;
  readonly handlers: PlacedCallHandlers;
}

/** The index of one AMI client; get it with {@link placedCalls}. */
export class PlacedCalls {
  readonly #byCallId = new Map<string, Route>();
  readonly #byUniqueid = new Map<string, Route>();
  /** Call ids by the Uniqueid of their channel, learnt for calls no follower takes. */
  readonly #storedUniqueids = new Map<string, string>();
  readonly #stored = new Set<StoredCallListener>();

  constructor(client: PlacedCallEvents) {
    client.on('event', (event, server) => this.#onEvent(event, server));
    client.on('disconnect', (_server, error) => {
      for (const route of [...this.#byCallId.values()]) route.handlers.disconnect(error);
    });
  }

  /** Number of calls followed now. */
  get size(): number {
    return this.#byCallId.size;
  }

  /** Follows the call `callId` (its `SWITCHBOARD_CALL_ID`); a second follow of the same id replaces the first. */
  follow(callId: string, handlers: PlacedCallHandlers): PlacedCallRoute {
    const route: Route = { callId, uniqueid: undefined, handlers };
    this.#byCallId.set(callId, route);
    return {
      setUniqueid: (uniqueid) => {
        if (!usable(uniqueid) || this.#byCallId.get(callId) !== route) return;
        route.uniqueid = uniqueid;
        this.#byUniqueid.set(uniqueid, route);
      },
      close: (lost = false) => {
        if (this.#byCallId.get(callId) === route) this.#byCallId.delete(callId);
        const uniqueid = route.uniqueid;
        if (uniqueid === undefined) return;
        if (this.#byUniqueid.get(uniqueid) === route) this.#byUniqueid.delete(uniqueid);
        if (lost) this.#remember(uniqueid, callId);
      },
    };
  }

  /**
   * Adds a listener of the events no follower takes (see {@link StoredCallListener}).
   * @returns a function removing it.
   */
  addStoredListener(listener: StoredCallListener): () => void {
    this.#stored.add(listener);
    return () => this.#stored.delete(listener);
  }

  #remember(uniqueid: string, callId: string): void {
    this.#storedUniqueids.delete(uniqueid);
    this.#storedUniqueids.set(uniqueid, callId);
    if (this.#storedUniqueids.size > LEARNT_MAX) {
      this.#storedUniqueids.delete(this.#storedUniqueids.keys().next().value as string);
    }
  }

  #toStored(event: AmiEvent, callId: string | undefined, server: string): boolean {
    let mine = false;
    for (const listener of [...this.#stored]) {
      if (listener(event, callId, server) === true) mine = true;
    }
    return mine;
  }

  #onEvent(event: AmiEvent, server: string): void {
    const name = event.Event;
    if (name === 'OriginateResponse') {
      // The client completes the Originates it waits for (their follower has it).
      if (completedAnAction(event)) return;
      const callId = actionIdTag(field(event, 'ActionID'));
      if (callId === undefined) return;
      const uniqueid = field(event, 'Uniqueid');
      if (usable(uniqueid) && field(event, 'Response') === 'Success') {
        this.#remember(uniqueid, callId);
      }
      this.#toStored(event, callId, server);
      return;
    }
    if (name !== 'UserEvent' && name !== 'Hangup') return;
    const uniqueid = field(event, 'Uniqueid') ?? '';
    const callId = field(event, 'CallId');
    const route = this.#byUniqueid.get(uniqueid) ?? this.#byCallId.get(callId ?? '');
    if (route !== undefined) {
      route.handlers.event(event);
      return;
    }
    if (this.#stored.size === 0) return;
    if (name === 'UserEvent') {
      const mine = this.#toStored(event, usable(callId) ? callId : undefined, server);
      if (mine && usable(callId) && usable(uniqueid)) this.#remember(uniqueid, callId);
      return;
    }
    const known = this.#storedUniqueids.get(uniqueid);
    if (known !== undefined) this.#storedUniqueids.delete(uniqueid);
    this.#toStored(event, known, server);
  }
}

const indexes = new WeakMap<PlacedCallEvents, PlacedCalls>();

/** The index of `client` (one per client, created at the first use). */
export function placedCalls(client: PlacedCallEvents): PlacedCalls {
  let index = indexes.get(client);
  if (index === undefined) {
    index = new PlacedCalls(client);
    indexes.set(client, index);
  }
  return index;
}

/** A client that may place calls, with its name and state ({@link AmiClient} satisfies it). */
export interface NamedClient {
  readonly name: string;
  readonly connected: boolean;
}

/**
 * The connected clients to place a call through, best first: with `prefer` (server names,
 * e.g. `callout.amiServers`), those servers in that order (the others are not used); without,
 * every client in config order.
 */
export function connectedInOrder<T extends NamedClient>(
  clients: readonly T[],
  prefer: readonly string[] = [],
): T[] {
  const ordered =
    prefer.length === 0
      ? [...clients]
      : prefer.flatMap((name) => clients.filter((client) => client.name === name));
  return ordered.filter((client) => client.connected);
}
