/**
 * Map-Register (RFC 9301 §5.6, type 3): an ETR registers its EID-to-RLOC
 * mappings with a Map-Server, authenticated by an HMAC over the message.
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Type=3 |P|S|I|R|   Reserved    | Rsv |E|T|a|m|M| Record Count  |  0
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
 * |            xTR-ID (128 bits, only with the I bit) ...         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |            site-ID (64 bits, only with the I bit) ...         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * Flag sources (bit numbers count from the first bit of the message):
 * - P (bit 4), S (bit 5), I (bit 6), E (bit 19), T (bit 20), a (bit 21),
 *   M (bit 23): RFC 9301 §5.6.
 * - R (bit 7): the NAT traversal draft (draft-ermagan-lisp-nat-traversal);
 *   Wireshark ("R bit, Built for an RTR", mask 0x010000 of the first 24
 *   bits), tcpdump ("R-Build-For-RTR") and OOR (`rbit`) all put it here.
 * - m (bit 22): the LISP Mobile Node bit (draft-ietf-lisp-mn, the
 *   rfc6833bis drafts; OOR `lisp_mn`, lispers.net `mobile_node`). RFC 9301
 *   shows this position as a reserved "R" bit.
 *
 * Every other bit is reserved: emitted as zero and ignored on parse (not
 * kept). lispers.net puts an encryption key-id and an "e" bit in bits
 * 15..18 and a map-register-refresh "F" bit in bit 19 (where RFC 9301 has
 * E); those are not modelled.
 *
 * The 16-bit Key ID is kept whole: 1 is HMAC-SHA-1-96 and 2 is
 * HMAC-SHA-256-128 (RFC 9301 §5.6). lispers.net (and, in its figure,
 * RFC 9301) splits it into an 8-bit key index and an 8-bit Algorithm ID;
 * with key index 0 the two readings agree, and OOR, Wireshark and tcpdump
 * read one 16-bit value.
 *
 * Authentication: the data field carries the HMAC of the whole message
 * computed with the field set to zero. Deployed peers put the full digest
 * on the wire (20 bytes for key ID 1, 32 for key ID 2); parsing honours the
 * Authentication Data Length whatever the key ID. To send a signed
 * message, either call {@link emitSignedMapRegister}, or emit with
 * `authData` set to zeros of `authDataLength(keyId)` bytes (from
 * `auth.ts`) and then run `signAuthenticated(bytes, key)` on the result.
 * To check one, run `verifyAuthenticated(bytes, key)` on the received
 * bytes (it does not need the parsed form).
 *
 * @module
 */

import { copyBytes, Reader, type Writer } from "./cursor.ts";
import {
  type AuthenticatedCodec,
  checkCommon,
  emitSigned,
  emitWithAuthData,
} from "./_authenticated.ts";
import type { AuthKey } from "./auth.ts";
import { type EidRecord, eidRecordLength, readEidRecord, writeEidRecord } from "./eid_record.ts";

// ---------------------------------------------------------------------------
// Field table (RFC 9301 §5.6)

/** LISP message type of a Map-Register. */
export const MAP_REGISTER_TYPE = 3;

/** Byte 0: type in the high nibble. */
const TYPE_SHIFT = 4;
/** Byte 0, bit 4: P, proxy Map-Reply requested (RFC 9301 §5.6). */
const FLAG_P = 0x08;
/** Byte 0, bit 5: S, security (LISP-SEC) capable (RFC 9301 §5.6, RFC 9303). */
const FLAG_S = 0x04;
/** Byte 0, bit 6: I, xTR-ID and site-ID follow the records (RFC 9301 §5.6). */
const FLAG_I = 0x02;
/** Byte 0, bit 7: R, built for an RTR (NAT traversal draft). */
const FLAG_R = 0x01;
/** Byte 2, bit 19: E, EID-notify (RFC 9301 §5.6). */
const FLAG_E = 0x10;
/** Byte 2, bit 20: T, use the record TTL for the registration timeout (RFC 9301 §5.6). */
const FLAG_T = 0x08;
/** Byte 2, bit 21: a, merge request (RFC 9301 §5.6, RFC 8378). */
const FLAG_A = 0x04;
/** Byte 2, bit 22: m, LISP Mobile Node (draft-ietf-lisp-mn; reserved in RFC 9301). */
const FLAG_MN = 0x02;
/** Byte 2, bit 23: M, want Map-Notify (RFC 9301 §5.6). */
const FLAG_M = 0x01;

/** Byte offset of the Record Count. */
const OFF_RECORD_COUNT = 3;
/** Byte offset of the Authentication Data Length. */
const OFF_AUTH_LENGTH = 14;
/** Header length up to the authentication data. */
const HEADER_LENGTH = 16;
/** xTR-ID (16 bytes) and site-ID (8 bytes) after the records. */
const XTR_ID_LENGTH = 24;
/** Smallest possible record: 10 fixed bytes and an AFI-0 EID (2 bytes), no locators. */
const MIN_RECORD_LENGTH = 12;

/** Error field names for record i, built once (Record Count is 8 bits). */
const RECORD_FIELDS: readonly string[] = Array.from(
  { length: 256 },
  (_, i) => `map-register.record[${i}]`,
);

// ---------------------------------------------------------------------------
// Type

/** A Map-Register message. */
export interface MapRegister {
  /** P bit: the Map-Server is asked to answer Map-Requests for these EIDs itself. */
  readonly proxyReply: boolean;
  /** S bit: the registering ETR is LISP-SEC capable (RFC 9303). */
  readonly securityCapable: boolean;
  /** I bit: an xTR-ID and a site-ID follow the records (`xtrId` and `siteId` are set). */
  readonly xtrIdPresent: boolean;
  /** R bit (NAT traversal draft): the registration is built for an RTR. */
  readonly rtr: boolean;
  /** E bit: EID-notify, sent by a first-hop router that discovered a dynamic EID. */
  readonly eidNotify: boolean;
  /** T bit: time the registration out after the record TTL, not the Map-Server's default. */
  readonly useTtlForTimeout: boolean;
  /** a bit: merge this registration with those of other xTRs for the same EID (RFC 8378). */
  readonly mergeRequest: boolean;
  /** m bit: the registering xTR is a LISP Mobile Node (draft-ietf-lisp-mn). */
  readonly mobileNode: boolean;
  /** M bit: the ETR wants a Map-Notify in answer. */
  readonly wantMapNotify: boolean;
  /** 64-bit nonce; echoed in the Map-Notify. */
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
}

// ---------------------------------------------------------------------------
// Parse

/**
 * Parses a Map-Register. Throws `WireError` for a wrong type, a truncated
 * header or authentication field, a record count larger than the records
 * present, a malformed record, a missing xTR-ID/site-ID when the I bit is
 * set, or bytes after the message.
 */
export function parseMapRegister(bytes: Uint8Array): MapRegister {
  const r = new Reader(bytes);
  const b0 = r.u8("map-register.type");
  if (b0 >>> TYPE_SHIFT !== MAP_REGISTER_TYPE) {
    r.fail("map-register.type", `type ${b0 >>> TYPE_SHIFT} is not ${MAP_REGISTER_TYPE}`, 0);
  }
  r.skip(1, "map-register.flags");
  const b2 = r.u8("map-register.flags");
  const count = r.u8("map-register.record-count");
  const nonce = r.u64("map-register.nonce");
  const keyId = r.u16("map-register.key-id");
  const authLength = r.u16("map-register.auth-data-length");
  if (authLength > r.end - r.pos) {
    r.fail(
      "map-register.auth-data-length",
      `length ${authLength} exceeds the ${r.end - r.pos} bytes left`,
      OFF_AUTH_LENGTH,
    );
  }
  const authData = copyBytes(bytes, r.pos, authLength);
  r.pos += authLength;
  const xtrIdPresent = (b0 & FLAG_I) !== 0;
  const reserve = xtrIdPresent ? XTR_ID_LENGTH : 0;
  const records: EidRecord[] = new Array(count);
  for (let i = 0; i < count; i++) {
    if (r.end - r.pos - reserve < MIN_RECORD_LENGTH) {
      r.fail(
        "map-register.record-count",
        `record count ${count}, but the data ends after ${i} record${i === 1 ? "" : "s"}`,
        OFF_RECORD_COUNT,
      );
    }
    records[i] = readEidRecord(r, RECORD_FIELDS[i]!);
  }
  const out: {
    -readonly [K in keyof MapRegister]: MapRegister[K];
  } = {
    proxyReply: (b0 & FLAG_P) !== 0,
    securityCapable: (b0 & FLAG_S) !== 0,
    xtrIdPresent,
    rtr: (b0 & FLAG_R) !== 0,
    eidNotify: (b2 & FLAG_E) !== 0,
    useTtlForTimeout: (b2 & FLAG_T) !== 0,
    mergeRequest: (b2 & FLAG_A) !== 0,
    mobileNode: (b2 & FLAG_MN) !== 0,
    wantMapNotify: (b2 & FLAG_M) !== 0,
    nonce,
    keyId,
    authData,
    records,
  };
  if (xtrIdPresent) {
    r.need(XTR_ID_LENGTH, "map-register.xtr-id");
    out.xtrId = r.u128("map-register.xtr-id");
    out.siteId = r.u64("map-register.site-id");
  }
  if (r.pos !== r.end) r.fail("map-register", `${r.end - r.pos} trailing bytes`);
  return out;
}

// ---------------------------------------------------------------------------
// Length and emit

/** Encoded length of a Map-Register, in bytes. */
export function mapRegisterLength(m: MapRegister): number {
  return bodyLength(m, m.authData.length);
}

/**
 * Emits a Map-Register with the authentication data given in `m` (for a
 * message still to be signed: zeros of `authDataLength(m.keyId)` bytes,
 * then `signAuthenticated(bytes, key)`; or use
 * {@link emitSignedMapRegister}). Writes into a new buffer, or into `into`
 * at `offset`, and returns the written bytes. Throws `RangeError` for
 * values out of range and `TypeError` when `xtrIdPresent` disagrees with
 * `xtrId`/`siteId`.
 */
export function emitMapRegister(m: MapRegister, into?: Uint8Array, offset = 0): Uint8Array {
  return emitWithAuthData(CODEC, m, m.authData, into, offset, "emitMapRegister");
}

/**
 * Emits a Map-Register signed under `key`: the authentication field is
 * sized for `m.keyId` (20 bytes for key ID 1, 32 for key ID 2), filled with
 * the HMAC of the message, and `m.authData` is ignored. Throws `RangeError`
 * for key ID 0 or one `auth.ts` does not support, or a prepared key built
 * for another key ID.
 */
export function emitSignedMapRegister(
  m: MapRegister,
  key: AuthKey,
  into?: Uint8Array,
  offset = 0,
): Uint8Array {
  return emitSigned(CODEC, m, m.keyId, key, into, offset, "emitSignedMapRegister");
}

function bodyLength(m: MapRegister, authLength: number): number {
  let n = HEADER_LENGTH + authLength;
  const recs = m.records;
  for (let i = 0; i < recs.length; i++) n += eidRecordLength(recs[i]!);
  return m.xtrIdPresent ? n + XTR_ID_LENGTH : n;
}

function check(m: MapRegister, authLength: number): void {
  checkCommon(m, authLength, "map-register");
}

/** Writes the message; `authData` undefined writes `authLength` zero bytes. */
function write(
  w: Writer,
  m: MapRegister,
  authData: Uint8Array | undefined,
  authLength: number,
): void {
  w.u8(
    (MAP_REGISTER_TYPE << TYPE_SHIFT) | (m.proxyReply ? FLAG_P : 0) |
      (m.securityCapable ? FLAG_S : 0) | (m.xtrIdPresent ? FLAG_I : 0) | (m.rtr ? FLAG_R : 0),
  );
  w.u8(0);
  w.u8(
    (m.eidNotify ? FLAG_E : 0) | (m.useTtlForTimeout ? FLAG_T : 0) |
      (m.mergeRequest ? FLAG_A : 0) | (m.mobileNode ? FLAG_MN : 0) |
      (m.wantMapNotify ? FLAG_M : 0),
  );
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
}

/** How this message is checked, sized and written (see _authenticated.ts). */
const CODEC: AuthenticatedCodec<MapRegister> = { check, length: bodyLength, write };
