/** What a PBX would answer about its channels after a sequence of AMI events (see src/sim/channels.ts). */
export { coreShowChannels } from '../../src/sim/channels.ts';
