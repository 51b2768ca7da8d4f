/**
 * One AMI message (event, response or action) as a flat object.
 *
 * Keys are spelled exactly as on the wire (AMI keys are case-sensitive: `Uniqueid`,
 * `Linkedid`, `CID-CallingPres`). Values are strings; a key that occurs more than once in
 * one message (`ChanVariable`, `Variable`, ...) keeps every value, in wire order, as an
 * array. This is also the element format of recordings (see `SCHEMA.md`, "Input").
 */
export type AmiMessage = Record<string, string | string[]>;

/** An AMI event: a message whose `Event` key names the event type (e.g. `Newchannel`). */
export type AmiEvent = AmiMessage & { Event: string };

/**
 * First value of `key` in `message`, or `undefined` when absent. Repeated keys hold arrays;
 * this returns their first element, which is what most consumers want.
 */
export function field(message: AmiMessage, key: string): string | undefined {
  const value = message[key];
  return typeof value === 'string' || value === undefined ? value : value[0];
}

/** Every value of `key` in `message` in wire order (empty when absent). */
export function fields(message: AmiMessage, key: string): string[] {
  const value = message[key];
  if (value === undefined) return [];
  return typeof value === 'string' ? [value] : value;
}
