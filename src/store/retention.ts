/**
 * What a feature tells the `retention` plugin (src/serve/retention.ts) about the rows and
 * files it owns (issue 14 §4): how to delete its finished history, its converted media, and
 * where its speech cache is. Features register their rule with `app.store.addRetention(rule)`
 * while they register; retention runs every registered rule, so a feature removed from the
 * list takes its rule with it.
 *
 * @module
 */
import type { Config } from '../config/schema.ts';
import type { Database } from './db.ts';

/** One feature's retention. Every function is idempotent (several processes may run it). */
export interface RetentionRule {
  /** The feature (`callout`, `announce`): step names in logs are `<name> media`, ... */
  readonly name: string;
  /** The key of its history count in the result and `switchboard_retention_deleted_total{what}`. */
  readonly historyLabel: string;
  /**
   * Deletes finished history older than `cutoffMs` (epoch ms; never pending rows).
   * @returns how many were deleted.
   */
  pruneHistory?(database: Database, cutoffMs: number): Promise<number>;
  /**
   * Deletes converted media of what finished before `cutoffMs` (epoch ms).
   * @returns how many files were deleted.
   */
  pruneMedia?(database: Database, config: Config, cutoffMs: number): Promise<number>;
  /** Speech cache directories (absolute), pruned by age and size. */
  cacheDirs?(config: Config): string[];
}
