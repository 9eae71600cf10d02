/**
 * Info-Request and Info-Reply (LISP type 7; draft-ermagan-lisp-nat-traversal,
 * "Info-Request/Info-Reply Message Format"; the R bit tells them apart).
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Type=7 |R|            Reserved                                 |  0
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                         Nonce . . .                           |  4
 * |                      . . . Nonce                              |  8
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |              Key ID           |  Authentication Data Length   | 12
 * ~                     Authentication Data                       ~ 16
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                              TTL                              |
 * |   Reserved    | EID mask-len  |        EID-prefix-AFI         |
 * |                          EID-prefix                           |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Request: AFI = 0, nothing follows                             |
 * | Reply:   AFI = 16387, NAT-Traversal LCAF (RFC 8060 type 7)    |
 * |   MS UDP port, ETR UDP port, Global ETR RLOC, MS RLOC,        |
 * |   Private ETR RLOC, RTR RLOC 1..n                             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * The same layout is in OOR (`oor/liblisp/lisp_messages.h`,
 * `info_nat_hdr_t`, R = 0x08 of byte 0) and Wireshark
 * (`packet-lisp.c`, `INFO_FLAG_R`). The authentication data sits at byte
 * 16 as in a Map-Register, so `auth.ts` signs and checks it unchanged.
 *
 * Choices:
 * - A reply must end in a NAT-Traversal LCAF (else `WireError`
 *   "info.nat"). A request's trailing address is read as any AFI and kept
 *   in `address` (the draft says AFI 0, which is kind "none"), so a peer's
 *   variant round-trips instead of failing.
 * - The authentication data is read with the length its field gives; its
 *   relation to the Key ID is auth.ts's business, not the parser's.
 * - Reserved bits are emitted as zero and ignored on parse. Bytes after the
 *   last address are a `WireError`.
 *
 * @module
 */

import { checkUint, Reader, target } from "./cursor.ts";
import {
  type Address,
  addressLength,
  maxMaskLen,
  type NatTraversalAddress,
  readAddress,
  writeAddress,
} from "./address.ts";

// ---------------------------------------------------------------------------
// Field table (draft-ermagan-lisp-nat-traversal, Info-Request/Info-Reply)
// ---------------------------------------------------------------------------

/** LISP type of Info-Request and Info-Reply (IANA "LISP Packet Types"). */
export const INFO_TYPE = 7;
/** Byte 0: Type in the top 4 bits. */
const TYPE_SHIFT = 4;
/** Byte 0: R bit, set in an Info-Reply. */
const FLAG_R = 0x08;
/** Bytes 4..11: Nonce. */
const NONCE = 4;
/** Bytes 12..13: Key ID. */
const KEY_ID = 12;
/** Bytes 14..15: Authentication Data Length. */
const AUTH_LENGTH = 14;
/** Byte 16: Authentication Data. */
const AUTH_DATA = 16;
/** After the auth data: TTL (4), Reserved (1), EID mask-len (1). */
const TAIL_FIXED = 6;

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** Fields shared by Info-Request and Info-Reply. */
export interface InfoCommon {
  /** Nonce (64 bits); the reply echoes the request's. */
  readonly nonce: bigint;
  /** Key ID of the authentication data (0 none, 1 HMAC-SHA-1-96, 2 HMAC-SHA-256-128). */
  readonly keyId: number;
  /** Authentication Data (its length goes in the length field; auth.ts fills it). */
  readonly authData: Uint8Array;
  /** TTL in minutes for which the Info-Reply's RTR set may be kept (0 in requests). */
  readonly ttl: number;
  /** EID mask-len. */
  readonly maskLen: number;
  /** The EID prefix the xTR asks about (an IP address or an Instance-ID LCAF). */
  readonly eid: Address;
}

/** An Info-Request (R = 0): an xTR asks how it is seen from outside its NAT. */
export interface InfoRequest extends InfoCommon {
  /** R bit clear. */
  readonly reply: false;
  /** The address after the EID prefix: AFI 0 (kind "none") per the draft, any other kept. */
  readonly address: Address;
}

/** An Info-Reply (R = 1): the Map-Server's answer with the NAT-Traversal LCAF. */
export interface InfoReply extends InfoCommon {
  /** R bit set. */
  readonly reply: true;
  /** The NAT-Traversal LCAF: ports, global/private ETR RLOC, MS RLOC, RTR RLOCs. */
  readonly nat: NatTraversalAddress;
}

/** An Info-Request or Info-Reply, told apart by `reply`. */
export type Info = InfoRequest | InfoReply;

// ---------------------------------------------------------------------------
// Parse
// ---------------------------------------------------------------------------

/** Parses an Info-Request or Info-Reply; `bytes` must hold exactly the message. */
export function parseInfo(bytes: Uint8Array): Info {
  const r: Reader = new Reader(bytes);
  r.need(AUTH_DATA, "info.header");
  const b0 = bytes[0]!;
  const type = b0 >>> TYPE_SHIFT;
  if (type !== INFO_TYPE) r.fail("info.type", `type ${type} is not an Info message (7)`, 0);
  const v = r.view;
  const nonce = v.getBigUint64(NONCE, false);
  const keyId = v.getUint16(KEY_ID, false);
  const authLength = v.getUint16(AUTH_LENGTH, false);
  r.pos = AUTH_DATA;
  const authData = r.copy(authLength, "info.auth-data");
  r.need(TAIL_FIXED, "info.ttl");
  const ttl = v.getUint32(r.pos, false);
  const maskAt = r.pos + 5;
  const maskLen = bytes[maskAt]!;
  r.pos += TAIL_FIXED;
  const eid = readAddress(r, "info.eid");
  const max = maxMaskLen(eid);
  if (max !== 0 && maskLen > max) {
    r.fail("info.eid-mask-len", `mask-len ${maskLen} exceeds ${max}`, maskAt);
  }
  const addrAt = r.pos;
  let info: Info;
  if ((b0 & FLAG_R) !== 0) {
    const nat = readAddress(r, "info.nat");
    if (nat.kind !== "nat") {
      r.fail("info.nat", `an Info-Reply needs a NAT-Traversal LCAF, found ${nat.kind}`, addrAt);
    }
    info = { reply: true, nonce, keyId, authData, ttl, maskLen, eid, nat };
  } else {
    const address = readAddress(r, "info.address");
    info = { reply: false, nonce, keyId, authData, ttl, maskLen, eid, address };
  }
  if (r.pos !== r.end) r.fail("info", `${r.remaining} trailing bytes`);
  return info;
}

// ---------------------------------------------------------------------------
// Length and emit
// ---------------------------------------------------------------------------

/** Encoded length of an Info-Request or Info-Reply. */
export function infoLength(m: Info): number {
  return AUTH_DATA + m.authData.length + TAIL_FIXED + addressLength(m.eid) +
    addressLength(m.reply ? m.nat : m.address);
}

/** Emits an Info-Request or Info-Reply into a new buffer or into `into` at `offset`. */
export function emitInfo(m: Info, into?: Uint8Array, offset = 0): Uint8Array {
  if (typeof m.nonce !== "bigint" || m.nonce < 0n || m.nonce > 0xffffffffffffffffn) {
    throw new RangeError(`Info nonce ${m.nonce} is not a 64-bit unsigned value`);
  }
  checkUint(m.keyId, 0xffff, "info key id");
  checkUint(m.authData.length, 0xffff, "info authentication data length");
  checkUint(m.ttl, 0xffffffff, "info ttl");
  checkUint(m.maskLen, 0xff, "info eid mask-len");
  if (m.reply && m.nat.kind !== "nat") {
    throw new TypeError(`an Info-Reply needs a NAT-Traversal LCAF, got ${m.nat.kind}`);
  }
  const len = infoLength(m);
  const w = target(len, into, offset, "emitInfo");
  w.u8((INFO_TYPE << TYPE_SHIFT) | (m.reply ? FLAG_R : 0));
  w.u8(0);
  w.u16(0);
  w.u64(m.nonce);
  w.u16(m.keyId);
  w.u16(m.authData.length);
  w.raw(m.authData);
  w.u32(m.ttl);
  w.u8(0);
  w.u8(m.maskLen);
  writeAddress(w, m.eid);
  writeAddress(w, m.reply ? m.nat : m.address);
  return w.bytes.subarray(offset, offset + len);
}
