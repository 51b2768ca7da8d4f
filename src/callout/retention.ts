/**
 * Retention of the callout feature (issue 14 §4; run by the `retention` plugin,
 * src/serve/retention.ts): finished escalations after `retention.historyDays`, the converted
 * message of each escalation after `retention.mediaGraceMinutes`, the speech cache under
 * `callout.mediaDir/cache`. Registered by the callout plugin with `app.store.addRetention`.
 *
 * @module
 */
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Database } from '../store/db.ts';
import type { RetentionRule } from '../store/retention.ts';
import { matchingFiles } from '../util/files.ts';
import { calloutDb } from './repository.ts';

/** Rows deleted per statement (PostgreSQL takes at most 65,535 parameters). */
const BATCH = 1000;

/** Callout event statuses that are final (seed: 2 finished, 99 system error). */
const FINAL_EVENT = [2, 99];

/**
 * Deletes finished escalations (status 2 or 99) whose `finished_at` is before `cutoffMs`,
 * with their calls and people, in batches (one transaction each). Pending escalations
 * (status 0, 1) are never touched.
 * @returns how many escalations were deleted.
 */
export async function pruneCalloutHistory(database: Database, cutoffMs: number): Promise<number> {
  const db = calloutDb(database);
  let deleted = 0;
  for (;;) {
    const ids = (
      await db
        .selectFrom('callout_event')
        .select('id')
        .where('status', 'in', FINAL_EVENT)
        .where('finished_at', 'is not', null)
        .where('finished_at', '<', cutoffMs)
        .limit(BATCH)
        .execute()
    ).map((row) => row.id);
    if (ids.length === 0) return deleted;
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('callout_attempt').where('event_id', 'in', ids).execute();
      await trx.deleteFrom('callout_person').where('event_id', 'in', ids).execute();
      await trx
        .deleteFrom('callout_event')
        .where('id', 'in', ids)
        .where('status', 'in', FINAL_EVENT)
        .execute();
    });
    deleted += ids.length;
    if (ids.length < BATCH) return deleted;
  }
}

/** `callout-<eventid>-<language>.wav` (the Asterisk provider's file of one escalation). */
const CALLOUT_FILE = /^callout-([0-9A-HJKMNP-TV-Z]{26})-[0-9A-Za-z-]{1,16}\.wav$/;

/**
 * Deletes the converted message of each escalation (`callout-<eventid>-<language>.wav` in
 * `mediaDir`) whose escalation finished before `cutoffMs`, or is not in the database (any
 * more) and whose file is older than `cutoffMs`. Files of pending escalations and the
 * shared confirmation files stay.
 * @returns how many files were deleted.
 */
export async function pruneCalloutMedia(
  database: Database,
  mediaDir: string,
  cutoffMs: number,
): Promise<number> {
  const found = await matchingFiles(mediaDir, CALLOUT_FILE);
  if (found.length === 0) return 0;
  const db = calloutDb(database);
  const ids = [...new Set(found.map((f) => f.match[1] as string))];
  const events = new Map<string, { status: number; finished_at: number | null }>();
  for (let i = 0; i < ids.length; i += BATCH) {
    for (const row of await db
      .selectFrom('callout_event')
      .select(['id', 'status', 'finished_at'])
      .where('id', 'in', ids.slice(i, i + BATCH))
      .execute()) {
      events.set(row.id, {
        status: Number(row.status),
        finished_at: row.finished_at === null ? null : Number(row.finished_at),
      });
    }
  }
  let deleted = 0;
  for (const f of found) {
    const event = events.get(f.match[1] as string);
    const old =
      event === undefined
        ? f.mtimeMs < cutoffMs
        : FINAL_EVENT.includes(event.status) &&
          event.finished_at !== null &&
          event.finished_at < cutoffMs;
    if (!old) continue;
    await unlink(f.file).catch(() => undefined);
    deleted++;
  }
  return deleted;
}

/** The callout feature's retention rule (history counted as `escalations`). */
export const calloutRetention: RetentionRule = {
  name: 'callout',
  historyLabel: 'escalations',
  pruneHistory: pruneCalloutHistory,
  pruneMedia: (database, config, cutoffMs) =>
    pruneCalloutMedia(database, path.resolve(config.callout.mediaDir), cutoffMs),
  cacheDirs: (config) => [path.join(path.resolve(config.callout.mediaDir), 'cache')],
};
