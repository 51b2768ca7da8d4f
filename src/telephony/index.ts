/**
 * Placing calls: dial-string templates and validation, allow-lists of dial targets, AMI
 * `Originate` with outcome following, Asterisk call files. See docs/telephony.md.
 *
 * @module
 */
export { ExtensionAllowList } from './allowlist.ts';
export {
  type CallFileSpec,
  type CancelResult,
  cancelCallFile,
  type PlaceCallFileOptions,
  type PlacedCallFile,
  placeCallFile,
  renderCallFile,
} from './callfile.ts';
export {
  asteriskSoundName,
  EXTENSION_PATTERN,
  expandDialString,
  formatCallerId,
  TELNO_PATTERN,
  TelephonyValidationError,
  validateCallerId,
  validateChannel,
  validateDialplanName,
  validateDialTemplate,
  validateExtension,
  validateTelno,
  validateVariables,
} from './dialstring.ts';
export {
  buildOriginateAction,
  type CallEnd,
  type CallEventSource,
  CallFollower,
  type CallOutcome,
  type CallResult,
  CallTrackingError,
  type FollowOptions,
  NoAmiServerError,
  newCallId,
  type OriginateRequest,
  originate,
  originateThrough,
  outcomeFromReason,
} from './originate.ts';
export {
  connectedInOrder,
  type NamedClient,
  type PlacedCallEvents,
  type PlacedCallHandlers,
  type PlacedCallRoute,
  PlacedCalls,
  placedCalls,
  type StoredCallListener,
} from './placed-calls.ts';
