/**
 * The callout tables (the seed's `event` and `call` tables, plus one row per call attempt):
 * row types and migrations. The queries are in repository.ts. Times are epoch ms; ids are {@link newId} strings.
 *
 * - `callout_event`: one escalation (seed `event`): request fields, texts, `status`
 *   (0 waiting, 1 in progress, 2 finished, 99 system error), `error` (why it is 99, e.g. the
 *   message could not be synthesized: shown in the history), `last_order` (seed `lastnum`: the
 *   order of the person dialled last, sequential cursor), `due_at` (next decision; NULL when
 *   finished) and the lease columns used by {@link claimDue}.
 * - `callout_person`: one addressee of an event (seed `call`): order, user id, number, name,
 *   minimum interval, `calls` (seed `attempt` / `numofcall`), `latest_at`, `status` (NULL
 *   before any call, 1 positive, 2 negative, 3 no answer).
 * - `callout_attempt`: one call: `state` `dialing` → `done` (outcome known) or `unknown`
 *   (lease expired without an outcome: counts as no answer, never redialled), `outcome`,
 *   `digit`, provider call id.
 *
 * Source: seed "DATABASE" section.
 */
import type { Kysely } from 'kysely';
import { type Database, defineMigrations, type MigrationSet } from '../store/db.ts';

/** `callout_event` row. */
export interface EventRow {
  id: string;
  status: number;
  testflg: number;
  provider: string;
  hostname: string;
  operator: string;
  calltype: number;
  frequency: number;
  language: string;
  message: string;
  headid: number;
  footid: number;
  headmsg: string;
  footmsg: string;
  last_order: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  due_at: number | null;
  lease_until: number | null;
  lease_owner: string | null;
  /**
   * Why the event ended with status 99 (system error), e.g. `the message could not be
   * prepared: espeak-ng is not installed or not executable`; NULL otherwise. Never a secret.
   */
  error?: string | null;
}

/** `callout_person` row. */
export interface PersonRow {
  id: string;
  event_id: string;
  numorder: number;
  ghid: string;
  name: string;
  telno: string;
  sleep_s: number;
  calls: number;
  latest_at: number | null;
  status: number | null;
}

/** `callout_attempt` row. */
export interface AttemptRow {
  id: string;
  event_id: string;
  person_id: string;
  n: number;
  state: 'dialing' | 'done' | 'unknown';
  outcome: string | null;
  digit: string | null;
  provider: string;
  provider_call_id: string | null;
  placed_at: number;
  due_at: number;
  ended_at: number | null;
  lease_until: number | null;
  lease_owner: string | null;
}

/** The tables, for Kysely. */
export interface CalloutTables {
  callout_event: EventRow;
  callout_person: PersonRow;
  callout_attempt: AttemptRow;
}

/** Typed Kysely handle on the callout tables. */
export type CalloutDb = Kysely<CalloutTables>;

/** Migrations of the callout module (tables prefixed `callout_`). */
export const calloutMigrations: MigrationSet = defineMigrations('callout', [
  {
    name: 'create_tables',
    async up(db) {
      await db.schema
        .createTable('callout_event')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('status', 'integer', (c) => c.notNull())
        .addColumn('testflg', 'integer', (c) => c.notNull())
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('hostname', 'text', (c) => c.notNull())
        .addColumn('operator', 'text', (c) => c.notNull())
        .addColumn('calltype', 'integer', (c) => c.notNull())
        .addColumn('frequency', 'integer', (c) => c.notNull())
        .addColumn('language', 'text', (c) => c.notNull())
        .addColumn('message', 'text', (c) => c.notNull())
        .addColumn('headid', 'integer', (c) => c.notNull())
        .addColumn('footid', 'integer', (c) => c.notNull())
        .addColumn('headmsg', 'text', (c) => c.notNull())
        .addColumn('footmsg', 'text', (c) => c.notNull())
        .addColumn('last_order', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('started_at', 'bigint')
        .addColumn('finished_at', 'bigint')
        .addColumn('due_at', 'bigint')
        .addColumn('lease_until', 'bigint')
        .addColumn('lease_owner', 'text')
        .execute();
      await db.schema
        .createIndex('callout_event_due')
        .on('callout_event')
        .columns(['due_at'])
        .execute();
      await db.schema
        .createTable('callout_person')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('event_id', 'text', (c) =>
          c.notNull().references('callout_event.id').onDelete('cascade'),
        )
        .addColumn('numorder', 'integer', (c) => c.notNull())
        .addColumn('ghid', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('telno', 'text', (c) => c.notNull())
        .addColumn('sleep_s', 'integer', (c) => c.notNull())
        .addColumn('calls', 'integer', (c) => c.notNull())
        .addColumn('latest_at', 'bigint')
        .addColumn('status', 'integer')
        .execute();
      await db.schema
        .createIndex('callout_person_event')
        .on('callout_person')
        .columns(['event_id', 'numorder'])
        .unique()
        .execute();
      await db.schema
        .createTable('callout_attempt')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('event_id', 'text', (c) =>
          c.notNull().references('callout_event.id').onDelete('cascade'),
        )
        .addColumn('person_id', 'text', (c) =>
          c.notNull().references('callout_person.id').onDelete('cascade'),
        )
        .addColumn('n', 'integer', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text')
        .addColumn('digit', 'text')
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('provider_call_id', 'text')
        .addColumn('placed_at', 'bigint', (c) => c.notNull())
        .addColumn('due_at', 'bigint', (c) => c.notNull())
        .addColumn('ended_at', 'bigint')
        .addColumn('lease_until', 'bigint')
        .addColumn('lease_owner', 'text')
        .execute();
      // One attempt number per person: a second insert of the same attempt fails.
      await db.schema
        .createIndex('callout_attempt_person_n')
        .on('callout_attempt')
        .columns(['person_id', 'n'])
        .unique()
        .execute();
      await db.schema
        .createIndex('callout_attempt_state')
        .on('callout_attempt')
        .columns(['state', 'lease_until'])
        .execute();
      await db.schema
        .createIndex('callout_attempt_event')
        .on('callout_attempt')
        .columns(['event_id'])
        .execute();
    },
  },
  {
    // Hang-ups of calls placed by another process (or before an AMI reconnect) are found by
    // the channel's Uniqueid; Twilio webhooks by CallSid.
    name: 'attempt_provider_call_id',
    async up(db) {
      await db.schema
        .createIndex('callout_attempt_provider_call')
        .on('callout_attempt')
        .columns(['provider_call_id'])
        .execute();
    },
  },
  {
    // Why an event ended with status 99 (issue 14: a call that could not be prepared).
    name: 'event_error',
    async up(db) {
      await db.schema.alterTable('callout_event').addColumn('error', 'text').execute();
    },
  },
]);

/** Typed view of a {@link Database} for the callout tables. */
export function calloutDb(database: Database): CalloutDb {
  return database.db as unknown as CalloutDb;
}
