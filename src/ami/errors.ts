/**
 * Typed errors of the AMI client. None of them ever carries a secret: messages are built from
 * the action name, the server tag and Asterisk's own `Message`, never from action parameters.
 *
 * @module
 */
import type { AmiMessage } from './message.ts';

/** Base class of the client's errors; `server` is the server tag (e.g. `pbx1` or `host:5038`). */
export class AmiError extends Error {
  /** Tag of the server the error concerns. */
  readonly server: string;
  constructor(message: string, server: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AmiError';
    this.server = server;
  }
}

/**
 * Login refused (`Response: Error` to `Login` or `Challenge`). `amiMessage` is Asterisk's
 * `Message` (e.g. `Authentication failed`). The client does not retry after it.
 */
export class AmiAuthError extends AmiError {
  /** Asterisk's `Message` field, e.g. `Authentication failed`. */
  readonly amiMessage: string;
  constructor(server: string, amiMessage: string) {
    super(`AMI login to ${server} failed: ${amiMessage}`, server);
    this.name = 'AmiAuthError';
    this.amiMessage = amiMessage;
  }
}

/**
 * An action answered with `Response: Error`. `amiMessage` is Asterisk's `Message`;
 * `response` is the whole response message.
 */
export class AmiActionError extends AmiError {
  /** Name of the action (`Originate`, ...). */
  readonly action: string;
  /** Asterisk's `Message` field ('' when absent). */
  readonly amiMessage: string;
  /** The complete error response. */
  readonly response: AmiMessage;
  constructor(server: string, action: string, response: AmiMessage) {
    const raw = response.Message;
    const amiMessage = typeof raw === 'string' ? raw : (raw?.join(' ') ?? '');
    super(`AMI action ${action} on ${server} failed: ${amiMessage || 'error'}`, server);
    this.name = 'AmiActionError';
    this.action = action;
    this.amiMessage = amiMessage;
    this.response = response;
  }
}

/** An action got no (complete) answer within its timeout; its ActionID is forgotten. */
export class AmiTimeoutError extends AmiError {
  /** Name of the action. */
  readonly action: string;
  /** The timeout that expired, in milliseconds. */
  readonly timeoutMs: number;
  constructor(server: string, action: string, timeoutMs: number) {
    super(`AMI action ${action} on ${server} timed out after ${timeoutMs} ms`, server);
    this.name = 'AmiTimeoutError';
    this.action = action;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The connection is not logged in: raised for actions issued while disconnected and for
 * actions that were in flight when the connection dropped or the client was closed.
 */
export class AmiDisconnectedError extends AmiError {
  constructor(server: string, message = `not connected to AMI server ${server}`, cause?: unknown) {
    super(message, server, cause === undefined ? undefined : { cause });
    this.name = 'AmiDisconnectedError';
  }
}

/**
 * The action was NEVER SENT: the client was not logged in (or its socket was gone) when it
 * was asked. Nothing reached Asterisk, so sending it again (here or through another server)
 * is safe. A subclass of {@link AmiDisconnectedError}.
 */
export class AmiNotSentError extends AmiDisconnectedError {
  /** Name of the action. */
  readonly action: string;
  constructor(server: string, action: string, message = `not connected to AMI server ${server}`) {
    super(server, message);
    this.name = 'AmiNotSentError';
    this.action = action;
  }
}

/**
 * The action WAS SENT, and the connection dropped (or the client was closed) before its
 * complete answer: Asterisk may have executed it (an `Originate` may be ringing or answered
 * now). Never repeat such an action blindly; find out what happened from later events (or
 * leave it to a lease). `answered` tells whether its first response had arrived (for an
 * async `Originate`: `Originate successfully queued`, the call is being placed). A subclass
 * of {@link AmiDisconnectedError}.
 */
export class AmiConnectionLostError extends AmiDisconnectedError {
  /** Name of the action. */
  readonly action: string;
  /** The `ActionID` it was sent with. */
  readonly actionId: string;
  /** Its first response (`Response: Success`) had arrived; only the rest (e.g. the `OriginateResponse`) was missing. */
  readonly answered: boolean;
  constructor(
    server: string,
    action: string,
    actionId: string,
    answered: boolean,
    message: string,
    cause?: unknown,
  ) {
    super(server, message, cause);
    this.name = 'AmiConnectionLostError';
    this.action = action;
    this.actionId = actionId;
    this.answered = answered;
  }
}

/** Why {@link AmiMessageSkippedError} skipped a message. */
export type AmiSkipReason =
  /** Larger than `maxMessageBytes` (the parser's `MESSAGE_TOO_LARGE`). */
  | 'too_large'
  /** More lines than `maxHeaders` (the parser's `TOO_MANY_HEADERS`). */
  | 'too_many_headers'
  /** Handling the message threw (the client's dispatch or an `'event'` listener). */
  | 'handler_failed';

/**
 * One message from the server could not be handled and was skipped; the connection stays up
 * and the following messages are processed. Emitted as the client's `'skipped'` event. The
 * message names the reason (and the handler's error), never field values.
 */
export class AmiMessageSkippedError extends AmiError {
  /** Why the message was skipped. */
  readonly reason: AmiSkipReason;
  constructor(server: string, reason: AmiSkipReason, detail: string, cause?: unknown) {
    super(
      `AMI message from ${server} skipped (${reason}): ${detail}`,
      server,
      cause === undefined ? undefined : { cause },
    );
    this.name = 'AmiMessageSkippedError';
    this.reason = reason;
  }
}

/**
 * An action refused by a bound of the client, never sent or no longer followed: too many
 * actions waiting for an answer (`maxPendingActions`), or an event list longer than
 * `maxEventListEvents`.
 */
export class AmiLimitError extends AmiError {
  /** Name of the action. */
  readonly action: string;
  constructor(server: string, action: string, message: string) {
    super(message, server);
    this.name = 'AmiLimitError';
    this.action = action;
  }
}

/** An AMI URL that cannot be used; the message never contains the secret. */
export class AmiUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AmiUrlError';
  }
}
