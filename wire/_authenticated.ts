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

import { checkUint, target, type Writer } from "./cursor.ts";
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

const MAX_U64 = 0xffff_ffff_ffff_ffffn;
const MAX_U128 = (1n << 128n) - 1n;

/** The fields every Map-Register-layout message shares, for {@link checkCommon}. */
export interface AuthenticatedCommon {
  /** 64-bit nonce. */
  readonly nonce: bigint;
  /** 16-bit key id. */
  readonly keyId: number;
  /** The records (at most 255). */
  readonly records: readonly unknown[];
  /** I bit. */
  readonly xtrIdPresent: boolean;
  /** 128-bit xTR-ID, present iff the I bit. */
  readonly xtrId?: bigint;
  /** 64-bit site-ID, present iff the I bit. */
  readonly siteId?: bigint;
}

/**
 * Checks what the Map-Register-layout messages share before emitting:
 * nonce, key id, auth length, record count, and the I bit against
 * xtrId/siteId. `name` prefixes the messages (e.g. `"map-register"`).
 */
export function checkCommon(m: AuthenticatedCommon, authLength: number, name: string): void {
  checkU64(m.nonce, `${name} nonce`);
  checkUint(m.keyId, 0xffff, `${name} key id`);
  if (authLength > 0xffff) {
    throw new RangeError(`${name} authentication data: ${authLength} bytes, at most 65535`);
  }
  if (m.records.length > 0xff) {
    throw new RangeError(`${name} has ${m.records.length} records, at most 255 fit`);
  }
  if (m.xtrIdPresent) {
    if (m.xtrId === undefined || m.siteId === undefined) {
      throw new TypeError(`${name}: the I bit is set but xtrId or siteId is missing`);
    }
    if (typeof m.xtrId !== "bigint" || m.xtrId < 0n || m.xtrId > MAX_U128) {
      throw new RangeError(`${name} xtr-id: ${m.xtrId} is not a 128-bit unsigned bigint`);
    }
    checkU64(m.siteId, `${name} site-id`);
  } else if (m.xtrId !== undefined || m.siteId !== undefined) {
    throw new TypeError(`${name}: xtrId or siteId is set but the I bit is clear`);
  }
}

function checkU64(v: bigint, what: string): void {
  if (typeof v !== "bigint") throw new TypeError(`${what}: ${String(v)} is not a bigint`);
  if (v < 0n || v > MAX_U64) throw new RangeError(`${what}: ${v} is not a 64-bit unsigned value`);
}
