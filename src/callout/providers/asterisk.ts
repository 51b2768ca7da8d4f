/**
 * The Asterisk provider: synthesizes head + message + foot once per event and language
 * (`mediaDir/callout-<eventid>-<language>.wav`, 8 kHz mono, through `src/media/`), then sends
 * AMI `Originate` of the dial-string template into the `switchboard-callout` context
 * (docs/asterisk/extensions.conf) with channel variables `SWITCHBOARD_MESSAGE` (the file,
 * without extension), `SWITCHBOARD_CONFIRM` (the confirmation), `SWITCHBOARD_KEYS=12`,
 * `CALLOUT_EVENT_ID`, `CALLOUT_ATTEMPT_ID` (`SWITCHBOARD_CALL_ID` = the attempt id). The
 * outcome comes from `OriginateResponse` (`originate()`); a key from the dialplan's
 * `UserEvent: SwitchboardDTMF` (`Digit`), written as soon as it arrives.
 *
 * The call goes through the first connected server of `clients` (config order, or the
 * `callout.amiServers` preference); an `Originate` that was never sent (the server dropped
 * just before) is sent through the next one.
 *
 * If the AMI connection drops once the `Originate` was sent (before its answer, or while the
 * call is followed), or the `Originate` gets no response in time (it may have been executed),
 * this process stops following it: nothing is reported as `failed` (which would dial the
 * person again while the first call may go on). What AMI says about the call later, on the
 * new connection or in another process, is routed to the stored attempt once the service
 * called `listen` ({@link storedCallListener}, through the `PlacedCalls` index of
 * src/telephony/placed-calls.ts): the `SwitchboardDTMF` key by its `CallId`; the `Hangup` by
 * the `Uniqueid` learnt from the call's user events or its answer, or stored with the attempt
 * when it was answered (`Hangup`s of channels in the callout context only); the
 * `OriginateResponse` by the attempt id its `ActionID` carries. What cannot be known that way
 * is left to the lease: the attempt becomes `unknown` (= no answer) when it expires.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { AmiNotSentError, AmiTimeoutError } from '../../ami/errors.ts';
import { type AmiEvent, field } from '../../ami/message.ts';
import type { SpeechEngine } from '../../media/tts/engine.ts';
import { asteriskSoundName, expandDialString } from '../../telephony/dialstring.ts';
import {
  type CallEventSource,
  CallTrackingError,
  originateThrough,
  outcomeFromReason,
} from '../../telephony/originate.ts';
import { connectedInOrder, placedCalls } from '../../telephony/placed-calls.ts';
import type { AttemptSink, CalloutProvider, DialRequest, StoredAttemptSink } from './types.ts';
import { statusOfDigit } from './types.ts';

/** Options of {@link createAsteriskProvider}. */
export interface AsteriskProviderOptions {
  /** AMI clients in config order; the first connected one (of `servers`, if given) is used. */
  clients: () => ReadonlyArray<
    CallEventSource & { readonly connected: boolean; readonly name: string }
  >;
  /** Names of the servers to place calls through, best first (`callout.amiServers`); empty = all, config order. */
  servers?: readonly string[];
  /** Dial-string template, e.g. `PJSIP/{telno}@trunk`. */
  dialString: string;
  /** Dialplan context (`switchboard-callout`). */
  context: string;
  /** Caller ID; empty = the PBX's default. */
  callerId: string;
  /** Directory Asterisk reads the WAVs from (same path on both sides). */
  mediaDir: string;
  /** Confirmation text per language (empty / missing = none). */
  confirm: Readonly<Record<string, string>>;
  /** The speech engine (`createSpeechEngine(config.tts, ...)`). */
  speech: SpeechEngine;
  /** Longest answered call, in ms. Default 600000. */
  maxCallMs?: number;
  /**
   * How long to wait for the `Originate` action's response, in ms. Default 60000. A real
   * Asterisk answers an async Originate at once; a slow answer means a loaded link or process,
   * and the call may well be placed already, so this is generous (the AMI client's
   * `actionTimeoutMs`, 10 s by default, was too short under load: issue 4, item 1).
   */
  originateTimeoutMs?: number;
  logger?: Logger;
}

/** An attempt id (`newId` of src/store/db.ts: 26 characters of Crockford's base32). */
const ATTEMPT_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** The user events of the `switchboard-callout` dialplan, lowercase. */
const ALERT_USER_EVENTS = new Set(['switchboarddtmf', 'switchboardinvalidkey', 'switchboardnokey']);

/**
 * The stored-call listener of the Asterisk provider: what AMI says about alert calls no
 * follower of this process takes, written to their stored attempts through `sink` (see the
 * module comment). Only the events of alert calls count: `UserEvent: SwitchboardDTMF` with a
 * valid key and an attempt id as `CallId`; `Hangup` of a call known by its id, or of a
 * channel in the callout `context` whose `Uniqueid` is a stored attempt's; `OriginateResponse`
 * of a lost follower.
 */
export function storedCallListener(
  sink: StoredAttemptSink,
  context: string,
  logger?: Logger,
): (event: AmiEvent, callId: string | undefined, server: string) => boolean | undefined {
  const failed = (attempt: string) => (error: unknown) =>
    logger?.warn({ err: error, attempt }, 'callout: cannot record a result of a stored call');
  return (event, callId, server) => {
    const attempt = callId !== undefined && ATTEMPT_ID.test(callId) ? callId : undefined;
    switch (event.Event) {
      case 'UserEvent': {
        if (attempt === undefined) return undefined;
        // the alert-call dialplan's user events (docs/asterisk/extensions.conf)
        const name = (field(event, 'UserEvent') ?? '').toLowerCase();
        if (!ALERT_USER_EVENTS.has(name)) return undefined;
        const digit = field(event, 'Digit')?.trim();
        if (name !== 'switchboarddtmf' || digit === undefined) return true;
        if (statusOfDigit(digit) === undefined) return true;
        logger?.info(
          { attempt, digit, server },
          'callout: key of a call not followed here (AMI reconnect or restart) routed to its attempt',
        );
        sink.digit(attempt, digit).catch(failed(attempt));
        return true;
      }
      case 'OriginateResponse': {
        if (attempt === undefined) return undefined;
        const reasonText = field(event, 'Reason');
        const reason = reasonText === undefined || reasonText === '' ? NaN : Number(reasonText);
        let outcome = outcomeFromReason(Number.isFinite(reason) ? reason : undefined);
        if (outcome === 'answered' && field(event, 'Response') !== 'Success') outcome = 'failed';
        logger?.info(
          { attempt, outcome, server },
          'callout: outcome of a call whose follower was lost routed to its attempt',
        );
        if (outcome !== 'answered') {
          sink.finished(attempt, outcome, 'originate_response').catch(failed(attempt));
          return undefined;
        }
        const uniqueid = field(event, 'Uniqueid');
        if (uniqueid !== undefined && uniqueid !== '' && uniqueid !== '<null>') {
          sink.placed(attempt, uniqueid).catch(failed(attempt));
        }
        return undefined;
      }
      case 'Hangup': {
        if (attempt !== undefined) {
          sink.finished(attempt, 'answered', 'hangup').catch(failed(attempt));
          return undefined;
        }
        if (field(event, 'Context') !== context) return undefined;
        const uniqueid = field(event, 'Uniqueid');
        if (uniqueid === undefined || uniqueid === '' || uniqueid === '<null>') return undefined;
        sink
          .attemptByProviderCallId(uniqueid)
          .then((found) => {
            if (found === undefined) return;
            logger?.info(
              { attempt: found, server },
              'callout: hang-up of a call not followed here routed to its attempt',
            );
            return sink.finished(found, 'answered', 'hangup');
          })
          .catch(failed(uniqueid));
        return undefined;
      }
      default:
        return undefined;
    }
  };
}

/** Builds the Asterisk provider. */
export function createAsteriskProvider(options: AsteriskProviderOptions): CalloutProvider {
  const mediaDir = resolve(options.mediaDir);
  mkdirSync(mediaDir, { recursive: true });
  const files = new Map<string, Promise<string>>();
  const speak = (key: string, text: string, language: string): Promise<string> => {
    let file = files.get(key);
    if (!file) {
      const path = join(mediaDir, `${key}.wav`);
      file = existsSync(path)
        ? Promise.resolve(path)
        : options.speech.synthesize(text, language, path).then(() => path);
      file.catch(() => files.delete(key));
      files.set(key, file);
      if (files.size > 10_000) files.delete(files.keys().next().value as string);
    }
    return file;
  };
  let listening = false;
  return {
    name: 'asterisk',
    ready: () => connectedInOrder(options.clients(), options.servers).length > 0,
    listen(sink: StoredAttemptSink) {
      if (listening) return;
      listening = true;
      const listener = storedCallListener(sink, options.context, options.logger);
      // every server: a call may have been placed through any of them (or by another process)
      for (const client of options.clients()) placedCalls(client).addStoredListener(listener);
    },
    async dial(request: DialRequest, sink: AttemptSink) {
      let variables: Record<string, string>;
      let dialString: string;
      try {
        dialString = expandDialString(options.dialString, { telno: request.telno });
        const text = [request.head, request.message, request.foot].filter((t) => t).join(' ');
        const message = await speak(
          `callout-${request.eventId}-${request.language}`,
          text,
          request.language,
        );
        variables = {
          SWITCHBOARD_MESSAGE: asteriskSoundName(message),
          SWITCHBOARD_KEYS: '12',
          CALLOUT_EVENT_ID: request.eventId,
          CALLOUT_ATTEMPT_ID: request.attemptId,
        };
        const confirmText = options.confirm[request.language];
        if (confirmText) {
          const confirm = await speak(
            `callout-confirm-${request.language}`,
            confirmText,
            request.language,
          );
          variables.SWITCHBOARD_CONFIRM = asteriskSoundName(confirm);
        }
      } catch (error) {
        // No call placed: a system error of the event (eventstatus 99), not a "no answer".
        const reason = `the message could not be prepared: ${error instanceof Error ? error.message : String(error)}`;
        options.logger?.error(
          { err: error, attempt: request.attemptId, event: request.eventId },
          'callout: cannot prepare the call',
        );
        if (sink.unprepared) await sink.unprepared(request.attemptId, reason);
        else await sink.finished(request.attemptId, 'failed');
        return;
      }
      const writes: Promise<void>[] = [];
      try {
        const result = await originateThrough(
          () => connectedInOrder(options.clients(), options.servers),
          {
            dialString,
            context: options.context,
            exten: 's',
            priority: 1,
            ...(options.callerId ? { callerId: options.callerId } : {}),
            timeoutMs: Math.max(1000, request.ringTimeoutMs),
            callId: request.attemptId,
            variables,
            actionTimeoutMs: options.originateTimeoutMs ?? 60_000,
          },
          {
            maxCallMs: options.maxCallMs ?? 600_000,
            onAnswered: (call) => {
              if (call.uniqueid) writes.push(sink.placed(request.attemptId, call.uniqueid));
            },
            onDigit: (digit) => {
              if (statusOfDigit(digit) !== undefined)
                writes.push(sink.digit(request.attemptId, digit));
            },
          },
        );
        await Promise.allSettled(writes);
        const digit = result.digits.find((d) => statusOfDigit(d) !== undefined);
        await sink.finished(request.attemptId, result.outcome, digit);
      } catch (error) {
        await Promise.allSettled(writes);
        if (error instanceof AmiTimeoutError) {
          // The Originate was sent and may have been executed (the call may be ringing or
          // answered): never report it as failed, which would dial the person again while
          // that call goes on and lose its key. Left to its lease: unknown = no answer.
          options.logger?.warn(
            { err: error, attempt: request.attemptId },
            'callout: no response to Originate; the call may have been placed, left to its lease',
          );
          return;
        }
        if (error instanceof CallTrackingError) {
          // Sent, then the connection dropped: the call may ring or be answered now. Never
          // redial blindly; its later events are routed to the attempt by its id, else the
          // lease decides (unknown = no answer).
          const digit = error.partial.digits.find((d) => statusOfDigit(d) !== undefined);
          if (digit) await sink.digit(request.attemptId, digit);
          options.logger?.warn(
            { attempt: request.attemptId, server: (error.cause as { server?: string })?.server },
            error.partial.answeredAt === undefined
              ? 'callout: AMI lost after the Originate was sent; the call may have been placed, left to its lease'
              : 'callout: AMI lost during a call',
          );
          return;
        }
        if (error instanceof AmiNotSentError) {
          // Never sent (no server connected): nothing rang.
          options.logger?.warn(
            { attempt: request.attemptId },
            `callout: ${error.message}; nothing was dialled`,
          );
          await sink.finished(request.attemptId, 'failed');
          return;
        }
        options.logger?.warn(
          { err: error, attempt: request.attemptId },
          'callout: originate failed',
        );
        await sink.finished(request.attemptId, 'failed');
      }
    },
  };
}
