/**
 * The webhook sinks of `serve`: one `WebhookSink` per `webhooks.endpoints` entry, each with
 * its routing-key filter on `call.<event>`. {@link Webhooks.set} applies a (reloaded)
 * section: an endpoint whose settings did not change keeps its sink and queue; the others
 * are replaced, the old ones finishing what they hold (bounded by the flush timeout).
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import { type WebhookEvent, WebhookSink, webhookEventFilter } from '../sinks/webhook.ts';

/** One webhook endpoint: its routing-key filter and its sink. */
interface Webhook {
  accepts: (routingKey: string) => boolean;
  sink: WebhookSink;
  /** The endpoint's settings (and `retryBaseMs`) as JSON: an unchanged endpoint keeps its sink on reload. */
  settings: string;
}

/** The set of webhook sinks; see the module comment. */
export class Webhooks {
  #hooks: Webhook[] = [];
  /** Sinks replaced by a reload, still delivering what they hold. */
  readonly #retiring = new Set<Promise<void>>();
  readonly #registry: Registry;
  readonly #logger: Logger;
  readonly #flushTimeoutMs: number;

  constructor(options: { registry: Registry; logger: Logger; flushTimeoutMs: number }) {
    this.#registry = options.registry;
    this.#logger = options.logger;
    this.#flushTimeoutMs = options.flushTimeoutMs;
  }

  /** Applies a `webhooks` section (see the module comment). */
  set(section: Config['webhooks']): void {
    const before = this.#hooks;
    this.#hooks = section.endpoints.map((endpoint) => {
      const settings = JSON.stringify([endpoint, section.retryBaseMs]);
      const kept = before.find((hook) => hook.settings === settings);
      if (kept !== undefined) return kept;
      return {
        settings,
        accepts: webhookEventFilter(endpoint.events),
        sink: new WebhookSink({
          targets: [
            endpoint.secret === ''
              ? { url: endpoint.url, name: endpoint.name }
              : { url: endpoint.url, name: endpoint.name, secret: endpoint.secret },
          ],
          maxRetries: endpoint.maxRetries,
          timeoutMs: endpoint.timeoutMs,
          initialBackoffMs: section.retryBaseMs,
          registry: this.#registry,
          logger: this.#logger.child({ component: 'webhook', webhook: endpoint.name }),
        }),
      };
    });
    for (const hook of before) {
      if (this.#hooks.includes(hook)) continue;
      const closing = hook.sink.close(this.#flushTimeoutMs);
      this.#retiring.add(closing);
      void closing.finally(() => this.#retiring.delete(closing));
    }
  }

  /** Queues a call event for every endpoint whose filter accepts `routingKey`. */
  send(routingKey: string, event: WebhookEvent): void {
    for (const hook of this.#hooks) if (hook.accepts(routingKey)) hook.sink.send(event);
  }

  /** Flushes every sink, the replaced ones too (each bounded by the flush timeout). */
  async close(): Promise<void> {
    await Promise.all([
      ...this.#hooks.map((hook) => hook.sink.close(this.#flushTimeoutMs)),
      ...this.#retiring,
    ]);
  }
}
