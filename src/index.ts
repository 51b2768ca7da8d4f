/**
 * Switchboard as a library: the AMI client, the call-event engine, runners and reporters.
 * See README.md ("Library") for an example.
 *
 * @packageDocumentation
 */

export {
  type AmiActionResult,
  AmiClient,
  type AmiClientOptions,
  type AmiOriginateOptions,
  type AmiOriginateResult,
  AmiPool,
  type AmiTaggedEvent,
  actionIdTag,
  completedAnAction,
  parseAmiUrl,
} from './ami/client.ts';
export {
  AmiActionError,
  AmiAuthError,
  AmiConnectionLostError,
  AmiDisconnectedError,
  AmiError,
  AmiLimitError,
  AmiMessageSkippedError,
  AmiNotSentError,
  type AmiSkipReason,
  AmiTimeoutError,
  AmiUrlError,
} from './ami/errors.ts';
export type { AmiEvent, AmiMessage } from './ami/message.ts';
export { field, fields, inheritsNothing, MESSAGE_PROTOTYPE } from './ami/message.ts';
export {
  AMI_REQUIREMENTS,
  type AmiAccess,
  type AmiClass,
  type AmiFeature,
  type AmiPermissionProblem,
  type AmiPermissions,
  amiPermissions,
  describeMissing,
  mayRun,
  permissionProblems,
  ReadEvidence,
} from './ami/permissions.ts';
export { type AmiAction, AmiParser, AmiProtocolError, serializeAction } from './ami/protocol.ts';
export {
  createRecordingWriter,
  RecordingError,
  readRecording,
  readRecordingBatches,
} from './ami/recording.ts';
export { remapIdentifiers } from './ami/remap.ts';
export { AmiServer, type AmiServerUser } from './ami/server.ts';
export { CallEngine, type CallEngineOptions, hangupReason } from './calls/engine.ts';
export type * from './calls/events.ts';
export { CALL_EVENT_NAMES } from './calls/events.ts';
export { AmiRunner, type AmiRunnerOptions } from './calls/live.ts';
export { type EventContext, REPORTER_METHODS, type Reporter } from './calls/reporter.ts';
export { type RunRecordingOptions, type RunSummary, runRecording } from './calls/runner.ts';
export { consoleReporter, formatPretty, LineWriter, type OutputFormat } from './sinks/console.ts';
