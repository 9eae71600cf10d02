/**
 * Map-Notify (RFC 9301 §5.7, type 4) and Map-Notify-Ack (type 5): a
 * Map-Server confirms a registration (or tells an xTR its mapping changed),
 * and the xTR acknowledges a Map-Notify. Both have the Map-Register layout
 * and authentication (RFC 9301 §5.6); the Map-Notify-Ack "has the same
 * contents as a Map-Notify message".
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Type=4 |I|R|              Reserved             | Record Count  |  0   (Type=5: Map-Notify-Ack)
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                         Nonce . . .                           |  4
 * |                         . . . Nonce                           |  8
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |            Key ID             |  Authentication Data Length   | 12
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                     Authentication Data                       ~ 16
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                 Records (RFC 9301 §5.4) ...                   ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     xTR-ID (128 bits) and site-ID (64 bits), with the I bit   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |        MS-RTR Key ID          | MS-RTR Auth Data Length (R)   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~           MS-RTR Authentication Data (with the R bit)         ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * Flag sources: RFC 9301 §5.7 shows every flag bit as reserved. The NAT
 * traversal draft (draft-ermagan-lisp-nat-traversal) defines I (bit 4:
 * xTR-ID and site-ID follow the records, as in a Map-Register) and R
 * (bit 5: MS-RTR authentication data follows, for a Map-Notify that an
 * RTR relays). Wireshark (`MAP_NOT_FLAG_I` 0x080000, `MAP_NOT_FLAG_R`
 * 0x040000, MS-RTR Key ID/Length/Data after the xTR-ID and site-ID), OOR
 * (`xtr_id_present`, `rtr_auth_present`) and tcpdump agree on these
 * positions. The same flags are read in a Map-Notify-Ack. Other bits are
 * reserved: emitted as zero and ignored on parse.
 *
 * Authentication works as for a Map-Register: emit with zeros in
 * `authData` and run `signAuthenticated(bytes, key)` from `auth.ts`, or
 * call {@link emitSignedMapNotify}; check with `verifyAuthenticated`.
 * The HMAC covers the whole message, MS-RTR fields included as given.
 *
 * Error fields are `map-notify.*` for both types.
 *
 * @module
 */

import { checkUint, copyBytes, Reader, type Writer } from "./cursor.ts";
import {
  type AuthenticatedCodec,
  checkCommon,
  emitSigned,
  emitWithAuthData,
} from "./_authenticated.ts";
import type { AuthKey } from "./auth.ts";
import { type EidRecord, eidRecordLength, readEidRecord, writeEidRecord } from "./eid_record.ts";

// ---------------------------------------------------------------------------
// Field table (RFC 9301 §5.7; flags from the NAT traversal draft)

/** LISP message type of a Map-Notify. */
export const MAP_NOTIFY_TYPE = 4;
/** LISP message type of a Map-Notify-Ack. */
export const MAP_NOTIFY_ACK_TYPE = 5;

/** Byte 0: type in the high nibble. */
const TYPE_SHIFT = 4;
/** Byte 0, bit 4: I, xTR-ID and site-ID follow the records (NAT traversal draft). */
const FLAG_I = 0x08;
/** Byte 0, bit 5: R, MS-RTR authentication data follows (NAT traversal draft). */
const FLAG_R = 0x04;

/** Byte offset of the Record Count. */
const OFF_RECORD_COUNT = 3;
/** Byte offset of the Authentication Data Length. */
const OFF_AUTH_LENGTH = 14;
/** Header length up to the authentication data. */
const HEADER_LENGTH = 16;
/** xTR-ID (16 bytes) and site-ID (8 bytes) after the records. */
const XTR_ID_LENGTH = 24;
/** MS-RTR Key ID and MS-RTR Authentication Data Length. */
const RTR_AUTH_HEADER = 4;
/** Smallest possible record: 10 fixed bytes and an AFI-0 EID (2 bytes), no locators. */
const MIN_RECORD_LENGTH = 12;

/** Error field names for record i, built once (Record Count is 8 bits). */
const RECORD_FIELDS: readonly string[] = Array.from(
  { length: 256 },
  (_, i) => `map-notify.record[${i}]`,
);

// ---------------------------------------------------------------------------
// Type

/** A Map-Notify or a Map-Notify-Ack message. */
export interface MapNotify {
  /** True for a Map-Notify-Ack (type 5), false for a Map-Notify (type 4). */
  readonly ack: boolean;
  /** I bit: an xTR-ID and a site-ID follow the records (`xtrId` and `siteId` are set). */
  readonly xtrIdPresent: boolean;
  /** R bit: MS-RTR authentication follows (`rtrKeyId` and `rtrAuthData` are set). */
  readonly rtrAuthPresent: boolean;
  /** 64-bit nonce: the Map-Register's for a solicited Map-Notify, the Map-Notify's in an ack. */
  readonly nonce: bigint;
  /** Key ID: 0 none, 1 HMAC-SHA-1-96, 2 HMAC-SHA-256-128; other values kept as numbers. */
  readonly keyId: number;
  /**
   * Authentication data, as long as the Authentication Data Length field
   * says. Parsed messages get a copy (never a view of the input), which may
   * share its ArrayBuffer with other parsed messages.
   */
  readonly authData: Uint8Array;
  /** EID records with their locators (at most 255). */
  readonly records: readonly EidRecord[];
  /** 128-bit xTR-ID; present exactly when `xtrIdPresent`. */
  readonly xtrId?: bigint;
  /** 64-bit site-ID; present exactly when `xtrIdPresent`. */
  readonly siteId?: bigint;
  /** MS-RTR Key ID; present exactly when `rtrAuthPresent`. */
  readonly rtrKeyId?: number;
  /** MS-RTR authentication data (a copy, like `authData`); present exactly when `rtrAuthPresent`. */
  readonly rtrAuthData?: Uint8Array;
}

// ---------------------------------------------------------------------------
// Parse

/**
 * Parses a Map-Notify (type 4) or Map-Notify-Ack (type 5). Throws
 * `WireError` for another type, a truncated header or authentication
 * field, a record count larger than the records present, a malformed
 * record, a missing xTR-ID/site-ID (I bit) or MS-RTR authentication
 * (R bit), or bytes after the message.
 */
export function parseMapNotify(bytes: Uint8Array): MapNotify {
  const r = new Reader(bytes);
  const b0 = r.u8("map-notify.type");
  const type = b0 >>> TYPE_SHIFT;
  if (type !== MAP_NOTIFY_TYPE && type !== MAP_NOTIFY_ACK_TYPE) {
    r.fail("map-notify.type", `type ${type} is not 4 or 5`, 0);
  }
  r.skip(2, "map-notify.flags");
  const count = r.u8("map-notify.record-count");
  const nonce = r.u64("map-notify.nonce");
  const keyId = r.u16("map-notify.key-id");
  const authLength = r.u16("map-notify.auth-data-length");
  if (authLength > r.end - r.pos) {
    r.fail(
      "map-notify.auth-data-length",
      `length ${authLength} exceeds the ${r.end - r.pos} bytes left`,
      OFF_AUTH_LENGTH,
    );
  }
  const authData = copyBytes(bytes, r.pos, authLength);
  r.pos += authLength;
  const xtrIdPresent = (b0 & FLAG_I) !== 0;
  const rtrAuthPresent = (b0 & FLAG_R) !== 0;
  const reserve = (xtrIdPresent ? XTR_ID_LENGTH : 0) + (rtrAuthPresent ? RTR_AUTH_HEADER : 0);
  const records: EidRecord[] = new Array(count);
  for (let i = 0; i < count; i++) {
    if (r.end - r.pos - reserve < MIN_RECORD_LENGTH) {
      r.fail(
        "map-notify.record-count",
        `record count ${count}, but the data ends after ${i} record${i === 1 ? "" : "s"}`,
        OFF_RECORD_COUNT,
      );
    }
    records[i] = readEidRecord(r, RECORD_FIELDS[i]!);
  }
  const out: { -readonly [K in keyof MapNotify]: MapNotify[K] } = {
    ack: type === MAP_NOTIFY_ACK_TYPE,
    xtrIdPresent,
    rtrAuthPresent,
    nonce,
    keyId,
    authData,
    records,
  };
  if (xtrIdPresent) {
    r.need(XTR_ID_LENGTH, "map-notify.xtr-id");
    out.xtrId = r.u128("map-notify.xtr-id");
    out.siteId = r.u64("map-notify.site-id");
  }
  if (rtrAuthPresent) {
    out.rtrKeyId = r.u16("map-notify.rtr-key-id");
    const at = r.pos;
    const rtrLength = r.u16("map-notify.rtr-auth-data-length");
    if (rtrLength > r.end - r.pos) {
      r.fail(
        "map-notify.rtr-auth-data-length",
        `length ${rtrLength} exceeds the ${r.end - r.pos} bytes left`,
        at,
      );
    }
    out.rtrAuthData = copyBytes(bytes, r.pos, rtrLength);
    r.pos += rtrLength;
  }
  if (r.pos !== r.end) r.fail("map-notify", `${r.end - r.pos} trailing bytes`);
  return out;
}

// ---------------------------------------------------------------------------
// Length and emit

/** Encoded length of a Map-Notify or Map-Notify-Ack, in bytes. */
export function mapNotifyLength(m: MapNotify): number {
  return bodyLength(m, m.authData.length);
}

/**
 * Emits a Map-Notify (or, with `ack`, a Map-Notify-Ack) with the
 * authentication data given in `m` (for a message still to be signed:
 * zeros of `authDataLength(m.keyId)` bytes, then
 * `signAuthenticated(bytes, key)`; or use {@link emitSignedMapNotify}).
 * Writes into a new buffer, or into `into` at `offset`, and returns the
 * written bytes. Throws `RangeError` for values out of range and
 * `TypeError` when `xtrIdPresent`/`rtrAuthPresent` disagree with the
 * optional fields.
 */
export function emitMapNotify(m: MapNotify, into?: Uint8Array, offset = 0): Uint8Array {
  return emitWithAuthData(CODEC, m, m.authData, into, offset, "emitMapNotify");
}

/**
 * Emits a Map-Notify or Map-Notify-Ack signed under `key`: the
 * authentication field is sized for `m.keyId` (20 bytes for key ID 1, 32
 * for key ID 2), filled with the HMAC of the message, and `m.authData` is
 * ignored. Throws `RangeError` for key ID 0 or one `auth.ts` does not
 * support, or a prepared key built for another key ID.
 */
export function emitSignedMapNotify(
  m: MapNotify,
  key: AuthKey,
  into?: Uint8Array,
  offset = 0,
): Uint8Array {
  return emitSigned(CODEC, m, m.keyId, key, into, offset, "emitSignedMapNotify");
}

function bodyLength(m: MapNotify, authLength: number): number {
  let n = HEADER_LENGTH + authLength;
  const recs = m.records;
  for (let i = 0; i < recs.length; i++) n += eidRecordLength(recs[i]!);
  if (m.xtrIdPresent) n += XTR_ID_LENGTH;
  if (m.rtrAuthPresent) n += RTR_AUTH_HEADER + (m.rtrAuthData?.length ?? 0);
  return n;
}

function check(m: MapNotify, authLength: number): void {
  checkCommon(m, authLength, "map-notify");
  if (m.rtrAuthPresent) {
    if (m.rtrKeyId === undefined || m.rtrAuthData === undefined) {
      throw new TypeError("map-notify: the R bit is set but rtrKeyId or rtrAuthData is missing");
    }
    checkUint(m.rtrKeyId, 0xffff, "map-notify MS-RTR key id");
    if (m.rtrAuthData.length > 0xffff) {
      throw new RangeError(
        `map-notify MS-RTR authentication data: ${m.rtrAuthData.length} bytes, at most 65535`,
      );
    }
  } else if (m.rtrKeyId !== undefined || m.rtrAuthData !== undefined) {
    throw new TypeError("map-notify: rtrKeyId or rtrAuthData is set but the R bit is clear");
  }
}

/** Writes the message; `authData` undefined writes `authLength` zero bytes. */
function write(
  w: Writer,
  m: MapNotify,
  authData: Uint8Array | undefined,
  authLength: number,
): void {
  w.u8(
    ((m.ack ? MAP_NOTIFY_ACK_TYPE : MAP_NOTIFY_TYPE) << TYPE_SHIFT) |
      (m.xtrIdPresent ? FLAG_I : 0) | (m.rtrAuthPresent ? FLAG_R : 0),
  );
  w.u8(0);
  w.u8(0);
  const recs = m.records;
  w.u8(recs.length);
  w.u64(m.nonce);
  w.u16(m.keyId);
  w.u16(authLength);
  if (authData === undefined) w.zeros(authLength);
  else w.raw(authData);
  for (let i = 0; i < recs.length; i++) writeEidRecord(w, recs[i]!);
  if (m.xtrIdPresent) {
    w.u128(m.xtrId!);
    w.u64(m.siteId!);
  }
  if (m.rtrAuthPresent) {
    const data = m.rtrAuthData!;
    w.u16(m.rtrKeyId!);
    w.u16(data.length);
    w.raw(data);
  }
}

/** How this message is checked, sized and written (see _authenticated.ts). */
const CODEC: AuthenticatedCodec<MapNotify> = { check, length: bodyLength, write };
