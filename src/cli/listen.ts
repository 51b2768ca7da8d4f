/**
 * `switchboard listen [BINDING_KEY...]`: prints bus messages as they arrive, one JSON line
 * each, `{"routing_key", "name", "origin_uuid", "data"}` (the same line `/api/events` sends
 * as SSE `data:`), until Ctrl-C. Default binding key `#` (everything).
 *
 * Two sources:
 * - RabbitMQ (default): the broker of `--amqp URL`, else `amqp.url` of the configuration
 *   (`--config`, `SWITCHBOARD_AMQP_URL`), on `amqp.exchange`. An exclusive auto-delete queue
 *   is bound with each key (the seed's consumer example, as a command); with `--queue NAME`
 *   one named durable queue is bound with every key instead, so nothing routed while the
 *   connection or the broker was down is lost.
 * - `--url http://HOST:PORT`: the `/api/events` stream of a running `switchboard serve`,
 *   which works with either bus (the only way to see the in-process bus from another
 *   process). `--token` sends a Bearer token.
 *
 * With neither a broker nor `--url`, there is nothing to listen to (the in-process bus lives
 * inside the serve process): the command says so and exits 1.
 */
import { Command } from 'commander';
import { AmqpBus } from '../bus/amqp.ts';
import { type BusMessage, bindingKeyProblem, type Logger } from '../bus/bus.ts';
import { ConfigError, DEFAULT_CONFIG_FILE, loadConfig } from '../config/load.ts';
import { fetchErrorReason } from '../http/fetch-error.ts';
import { redactUrl } from '../util/redact.ts';
import { CliError, configFailure, EXIT } from './errors.ts';
import { untilSignal } from './signals.ts';

interface ListenFlags {
  config?: string;
  amqp?: string;
  url?: string;
  token?: string;
  queue?: string;
}

function status(message: string): void {
  process.stderr.write(`switchboard: ${message}\n`);
}

/** Where a broker URL points, without its credentials: `host:port/vhost`. */
function brokerAddress(url: string): string {
  try {
    const parsed = new URL(url);
    const vhost = decodeURIComponent(parsed.pathname.slice(1)) || '/';
    return `${parsed.hostname}:${parsed.port || (parsed.protocol === 'amqps:' ? 5671 : 5672)} (vhost ${vhost})`;
  } catch {
    return redactUrl(url);
  }
}

/**
 * One connection attempt before listening, so that what cannot work says so at once: a
 * refused login or virtual host stops with one line (exit 1); an unreachable broker is
 * reported in one line, and `listen` keeps trying (as it does after a broker restart).
 * @throws CliError when the broker refused the login or the virtual host.
 */
async function probeBroker(url: string): Promise<'reachable' | 'unreachable'> {
  const { connect } = await import('amqplib');
  try {
    const connection = await connect(url, { timeout: 5000 });
    await connection.close().catch(() => {});
    return 'reachable';
  } catch (error) {
    const text = (error as Error).message.replace(/\/\/[^@/]*@/g, '//***@');
    const at = brokerAddress(url);
    if (/ACCESS[-_]REFUSED/.test(text)) {
      throw new CliError(
        `RabbitMQ at ${at} refused the login (403 ACCESS-REFUSED): check the user and password of --amqp / amqp.url`,
      );
    }
    if (/Expected ConnectionOpenOk|NOT[-_]ALLOWED/.test(text)) {
      throw new CliError(
        `RabbitMQ at ${at} refused the virtual host: it does not exist, or the user has no permission on it`,
      );
    }
    status(`cannot reach RabbitMQ at ${at}: ${fetchErrorReason(error)}; retrying (Ctrl-C stops)`);
    return 'unreachable';
  }
}

/**
 * The bus's warnings and errors as status lines (one each; the rest is not shown), but not
 * its first failed attempt when the probe has just said the same.
 */
function busLogger(probed: 'reachable' | 'unreachable'): Logger {
  const warn = (fields: object, message?: string): void => {
    if (probed === 'unreachable' && (fields as { attempt?: unknown }).attempt === 1) return;
    statusWithCause(fields, message);
  };
  return { debug() {}, info() {}, warn, error: warn };
}

function statusWithCause(fields: object, message: string | undefined): void {
  const err = (fields as { err?: unknown }).err;
  const cause = typeof err === 'string' ? err.replace(/^Error: /, '') : undefined;
  status(`${message ?? 'bus'}${cause === undefined ? '' : ` (${cause})`}`);
}

async function listenAmqp(
  url: string,
  exchange: string,
  keys: string[],
  queue: string | undefined,
): Promise<void> {
  // Listening for Ctrl-C from the start: none finds the command without a listener.
  const signal = untilSignal();
  const probed = await Promise.race([probeBroker(url), signal.then(() => 'stopped' as const)]);
  if (probed === 'stopped') return;
  const bus = new AmqpBus({
    url,
    exchange,
    connectionName: 'switchboard listen',
    logger: busLogger(probed),
  });
  // Resolves once the line is written: --queue acknowledges the message only then, so a
  // crash before that has RabbitMQ redeliver it (at least once).
  const print = (message: BusMessage, routingKey: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const line = `${JSON.stringify({ routing_key: routingKey, ...message })}\n`;
      process.stdout.write(line, (error) => (error ? reject(error) : resolve()));
    });
  // --queue: one named durable queue that outlives reconnects and broker restarts.
  const subs =
    queue === undefined
      ? keys.map((key) => bus.subscribe(key, print))
      : [bus.subscribeQueue(keys, print, { queue })];
  const ready = Promise.all(subs.map((s) => s.ready)).then(() => 'ready' as const);
  const first = await Promise.race([ready, signal]);
  if (first === 'ready') {
    status(`listening on ${redactUrl(url)} exchange ${exchange}: ${keys.join(' ')}`);
    await signal;
  }
  await bus.close(1000);
}

async function listenSse(base: string, token: string | undefined, keys: string[]): Promise<void> {
  const url = new URL('/api/events', base);
  for (const key of keys) url.searchParams.append('bind', key);
  const abort = new AbortController();
  const signal = untilSignal().then(() => abort.abort());
  let response: Response;
  try {
    response = await fetch(url, {
      headers: {
        accept: 'text/event-stream',
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      signal: abort.signal,
    });
  } catch (error) {
    if (abort.signal.aborted) return;
    throw new CliError(`cannot reach ${redactUrl(base)}: ${fetchErrorReason(error)}`);
  }
  if (!response.ok || response.body === null) {
    const text = await response.text().catch(() => '');
    let reason = text;
    try {
      reason = (JSON.parse(text) as { message?: string }).message ?? text;
    } catch {}
    throw new CliError(`${url.pathname}: HTTP ${response.status}${reason ? `: ${reason}` : ''}`);
  }
  status(`listening on ${redactUrl(base)}/api/events: ${keys.join(' ')}`);
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  try {
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let nl = buffer.indexOf('\n');
      while (nl >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        if (line === '') {
          if (data.length > 0) process.stdout.write(`${data.join('\n')}\n`);
          data = [];
        } else if (line.startsWith('data:')) {
          data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
        }
        nl = buffer.indexOf('\n');
      }
    }
  } catch (error) {
    if (!abort.signal.aborted) throw error;
  }
  if (!abort.signal.aborted) throw new CliError('the event stream ended (server stopped?)');
  await signal;
}

/** The `listen` command. */
export function listenCommand(): Command {
  return new Command('listen')
    .description('print bus messages as they arrive, one JSON line each (until Ctrl-C)')
    .argument('[binding-keys...]', "binding keys: '*' one word, '#' zero or more (default '#')")
    .option('-c, --config <file>', 'configuration file giving amqp.url and amqp.exchange')
    .option('--amqp <url>', 'RabbitMQ URL (default: amqp.url of the configuration)')
    .option('--url <url>', 'read the /api/events stream of a running serve instead')
    .option('--token <token>', 'Bearer token for --url')
    .option(
      '--queue <name>',
      'consume from this named durable queue (kept across reconnects and broker restarts; expires 10 min after its last consumer)',
    )
    .action(async (keys: string[], flags: ListenFlags) => {
      const bindingKeys = keys.length > 0 ? keys : ['#'];
      for (const key of bindingKeys) {
        const problem = bindingKeyProblem(key);
        if (problem !== undefined) throw new CliError(problem, EXIT.usage);
      }
      if (flags.url !== undefined) {
        await listenSse(flags.url, flags.token, bindingKeys);
        return;
      }
      let url = flags.amqp;
      let exchange = 'xivo';
      try {
        const config = loadConfig({
          ...(flags.config === undefined ? {} : { file: flags.config }),
          defaultFile: DEFAULT_CONFIG_FILE,
          ...(flags.amqp === undefined ? {} : { overrides: { amqp: flags.amqp } }),
        });
        url = config.amqp.url;
        exchange = config.amqp.exchange;
      } catch (error) {
        if (error instanceof ConfigError) throw configFailure(error);
        throw error;
      }
      if (url === undefined || url === '') {
        throw new CliError(
          'no message broker configured (amqp.url is empty): the in-process bus lives inside the serve process; use --amqp URL, or --url http://HOST:PORT to read a running serve /api/events stream',
        );
      }
      await listenAmqp(url, exchange, bindingKeys, flags.queue);
    });
}
