/**
 * The bus module's entry point: {@link createBus} picks the AMQP bus when a broker URL is
 * configured and the in-process bus otherwise; everything else is re-exported.
 */
import { AmqpBus, type AmqpBusOptions } from './amqp.ts';
import type { Bus } from './bus.ts';
import { MemoryBus, type MemoryBusOptions } from './memory.ts';

export * from './amqp.ts';
export * from './bus.ts';
export * from './memory.ts';
export * from './xivo.ts';

/**
 * Options of {@link createBus}: the AMQP options when `url` is set (non-empty), the
 * in-process options otherwise.
 */
export type CreateBusOptions = (Partial<AmqpBusOptions> & MemoryBusOptions) & { url?: string };

/**
 * An {@link AmqpBus} when `options.url` is a non-empty string, else a {@link MemoryBus}
 * (the default when no broker is configured).
 */
export function createBus(options: CreateBusOptions = {}): Bus {
  if (typeof options.url === 'string' && options.url !== '') {
    return new AmqpBus({ ...options, url: options.url });
  }
  return new MemoryBus(options);
}
