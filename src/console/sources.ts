/**
 * What the console reads from the other features, as small read models of its own: the
 * shapes its API answers with (the Static types of `./schemas.ts`). The console imports no
 * feature: each feature that has something to show provides its source from its own folder
 * (callout: `src/callout/console.ts`, announce: `src/announce/console.ts`, push:
 * `src/push/console.ts`) as a decorator of the root instance, named below, when its plugin
 * registers. The console looks a source up at request time ({@link sourceOf}), so the order
 * of the feature list does not matter; an absent source (feature removed or, for push,
 * disabled) makes its endpoint answer an empty list (docs/console.md, "Sources").
 *
 * @module
 */
import type { Static } from 'typebox';
import type { App } from '../http/server.ts';
import type { AnnouncementSchema, Escalation, WakeupSchema } from './schemas.ts';

/** Escalation states as the API's `status` filter spells them. */
export type EscalationStatusName = 'waiting' | 'running' | 'finished' | 'error';

/** One page of a list, newest first; `total` counts the whole list. */
export interface Page<T> {
  total: number;
  items: T[];
}

/** The escalations (Barista alert calls) with their people and attempts. */
export interface EscalationSource {
  /** A page, newest first; `eventid` selects one, `status` filters. */
  list(filter: {
    status?: EscalationStatusName;
    eventid?: string;
    limit: number;
    offset: number;
  }): Promise<Page<Escalation>>;
}

/** One announcement as the console shows it. */
export type Announcement = Static<typeof AnnouncementSchema>;

/** The announcements (Gong): the queue and what was played. */
export interface AnnouncementSource {
  /** Scheduled and playing, by effective start (at most 1,000). */
  schedule(): Promise<Announcement[]>;
  /** Played, failed, spooled or cancelled: a page, newest first. */
  history(page: { limit: number; offset: number }): Promise<Page<Announcement>>;
}

/** One push wake-up answered to the PBX (`push.wake.answered` on the bus). */
export type Wakeup = Static<typeof WakeupSchema>;

/** The push devices, counted per platform and app (never a token). */
export interface PushDeviceSource {
  counts(): Promise<{ platform: string; app: string; count: number }[]>;
}

/** The decorator name of each source (on the root Fastify instance). */
export const SOURCE_DECORATORS = {
  escalations: 'consoleEscalations',
  announcements: 'consoleAnnouncements',
  pushDevices: 'consolePushDevices',
} as const;

/** The sources by the console's name for them. */
export interface ConsoleSources {
  escalations: EscalationSource;
  announcements: AnnouncementSource;
  pushDevices: PushDeviceSource;
}

/** The source `name` a feature provided on `app`, or undefined when none did. */
export function sourceOf<K extends keyof ConsoleSources>(
  app: App,
  name: K,
): ConsoleSources[K] | undefined {
  const decorator = SOURCE_DECORATORS[name];
  if (!app.hasDecorator(decorator)) return undefined;
  return (app as unknown as Record<string, ConsoleSources[K] | undefined>)[decorator];
}
