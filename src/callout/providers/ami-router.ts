/**
 * Routes one AMI client's events to the alert calls this process follows, by key, instead of
 * one `event` listener per call on the client (`originate()`'s CallFollower listens to every
 * event and filters): with 10,000 calls in progress (the 1,000-escalation benchmark) each AMI
 * event cost 10,000 listener calls, the event loop fell minutes behind, and Originate
 * responses timed out (issue 4, items 1 and 5). Each call gets a {@link CallEventSource}
 * facade; the router keeps a single listener on the client and delivers only what the
 * follower would keep:
 *
 * - `OriginateResponse`: to the call whose `Originate` got that `ActionID`; while a call does
 *   not know its ActionID yet (the action's response is pending), every unmatched
 *   `OriginateResponse` also goes to it (the follower buffers them, as before). Its `Uniqueid`
 *   then routes the call's later events.
 * - `UserEvent` and `Hangup`: by `Uniqueid`, else by the `CallId` field.
 * - Other events: dropped (the follower ignores them).
 * - `disconnect`: to every call.
 *
 * Events of calls no route follows any more (their follower was lost with an AMI
 * connection) or never followed here (placed by another process, e.g. before `serve`
 * restarted) go to the stored-call listener ({@link CallEventRouter.setStoredListener}), with
 * the call id when it can be known: a `UserEvent`'s `CallId`; a `Hangup`'s `Uniqueid` learnt
 * from such a `UserEvent` (one the listener says is of its calls), or from an answered
 * `OriginateResponse` of a lost route; an
 * `OriginateResponse` whose `ActionID` was a lost route's. The listener finds the stored
 * call by that id (the database is the truth, whatever connection or process placed it).
 */
import { type AmiEvent, field } from '../../ami/message.ts';
import type { CallEventSource } from '../../telephony/originate.ts';

type EventListener = (event: AmiEvent, server: string) => void;
type DisconnectListener = (server: string, error: Error | undefined) => void;

/**
 * Receives the `UserEvent`, `Hangup` and `OriginateResponse` events no route takes, with
 * the call id (`SWITCHBOARD_CALL_ID`) when the router knows it (see the module comment).
 * Returns true for a `UserEvent` of one of its calls: the router then remembers the
 * channel's `Uniqueid` for that call id, so that the channel's `Hangup` comes with it.
 */
export type StoredCallListener = (
  event: AmiEvent,
  callId: string | undefined,
  server: string,
) => boolean | undefined;

/** Entries of each learnt map (call id by ActionID, call id by Uniqueid); oldest out. */
const LEARNT_MAX = 10_000;

function remember(map: Map<string, string>, key: string, value: string): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > LEARNT_MAX) map.delete(map.keys().next().value as string);
}

function usable(value: string | undefined): value is string {
  return value !== undefined && value !== '' && value !== '<null>';
}

interface Route {
  callId: string;
  actionId: string | undefined;
  uniqueid: string | undefined;
  events: Set<EventListener>;
  disconnects: Set<DisconnectListener>;
}

/** The router of one client. */
export class CallEventRouter {
  readonly #client: CallEventSource;
  readonly #routes = new Set<Route>();
  readonly #unbound = new Set<Route>();
  readonly #byActionId = new Map<string, Route>();
  readonly #byCallId = new Map<string, Route>();
  readonly #byUniqueid = new Map<string, Route>();
  /** OriginateResponses that arrived before their call knew its ActionID (bounded). */
  readonly #early = new Map<string, AmiEvent>();
  /** Call ids of lost routes by their Originate's ActionID (their OriginateResponse may come). */
  readonly #lostActionIds = new Map<string, string>();
  /** Call ids by the Uniqueid of their channel, learnt for calls no route follows. */
  readonly #storedUniqueids = new Map<string, string>();
  #stored: StoredCallListener | undefined;
  #attached = false;

  constructor(client: CallEventSource) {
    this.#client = client;
  }

  readonly #onEvent = (event: AmiEvent, server: string): void => {
    const name = event.Event;
    if (name === 'OriginateResponse') {
      const actionId = field(event, 'ActionID') ?? '';
      const route = this.#byActionId.get(actionId);
      if (route) {
        this.#learnUniqueid(route, event);
        this.#deliver(route, event, server);
        return;
      }
      const lost = this.#lostActionIds.get(actionId);
      if (lost !== undefined) {
        // the outcome of a call whose follower was lost with its connection
        this.#lostActionIds.delete(actionId);
        const uniqueid = field(event, 'Uniqueid');
        if (usable(uniqueid) && field(event, 'Response') === 'Success') {
          remember(this.#storedUniqueids, uniqueid, lost);
        }
        this.#stored?.(event, lost, server);
        return;
      }
      if (this.#unbound.size === 0) return;
      this.#early.set(actionId, event);
      if (this.#early.size > 10_000) this.#early.delete(this.#early.keys().next().value as string);
      for (const r of [...this.#unbound]) this.#deliver(r, event, server);
      return;
    }
    if (name !== 'UserEvent' && name !== 'Hangup') return;
    const uniqueid = field(event, 'Uniqueid') ?? '';
    const callId = field(event, 'CallId');
    const route = this.#byUniqueid.get(uniqueid) ?? this.#byCallId.get(callId ?? '');
    if (route) {
      this.#deliver(route, event, server);
      return;
    }
    if (this.#stored === undefined) return;
    if (name === 'UserEvent') {
      const mine = this.#stored(event, usable(callId) ? callId : undefined, server);
      if (mine === true && usable(callId) && usable(uniqueid)) {
        remember(this.#storedUniqueids, uniqueid, callId);
      }
      return;
    }
    const known = this.#storedUniqueids.get(uniqueid);
    if (known !== undefined) this.#storedUniqueids.delete(uniqueid);
    this.#stored(event, known, server);
  };

  readonly #onDisconnect = (server: string, error: Error | undefined): void => {
    for (const route of [...this.#routes]) {
      for (const listener of [...route.disconnects]) listener(server, error);
    }
  };

  #deliver(route: Route, event: AmiEvent, server: string): void {
    for (const listener of [...route.events]) listener(event, server);
  }

  #learnUniqueid(route: Route, event: AmiEvent): void {
    const uniqueid = field(event, 'Uniqueid');
    if (uniqueid === undefined || uniqueid === '' || uniqueid === '<null>') return;
    route.uniqueid = uniqueid;
    this.#byUniqueid.set(uniqueid, route);
  }

  #add(route: Route): void {
    if (this.#routes.has(route)) return;
    this.#routes.add(route);
    this.#byCallId.set(route.callId, route);
    if (route.actionId === undefined) this.#unbound.add(route);
    this.#attach();
  }

  #removeIfIdle(route: Route): void {
    if (route.events.size > 0 || route.disconnects.size > 0) return;
    if (!this.#routes.has(route)) return;
    if (route.actionId !== undefined && route.uniqueid === undefined) {
      // No OriginateResponse yet: the follower was lost (its connection dropped) or gave up;
      // the response may still come, on a new connection.
      remember(this.#lostActionIds, route.actionId, route.callId);
    }
    this.#routes.delete(route);
    this.#unbound.delete(route);
    if (this.#byCallId.get(route.callId) === route) this.#byCallId.delete(route.callId);
    if (route.actionId !== undefined && this.#byActionId.get(route.actionId) === route)
      this.#byActionId.delete(route.actionId);
    if (route.uniqueid !== undefined && this.#byUniqueid.get(route.uniqueid) === route)
      this.#byUniqueid.delete(route.uniqueid);
    if (this.#routes.size === 0 && this.#attached && this.#stored === undefined) {
      this.#attached = false;
      this.#early.clear();
      this.#client.off('event', this.#onEvent);
      this.#client.off('disconnect', this.#onDisconnect);
    }
  }

  #attach(): void {
    if (this.#attached) return;
    this.#attached = true;
    this.#client.on('event', this.#onEvent);
    this.#client.on('disconnect', this.#onDisconnect);
  }

  /**
   * Sets the listener of events no route takes (see {@link StoredCallListener}); the router
   * then listens to the client for good. `undefined` removes it.
   */
  setStoredListener(listener: StoredCallListener | undefined): void {
    this.#stored = listener;
    if (listener !== undefined) this.#attach();
  }

  /** Number of calls routed now (tests). */
  get size(): number {
    return this.#routes.size;
  }

  /** The event source of one call (`callId` = the Originate's `SWITCHBOARD_CALL_ID`). */
  source(callId: string): CallEventSource {
    const route: Route = {
      callId,
      actionId: undefined,
      uniqueid: undefined,
      events: new Set(),
      disconnects: new Set(),
    };
    const on = (kind: 'event' | 'disconnect', listener: EventListener | DisconnectListener) => {
      if (kind === 'event') route.events.add(listener as EventListener);
      else route.disconnects.add(listener as DisconnectListener);
      this.#add(route);
      return undefined;
    };
    const off = (kind: 'event' | 'disconnect', listener: EventListener | DisconnectListener) => {
      if (kind === 'event') route.events.delete(listener as EventListener);
      else route.disconnects.delete(listener as DisconnectListener);
      this.#removeIfIdle(route);
      return undefined;
    };
    return {
      on: on as CallEventSource['on'],
      off: off as CallEventSource['off'],
      action: async (action, options) => {
        const result = await this.#client.action(action, options);
        if (String(action.Action).toLowerCase() === 'originate' && this.#routes.has(route)) {
          const actionId = field(result.response as AmiEvent, 'ActionID');
          if (actionId !== undefined) {
            route.actionId = actionId;
            this.#byActionId.set(actionId, route);
            this.#unbound.delete(route);
            const early = this.#early.get(actionId);
            if (early) {
              this.#early.delete(actionId);
              this.#learnUniqueid(route, early);
            }
          }
        }
        return result;
      },
    };
  }
}

const routers = new WeakMap<CallEventSource, CallEventRouter>();

/** The router of `client` (one per client). */
export function routerFor(client: CallEventSource): CallEventRouter {
  let router = routers.get(client);
  if (!router) {
    router = new CallEventRouter(client);
    routers.set(client, router);
  }
  return router;
}
