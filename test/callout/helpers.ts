import { join } from 'node:path';
import { sql } from 'kysely';
import type { BusMessage } from '../../src/bus/bus.ts';
import { calloutServiceModule } from '../../src/callout/index.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import type { ServiceModule } from '../../src/serve/module.ts';
import { createService, type Service } from '../../src/serve/service.ts';
import type { SimDialplan, SimDialplans, SimUserEvent } from '../../src/sim/script.ts';
import { openDatabase } from '../../src/store/db.ts';
import { tempDir } from '../support/net.ts';

export const PG_URL =
  process.env.SWITCHBOARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export type Kind = 'sqlite' | 'postgres';

export { tempDir };

/** A database location for a test: a fresh SQLite file or a fresh PostgreSQL schema. */
export interface TestDb {
  kind: Kind;
  url: string;
  schema?: string;
  drop(): Promise<void>;
}

let counter = 0;
export function testDb(kind: Kind): TestDb {
  counter += 1;
  if (kind === 'sqlite') {
    return { kind, url: join(tempDir(), 'callout.db'), drop: async () => {} };
  }
  const schema = `callout_${process.pid}_${Date.now().toString(36)}_${counter}`;
  return {
    kind,
    url: PG_URL,
    schema,
    async drop() {
      const db = await openDatabase(PG_URL);
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(db.db);
      await db.close();
    },
  };
}

/** A config: HTTP on a free port, the given database, fast worker, silent logs. */
export function calloutConfig(db: TestDb, yaml = '', ami?: string): Config {
  const config = loadConfig({
    text: yaml,
    env: {},
    overrides: {
      listen: '127.0.0.1:0',
      database: db.url,
      ...(ami ? { ami: [ami] } : {}),
    },
  });
  config.log.level = 'silent';
  config.http.docs = true;
  config.callout.pollIntervalMs = 20;
  config.callout.timeScale = 0.01;
  config.callout.mediaDir = join(tempDir(), 'media');
  config.callout.dryRun.delayMs = 20;
  for (const server of config.ami.servers) {
    server.reconnectMinMs = 20;
    server.reconnectMaxMs = 100;
    server.pingIntervalMs = 0;
  }
  return config;
}

/** Starts `serve` with this config; collects `callout.*` bus messages. */
export async function startServe(
  config: Config,
  db: TestDb,
): Promise<{
  service: Service;
  url: string;
  bus: Array<[string, BusMessage]>;
  callout: ReturnType<typeof calloutServiceModule>;
}> {
  const callout = calloutServiceModule();
  const service = createService({
    config,
    modules: [callout as unknown as ServiceModule],
    ...(db.schema ? { database: { schema: db.schema } } : {}),
  });
  const { url } = await service.start();
  const bus: Array<[string, BusMessage]> = [];
  service.context?.bus.subscribe('callout.#', (message, key) => {
    bus.push([key, message]);
  });
  return { service, url, bus, callout };
}

/** One entry of the history's `result`. */
export interface PersonHistory {
  ghid: string;
  order: string;
  telno: string;
  name: string;
  numofcall: string;
  latestcall: string;
  status: string;
}

/** The history object (first element of the GET answer). */
export interface History {
  success: string;
  eventstatus: string;
  testflg: string;
  provider: string;
  type: string;
  headmsg: string;
  announce: string;
  footmsg: string;
  result: PersonHistory[];
  [key: string]: unknown;
}

export async function getHistory(url: string, eventid: string): Promise<History> {
  const response = await fetch(`${url}/api/v1/call?eventid=${eventid}`);
  const body = (await response.json()) as History[];
  if (response.status !== 200 || !body[0]) throw new Error(`history ${response.status}`);
  return body[0];
}

/** Polls until `done(history)` holds; rejects after `timeoutMs`. */
export async function waitHistory(
  url: string,
  eventid: string,
  done: (h: History) => boolean,
  timeoutMs = 15_000,
): Promise<History> {
  const deadline = Date.now() + timeoutMs;
  let last: History | undefined;
  while (Date.now() < deadline) {
    last = await getHistory(url, eventid);
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timeout waiting for history: ${JSON.stringify(last)}`);
}

export { until } from '../support/until.ts';

/** The seed's sample request fields, in the seed's order (testflg given). */
export function seedFields(testflg: '0' | '1', calltype = '1'): Array<[string, string]> {
  return [
    ['testflg', testflg],
    ['hostname', 'example.com'],
    ['operator', 'ichiro'],
    ['calltype', calltype],
    ['frequency', '10'],
    ['language', 'ja-jp'],
    ['message', 'Socket timeout after 10 secondsです。'],
    ['headid', '2'],
    ['footid', '1'],
    ['addressee', '1:tarou:810000000000:木村太郎:120'],
    ['addressee', '2:baijyaku:810000000000:中村梅雀:120'],
    ['addressee', '3:kouji:810000000000:加藤浩二:120'],
  ];
}

/**
 * The alert the fault tests send (a monitoring system's "Disk full" on db1, English, in the
 * seed's field order): `addressees` as the seed writes them (`order:userid:telno:name:retry`).
 */
export function alertFields(
  addressees: readonly string[],
  options: { calltype?: '1' | '2'; frequency?: string } = {},
): Array<[string, string]> {
  return [
    ['testflg', '0'],
    ['hostname', 'db1'],
    ['operator', 'zabbix'],
    ['calltype', options.calltype ?? '1'],
    ['frequency', options.frequency ?? '1'],
    ['language', 'en'],
    ['message', 'Disk full'],
    ['headid', '2'],
    ['footid', '1'],
    ...addressees.map((a): [string, string] => ['addressee', a]),
  ];
}

/** POSTs form fields the way `curl -d` does: `a=b&c=d`, values NOT percent-encoded. */
export function postCurlStyle(url: string, fields: Array<[string, string]>) {
  return fetch(`${url}/api/v1/call`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: Buffer.from(fields.map(([k, v]) => `${k}=${v}`).join('&'), 'utf8'),
  });
}

/** A simulated UserEvent with the key and the call id, as the shipped dialplan raises. */
export function calloutUserEvent(name: string): SimUserEvent {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dialplan variables
  return { name, fields: { Digit: '${DIGIT}', CallId: '${SWITCHBOARD_CALL_ID}' } };
}

/**
 * The simulator's dialplan for the `switchboard-callout` context (docs/asterisk/extensions.conf):
 * a Read of the message waiting `readTimeoutMs` for one key, then `SwitchboardDTMF` with
 * `Digit` and `CallId`; `extra` adds options (`validKeys`, `rounds`, ...).
 */
export function calloutDialplan(
  readTimeoutMs: number,
  extra: Partial<SimDialplan> = {},
): SimDialplans {
  return {
    'switchboard-callout': {
      playback: '',
      read: `DIGIT,\${SWITCHBOARD_MESSAGE},1,,1,${Math.max(1, Math.ceil(readTimeoutMs / 1000))}`,
      readTimeoutMs,
      userEvent: calloutUserEvent('SwitchboardDTMF'),
      ...extra,
    },
  };
}
