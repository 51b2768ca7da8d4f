/**
 * The live runner: call events from one or more Asterisk servers (cacofonisk's `AmiRunner`),
 * one engine per server. Beyond cacofonisk, every (re)connect resynchronises the engine
 * with what Asterisk reports (`CoreShowChannels`), so calls in progress survive a reconnect
 * and calls already up when Switchboard attaches are followed from then on.
 */
import { AmiClient, type AmiClientOptions, DEFAULT_MAX_EVENT_LIST_EVENTS } from '../ami/client.ts';
import type { AmiMessageSkippedError } from '../ami/errors.ts';
import type { AmiEvent } from '../ami/message.ts';
import {
  CallEngine,
  DEFAULT_MAX_BRIDGES,
  DEFAULT_MAX_CHANNELS,
  type EngineLimitKind,
} from './engine.ts';
import { type RateLimitedNotice, rateLimitedNotice } from './ratelimit.ts';
import {
  amiEventHandler,
  dispatchCallEvent,
  type EventContext,
  type Reporter,
  type ReporterErrorHandler,
} from './reporter.ts';

/** Options of {@link AmiRunner}. */
export interface AmiRunnerOptions {
  /** Human-readable lifecycle messages (connected, lost, resynchronised, ...). */
  onStatus?: (message: string) => void;
  /** Called when a reporter method throws or rejects. Default: `onStatus` with the message. */
  onReporterError?: ReporterErrorHandler;
  /** Timeout of the `CoreShowChannels` action after a (re)connect, in ms. Default 10000. */
  resyncTimeoutMs?: number;
  /**
   * What a hostile or broken PBX causes: skipped messages, channels and bridges forgotten
   * because of `maxChannels` / `maxBridges`. Rate-limited (see `warningIntervalMs`).
   * Default: `onStatus`.
   */
  onWarning?: (message: string) => void;
  /** Shortest interval between two warnings of one kind and server, in ms. Default 10000. */
  warningIntervalMs?: number;
  /** Live channels kept per server (see `CallEngineOptions.maxChannels`). Default 50,000. */
  maxChannels?: number;
  /** Live bridges kept per server (see `CallEngineOptions.maxBridges`). Default 25,000. */
  maxBridges?: number;
  /** Called for every channel or bridge an engine forgot because of a bound (for metrics). */
  onLimit?: (server: string, kind: EngineLimitKind) => void;
  /** Called for every message a client skipped (for metrics). */
  onSkipped?: (server: string, error: AmiMessageSkippedError) => void;
}

/**
 * Runs the call engine on live AMI connections and reports to a {@link Reporter}.
 *
 * ```ts
 * const runner = new AmiRunner([parseAmiUrl('tcp://user:secret@pbx:5038')], reporter);
 * await runner.start();   // rejects on a refused login or an unreachable server
 * // ... later
 * await runner.stop();    // logs off and calls reporter.close()
 * ```
 */
export class AmiRunner {
  /** One client per server, in the order given. */
  readonly clients: readonly AmiClient[];
  /** One engine per server, by server name. */
  readonly engines = new Map<string, CallEngine>();
  readonly #reporter: Reporter;
  readonly #status: (message: string) => void;
  readonly #resyncTimeoutMs: number;
  readonly #options: AmiRunnerOptions;
  readonly #notices: RateLimitedNotice[] = [];
  #stopped = false;

  /**
   * @param servers clients (already built) or options for new ones (e.g. from `parseAmiUrl`).
   * @param reporter receives the call events (and raw AMI events, if it has `onAmiEvent`).
   */
  constructor(
    servers: readonly (AmiClient | AmiClientOptions)[],
    reporter: Reporter,
    options: AmiRunnerOptions = {},
  ) {
    this.#reporter = reporter;
    this.#options = options;
    this.#status = options.onStatus ?? (() => {});
    this.#resyncTimeoutMs = options.resyncTimeoutMs ?? 10_000;
    const onError: ReporterErrorHandler =
      options.onReporterError ??
      ((error) =>
        this.#status(`reporter failed: ${error instanceof Error ? error.message : String(error)}`));
    // The resync's event list must be able to hold every channel the engine may keep.
    const listEvents = Math.max(DEFAULT_MAX_EVENT_LIST_EVENTS, (options.maxChannels ?? 0) + 1);
    this.clients = servers.map((server) =>
      server instanceof AmiClient
        ? server
        : new AmiClient({ maxEventListEvents: listEvents, ...server }),
    );
    for (const client of this.clients) this.#attach(client, onError);
  }

  /** A rate-limited warning about `server`, stopped with the runner. */
  #notice(format: (count: number) => string): RateLimitedNotice {
    const warn = this.#options.onWarning ?? this.#status;
    const notice = rateLimitedNotice(this.#options.warningIntervalMs ?? 10_000, (count) => {
      if (!this.#stopped) warn(format(count));
    });
    this.#notices.push(notice);
    return notice;
  }

  #attach(client: AmiClient, onError: ReporterErrorHandler): void {
    const context: EventContext = { server: client.name };
    const server = client.name;
    const maxChannels = this.#options.maxChannels ?? DEFAULT_MAX_CHANNELS;
    const maxBridges = this.#options.maxBridges ?? DEFAULT_MAX_BRIDGES;
    const forgotten: Record<EngineLimitKind, RateLimitedNotice> = {
      channel: this.#notice(
        (count) =>
          `${server}: ${count} channel(s) forgotten: more than ${maxChannels} live channels (ami.maxChannels); the oldest are dropped and report no call events`,
      ),
      bridge: this.#notice(
        (count) =>
          `${server}: ${count} bridge(s) forgotten: more than ${maxBridges} live bridges (ami.maxBridges); the oldest are dropped`,
      ),
    };
    let lastSkip: AmiMessageSkippedError | undefined;
    const skipped = this.#notice(
      (count) => `${server}: ${count} AMI message(s) skipped; last: ${lastSkip?.message ?? ''}`,
    );
    const engine = new CallEngine({
      resetOnFullyBooted: false,
      onCallEvent: (event) => dispatchCallEvent(this.#reporter, event, context, onError),
      maxChannels,
      maxBridges,
      onLimit: (kind) => {
        forgotten[kind].hit();
        this.#options.onLimit?.(server, kind);
      },
    });
    client.on('skipped', (error) => {
      lastSkip = error;
      skipped.hit();
      this.#options.onSkipped?.(server, error);
    });
    this.engines.set(client.name, engine);
    const onAmiEvent = amiEventHandler(this.#reporter, context, onError);
    client.on('event', (event: AmiEvent) => {
      onAmiEvent?.(event);
      engine.handle(event);
    });
    client.on('connect', () => {
      this.#status(`${client.name}: connected`);
      void this.#resync(client, engine);
    });
    client.on('disconnect', (server, error) => {
      if (!this.#stopped)
        this.#status(
          `${server}: connection lost${error ? ` (${error.message})` : ''}; reconnecting`,
        );
    });
    client.on('error', (error, server) => {
      if (!this.#stopped) this.#status(`${server}: ${error.message}`);
    });
  }

  /** Asks Asterisk which channels exist and reconciles the engine with the answer. */
  async #resync(client: AmiClient, engine: CallEngine): Promise<void> {
    engine.beginResync();
    try {
      const result = await client.action(
        { Action: 'CoreShowChannels' },
        { timeoutMs: this.#resyncTimeoutMs },
      );
      const channels = result.events.filter((event) => event.Event === 'CoreShowChannel');
      engine.resync(channels);
      this.#status(`${client.name}: ${channels.length} channels in progress`);
    } catch (error) {
      // Without the list, fall back to cacofonisk's behaviour: start from scratch.
      engine.resync([]);
      engine.reset();
      this.#status(
        `${client.name}: could not list channels (${error instanceof Error ? error.message : String(error)}); calls in progress are not followed`,
      );
    }
  }

  /**
   * Connects to every server. Resolves when all are logged in.
   *
   * @throws {AmiAuthError} a login was refused (that client does not retry).
   * @throws {Error} a server was unreachable at the first attempt (unless its options set
   *   `retryInitialConnect`).
   */
  async start(): Promise<void> {
    try {
      await Promise.all(this.clients.map((client) => client.connect()));
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** Logs off every server, then calls the reporter's `close()`. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    for (const notice of this.#notices) notice.flush();
    this.#stopped = true;
    await Promise.allSettled(this.clients.map((client) => client.close()));
    await this.#reporter.close?.();
  }
}
