// Hostile input shared by the tests of issue 10 §4 ("A hostile or broken PBX cannot take the
// process down").

/**
 * Every own property name of `Object.prototype` (`constructor`, `toString`, `valueOf`,
 * `hasOwnProperty`, `__proto__`, `__defineGetter__`, ...), plus `__proto__` whatever the
 * engine lists: header names that broke the parser (`previous.push is not a function`).
 */
export const PROTOTYPE_NAMES: readonly string[] = [
  ...new Set([...Object.getOwnPropertyNames(Object.prototype), '__proto__']),
];

/** A value per name that shows which header it came from: `value-of-<name>`. */
export function valueFor(name: string): string {
  return `value-of-${name}`;
}

/** AMI wire text of one `UserEvent` on `uniqueid` carrying every name of {@link PROTOTYPE_NAMES}. */
export function prototypeUserEventWire(uniqueid: string, userEvent = 'Hostile'): string {
  let text = `Event: UserEvent\r\nPrivilege: user,all\r\nChannel: PJSIP/200-00000001\r\nUniqueid: ${uniqueid}\r\nLinkedid: ${uniqueid}\r\nUserEvent: ${userEvent}\r\n`;
  for (const name of PROTOTYPE_NAMES) text += `${name}: ${valueFor(name)}\r\n`;
  return `${text}\r\n`;
}
