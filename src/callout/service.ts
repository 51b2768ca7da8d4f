/**
 * The escalation state machine of the alert calls (Barista, issue 4, section 2), durable:
 *
 * - An event and its people are inserted (committed) before the API answers.
 * - A worker loop (poll every `pollIntervalMs`, plus a wake-up hint after each write) claims
 *   due events with {@link claimDue} (leases; `FOR UPDATE SKIP LOCKED` on PostgreSQL), decides
 *   who to call now ({@link choose}), and in ONE transaction fenced by the leases inserts the
 *   attempt rows (`dialing`), counts the calls and sets the next due times — for a chunk of
 *   events at a time, set-based. Only after that commit does it dial. A second worker cannot
 *   claim the events meanwhile, and the unique (person, n) index refuses a second insert of
 *   the same attempt: nobody is dialled twice.
 * - Keys and outcomes are written as they arrive (a key before the hang-up), in groups: what
 *   arrives while one group is written goes into the next transaction (group commit). A
 *   result is acted on only once its group is committed.
 * - While the database is unreachable ({@link DatabaseUnavailableError}), results are kept in
 *   memory, in order (at most `pendingResultsMax`), and written once it answers again
 *   (retried with backoff up to {@link RESULT_RETRY_MAX_MS}); meanwhile the worker neither
 *   reaps nor decides, so no lease runs out on a result that is only waiting to be written.
 *   A result the database refuses (a constraint violation) is dropped, logged and counted.
 *   New events (API requests) are not kept: they fail and the API answers 503.
 * - Transactions that touch several events lock them first, in id order (PostgreSQL), then
 *   attempts, then people: decisions and result groups never deadlock each other.
 * - An attempt still `dialing` when its lease (`attemptLeaseMs` after placing) expires, e.g.
 *   because its process died, becomes `unknown`: it counts as "no answer" for that attempt and
 *   is never redialled blindly (it may have been answered). A late outcome with a key still
 *   upgrades it (no answer is lost).
 *
 * Rules (docs/callout.md has timelines): sequential (`calltype` 1) calls one person at a time
 * in `order`, wrapping around, skipping people who answered 2 or used up `frequency` calls,
 * waiting for the next person's minimum interval; finished when someone presses 1 or nobody
 * can be called any more. Parallel (`calltype` 2) calls every person who has not answered
 * (1 or 2) as soon as their minimum interval allows; finished when everyone answered or
 * nobody can be called any more. The interval runs from the previous call's placement.
 */
import { hostname } from 'node:os';
import type { Transaction } from 'kysely';
import type { Logger } from 'pino';
import {
  claimDue,
  type Database,
  DatabaseUnavailableError,
  isUnavailableError,
  newId,
} from '../store/db.ts';
import type { CalloutMetrics } from './metrics.ts';
import type {
  AttemptOutcome,
  AttemptSink,
  CalloutProvider,
  StoredAttemptSink,
} from './providers/types.ts';
import { statusOfDigit } from './providers/types.ts';
import {
  type AttemptRow,
  type CalloutTables,
  calloutDb,
  type EventHistory,
  type EventRow,
  insertEvents,
  loadEvent,
  lockEvents,
  lockEventsOfAttempts,
  type PersonRow,
  setProviderCallIds,
} from './repository.ts';

/** A validated addressee (`order:userid:telno:name:min_seconds_between_calls`). */
export interface Addressee {
  order: number;
  userid: string;
  telno: string;
  name: string;
  /** Minimum interval between two calls of this person, in seconds. */
  intervalS: number;
}

/**
 * A validated request (see `validateCallRequest` in routes.ts): the event's request columns
 * (texts resolved), with `testflg` and `calltype` narrowed, and the addressees.
 */
export interface CallRequest
  extends Pick<
    EventRow,
    | 'hostname'
    | 'operator'
    | 'frequency'
    | 'language'
    | 'message'
    | 'headid'
    | 'footid'
    | 'headmsg'
    | 'footmsg'
  > {
  testflg: 0 | 1;
  calltype: 1 | 2;
  addressees: Addressee[];
}

/** Publishes one bus message (`callout.*` routing key, message name, data). */
export type CalloutPublish = (routingKey: string, name: string, data: unknown) => void;

/** Options of {@link CalloutService}. */
export interface CalloutServiceOptions {
  database: Database;
  /** Providers by name; `dryrun` must be present (testflg=1). */
  providers: Readonly<Record<string, CalloutProvider>>;
  /** Provider of events with testflg=0. */
  defaultProvider: string;
  /** Multiplies the people's intervals (1 in production). */
  timeScale: number;
  /** Poll interval of the worker, in ms. */
  pollIntervalMs: number;
  /** How long an attempt may stay without an outcome before it counts as unknown, in ms. */
  attemptLeaseMs: number;
  /** Ring time, in ms (given to the provider). */
  ringTimeoutMs: number;
  /** Events decided per round. */
  batchSize: number;
  /** Chunks of events decided at the same time on PostgreSQL (SQLite: 1). Default 8. */
  concurrency?: number;
  /** Entries kept in {@link CalloutService.placedLog}. Default 100000. */
  placedLogMax?: number;
  /**
   * Call results (keys, outcomes, provider call ids) kept in memory while they cannot be
   * written (database unreachable); beyond it, new results are dropped and counted.
   * Default 100000.
   */
  pendingResultsMax?: number;
  /** Events decided in one transaction. Default 50 on SQLite, 10 on PostgreSQL. */
  decisionChunkSize?: number;
  /** Lease of an event while a worker decides, in ms. Default 30000. */
  decisionLeaseMs?: number;
  /** This worker's lease owner id. Default host:pid:random. */
  owner?: string;
  publish?: CalloutPublish;
  logger?: Logger;
  /** Prometheus series (`calloutMetrics(registry)`); none = not counted. */
  metrics?: CalloutMetrics;
}

/** What {@link CalloutService} decided for one event, acted on after the commit. */
interface Decision {
  event: EventRow;
  dials: Array<{ attempt: AttemptRow; person: PersonRow }>;
  started: boolean;
  finished: boolean;
  failedProvider: boolean;
  notReady: boolean;
}

/** Longest pause between two tries to write kept results while the database is unreachable, in ms. */
export const RESULT_RETRY_MAX_MS = 2_000;

/** The seed's event status values. */
export const EVENT_STATUS = { waiting: 0, inProgress: 1, finished: 2, error: 99 } as const;

/** The escalation service (one per process; several processes may share PostgreSQL). */
export class CalloutService {
  readonly #o: CalloutServiceOptions;
  readonly owner: string;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = true;
  #dead = false;
  #notReadyLoggedAt = 0;
  readonly #inflight = new Set<Promise<void>>();
  readonly #sink: AttemptSink;
  /** Writes waiting for the next group transaction (see {@link CalloutService.recordOutcome}). */
  readonly #group: GroupEntry[] = [];
  #groupScheduled = false;
  /** Results (not new events) queued or being written: bounded by `pendingResultsMax`. */
  #pendingResults = 0;
  /** Set while the database is unreachable and results wait for it. */
  #outage:
    | { sinceMs: number; reason: string; delayMs: number; timer: NodeJS.Timeout | undefined }
    | undefined;
  /** Results dropped because the queue was full, during the current outage (logged at its end). */
  #droppedFull = 0;
  #workerOutageLogged = false;
  /** Set at the end of {@link CalloutService.stop}: no more retries of kept results. */
  #writerClosed = false;
  #listening = false;
  /**
   * Due and placed times (epoch ms) of the calls this process placed, oldest first, for
   * benchmarks and tests; at most `placedLogMax` entries (the oldest half goes when full).
   */
  readonly placedLog: Array<{ dueAt: number; placedAt: number }> = [];

  constructor(options: CalloutServiceOptions) {
    this.#o = options;
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${newId().slice(-8)}`;
    this.#sink = {
      placed: (id, providerCallId) => this.#placed(id, providerCallId),
      digit: (id, digit) => this.recordDigit(id, digit),
      finished: (id, outcome, digit) => this.recordOutcome(id, outcome, digit),
      unprepared: (id, reason) => this.recordUnprepared(id, reason),
    };
  }

  get #db() {
    return calloutDb(this.#o.database);
  }

  #publish(routingKey: string, name: string, data: unknown): void {
    if (this.#dead) return;
    try {
      this.#o.publish?.(routingKey, name, data);
    } catch (error) {
      this.#o.logger?.warn({ err: error }, 'callout: publish failed');
    }
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
    await this.#enqueue({ kind: 'insert', event, people });
    this.#o.metrics?.escalations.inc({
      type: request.calltype === 1 ? 'sequential' : 'parallel',
      testflg: String(request.testflg),
    });
    this.#o.logger?.info(
      {
        event: id,
        calltype: request.calltype,
        testflg: request.testflg,
        provider,
        people: request.addressees.length,
      },
      'callout: escalation created',
    );
    this.#publish('callout.event.created', 'callout_event_created', {
      eventid: id,
      type: request.calltype,
      testflg: request.testflg,
      provider,
      people: request.addressees.length,
    });
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
    if (!this.#stopped || this.#dead) return;
    this.#stopped = false;
    if (!this.#listening) {
      this.#listening = true;
      for (const provider of Object.values(this.#o.providers)) {
        provider.listen?.(this.#storedSink(provider.name));
      }
    }
    this.wake();
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
        if (this.#dead) return undefined;
        const row = await this.#db
          .selectFrom('callout_attempt')
          .select('id')
          .where('provider_call_id', '=', providerCallId)
          .where('provider', '=', provider)
          .where('state', '!=', 'done')
          .executeTakeFirst();
        return row?.id;
      },
    };
  }

  /** Asks for a worker round as soon as possible (a hint; the poll loop runs anyway). */
  wake(): void {
    if (this.#stopped || this.#dead) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#loop(), 0);
  }

  #loop(): void {
    this.#timer = undefined;
    if (this.#stopped || this.#dead) return;
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          await this.tick();
          this.#workerOutageLogged = false;
        } catch (error) {
          if (this.#dead) {
            // killed: nothing to report
          } else if (isUnavailableError(error)) {
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
      } while (this.#again && !this.#stopped && !this.#dead);
    })().finally(() => {
      this.#running = undefined;
      if (!this.#stopped && !this.#dead) {
        this.#timer = setTimeout(() => this.#loop(), this.#o.pollIntervalMs);
      }
    });
  }

  /**
   * One worker round: expire attempts whose lease ran out, then claim and decide due events.
   * @returns how many events were decided.
   */
  async tick(): Promise<number> {
    // Results kept during an outage are written first: reaping or deciding now would count a
    // waiting key as no answer.
    if (this.#outage !== undefined) return 0;
    await this.#reap();
    let decided = 0;
    for (;;) {
      if (this.#dead) return decided;
      const now = Date.now();
      const claimed = await claimDue<EventRow>(this.#o.database, {
        table: 'callout_event',
        owner: this.owner,
        leaseMs: this.#o.decisionLeaseMs ?? 30_000,
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
          while (index < chunks.length && !this.#dead) {
            const chunk = chunks[index++] as EventRow[];
            decided += await this.#decideChunk(chunk);
            if (concurrency === 1) await new Promise((resolve) => setImmediate(resolve));
          }
        }),
      );
      if (this.#dead) return decided;
      if (claimed.length < this.#o.batchSize) return decided;
    }
  }

  /** Marks expired `dialing` attempts `unknown` (= no answer) and wakes their events. */
  async #reap(): Promise<void> {
    const now = Date.now();
    const reaped = await this.#db
      .updateTable('callout_attempt')
      .set({ state: 'unknown', outcome: 'unknown', ended_at: now, lease_owner: null })
      .where('state', '=', 'dialing')
      .where('lease_until', '<=', now)
      .returningAll()
      .execute();
    for (const attempt of reaped) {
      if (this.#dead) return;
      this.#o.metrics?.attempts.inc({ outcome: 'unknown', answer: answerLabel(attempt.digit) });
      await this.#db.transaction().execute(async (trx) => {
        await trx
          .updateTable('callout_event')
          .set({ due_at: now })
          .where('id', '=', attempt.event_id)
          .where('status', '=', EVENT_STATUS.inProgress)
          .execute();
        await trx
          .updateTable('callout_person')
          .set({ status: 3 })
          .where('id', '=', attempt.person_id)
          .where('status', 'is', null)
          .execute();
      });
      this.#o.logger?.warn(
        { attempt: attempt.id, event: attempt.event_id },
        'callout: attempt without outcome (process died?) counts as no answer',
      );
      this.#publish('callout.attempt.unknown', 'callout_attempt_unknown', attemptData(attempt));
    }
  }

  #intervalMs(person: PersonRow): number {
    return person.sleep_s * 1000 * this.#o.timeScale;
  }

  /**
   * Decides a chunk of claimed events in one transaction, set-based (a handful of statements
   * per chunk, not per event: on PostgreSQL each statement is a round trip): fences the
   * events by their leases, reads their people and calls in progress, {@link choose}s for
   * each, then writes the events (one UPDATE per distinct new state), the attempts (one
   * INSERT) and the people called (one UPDATE). Acts on the plans (publishes, dials) only
   * after the commit. If the transaction fails, each event is retried in a transaction of its
   * own, so that one bad event does not hold back the others until their leases expire.
   * @returns how many events were decided.
   */
  async #decideChunk(claimed: readonly EventRow[]): Promise<number> {
    const now = Date.now();
    let plans: Decision[];
    try {
      plans = await this.#db.transaction().execute((trx) => this.#planChunk(trx, claimed, now));
    } catch (error) {
      if (claimed.length === 1 || this.#dead) throw error;
      let decided = 0;
      for (const event of claimed) {
        try {
          decided += await this.#decideChunk([event]);
        } catch (single) {
          this.#o.logger?.error({ err: single, event: event.id }, 'callout: decision failed');
        }
      }
      return decided;
    }
    if (this.#dead) return 0;
    for (const plan of plans) this.#act(plan);
    return claimed.length;
  }

  /** The transaction of {@link CalloutService.#decideChunk}. */
  async #planChunk(
    trx: Transaction<CalloutTables>,
    claimed: readonly EventRow[],
    now: number,
  ): Promise<Decision[]> {
    // Lock (in id order, see lockEvents) and fence the events first (a lost lease: another
    // worker has the event); then attempts and people, as the result writers do.
    await lockEvents(
      trx,
      this.#o.database.dialect,
      claimed.map((e) => e.id),
    );
    const events = await trx
      .updateTable('callout_event')
      .set({ lease_until: now + (this.#o.decisionLeaseMs ?? 30_000) })
      .where(
        'id',
        'in',
        claimed.map((e) => e.id),
      )
      .where('lease_owner', '=', this.owner)
      .returningAll()
      .execute();
    if (events.length === 0) return [];
    const ids = events.map((e) => e.id);
    const inflight = groupBy(
      await trx
        .selectFrom('callout_attempt')
        .selectAll()
        .where('event_id', 'in', ids)
        .where('state', '=', 'dialing')
        .execute(),
      (a) => a.event_id,
    );
    const people = groupBy(
      await trx
        .selectFrom('callout_person')
        .selectAll()
        .where('event_id', 'in', ids)
        .orderBy('event_id')
        .orderBy('numorder')
        .execute(),
      (p) => p.event_id,
    );
    const plans: Decision[] = [];
    const updates = new Map<string, { set: Partial<EventRow>; ids: string[] }>();
    for (const event of events) {
      const ready = this.#o.providers[event.provider]?.ready?.() !== false;
      const choice = choose(event, people.get(event.id) ?? [], inflight.get(event.id) ?? [], {
        now,
        intervalMs: (p) => this.#intervalMs(p),
        providerKnown: this.#o.providers[event.provider] !== undefined,
        providerReady: ready,
        retryMs: Math.max(this.#o.pollIntervalMs, 100),
        attemptLeaseMs: this.#o.attemptLeaseMs,
      });
      const set: Partial<EventRow> = {
        status: choice.status,
        last_order: choice.lastOrder,
        due_at: choice.dueAt,
        lease_until: null,
        lease_owner: null,
        ...(choice.started ? { started_at: now } : {}),
        ...(choice.done ? { finished_at: now } : {}),
        ...(choice.failedProvider
          ? { error: `provider ${event.provider} is not configured in this process` }
          : {}),
      };
      const key = JSON.stringify(set);
      const update = updates.get(key) ?? { set, ids: [] };
      update.ids.push(event.id);
      updates.set(key, update);
      const dials = choice.toDial.map((person) => {
        const attempt: AttemptRow = {
          id: newId(now),
          event_id: event.id,
          person_id: person.id,
          n: person.calls + 1,
          state: 'dialing',
          outcome: null,
          digit: null,
          provider: event.provider,
          provider_call_id: null,
          placed_at: now,
          // when the call became due: the person's eligibility (the event's creation for a
          // first call), or the event's due time if the worker was told later
          due_at: Math.max(
            person.latest_at === null
              ? event.created_at
              : person.latest_at + this.#intervalMs(person),
            event.due_at ?? now,
          ),
          ended_at: null,
          lease_until: now + this.#o.attemptLeaseMs,
          lease_owner: this.owner,
        };
        return { attempt, person: { ...person, calls: person.calls + 1, latest_at: now } };
      });
      plans.push({
        event,
        dials,
        started: choice.started,
        finished: choice.finished,
        failedProvider: choice.failedProvider,
        notReady: choice.notReady,
      });
    }
    for (const { set, ids: updateIds } of updates.values()) {
      await trx.updateTable('callout_event').set(set).where('id', 'in', updateIds).execute();
    }
    const dials = plans.flatMap((p) => p.dials);
    if (dials.length > 0) {
      await trx
        .insertInto('callout_attempt')
        .values(dials.map((d) => d.attempt))
        .execute();
      await trx
        .updateTable('callout_person')
        .set((eb) => ({ calls: eb('calls', '+', 1), latest_at: now }))
        .where(
          'id',
          'in',
          dials.map((d) => d.person.id),
        )
        .execute();
    }
    return plans;
  }

  /** Acts on a committed plan: publishes and dials (never before the commit). */
  #act(plan: Decision): void {
    const { event, dials, started, finished, failedProvider, notReady } = plan;
    if (started) {
      this.#publish('callout.event.started', 'callout_event_started', { eventid: event.id });
    }
    for (const { attempt, person } of dials) {
      const placedAt = Date.now();
      const max = this.#o.placedLogMax ?? 100_000;
      if (this.placedLog.length >= max) this.placedLog.splice(0, Math.ceil(max / 2));
      this.placedLog.push({ dueAt: attempt.due_at, placedAt });
      this.#o.metrics?.dueToPlaced.observe(Math.max(0, placedAt - attempt.due_at) / 1000);
      this.#o.logger?.info(
        {
          event: event.id,
          attempt: attempt.id,
          n: attempt.n,
          order: person.numorder,
          ghid: person.ghid,
          provider: attempt.provider,
        },
        'callout: call placed',
      );
      this.#publish('callout.attempt.dialing', 'callout_attempt_dialing', {
        ...attemptData(attempt),
        order: person.numorder,
        ghid: person.ghid,
        telno: person.telno,
      });
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
          if (this.#dead) return;
          this.#o.logger?.error({ err: error, attempt: attempt.id }, 'callout: dial failed');
          await this.recordOutcome(attempt.id, 'failed').catch(() => {});
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
    if (finished || failedProvider) {
      this.#o.logger?.info(
        {
          event: event.id,
          eventstatus: failedProvider ? EVENT_STATUS.error : EVENT_STATUS.finished,
        },
        'callout: escalation finished',
      );
      this.#publish('callout.event.finished', 'callout_event_finished', {
        eventid: event.id,
        eventstatus: failedProvider ? EVENT_STATUS.error : EVENT_STATUS.finished,
      });
    }
  }

  async #placed(attemptId: string, providerCallId: string): Promise<void> {
    if (this.#dead) return;
    await this.#enqueue({ kind: 'placed', attemptId, providerCallId });
  }

  /**
   * Queues a write for the next group; resolves once its group is committed (a result: or
   * once it was dropped, see {@link CalloutService.recordOutcome}).
   */
  #enqueue(write: GroupWrite): Promise<void> {
    if (write.kind !== 'insert') {
      const max = this.#o.pendingResultsMax ?? 100_000;
      if (this.#pendingResults >= max) {
        this.#dropResult(write, 'queue_full');
        return Promise.resolve();
      }
      this.#pendingResults++;
      this.#o.metrics?.resultsPending.set(this.#pendingResults);
    }
    return new Promise<void>((resolve, reject) => {
      this.#group.push({ write, resolve, reject });
      this.#scheduleGroup();
    });
  }

  /** A result leaves the queue (written or dropped). */
  #settleResult(entry: GroupEntry): void {
    if (entry.write.kind === 'insert') return;
    this.#pendingResults--;
    this.#o.metrics?.resultsPending.set(this.#pendingResults);
  }

  /** Counts and logs a result that will never be written. */
  #dropResult(write: GroupWrite, reason: 'queue_full' | 'rejected', error?: unknown): void {
    this.#o.metrics?.resultsDropped.inc({ reason });
    const detail = 'attemptId' in write ? { attempt: write.attemptId, kind: write.kind } : {};
    if (reason === 'rejected') {
      this.#o.logger?.error(
        { ...detail, err: error },
        'callout: the database refused a call result; dropped',
      );
      return;
    }
    // queue full: the first of an outage, then a count when it ends
    if (this.#droppedFull++ === 0) {
      this.#o.logger?.error(
        { ...detail, pendingResultsMax: this.#o.pendingResultsMax ?? 100_000 },
        'callout: too many call results waiting for the database; dropping new ones',
      );
    }
  }

  #scheduleGroup(): void {
    if (this.#groupScheduled || this.#group.length === 0) return;
    // during an outage, the retry timer runs the next group
    if (this.#outage?.timer !== undefined) return;
    this.#groupScheduled = true;
    setImmediate(() => {
      void this.#flushGroup().finally(() => {
        this.#groupScheduled = false;
        this.#scheduleGroup();
      });
    });
  }

  /**
   * Writes one group (every queued new event and at most 500 other writes, in order) in one
   * transaction, then publishes what changed. If the transaction fails because the database
   * is unreachable, the group's new events fail (the API answers 503) and its results go back
   * to the head of the queue, to be written when the database answers again (see
   * {@link CalloutService.#unreachable}). If it fails otherwise, every write of the group is
   * retried in a transaction of its own, so that one bad write fails alone: a new event is
   * refused, a result is dropped, logged and counted.
   */
  async #flushGroup(): Promise<void> {
    // New events (API requests waiting) all go into this group, whatever their place in the
    // queue; other writes up to 500 per group, in order.
    const group: GroupEntry[] = [];
    const rest: GroupEntry[] = [];
    for (const entry of this.#group) {
      if (entry.write.kind === 'insert' || group.length < 500) group.push(entry);
      else rest.push(entry);
    }
    this.#group.splice(0, this.#group.length, ...rest);
    if (this.#dead) {
      // killed (tests' SIGKILL): nothing more is written
      for (const entry of group) entry.reject(new Error('callout: service killed'));
      return;
    }
    const run = async (writes: GroupWrite[]) => {
      const now = Date.now();
      return this.#db.transaction().execute(async (trx) => {
        // the events first, in id order (PostgreSQL; see lockEvents)
        await lockEventsOfAttempts(
          trx,
          this.#o.database.dialect,
          writes.flatMap((w) => ('attemptId' in w ? [w.attemptId] : [])),
        );
        await insertEvents(
          trx,
          writes.filter((w) => w.kind === 'insert'),
        );
        await setProviderCallIds(
          trx,
          writes.filter((w) => w.kind === 'placed'),
        );
        const answered = await applyDigits(
          trx,
          writes.filter((w) => w.kind === 'digit'),
          now,
        );
        const finished = await applyOutcomes(
          trx,
          writes.filter((w) => w.kind === 'outcome'),
          now,
        );
        return { answered, finished };
      });
    };
    const changes: Array<{ answered: AttemptRow[]; finished: AttemptRow[] }> = [];
    try {
      changes.push(await run(group.map((e) => e.write)));
      for (const entry of group) {
        this.#settleResult(entry);
        entry.resolve();
      }
      this.#reachable();
    } catch (error) {
      if (isUnavailableError(error)) {
        this.#unreachable(group, error);
      } else {
        let reachable = true;
        for (const [i, entry] of group.entries()) {
          try {
            changes.push(await run([entry.write]));
            this.#settleResult(entry);
            entry.resolve();
          } catch (single) {
            if (isUnavailableError(single)) {
              this.#unreachable(group.slice(i), single);
              reachable = false;
              break;
            }
            if (entry.write.kind === 'insert') entry.reject(single);
            else {
              this.#settleResult(entry);
              this.#dropResult(entry.write, 'rejected', single);
              entry.resolve();
            }
          }
        }
        if (reachable) this.#reachable();
      }
    }
    if (this.#dead) return;
    let woke = false;
    for (const { answered, finished } of changes) {
      for (const attempt of answered) {
        this.#o.logger?.info(
          { event: attempt.event_id, attempt: attempt.id, digit: attempt.digit },
          'callout: call answered with a key',
        );
        this.#publish('callout.attempt.answered', 'callout_attempt_answered', attemptData(attempt));
      }
      for (const attempt of finished) {
        this.#o.metrics?.attempts.inc({
          outcome: attempt.outcome ?? 'unknown',
          answer: answerLabel(attempt.digit),
        });
        this.#o.logger?.info(
          {
            event: attempt.event_id,
            attempt: attempt.id,
            outcome: attempt.outcome,
            digit: attempt.digit,
          },
          'callout: call finished',
        );
        this.#publish('callout.attempt.finished', 'callout_attempt_finished', attemptData(attempt));
      }
      woke ||= answered.length + finished.length > 0;
    }
    if (woke) this.wake();
  }

  /**
   * The database could not be reached for `entries` (in queue order): new events fail with
   * the error (their API requests answer 503); results go back to the head of the queue, in
   * order, and a retry is scheduled with backoff (100 ms doubling to
   * {@link RESULT_RETRY_MAX_MS}). Logged once per outage.
   */
  #unreachable(entries: readonly GroupEntry[], error: unknown): void {
    const kept: GroupEntry[] = [];
    for (const entry of entries) {
      if (entry.write.kind === 'insert') entry.reject(error);
      else kept.push(entry);
    }
    const reason = error instanceof DatabaseUnavailableError ? error.reason : 'unreachable';
    if (kept.length === 0 && this.#outage === undefined) return;
    this.#group.unshift(...kept);
    if (this.#outage === undefined) {
      this.#outage = { sinceMs: Date.now(), reason, delayMs: 100, timer: undefined };
      this.#o.logger?.warn(
        { reason, pending: this.#pendingResults },
        'callout: database unreachable; call results are kept in memory and written when it is back',
      );
    } else {
      this.#outage.delayMs = Math.min(RESULT_RETRY_MAX_MS, this.#outage.delayMs * 2);
    }
    const outage = this.#outage;
    if (this.#writerClosed) return;
    outage.timer = setTimeout(() => {
      outage.timer = undefined;
      // nothing kept any more (e.g. only new events failed): the outage is over for the
      // results, the worker finds out about the database itself
      if (!this.#group.some((e) => e.write.kind !== 'insert')) this.#reachable();
      this.#scheduleGroup();
    }, outage.delayMs);
  }

  /** A group was written: ends an outage (logged with what it cost) and wakes the worker. */
  #reachable(): void {
    const outage = this.#outage;
    if (outage === undefined) return;
    if (this.#group.some((e) => e.write.kind !== 'insert')) {
      // more kept results to write before the worker may run again
      outage.delayMs = 100;
      return;
    }
    this.#outage = undefined;
    this.#o.logger?.info(
      {
        outageMs: Date.now() - outage.sinceMs,
        reason: outage.reason,
        droppedQueueFull: this.#droppedFull,
      },
      'callout: database reachable again; kept call results written',
    );
    this.#droppedFull = 0;
    this.wake();
  }

  /** The attempt with this provider call id (Twilio `CallSid`), if any. */
  async attemptByProviderId(providerCallId: string): Promise<AttemptRow | undefined> {
    return this.#db
      .selectFrom('callout_attempt')
      .selectAll()
      .where('provider_call_id', '=', providerCallId)
      .executeTakeFirst();
  }

  /** An attempt by id. */
  async attempt(attemptId: string): Promise<AttemptRow | undefined> {
    return this.#db
      .selectFrom('callout_attempt')
      .selectAll()
      .where('id', '=', attemptId)
      .executeTakeFirst();
  }

  /**
   * Records a valid key at once (before the call ends): the attempt's `digit` and the person's
   * status (1 or 2), unless the person already answered. Keys other than 1 and 2 are ignored.
   * Publishes `callout.attempt.answered` with the digit and wakes the worker. Written with the
   * next group (see {@link CalloutService.recordOutcome}); resolves once committed.
   */
  async recordDigit(attemptId: string, digit: string): Promise<void> {
    if (statusOfDigit(digit) === undefined || this.#dead) return;
    await this.#enqueue({ kind: 'digit', attemptId, digit });
  }

  /**
   * Records an attempt's end (`dialing` or `unknown` → `done`): outcome, key (if any, kept
   * when already recorded), the person's status (1/2 from the key, else 3 if not answered
   * before). Publishes `callout.attempt.finished` and wakes the worker. Idempotent: a second
   * report of a `done` attempt is ignored. Resolves once committed.
   *
   * Keys and outcomes are written in groups, one writer at a time: everything reported while
   * a group is written goes into the next one, one transaction and a few set-based statements
   * per group (per key and outcome value) instead of a transaction per result. Locks are taken
   * events (in id order), then attempts, then people, as decisions do.
   *
   * While the database is unreachable, results wait in memory (in order, at most
   * `pendingResultsMax`) and the promise resolves once they are written; a result that the
   * database refuses, or that finds the queue full, is dropped (logged, counted in
   * `switchboard_callout_results_dropped_total`) and the promise resolves too.
   */
  async recordOutcome(attemptId: string, outcome: AttemptOutcome, digit?: string): Promise<void> {
    if (this.#dead) return;
    if (digit !== undefined && statusOfDigit(digit) !== undefined) {
      await this.recordDigit(attemptId, digit);
    }
    await this.#enqueue({ kind: 'outcome', attemptId, outcome });
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
    if (this.#dead) return;
    const now = Date.now();
    let changed: { attempt: AttemptRow | undefined; event: EventRow | undefined };
    try {
      changed = await this.#db.transaction().execute(async (trx) => {
        const found = await trx
          .selectFrom('callout_attempt')
          .select('event_id')
          .where('id', '=', attemptId)
          .executeTakeFirst();
        if (found === undefined) return { attempt: undefined, event: undefined };
        // the event first (PostgreSQL; see lockEvents)
        await lockEvents(trx, this.#o.database.dialect, [found.event_id]);
        const event = await trx
          .updateTable('callout_event')
          .set({
            status: EVENT_STATUS.error,
            error: reason.slice(0, 500),
            finished_at: now,
            due_at: null,
            lease_until: null,
            lease_owner: null,
          })
          .where('id', '=', found.event_id)
          .where('status', 'in', [EVENT_STATUS.waiting, EVENT_STATUS.inProgress])
          .returningAll()
          .executeTakeFirst();
        const attempt = await trx
          .updateTable('callout_attempt')
          .set({
            state: 'done',
            outcome: 'failed',
            ended_at: now,
            lease_until: null,
            lease_owner: null,
          })
          .where('id', '=', attemptId)
          .where('state', '!=', 'done')
          .returningAll()
          .executeTakeFirst();
        return { attempt, event };
      });
    } catch (error) {
      this.#o.logger?.error(
        { err: error, attempt: attemptId, reason },
        'callout: cannot record that a call could not be prepared; recorded as failed',
      );
      await this.recordOutcome(attemptId, 'failed');
      return;
    }
    if (this.#dead) return;
    const { attempt, event } = changed;
    if (attempt !== undefined) {
      this.#o.metrics?.attempts.inc({ outcome: 'failed', answer: 'none' });
      this.#publish('callout.attempt.finished', 'callout_attempt_finished', attemptData(attempt));
    }
    if (event !== undefined) {
      this.#o.logger?.error(
        { event: event.id, attempt: attemptId, eventstatus: EVENT_STATUS.error, reason },
        'callout: escalation failed: a call could not be prepared (eventstatus 99, system error)',
      );
      this.#publish('callout.event.finished', 'callout_event_finished', {
        eventid: event.id,
        eventstatus: EVENT_STATUS.error,
        error: event.error,
      });
    }
  }

  /** Number of calls this process is following. */
  get inflight(): number {
    return this.#inflight.size;
  }

  /**
   * Stops the worker loop, then waits up to `graceMs` (default 5000) for the calls in
   * progress to end and their results to be written; calls still running after that stay
   * `dialing` and become `unknown` after their lease (another process or the next start
   * reaps them). Results still kept in memory then (database unreachable the whole time) are
   * lost: logged with their number.
   */
  async stop(graceMs = 5_000): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
    const deadline = Date.now() + graceMs;
    // killed (tests' SIGKILL): nothing to wait for
    if (this.#inflight.size > 0 && !this.#dead) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.#inflight]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
    }
    while (this.#pendingResults > 0 && Date.now() < deadline && !this.#dead) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    this.#writerClosed = true;
    if (this.#outage?.timer !== undefined) clearTimeout(this.#outage.timer);
    if (this.#pendingResults > 0 && !this.#dead) {
      this.#o.logger?.error(
        { pending: this.#pendingResults, reason: this.#outage?.reason },
        'callout: stopped with call results not written (database unreachable); their attempts count as unknown after their lease',
      );
    }
  }

  /**
   * Crash simulation for tests: from now on this instance writes and publishes nothing, as if
   * its process had been killed (SIGKILL) at this instant.
   */
  kill(): void {
    this.#dead = true;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
  }
}

/** Inputs of {@link choose} besides the rows. */
interface ChooseOptions {
  now: number;
  /** A person's minimum interval between calls, in ms (time scale applied). */
  intervalMs: (person: PersonRow) => number;
  /** The event's provider exists in this process. */
  providerKnown: boolean;
  /** The provider can place calls now (e.g. AMI connected). */
  providerReady: boolean;
  /** When to look again if the provider is not ready, in ms from now. */
  retryMs: number;
  /** Lease of a placed attempt, in ms. */
  attemptLeaseMs: number;
}

/**
 * The escalation rules for one event (see the module comment and docs/callout.md), pure:
 * who to call now, the event's new status, sequential cursor and next due time (`null` when
 * done: the next eligibility, or the earliest lease end of a call in progress; results set
 * `due_at = now` themselves).
 * @param people the event's people, by `order`.
 * @param inflight the event's attempts still `dialing`.
 */
export function choose(
  event: EventRow,
  people: readonly PersonRow[],
  inflight: readonly AttemptRow[],
  options: ChooseOptions,
) {
  const { now } = options;
  const busy = new Set(inflight.map((a) => a.person_id));
  const callable = (p: PersonRow) => p.status !== 1 && p.status !== 2 && p.calls < event.frequency;
  const eligibleAt = (p: PersonRow) =>
    p.latest_at === null ? now : p.latest_at + options.intervalMs(p);
  let next: number | null = null;
  const consider = (at: number) => {
    next = next === null ? at : Math.min(next, at);
  };
  for (const a of inflight) if (a.lease_until !== null) consider(a.lease_until);
  let toDial: PersonRow[] = [];
  let lastOrder = event.last_order;
  let finished = false;
  let notReady = false;
  const failedProvider = !options.providerKnown;
  if (failedProvider) {
    // nothing to decide: the event fails (status 99)
  } else if (event.calltype === 1) {
    if (people.some((p) => p.status === 1)) finished = true;
    else if (inflight.length === 0) {
      const start = people.findIndex((p) => p.numorder > event.last_order);
      const ordered = start < 0 ? people : [...people.slice(start), ...people.slice(0, start)];
      const candidate = ordered.find(callable);
      if (!candidate) finished = true;
      else if (eligibleAt(candidate) <= now) {
        toDial = [candidate];
        lastOrder = candidate.numorder;
      } else consider(eligibleAt(candidate));
    }
  } else {
    if (people.every((p) => p.status === 1 || p.status === 2)) finished = true;
    else {
      const candidates = people.filter((p) => callable(p) && !busy.has(p.id));
      for (const p of candidates) {
        if (eligibleAt(p) <= now) toDial.push(p);
        else consider(eligibleAt(p));
      }
      if (candidates.length === 0 && inflight.length === 0) finished = true;
    }
  }
  if (toDial.length > 0 && !options.providerReady) {
    // No way to place a call now (no AMI connection yet, e.g. right after a restart): dial
    // nobody and look again soon, rather than spend the attempts on calls never placed.
    toDial = [];
    lastOrder = event.last_order;
    consider(now + options.retryMs);
    notReady = true;
  }
  const started = event.status === EVENT_STATUS.waiting && toDial.length > 0;
  const status = failedProvider
    ? EVENT_STATUS.error
    : finished
      ? EVENT_STATUS.finished
      : toDial.length > 0 || event.status === EVENT_STATUS.inProgress
        ? EVENT_STATUS.inProgress
        : event.status;
  const done = finished || failedProvider;
  const dueAt: number | null = done
    ? null
    : toDial.length > 0
      ? now + options.attemptLeaseMs
      : next;
  return { toDial, lastOrder, status, dueAt, started, done, finished, failedProvider, notReady };
}

function groupBy<T>(rows: readonly T[], key: (row: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const row of rows) {
    const list = out.get(key(row));
    if (list) list.push(row);
    else out.set(key(row), [row]);
  }
  return out;
}

/** A queued write and the promise waiting for its group's commit. */
interface GroupEntry {
  write: GroupWrite;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** A write of a group: a new event, a provider call id, a key, an outcome. */
type GroupWrite =
  | { kind: 'insert'; event: EventRow; people: PersonRow[] }
  | { kind: 'placed'; attemptId: string; providerCallId: string }
  | { kind: 'digit'; attemptId: string; digit: string }
  | { kind: 'outcome'; attemptId: string; outcome: AttemptOutcome };

function unique<T>(values: Iterable<T>): T[] {
  return [...new Set(values)];
}

/** Attempt ids by written value, keeping only the first write of each attempt. */
function firstPerAttempt<W extends { attemptId: string }, V>(
  writes: readonly W[],
  value: (write: W) => V,
): Map<V, string[]> {
  const seen = new Set<string>();
  const out = new Map<V, string[]>();
  for (const write of writes) {
    if (seen.has(write.attemptId)) continue;
    seen.add(write.attemptId);
    const ids = out.get(value(write));
    if (ids) ids.push(write.attemptId);
    else out.set(value(write), [write.attemptId]);
  }
  return out;
}

/**
 * Keys of a group, set-based: the first key of each attempt without one is kept (one UPDATE
 * per digit value), then the people's status (1 or 2, unless they already answered 1 or 2)
 * and the events' due time (now, if in progress).
 * @returns the attempts that took a key.
 */
async function applyDigits(
  trx: Transaction<CalloutTables>,
  writes: ReadonlyArray<{ attemptId: string; digit: string }>,
  now: number,
): Promise<AttemptRow[]> {
  const rows: AttemptRow[] = [];
  for (const [digit, ids] of firstPerAttempt(writes, (w) => w.digit)) {
    rows.push(
      ...(await trx
        .updateTable('callout_attempt')
        .set({ digit })
        .where('id', 'in', ids)
        .where('digit', 'is', null)
        .returningAll()
        .execute()),
    );
  }
  for (const digit of unique(rows.map((r) => r.digit as string))) {
    await trx
      .updateTable('callout_person')
      .set({ status: statusOfDigit(digit) as number })
      .where('id', 'in', unique(rows.filter((r) => r.digit === digit).map((r) => r.person_id)))
      .where((eb) => eb.or([eb('status', 'is', null), eb('status', '=', 3)]))
      .execute();
  }
  await wakeEvents(trx, rows, now);
  return rows;
}

/**
 * Outcomes of a group, set-based: attempts not yet `done` become `done` with their outcome
 * (one UPDATE per outcome value; the first report of an attempt wins), people without a key
 * get status 3 (no answer) unless they have one, and the events are due now.
 * @returns the attempts that ended.
 */
async function applyOutcomes(
  trx: Transaction<CalloutTables>,
  writes: ReadonlyArray<{ attemptId: string; outcome: AttemptOutcome }>,
  now: number,
): Promise<AttemptRow[]> {
  const rows: AttemptRow[] = [];
  for (const [outcome, ids] of firstPerAttempt(writes, (w) => w.outcome)) {
    rows.push(
      ...(await trx
        .updateTable('callout_attempt')
        .set({ state: 'done', outcome, ended_at: now, lease_until: null, lease_owner: null })
        .where('id', 'in', ids)
        .where('state', '!=', 'done')
        .returningAll()
        .execute()),
    );
  }
  const unanswered = rows.filter((r) => statusOfDigit(r.digit) === undefined);
  if (unanswered.length > 0) {
    await trx
      .updateTable('callout_person')
      .set({ status: 3 })
      .where('id', 'in', unique(unanswered.map((r) => r.person_id)))
      .where('status', 'is', null)
      .execute();
  }
  await wakeEvents(trx, rows, now);
  return rows;
}

/** Sets `due_at = now` on the in-progress events of these attempts. */
async function wakeEvents(
  trx: Transaction<CalloutTables>,
  rows: readonly AttemptRow[],
  now: number,
): Promise<void> {
  if (rows.length === 0) return;
  await trx
    .updateTable('callout_event')
    .set({ due_at: now })
    .where('id', 'in', unique(rows.map((r) => r.event_id)))
    .where('status', '=', EVENT_STATUS.inProgress)
    .execute();
}

function answerLabel(digit: string | null): string {
  return statusOfDigit(digit) === undefined ? 'none' : (digit as string);
}

function attemptData(attempt: AttemptRow) {
  return {
    eventid: attempt.event_id,
    attemptid: attempt.id,
    n: attempt.n,
    state: attempt.state,
    outcome: attempt.outcome,
    digit: attempt.digit,
    provider: attempt.provider,
  };
}
