/**
 * The `jenkins` section: the failed-job watcher.
 * Schema and defaults are defined here, once; `src/config/schema.ts` composes the sections.
 *
 * @module
 */
import Type, { type Static } from 'typebox';
import { bool, formatted, int, oneOf, section, str } from '../config/section.ts';

/** `jenkins`: the failed-job watcher (issue 5). */
export const JenkinsSection = section(
  {
    enabled: bool(false, 'watch Jenkins and announce failed jobs'),
    url: formatted('switchboard-http-url', '', 'Jenkins base URL', true),
    user: str('', 'Jenkins user'),
    token: str('', 'Jenkins API token'),
    intervalS: int(60, 1, 86_400, 'poll interval'),
    extension: str('', 'ringer extension announcements go to; empty = announce.extension'),
    failColors: Type.Array(Type.String({ minLength: 1 }), {
      default: ['red', 'yellow'],
      description:
        'job colors counted as failed (red = failed, yellow = unstable); a building job (*_anime) counts as the color it carries',
    }),
    template: str('Jenkins job {job} has failed.', 'sentence per failed job; {job} {url} {color}'),
    recoveryTemplate: str('', 'sentence when a job recovers; empty = no announcement'),
    firstPoll: oneOf(
      ['record', 'announce'],
      'record',
      'first poll with no stored state: record = only record it, announce = announce every failed job (as xgong-jenkins with an empty state file)',
    ),
    language: str('en', 'TTS language', { pattern: '^[a-z]{2}(-[a-z]{2})?$' }),
    window: section(
      {
        weekdays: Type.Array(Type.Integer({ minimum: 0, maximum: 6 }), {
          default: [],
          description: 'days announcements are made (0 = Sunday); empty = every day',
        }),
        fromHour: int(0, 0, 24, 'first hour (local time, inclusive)'),
        toHour: int(24, 0, 24, 'last hour (local time, exclusive)'),
      },
      'when announcements are made',
    ),
  },
  'Jenkins watcher',
);

/** The `jenkins` section. */
export type JenkinsConfig = Static<typeof JenkinsSection>;
