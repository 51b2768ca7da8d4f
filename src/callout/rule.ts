/**
 * The escalation rule of the alert calls (Barista, issue 4 §2), pure: {@link choose} decides,
 * for one event, who to call now, the event's new status, its sequential cursor and its next
 * due time. No I/O: the decision transaction (decision.ts) feeds it rows and writes what it
 * returns.
 *
 * Rules (docs/callout.md has timelines): sequential (`calltype` 1) calls one person at a time
 * in `order`, wrapping around, skipping people who answered 2 or used up `frequency` calls,
 * waiting for the next person's minimum interval; finished when someone presses 1 or nobody
 * can be called any more. Parallel (`calltype` 2) calls every person who has not answered
 * (1 or 2) as soon as their minimum interval allows; finished when everyone answered or
 * nobody can be called any more. The interval runs from the previous call's placement.
 *
 * @module
 */
import type { AttemptRow, EventRow, PersonRow } from './tables.ts';

/** The seed's event status values (`eventstatus`). */
export const EVENT_STATUS = { waiting: 0, inProgress: 1, finished: 2, error: 99 } as const;

/**
 * The seed's person status values (`status` of a `call`): `null` never called (or called,
 * no result yet), then the answer of the last call.
 */
export const PERSON_STATUS = {
  /** Pressed 1: the alert is taken (sequential: the event finishes). */
  positive: 1,
  /** Pressed 2: declined, not called again. */
  negative: 2,
  /** Called without a key (busy, no answer, failed, unknown): may be called again. */
  noAnswer: 3,
} as const;

/** True when the person answered with a key (1 or 2): never called again. */
export function answered(person: Pick<PersonRow, 'status'>): boolean {
  return person.status === PERSON_STATUS.positive || person.status === PERSON_STATUS.negative;
}

/** Inputs of {@link choose} besides the rows. */
export interface ChooseOptions {
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

/** What {@link choose} decided for one event. */
export interface Choice {
  /** People to dial now. */
  toDial: PersonRow[];
  /** The sequential cursor (order of the person dialled last). */
  lastOrder: number;
  /** The event's new status ({@link EVENT_STATUS}). */
  status: number;
  /** Next decision, epoch ms; `null` when done. */
  dueAt: number | null;
  /** The event starts now (first call). */
  started: boolean;
  /** Finished or failed: no more decisions. */
  done: boolean;
  finished: boolean;
  /** The event's provider is not configured here (status 99). */
  failedProvider: boolean;
  /** Calls were due but the provider cannot place them now. */
  notReady: boolean;
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
): Choice {
  const { now } = options;
  const busy = new Set(inflight.map((a) => a.person_id));
  const callable = (p: PersonRow) => !answered(p) && p.calls < event.frequency;
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
    if (people.some((p) => p.status === PERSON_STATUS.positive)) finished = true;
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
    if (people.every(answered)) finished = true;
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
