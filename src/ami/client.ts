/**
 * Why this file is long: {@link AmiClient} is one connection's life cycle (connect, login,
 * pending-action table, event lists, keep-alive, reconnect with backoff, shutdown) whose
 * states and timers interlock; they are kept in one class so every transition is visible
 * in one place. Its errors, defaults and wire protocol are in their own modules.
 *
 * AMI client for one Asterisk server (13–22): login (plaintext or MD5 challenge), actions
 * correlated by `ActionID`, events, keep-alive and reconnect. {@link AmiPool} runs several.
 *
 * Modelled on panoramisk: the parser yields messages, a table maps each pending `ActionID` to
 * its promise, everything else is an event. Parsing AMI URLs and server entries is in url.ts
 * (re-exported).
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { backoffMs } from '../util/backoff.ts';
import { AMI_CLIENT_DEFAULTS } from './defaults.ts';
import {
  AmiActionError,
  AmiAuthError,
  AmiConnectionLostError,
  AmiDisconnectedError,
  AmiError,
  AmiLimitError,
  AmiMessageSkippedError,
  AmiNotSentError,
  AmiTimeoutError,
} from './errors.ts';
import { type AmiEvent, type AmiMessage, field } from './message.ts';
import {
  type AmiAction,
  AmiParser,
  DEFAULT_MAX_HEADERS,
  DEFAULT_MAX_MESSAGE_BYTES,
  serializeAction,
} from './protocol.ts';

export { type AmiServerKeys, amiServerOptions, parseAmiUrl, redactOptions } from './url.ts';

/** Default {@link AmiClientOptions.maxPendingActions}. */
export const DEFAULT_MAX_PENDING_ACTIONS = 10_000;
/** Default {@link AmiClientOptions.maxEventListEvents}. */
export const DEFAULT_MAX_EVENT_LIST_EVENTS = 100_000;

/** Reconnect backoff: delay before attempt n (0-based) is `random() * min(maxDelayMs, initialDelayMs * factor^n)` ("full jitter"). */
export interface AmiBackoffOptions {
  /** Upper bound of the first delay, in ms. Default 500 ({@link AMI_CLIENT_DEFAULTS}). */
  initialDelayMs?: number;
  /** Cap of the delay, in ms. Default 30000. */
  maxDelayMs?: number;
  /** Growth factor per failed attempt. Default 2. */
  factor?: number;
}

/** Options of {@link AmiClient}. Only `username` and `secret` are required. */
export interface AmiClientOptions {
  /** Host name or address. Default `127.0.0.1`. */
  host?: string;
  /** TCP port. Default 5038. */
  port?: number;
  /** Connect with TLS (`node:tls`); `true` or TLS options (ca, rejectUnauthorized, ...). */
  tls?: boolean | tls.ConnectionOptions;
  /** AMI user (`manager.conf` section). */
  username: string;
  /** AMI secret. Never logged, never part of an error or of `toJSON`/`inspect` output. */
  secret: string;
  /** `plain` sends `Secret`; `md5` uses `Action: Challenge` and sends `Key: md5(challenge + secret)`. Default `plain`. */
  auth?: 'plain' | 'md5';
  /** Tag of this server in events and errors. Default `host:port`. */
  name?: string;
  /** `Events` parameter of `Login` (`on`, `off` or an event class mask like `call,system`). Default `on`. */
  events?: string;
  /** Default timeout of {@link AmiClient.action}, in ms. Default 10000. */
  actionTimeoutMs?: number;
  /** TCP (and TLS) connect timeout, in ms. Default 5000. */
  connectTimeoutMs?: number;
  /** Interval between keep-alive `Ping` actions, in ms; 0 disables keep-alive. Default 20000. */
  pingIntervalMs?: number;
  /** A `Ping` unanswered after this many ms declares the connection dead (then reconnect). Default 5000. */
  pongTimeoutMs?: number;
  /** Reconnect backoff. */
  reconnect?: AmiBackoffOptions;
  /**
   * When the very first connection attempt fails (unreachable host, refused, timeout):
   * `false` (default) makes {@link AmiClient.connect} reject with that error and stops;
   * `true` keeps retrying with backoff, `connect()` resolving at the first successful login
   * (the service's "start, report not ready, keep retrying"). A refused login always rejects.
   */
  retryInitialConnect?: boolean;
  /**
   * Largest accepted AMI message, in bytes; a bigger one is skipped (`'skipped'` event,
   * reason `too_large`) and the connection stays up. Default 1 MiB.
   */
  maxMessageBytes?: number;
  /** Most lines in one message; beyond, the message is skipped (`too_many_headers`). Default 10,000. */
  maxHeaders?: number;
  /**
   * Most actions waiting for their answer at once; beyond, {@link AmiClient.action} rejects
   * at once with {@link AmiLimitError} (nothing is sent). Default 10,000.
   */
  maxPendingActions?: number;
  /**
   * Most events collected for one action's event list (e.g. `CoreShowChannels`); a longer
   * list rejects the action with {@link AmiLimitError} and its remaining events are
   * ordinary events. Default 100,000.
   */
  maxEventListEvents?: number;
  /**
   * Lazy parsing: called with each event's name (`Event` value) before the event is built;
   * an event it refuses is skipped unparsed and never emitted (`event`, {@link AmiClient.events}).
   * While an action's event list is arriving, every event is parsed (its items). Default:
   * every event.
   */
  wantEvent?: (eventName: string) => boolean;
  /** Random source in [0, 1) for the backoff jitter (tests). Default `Math.random`. */
  random?: () => number;
}

/** What {@link AmiClient.action} resolves with. */
export interface AmiActionResult {
  /** The `Response: Success` (or `Goodbye`, `Follows`) message. */
  response: AmiMessage;
  /**
   * For actions answered with an event list (`EventList: start`): every event of the list in
   * order, the closing `...Complete` event (with `EventList: Complete`) last. Empty otherwise.
   */
  events: AmiEvent[];
}

/** Per-call options of {@link AmiClient.action}. */
export interface AmiActionOptions {
  /** Timeout for the response (and the whole event list), in ms. Default `actionTimeoutMs`. */
  timeoutMs?: number;
  /**
   * Appended to the generated `ActionID` after a `/` (`<client>-<n>/<tag>`), e.g. the call id
   * of an `Originate`, so that its `OriginateResponse` names the call even when it arrives on
   * a later connection or in another process ({@link actionIdTag} reads it back). Must match
   * `[0-9A-Za-z_.-]{1,64}`, else it is left out.
   */
  tag?: string;
}

/** Options of {@link AmiClient.originate}. */
export interface AmiOriginateOptions extends AmiActionOptions {
  /**
   * Longest wait for the `OriginateResponse` once the action was queued, in ms (the ring
   * time plus a margin). Default 60000.
   */
  responseTimeoutMs?: number;
  /** Called with the `Response: Success` (`Originate successfully queued`) when it arrives. */
  onQueued?: (response: AmiMessage) => void;
  /**
   * Called with the `OriginateResponse` synchronously, before any later message of the
   * connection is handled (the returned promise settles a microtask later, when the call's
   * next events may already have been dispatched).
   */
  onOriginateResponse?: (event: AmiEvent) => void;
}

/** What {@link AmiClient.originate} resolves with. */
export interface AmiOriginateResult {
  /** The action's `Response: Success` (`Message: Originate successfully queued`); its `ActionID`. */
  response: AmiMessage;
  /** The `OriginateResponse` event carrying the same `ActionID` (`Response`, `Reason`, `Uniqueid`, `Channel`). */
  originateResponse: AmiEvent;
}

const TAG = /^[0-9A-Za-z_.-]{1,64}$/;

/** Events that completed an action of this process ({@link completedAnAction}). */
const completions = new WeakSet<AmiMessage>();

/**
 * True for an event (an `OriginateResponse`) that completed an action an {@link AmiClient} of
 * this process was waiting for ({@link AmiClient.originate}): whoever sent it has it already.
 * Such an event is still emitted as `'event'`; false for one nobody waited for (its
 * connection was lost meanwhile, or another process sent the action).
 */
export function completedAnAction(event: AmiMessage): boolean {
  return completions.has(event);
}

/**
 * The tag of an `ActionID` made by {@link AmiClient} with {@link AmiActionOptions.tag}
 * (the part after the first `/`), or undefined.
 */
export function actionIdTag(actionId: string | undefined): string | undefined {
  if (actionId === undefined) return undefined;
  const slash = actionId.indexOf('/');
  if (slash === -1) return undefined;
  const tag = actionId.slice(slash + 1);
  return TAG.test(tag) ? tag : undefined;
}

/** One item of the event iterators: the event and the tag of the server it came from. */
export interface AmiTaggedEvent {
  server: string;
  event: AmiEvent;
}

/** Events emitted by {@link AmiClient} and {@link AmiPool}. */
export interface AmiClientEvents {
  /** Every AMI event not consumed by an action's event list. */
  event: [event: AmiEvent, server: string];
  /** After each successful login (the first and every reconnect). */
  connect: [server: string];
  /** The connection was lost or closed; `error` says why (undefined after `close()`). */
  disconnect: [server: string, error: Error | undefined];
  /** Connection-level problems (refused connection, protocol error, refused login). Only emitted when a listener exists. */
  error: [error: Error, server: string];
  /**
   * A message was skipped (too large, too many lines, or its handling threw); the connection
   * stays up and the next messages are processed. Counted in {@link AmiClient.skippedMessages}.
   */
  skipped: [error: AmiMessageSkippedError, server: string];
}

/** Options of {@link AmiClient.events} / {@link AmiPool.events}. */
export interface AmiEventStreamOptions {
  /** Events buffered for a slow consumer; beyond it the oldest are dropped. Default 10000. */
  maxBuffered?: number;
}

/**
 * An async iterator of tagged events with a bounded buffer. Policy: when the consumer is
 * slower than the server and `maxBuffered` events wait, the OLDEST buffered event is dropped
 * and `dropped` counts it (the socket is never paused: pausing would also stall the Ping
 * answers and get the connection declared dead). It ends when the source is closed.
 */
export interface AmiEventStream extends AsyncIterableIterator<AmiTaggedEvent> {
  /** Events dropped so far because the buffer was full. */
  readonly dropped: number;
}

const DEFAULT_MAX_BUFFERED = 10_000;

/** A Ping timeout that fires this much later than due means the process stood still. */
const STALL_TOLERANCE_MS = 1000;

/** Bounded FIFO feeding one async iterator. */
class EventQueue implements AmiEventStream {
  dropped = 0;
  readonly #max: number;
  #items: AmiTaggedEvent[] = [];
  #head = 0;
  #waiting: ((result: IteratorResult<AmiTaggedEvent>) => void) | undefined;
  #ended = false;
  readonly #onEnd: (queue: EventQueue) => void;

  constructor(maxBuffered: number, onEnd: (queue: EventQueue) => void) {
    this.#max = Math.max(1, maxBuffered);
    this.#onEnd = onEnd;
  }

  push(item: AmiTaggedEvent): void {
    if (this.#ended) return;
    const waiting = this.#waiting;
    if (waiting !== undefined) {
      this.#waiting = undefined;
      waiting({ value: item, done: false });
      return;
    }
    if (this.#items.length - this.#head >= this.#max) {
      this.#head++;
      this.dropped++;
    }
    this.#items.push(item);
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Ends the stream: buffered items are still delivered, then `done`. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<AmiTaggedEvent>> {
    if (this.#head < this.#items.length) {
      const value = this.#items[this.#head] as AmiTaggedEvent;
      this.#items[this.#head] = undefined as unknown as AmiTaggedEvent;
      this.#head++;
      if (this.#head === this.#items.length) {
        this.#items = [];
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<AmiTaggedEvent>> {
    this.#items = [];
    this.#head = 0;
    this.end();
    this.#onEnd(this);
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AmiEventStream {
    return this;
  }
}

/** Fan-out of events to iterators (shared by client and pool). */
class StreamHub {
  readonly #streams = new Set<EventQueue>();
  #closed = false;

  open(options: AmiEventStreamOptions | undefined): AmiEventStream {
    const queue = new EventQueue(options?.maxBuffered ?? DEFAULT_MAX_BUFFERED, (q) =>
      this.#streams.delete(q),
    );
    if (this.#closed) queue.end();
    else this.#streams.add(queue);
    return queue;
  }

  get active(): boolean {
    return this.#streams.size > 0;
  }

  push(event: AmiEvent, server: string): void {
    const item = { server, event };
    for (const stream of this.#streams) stream.push(item);
  }

  close(): void {
    this.#closed = true;
    for (const stream of this.#streams) stream.end();
    this.#streams.clear();
  }
}

/**
 * Delay before reconnect attempt `attempt` (0-based), in ms: exponential backoff with full
 * jitter, `random() * min(maxDelayMs, initialDelayMs * factor^attempt)`.
 */
export function backoffDelayMs(
  attempt: number,
  options: AmiBackoffOptions = {},
  random: () => number = Math.random,
): number {
  return backoffMs(attempt, {
    initialMs: options.initialDelayMs ?? AMI_CLIENT_DEFAULTS.reconnectInitialDelayMs,
    maxMs: options.maxDelayMs ?? AMI_CLIENT_DEFAULTS.reconnectMaxDelayMs,
    factor: options.factor ?? AMI_CLIENT_DEFAULTS.reconnectFactor,
    jitter: 'full',
    random,
  });
}

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

interface Pending {
  readonly action: string;
  readonly id: string;
  /**
   * Set for an async `Originate`: the name of the event completing it (`OriginateResponse`);
   * the pending entry outlives the `Response: Success`.
   */
  readonly completeOn: string | undefined;
  readonly responseTimeoutMs: number;
  readonly onQueued: ((response: AmiMessage) => void) | undefined;
  readonly onComplete: ((event: AmiEvent) => void) | undefined;
  /** The completing event when it arrived before the response (kept until the response). */
  early: AmiEvent | undefined;
  readonly resolve: (result: AmiActionResult) => void;
  readonly reject: (error: Error) => void;
  timer: NodeJS.Timeout | undefined;
  /** Set once `EventList: start` arrived: the list being collected. */
  events: AmiEvent[] | undefined;
  response: AmiMessage | undefined;
}

type State = 'idle' | 'connecting' | 'connected' | 'waiting' | 'closed';

/**
 * A connection to one Asterisk server.
 *
 * Error policy: an action answered with `Response: Error` REJECTS with
 * {@link AmiActionError} (carrying Asterisk's `Message` and the response). Every other
 * response resolves with `{ response, events }`.
 *
 * Event lists: the events of an action's list (those carrying its `ActionID` between
 * `EventList: start` and the `EventList: Complete` event) go to that action's result and are
 * NOT emitted as `'event'`. Other events with an `ActionID` (e.g. `OriginateResponse` after an
 * async `Originate`) are ordinary events.
 *
 * Disconnected: `action()` rejects at once with {@link AmiNotSentError} (no queueing, nothing
 * sent: safe to retry); actions in flight when the connection drops reject with
 * {@link AmiConnectionLostError} (sent: maybe executed). Both are {@link AmiDisconnectedError}s.
 *
 * Async `Originate` ({@link AmiClient.originate}): as in panoramisk, the action is its own
 * pending result until its `OriginateResponse` (same `ActionID`) arrives; that event completes
 * it, and is emitted as `'event'` too ({@link completedAnAction} tells it was someone's
 * answer). An `OriginateResponse` nobody waits for any more (its connection was lost
 * meanwhile, or another process sent the action) is only an ordinary event.
 *
 * Lifecycle: `connect()` → `'connect'` after each login; on a lost connection `'disconnect'`,
 * then reconnect with backoff; a refused login stops for good (`AmiAuthError`); `close()`
 * sends `Logoff` and stops.
 */
export class AmiClient extends EventEmitter<AmiClientEvents> {
  /** Tag of this server in events and errors (`name` option, default `host:port`). */
  readonly name: string;
  /** The banner of the current connection (e.g. `Asterisk Call Manager/11.0.0`). */
  banner: string | undefined;
  readonly #host: string;
  readonly #port: number;
  readonly #tls: boolean | tls.ConnectionOptions;
  readonly #username: string;
  readonly #secret: string;
  readonly #auth: 'plain' | 'md5';
  readonly #events: string;
  readonly #actionTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #pingIntervalMs: number;
  readonly #pongTimeoutMs: number;
  readonly #backoff: AmiBackoffOptions;
  readonly #retryInitial: boolean;
  readonly #maxMessageBytes: number;
  readonly #maxHeaders: number;
  readonly #maxPending: number;
  readonly #maxListEvents: number;
  readonly #random: () => number;
  readonly #wantEvent: ((eventName: string) => boolean) | undefined;
  /** Reading paused by {@link AmiClient.pause} (backpressure from the consumer). */
  #paused = false;
  /** Counts pauses, so that a Ping sent before one is not judged by the time it lasted. */
  #pauses = 0;
  #skipped = 0;
  readonly #idPrefix = randomBytes(4).toString('hex');
  #idCounter = 0;
  #state: State = 'idle';
  #socket: net.Socket | undefined;
  #loggedIn = false;
  #everConnected = false;
  #attempt = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #pingInFlight = false;
  readonly #pending = new Map<string, Pending>();
  readonly #hub = new StreamHub();
  #connectWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(options: AmiClientOptions) {
    super();
    this.#host = options.host ?? '127.0.0.1';
    this.#port = options.port ?? AMI_CLIENT_DEFAULTS.port;
    this.#tls = options.tls ?? false;
    this.#username = options.username;
    this.#secret = options.secret;
    this.#auth = options.auth ?? AMI_CLIENT_DEFAULTS.auth;
    this.#events = options.events ?? AMI_CLIENT_DEFAULTS.events;
    this.#actionTimeoutMs = options.actionTimeoutMs ?? AMI_CLIENT_DEFAULTS.actionTimeoutMs;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? AMI_CLIENT_DEFAULTS.connectTimeoutMs;
    this.#pingIntervalMs = options.pingIntervalMs ?? AMI_CLIENT_DEFAULTS.pingIntervalMs;
    this.#pongTimeoutMs = options.pongTimeoutMs ?? AMI_CLIENT_DEFAULTS.pongTimeoutMs;
    this.#backoff = { ...options.reconnect };
    this.#retryInitial = options.retryInitialConnect ?? false;
    this.#maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#maxHeaders = options.maxHeaders ?? DEFAULT_MAX_HEADERS;
    this.#maxPending = options.maxPendingActions ?? DEFAULT_MAX_PENDING_ACTIONS;
    this.#maxListEvents = options.maxEventListEvents ?? DEFAULT_MAX_EVENT_LIST_EVENTS;
    this.#random = options.random ?? Math.random;
    this.#wantEvent = options.wantEvent;
    this.name = options.name ?? `${this.#host}:${this.#port}`;
  }

  /** True while logged in (actions can be sent). */
  get connected(): boolean {
    return this.#loggedIn;
  }

  /**
   * Backpressure: stops reading from the socket until {@link resume} (the kernel's buffers
   * fill, then Asterisk's writes wait; nothing is lost). Events of the chunk being parsed are
   * still delivered. Keep-alive pings are suspended meanwhile: a paused connection is not
   * declared dead for not answering.
   */
  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#pauses++;
    this.#socket?.pause();
  }

  /** Reads from the socket again after {@link pause}. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#socket?.resume();
  }

  /** True between {@link pause} and {@link resume}. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Number of actions waiting for their answer. */
  get pendingActions(): number {
    return this.#pending.size;
  }

  /** Messages skipped so far (see the `'skipped'` event), over every connection. */
  get skippedMessages(): number {
    return this.#skipped;
  }

  /**
   * Connects and logs in. Resolves after the first successful login (at once if already
   * logged in).
   *
   * @throws {AmiAuthError} login refused (no retry happens).
   * @throws {Error} network error of the first attempt, unless `retryInitialConnect`.
   * @throws {AmiDisconnectedError} `close()` was called meanwhile.
   */
  connect(): Promise<void> {
    if (this.#loggedIn) return Promise.resolve();
    if (this.#state === 'closed') {
      return Promise.reject(new AmiDisconnectedError(this.name, 'AMI client is closed'));
    }
    const promise = new Promise<void>((resolve, reject) => {
      this.#connectWaiters.push({ resolve, reject });
    });
    if (this.#state === 'idle') this.#open();
    return promise;
  }

  /**
   * Sends an action and resolves with its response (and event list, if any). An `ActionID`
   * unique to this client is added (any given one is replaced).
   *
   * @throws {AmiActionError} the server answered `Response: Error`.
   * @throws {AmiTimeoutError} no complete answer within `timeoutMs`.
   * @throws {AmiDisconnectedError} not logged in, or the connection dropped before the answer.
   * @throws {AmiProtocolError} a key or value contains CR/LF (nothing is sent).
   * @throws {AmiLimitError} `maxPendingActions` actions already wait (nothing is sent), or
   *   the answer's event list grew beyond `maxEventListEvents`.
   */
  action(action: AmiAction, options: AmiActionOptions = {}): Promise<AmiActionResult> {
    if (!this.#loggedIn) {
      return Promise.reject(new AmiNotSentError(this.name, action.Action));
    }
    return this.#send(action, options.timeoutMs ?? this.#actionTimeoutMs, options.tag);
  }

  /**
   * Sends an `Originate` with `Async: true` and resolves with its response AND its
   * `OriginateResponse` (source: Asterisk `manager.c` `action_originate`; the event carries
   * the action's `ActionID`). `options.tag` (e.g. the call id) is added to the `ActionID`.
   *
   * @throws {AmiActionError} `Response: Error` (Asterisk refused it: nothing was placed).
   * @throws {AmiNotSentError} not logged in: never sent, safe to retry (maybe elsewhere).
   * @throws {AmiConnectionLostError} sent, then the connection dropped before the
   *   `OriginateResponse`: the call may exist; never redial blindly.
   * @throws {AmiTimeoutError} no response within `timeoutMs`, or no `OriginateResponse`
   *   within `responseTimeoutMs` after it (`action` is `OriginateResponse` then).
   * @throws {AmiLimitError} / {AmiProtocolError} as {@link action} (nothing sent).
   */
  originate(action: AmiAction, options: AmiOriginateOptions = {}): Promise<AmiOriginateResult> {
    if (!this.#loggedIn) {
      return Promise.reject(new AmiNotSentError(this.name, 'Originate'));
    }
    return this.#send(
      { ...action, Action: 'Originate', Async: 'true' },
      options.timeoutMs ?? this.#actionTimeoutMs,
      options.tag,
      {
        completeOn: 'OriginateResponse',
        responseTimeoutMs: options.responseTimeoutMs ?? 60_000,
        onQueued: options.onQueued,
        onComplete: options.onOriginateResponse,
      },
    ).then(({ response, events }) => ({
      response,
      originateResponse: events[0] as AmiEvent,
    }));
  }

  /** Async iterator of this server's events; see {@link AmiEventStream} for the buffer policy. */
  events(options?: AmiEventStreamOptions): AmiEventStream {
    return this.#hub.open(options);
  }

  /** Same as {@link events} with the default buffer. Ends on `close()`. */
  [Symbol.asyncIterator](): AmiEventStream {
    return this.events();
  }

  /**
   * Logs off politely (`Logoff`, waiting at most `timeoutMs` for `Goodbye`), stops
   * reconnecting, rejects pending actions with {@link AmiDisconnectedError}, ends the
   * iterators. Idempotent.
   */
  async close(timeoutMs = 1000): Promise<void> {
    if (this.#state === 'closed') return;
    const wasLoggedIn = this.#loggedIn;
    this.#state = 'closed';
    clearTimeout(this.#reconnectTimer);
    this.#stopPing();
    if (wasLoggedIn) {
      await this.#send({ Action: 'Logoff' }, timeoutMs).catch(() => undefined);
    }
    const socket = this.#socket;
    if (socket !== undefined) {
      socket.destroy();
      this.#onClose(socket, undefined);
    }
    this.#failConnectWaiters(new AmiDisconnectedError(this.name, 'AMI client was closed'));
    this.#hub.close();
  }

  /** Safe printable form: no secret. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      host: this.#host,
      port: this.#port,
      username: this.#username,
      auth: this.#auth,
      connected: this.#loggedIn,
    };
  }

  [inspectSymbol](): string {
    return `AmiClient ${JSON.stringify(this.toJSON())}`;
  }

  #nextId(): string {
    this.#idCounter++;
    return `${this.#idPrefix}-${this.#idCounter}`;
  }

  /** Sends on the current socket, whatever the login state (used for the login itself). */
  #send(
    action: AmiAction,
    timeoutMs: number,
    tag?: string,
    completion?: Pick<Pending, 'completeOn' | 'responseTimeoutMs' | 'onQueued' | 'onComplete'>,
  ): Promise<AmiActionResult> {
    const socket = this.#socket;
    if (socket === undefined || socket.destroyed) {
      return Promise.reject(new AmiNotSentError(this.name, action.Action));
    }
    if (this.#pending.size >= this.#maxPending) {
      return Promise.reject(
        new AmiLimitError(
          this.name,
          action.Action,
          `AMI action ${action.Action} on ${this.name} refused: ${this.#pending.size} actions already wait for an answer (maxPendingActions)`,
        ),
      );
    }
    const id = tag !== undefined && TAG.test(tag) ? `${this.#nextId()}/${tag}` : this.#nextId();
    let text: string;
    try {
      text = serializeAction({ ...action, ActionID: id });
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<AmiActionResult>((resolve, reject) => {
      const pending: Pending = {
        action: action.Action,
        id,
        completeOn: completion?.completeOn,
        responseTimeoutMs: completion?.responseTimeoutMs ?? timeoutMs,
        onQueued: completion?.onQueued,
        onComplete: completion?.onComplete,
        early: undefined,
        resolve,
        reject,
        timer: undefined,
        events: undefined,
        response: undefined,
      };
      pending.timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new AmiTimeoutError(this.name, action.Action, timeoutMs));
      }, timeoutMs);
      this.#pending.set(id, pending);
      socket.write(text);
    });
  }

  #open(): void {
    this.#state = 'connecting';
    this.#loggedIn = false;
    const options = { host: this.#host, port: this.#port };
    let socket: net.Socket;
    if (this.#tls === false) {
      socket = net.connect(options);
    } else {
      const tlsOptions = this.#tls === true ? {} : this.#tls;
      socket = tls.connect({ servername: this.#host, ...tlsOptions, ...options });
    }
    this.#socket = socket;
    socket.setNoDelay(true);
    const connectTimer = setTimeout(() => {
      socket.destroy(new AmiError(`AMI connect to ${this.name} timed out`, this.name));
    }, this.#connectTimeoutMs);
    const wantEvent = this.#wantEvent;
    const parser = new AmiParser({
      ...(wantEvent === undefined
        ? {}
        : { wantEvent: (name: string) => wantEvent(name) || this.#collectingList() }),
      maxMessageBytes: this.#maxMessageBytes,
      maxHeaders: this.#maxHeaders,
      onBanner: (banner) => {
        this.banner = banner;
      },
      onMessage: (message) => {
        // One message that cannot be handled never costs the connection nor the rest of
        // the chunk: it is skipped, counted and reported.
        try {
          this.#dispatch(message);
        } catch (error) {
          const detail = error instanceof Error ? error.message : String(error);
          this.#skip(new AmiMessageSkippedError(this.name, 'handler_failed', detail, error));
        }
      },
      onError: (error) => {
        const reason = error.code === 'TOO_MANY_HEADERS' ? 'too_many_headers' : 'too_large';
        this.#skip(new AmiMessageSkippedError(this.name, reason, error.message, error));
      },
    });
    let closeError: Error | undefined;
    socket.on(this.#tls === false ? 'connect' : 'secureConnect', () => {
      clearTimeout(connectTimer);
      this.#login().then(
        () => this.#onLogin(socket),
        (error: Error) => {
          if (error instanceof AmiAuthError) {
            this.#onAuthFailure(error);
          } else {
            socket.destroy(error);
          }
        },
      );
    });
    socket.on('data', (chunk: Buffer) => {
      // The parser reports bad messages to onError and does not throw; anything else
      // thrown here is a bug, and a fresh connection is the safest way out of it.
      try {
        parser.push(chunk);
      } catch (error) {
        socket.destroy(error as Error);
      }
    });
    socket.on('error', (error) => {
      closeError = error;
    });
    socket.on('close', () => {
      clearTimeout(connectTimer);
      this.#onClose(
        socket,
        closeError ?? new AmiDisconnectedError(this.name, `AMI connection to ${this.name} closed`),
      );
    });
  }

  async #login(): Promise<void> {
    const timeoutMs = this.#actionTimeoutMs;
    try {
      if (this.#auth === 'md5') {
        const { response } = await this.#send({ Action: 'Challenge', AuthType: 'MD5' }, timeoutMs);
        const challenge = field(response, 'Challenge') ?? '';
        const key = createHash('md5')
          .update(challenge + this.#secret)
          .digest('hex');
        await this.#send(
          {
            Action: 'Login',
            AuthType: 'MD5',
            Username: this.#username,
            Key: key,
            Events: this.#events,
          },
          timeoutMs,
        );
      } else {
        await this.#send(
          { Action: 'Login', Username: this.#username, Secret: this.#secret, Events: this.#events },
          timeoutMs,
        );
      }
    } catch (error) {
      if (error instanceof AmiActionError) throw new AmiAuthError(this.name, error.amiMessage);
      throw error;
    }
  }

  #onLogin(socket: net.Socket): void {
    if (this.#socket !== socket || this.#state === 'closed') return;
    this.#state = 'connected';
    this.#loggedIn = true;
    this.#everConnected = true;
    this.#attempt = 0;
    this.#startPing();
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const waiter of waiters) waiter.resolve();
    this.emit('connect', this.name);
  }

  #onAuthFailure(error: AmiAuthError): void {
    // No reconnect: hammering a wrong password helps nobody.
    this.#state = 'closed';
    clearTimeout(this.#reconnectTimer);
    this.#socket?.destroy();
    this.#emitError(error);
    this.#failConnectWaiters(error);
    this.#hub.close();
  }

  #onClose(socket: net.Socket, error: Error | undefined): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    const wasLoggedIn = this.#loggedIn;
    this.#loggedIn = false;
    this.#stopPing();
    const pendingError =
      error instanceof AmiDisconnectedError
        ? error
        : new AmiDisconnectedError(
            this.name,
            `AMI connection to ${this.name} lost${error ? `: ${error.message}` : ''}`,
            error,
          );
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      // Sent, unanswered: Asterisk may have run it.
      p.reject(
        new AmiConnectionLostError(
          this.name,
          p.action,
          p.id,
          p.response !== undefined,
          pendingError.message,
          error,
        ),
      );
    }
    if (wasLoggedIn)
      this.emit('disconnect', this.name, this.#state === 'closed' ? undefined : error);
    if (this.#state === 'closed') return;
    if (error !== undefined && !(error instanceof AmiDisconnectedError)) this.#emitError(error);
    if (!this.#everConnected && !this.#retryInitial) {
      this.#state = 'idle';
      this.#failConnectWaiters(error ?? pendingError);
      return;
    }
    this.#state = 'waiting';
    const delayMs = backoffDelayMs(this.#attempt, this.#backoff, this.#random);
    this.#attempt++;
    this.#reconnectTimer = setTimeout(() => {
      if (this.#state === 'waiting') this.#open();
    }, delayMs);
  }

  #failConnectWaiters(error: Error): void {
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  #emitError(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error, this.name);
  }

  #skip(error: AmiMessageSkippedError): void {
    this.#skipped++;
    try {
      this.emit('skipped', error, this.name);
    } catch {
      // A failing 'skipped' listener must not bring back what skipping avoids.
    }
  }

  #startPing(): void {
    if (this.#pingIntervalMs <= 0) return;
    this.#pingTimer = setInterval(() => {
      if (this.#pingInFlight || !this.#loggedIn || this.#paused) return;
      const socket = this.#socket;
      this.#pingInFlight = true;
      const pauses = this.#pauses;
      const sentAtMs = Date.now();
      this.#send({ Action: 'Ping' }, this.#pongTimeoutMs).then(
        () => {
          this.#pingInFlight = false;
        },
        (error: Error) => {
          this.#pingInFlight = false;
          // Not an unanswered Ping: reading was paused meanwhile, or this process itself
          // stood still (a blocking write to a full stdout pipe): the answer may be waiting
          // unread in the socket.
          if (this.#paused || pauses !== this.#pauses) return;
          if (Date.now() - sentAtMs > this.#pongTimeoutMs + STALL_TOLERANCE_MS) return;
          if (error instanceof AmiTimeoutError && socket !== undefined && socket === this.#socket) {
            socket.destroy(new AmiTimeoutError(this.name, 'Ping', this.#pongTimeoutMs));
          }
        },
      );
    }, this.#pingIntervalMs);
    this.#pingTimer.unref?.();
  }

  #stopPing(): void {
    clearInterval(this.#pingTimer);
    this.#pingTimer = undefined;
    this.#pingInFlight = false;
  }

  #dispatch(message: AmiMessage): void {
    const event = message.Event;
    const id = field(message, 'ActionID');
    if (event !== undefined) {
      if (id !== undefined && this.#pending.size > 0) {
        const pending = this.#pending.get(id);
        if (pending?.completeOn !== undefined && event === pending.completeOn) {
          // The event completing an async action (OriginateResponse): it is the result, and
          // an ordinary event as well (the bus and the call engine see every event).
          completions.add(message);
          if (pending.response === undefined) {
            pending.early = message as AmiEvent;
          } else {
            this.#settle(id, pending);
            pending.resolve({ response: pending.response, events: [message as AmiEvent] });
            pending.onComplete?.(message as AmiEvent);
          }
        } else if (pending?.events !== undefined) {
          const list = field(message, 'EventList');
          if (list === 'Complete' || list === 'Cancelled') {
            pending.events.push(message as AmiEvent);
            this.#settle(id, pending);
            pending.resolve({ response: pending.response as AmiMessage, events: pending.events });
            return;
          }
          if (pending.events.length >= this.#maxListEvents) {
            // A list that never ends (or is absurdly long): stop collecting it. Its further
            // events are ordinary events from now on.
            this.#settle(id, pending);
            pending.reject(
              new AmiLimitError(
                this.name,
                pending.action,
                `AMI action ${pending.action} on ${this.name}: event list longer than ${this.#maxListEvents} events (maxEventListEvents)`,
              ),
            );
          } else {
            pending.events.push(message as AmiEvent);
            return;
          }
        }
      }
      this.emit('event', message as AmiEvent, this.name);
      if (this.#hub.active) this.#hub.push(message as AmiEvent, this.name);
      return;
    }
    if (id === undefined) return;
    const pending = this.#pending.get(id);
    if (pending === undefined || pending.events !== undefined) return; // late or unknown
    const response = field(message, 'Response');
    if (response === 'Error') {
      this.#settle(id, pending);
      pending.reject(new AmiActionError(this.name, pending.action, message));
      return;
    }
    if (pending.completeOn !== undefined) {
      if (pending.response !== undefined) return;
      pending.response = message;
      if (pending.early !== undefined) {
        this.#settle(id, pending);
        pending.resolve({ response: message, events: [pending.early] });
        pending.onComplete?.(pending.early);
        return;
      }
      clearTimeout(pending.timer);
      const ms = pending.responseTimeoutMs;
      pending.timer = setTimeout(() => {
        this.#pending.delete(id);
        pending.reject(new AmiTimeoutError(this.name, pending.completeOn as string, ms));
      }, ms);
      pending.onQueued?.(message);
      return;
    }
    const list = field(message, 'EventList');
    if (list !== undefined && list.toLowerCase() === 'start') {
      pending.response = message;
      pending.events = [];
      return;
    }
    this.#settle(id, pending);
    pending.resolve({ response: message, events: [] });
  }

  /** True while an action's event list is arriving (its items are parsed, whatever their name). */
  #collectingList(): boolean {
    if (this.#pending.size === 0) return false;
    for (const pending of this.#pending.values()) if (pending.events !== undefined) return true;
    return false;
  }

  #settle(id: string, pending: Pending): void {
    clearTimeout(pending.timer);
    this.#pending.delete(id);
  }
}

/** A client of an {@link AmiPool}: a ready client or the options to create one. */
export type AmiPoolMember = AmiClient | AmiClientOptions;

/**
 * Several AMI servers at once. Every client's events are re-emitted as
 * `('event', event, serverName)`, lifecycle events likewise tagged; the async iterator yields
 * `{ server, event }` from all servers (same bounded-buffer policy as {@link AmiEventStream}).
 * Server names must be unique.
 */
export class AmiPool extends EventEmitter<AmiClientEvents> {
  readonly #clients = new Map<string, AmiClient>();
  readonly #hub = new StreamHub();

  /** @throws {Error} when two members share a name. */
  constructor(members: readonly AmiPoolMember[]) {
    super();
    for (const member of members) {
      const client = member instanceof AmiClient ? member : new AmiClient(member);
      if (this.#clients.has(client.name)) {
        throw new Error(`duplicate AMI server name ${client.name}`);
      }
      this.#clients.set(client.name, client);
      client.on('event', (event, server) => {
        this.emit('event', event, server);
        if (this.#hub.active) this.#hub.push(event, server);
      });
      client.on('connect', (server) => this.emit('connect', server));
      client.on('disconnect', (server, error) => this.emit('disconnect', server, error));
      client.on('skipped', (error, server) => this.emit('skipped', error, server));
      client.on('error', (error, server) => {
        if (this.listenerCount('error') > 0) this.emit('error', error, server);
      });
    }
  }

  /** The clients, by server name. */
  get clients(): ReadonlyMap<string, AmiClient> {
    return this.#clients;
  }

  /** The client of one server. @throws {Error} for an unknown name. */
  client(server: string): AmiClient {
    const client = this.#clients.get(server);
    if (client === undefined) throw new Error(`unknown AMI server ${server}`);
    return client;
  }

  /**
   * Connects every client; resolves when all are logged in, rejects with the first failure
   * (the other clients keep their own retry behaviour).
   */
  async connect(): Promise<void> {
    await Promise.all([...this.#clients.values()].map((client) => client.connect()));
  }

  /** Sends an action to one server; see {@link AmiClient.action}. */
  action(server: string, action: AmiAction, options?: AmiActionOptions): Promise<AmiActionResult> {
    return this.client(server).action(action, options);
  }

  /** Async iterator of all servers' events, tagged. Ends on `close()`. */
  events(options?: AmiEventStreamOptions): AmiEventStream {
    return this.#hub.open(options);
  }

  [Symbol.asyncIterator](): AmiEventStream {
    return this.events();
  }

  /** Closes every client (Logoff) and ends the iterators. */
  async close(): Promise<void> {
    await Promise.all([...this.#clients.values()].map((client) => client.close()));
    this.#hub.close();
  }
}
