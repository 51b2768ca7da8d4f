/**
 * The announcements as the live console shows them (`GET /api/announcements/schedule`,
 * `GET /api/announcements/history`, docs/console.md): announce's source for the console,
 * decorated on the root instance as `consoleAnnouncements` by the announce plugin. Its shape
 * is the console's read model (`AnnouncementSource` of src/console/sources.ts, matched
 * structurally: announce does not import the console; `test/console/sources.test.ts` checks
 * that the two agree). Source: the `announce_message` table. Times are epoch ms.
 *
 * @module
 */
import type { Kysely } from 'kysely';
import type { App } from '../http/server.ts';
import type { Database } from '../store/db.ts';
import type { AnnounceTables } from './repository.ts';

/** One announcement: its text, target, state and computed start and end (epoch ms). */
export interface ConsoleAnnouncement {
  id: string;
  description: string;
  extension: string;
  kind: string;
  text: string;
  language: string;
  status: string;
  outcome: string;
  attempts: number;
  requestedMs: number;
  startMs: number;
  durationMs: number;
  endMs: number;
  finishedMs: number | null;
}

function view(m: AnnounceTables['announce_message']): ConsoleAnnouncement {
  return {
    id: m.public_id,
    description: m.description,
    extension: m.extension,
    kind: m.kind,
    text: m.text,
    language: m.language,
    status: m.status,
    outcome: m.outcome,
    attempts: Number(m.attempts),
    requestedMs: Number(m.requested_at),
    startMs: Number(m.due_at),
    durationMs: Number(m.duration_ms),
    endMs: Number(m.due_at) + Number(m.duration_ms),
    finishedMs: m.finished_at === null ? null : Number(m.finished_at),
  };
}

/** Announce's announcement source for the console, reading `database`. */
export function announcementSource(database: Database) {
  const db = database.db as unknown as Kysely<AnnounceTables>;
  return {
    /** Scheduled and playing, by effective start (at most 1,000). */
    async schedule(): Promise<ConsoleAnnouncement[]> {
      const rows = await db
        .selectFrom('announce_message')
        .selectAll()
        .where('status', 'in', ['scheduled', 'playing'])
        .orderBy('due_at')
        .orderBy('id')
        .limit(1000)
        .execute();
      return rows.map(view);
    },
    /** Played, failed, spooled or cancelled: a page, newest first. */
    async history(page: {
      limit: number;
      offset: number;
    }): Promise<{ total: number; items: ConsoleAnnouncement[] }> {
      const base = db
        .selectFrom('announce_message')
        .where('status', 'not in', ['scheduled', 'playing']);
      const counted = await base
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .executeTakeFirst();
      const rows = await base
        .selectAll()
        .orderBy('finished_at', 'desc')
        .orderBy('id', 'desc')
        .limit(page.limit)
        .offset(page.offset)
        .execute();
      return { total: Number(counted?.n ?? 0), items: rows.map(view) };
    },
  };
}

/** Provides {@link announcementSource} to the console (decorator `consoleAnnouncements`). */
export function provideConsoleSource(app: App, database: Database): void {
  if (!app.hasDecorator('consoleAnnouncements')) {
    app.decorate('consoleAnnouncements', announcementSource(database));
  }
}
