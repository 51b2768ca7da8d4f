/**
 * The AMI layer: wire protocol, client and pool, fake server, recordings.
 *
 * @module
 */
export {
  type AmiActionOptions,
  type AmiActionResult,
  type AmiBackoffOptions,
  AmiClient,
  type AmiClientEvents,
  type AmiClientOptions,
  type AmiEventStream,
  type AmiEventStreamOptions,
  AmiPool,
  type AmiPoolMember,
  type AmiTaggedEvent,
  backoffDelayMs,
  parseAmiUrl,
  redactOptions,
} from './client.ts';
export {
  AmiActionError,
  AmiAuthError,
  AmiDisconnectedError,
  AmiError,
  AmiTimeoutError,
  AmiUrlError,
} from './errors.ts';
export { type AmiEvent, type AmiMessage, field, fields } from './message.ts';
export {
  type AmiAction,
  type AmiActionValue,
  AmiParser,
  type AmiParserOptions,
  AmiProtocolError,
  type AmiProtocolErrorCode,
  DEFAULT_MAX_MESSAGE_BYTES,
  serializeAction,
  serializeMessage,
} from './protocol.ts';
export {
  createRecordingWriter,
  type ReadRecordingOptions,
  RecordingError,
  type RecordingSource,
  type RecordingWriter,
  type RecordingWriterOptions,
  readRecording,
  readRecordingBatches,
} from './recording.ts';
export {
  AMI_BANNER,
  type AmiActionHandler,
  type AmiHandlerReply,
  type AmiOutgoing,
  AmiServer,
  AmiServerConnection,
  type AmiServerEvents,
  type AmiServerOptions,
} from './server.ts';
