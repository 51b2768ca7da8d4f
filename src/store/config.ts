/**
 * The `database`, `redis` and `retention` sections: where state lives and what serve deletes.
 * Schema and defaults are defined here, once; `src/config/schema.ts` composes the sections.
 *
 * @module
 */
import type { Static } from 'typebox';
import { formatted, int, section, str } from '../config/section.ts';

/** `database`: where durable state lives. */
export const DatabaseSection = section(
  {
    url: formatted(
      'switchboard-database-url',
      './data/switchboard.db',
      'SQLite file path (or sqlite:PATH, :memory:) or postgres://user:pass@host/db',
    ),
    poolSize: int(10, 1, 1000, 'PostgreSQL pool size'),
    schema: str('', 'PostgreSQL schema for every table (created if missing); empty: public'),
    busyTimeoutMs: int(5_000, 0, 600_000, 'SQLite busy timeout'),
    connectTimeoutMs: int(
      5_000,
      100,
      600_000,
      'PostgreSQL: longest wait for a connection (a new one, or a free one of the pool); then the database counts as unreachable',
    ),
    retryAfterS: int(
      5,
      1,
      3_600,
      'Retry-After of the 503 answered while the database is unreachable',
    ),
  },
  'database',
);

/** `redis`: optional; coordinates several processes (push responses). */
export const RedisSection = section(
  {
    url: formatted(
      'switchboard-redis-url',
      '',
      'redis://[:pass@]host:6379/0; empty = not used',
      true,
    ),
    keyPrefix: str('switchboard:', 'prefix of every key and channel'),
  },
  'Redis',
);

/** `retention`: what serve deletes, and when (`src/serve/retention.ts`). */
export const RetentionSection = section(
  {
    historyDays: int(
      30,
      0,
      36_500,
      'days finished alert-call escalations (with their people and calls) and finished announcements are kept; 0 = forever. Pending ones are never deleted',
    ),
    mediaGraceMinutes: int(
      60,
      0,
      100_000,
      'converted audio (one WAV per escalation, per announcement) is deleted this long after the escalation or announcement finished',
    ),
    ttsCacheDays: int(
      30,
      0,
      36_500,
      'speech cache entries not used for this many days are deleted; 0 = no age limit',
    ),
    ttsCacheMaxMB: int(
      256,
      0,
      1_048_576,
      'largest size of each speech cache directory, in MB (1,048,576 bytes); the least recently used entries go first; 0 = no cap',
    ),
    intervalMinutes: int(60, 1, 10_080, 'how often serve applies these rules (also once at start)'),
  },
  'what serve deletes, and when',
);

/** The `retention` section. */
export type RetentionConfig = Static<typeof RetentionSection>;
