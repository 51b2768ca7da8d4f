/**
 * Retention of the announce feature (issue 14 §4; run by the `retention` plugin,
 * src/serve/retention.ts): finished announcements after `retention.historyDays`, their
 * converted audio after `retention.mediaGraceMinutes`, the speech cache under
 * `announce.soundsDir/.tts-cache`. Registered by the announce plugin with
 * `app.store.addRetention`.
 *
 * @module
 */
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { Database } from '../store/db.ts';
import type { RetentionRule } from '../store/retention.ts';
import { matchingFiles } from '../util/files.ts';
import type { AnnounceTables } from './repository.ts';

/** Rows deleted per statement (PostgreSQL takes at most 65,535 parameters). */
const BATCH = 1000;

/** Announcement statuses that are final. */
const FINAL_MESSAGE = ['played', 'failed', 'spooled', 'cancelled'];

/**
 * Deletes finished announcements (`played`, `failed`, `spooled`, `cancelled`) whose
 * `finished_at` is before `cutoffMs`, and their audio files if still there. Pending ones
 * (`scheduled`, `playing`) are never touched.
 * @returns how many announcements were deleted.
 */
export async function pruneAnnounceHistory(database: Database, cutoffMs: number): Promise<number> {
  const db = database.db as Kysely<AnnounceTables>;
  let deleted = 0;
  for (;;) {
    const rows = await db
      .selectFrom('announce_message')
      .select(['id', 'audio_path'])
      .where('status', 'in', FINAL_MESSAGE as never[])
      .where('finished_at', 'is not', null)
      .where('finished_at', '<', cutoffMs)
      .limit(BATCH)
      .execute();
    if (rows.length === 0) return deleted;
    await db
      .deleteFrom('announce_message')
      .where(
        'id',
        'in',
        rows.map((r) => Number(r.id)),
      )
      .where('status', 'in', FINAL_MESSAGE as never[])
      .execute();
    for (const row of rows) await unlink(row.audio_path).catch(() => undefined);
    deleted += rows.length;
    if (rows.length < BATCH) return deleted;
  }
}

/** `announce-<ms>-<hex>.wav` (the announce module's converted files). */
const ANNOUNCE_FILE = /^announce-\d+-[0-9a-f]+\.wav$/;

/**
 * Deletes the converted audio of announcements (`announce-*.wav` in `soundsDir`) that
 * finished before `cutoffMs` (a `spooled` one: its call file may have been retried by
 * Asterisk until then), or that no message refers to and whose file is older than
 * `cutoffMs`. Files of pending announcements stay.
 * @returns how many files were deleted.
 */
export async function pruneAnnounceMedia(
  database: Database,
  soundsDir: string,
  cutoffMs: number,
): Promise<number> {
  const found = await matchingFiles(soundsDir, ANNOUNCE_FILE);
  if (found.length === 0) return 0;
  const db = database.db as Kysely<AnnounceTables>;
  const rows = new Map<string, { status: string; finished_at: number | null }>();
  const paths = found.map((f) => f.file);
  for (let i = 0; i < paths.length; i += BATCH) {
    for (const row of await db
      .selectFrom('announce_message')
      .select(['audio_path', 'status', 'finished_at'])
      .where('audio_path', 'in', paths.slice(i, i + BATCH))
      .execute()) {
      const previous = rows.get(row.audio_path);
      // a file referred to by a pending message (a copy, a retry) is kept
      if (previous && !FINAL_MESSAGE.includes(previous.status)) continue;
      rows.set(row.audio_path, {
        status: row.status,
        finished_at: row.finished_at === null ? null : Number(row.finished_at),
      });
    }
  }
  let deleted = 0;
  for (const f of found) {
    const row = rows.get(f.file);
    const old =
      row === undefined
        ? f.mtimeMs < cutoffMs
        : FINAL_MESSAGE.includes(row.status) &&
          row.finished_at !== null &&
          row.finished_at < cutoffMs;
    if (!old) continue;
    await unlink(f.file).catch(() => undefined);
    deleted++;
  }
  return deleted;
}

/** The announce feature's retention rule (history counted as `announcements`). */
export const announceRetention: RetentionRule = {
  name: 'announce',
  historyLabel: 'announcements',
  pruneHistory: pruneAnnounceHistory,
  pruneMedia: (database, config, cutoffMs) =>
    pruneAnnounceMedia(database, path.resolve(config.announce.soundsDir), cutoffMs),
  cacheDirs: (config) => [path.join(path.resolve(config.announce.soundsDir), '.tts-cache')],
};
