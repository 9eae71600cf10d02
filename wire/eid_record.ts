/**
 * EID records (RFC 9301 §5.4 "Record"), shared by Map-Reply, Map-Register
 * and Map-Notify, and in their Map-Referral form (RFC 8111 §6.4) with the
 * incomplete bit and signature count.
 *
 * @module
 */

import { checkUint, Reader, target, Writer } from "./cursor.ts";
import { type Address, addressLength, maxMaskLen, readAddress, writeAddress } from "./address.ts";
import { locatorLength, type LocatorRecord, readLocator, writeLocator } from "./locator.ts";

// RFC 9301 §5.4, Record (RFC 8111 §6.4 for the Map-Referral variant):
//   Record TTL (4)
//   Locator Count (1) | EID mask-len (1) | ACT (3 bits) | A | I | Reserved (11 bits)
//   SigCnt (4 bits) | Map-Version Number (12 bits) | EID-Prefix-AFI + EID-Prefix
//   Locator records ...
/** Fixed part of a record before the EID-Prefix-AFI. */
const RECORD_FIXED = 10;
/** ACT field: the top 3 bits of byte 6. */
const ACT_SHIFT = 5;
/** A bit: authoritative (byte 6). */
const FLAG_A = 0x10;
/** I bit: incomplete referral set (byte 6; RFC 8111 §6.4, reserved in Map-Reply). */
const FLAG_I = 0x08;

/** Map-Reply actions (RFC 9301 §5.4, ACT). */
export const ACTION = {
  NO_ACTION: 0,
  NATIVELY_FORWARD: 1,
  SEND_MAP_REQUEST: 2,
  DROP_NO_REASON: 3,
  DROP_POLICY_DENIED: 4,
  DROP_AUTH_FAILURE: 5,
} as const;

/** Map-Referral actions (RFC 8111 §6.4, ACT in a Map-Referral record). */
export const REFERRAL_ACTION = {
  NODE_REFERRAL: 0,
  MS_REFERRAL: 1,
  MS_ACK: 2,
  MS_NOT_REGISTERED: 3,
  DELEGATION_HOLE: 4,
  NOT_AUTHORITATIVE: 5,
} as const;

/** One mapping: an EID prefix, its TTL and action, and its locators. */
export interface EidRecord {
  /** Record TTL in minutes (0xffffffff: never expires). */
  readonly ttl: number;
  /** EID prefix length. */
  readonly maskLen: number;
  /** ACT: a Map-Reply action or, in a Map-Referral, a referral action (0..7). */
  readonly action: number;
  /** A bit: the record comes from an authoritative source. */
  readonly authoritative: boolean;
  /** I bit: the referral set is incomplete (Map-Referral only; reserved elsewhere). */
  readonly incomplete: boolean;
  /** SigCnt: number of signatures after the locators (Map-Referral only; 0 elsewhere). */
  readonly sigCount: number;
  /** Map-Version Number (12 bits, RFC 9302). */
  readonly mapVersion: number;
  /** The EID prefix (an IP address, MAC, or LCAF such as Instance-ID). */
  readonly eid: Address;
  /** Locator records (Ref entries in a Map-Referral). */
  readonly locators: readonly LocatorRecord[];
}

/**
 * Reads one record. Signatures (Map-Referral) are not read here: the
 * Map-Referral codec reads `sigCount` of them after the record.
 */
export function readEidRecord(r: Reader, field = "record"): EidRecord {
  const start = r.pos;
  r.need(RECORD_FIXED, field);
  const v = r.view;
  const b = r.bytes;
  const ttl = v.getUint32(start, false);
  const count = b[start + 4]!;
  const maskLen = b[start + 5]!;
  const flags = b[start + 6]!;
  const sv = v.getUint16(start + 8, false);
  r.pos = start + RECORD_FIXED;
  const eid = readAddress(r, `${field}.eid`);
  const max = maxMaskLen(eid);
  if (max !== 0 && maskLen > max) {
    r.fail(`${field}.eid-mask-len`, `mask-len ${maskLen} exceeds ${max}`, start + 5);
  }
  const locators: LocatorRecord[] = new Array(count);
  for (let i = 0; i < count; i++) locators[i] = readLocator(r, `${field}.locator[${i}]`);
  return {
    ttl,
    maskLen,
    action: flags >>> ACT_SHIFT,
    authoritative: (flags & FLAG_A) !== 0,
    incomplete: (flags & FLAG_I) !== 0,
    sigCount: sv >>> 12,
    mapVersion: sv & 0xfff,
    eid,
    locators,
  };
}

/** Writes one record (without Map-Referral signatures). */
export function writeEidRecord(w: Writer, rec: EidRecord): void {
  checkUint(rec.ttl, 0xffffffff, "record ttl");
  checkUint(rec.maskLen, 0xff, "record eid mask-len");
  checkUint(rec.action, 7, "record action");
  checkUint(rec.sigCount, 15, "record signature count");
  checkUint(rec.mapVersion, 0xfff, "record map-version");
  const max = maxMaskLen(rec.eid);
  if (max !== 0 && rec.maskLen > max) {
    throw new RangeError(`record eid mask-len ${rec.maskLen} exceeds ${max}`);
  }
  if (rec.locators.length > 0xff) {
    throw new RangeError(`record has ${rec.locators.length} locators, at most 255 fit`);
  }
  w.u32(rec.ttl);
  w.u8(rec.locators.length);
  w.u8(rec.maskLen);
  w.u8(
    (rec.action << ACT_SHIFT) | (rec.authoritative ? FLAG_A : 0) |
      (rec.incomplete ? FLAG_I : 0),
  );
  w.u8(0);
  w.u16((rec.sigCount << 12) | rec.mapVersion);
  writeAddress(w, rec.eid);
  for (const l of rec.locators) writeLocator(w, l);
}

/** Encoded length of a record (without Map-Referral signatures). */
export function eidRecordLength(rec: EidRecord): number {
  let n = RECORD_FIXED + addressLength(rec.eid);
  for (const l of rec.locators) n += locatorLength(l);
  return n;
}

/** Parses a buffer holding exactly one record. */
export function parseEidRecord(bytes: Uint8Array): EidRecord {
  const r = new Reader(bytes);
  const rec = readEidRecord(r);
  if (r.pos !== r.end) r.fail("record", `${r.remaining} trailing bytes`);
  return rec;
}

/** Emits one record into a new buffer or into `into` at `offset`. */
export function emitEidRecord(rec: EidRecord, into?: Uint8Array, offset = 0): Uint8Array {
  const len = eidRecordLength(rec);
  const w = target(len, into, offset, "emitEidRecord");
  writeEidRecord(w, rec);
  return w.bytes.subarray(offset, offset + len);
}
