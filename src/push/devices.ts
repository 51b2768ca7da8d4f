/**
 * The device store: push tokens of the apps, in the shared database (SQLite or PostgreSQL
 * through Kysely), so every `serve` process sees the same devices.
 *
 * Table `push_device` (epoch-ms timestamps, text ids, see `src/store/db.ts`). A token is
 * unique per platform and app. Two ways to register (`push.devicesPerAccount`):
 *
 * - `one` (default, the original middleware: its device table is keyed by `sip_user_id`): a
 *   SIP account has one device; registering another token, app or platform for it replaces
 *   that device (updated); a token known under another SIP account moves to this one
 *   (created, for this account).
 * - `several`: a SIP account has every device registered for it; registering a known token
 *   updates that device (and moves it here when it was another account's).
 */
import { type Kysely, sql } from 'kysely';
import { type Database, defineMigrations, type MigrationSet, newId } from '../store/db.ts';

/** Push platform of a device: `apns` (`/api/apns-device/`) or `fcm` (`/api/gcm-device/`, `/api/android-device/`). */
export type Platform = 'apns' | 'fcm';

/** Row of `push_device`. */
export interface DeviceTable {
  id: string;
  platform: Platform;
  /** The SIP account id (9 digits), as text. */
  sip_user_id: string;
  /** Push token (APNs device token / FCM registration token); a secret: never logged. */
  token: string;
  /** App identifier, e.g. `com.voipgrid.vialer`. */
  app: string;
  name: string;
  os_version: string;
  client_version: string;
  /** 1 = APNs sandbox device. */
  sandbox: number;
  created_at: number;
  updated_at: number;
  /** Last registration or check-in, epoch ms. */
  last_seen_at: number;
}

/** Tables of the push module. */
export interface PushTables {
  push_device: DeviceTable;
}

/** A device as the rest of the module sees it. */
export interface Device {
  id: string;
  platform: Platform;
  sipUserId: string;
  token: string;
  app: string;
  name: string;
  osVersion: string;
  clientVersion: string;
  sandbox: boolean;
  createdAt: number;
  updatedAt: number;
  lastSeenAt: number;
}

/** What `POST /api/*-device/` provides. */
export interface DeviceRegistration {
  platform: Platform;
  sipUserId: string;
  token: string;
  app: string;
  name?: string;
  osVersion?: string;
  clientVersion?: string;
  sandbox?: boolean;
}

/** The push module's migrations (module `push`). */
export const pushMigrations: MigrationSet = defineMigrations('push', [
  {
    name: 'create_device',
    async up(db) {
      await db.schema
        .createTable('push_device')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('platform', 'text', (c) => c.notNull())
        .addColumn('sip_user_id', 'text', (c) => c.notNull())
        .addColumn('token', 'text', (c) => c.notNull())
        .addColumn('app', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('os_version', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('client_version', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('sandbox', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('push_device_token')
        .on('push_device')
        .columns(['platform', 'app', 'token'])
        .unique()
        .execute();
      await db.schema
        .createIndex('push_device_sip_user')
        .on('push_device')
        .columns(['sip_user_id'])
        .execute();
    },
  },
]);

function toDevice(row: DeviceTable): Device {
  return {
    id: row.id,
    platform: row.platform,
    sipUserId: row.sip_user_id,
    token: row.token,
    app: row.app,
    name: row.name,
    osVersion: row.os_version,
    clientVersion: row.client_version,
    sandbox: Number(row.sandbox) === 1,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    lastSeenAt: Number(row.last_seen_at),
  };
}

/** How many devices a SIP account has (`push.devicesPerAccount`). */
export type DevicesPerAccount = 'one' | 'several';

/** Device persistence; every method may throw the database's error (store unreachable). */
export interface DeviceStore {
  /**
   * Registers a device as {@link DevicesPerAccount} says (see the module comment).
   * @returns the device and whether it was created for this SIP account (201) rather than
   *   updated (200).
   */
  register(registration: DeviceRegistration): Promise<{ device: Device; created: boolean }>;
  /** Every device of a SIP account, oldest first. */
  listBySipUser(sipUserId: string): Promise<Device[]>;
  /**
   * Removes the device (platform, app, token) of `sipUserId`.
   * @returns true when a row was removed.
   */
  unregister(platform: Platform, sipUserId: string, token: string, app: string): Promise<boolean>;
  /** Removes a device by id (token rejected by the push service). @returns true when removed. */
  remove(id: string): Promise<boolean>;
  /**
   * Marks the devices of `sipUserId` (all, or only those with `token` and/or `app`) as seen now.
   * @returns how many devices were updated.
   */
  checkIn(sipUserId: string, token?: string, app?: string): Promise<number>;
}

/** Advisory lock id (PostgreSQL) serializing registrations across processes. */
const REGISTER_LOCK = 745_320_002;

/**
 * A {@link DeviceStore} on the shared database (run {@link pushMigrations} first).
 * @param options.devicesPerAccount `one` (default) or `several`.
 */
export function createDeviceStore(
  database: Database,
  options: { devicesPerAccount?: DevicesPerAccount } = {},
): DeviceStore {
  const db = database.db as unknown as Kysely<PushTables>;
  const mode = options.devicesPerAccount ?? 'one';
  return {
    async register(r) {
      const now = Date.now();
      const values = {
        platform: r.platform,
        app: r.app,
        token: r.token,
        sip_user_id: r.sipUserId,
        name: r.name ?? '',
        os_version: r.osVersion ?? '',
        client_version: r.clientVersion ?? '',
        sandbox: r.sandbox ? 1 : 0,
        updated_at: now,
        last_seen_at: now,
      };
      // One registration at a time (a token moving between accounts touches two of them);
      // SQLite serializes writers by itself.
      return db.transaction().execute(async (trx) => {
        if (database.dialect === 'postgres') {
          await sql`select pg_advisory_xact_lock(${sql.lit(REGISTER_LOCK)})`.execute(trx);
        }
        let keep: DeviceTable | undefined;
        if (mode === 'one') {
          keep = await trx
            .selectFrom('push_device')
            .selectAll()
            .where('sip_user_id', '=', r.sipUserId)
            .orderBy('updated_at', 'desc')
            .orderBy('id', 'desc')
            .executeTakeFirst();
          // The token leaves any other account; the account keeps one device.
          await trx
            .deleteFrom('push_device')
            .where('platform', '=', r.platform)
            .where('app', '=', r.app)
            .where('token', '=', r.token)
            .where('sip_user_id', '<>', r.sipUserId)
            .execute();
          if (keep) {
            await trx
              .deleteFrom('push_device')
              .where('sip_user_id', '=', r.sipUserId)
              .where('id', '<>', keep.id)
              .execute();
          }
        } else {
          keep = await trx
            .selectFrom('push_device')
            .selectAll()
            .where('platform', '=', r.platform)
            .where('app', '=', r.app)
            .where('token', '=', r.token)
            .executeTakeFirst();
        }
        if (keep) {
          const row = await trx
            .updateTable('push_device')
            .set(values)
            .where('id', '=', keep.id)
            .returningAll()
            .executeTakeFirstOrThrow();
          return { device: toDevice(row), created: keep.sip_user_id !== r.sipUserId };
        }
        const row = await trx
          .insertInto('push_device')
          .values({ id: newId(now), created_at: now, ...values })
          .returningAll()
          .executeTakeFirstOrThrow();
        return { device: toDevice(row), created: true };
      });
    },
    async listBySipUser(sipUserId) {
      const rows = await db
        .selectFrom('push_device')
        .selectAll()
        .where('sip_user_id', '=', sipUserId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(toDevice);
    },
    async unregister(platform, sipUserId, token, app) {
      const result = await db
        .deleteFrom('push_device')
        .where('platform', '=', platform)
        .where('sip_user_id', '=', sipUserId)
        .where('token', '=', token)
        .where('app', '=', app)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async remove(id) {
      const result = await db.deleteFrom('push_device').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async checkIn(sipUserId, token, app) {
      let query = db
        .updateTable('push_device')
        .set({ last_seen_at: Date.now() })
        .where('sip_user_id', '=', sipUserId);
      if (token !== undefined) query = query.where('token', '=', token);
      if (app !== undefined) query = query.where('app', '=', app);
      const result = await query.executeTakeFirst();
      return Number(result.numUpdatedRows);
    },
  };
}
