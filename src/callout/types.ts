/**
 * The shapes of the callout service's inputs: a validated request and the service options.
 *
 * @module
 */
import type { Logger } from 'pino';
import type { Database } from '../store/db.ts';
import type { CalloutMetrics } from './metrics.ts';
import type { CalloutPublish } from './notifier.ts';
import type { CalloutProvider } from './providers/types.ts';
import type { EventRow } from './tables.ts';

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

/** Options of `CalloutService` (service.ts). */
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
  /**
   * Called as each call is handed to its provider, with when it became due and when it was
   * placed (epoch ms): the seam benchmarks and tests measure placement with (the same
   * figure as the `switchboard_callout_due_to_placed_seconds` histogram, per call).
   */
  onPlaced?: (placed: PlacedCall) => void;
}

/** One call handed to its provider (see {@link CalloutServiceOptions.onPlaced}). */
export interface PlacedCall {
  attemptId: string;
  eventId: string;
  /** When the call became due, epoch ms. */
  dueAt: number;
  /** When it was handed to the provider, epoch ms. */
  placedAt: number;
}
