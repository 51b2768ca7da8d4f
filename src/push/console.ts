/**
 * The push devices as the live console shows them (`GET /api/push`, docs/console.md): push's
 * source for the console, decorated on the root instance as `consolePushDevices` by the push
 * plugin when `push.enabled`. Counts per platform and app, never a token. Its shape is the
 * console's read model (`PushDeviceSource` of src/console/sources.ts, matched structurally:
 * push does not import the console; `test/console/sources.test.ts` checks that the two
 * agree). Source: the `push_device` table. The wake-ups reach the console by the bus
 * (`push.wake.answered`, data a `WakeRecord`).
 *
 * @module
 */
import type { Kysely } from 'kysely';
import type { App } from '../http/server.ts';
import type { Database } from '../store/db.ts';
import type { PushTables } from './devices.ts';

/** Push's device source for the console, reading `database`. */
export function pushDeviceSource(database: Database) {
  const db = database.db as unknown as Kysely<PushTables>;
  return {
    /** Devices per platform and app, by platform then app. */
    async counts(): Promise<{ platform: string; app: string; count: number }[]> {
      const rows = await db
        .selectFrom('push_device')
        .select(['platform', 'app', (eb) => eb.fn.countAll<number | string>().as('count')])
        .groupBy(['platform', 'app'])
        .orderBy('platform')
        .orderBy('app')
        .execute();
      return rows.map((d) => ({ platform: d.platform, app: d.app, count: Number(d.count) }));
    },
  };
}

/** Provides {@link pushDeviceSource} to the console (decorator `consolePushDevices`). */
export function provideConsoleSource(app: App, database: Database): void {
  if (!app.hasDecorator('consolePushDevices')) {
    app.decorate('consolePushDevices', pushDeviceSource(database));
  }
}
