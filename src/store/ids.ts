/**
 * Text ids of the store ({@link newId}, ULID layout). Time in the store is integer epoch
 * milliseconds (`Date.now()`), its only representation. Re-exported by `db.ts`.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';

let lastIdMs = 0;
let idSequence = 0;

/**
 * A new text id: 26 characters, Crockford base32, the first 10 encoding epoch ms (so ids sort
 * by creation time within a process and roughly across processes), the rest random (80 bits,
 * with a per-millisecond counter so ids of one process are strictly increasing). ULID layout.
 */
export function newId(atMs: number = Date.now()): string {
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  let ms = Math.max(atMs, lastIdMs);
  if (ms === lastIdMs) idSequence += 1;
  else idSequence = 0;
  lastIdMs = ms;
  let time = '';
  for (let i = 0; i < 10; i += 1) {
    time = alphabet[ms % 32] + time;
    ms = Math.floor(ms / 32);
  }
  const random = randomBytes(10);
  // The first 2 bytes carry the sequence, keeping ids of one millisecond ordered.
  random.writeUInt16BE(idSequence & 0xffff, 0);
  let bits = 0n;
  for (const byte of random) bits = (bits << 8n) | BigInt(byte);
  let tail = '';
  for (let i = 0; i < 16; i += 1) {
    tail = alphabet[Number(bits & 31n)] + tail;
    bits >>= 5n;
  }
  return time + tail;
}
