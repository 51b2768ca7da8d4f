/**
 * The decision of the callout worker: a chunk of claimed events decided in ONE transaction,
 * fenced by their leases, set-based (a handful of statements per chunk, not per event: on
 * PostgreSQL each statement is a round trip). It reads the events' people and calls in
 * progress, applies the pure rule ({@link choose}) to each, and writes the events, the new
 * attempts (`dialing`) and the people called. The plans are acted on (published, dialled)
 * only after the commit: a second worker cannot claim the events meanwhile, and the unique
 * (person, n) index refuses a second insert of the same attempt: nobody is dialled twice.
 *
 * @module
 */
import type { Transaction } from 'kysely';
import type { Logger } from 'pino';
import { type Database, newId } from '../store/db.ts';
import type { CalloutProvider } from './providers/types.ts';
import { calloutDb, decisionInputs, fenceEvents, writeDecisions } from './repository.ts';
import { choose } from './rule.ts';
import type { AttemptRow, CalloutTables, EventRow, PersonRow } from './tables.ts';

/** What was decided for one event, acted on after the commit. */
export interface Decision {
  event: EventRow;
  /** Attempts inserted (`dialing`), with their person as updated (one more call). */
  dials: Array<{ attempt: AttemptRow; person: PersonRow }>;
  started: boolean;
  finished: boolean;
  failedProvider: boolean;
  notReady: boolean;
}

/** What a decision needs from the service. */
export interface DecisionContext {
  database: Database;
  /** This worker's lease owner id. */
  owner: string;
  providers: Readonly<Record<string, CalloutProvider>>;
  /** Multiplies the people's intervals (1 in production). */
  timeScale: number;
  /** Poll interval of the worker, in ms (a not-ready provider is looked at again after it). */
  pollIntervalMs: number;
  /** Lease of a placed attempt, in ms. */
  attemptLeaseMs: number;
  /** Lease of an event while it is decided, in ms. */
  decisionLeaseMs: number;
  logger?: Logger;
}

/** A person's minimum interval between calls, in ms, time scale applied. */
export function intervalMs(person: PersonRow, timeScale: number): number {
  return person.sleep_s * 1000 * timeScale;
}

/**
 * Decides a chunk of claimed events in one transaction (see the module comment), then calls
 * `act` for each committed plan. If the transaction fails, each event is retried in a
 * transaction of its own, so that one bad event does not hold back the others until their
 * leases expire (a failure of one alone is logged with its event).
 * @returns how many events were decided.
 * @throws the database error when a chunk of one event fails.
 */
export async function decideChunk(
  ctx: DecisionContext,
  claimed: readonly EventRow[],
  act: (plan: Decision) => void,
): Promise<number> {
  const now = Date.now();
  let plans: Decision[];
  try {
    plans = await calloutDb(ctx.database)
      .transaction()
      .execute((trx) => planChunk(ctx, trx, claimed, now));
  } catch (error) {
    if (claimed.length === 1) throw error;
    let decided = 0;
    for (const event of claimed) {
      try {
        decided += await decideChunk(ctx, [event], act);
      } catch (single) {
        ctx.logger?.error({ err: single, event: event.id }, 'callout: decision failed');
      }
    }
    return decided;
  }
  for (const plan of plans) act(plan);
  return claimed.length;
}

/** The transaction of {@link decideChunk}. */
async function planChunk(
  ctx: DecisionContext,
  trx: Transaction<CalloutTables>,
  claimed: readonly EventRow[],
  now: number,
): Promise<Decision[]> {
  // Lock (in id order) and fence the events first (a lost lease: another worker has the
  // event); then attempts and people, as the result writers do.
  const events = await fenceEvents(
    trx,
    ctx.database.dialect,
    claimed.map((e) => e.id),
    ctx.owner,
    now + ctx.decisionLeaseMs,
  );
  if (events.length === 0) return [];
  const rows = await decisionInputs(
    trx,
    events.map((e) => e.id),
  );
  const inflight = groupBy(rows.inflight, (a) => a.event_id);
  const people = groupBy(rows.people, (p) => p.event_id);
  const plans: Decision[] = [];
  const updates = new Map<string, { set: Partial<EventRow>; ids: string[] }>();
  for (const event of events) {
    const provider = ctx.providers[event.provider];
    const choice = choose(event, people.get(event.id) ?? [], inflight.get(event.id) ?? [], {
      now,
      intervalMs: (p) => intervalMs(p, ctx.timeScale),
      providerKnown: provider !== undefined,
      providerReady: provider?.ready?.() !== false,
      retryMs: Math.max(ctx.pollIntervalMs, 100),
      attemptLeaseMs: ctx.attemptLeaseMs,
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
            : person.latest_at + intervalMs(person, ctx.timeScale),
          event.due_at ?? now,
        ),
        ended_at: null,
        lease_until: now + ctx.attemptLeaseMs,
        lease_owner: ctx.owner,
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
  await writeDecisions(
    trx,
    updates.values(),
    plans.flatMap((p) => p.dials.map((d) => d.attempt)),
    now,
  );
  return plans;
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
