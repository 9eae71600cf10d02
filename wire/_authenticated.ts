/**
 * Emit scaffolding shared by the messages with the Map-Register layout
 * (RFC 9301 §5.6: type/flags, nonce, key id, authentication data length,
 * authentication data at byte 16, then the body): Map-Register,
 * Map-Notify and Map-Notify-Ack. Each codec supplies how to check, size and
 * write its own message; this file sizes the auth field, picks the buffer
 * and signs.
 *
 * @module
 */

import { target, type Writer } from "./_cursor.ts";
import { authDataLength, type AuthKey, signAuthenticated } from "./auth.ts";

/** How one message type is checked, sized and written for a given auth length. */
export interface AuthenticatedCodec<M> {
  /** Throws RangeError/TypeError for values that cannot be encoded. */
  check(m: M, authLength: number): void;
  /** Encoded length with an auth field of `authLength` bytes. */
  length(m: M, authLength: number): number;
  /** Writes the message; `authData` undefined writes `authLength` zero bytes. */
  write(w: Writer, m: M, authData: Uint8Array | undefined, authLength: number): void;
}

/** Emits `m` with the given authentication data (into a new buffer or `into` at `offset`). */
export function emitWithAuthData<M>(
  codec: AuthenticatedCodec<M>,
  m: M,
  authData: Uint8Array,
  into: Uint8Array | undefined,
  offset: number,
  what: string,
): Uint8Array {
  codec.check(m, authData.length);
  const len = codec.length(m, authData.length);
  const w = target(len, into, offset, what);
  codec.write(w, m, authData, authData.length);
  return into === undefined ? w.bytes : into.subarray(offset, offset + len);
}

/**
 * Emits `m` with an auth field sized for `keyId` and fills it with the HMAC
 * under `key`. Throws RangeError for key id 0 or one auth.ts does not support.
 */
export function emitSigned<M>(
  codec: AuthenticatedCodec<M>,
  m: M,
  keyId: number,
  key: AuthKey,
  into: Uint8Array | undefined,
  offset: number,
  what: string,
): Uint8Array {
  const authLength = authDataLength(keyId);
  if (authLength === undefined || authLength === 0) {
    throw new RangeError(`${what}: cannot sign with key id ${keyId}`);
  }
  codec.check(m, authLength);
  const len = codec.length(m, authLength);
  const w = target(len, into, offset, what);
  codec.write(w, m, undefined, authLength);
  const out = into === undefined ? w.bytes : into.subarray(offset, offset + len);
  signAuthenticated(out, key);
  return out;
}
