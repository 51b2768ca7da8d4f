/**
 * The bus notifier of the callout module: every `callout.*` message (docs/callout.md, "Bus")
 * is built here, from committed rows only (the service calls it after the commit), with the
 * info log line of each step (escalation created, call placed, answered, finished,
 * escalation finished). A publish that throws is logged and dropped: the bus never holds
 * back an escalation.
 *
 * @module
 */
import type { Logger } from 'pino';
import { EVENT_STATUS } from './rule.ts';
import type { AttemptRow, EventRow, PersonRow } from './tables.ts';

/** Publishes one bus message (`callout.*` routing key, message name, data). */
export type CalloutPublish = (routingKey: string, name: string, data: unknown) => void;

/** The data of every `callout.attempt.*` message. */
export function attemptData(attempt: AttemptRow) {
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

/** Builds and publishes the callout module's bus messages. */
export class CalloutNotifier {
  readonly #publish: CalloutPublish | undefined;
  readonly #logger: Logger | undefined;

  constructor(publish: CalloutPublish | undefined, logger: Logger | undefined) {
    this.#publish = publish;
    this.#logger = logger;
  }

  #send(routingKey: string, name: string, data: unknown): void {
    try {
      this.#publish?.(routingKey, name, data);
    } catch (error) {
      this.#logger?.warn({ err: error, routingKey }, 'callout: publish failed');
    }
  }

  /** `callout.event.created`. */
  eventCreated(event: EventRow, people: number): void {
    this.#logger?.info(
      {
        event: event.id,
        calltype: event.calltype,
        testflg: event.testflg,
        provider: event.provider,
        people,
      },
      'callout: escalation created',
    );
    this.#send('callout.event.created', 'callout_event_created', {
      eventid: event.id,
      type: event.calltype,
      testflg: event.testflg,
      provider: event.provider,
      people,
    });
  }

  /** `callout.event.started` (the first call is placed). */
  eventStarted(event: EventRow): void {
    this.#send('callout.event.started', 'callout_event_started', { eventid: event.id });
  }

  /** `callout.event.finished` with `eventstatus` 2 (finished) or 99 (provider unavailable). */
  eventFinished(event: EventRow, failedProvider: boolean): void {
    this.#logger?.info(
      {
        event: event.id,
        eventstatus: failedProvider ? EVENT_STATUS.error : EVENT_STATUS.finished,
      },
      'callout: escalation finished',
    );
    this.#send('callout.event.finished', 'callout_event_finished', {
      eventid: event.id,
      eventstatus: failedProvider ? EVENT_STATUS.error : EVENT_STATUS.finished,
    });
  }

  /**
   * `callout.event.finished` with `eventstatus` 99 and the event's `error` (a call could not
   * be prepared).
   */
  eventFailed(event: EventRow): void {
    this.#send('callout.event.finished', 'callout_event_finished', {
      eventid: event.id,
      eventstatus: EVENT_STATUS.error,
      error: event.error,
    });
  }

  /** `callout.attempt.dialing`, with the person called. */
  attemptDialing(attempt: AttemptRow, person: PersonRow): void {
    this.#logger?.info(
      {
        event: attempt.event_id,
        attempt: attempt.id,
        n: attempt.n,
        order: person.numorder,
        ghid: person.ghid,
        provider: attempt.provider,
      },
      'callout: call placed',
    );
    this.#send('callout.attempt.dialing', 'callout_attempt_dialing', {
      ...attemptData(attempt),
      order: person.numorder,
      ghid: person.ghid,
      telno: person.telno,
    });
  }

  /** `callout.attempt.answered` (a key was written). */
  attemptAnswered(attempt: AttemptRow): void {
    this.#logger?.info(
      { event: attempt.event_id, attempt: attempt.id, digit: attempt.digit },
      'callout: call answered with a key',
    );
    this.#send('callout.attempt.answered', 'callout_attempt_answered', attemptData(attempt));
  }

  /**
   * `callout.attempt.finished` (an outcome was written); with `log`, the step's info line
   * too (a call that could not be prepared is logged by the service, as an error).
   */
  attemptFinished(attempt: AttemptRow, options: { log?: boolean } = {}): void {
    if (options.log === true) {
      this.#logger?.info(
        {
          event: attempt.event_id,
          attempt: attempt.id,
          outcome: attempt.outcome,
          digit: attempt.digit,
        },
        'callout: call finished',
      );
    }
    this.#send('callout.attempt.finished', 'callout_attempt_finished', attemptData(attempt));
  }

  /** `callout.attempt.unknown` (reaped: lease expired without an outcome). */
  attemptUnknown(attempt: AttemptRow): void {
    this.#send('callout.attempt.unknown', 'callout_attempt_unknown', attemptData(attempt));
  }
}
