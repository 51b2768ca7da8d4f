/**
 * The live runner: call events from one or more Asterisk servers (cacofonisk's `AmiRunner`),
 * one engine per server. Beyond cacofonisk, every (re)connect resynchronises the engine
 * with what Asterisk reports (`CoreShowChannels`), so calls in progress survive a reconnect
 * and calls already up when Switchboard attaches are followed from then on.
 */
import { AmiClient, type AmiClientOptions } from '../ami/client.ts';
import type { AmiEvent } from '../ami/message.ts';
import { CallEngine } from './engine.ts';
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
    this.#status = options.onStatus ?? (() => {});
    this.#resyncTimeoutMs = options.resyncTimeoutMs ?? 10_000;
    const onError: ReporterErrorHandler =
      options.onReporterError ??
      ((error) =>
        this.#status(`reporter failed: ${error instanceof Error ? error.message : String(error)}`));
    this.clients = servers.map((server) =>
      server instanceof AmiClient ? server : new AmiClient(server),
    );
    for (const client of this.clients) this.#attach(client, onError);
  }

  #attach(client: AmiClient, onError: ReporterErrorHandler): void {
    const context: EventContext = { server: client.name };
    const engine = new CallEngine({
      resetOnFullyBooted: false,
      onCallEvent: (event) => dispatchCallEvent(this.#reporter, event, context, onError),
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
    this.#stopped = true;
    await Promise.allSettled(this.clients.map((client) => client.close()));
    await this.#reporter.close?.();
  }
}
