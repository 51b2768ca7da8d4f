/**
 * The Jenkins watcher (Gong's `xgong-jenkins`, issue 5): polls Jenkins' JSON API, compares
 * each job's state with the previous poll's (kept in the database, table `jenkins_job`) and
 * announces the jobs that have just failed: one sentence per job, all of one poll in ONE
 * announcement (one ringer call), joined with `. ` as `xgong-jenkins` `announce_jobs`.
 *
 * Source: Jenkins remote access API, `GET <jenkins>/api/json?tree=jobs[name,url,color,jobs[...]]`
 * (folders and multibranch projects nest their jobs under `jobs`; a folder has no `color`),
 * HTTP Basic auth with user + API token. `color` is `blue` (success), `red` (failed),
 * `yellow` (unstable), `grey`/`notbuilt`/`disabled`/`aborted`, with `_anime` appended while
 * a build runs.
 *
 * Rules: a job counts as failed when its color without `_anime` is in `failColors`: a job
 * being built counts as the color it carries (`red_anime` = failed, as xgong-jenkins'
 * `^(red|yellow)`: the color is the last build's result, `_anime` only says a new build
 * runs); a job failed now and not failed at the previous poll is announced; with a
 * `recoveryTemplate`, a job failed before and not failed now is announced as recovered (in
 * the same announcement, after the failures). The first poll with an empty state follows
 * `firstPoll`: `record` (default) only records it, `announce` announces every failed job as
 * xgong-jenkins with an empty state file. Outside the window (weekdays / hours) Jenkins is
 * not polled at all, so failures that happened meanwhile are announced when the window
 * opens (as Gong's weekdays-only cron). Jenkins unreachable or answering garbage: retried,
 * logged, nothing announced, state untouched. When the announcement fails, the jobs in it
 * keep their previous state (they are announced at the next poll).
 *
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { JenkinsConfig } from '../config/schema.ts';
import { fetchErrorReason } from '../http/fetch-error.ts';
import { type Database, defineMigrations, type MigrationSet } from '../store/db.ts';
import { Worker } from '../store/worker.ts';
import type { JenkinsMetrics } from './metrics.ts';

/** One job as Jenkins reports it, flattened (`name` is the full path `folder/job`). */
export interface JenkinsJob {
  /** Full name, folders joined with `/`. */
  name: string;
  url: string;
  /** Jenkins' `color` (`blue`, `red`, `yellow_anime`, ...). */
  color: string;
}

/** A row of `jenkins_job`: the state of one job after the last poll. */
export interface JenkinsJobRow {
  name: string;
  color: string;
  /** 1 when failed (color in `failColors`), 0 otherwise. */
  failed: number;
  /** Epoch ms. */
  updated_at: number;
}

interface Tables {
  jenkins_job: JenkinsJobRow;
}

/** Migrations of the jenkins module (table `jenkins_job`). */
export const jenkinsMigrations: MigrationSet = defineMigrations('jenkins', [
  {
    name: 'create_job',
    async up(db) {
      await db.schema
        .createTable('jenkins_job')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('color', 'text', (c) => c.notNull())
        .addColumn('failed', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
]);

/** Jenkins answered something that is not its JSON API (or could not be reached). */
export class JenkinsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'JenkinsError';
  }
}

/** The `tree=` query: jobs with name, url, color, nested four levels (folders, multibranch). */
export const JOBS_TREE =
  'jobs[name,url,color,jobs[name,url,color,jobs[name,url,color,jobs[name,url,color]]]]';

/**
 * Flattens Jenkins' `{jobs:[...]}` answer: jobs with a `color` are kept (folders are walked).
 * @throws {JenkinsError} when the shape is not Jenkins' (no `jobs` array, a job without a name).
 */
export function flattenJobs(body: unknown, prefix = ''): JenkinsJob[] {
  if (
    typeof body !== 'object' ||
    body === null ||
    !Array.isArray((body as { jobs?: unknown }).jobs)
  ) {
    throw new JenkinsError('Jenkins answer has no "jobs" array');
  }
  const out: JenkinsJob[] = [];
  for (const job of (body as { jobs: unknown[] }).jobs) {
    if (
      typeof job !== 'object' ||
      job === null ||
      typeof (job as { name?: unknown }).name !== 'string'
    ) {
      throw new JenkinsError('Jenkins answer has a job without a name');
    }
    const { name, url, color, jobs } = job as {
      name: string;
      url?: unknown;
      color?: unknown;
      jobs?: unknown;
    };
    const full = prefix === '' ? name : `${prefix}/${name}`;
    if (typeof color === 'string')
      out.push({ name: full, url: typeof url === 'string' ? url : '', color });
    if (Array.isArray(jobs)) out.push(...flattenJobs({ jobs }, full));
  }
  return out;
}

/** Options of {@link fetchJobs}. */
export interface FetchOptions {
  /** Jenkins base URL. */
  url: string;
  user?: string;
  /** API token (Basic auth password). */
  token?: string;
  /** Per-request timeout, ms (default 10000). */
  timeoutMs?: number;
}

/**
 * One poll of `<url>/api/json?tree=...` with Basic auth.
 * @throws {JenkinsError} unreachable, timeout, non-2xx status, not JSON, not Jenkins' shape.
 */
export async function fetchJobs(options: FetchOptions): Promise<JenkinsJob[]> {
  const base = options.url.replace(/\/+$/, '');
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.user || options.token) {
    headers.authorization = `Basic ${Buffer.from(`${options.user ?? ''}:${options.token ?? ''}`).toString('base64')}`;
  }
  let response: Response;
  try {
    response = await fetch(`${base}/api/json?tree=${encodeURIComponent(JOBS_TREE)}`, {
      headers,
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
  } catch (error) {
    throw new JenkinsError(`Jenkins unreachable: ${fetchErrorReason(error)}`, { cause: error });
  }
  const text = await response.text().catch(() => '');
  if (!response.ok) throw new JenkinsError(`Jenkins answered HTTP ${response.status}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new JenkinsError('Jenkins answer is not JSON');
  }
  return flattenJobs(body);
}

/** A job name as read aloud: folders, `-` and `_` become spaces. */
export function spokenName(name: string): string {
  return name
    .replace(/[/_-]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * Joins the sentences of one poll into one announcement, as xgong-jenkins (`". ".join`):
 * `a est cassé` + `b est cassé` → `a est cassé. b est cassé`; a sentence already ending with
 * `.`, `!` or `?` (Switchboard's default template) is followed by a space only, so the
 * speech engine never reads `..`.
 */
export function joinSentences(sentences: readonly string[]): string {
  let out = '';
  for (const raw of sentences) {
    const sentence = raw.trim();
    if (sentence === '') continue;
    if (out === '') out = sentence;
    else out += /[.!?]$/.test(out) ? ` ${sentence}` : `. ${sentence}`;
  }
  return out;
}

/** Jenkins' color without the "build in progress" suffix (`red_anime` → `red`). */
export function baseColor(color: string): string {
  return color.replace(/_anime$/, '');
}

/** Fills `{job}` `{url}` `{color}` of a template. */
export function sentence(template: string, job: JenkinsJob): string {
  return template
    .replaceAll('{job}', spokenName(job.name))
    .replaceAll('{url}', job.url)
    .replaceAll('{color}', baseColor(job.color));
}

/** True when `at` is inside the window (empty weekdays = every day; hours local, [from, to)). */
export function inWindow(window: JenkinsConfig['window'], at = new Date()): boolean {
  if (window.weekdays.length > 0 && !window.weekdays.includes(at.getDay())) return false;
  const hour = at.getHours();
  return hour >= window.fromHour && hour < window.toHour;
}

/** Says one sentence on the ringer (the announce service, or Gong's HTTP API). */
export type Announcer = (text: string) => Promise<void>;

/** What one poll did. */
export interface PollResult {
  /** `ok`, `outside_window`, `jenkins_error`. */
  status: 'ok' | 'outside_window' | 'jenkins_error';
  /** The announcement made (at most one per poll: every sentence joined), or empty. */
  announced: string[];
  /** Jobs in it (full names): newly failed, then recovered. */
  jobsAnnounced?: string[];
  /** Jobs seen. */
  jobs: number;
  /** True when this poll only recorded the first state. */
  baseline?: boolean;
  error?: string;
}

/** Options of {@link JenkinsWatcher}. */
export interface WatcherOptions {
  config: JenkinsConfig;
  database: Database;
  announce: Announcer;
  logger: Logger;
  /** Attempts per poll when Jenkins fails (default 3), and the pause between them (ms, default 1000). */
  attempts?: number;
  retryDelayMs?: number;
  /** Per-request timeout, ms (default 10000). */
  timeoutMs?: number;
  /** The clock (tests). */
  now?: () => Date;
  /** Prometheus series (`jenkinsMetrics(registry)`); none = not counted. */
  metrics?: JenkinsMetrics;
}

/** Polls Jenkins and announces newly failed (and, optionally, recovered) jobs. */
export class JenkinsWatcher {
  readonly #o: WatcherOptions;
  readonly #db: Kysely<Tables>;
  readonly #worker: Worker;

  constructor(options: WatcherOptions) {
    this.#o = options;
    this.#db = options.database.db as Kysely<Tables>;
    // The shared worker loop (store/worker.ts): one poll per round, every intervalS.
    this.#worker = new Worker({
      name: 'jenkins',
      intervalMs: options.config.intervalS * 1000,
      round: async () => {
        await this.poll();
        return undefined;
      },
      onError: (error) => this.#o.logger.error({ err: error }, 'jenkins: poll crashed'),
    });
  }

  /** The stored state, by job name. */
  async state(): Promise<Map<string, JenkinsJobRow>> {
    const rows = await this.#db.selectFrom('jenkins_job').selectAll().execute();
    return new Map(
      rows.map((r) => [
        r.name,
        { ...r, failed: Number(r.failed), updated_at: Number(r.updated_at) },
      ]),
    );
  }

  /** One poll (see the module comment). Never throws for Jenkins or announcement failures. */
  async poll(): Promise<PollResult> {
    const { config, logger } = this.#o;
    const now = this.#o.now?.() ?? new Date();
    if (!inWindow(config.window, now)) return { status: 'outside_window', announced: [], jobs: 0 };
    const attempts = this.#o.attempts ?? 3;
    let jobs: JenkinsJob[] | undefined;
    let lastError: Error | undefined;
    for (let i = 0; i < attempts && jobs === undefined; i += 1) {
      if (i > 0) await sleep(this.#o.retryDelayMs ?? 1000);
      try {
        jobs = await fetchJobs({
          url: config.url,
          user: config.user,
          token: config.token,
          ...(this.#o.timeoutMs === undefined ? {} : { timeoutMs: this.#o.timeoutMs }),
        });
      } catch (error) {
        lastError = error as Error;
        this.#o.metrics?.pollFailures.inc();
        logger.warn({ attempt: i + 1, err: lastError.message }, 'jenkins: poll failed');
      }
    }
    this.#o.metrics?.polls.inc({ result: jobs === undefined ? 'jenkins_error' : 'ok' });
    if (jobs === undefined) {
      logger.error(
        { err: lastError?.message },
        'jenkins: giving up this poll; state kept, nothing announced',
      );
      return {
        status: 'jenkins_error',
        announced: [],
        jobs: 0,
        error: lastError?.message ?? 'unknown',
      };
    }
    const previous = await this.state();
    const baseline = previous.size === 0;
    const announceBaseline = baseline && config.firstPoll === 'announce';
    const failColors = new Set(config.failColors);
    const failures: { job: JenkinsJob; text: string }[] = [];
    const recoveries: { job: JenkinsJob; text: string }[] = [];
    const updates: JenkinsJobRow[] = [];
    for (const job of jobs) {
      // A build in progress carries the last result's color (xgong-jenkins: ^(red|yellow)).
      const failed = failColors.has(baseColor(job.color)) ? 1 : 0;
      const before = previous.get(job.name);
      if ((!baseline || announceBaseline) && failed === 1 && before?.failed !== 1) {
        failures.push({ job, text: sentence(config.template, job) });
        this.#o.metrics?.jobsFailed.inc();
        logger.info({ job: job.name, color: job.color }, 'jenkins: job newly failed');
      } else if (
        !baseline &&
        failed === 0 &&
        before?.failed === 1 &&
        config.recoveryTemplate !== ''
      ) {
        recoveries.push({ job, text: sentence(config.recoveryTemplate, job) });
      }
      if (before?.color !== job.color || before.failed !== failed) {
        updates.push({ name: job.name, color: job.color, failed, updated_at: now.getTime() });
      }
    }
    const included = [...failures, ...recoveries];
    const announced: string[] = [];
    let pending = updates;
    if (included.length > 0) {
      const text = joinSentences(included.map((i) => i.text));
      const names = included.map((i) => i.job.name);
      try {
        await this.#o.announce(text);
        announced.push(text);
        logger.info({ jobs: names }, 'jenkins: announced');
      } catch (error) {
        this.#o.metrics?.announcementsFailed.inc();
        logger.error(
          { jobs: names, err: (error as Error).message },
          'jenkins: announcement failed; retried next poll',
        );
        // Keep these jobs' previous state: they are announced at the next poll.
        const held = new Set(names);
        pending = updates.filter((row) => !held.has(row.name));
      }
    }
    for (const row of pending) {
      await this.#db
        .insertInto('jenkins_job')
        .values(row)
        .onConflict((oc) =>
          oc
            .column('name')
            .doUpdateSet({ color: row.color, failed: row.failed, updated_at: row.updated_at }),
        )
        .execute();
    }
    return {
      status: 'ok',
      announced,
      jobs: jobs.length,
      ...(announced.length > 0 ? { jobsAnnounced: included.map((i) => i.job.name) } : {}),
      ...(baseline ? { baseline: true } : {}),
    };
  }

  /** Polls now, then every `intervalS`, until {@link stop}. */
  start(): void {
    this.#worker.start();
  }

  /** Stops polling (waits for a poll in progress). */
  async stop(): Promise<void> {
    await this.#worker.stop();
  }
}
