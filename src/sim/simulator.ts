/**
 * The PBX simulator: a fake Asterisk 22 speaking AMI over real TCP (built on
 * {@link AmiServer}), for demos (`switchboard sim`, `npm start`) and for every test that
 * needs a PBX.
 *
 * - Login (plain / MD5), Ping, Logoff, `FullyBooted` after login: {@link AmiServer}.
 * - Replay: streams a recording to logged-in clients, paced, looping with identifiers unique
 *   per loop (`-r<n>`).
 * - `Originate` (sync and `Async: true`) answered with the events of a real Asterisk 22, the
 *   called party following a script per number ({@link SimScript}); see `./originate.ts`.
 * - `Hangup` (a channel by name), `CoreShowChannels` (truthful: every live channel, replayed
 *   or originated).
 * - Every action received is recorded ({@link Simulator.actions}) so tests can assert
 *   Originate parameters.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import type { AmiEvent, AmiMessage } from '../ami/message.ts';
import { serializeMessage } from '../ami/protocol.ts';
import { AmiServer, type AmiServerConnection } from '../ami/server.ts';
import { REDACTED } from '../util/redact.ts';
import { ChannelTable } from './channels.ts';
import { type OriginateRequest, parseOriginate, SimCall, type SimCallHost } from './originate.ts';
import { eventForLoop, loadReplayEvents, replayOffsets, type SimReplayOptions } from './replay.ts';
import {
  resolveDialplan,
  resolveScript,
  type SimDialplans,
  type SimScript,
  type SimScripts,
  type SimUserEvent,
} from './script.ts';

/** Options of {@link startSimulator}. Everything is optional. */
export interface SimulatorOptions {
  /** Address to listen on. Default `127.0.0.1`. */
  host?: string;
  /** TCP port; 0 = a free port (see {@link Simulator.port}). Default 0. */
  port?: number;
  /** AMI user accepted. Default `switchboard`. */
  username?: string;
  /** Its secret. Default `switchboard`. */
  secret?: string;
  /** More accepted users: name → secret. */
  users?: Readonly<Record<string, string>>;
  /** Replay a recording (see {@link SimReplayOptions}). */
  replay?: SimReplayOptions;
  /** Scripts by called number (exact, `_pattern` or `*`). */
  scripts?: SimScripts;
  /** Defaults of every script (the config's `simulator.defaultScript`). */
  defaultScript?: Partial<SimScript>;
  /** Simulated dialplan by context (`*` = any other); default: the `[alert]` context of the wire logs. */
  dialplan?: SimDialplans;
  /** `UserEvent` raised when an `Application: Read` originate completes. Default none (as Asterisk). */
  applicationUserEvent?: SimUserEvent | null;
  /** Duration of one DTMF key (and of the gap between keys), in ms. Default 100 (as `SendDTMF`). */
  dtmfDurationMs?: number;
  /** Called with every recorded action (e.g. to log it). */
  onAction?: (action: RecordedAction) => void;
  /** Actions kept in {@link Simulator.actions}; older ones are dropped. Default 10000. */
  maxRecordedActions?: number;
  /**
   * Live channels kept in {@link Simulator.channels}; beyond, the oldest are forgotten (a
   * replayed recording that never hangs up cannot grow the simulator). Default 100,000.
   */
  maxChannels?: number;
}

/** One action the simulator received. `Secret` and `Key` of logins are replaced by `***`. */
export interface RecordedAction {
  /** The `Action` value as sent (e.g. `Originate`). */
  name: string;
  /** Every field as received (repeated keys as arrays), secrets redacted. */
  fields: AmiMessage;
  /** When it arrived (`Date.now()` ms). */
  atMs: number;
  /** The connection's user, once logged in. */
  username: string | undefined;
}

/** Events of {@link Simulator}. */
export interface SimulatorEvents {
  /** Every event sent to clients (replayed or simulated). */
  event: [event: AmiEvent];
  /** Every action received. */
  action: [action: RecordedAction];
  /** An Originate was accepted and its call started. */
  call: [call: SimCall];
  /** A replay pass ended (0-based pass number). */
  loop: [pass: number];
}

function one(message: AmiMessage, key: string): string | undefined {
  const value = message[key];
  return typeof value === 'string' || value === undefined ? value : value[0];
}

/** The running simulator returned by {@link startSimulator}. */
export class Simulator extends EventEmitter<SimulatorEvents> {
  /** The underlying AMI server. */
  readonly server: AmiServer;
  /** The live channels (what `CoreShowChannels` answers), bounded by `maxChannels`. */
  readonly channels: ChannelTable;
  /** Every action received, oldest first (bounded by `maxRecordedActions`). */
  readonly actions: RecordedAction[] = [];
  /** Every accepted Originate's call, oldest first. */
  readonly calls: SimCall[] = [];
  /** Replay progress: passes completed and events sent. */
  readonly replay = { passes: 0, eventsSent: 0, done: false };
  /** The address listened on. */
  readonly host: string;

  readonly #options: SimulatorOptions;
  readonly #username: string;
  readonly #secret: string;
  #scripts: Record<string, Partial<SimScript>>;
  readonly #epochS = Math.floor(Date.now() / 1000);
  #uniqueCounter = 0;
  #sequence = 0;
  #closed = false;
  #replayStarted = false;
  #replayTimer: NodeJS.Timeout | undefined;
  #replayWake: (() => void) | undefined;
  #replayDone: Promise<void> = Promise.resolve();
  readonly #host: SimCallHost;

  constructor(options: SimulatorOptions = {}) {
    super();
    this.#options = options;
    this.channels = new ChannelTable(Date.now, options.maxChannels);
    this.host = options.host ?? '127.0.0.1';
    this.#username = options.username ?? 'switchboard';
    this.#secret = options.secret ?? 'switchboard';
    this.#scripts = { ...options.scripts };
    this.server = new AmiServer({
      users: { ...options.users, [this.#username]: this.#secret },
      handlers: {
        Originate: (action, connection) => this.#originate(action, connection),
        Hangup: (action) => this.#hangup(action),
        CoreShowChannels: (action, connection) => this.#coreShowChannels(action, connection),
      },
    });
    this.server.on('action', (action, connection) => this.#record(action, connection));
    this.server.on('login', (_connection, ok) => {
      if (ok && this.#options.replay && (this.#options.replay.startOnLogin ?? true))
        this.#startReplay();
    });
    this.#host = {
      emit: (event) => this.emitEvent(event),
      nextUniqueid: () => `${this.#epochS}.${this.#uniqueCounter++}`,
      nextSequence: () => (++this.#sequence).toString(16).padStart(8, '0'),
      dtmfDurationMs: options.dtmfDurationMs ?? 100,
      applicationUserEvent: options.applicationUserEvent ?? null,
    };
  }

  /** The listening port. */
  get port(): number {
    return this.server.port;
  }

  /**
   * An AMI URL for `parseAmiUrl` / `--ami` / config: `tcp://user:secret@host:port`, with the
   * simulator's user and secret unless others are given (user and secret URL-encoded).
   */
  url(username = this.#username, secret = this.#secret): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `tcp://${encodeURIComponent(username)}:${encodeURIComponent(secret)}@${host}:${this.port}`;
  }

  /** Options for `new AmiClient(...)` logging in as the simulator's user. */
  clientOptions(): { host: string; port: number; username: string; secret: string } {
    return { host: this.host, port: this.port, username: this.#username, secret: this.#secret };
  }

  /** Starts listening (called by {@link startSimulator}). Resolves with the port. */
  async listen(): Promise<number> {
    const port = await this.server.listen(this.#options.port ?? 0, this.host);
    if (this.#options.replay && this.#options.replay.startOnLogin === false) this.#startReplay();
    return port;
  }

  /** Sets (or with `undefined` removes) the script of a number (exact, `_pattern` or `*`) at run time. */
  setScript(number: string, script: Partial<SimScript> | undefined): void {
    if (script === undefined) delete this.#scripts[number];
    else this.#scripts[number] = script;
  }

  /** The script an Originate to `number` would follow now. */
  scriptFor(number: string): SimScript {
    return resolveScript(this.#scripts, number, this.#options.defaultScript);
  }

  /** Actions received with this name (case-insensitive), oldest first. */
  actionsNamed(name: string): RecordedAction[] {
    const lower = name.toLowerCase();
    return this.actions.filter((action) => action.name.toLowerCase() === lower);
  }

  /** The Originate actions received, parsed (invalid ones skipped), oldest first. */
  originates(): OriginateRequest[] {
    const out: OriginateRequest[] = [];
    for (const action of this.actionsNamed('Originate')) {
      const parsed = parseOriginate(action.fields);
      if (!('error' in parsed)) out.push(parsed);
    }
    return out;
  }

  /**
   * Resolves with the first recorded action named `name` (already received or to come) that
   * satisfies `predicate`.
   *
   * @throws {Error} after `timeoutMs` (default 5000) without one.
   */
  waitForAction(
    name: string,
    predicate: (action: RecordedAction) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<RecordedAction> {
    const lower = name.toLowerCase();
    const match = (action: RecordedAction): boolean =>
      action.name.toLowerCase() === lower && predicate(action);
    const found = this.actions.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('action', listener);
        reject(new Error(`no ${name} action within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (action: RecordedAction): void => {
        if (!match(action)) return;
        clearTimeout(timer);
        this.off('action', listener);
        resolve(action);
      };
      this.on('action', listener);
    });
  }

  /**
   * Sends one event to every logged-in client (and updates the channel table), as if the PBX
   * raised it: for tests that need an event the scripts do not produce.
   */
  emitEvent(event: AmiEvent): void {
    if (this.#closed) return;
    this.channels.apply(event);
    this.server.broadcast(event);
    this.emit('event', event);
  }

  /** Resolves when the replay has finished (at once when there is none or it loops forever and is closed). */
  replayFinished(): Promise<void> {
    return this.#replayDone;
  }

  /** Stops the replay and every call (without hangup events), closes every connection and the listener. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#replayTimer) clearTimeout(this.#replayTimer);
    this.#replayWake?.();
    for (const call of this.calls) call.dispose();
    await this.server.close();
    await this.#replayDone.catch(() => {});
  }

  #record(action: AmiMessage, connection: AmiServerConnection): void {
    const fields: AmiMessage = { ...action };
    for (const key of Object.keys(fields)) {
      if (/^(secret|key)$/i.test(key)) fields[key] = REDACTED;
    }
    const recorded: RecordedAction = {
      name: one(action, 'Action') ?? '',
      fields,
      atMs: Date.now(),
      username: connection.username,
    };
    this.actions.push(recorded);
    const max = this.#options.maxRecordedActions ?? 10_000;
    if (this.actions.length > max) this.actions.splice(0, this.actions.length - max);
    this.#options.onAction?.(recorded);
    this.emit('action', recorded);
  }

  async #originate(action: AmiMessage, connection: AmiServerConnection) {
    const request = parseOriginate(action);
    if ('error' in request) return { response: { Response: 'Error', Message: request.error } };
    const call = new SimCall(
      request,
      this.scriptFor(request.number),
      resolveDialplan(this.#options.dialplan ?? {}, request.context ?? ''),
      this.#host,
    );
    this.calls.push(call);
    // Forget calls long over, keep the list bounded.
    if (this.calls.length > 10_000) this.calls.splice(0, this.calls.length - 10_000);
    if (request.async) {
      connection.respond(action, { Message: 'Originate successfully queued' });
      this.emit('call', call);
      void call.run();
      return undefined;
    }
    this.emit('call', call);
    void call.run();
    const result = await call.settled;
    return result.response === 'Success'
      ? { response: { Message: 'Originate successfully queued' } }
      : { response: { Response: 'Error', Message: 'Originate failed' } };
  }

  #hangup(action: AmiMessage) {
    const name = one(action, 'Channel') ?? '';
    if (name === '') return { response: { Response: 'Error', Message: 'No channel specified' } };
    const cause = Number(one(action, 'Cause') ?? '') || 16;
    for (const call of this.calls) {
      if (!call.live) continue;
      if (call.chan1?.alive && call.chan1.Channel === name) {
        call.hangup(1, cause);
        return { response: { Message: 'Channel Hungup' } };
      }
      if (call.chan2?.alive && call.chan2.Channel === name) {
        call.hangup(2, cause);
        return { response: { Message: 'Channel Hungup' } };
      }
    }
    const live = this.channels.byName(name);
    if (live === undefined) return { response: { Response: 'Error', Message: 'No such channel' } };
    // A replayed channel: hang it up alone.
    const {
      createdAtMs: _created,
      BridgeId: _bridge,
      Application: _a,
      ApplicationData: _d,
      ...fields
    } = live;
    this.emitEvent({
      Event: 'SoftHangupRequest',
      Privilege: 'call,all',
      ...fields,
      Cause: String(cause),
    });
    this.emitEvent({
      Event: 'Hangup',
      Privilege: 'call,all',
      ...fields,
      Cause: String(cause),
      'Cause-txt': cause === 16 ? 'Normal Clearing' : 'Unknown',
    });
    return { response: { Message: 'Channel Hungup' } };
  }

  /** `CoreShowChannels` exactly as dtmf_local.raw.txt shows (`Message` after `EventList`). */
  #coreShowChannels(action: AmiMessage, connection: AmiServerConnection): undefined {
    const id = one(action, 'ActionID');
    const withId = (event: AmiEvent): AmiEvent => {
      const { Event, ...rest } = event;
      return id === undefined ? event : ({ Event, ActionID: id, ...rest } as AmiEvent);
    };
    const items = this.channels.coreShowChannels();
    let text = serializeMessage(
      id === undefined
        ? { Response: 'Success', EventList: 'start', Message: 'Channels will follow' }
        : {
            Response: 'Success',
            ActionID: id,
            EventList: 'start',
            Message: 'Channels will follow',
          },
    );
    for (const item of items) text += serializeMessage(withId(item));
    text += serializeMessage(
      withId({
        Event: 'CoreShowChannelsComplete',
        EventList: 'Complete',
        ListItems: String(items.length),
      }),
    );
    connection.sendRaw(text);
    return undefined;
  }

  #startReplay(): void {
    if (this.#replayStarted || this.#closed || !this.#options.replay) return;
    this.#replayStarted = true;
    this.#replayDone = this.#runReplay(this.#options.replay).catch((error: unknown) => {
      this.replay.done = true;
      process.emitWarning(
        `simulator replay stopped: ${error instanceof Error ? error.message : String(error)}`,
      );
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#replayWake = resolve;
      this.#replayTimer = setTimeout(resolve, ms);
    });
  }

  async #runReplay(options: SimReplayOptions): Promise<void> {
    const events = await loadReplayEvents(options.recording);
    const offsets = replayOffsets(events, options.pace);
    const maxLoops = options.loop ? (options.maxLoops ?? Number.POSITIVE_INFINITY) : 1;
    for (let pass = 0; pass < maxLoops && !this.#closed; pass++) {
      const start = performance.now();
      let i = 0;
      while (i < events.length && !this.#closed) {
        const now = performance.now() - start;
        const due = offsets[i] as number;
        if (due > now) {
          await this.#sleep(due - now);
          continue;
        }
        let text = '';
        let count = 0;
        while (i < events.length && (offsets[i] as number) <= now && count < 1000) {
          const event = eventForLoop(events[i] as AmiEvent, pass);
          this.channels.apply(event);
          text += serializeMessage(event);
          this.emit('event', event);
          i++;
          count++;
        }
        this.server.broadcastRaw(text);
        this.replay.eventsSent += count;
        await this.server.drain();
        if (count >= 1000) await new Promise((resolve) => setImmediate(resolve));
      }
      if (this.#closed) break;
      this.replay.passes = pass + 1;
      this.emit('loop', pass);
      if (pass + 1 < maxLoops) await this.#sleep(options.loopGapMs ?? 1000);
    }
    this.replay.done = true;
  }
}

/**
 * Starts a simulator listening on TCP and resolves once it accepts connections.
 *
 * ```ts
 * const sim = await startSimulator({ scripts: { '201': { answerAfterMs: 20, dtmf: '1', dtmfAfterMs: 10 } } });
 * const client = new AmiClient(parseAmiUrl(sim.url()));
 * // ... Originate PJSIP/201@trunk; sim.originates()[0].variables ...
 * await sim.close();
 * ```
 *
 * @throws {Error} the address cannot be listened on (e.g. `EADDRINUSE`).
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const simulator = new Simulator(options);
  await simulator.listen();
  return simulator;
}
