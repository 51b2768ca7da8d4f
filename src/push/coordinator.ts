/**
 * Routing call-responses and hangups between the processes of the push middleware
 * (`wake.ts` holds the calls): {@link createMemoryCoordinator} for one process,
 * {@link createRedisCoordinator} for several sharing one Redis (a holder set per key and a
 * channel per instance, see `wake.ts`). Re-exported by `wake.ts`.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { CallResponse } from './wake.ts';

/** Handlers a coordinator calls for messages from other processes. */
export interface CoordinatorHandlers {
  /** A response for a call this process holds; returns false when it does not hold it. */
  onResponse(response: CallResponse): boolean;
  /** A caller hung up (seen by some process). */
  onHangup(callId: string): void;
}

/** Routes call-responses and hangups between processes. */
export interface Coordinator {
  /** `memory` (one process) or `redis`. */
  readonly kind: 'memory' | 'redis';
  /** Subscribes; resolves when messages from other processes are received. */
  start(handlers: CoordinatorHandlers): Promise<void>;
  /** Announces that this process holds a call under `uniqueKey` for `ttlMs` (before the push). */
  hold(uniqueKey: string, ttlMs: number): Promise<void>;
  /** This process holds no more calls under `uniqueKey` (fire and forget). */
  release(uniqueKey: string): void;
  /**
   * Sends a response to the processes holding its key.
   * @returns true when a holder received it, false when nobody holds the key.
   * @throws when the coordination service is unreachable.
   */
  forward(response: CallResponse): Promise<boolean>;
  /** Tells every process that the call `callId` was hung up (fire and forget). */
  broadcastHangup(callId: string): void;
  /** Unsubscribes and closes connections. */
  stop(): Promise<void>;
}

/** One process: nothing to route (every response reaches the holder's own map). */
export function createMemoryCoordinator(): Coordinator {
  return {
    kind: 'memory',
    async start() {},
    async hold() {},
    release() {},
    async forward() {
      return false;
    },
    broadcastHangup() {},
    async stop() {},
  };
}

/** Options of {@link createRedisCoordinator}. */
export interface RedisCoordinatorOptions {
  /** `redis.url`. */
  url: string;
  /** `redis.keyPrefix` (default `switchboard:`). */
  keyPrefix?: string;
  /** This process's id (default: random). */
  instanceId?: string;
  /** Bound on each Redis command, ms (default 1000). */
  commandTimeoutMs?: number;
  logger?: Logger;
}

/** Publishes ARGV[2] on ARGV[1]..holder for every holder in the set KEYS[1]; returns the receiver count. */
const FORWARD_SCRIPT = `local received = 0
for _, holder in ipairs(redis.call('smembers', KEYS[1])) do
  received = received + redis.call('publish', ARGV[1] .. holder, ARGV[2])
end
return received`;
const FORWARD_SHA = createHash('sha1').update(FORWARD_SCRIPT).digest('hex');

/** Several processes sharing one Redis (ioredis: one command and one subscriber connection). */
export function createRedisCoordinator(options: RedisCoordinatorOptions): Coordinator {
  const prefix = options.keyPrefix ?? 'switchboard:';
  const instance = options.instanceId ?? randomBytes(8).toString('hex');
  const responseChannel = `${prefix}push:resp:`;
  const hangupChannel = `${prefix}push:hangup`;
  const callKey = (key: string) => `${prefix}push:held:${key}`;
  const redisOptions = {
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 1000,
    lazyConnect: true,
  };
  const cmd = new Redis(options.url, redisOptions);
  const sub = new Redis(options.url, { ...redisOptions, commandTimeout: undefined });
  const log = options.logger;
  cmd.on('error', (e: Error) => log?.warn({ err: { message: e.message } }, 'push: redis error'));
  sub.on('error', (e: Error) => log?.warn({ err: { message: e.message } }, 'push: redis error'));

  return {
    kind: 'redis',
    async start(handlers) {
      await Promise.all([cmd.connect(), sub.connect()]);
      sub.on('message', (channel: string, text: string) => {
        try {
          if (channel === hangupChannel) {
            handlers.onHangup(text);
            return;
          }
          const m = JSON.parse(text) as { k: string; a: boolean; t: number; s?: string };
          handlers.onResponse({
            uniqueKey: m.k,
            available: m.a,
            messageStartTime: m.t,
            ...(typeof m.s === 'string' ? { sipUserId: m.s } : {}),
          });
        } catch (error) {
          log?.warn({ err: { message: (error as Error).message } }, 'push: bad redis message');
        }
      });
      await sub.subscribe(`${responseChannel}${instance}`, hangupChannel);
    },
    async hold(key, ttlMs) {
      // Every call has the same budget: the latest holder's expiry is the longest one.
      const ttl = Math.max(1, Math.ceil(ttlMs));
      await cmd.multi().sadd(callKey(key), instance).pexpire(callKey(key), ttl).exec();
    },
    release(key) {
      cmd.srem(callKey(key), instance).catch((error: unknown) => {
        // Harmless for correctness (the set expires with the call's budget), but visible.
        log?.warn(
          { err: { message: (error as Error).message }, uniqueKey: key },
          'push: cannot release a held call in redis (it expires with its budget)',
        );
      });
    },
    async forward(response) {
      const message = JSON.stringify({
        k: response.uniqueKey,
        a: response.available,
        t: response.messageStartTime,
        ...(response.sipUserId === undefined ? {} : { s: response.sipUserId }),
      });
      const args = [callKey(response.uniqueKey), responseChannel, message];
      let receivers: unknown;
      try {
        receivers = await cmd.evalsha(FORWARD_SHA, 1, ...args);
      } catch (error) {
        if (!String((error as Error).message).includes('NOSCRIPT')) throw error;
        receivers = await cmd.eval(FORWARD_SCRIPT, 1, ...args);
      }
      return Number(receivers) > 0;
    },
    broadcastHangup(callId) {
      cmd.publish(hangupChannel, callId).catch((error: unknown) => {
        log?.warn(
          { err: { message: (error as Error).message }, callId },
          'push: cannot broadcast a hangup in redis: other processes send no cancel push for this call',
        );
      });
    },
    async stop() {
      await Promise.allSettled([sub.quit(), cmd.quit()]);
      sub.disconnect();
      cmd.disconnect();
    },
  };
}
