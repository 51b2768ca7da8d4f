import type { AmiEvent } from '../../src/ami/message.ts';
import { AmiServer } from '../../src/ami/server.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { loadFixture } from '../support/conformance.ts';
import { coreShowChannels } from '../support/pbx-state.ts';

export const AMI_USER = 'switchboard';
export const AMI_SECRET = 's3cret-ami';

/** A fake Asterisk that streams events and answers CoreShowChannels truthfully. */
export interface FakePbx {
  server: AmiServer;
  port: number;
  url: string;
  sent: AmiEvent[];
  send(events: readonly AmiEvent[]): void;
  close(): Promise<void>;
}

export async function fakePbx(port = 0): Promise<FakePbx> {
  const sent: AmiEvent[] = [];
  const server = new AmiServer({ users: { [AMI_USER]: AMI_SECRET } });
  server.handle('CoreShowChannels', () => ({
    events: coreShowChannels(sent),
    complete: 'CoreShowChannelsComplete',
  }));
  const bound = await server.listen(port);
  return {
    server,
    port: bound,
    url: `tcp://${AMI_USER}:${AMI_SECRET}@127.0.0.1:${bound}`,
    sent,
    send(events) {
      for (const event of events) {
        sent.push(event);
        const { content: _content, ...wire } = event;
        server.broadcast(wire as AmiEvent & { Event: string });
      }
    },
    close: () => server.close(),
  };
}

/** The AMI events of a conformance fixture, without FullyBooted (a reset marker). */
export function fixtureEvents(name: string): AmiEvent[] {
  return loadFixture(name).filter((event) => event.Event !== 'FullyBooted');
}

/** A configuration for a test service: HTTP on a free port, in-memory SQLite, silent logs. */
export function testConfig(
  overrides: { ami?: string[]; amqp?: string; exchange?: string; name?: string } = {},
  yaml = '',
): Config {
  const config = loadConfig({
    text: yaml,
    env: {},
    overrides: {
      listen: '127.0.0.1:0',
      database: ':memory:',
      ...(overrides.ami === undefined ? {} : { ami: overrides.ami }),
      ...(overrides.amqp === undefined ? {} : { amqp: overrides.amqp }),
    },
  });
  config.log.level = 'silent';
  config.http.docs = true;
  // Tests run in parallel: never Gong's fixed port 9600 (announce.listen), a free one instead.
  if (config.announce.listen === '127.0.0.1:9600') config.announce.listen = '127.0.0.1:0';
  if (overrides.exchange !== undefined) config.amqp.exchange = overrides.exchange;
  if (overrides.name !== undefined) config.instance.name = overrides.name;
  for (const server of config.ami.servers) {
    server.reconnectMinMs = 20;
    server.reconnectMaxMs = 100;
    server.pingIntervalMs = 0;
  }
  config.amqp.reconnectMinMs = 50;
  config.amqp.reconnectMaxMs = 200;
  return config;
}

/** One SSE message as `/api/events` sends it in `data:`. */
export interface SseMessage {
  routing_key: string;
  name: string;
  origin_uuid: string;
  data: unknown;
}

/** Reads an SSE stream in the background, collecting the parsed `data:` lines. */
export interface SseReader {
  status: number;
  messages: SseMessage[];
  /** True once the `: ready` comment arrived (subscriptions bound). */
  readonly ready: boolean;
  /** Resolves once `done(messages)` holds, rejects after `timeoutMs`. */
  until(done: (messages: SseMessage[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): void;
  /** Resolves when the server ended the stream. */
  ended: Promise<void>;
}

export async function readSse(
  url: string,
  headers: Record<string, string> = {},
): Promise<SseReader> {
  const abort = new AbortController();
  const response = await fetch(url, { headers, signal: abort.signal });
  const messages: SseMessage[] = [];
  let ready = false;
  const ended = (async () => {
    if (response.body === null) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let at = buffer.indexOf('\n\n');
        while (at >= 0) {
          const block = buffer.slice(0, at);
          if (block.split('\n').includes(': ready')) ready = true;
          buffer = buffer.slice(at + 2);
          const data = block
            .split('\n')
            .filter((line) => line.startsWith('data: '))
            .map((line) => line.slice(6))
            .join('\n');
          if (data !== '') messages.push(JSON.parse(data) as SseMessage);
          at = buffer.indexOf('\n\n');
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    status: response.status,
    messages,
    get ready() {
      return ready;
    },
    async until(done, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!done(messages)) {
        if (Date.now() > deadline) {
          throw new Error(`SSE: condition not met after ${messages.length} messages`);
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    close: () => abort.abort(),
    ended,
  };
}

export { freePort } from '../support/net.ts';
export { until } from '../support/until.ts';
