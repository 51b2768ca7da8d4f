export type { AmiEvent, AmiMessage } from './ami/message.ts';
export { field, fields } from './ami/message.ts';
