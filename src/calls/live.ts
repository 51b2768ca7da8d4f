/**
 * The live runner: call events from one or more Asterisk servers (cacofonisk's `AmiRunner`),
 * one engine per server. Beyond cacofonisk, every (re)connect resynchronises the engine
 * with what Asterisk reports (`CoreShowChannels`), so calls in progress survive a reconnect
 * and calls already up when Switchboard attaches are followed from then on; and checks what
 * the manager user may read and run against what the enabled features need, saying so in the
 * log (docs/ami.md).
 */
import { AmiClient, type AmiClientOptions, DEFAULT_MAX_EVENT_LIST_EVENTS } from '../ami/client.ts';
import type { AmiMessageSkippedError } from '../ami/errors.ts';
import type { AmiEvent } from '../ami/message.ts';
import {
  AMI_REQUIREMENTS,
  type AmiFeature,
  type AmiPermissionProblem,
  type AmiPermissions,
  amiPermissions,
  describeMissing,
  describeNeed,
  isPermissionDenied,
  mayRun,
  PROBE_USER_EVENT,
  permissionProblems,
  ReadEvidence,
} from '../ami/permissions.ts';
import {
  CallEngine,
  DEFAULT_MAX_BRIDGES,
  DEFAULT_MAX_CHANNELS,
  ENGINE_EVENTS,
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
  /**
   * Lazy parsing for the clients the runner builds (not for clients passed in): events the
   * engine does not use (`VarSet`, `Newexten`, ...) are skipped unparsed, except the first
   * one of each name per connection (its `Privilege` is the read-permission evidence; an
   * event name's class never changes). Default: true when the reporter has no
   * `onAmiEvent` (which wants every event).
   */
  lazyEvents?: boolean;
  /**
   * Features whose needs are checked against the manager user's permissions at every
   * (re)connect (`amiPermissions`): one warning per missing class, naming what it breaks.
   * Default `['calls']`.
   */
  features?: readonly AmiFeature[];
  /** Longest wait for the read-`user` probe (`UserEvent`) to come back, in ms. Default 3000. */
  permissionProbeTimeoutMs?: number;
  /**
   * Called after each (re)connect's permission check, and again when a later event proves a
   * read class, with what was found and the requirements of `features` not (yet) met.
   */
  onPermissions?: (
    server: string,
    permissions: AmiPermissions,
    problems: readonly AmiPermissionProblem[],
  ) => void;
}

/** What the runner keeps per server beyond its engine. */
interface ServerState {
  /** Read classes the events of the current connection proved. */
  readonly evidence: ReadEvidence;
  /** The last permission check, updated by later evidence. */
  permissions: AmiPermissions | undefined;
  /** Missing permissions logged, by need (`read class user`), with their line. */
  readonly logged: Map<string, string>;
  /** Counts the connections: results of an older one are dropped. */
  session: number;
  /**
   * When Asterisk started, by the `FullyBooted` (`Uptime`) of the current connection and of
   * the last one that had it (`Date.now()` ms): a later start means it restarted meanwhile.
   */
  bootedAtMs: number | undefined;
  previousBootedAtMs: number | undefined;
}

/** Two estimates of one start differ by less (`Uptime` is in whole seconds). */
const RESTART_TOLERANCE_MS = 2000;

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
  readonly #states = new Map<string, ServerState>();
  readonly #features: readonly AmiFeature[];
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
    this.#features = options.features ?? ['calls'];
    const onError: ReporterErrorHandler =
      options.onReporterError ??
      ((error) =>
        this.#status(`reporter failed: ${error instanceof Error ? error.message : String(error)}`));
    // The resync's event list must be able to hold every channel the engine may keep.
    const listEvents = Math.max(DEFAULT_MAX_EVENT_LIST_EVENTS, (options.maxChannels ?? 0) + 1);
    const lazy = options.lazyEvents ?? reporter.onAmiEvent === undefined;
    const learned = servers.map(() => (lazy ? new Set<string>() : undefined));
    this.clients = servers.map((server, i) => {
      if (server instanceof AmiClient) {
        learned[i] = undefined;
        return server;
      }
      const seen = learned[i];
      return new AmiClient({
        maxEventListEvents: listEvents,
        ...server,
        ...(seen === undefined
          ? {}
          : { wantEvent: (name: string) => ENGINE_EVENTS.has(name) || !seen.has(name) }),
      });
    });
    this.clients.forEach((client, i) => {
      this.#attach(client, onError, learned[i]);
    });
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

  /** `learned`: names of the events seen (without ActionID) on this connection (lazy parsing). */
  #attach(client: AmiClient, onError: ReporterErrorHandler, learned?: Set<string>): void {
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
    const state: ServerState = {
      evidence: new ReadEvidence(),
      permissions: undefined,
      logged: new Map(),
      session: 0,
      bootedAtMs: undefined,
      previousBootedAtMs: undefined,
    };
    this.#states.set(server, state);
    const onAmiEvent = amiEventHandler(this.#reporter, context, onError);
    client.on('event', (event: AmiEvent) => {
      const proved = state.evidence.observe(event);
      if (learned !== undefined && event.ActionID === undefined && learned.size < 1024) {
        learned.add(event.Event);
      }
      if (proved !== undefined) this.#proved(server, state);
      // The permission check's own probe: not a PBX event worth reporting or publishing.
      if (event.Event === 'UserEvent' && event.UserEvent === PROBE_USER_EVENT) return;
      if (event.Event === 'FullyBooted') {
        const uptimeS = Number(event.Uptime);
        if (Number.isFinite(uptimeS) && uptimeS >= 0)
          state.bootedAtMs = Date.now() - uptimeS * 1000;
      }
      onAmiEvent?.(event);
      engine.handle(event);
    });
    client.on('connect', () => {
      const session = ++state.session;
      this.#status(`${client.name}: connected`);
      void this.#resync(client, engine, state, session);
      void this.#checkPermissions(client, state, session);
    });
    client.on('disconnect', (server, error) => {
      // Read classes are fixed per login: the next one may have others.
      state.evidence.reset();
      learned?.clear();
      state.previousBootedAtMs = state.bootedAtMs ?? state.previousBootedAtMs;
      state.bootedAtMs = undefined;
      if (!this.#stopped)
        this.#status(
          `${server}: connection lost${error ? ` (${error.message})` : ''}; reconnecting`,
        );
    });
    client.on('error', (error, server) => {
      if (!this.#stopped) this.#status(`${server}: ${error.message}`);
    });
  }

  /**
   * What the manager user of `server` may read and run, as last checked (at the last
   * (re)connect, updated since by events that proved a read class); `undefined` before the
   * first check completed.
   */
  permissions(server: string): AmiPermissions | undefined {
    return this.#states.get(server)?.permissions;
  }

  /**
   * Asks Asterisk which channels exist and reconciles the engine with the answer. Without an
   * answer, every channel is kept and followed by its live events; nothing is reported.
   */
  async #resync(
    client: AmiClient,
    engine: CallEngine,
    state: ServerState,
    session: number,
  ): Promise<void> {
    engine.beginResync();
    try {
      const result = await client.action(
        { Action: 'CoreShowChannels' },
        { timeoutMs: this.#resyncTimeoutMs },
      );
      if (session !== state.session) return;
      const channels = result.events.filter((event) => event.Event === 'CoreShowChannel');
      engine.resync(channels);
      this.#status(`${client.name}: ${channels.length} channels in progress`);
    } catch (error) {
      if (session !== state.session) return;
      const booted = state.bootedAtMs;
      const before = state.previousBootedAtMs;
      if (booted !== undefined && before !== undefined && booted - before > RESTART_TOLERANCE_MS) {
        // No list, but FullyBooted says Asterisk restarted meanwhile: the calls it had are
        // over, for sure. Those that began since the login were touched and stay.
        engine.resync([]);
        this.#status(
          `${client.name}: Asterisk restarted while the connection was down (FullyBooted Uptime ${Math.round((Date.now() - booted) / 1000)} s): the calls it had before are reported ended`,
        );
      } else {
        engine.abortResync();
      }
      if (this.#stopped) return;
      if (isPermissionDenied(error)) {
        const requirement = AMI_REQUIREMENTS.find(
          (r) => r.feature === 'calls' && r.action === 'CoreShowChannels',
        ) as (typeof AMI_REQUIREMENTS)[number];
        this.#warnMissing(client.name, state, [{ ...requirement, state: 'missing' }]);
        return;
      }
      this.#status(
        `${client.name}: could not list channels (${error instanceof Error ? error.message : String(error)}); calls in progress are kept as they were and followed by their live events, none is reported hung up`,
      );
    }
  }

  /** Checks the manager user's permissions after a (re)connect; logs what is missing. */
  async #checkPermissions(client: AmiClient, state: ServerState, session: number): Promise<void> {
    const permissions = await amiPermissions(client, {
      evidence: state.evidence,
      probeTimeoutMs: this.#options.permissionProbeTimeoutMs ?? 3000,
    });
    // A probe cut short by a disconnect proves nothing.
    if (this.#stopped || session !== state.session || !client.connected) return;
    state.permissions = permissions;
    const problems = permissionProblems(permissions, this.#features);
    this.#warnMissing(client.name, state, problems, true);
    this.#status(summary(client.name, permissions, problems, this.#features));
    this.#options.onPermissions?.(client.name, permissions, problems);
  }

  /** An event proved a read class: update the last check, say what is resolved. */
  #proved(server: string, state: ServerState): void {
    const permissions = state.permissions;
    if (permissions === undefined) return;
    let changed = false;
    for (const name of state.evidence.classes) {
      if (permissions.read[name] === 'granted') continue;
      permissions.read[name] = 'granted';
      if (name === 'user' && permissions.userReadBy === 'none') permissions.userReadBy = 'events';
      changed = true;
    }
    if (!changed) return;
    const problems = permissionProblems(permissions, this.#features);
    this.#warnMissing(server, state, problems, true);
    this.#options.onPermissions?.(server, permissions, problems);
  }

  /**
   * One warning per missing permission, once: logged again only after it was resolved (a
   * later check or event proved it) and went missing again. With `complete`, `problems` are
   * every problem there is: a need logged before and absent now is reported resolved.
   */
  #warnMissing(
    server: string,
    state: ServerState,
    problems: readonly AmiPermissionProblem[],
    complete = false,
  ): void {
    const warn = this.#options.onWarning ?? this.#status;
    const missing = problems.filter((problem) => problem.state === 'missing');
    const lines = new Map<string, string>();
    for (const problem of missing) {
      const need = describeNeed(problem);
      if (!lines.has(need)) {
        const same = missing.filter((p) => describeNeed(p) === need);
        lines.set(need, describeMissing(server, same)[0] as string);
      }
    }
    for (const [need, line] of lines) {
      if (state.logged.has(need)) continue;
      state.logged.set(need, line);
      if (!this.#stopped) warn(line);
    }
    if (!complete) return;
    const open = new Set(problems.map((problem) => describeNeed(problem)));
    for (const need of [...state.logged.keys()]) {
      if (open.has(need)) continue;
      state.logged.delete(need);
      if (!this.#stopped) this.#status(`${server}: the AMI user now has ${need}`);
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

/**
 * One status line: what the manager user may run and read, as far as the features care.
 * E.g. `pbx1: AMI user checked: may run CoreShowChannels, Originate; reads call, user;
 * not confirmed: read agent (Asterisk does not say; the first event of the class proves it)`.
 */
function summary(
  server: string,
  permissions: AmiPermissions,
  problems: readonly AmiPermissionProblem[],
  features: readonly AmiFeature[],
): string {
  const relevant = AMI_REQUIREMENTS.filter((r) => features.includes(r.feature));
  const actions = [...new Set(relevant.flatMap((r) => (r.action === undefined ? [] : [r.action])))];
  const runs = actions.filter((name) => mayRun(permissions, name) === 'granted');
  const reads = [...new Set(relevant.filter((r) => r.access === 'read').flatMap((r) => r.classes))];
  const granted = reads.filter((name) => permissions.read[name] === 'granted');
  const parts = [
    permissions.actions === undefined
      ? 'actions unknown (ListCommands failed)'
      : `may run ${runs.length > 0 ? runs.join(', ') : `none of ${actions.join(', ')}`}`,
    `reads ${granted.length > 0 ? granted.join(', ') : 'nothing proven yet'}`,
  ];
  const unknown = [
    ...new Set(problems.filter((p) => p.state === 'unknown').map((p) => describeNeed(p))),
  ];
  if (unknown.length > 0) {
    parts.push(
      `not confirmed: ${unknown.join(', ')} (Asterisk does not tell; the first event of the class proves it)`,
    );
  }
  return `${server}: AMI user checked: ${parts.join('; ')}`;
}
