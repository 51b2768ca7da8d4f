/**
 * A minimal AMI server over real TCP, answering like Asterisk 22 (see
 * `test/fixtures/asterisk22/recordings/*.raw.txt`): banner, `Login` (plaintext and MD5
 * challenge), `Ping`, `Logoff`, `ListCommands`, `UserEvent`, `FullyBooted` after login,
 * pluggable handlers for other actions, and a fast broadcast path for streaming events. Used
 * by tests and the PBX simulator.
 *
 * Each user can be given `read` and `write` classes as in `manager.conf` (default `all`);
 * the server then plays that user as Asterisk 22 does (`main/manager.c`): an action whose
 * classes the user may not write is answered `Response: Error` / `Message: Permission
 * denied` (before any handler runs), `ListCommands` lists only the actions it may run, and
 * an event is sent only if the user may read every class its `Privilege` names (masked by
 * the login's `Events`), so `FullyBooted` needs read `system`.
 *
 * @module
 */
import { createHash, randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { AmiEvent, AmiMessage } from './message.ts';
import {
  AMI_CLASSES,
  AMI_CORE_ACTIONS,
  type AmiClass,
  parseClasses,
  parseClassList,
} from './permissions.ts';
import { type AmiActionValue, AmiParser, serializeMessage } from './protocol.ts';

/** The banner Asterisk 13–22 send. */
export const AMI_BANNER = 'Asterisk Call Manager/11.0.0';

/** A message to send: string values, arrays for repeated keys, numbers/booleans stringified. */
export type AmiOutgoing = Readonly<Record<string, AmiActionValue>>;

/**
 * What a handler answers. Nothing (undefined) means the handler answered itself through the
 * connection (or wants no answer, e.g. to simulate a hung server).
 */
export interface AmiHandlerReply {
  /** Response fields; `Response: Success` when omitted. The `ActionID` is added after `Response`. */
  response?: AmiOutgoing;
  /**
   * Events of an event list: the response gets `EventList: start`, every event gets the
   * action's `ActionID` (after `Event`), then `complete` closes the list.
   */
  events?: readonly AmiOutgoing[];
  /** Name of the closing event (e.g. `CoreShowChannelsComplete`); default `<Action>Complete`. Gets `EventList: Complete` and `ListItems`. */
  complete?: string;
}

/** A handler for one action name. */
export type AmiActionHandler = (
  action: AmiMessage,
  connection: AmiServerConnection,
) => AmiHandlerReply | undefined | Promise<AmiHandlerReply | undefined>;

/** A manager user with its classes, as a `manager.conf` section has them. */
export interface AmiServerUser {
  secret: string;
  /** `read =`: classes the user receives events of, e.g. `call,agent`. Default `all`. */
  read?: string;
  /** `write =`: classes of the actions the user may run, e.g. `originate,reporting`. Default `all`. */
  write?: string;
}

/** Options of {@link AmiServer}. */
export interface AmiServerOptions {
  /** Accepted users: username → secret (`read = all`, `write = all`), or the user with its classes. */
  users: Readonly<Record<string, string | AmiServerUser>>;
  /** Handlers by action name (case-insensitive); they may override `Ping`, `ListCommands` and `UserEvent`, not `Login`/`Challenge`/`Logoff`. */
  handlers?: Readonly<Record<string, AmiActionHandler>>;
  /**
   * Write classes of actions that are not Asterisk core actions (by name, case-insensitive),
   * e.g. `{ QueueStatus: 'agent' }`. A handled action that is neither here nor a core action
   * may be run by every user.
   */
  actionClasses?: Readonly<Record<string, string>>;
  /** Banner line. Default {@link AMI_BANNER}. */
  banner?: string;
  /** Send `FullyBooted` right after each login, like Asterisk 22. Default true. */
  fullyBooted?: boolean;
  /** When this Asterisk started (`Date.now()` ms), for `FullyBooted`'s `Uptime`. Default: now. */
  startedAtMs?: number;
}

/** Events of {@link AmiServer}: for tests that count connections and logins. */
export interface AmiServerEvents {
  connection: [connection: AmiServerConnection];
  login: [connection: AmiServerConnection, ok: boolean];
  action: [action: AmiMessage, connection: AmiServerConnection];
}

/** Actions the server answers itself (besides Login, Challenge and Logoff). */
const BUILT_IN: ReadonlySet<string> = new Set(['ping', 'listcommands', 'userevent']);

function first(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' || value === undefined ? value : value[0];
}

/** One client connection of an {@link AmiServer}. */
export class AmiServerConnection {
  /** The logged-in user, once logged in. */
  username: string | undefined;
  /** True after a successful login. */
  loggedIn = false;
  /** The user's `read` classes (all until the login says otherwise). */
  read: ReadonlySet<AmiClass> = new Set(AMI_CLASSES);
  /** The user's `write` classes. */
  write: ReadonlySet<AmiClass> = new Set(AMI_CLASSES);
  /** Classes of the events sent to this connection: `read` masked by the login's `Events`. */
  sendEvents: ReadonlySet<AmiClass> = new Set(AMI_CLASSES);
  readonly socket: net.Socket;
  /** The MD5 challenge handed out by `Challenge`. */
  challenge: string | undefined;

  constructor(socket: net.Socket) {
    this.socket = socket;
  }

  /** False when the client logged in with `Events: off` (or may read nothing). */
  get eventsOn(): boolean {
    return this.sendEvents.size > 0;
  }

  /**
   * Whether Asterisk would send this connection an event of these classes (a `Privilege`
   * value such as `call,all`): only if it may receive every one of them. An event without
   * classes goes to every connection with events on.
   */
  mayReceive(privilege: string | undefined): boolean {
    if (!this.eventsOn) return false;
    if (privilege === undefined || this.sendEvents.size === AMI_CLASSES.length) return true;
    for (const name of parseClasses(privilege)) if (!this.sendEvents.has(name)) return false;
    return true;
  }

  /** Sends one message (keys in insertion order). @throws {AmiProtocolError} on CR/LF in a value. */
  send(message: AmiOutgoing): boolean {
    return this.sendRaw(serializeMessage(message));
  }

  /** Writes pre-serialized wire text; returns false when the socket buffer is full. */
  sendRaw(data: string | Buffer): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(data);
  }

  /** Sends a response with `ActionID` right after `Response`, as Asterisk does. */
  respond(action: AmiMessage, fields: AmiOutgoing): void {
    const { Response = 'Success', ...rest } = fields;
    const id = first(action.ActionID);
    this.send(id === undefined ? { Response, ...rest } : { Response, ActionID: id, ...rest });
  }

  /** Closes the connection (FIN). */
  close(): void {
    this.socket.end();
  }
}

/**
 * The fake Asterisk. `listen()` on 127.0.0.1, port 0 by default; `port` once listening.
 * Login failures answer exactly like Asterisk (`Response: Error` / `Message: Authentication
 * failed`) and close the connection.
 */
export class AmiServer extends EventEmitter<AmiServerEvents> {
  readonly #options: AmiServerOptions;
  readonly #handlers = new Map<string, AmiActionHandler>();
  /** Handled action names as given, by lower-case name (for `ListCommands`). */
  readonly #handlerNames = new Map<string, string>();
  readonly #actionClasses = new Map<string, readonly AmiClass[]>();
  readonly #server: net.Server;
  readonly #connections = new Set<AmiServerConnection>();
  readonly #startedAt: number;

  constructor(options: AmiServerOptions) {
    super();
    this.#options = options;
    this.#startedAt = options.startedAtMs ?? Date.now();
    for (const [name, handler] of Object.entries(options.handlers ?? {})) {
      this.handle(name, handler);
    }
    for (const [name, classes] of Object.entries(options.actionClasses ?? {})) {
      this.#actionClasses.set(name.toLowerCase(), parseClasses(classes));
    }
    this.#server = net.createServer((socket) => this.#accept(socket));
  }

  /** Adds or replaces the handler of an action (case-insensitive name). */
  handle(action: string, handler: AmiActionHandler): void {
    this.#handlers.set(action.toLowerCase(), handler);
    this.#handlerNames.set(action.toLowerCase(), action);
  }

  /** Starts listening; resolves with the port. */
  listen(port = 0, host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve(this.port);
      });
    });
  }

  /** The listening port. */
  get port(): number {
    const address = this.#server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  /** Open connections (logged in or not). */
  get connections(): ReadonlySet<AmiServerConnection> {
    return this.#connections;
  }

  /**
   * Sends an event to every logged-in connection that may receive it (its `Privilege`, see
   * {@link AmiServerConnection.mayReceive}). Returns how many got it.
   */
  broadcast(event: AmiOutgoing & { Event: string }): number {
    const privilege = event.Privilege;
    return this.broadcastRaw(
      serializeMessage(event),
      typeof privilege === 'string' ? privilege : undefined,
    );
  }

  /**
   * Fast path: writes pre-serialized wire text (any number of complete events) to every
   * logged-in connection with events on, or, with `privilege` (the events' `Privilege`,
   * e.g. `call,all`), to those that may receive events of those classes. Returns how many
   * connections got it. Pair with {@link drain} to respect backpressure when streaming
   * millions of events.
   */
  broadcastRaw(data: string | Buffer, privilege?: string): number {
    let count = 0;
    for (const connection of this.#connections) {
      if (
        connection.loggedIn &&
        !connection.socket.destroyed &&
        (privilege === undefined ? connection.eventsOn : connection.mayReceive(privilege))
      ) {
        connection.socket.write(data);
        count++;
      }
    }
    return count;
  }

  /** Resolves when every connection's write buffer is below its high-water mark. */
  async drain(): Promise<void> {
    await Promise.all(
      [...this.#connections].map((connection) =>
        connection.socket.writableNeedDrain && !connection.socket.destroyed
          ? new Promise<void>((resolve) => {
              const done = (): void => {
                connection.socket.off('drain', done);
                connection.socket.off('close', done);
                resolve();
              };
              connection.socket.on('drain', done);
              connection.socket.on('close', done);
            })
          : undefined,
      ),
    );
  }

  /** Destroys every connection abruptly, to simulate a network failure (the server keeps listening). */
  dropConnections(): void {
    for (const connection of this.#connections) connection.socket.destroy();
    this.#connections.clear();
  }

  /** Stops listening and destroys every connection. */
  close(): Promise<void> {
    this.dropConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    const connection = new AmiServerConnection(socket);
    this.#connections.add(connection);
    // Like Asterisk, a bad action costs the client an error answer, not its connection: an
    // oversized message is skipped, a handler that fails answers `Response: Error`.
    const parser = new AmiParser({
      onMessage: (message) => {
        this.#onAction(message, connection).catch(() => {
          try {
            connection.respond(message, { Response: 'Error', Message: 'Internal error' });
          } catch {
            // Not even an error answer can be written (e.g. CR/LF in the ActionID).
          }
        });
      },
      onError: () => undefined,
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        parser.push(chunk);
      } catch {
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => this.#connections.delete(connection));
    socket.write(`${this.#options.banner ?? AMI_BANNER}\r\n`);
    this.emit('connection', connection);
  }

  async #onAction(action: AmiMessage, connection: AmiServerConnection): Promise<void> {
    const name = (first(action.Action) ?? '').toLowerCase();
    this.emit('action', action, connection);
    if (name === 'login') return this.#login(action, connection);
    if (name === 'challenge') {
      if (first(action.AuthType)?.toLowerCase() !== 'md5') {
        connection.respond(action, { Response: 'Error', Message: 'Must specify AuthType' });
        return;
      }
      connection.challenge = String(randomInt(100_000_000, 999_999_999));
      connection.respond(action, { Challenge: connection.challenge });
      return;
    }
    if (name === 'logoff') {
      connection.respond(action, { Response: 'Goodbye', Message: 'Thanks for all the fish.' });
      connection.close();
      return;
    }
    if (!connection.loggedIn) {
      connection.respond(action, { Response: 'Error', Message: 'Permission denied' });
      return;
    }
    const handler = this.#handlers.get(name);
    const known = handler !== undefined || BUILT_IN.has(name) || AMI_CORE_ACTIONS.has(name);
    if (known && !this.#mayRun(connection, name)) {
      // Asterisk checks `writeperm & authority` before running anything.
      connection.respond(action, { Response: 'Error', Message: 'Permission denied' });
      return;
    }
    if (handler === undefined) {
      if (name === 'ping') {
        const nowS = Date.now() / 1000;
        connection.respond(action, { Ping: 'Pong', Timestamp: nowS.toFixed(6) });
        return;
      }
      if (name === 'listcommands') {
        this.#listCommands(action, connection);
        return;
      }
      if (name === 'userevent') {
        this.#userEvent(action, connection);
        return;
      }
      connection.respond(action, { Response: 'Error', Message: 'Invalid/unknown command' });
      return;
    }
    const reply = await handler(action, connection);
    if (reply === undefined || connection.socket.destroyed) return;
    const events = reply.events;
    if (events === undefined) {
      connection.respond(action, reply.response ?? {});
      return;
    }
    const id = first(action.ActionID);
    connection.respond(action, { ...reply.response, EventList: 'start' });
    let text = '';
    const withId = (fields: AmiOutgoing): AmiOutgoing => {
      const { Event, ...rest } = fields;
      return id === undefined ? { Event, ...rest } : { Event, ActionID: id, ...rest };
    };
    for (const event of events) text += serializeMessage(withId(event));
    text += serializeMessage(
      withId({
        Event: reply.complete ?? `${first(action.Action)}Complete`,
        EventList: 'Complete',
        ListItems: String(events.length),
      }),
    );
    connection.sendRaw(text);
  }

  /** Write classes that allow `name` (lower case): core table, then `actionClasses`; `[]` for any user. */
  #classesOf(name: string): readonly AmiClass[] {
    const extra = this.#actionClasses.get(name);
    if (extra !== undefined) return extra;
    return AMI_CORE_ACTIONS.get(name)?.classes ?? [];
  }

  #mayRun(connection: AmiServerConnection, name: string): boolean {
    const classes = this.#classesOf(name);
    return classes.length === 0 || classes.some((c) => connection.write.has(c));
  }

  /** `action_listcommands`: one `Name: synopsis (Priv: classes,all)` line per action the user may run. */
  #listCommands(action: AmiMessage, connection: AmiServerConnection): void {
    const names = new Map<string, string>();
    for (const [key, info] of AMI_CORE_ACTIONS) names.set(key, info.name);
    for (const key of this.#handlerNames.keys()) {
      if (!names.has(key)) names.set(key, this.#handlerNames.get(key) as string);
    }
    const fields: Record<string, string> = {};
    for (const [key, display] of names) {
      if (!this.#mayRun(connection, key)) continue;
      const classes = this.#classesOf(key);
      const priv = classes.length === 0 ? '<none>' : `${classes.join(',')},all`;
      const synopsis = AMI_CORE_ACTIONS.get(key)?.synopsis ?? `${display}.`;
      fields[display] = `${synopsis} (Priv: ${priv})`;
    }
    connection.respond(action, fields);
  }

  /**
   * `action_userevent`: acknowledges with `Message: Event Sent`, then raises `UserEvent` (class
   * `user`) with every header of the action but `Action` and `UserEvent` (so the `ActionID`
   * too), to every connection that may read `user`.
   */
  #userEvent(action: AmiMessage, connection: AmiServerConnection): void {
    connection.respond(action, { Message: 'Event Sent' });
    const event: Record<string, AmiActionValue> = {
      Event: 'UserEvent',
      Privilege: 'user,all',
      UserEvent: first(action.UserEvent) ?? '',
    };
    for (const key of Object.keys(action)) {
      if (key === 'Action' || key === 'UserEvent') continue;
      event[key] = action[key] as string | string[];
    }
    this.broadcast(event as AmiOutgoing & { Event: string });
  }

  #login(action: AmiMessage, connection: AmiServerConnection): void {
    const username = first(action.Username) ?? '';
    const user = Object.hasOwn(this.#options.users, username)
      ? this.#options.users[username]
      : undefined;
    const secret = typeof user === 'object' ? user.secret : user;
    let ok = false;
    if (secret !== undefined) {
      if (first(action.AuthType)?.toLowerCase() === 'md5') {
        const challenge = connection.challenge;
        const expected =
          challenge === undefined
            ? undefined
            : createHash('md5')
                .update(challenge + secret)
                .digest('hex');
        ok = expected !== undefined && first(action.Key) === expected;
      } else {
        ok = first(action.Secret) === secret;
      }
    }
    if (!ok) {
      connection.respond(action, { Response: 'Error', Message: 'Authentication failed' });
      this.emit('login', connection, false);
      connection.close();
      return;
    }
    const classes: AmiServerUser = typeof user === 'object' ? user : { secret: '' };
    connection.loggedIn = true;
    connection.username = username;
    connection.read = parseClassList(classes.read ?? 'all');
    connection.write = parseClassList(classes.write ?? 'all');
    // `set_eventmask`: the Events header (every read class when absent or empty) ∩ read.
    const events = first(action.Events) ?? '';
    const mask = events.trim() === '' ? connection.read : parseClassList(events);
    connection.sendEvents = new Set([...connection.read].filter((name) => mask.has(name)));
    connection.respond(action, { Message: 'Authentication accepted' });
    if ((this.#options.fullyBooted ?? true) && connection.sendEvents.has('system')) {
      const uptimeS = String(Math.floor((Date.now() - this.#startedAt) / 1000));
      connection.send({
        Event: 'FullyBooted',
        Privilege: 'system,all',
        Uptime: uptimeS,
        LastReload: uptimeS,
        Status: 'Fully Booted',
      } satisfies AmiEvent);
    }
    // After the answer: a listener may start streaming events to this connection at once.
    this.emit('login', connection, true);
  }
}
