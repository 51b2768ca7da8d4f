/**
 * The escalation state machine of the alert calls (Barista, issue 4, section 2), durable:
 *
 * - An event and its people are inserted in one transaction before the API answers.
 * - A worker loop (poll every `pollIntervalMs`, plus a wake-up hint after each write) claims
 *   due events with {@link claimDue} (leases; `FOR UPDATE SKIP LOCKED` on PostgreSQL), decides
 *   who to call now, and in ONE transaction fenced by its lease inserts the attempt rows
 *   (`dialing`), counts the calls and sets the next due time. Only after that commit does it
 *   dial. A second worker cannot claim the event meanwhile, and the unique (person, n) index
 *   refuses a second insert of the same attempt: nobody is dialled twice.
 * - Keys and outcomes are written as they arrive (a key before the hang-up).
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
import type { Logger } from 'pino';
import { claimDue, type Database, newId } from '../store/db.ts';
import type { CalloutMetrics } from './metrics.ts';
import type { AttemptOutcome, AttemptSink, CalloutProvider } from './providers/types.ts';
import { statusOfDigit } from './providers/types.ts';
import {
  type AttemptRow,
  calloutDb,
  type EventHistory,
  type EventRow,
  insertEvent,
  loadEvent,
  type PersonRow,
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

/** A validated request (see `validateCallRequest` in routes.ts). */
export interface CallRequest {
  testflg: 0 | 1;
  hostname: string;
  operator: string;
  calltype: 1 | 2;
  frequency: number;
  language: string;
  message: string;
  headid: number;
  footid: number;
  headmsg: string;
  footmsg: string;
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
  /** Events decided at the same time on PostgreSQL (SQLite: 1). Default 8. */
  concurrency?: number;
  /** Lease of an event while a worker decides, in ms. Default 30000. */
  decisionLeaseMs?: number;
  /** This worker's lease owner id. Default host:pid:random. */
  owner?: string;
  publish?: CalloutPublish;
  logger?: Logger;
  /** Prometheus series (`calloutMetrics(registry)`); none = not counted. */
  metrics?: CalloutMetrics;
}

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
  /** Calls placed by this process (for benchmarks): attempt id → due and placed times, ms. */
  readonly placedLog: Array<{ dueAt: number; placedAt: number }> = [];

  constructor(options: CalloutServiceOptions) {
    this.#o = options;
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${newId().slice(-8)}`;
    this.#sink = {
      placed: (id, providerCallId) => this.#placed(id, providerCallId),
      digit: (id, digit) => this.recordDigit(id, digit),
      finished: (id, outcome, digit) => this.recordOutcome(id, outcome, digit),
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
    await insertEvent(this.#o.database, event, people);
    this.#o.metrics?.escalations.inc({
      type: request.calltype === 1 ? 'sequential' : 'parallel',
      testflg: String(request.testflg),
    });
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

  /** Starts the worker loop (idempotent). */
  start(): void {
    if (!this.#stopped || this.#dead) return;
    this.#stopped = false;
    this.wake();
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
        } catch (error) {
          if (!this.#dead) this.#o.logger?.error({ err: error }, 'callout: worker round failed');
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
      // Claimed events are independent (each fenced by its own lease): decide several at once
      // on PostgreSQL (each decision is a few round trips); one at a time on SQLite (one
      // connection), yielding to the event loop between decisions so that calls, AMI
      // responses and HTTP requests are not starved by a long synchronous batch.
      const concurrency =
        this.#o.database.dialect === 'postgres' ? Math.max(1, this.#o.concurrency ?? 8) : 1;
      let index = 0;
      await Promise.all(
        Array.from({ length: Math.min(concurrency, claimed.length) }, async () => {
          while (index < claimed.length && !this.#dead) {
            const event = claimed[index++] as EventRow;
            await this.#decide(event);
            decided += 1;
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

  /** Decides one claimed event (see the module comment). */
  async #decide(claimed: EventRow): Promise<void> {
    const now = Date.now();
    const dials: Array<{ attempt: AttemptRow; person: PersonRow }> = [];
    let finished = false;
    let started = false;
    let failedProvider = false;
    let notReady = false;
    const fenced = await this.#db.transaction().execute(async (trx) => {
      // Lock and fence first (same order as the result writers: event, attempt, person).
      const locked = await trx
        .updateTable('callout_event')
        .set({ lease_until: now + (this.#o.decisionLeaseMs ?? 30_000) })
        .where('id', '=', claimed.id)
        .where('lease_owner', '=', this.owner)
        .returningAll()
        .executeTakeFirst();
      if (!locked) return false;
      const event = locked;
      const inflight = await trx
        .selectFrom('callout_attempt')
        .selectAll()
        .where('event_id', '=', event.id)
        .where('state', '=', 'dialing')
        .execute();
      const people = await trx
        .selectFrom('callout_person')
        .selectAll()
        .where('event_id', '=', event.id)
        .orderBy('numorder')
        .execute();
      const busy = new Set(inflight.map((a) => a.person_id));
      const callable = (p: PersonRow) =>
        p.status !== 1 && p.status !== 2 && p.calls < event.frequency;
      const eligibleAt = (p: PersonRow) =>
        p.latest_at === null ? now : p.latest_at + this.#intervalMs(p);
      let next: number | null = null;
      const consider = (at: number) => {
        next = next === null ? at : Math.min(next, at);
      };
      for (const a of inflight) if (a.lease_until !== null) consider(a.lease_until);
      let toDial: PersonRow[] = [];
      let lastOrder = event.last_order;
      if (!this.#o.providers[event.provider]) {
        failedProvider = true;
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
      if (toDial.length > 0 && this.#o.providers[event.provider]?.ready?.() === false) {
        // No way to place a call now (no AMI connection yet, e.g. right after a restart): dial
        // nobody and look again soon, rather than spend the attempts on calls never placed.
        toDial = [];
        lastOrder = event.last_order;
        consider(now + Math.max(this.#o.pollIntervalMs, 100));
        notReady = true;
      }
      started = event.status === EVENT_STATUS.waiting && toDial.length > 0;
      const status = failedProvider
        ? EVENT_STATUS.error
        : finished
          ? EVENT_STATUS.finished
          : toDial.length > 0 || event.status === EVENT_STATUS.inProgress
            ? EVENT_STATUS.inProgress
            : event.status;
      const done = finished || failedProvider;
      // Due again when the next person becomes eligible or an in-flight attempt's lease ends;
      // results and reaping set due_at = now themselves.
      const dueAt = done ? null : toDial.length > 0 ? now + this.#o.attemptLeaseMs : next;
      await trx
        .updateTable('callout_event')
        .set({
          status,
          last_order: lastOrder,
          due_at: dueAt,
          lease_until: null,
          lease_owner: null,
          ...(started ? { started_at: now } : {}),
          ...(done ? { finished_at: now } : {}),
        })
        .where('id', '=', event.id)
        .execute();
      // One multi-row insert and one update for everyone dialled now (fewer round trips).
      for (const person of toDial) {
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
          due_at: Math.max(
            person.latest_at === null ? event.created_at : eligibleAt(person),
            claimed.due_at ?? now,
          ),
          ended_at: null,
          lease_until: now + this.#o.attemptLeaseMs,
          lease_owner: this.owner,
        };
        dials.push({ attempt, person: { ...person, calls: person.calls + 1, latest_at: now } });
      }
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
      return event;
    });
    if (!fenced || this.#dead) return;
    if (started) {
      this.#publish('callout.event.started', 'callout_event_started', { eventid: fenced.id });
    }
    for (const { attempt, person } of dials) {
      const placedAt = Date.now();
      this.placedLog.push({ dueAt: attempt.due_at, placedAt });
      this.#o.metrics?.dueToPlaced.observe(Math.max(0, placedAt - attempt.due_at) / 1000);
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
            eventId: fenced.id,
            telno: person.telno,
            language: fenced.language,
            head: fenced.headmsg,
            message: fenced.message,
            foot: fenced.footmsg,
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
      this.#o.logger?.error({ event: fenced.id }, 'callout: provider unavailable');
    }
    if (notReady && Date.now() - this.#notReadyLoggedAt > 30_000) {
      this.#notReadyLoggedAt = Date.now();
      this.#o.logger?.warn(
        { event: fenced.id, provider: fenced.provider },
        'callout: provider not ready (no AMI connection?): calls wait',
      );
    }
    if (finished || failedProvider) {
      this.#publish('callout.event.finished', 'callout_event_finished', {
        eventid: fenced.id,
        eventstatus: failedProvider ? EVENT_STATUS.error : EVENT_STATUS.finished,
      });
    }
  }

  async #placed(attemptId: string, providerCallId: string): Promise<void> {
    if (this.#dead) return;
    await this.#db
      .updateTable('callout_attempt')
      .set({ provider_call_id: providerCallId })
      .where('id', '=', attemptId)
      .execute();
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
   * Publishes `callout.attempt.answered` with the digit and wakes the worker.
   */
  async recordDigit(attemptId: string, digit: string): Promise<void> {
    const status = statusOfDigit(digit);
    if (status === undefined || this.#dead) return;
    const attempt = await this.#db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('callout_attempt')
        .selectAll()
        .where('id', '=', attemptId)
        .executeTakeFirst();
      if (!row || row.digit !== null) return undefined;
      await trx
        .updateTable('callout_event')
        .set({ due_at: Date.now() })
        .where('id', '=', row.event_id)
        .where('status', '=', EVENT_STATUS.inProgress)
        .execute();
      await trx
        .updateTable('callout_attempt')
        .set({ digit })
        .where('id', '=', attemptId)
        .where('digit', 'is', null)
        .execute();
      await trx
        .updateTable('callout_person')
        .set({ status })
        .where('id', '=', row.person_id)
        .where((eb) => eb.or([eb('status', 'is', null), eb('status', '=', 3)]))
        .execute();
      return { ...row, digit };
    });
    if (!attempt) return;
    this.#publish('callout.attempt.answered', 'callout_attempt_answered', attemptData(attempt));
    this.wake();
  }

  /**
   * Records an attempt's end (`dialing` or `unknown` → `done`): outcome, key (if any, kept
   * when already recorded), the person's status (1/2 from the key, else 3 if not answered
   * before). Publishes `callout.attempt.finished` and wakes the worker. Idempotent: a second
   * report of a `done` attempt is ignored.
   */
  async recordOutcome(attemptId: string, outcome: AttemptOutcome, digit?: string): Promise<void> {
    if (this.#dead) return;
    if (digit !== undefined && statusOfDigit(digit) !== undefined) {
      await this.recordDigit(attemptId, digit);
    }
    const now = Date.now();
    const attempt = await this.#db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('callout_attempt')
        .selectAll()
        .where('id', '=', attemptId)
        .executeTakeFirst();
      if (!row || row.state === 'done') return undefined;
      await trx
        .updateTable('callout_event')
        .set({ due_at: now })
        .where('id', '=', row.event_id)
        .where('status', '=', EVENT_STATUS.inProgress)
        .execute();
      const updated = await trx
        .updateTable('callout_attempt')
        .set({ state: 'done', outcome, ended_at: now, lease_until: null, lease_owner: null })
        .where('id', '=', attemptId)
        .where('state', '!=', 'done')
        .returningAll()
        .executeTakeFirst();
      if (!updated) return undefined;
      if (statusOfDigit(updated.digit) === undefined) {
        await trx
          .updateTable('callout_person')
          .set({ status: 3 })
          .where('id', '=', row.person_id)
          .where('status', 'is', null)
          .execute();
      }
      return updated;
    });
    if (!attempt) return;
    this.#o.metrics?.attempts.inc({
      outcome: attempt.outcome ?? outcome,
      answer: answerLabel(attempt.digit),
    });
    this.#publish('callout.attempt.finished', 'callout_attempt_finished', attemptData(attempt));
    this.wake();
  }

  /** Number of calls this process is following. */
  get inflight(): number {
    return this.#inflight.size;
  }

  /**
   * Stops the worker loop, then waits up to `graceMs` (default 5000) for the calls in
   * progress to end; calls still running after that stay `dialing` and become `unknown` after
   * their lease (another process or the next start reaps them).
   */
  async stop(graceMs = 5_000): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
    if (this.#inflight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.#inflight]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
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
