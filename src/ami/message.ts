/**
 * One AMI message (event, response or action) as a flat object.
 *
 * Keys are spelled exactly as on the wire (AMI keys are case-sensitive: `Uniqueid`,
 * `Linkedid`, `CID-CallingPres`). Values are strings; a key that occurs more than once in
 * one message (`ChanVariable`, `Variable`, ...) keeps every value, in wire order, as an
 * array. This is also the element format of recordings (see `SCHEMA.md`, "Input").
 *
 * Messages built by the parser ({@link emptyMessage}, `AmiParser`) inherit nothing: a key a
 * PBX sends (`toString`, `constructor`, `__proto__`, ...) is an own field like any other, and
 * a key it did not send reads as `undefined`.
 */
export type AmiMessage = Record<string, string | string[]>;

/** An AMI event: a message whose `Event` key names the event type (e.g. `Newchannel`). */
export type AmiEvent = AmiMessage & { Event: string };

/**
 * The prototype of every message the parser builds: an empty, frozen object whose own
 * prototype is `null`. So no key resolves to an `Object.prototype` member (`toString`,
 * `constructor`, `hasOwnProperty`, the `__proto__` accessor, ...): every name a PBX sends is
 * an own data property, every other name is `undefined`, and nothing can be added to the
 * prototype. An empty prototype rather than none because V8 keeps objects created with
 * `Object.create(null)` or `{ __proto__: null }` in dictionary mode: on Node 24, a 16-key
 * message built as `{ __proto__: null, ... }` took about 35 times as long as with a
 * constructor, and its field reads are hash lookups.
 */
export const MESSAGE_PROTOTYPE: object = Object.freeze(Object.create(null));

/** Constructor of empty messages: instances have {@link MESSAGE_PROTOTYPE} as prototype. */
const EmptyMessage = function AmiMessage() {} as unknown as new () => AmiMessage;
EmptyMessage.prototype = MESSAGE_PROTOTYPE;

/** A new, empty message that inherits nothing (see {@link MESSAGE_PROTOTYPE}). */
export function emptyMessage(): AmiMessage {
  return new EmptyMessage();
}

/**
 * True when `message` inherits nothing: its prototype is `null` or {@link MESSAGE_PROTOTYPE}.
 * Parsed messages always do; recordings read with `JSON.parse` do not (they are plain
 * objects, read through {@link field} / {@link fields}, which only return own strings).
 */
export function inheritsNothing(message: object): boolean {
  const proto = Object.getPrototypeOf(message) as object | null;
  return proto === null || proto === MESSAGE_PROTOTYPE;
}

/**
 * First value of `key` in `message`, or `undefined` when absent. Repeated keys hold arrays;
 * this returns their first element, which is what most consumers want. Only strings and
 * arrays are values: anything else (an inherited `Object.prototype` member of a plain object,
 * a number in a hand-written recording) reads as `undefined`.
 */
export function field(message: AmiMessage, key: string): string | undefined {
  const value = message[key];
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const head: unknown = value[0];
    return typeof head === 'string' ? head : undefined;
  }
  return undefined;
}

/** Every value of `key` in `message` in wire order (empty when absent; see {@link field}). */
export function fields(message: AmiMessage, key: string): string[] {
  const value = message[key];
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value : [];
}
