/**
 * The PBX simulator: a fake Asterisk 22 speaking AMI over TCP (see docs/simulator.md).
 *
 * @module
 */
export {
  CHANNEL_STATE_DESC,
  ChannelTable,
  coreShowChannels,
  type LiveChannel,
} from './channels.ts';
export { DEMO_RECORDING, parseListen, simulatorOptionsFromConfig } from './config.ts';
export {
  type OriginateRequest,
  parseCallerId,
  parseOriginate,
  SimCall,
  type SimCallHost,
  type SimCallResult,
} from './originate.ts';
export {
  eventForLoop,
  loadReplayEvents,
  loopSuffix,
  replayOffsets,
  type SimPace,
  type SimReplayOptions,
} from './replay.ts';
export {
  DEFAULT_SIM_DIALPLAN,
  DEFAULT_SIM_SCRIPT,
  loadScriptFile,
  parseScriptFile,
  resolveDialplan,
  resolveScript,
  SIM_OUTCOMES,
  type SimDialplan,
  type SimDialplans,
  type SimOutcome,
  type SimScript,
  SimScriptError,
  type SimScriptFile,
  type SimScripts,
  type SimUserEvent,
  validateDialplan,
  validateScript,
} from './script.ts';
export {
  type RecordedAction,
  Simulator,
  type SimulatorEvents,
  type SimulatorOptions,
  startSimulator,
} from './simulator.ts';
