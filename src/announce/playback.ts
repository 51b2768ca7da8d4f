/**
 * Playing one announcement on the ringer, two ways:
 *
 * - **originate** (default when an AMI server is configured): AMI `Originate` (Async) of
 *   `dialString` with the validated extension, into `context` / `exten` (`s`), priority 1,
 *   channel variable `soundVariable` (`SWITCHBOARD_MESSAGE`) = the file without `.wav` (what
 *   `Playback` wants), `Timeout` =
 *   ring time, `CallerID` from config. The call is followed to its end (`originate()` of
 *   `src/telephony/`); answered = played, busy / no answer / congestion / failure = retried by
 *   the scheduler up to `maxRetries`. Source: Asterisk `manager.c` `action_originate`.
 * - **callfile** (PBXs without AMI, as Gong): an Asterisk call file with the same channel,
 *   context and variable, `MaxRetries`/`RetryTime`/`WaitTime`/`CallerID` from config,
 *   written in a temporary directory next to the spool, modification time = the effective
 *   start, then renamed into `spoolDir` (`placeCallFile`). Asterisk does the retries; the
 *   message is recorded as `spooled` (its outcome is Asterisk's). Source: Asterisk
 *   `pbx_spool.c` / the `call-file` sample documentation.
 *
 * The dialplan both enter is `docs/asterisk/extensions.conf` `[switchboard-announce]`, or,
 * configured with `context: xgong`, `soundVariable: AUDIO_FILE`, Gong's installed
 * `[xgong]` context (`etc/asterisk/extensions_extra.d/xgong.conf`: `Answer(1000)`,
 * `Playback(${AUDIO_FILE})`, `System(rm ${AUDIO_FILE}.wav)`). Call files are named
 * `announce-<id>.call` with the message's public id.
 *
 * @module
 */

import { AmiNotSentError, AmiTimeoutError } from '../ami/errors.ts';
import { asteriskSoundName, expandDialString, placeCallFile } from '../telephony/index.ts';
import {
  type CallEventSource,
  CallTrackingError,
  originateThrough,
} from '../telephony/originate.ts';
import type { MessageRow, MessageStatus } from './repository.ts';

/** What playing a message gave. */
export interface PlayResult {
  /** Final state (`failed` may be retried when `retry`). */
  status: Extract<MessageStatus, 'played' | 'failed' | 'spooled'>;
  /** `answered`, `busy`, `noanswer`, `congestion`, `failed`, `refused`, `callfile`, `error`. */
  outcome: string;
  /** The scheduler may retry (an unanswered call). */
  retry?: boolean;
  /** The call file placed (callfile mode). */
  callfilePath?: string;
}

/** Settings shared by both playback modes (the `announce` config section). */
export interface PlaybackSettings {
  /** Channel template, e.g. `Local/{extension}` or `PJSIP/{extension}`. */
  dialString: string;
  /** Dialplan context playing the message (`switchboard-announce`; Gong: `xgong`). */
  context: string;
  /** Extension in `context` (`s`). */
  exten: string;
  /** Channel variable holding the sound file without `.wav` (`SWITCHBOARD_MESSAGE`; Gong: `AUDIO_FILE`). */
  soundVariable: string;
  /** Caller ID shown on the ringer. */
  callerId: string;
  /** Ring time, s. */
  ringTimeS: number;
  /** Call-file MaxRetries. */
  maxRetries: number;
  /** Call-file RetryTime, s. */
  retryTimeS: number;
}

/**
 * The channel, dialplan target and channel variables every playback uses: the sound file
 * (without `.wav`) in `soundVariable`, and `SWITCHBOARD_CALL_ID` =
 * `announce-<public id>-<attempt>` (echoed by Switchboard's dialplan; ignored by Gong's).
 * @throws {TelephonyValidationError} a value that fails validation.
 */
export function playbackTarget(settings: PlaybackSettings, message: MessageRow) {
  return {
    channel: expandDialString(settings.dialString, { extension: message.extension }),
    context: settings.context,
    exten: settings.exten,
    variables: {
      [settings.soundVariable]: asteriskSoundName(message.audio_path),
      SWITCHBOARD_CALL_ID: `announce-${message.public_id}-${message.attempts + 1}`,
    } as Record<string, string>,
  };
}

/** An AMI client an announcement may be played through (`AmiClient` satisfies it). */
export type PlaybackClient = CallEventSource & { readonly name: string };

/**
 * A player that originates through the first of `clients` (connected `AmiClient`s, best
 * first: `connectedInOrder(clients, announce.amiServers)`); an `Originate` that could not be
 * sent through one goes through the next.
 *
 * Errors map to results by type: never sent (no server connected) → `no_ami`, retried;
 * sent and then the connection dropped, or no answer to the action → `unknown`, NOT retried
 * (the ringer may have played it: ringing it again blindly could play it twice); refused
 * by Asterisk → `refused`, not retried.
 * @returns a function playing one message; it never throws for an unanswered call.
 */
export function originatePlayer(
  settings: PlaybackSettings,
  clients: () => readonly PlaybackClient[] | PlaybackClient | undefined,
): (message: MessageRow) => Promise<PlayResult> {
  const candidates = (): readonly PlaybackClient[] => {
    const value = clients();
    if (value === undefined) return [];
    return Array.isArray(value) ? value : [value as PlaybackClient];
  };
  return async (message) => {
    const target = playbackTarget(settings, message);
    const { SWITCHBOARD_CALL_ID: callId = '', ...variables } = target.variables;
    try {
      const result = await originateThrough(
        candidates,
        {
          dialString: target.channel,
          context: target.context,
          exten: target.exten,
          priority: 1,
          callerId: settings.callerId,
          timeoutMs: settings.ringTimeS * 1000,
          variables,
          callId,
        },
        { maxCallMs: Math.max(60_000, Number(message.duration_ms) * 2 + 60_000) },
      );
      if (result.outcome === 'answered') return { status: 'played', outcome: 'answered' };
      return {
        status: 'failed',
        outcome: result.end === 'refused' ? 'refused' : result.outcome,
        retry: result.end !== 'refused',
      };
    } catch (error) {
      // No server connected (just after a start, or all down): the Originate was never
      // sent, so nothing rang: retried.
      if (error instanceof AmiNotSentError) {
        return { status: 'failed', outcome: 'no_ami', retry: true };
      }
      // Sent, then the connection dropped, or no answer to the action: whether the ringer
      // rang is unknown; never rung again blindly.
      if (error instanceof CallTrackingError || error instanceof AmiTimeoutError) {
        return { status: 'failed', outcome: `unknown: ${error.message}`.slice(0, 200) };
      }
      return { status: 'failed', outcome: `ami_error: ${(error as Error).message}`.slice(0, 200) };
    }
  };
}

/** Where call files go. */
export interface CallFileSettings extends PlaybackSettings {
  /** Asterisk's spool directory (`/var/spool/asterisk/outgoing`). */
  spoolDir: string;
  /** Temporary directory on the same filesystem (default: `tmp` next to the spool). */
  tmpDir?: string;
}

/**
 * A player that places call files (`announce-<public id>.call`, mtime = the effective start).
 * @returns a function placing one message's call file.
 */
export function callFilePlayer(
  settings: CallFileSettings,
): (message: MessageRow) => Promise<PlayResult> {
  return async (message) => {
    const target = playbackTarget(settings, message);
    const placed = await placeCallFile(
      {
        channel: target.channel,
        callerId: settings.callerId,
        maxRetries: settings.maxRetries,
        retryTimeS: settings.retryTimeS,
        waitTimeS: settings.ringTimeS,
        context: target.context,
        extension: target.exten,
        priority: 1,
        variables: target.variables,
      },
      {
        spoolDir: settings.spoolDir,
        ...(settings.tmpDir ? { tmpDir: settings.tmpDir } : {}),
        name: `announce-${message.public_id}.call`,
        startAt: new Date(Number(message.due_at)),
      },
    );
    return { status: 'spooled', outcome: 'callfile', callfilePath: placed.path };
  };
}
