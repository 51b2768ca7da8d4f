/**
 * (A little over 500 lines: the service's public API, every method documented; its logic is
 * in the parts listed below.)
 *
 * The escalation service of the alert calls (Barista, issue 4, section 2), durable. It wires
 * the parts of the module, each in its own file:
 *
 * - rule.ts: the pure rule ({@link choose}): who to call now.
 * - decision.ts: a chunk of claimed events decided in ONE transaction fenced by their leases,
 *   set-based; acted on (published, dialled) only after the commit.
 * - results.ts: keys and outcomes written as they arrive, in groups (group commit), kept in
 *   memory while the database is unreachable.
 * - notifier.ts: the `callout.*` bus messages.
 * - repository.ts: every query.
 *
 * - An event and its people are inserted (committed) before the API answers.
 * - The worker loop is the shared `store/worker.ts` (poll every `pollIntervalMs`, plus a
 *   wake-up hint after each write, never lost): it reaps expired attempts, claims due events
 *   with {@link claimDue} (leases; `FOR UPDATE SKIP LOCKED` on PostgreSQL) and decides them.
 *   While results wait for an unreachable database, the worker neither reaps nor decides, so
 *   no lease runs out on a result that is only waiting to be written.
 * - An attempt still `dialing` when its lease (`attemptLeaseMs` after placing) expires, e.g.
 *   because its process died, becomes `unknown` (one transaction with its person and event):
 *   it counts as "no answer" for that attempt and is never redialled blindly (it may have
 *   been answered). A late outcome with a key still upgrades it (no answer is lost).
 *
 * Rules: see rule.ts and docs/callout.md (timelines).
 */
import { hostname } from 'node:os';
import { type DatabaseUnavailableError, isUnavailableError, newId } from '../store/db.ts';
import { claimDue, Worker } from '../store/worker.ts';
import { type Decision, type DecisionContext, decideChunk } from './decision.ts';
import { CalloutNotifier } from './notifier.ts';
import type {
  AttemptOutcome,
  AttemptSink,
  CalloutProvider,
  StoredAttemptSink,
} from './providers/types.ts';
import { statusOfDigit } from './providers/types.ts';
import {
  type AttemptRow,
  attemptById,
  attemptByProviderCallId,
  type EventHistory,
  type EventRow,
  failUnprepared,
  liveAttemptIdByProviderCallId,
  loadEvent,
  type PersonRow,
  reapExpiredAttempts,
} from './repository.ts';
import { type GroupChanges, type GroupWrite, ResultWriter } from './results.ts';
import { EVENT_STATUS } from './rule.ts';

import type { CalloutServiceOptions, CallRequest } from './types.ts';

export type { CalloutPublish } from './notifier.ts';
export { RESULT_RETRY_MAX_MS } from './results.ts';
export { type Choice, type ChooseOptions, choose, EVENT_STATUS, PERSON_STATUS } from './rule.ts';
export type { Addressee, CalloutServiceOptions, CallRequest, PlacedCall } from './types.ts';

/** The escalation service (one per process; several processes may share PostgreSQL). */
export class CalloutService {
  readonly #o: CalloutServiceOptions;
  readonly owner: string;
  readonly #worker: Worker;
  readonly #results: ResultWriter;
  readonly #notify: CalloutNotifier;
  readonly #decision: DecisionContext;
  #notReadyLoggedAt = 0;
  #workerOutageLogged = false;
  readonly #inflight = new Set<Promise<void>>();
  readonly #sink: AttemptSink;
  #listening = false;

  constructor(options: CalloutServiceOptions) {
    this.#o = options;
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${newId().slice(-8)}`;
    this.#sink = {
      placed: (id, providerCallId) => this.#placed(id, providerCallId),
      digit: (id, digit) => this.recordDigit(id, digit),
      finished: (id, outcome, digit) => this.recordOutcome(id, outcome, digit),
      unprepared: (id, reason) => this.recordUnprepared(id, reason),
    };
    this.#notify = new CalloutNotifier(options.publish, options.logger);
    this.#results = new ResultWriter({
      database: options.database,
      ...(options.pendingResultsMax === undefined
        ? {}
        : { pendingResultsMax: options.pendingResultsMax }),
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.metrics ? { metrics: options.metrics } : {}),
      onCommitted: (changes) => this.#committed(changes),
      onReachable: () => this.wake(),
    });
    this.#decision = {
      database: options.database,
      owner: this.owner,
      providers: options.providers,
      timeScale: options.timeScale,
      pollIntervalMs: options.pollIntervalMs,
      attemptLeaseMs: options.attemptLeaseMs,
      decisionLeaseMs: options.decisionLeaseMs ?? 30_000,
      ...(options.logger ? { logger: options.logger } : {}),
    };
    this.#worker = new Worker({
      name: 'callout',
      intervalMs: options.pollIntervalMs,
      round: async () => {
        await this.tick();
        this.#workerOutageLogged = false;
        return undefined;
      },
      onError: (error) => this.#roundFailed(error),
    });
  }

  /** A worker round failed: logged once per outage when the database is unreachable. */
  #roundFailed(error: unknown): void {
    if (isUnavailableError(error)) {
      // once per outage, not once per poll
      if (!this.#workerOutageLogged) {
        this.#workerOutageLogged = true;
        this.#o.logger?.warn(
          { reason: (error as DatabaseUnavailableError).reason },
          'callout: database unreachable, escalations wait for it',
        );
      }
    } else this.#o.logger?.error({ err: error }, 'callout: worker round failed');
  }

  /**
   * Stores a new event (status 0, due now) with its people, publishes
   * `callout.event.created` and wakes the worker.
   * @returns the event id.
   * @throws the database error (the API answers error 2).
   */
  async createEvent(request: CallRequest): Promise<string> {
    const now = Date.now();
    const id = newId(now);
    const provider = request.testflg === 1 ? 'dryrun' : this.#o.defaultProvider;
    const event: EventRow = {
      id,
      status: EVENT_STATUS.waiting,
      testflg: request.testflg,
      provider,
      hostname: request.hostname,
      operator: request.operator,
      calltype: request.calltype,
      frequency: request.frequency,
      language: request.language,
      message: request.message,
      headid: request.headid,
      footid: request.footid,
      headmsg: request.headmsg,
      footmsg: request.footmsg,
      last_order: 0,
      created_at: now,
      started_at: null,
      finished_at: null,
      due_at: now,
      lease_until: null,
      lease_owner: null,
    };
    const people: PersonRow[] = request.addressees.map((a) => ({
      id: newId(now),
      event_id: id,
      numorder: a.order,
      ghid: a.userid,
      name: a.name,
      telno: a.telno,
      sleep_s: a.intervalS,
      calls: 0,
      latest_at: null,
      status: null,
    }));
    // With the next group: one commit for many requests, and requests are accepted no faster
    // than results are written (on PostgreSQL, separate transactions took 65 % more requests
    // per second and placed calls 2.6 s late instead of < 1 s in the 1,000-escalation bench).
    await this.#write({ kind: 'insert', event, people });
    this.#o.metrics?.escalations.inc({
      type: request.calltype === 1 ? 'sequential' : 'parallel',
      testflg: String(request.testflg),
    });
    this.#notify.eventCreated(event, request.addressees.length);
    this.wake();
    return id;
  }

  /** The event with people and attempts, or undefined. */
  history(eventId: string): Promise<EventHistory | undefined> {
    return loadEvent(this.#o.database, eventId);
  }

  /**
   * Starts the worker loop (idempotent), and, the first time, every provider's reports of
   * calls this process does not follow ({@link CalloutProvider.listen}).
   */
  start(): void {
    if (this.#worker.running) return;
    if (!this.#listening) {
      this.#listening = true;
      for (const provider of Object.values(this.#o.providers)) {
        provider.listen?.(this.#storedSink(provider.name));
      }
    }
    this.#worker.start();
  }

  /** The {@link StoredAttemptSink} of one provider: counted, then written as any result. */
  #storedSink(provider: string): StoredAttemptSink {
    const routed = (event: string) => this.#o.metrics?.resultsRouted.inc({ event });
    return {
      digit: (attemptId, digit) => {
        routed('digit');
        return this.recordDigit(attemptId, digit);
      },
      placed: (attemptId, providerCallId) => {
        routed('originate_response');
        return this.#placed(attemptId, providerCallId);
      },
      finished: (attemptId, outcome, source) => {
        routed(source);
        return this.recordOutcome(attemptId, outcome);
      },
      attemptByProviderCallId: async (providerCallId) => {
        return liveAttemptIdByProviderCallId(this.#o.database, provider, providerCallId);
      },
    };
  }

  /** Asks for a worker round as soon as possible (a hint; the poll loop runs anyway). */
  wake(): void {
    this.#worker.wake();
  }

  /**
   * One worker round: expire attempts whose lease ran out, then claim and decide due events.
   * @returns how many events were decided.
   */
  async tick(): Promise<number> {
    // Results kept during an outage are written first: reaping or deciding now would count a
    // waiting key as no answer.
    if (this.#results.inOutage) return 0;
    await this.#reap();
    let decided = 0;
    for (;;) {
      const now = Date.now();
      const claimed = await claimDue<EventRow>(this.#o.database, {
        table: 'callout_event',
        owner: this.owner,
        leaseMs: this.#decision.decisionLeaseMs,
        limit: this.#o.batchSize,
        nowMs: now,
      });
      // Claimed events are independent (each fenced by its own lease). They are decided in
      // chunks, each chunk in ONE transaction (one commit for many events, and many events per
      // turn of the event loop: deciding one event per turn let call results and HTTP
      // requests, served between turns, cap placing at ~2,000 calls/s in the 1,000-escalation
      // benchmark). SQLite: chunks one after the other (one connection), yielding to the event
      // loop between chunks. PostgreSQL: several chunks at once (`concurrency`), smaller.
      const postgres = this.#o.database.dialect === 'postgres';
      const concurrency = postgres ? Math.max(1, this.#o.concurrency ?? 8) : 1;
      const chunkSize = Math.max(1, this.#o.decisionChunkSize ?? (postgres ? 10 : 50));
      const chunks: EventRow[][] = [];
      for (let i = 0; i < claimed.length; i += chunkSize) {
        chunks.push(claimed.slice(i, i + chunkSize));
      }
      let index = 0;
      await Promise.all(
        Array.from({ length: Math.min(concurrency, chunks.length) }, async () => {
          while (index < chunks.length) {
            const chunk = chunks[index++] as EventRow[];
            decided += await decideChunk(this.#decision, chunk, (plan) => this.#act(plan));
            if (concurrency === 1) await new Promise((resolve) => setImmediate(resolve));
          }
        }),
      );
      if (claimed.length < this.#o.batchSize) return decided;
    }
  }

  /**
   * Marks expired `dialing` attempts `unknown` (= no answer), their people 3 and wakes their
   * events, in one transaction; then counts, logs and publishes them.
   */
  async #reap(): Promise<void> {
    const reaped = await reapExpiredAttempts(this.#o.database, Date.now());
    for (const attempt of reaped) {
      this.#o.metrics?.attempts.inc({ outcome: 'unknown', answer: answerLabel(attempt.digit) });
      this.#o.logger?.warn(
        { attempt: attempt.id, event: attempt.event_id },
        'callout: attempt without outcome (process died?) counts as no answer',
      );
      this.#notify.attemptUnknown(attempt);
    }
  }

  /** Acts on a committed plan: publishes and dials (never before the commit). */
  #act(plan: Decision): void {
    const { event, dials, started, finished, failedProvider, notReady } = plan;
    if (started) this.#notify.eventStarted(event);
    for (const { attempt, person } of dials) {
      const placedAt = Date.now();
      this.#o.metrics?.dueToPlaced.observe(Math.max(0, placedAt - attempt.due_at) / 1000);
      try {
        this.#o.onPlaced?.({
          attemptId: attempt.id,
          eventId: event.id,
          dueAt: attempt.due_at,
          placedAt,
        });
      } catch (error) {
        this.#o.logger?.warn({ err: error, attempt: attempt.id }, 'callout: onPlaced failed');
      }
      this.#notify.attemptDialing(attempt, person);
      const provider = this.#o.providers[attempt.provider] as CalloutProvider;
      const call = provider
        .dial(
          {
            attemptId: attempt.id,
            eventId: event.id,
            telno: person.telno,
            language: event.language,
            head: event.headmsg,
            message: event.message,
            foot: event.footmsg,
            ringTimeoutMs: this.#o.ringTimeoutMs,
          },
          this.#sink,
        )
        .catch(async (error: unknown) => {
          this.#o.logger?.error({ err: error, attempt: attempt.id }, 'callout: dial failed');
          await this.recordOutcome(attempt.id, 'failed').catch((written: unknown) =>
            this.#o.logger?.error(
              { err: written, attempt: attempt.id, event: event.id },
              'callout: outcome of a failed dial not written; the attempt counts as unknown after its lease',
            ),
          );
        });
      this.#inflight.add(call);
      void call.finally(() => this.#inflight.delete(call));
    }
    if (failedProvider) {
      this.#o.logger?.error({ event: event.id }, 'callout: provider unavailable');
    }
    if (notReady && Date.now() - this.#notReadyLoggedAt > 30_000) {
      this.#notReadyLoggedAt = Date.now();
      this.#o.logger?.warn(
        { event: event.id, provider: event.provider },
        'callout: provider not ready (no AMI connection?): calls wait',
      );
    }
    if (finished || failedProvider) this.#notify.eventFinished(event, failedProvider);
  }

  /** Groups were committed: counts and publishes what changed, and wakes the worker. */
  #committed(changes: readonly GroupChanges[]): void {
    let woke = false;
    for (const { answered, finished } of changes) {
      for (const attempt of answered) this.#notify.attemptAnswered(attempt);
      for (const attempt of finished) {
        this.#o.metrics?.attempts.inc({
          outcome: attempt.outcome ?? 'unknown',
          answer: answerLabel(attempt.digit),
        });
        this.#notify.attemptFinished(attempt, { log: true });
      }
      woke ||= answered.length + finished.length > 0;
    }
    if (woke) this.wake();
  }

  async #placed(attemptId: string, providerCallId: string): Promise<void> {
    await this.#write({ kind: 'placed', attemptId, providerCallId });
  }

  #write(write: GroupWrite): Promise<void> {
    return this.#results.write(write);
  }

  /** The attempt with this provider call id (Twilio `CallSid`), if any. */
  async attemptByProviderId(providerCallId: string): Promise<AttemptRow | undefined> {
    return attemptByProviderCallId(this.#o.database, providerCallId);
  }

  /** An attempt by id. */
  async attempt(attemptId: string): Promise<AttemptRow | undefined> {
    return attemptById(this.#o.database, attemptId);
  }

  /**
   * Records a valid key at once (before the call ends): the attempt's `digit` and the person's
   * status (1 or 2), unless the person already answered. Keys other than 1 and 2 are ignored.
   * Publishes `callout.attempt.answered` with the digit and wakes the worker. Written with the
   * next group (see {@link CalloutService.recordOutcome}); resolves once committed.
   */
  async recordDigit(attemptId: string, digit: string): Promise<void> {
    if (statusOfDigit(digit) === undefined) return;
    await this.#write({ kind: 'digit', attemptId, digit });
  }

  /**
   * Records an attempt's end (`dialing` or `unknown` → `done`): outcome, key (if any, kept
   * when already recorded), the person's status (1/2 from the key, else 3 if not answered
   * before). Publishes `callout.attempt.finished` and wakes the worker. Idempotent: a second
   * report of a `done` attempt is ignored. Resolves once committed.
   *
   * Keys and outcomes are written in groups (results.ts), one writer at a time: everything
   * reported while a group is written goes into the next one, one transaction and a few
   * set-based statements per group (per key and outcome value) instead of a transaction per
   * result. Locks are taken events (in id order), then attempts, then people, as decisions do.
   *
   * While the database is unreachable, results wait in memory (in order, at most
   * `pendingResultsMax`) and the promise resolves once they are written; a result that the
   * database refuses, or that finds the queue full, is dropped (logged, counted in
   * `switchboard_callout_results_dropped_total`) and the promise resolves too.
   */
  async recordOutcome(attemptId: string, outcome: AttemptOutcome, digit?: string): Promise<void> {
    if (digit !== undefined && statusOfDigit(digit) !== undefined) {
      await this.recordDigit(attemptId, digit);
    }
    await this.#write({ kind: 'outcome', attemptId, outcome });
  }

  /**
   * A call that could not be prepared (its message could not be synthesized: a missing
   * tool, a TTS service down): in one transaction, the attempt ends `failed` and its event
   * with status 99 (the seed's system error) and `reason` (shown in the history), if still
   * waiting or in progress; the person keeps their status (no call was placed: never "no
   * answer"). Logged (one error line with the reason) and published
   * (`callout.attempt.finished`, `callout.event.finished` with `eventstatus` 99). Calls of
   * the event already placed go on; their results are still written. When the database
   * cannot be written, the attempt's outcome `failed` is kept as any result
   * ({@link CalloutService.recordOutcome}).
   */
  async recordUnprepared(attemptId: string, reason: string): Promise<void> {
    let changed: { attempt: AttemptRow | undefined; event: EventRow | undefined };
    try {
      changed = await failUnprepared(this.#o.database, attemptId, reason, Date.now());
    } catch (error) {
      this.#o.logger?.error(
        { err: error, attempt: attemptId, reason },
        'callout: cannot record that a call could not be prepared; recorded as failed',
      );
      await this.recordOutcome(attemptId, 'failed');
      return;
    }
    const { attempt, event } = changed;
    if (attempt !== undefined) {
      this.#o.metrics?.attempts.inc({ outcome: 'failed', answer: 'none' });
      this.#notify.attemptFinished(attempt);
    }
    if (event !== undefined) {
      this.#o.logger?.error(
        { event: event.id, attempt: attemptId, eventstatus: EVENT_STATUS.error, reason },
        'callout: escalation failed: a call could not be prepared (eventstatus 99, system error)',
      );
      this.#notify.eventFailed(event);
    }
  }

  /** Number of calls this process is following. */
  get inflight(): number {
    return this.#inflight.size;
  }

  /**
   * Stops the worker loop (waiting for its round in progress), then waits up to `graceMs`
   * (default 5000) for the calls in progress to end and their results to be written; calls
   * still running after that stay `dialing` and become `unknown` after their lease (another
   * process or the next start reaps them). Results still kept in memory then (database
   * unreachable the whole time) are lost: logged with their number.
   */
  async stop(graceMs = 5_000): Promise<void> {
    await this.#worker.stop();
    const deadline = Date.now() + graceMs;
    if (this.#inflight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.#inflight]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
      if (this.#inflight.size > 0) {
        this.#o.logger?.warn(
          { calls: this.#inflight.size, graceMs },
          'callout: stopped with calls in progress; they count as unknown after their lease unless their outcome arrives',
        );
      }
    }
    await this.#results.drain(deadline);
    this.#results.close();
  }
}

function answerLabel(digit: string | null): string {
  return statusOfDigit(digit) === undefined ? 'none' : (digit as string);
}
