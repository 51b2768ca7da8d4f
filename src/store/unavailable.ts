/**
 * Which driver errors mean "the database cannot be reached now" ({@link isUnavailableError})
 * and the error every query of a `Database` throws then ({@link DatabaseUnavailableError}).
 * Re-exported by `db.ts`.
 *
 * @module
 */

/**
 * The database could not be reached (PostgreSQL: no connection, connection lost, server
 * shutting down or out of resources; SQLite: the file is locked by another process for longer
 * than `busy_timeout`, the disk is full, an I/O error): the statement was not executed, or
 * its transaction was rolled back, and may succeed later. Thrown by every query of a
 * {@link Database} in place of the driver's error (kept as `cause`); the HTTP layer answers
 * it 503 with `Retry-After` (`src/http/errors.ts`). Constraint violations and bad statements
 * keep their own errors: retrying them cannot help.
 */
export class DatabaseUnavailableError extends Error {
  /** What a client should wait before retrying, in seconds (`Retry-After`). */
  readonly retryAfterS: number;
  /** The driver's error code (`ECONNREFUSED`, `57P01`, `SQLITE_BUSY`, ...) or error name. */
  readonly reason: string;
  constructor(cause: unknown, retryAfterS = 5) {
    const reason = errorCode(cause);
    super(`database unavailable (${reason})`, { cause });
    this.name = 'DatabaseUnavailableError';
    this.retryAfterS = retryAfterS;
    this.reason = reason;
  }
}

/** The driver's error code (`ECONNREFUSED`, `57P01`, `SQLITE_BUSY`, ...), else its name. */
export function errorCode(error: unknown): string {
  const e = error as { code?: unknown; name?: unknown } | undefined;
  if (typeof e?.code === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(e.code)) return e.code;
  if (typeof e?.name === 'string' && e.name !== 'Error') return e.name;
  return 'connection error';
}

/** Network errors of node:net / dns, as `code`. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLite result codes meaning "not now" (https://www.sqlite.org/rescode.html): the lock is
 * held elsewhere (`BUSY`, `LOCKED`), the disk or file is unusable (`IOERR`, `FULL`,
 * `CANTOPEN`, `READONLY`, `PROTOCOL`). Extended codes (`SQLITE_BUSY_SNAPSHOT`, ...) count
 * with their primary code.
 */
const SQLITE_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|PROTOCOL)(_|$)/;

/**
 * PostgreSQL SQLSTATE classes meaning "not now" (https://www.postgresql.org/docs/current/errcodes-appendix.html):
 * 08 connection exception, 53 insufficient resources, 57 operator intervention (admin
 * shutdown, cannot connect now, statement timeout), 58 system error. Class 23 (constraint
 * violation), 22 (data exception) and 42 (syntax, undefined table) are not retryable.
 */
const PG_UNAVAILABLE = /^(08|53|57|58)[0-9A-Z]{3}$/;

/** Messages of `pg` / `pg-pool` for a lost or impossible connection (they carry no code). */
const PG_CONNECTION_MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /is not queryable/i,
  /connection (was )?(closed|ended)/i,
];

/**
 * Whether `error` means the database cannot be reached now (see
 * {@link DatabaseUnavailableError}); true for that error itself.
 */
export function isUnavailableError(error: unknown): boolean {
  if (error instanceof DatabaseUnavailableError) return true;
  const e = error as { code?: unknown; message?: unknown } | undefined;
  if (e === null || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  if (NETWORK_CODES.has(code) || SQLITE_UNAVAILABLE.test(code) || PG_UNAVAILABLE.test(code)) {
    return true;
  }
  if (code !== '') return false;
  const message = typeof e.message === 'string' ? e.message : '';
  return PG_CONNECTION_MESSAGES.some((re) => re.test(message));
}
