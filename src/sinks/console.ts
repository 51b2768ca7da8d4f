/**
 * Call events for people and scripts on a terminal: one JSON line per event (`jsonl`, the
 * exact lines of SCHEMA.md) or one readable line per event (`pretty`), written through a
 * buffered, backpressure-aware line writer.
 */
import type { Writable } from 'node:stream';
import type { CallEvent, ChannelSnapshot } from '../calls/events.ts';
import type { EventContext, Reporter } from '../calls/reporter.ts';

/** Output formats of `replay` and `watch`. */
export type OutputFormat = 'jsonl' | 'pretty';

/** `Name <num>`, `<num>`, or the channel name when the channel has no caller ID. */
export function partyLabel(channel: ChannelSnapshot): string {
  const { name, num } = channel.callerId;
  if (name && num) return `${name} <${num}>`;
  if (num) return `<${num}>`;
  if (name) return name;
  return channel.name;
}

function list(channels: readonly ChannelSnapshot[]): string {
  return channels.map((channel) => `${partyLabel(channel)} [${channel.name}]`).join(', ');
}

/** One readable line (no newline) describing a call event. */
export function formatPretty(event: CallEvent): string {
  const caller = `${partyLabel(event.caller)} [${event.caller.name}]`;
  switch (event.event) {
    case 'b_dial':
      return `ringing      ${caller} calls ${event.caller.exten}: ${list(event.targets)} ringing`;
    case 'b_dial_end':
      return `ring ended   ${list(event.targets)} for ${caller}: ${event.reason}`;
    case 'up':
      return `answered     ${caller} is talking to ${list([event.target])}`;
    case 'attended_transfer':
      return `transferred  ${list([event.transferer])} joined ${caller} to ${list([event.target])} (attended)`;
    case 'blind_transfer':
      return `transferred  ${list([event.transferer])} sent ${caller} to ${event.caller.exten}: ${list(event.targets)} ringing (blind)`;
    case 'blonde_transfer':
      return `transferred  ${list([event.transferer])} sent ${caller} to ${event.caller.exten}: ${list(event.targets)} ringing (blonde)`;
    case 'hangup':
      return `hung up      ${caller}: ${event.reason}`;
    case 'queue_caller_abandon':
      return `abandoned    ${caller} left the queue unanswered`;
    case 'user_event': {
      const name = event.amiEvent.UserEvent;
      return `user event   ${typeof name === 'string' ? name : '?'} on ${caller}`;
    }
  }
}

/** Options of {@link LineWriter}. */
export interface LineWriterOptions {
  /**
   * Also write what is buffered at the end of the current turn of the event loop
   * (`setImmediate`): live output in one write per socket read instead of one per line.
   */
  flushSoon?: boolean;
  /**
   * Called with true when the stream refused more (its buffer is full), with false when it
   * drained: the producer pauses its input meanwhile (e.g. `AmiClient.pause`). Writes to a
   * pipe, file or terminal on Linux are synchronous in Node, which stops the process instead.
   */
  onBackpressure?: (full: boolean) => void;
}

/**
 * Buffers lines and writes them to a stream in large chunks, waiting for `drain` when the
 * stream is full (so a slow terminal or pipe slows the producer instead of growing memory).
 */
export class LineWriter {
  readonly #stream: Writable;
  readonly #highWaterChars: number;
  readonly #options: LineWriterOptions;
  #buffer: string[] = [];
  #chars = 0;
  #draining: Promise<void> | null = null;
  #flushScheduled = false;

  /** @param highWaterChars flush once this many characters are buffered (default 64 Ki). */
  constructor(stream: Writable, highWaterChars = 65536, options: LineWriterOptions = {}) {
    this.#stream = stream;
    this.#highWaterChars = highWaterChars;
    this.#options = options;
  }

  /** Queues one line (a newline is added). Await {@link ready} now and then for backpressure. */
  write(line: string): void {
    this.#buffer.push(line);
    this.#chars += line.length + 1;
    if (this.#chars >= this.#highWaterChars) {
      this.#flushBuffer();
    } else if (this.#options.flushSoon === true && !this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        this.#flushBuffer();
      });
    }
  }

  /** Resolves when the stream can take more (immediately unless it signalled backpressure). */
  ready(): Promise<void> {
    return this.#draining ?? Promise.resolve();
  }

  /** Writes everything buffered and waits until the stream accepted it. */
  async flush(): Promise<void> {
    this.#flushBuffer();
    await this.ready();
  }

  #flushBuffer(): void {
    if (this.#buffer.length === 0) return;
    const chunk = `${this.#buffer.join('\n')}\n`;
    this.#buffer = [];
    this.#chars = 0;
    if (!this.#stream.write(chunk) && this.#draining === null) {
      this.#options.onBackpressure?.(true);
      this.#draining = new Promise((resolve) => {
        const done = (): void => {
          this.#stream.off('drain', done);
          this.#stream.off('close', done);
          this.#stream.off('error', done);
          this.#draining = null;
          this.#options.onBackpressure?.(false);
          resolve();
        };
        this.#stream.on('drain', done);
        this.#stream.on('close', done);
        this.#stream.on('error', done);
      });
    }
  }
}

/** Options of {@link consoleReporter}. */
export interface ConsoleReporterOptions {
  format: OutputFormat;
  /** Prefix pretty lines with the server name (when several servers are watched). */
  showServer?: boolean;
  /** Prefix pretty lines with the local time of day (live events). */
  showTime?: boolean;
}

/**
 * A {@link Reporter} that prints every call event to `writer`: `jsonl` prints exactly the
 * schema's lines (one JSON object per line, nothing else); `pretty` one readable line each.
 */
export function consoleReporter(writer: LineWriter, options: ConsoleReporterOptions): Reporter {
  if (options.format === 'jsonl') {
    return { onCallEvent: (event) => writer.write(JSON.stringify(event)) };
  }
  return {
    onCallEvent: (event: CallEvent, context: EventContext) => {
      let prefix = '';
      if (options.showTime) prefix += `${new Date().toTimeString().slice(0, 8)} `;
      if (options.showServer) prefix += `[${context.server}] `;
      writer.write(prefix + formatPretty(event));
    },
  };
}
