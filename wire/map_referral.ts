/**
 * Map-Referral (RFC 8111 §6.4, LISP type 6): a DDT node's answer to a
 * DDT Map-Request.
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Type=6 |                Reserved               | Record Count  |  0
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                         Nonce . . .                           |  4
 * |                         . . . Nonce                           |  8
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          Record  TTL                          | 12 (records)
 * | Referral Count| EID mask-len  | ACT |A|I|     Reserved        |
 * |SigCnt |   Map Version Number  |            EID-AFI            |
 * |                          EID-prefix ...                       |
 * |  Ref entries (locator-record format, RFC 9301 §5.4) ...       |
 * ~  SigCnt signature sections                                    ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * Each signature section (RFC 8111 §6.4.1; same layout in
 * draft-ietf-lisp-ddt-09 §6.4.1, the source ONOS's `LispSignature` cites):
 *
 * ```
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                      Original Record TTL                      |  0
 * |                      Signature Expiration                     |  4
 * |                      Signature Inception                      |  8
 * |            Key Tag            |           Sig Length          | 12
 * | Sig-Algorithm |    Reserved   |            Reserved           | 16
 * ~                           Signature                           ~ 20
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * Choices:
 * - A record is an {@link EidRecord} (its `locators` are the Ref entries,
 *   its `action` a {@link REFERRAL_ACTION}) paired with its signatures.
 * - On emit the SigCnt nibble is `signatures.length` (0..15); the record's
 *   own `sigCount` is ignored. On parse `sigCount` equals
 *   `signatures.length`.
 * - Reserved bits (header, signature) are emitted as zero and ignored on
 *   parse. Bytes after the last record are a `WireError`.
 *
 * @module
 */

import { checkUint, Reader, target, Writer } from "./cursor.ts";
import { type EidRecord, eidRecordLength, readEidRecord, writeEidRecord } from "./eid_record.ts";

export { REFERRAL_ACTION } from "./eid_record.ts";

// ---------------------------------------------------------------------------
// Field table (RFC 8111 §6.4)
// ---------------------------------------------------------------------------

/** LISP type of a Map-Referral (RFC 8111 §6.4, IANA "LISP Packet Types"). */
export const MAP_REFERRAL_TYPE = 6;
/** Byte 0: Type in the top 4 bits; the other 20 bits up to byte 3 are reserved. */
const TYPE_SHIFT = 4;
/** Byte 3: Record Count. */
const RECORD_COUNT = 3;
/** Bytes 4..11: Nonce. */
const NONCE = 4;
/** Length of the fixed header (type word + nonce). */
const HEADER_LENGTH = 12;
/** Smallest possible record: 10 fixed bytes with an AFI 0 EID, no refs. */
const MIN_RECORD = 10;
/** Offset of the SigCnt/Map-Version word within a record (RFC 8111 §6.4). */
const RECORD_SIGCNT = 8;

/** Fixed part of a signature section before the signature bytes (RFC 8111 §6.4.1). */
const SIG_FIXED = 20;

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** One signature section after a Map-Referral record (RFC 8111 §6.4.1). */
export interface ReferralSignature {
  /** Original Record TTL: the record TTL covered by the signature. */
  readonly originalTtl: number;
  /** Signature Expiration: end of the validity period (seconds since 1970, as in DNSSEC). */
  readonly expiration: number;
  /** Signature Inception: start of the validity period (seconds since 1970). */
  readonly inception: number;
  /** Key Tag: identifies the key that made the signature. */
  readonly keyTag: number;
  /** Sig-Algorithm: the signature algorithm (8 bits; unknown values kept). */
  readonly algorithm: number;
  /** The signature bytes (Sig Length is their count, at most 65535). */
  readonly signature: Uint8Array;
}

/** One Map-Referral record with the signatures that follow it. */
export interface MapReferralRecord {
  /**
   * The record: `action` is a referral action, `locators` the Ref entries,
   * `incomplete` the I bit. Its `sigCount` is ignored on emit.
   */
  readonly record: EidRecord;
  /** The SigCnt signature sections after the Ref entries (at most 15). */
  readonly signatures: readonly ReferralSignature[];
}

/** A Map-Referral message (RFC 8111 §6.4). */
export interface MapReferral {
  /** Nonce copied from the DDT Map-Request (64 bits). */
  readonly nonce: bigint;
  /** The referral records (at most 255). */
  readonly records: readonly MapReferralRecord[];
}

// ---------------------------------------------------------------------------
// Signature sections
// ---------------------------------------------------------------------------

/** Reads one signature section. */
export function readReferralSignature(r: Reader, field = "signature"): ReferralSignature {
  r.need(SIG_FIXED, field);
  const v = r.view;
  const p = r.pos;
  const originalTtl = v.getUint32(p, false);
  const expiration = v.getUint32(p + 4, false);
  const inception = v.getUint32(p + 8, false);
  const keyTag = v.getUint16(p + 12, false);
  const sigLength = v.getUint16(p + 14, false);
  const algorithm = r.bytes[p + 16]!;
  r.pos = p + SIG_FIXED;
  const signature = r.copy(sigLength, `${field}.signature`);
  return { originalTtl, expiration, inception, keyTag, algorithm, signature };
}

/** Writes one signature section. */
export function writeReferralSignature(w: Writer, s: ReferralSignature): void {
  checkUint(s.originalTtl, 0xffffffff, "signature original record ttl");
  checkUint(s.expiration, 0xffffffff, "signature expiration");
  checkUint(s.inception, 0xffffffff, "signature inception");
  checkUint(s.keyTag, 0xffff, "signature key tag");
  checkUint(s.algorithm, 0xff, "signature algorithm");
  checkUint(s.signature.length, 0xffff, "signature length");
  w.u32(s.originalTtl);
  w.u32(s.expiration);
  w.u32(s.inception);
  w.u16(s.keyTag);
  w.u16(s.signature.length);
  w.u8(s.algorithm);
  w.u8(0);
  w.u16(0);
  w.raw(s.signature);
}

/** Encoded length of one signature section. */
export function referralSignatureLength(s: ReferralSignature): number {
  return SIG_FIXED + s.signature.length;
}

// ---------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------

/** Reads one Map-Referral record and its signature sections. */
export function readMapReferralRecord(r: Reader, field = "record"): MapReferralRecord {
  const record = readEidRecord(r, field);
  const n = record.sigCount;
  const signatures: ReferralSignature[] = new Array(n);
  for (let i = 0; i < n; i++) {
    if (r.pos >= r.end) {
      r.fail(`${field}.sig-count`, `announces ${n} signatures, data ends after ${i}`);
    }
    signatures[i] = readReferralSignature(r, `${field}.signature[${i}]`);
  }
  return { record, signatures };
}

/** Writes one Map-Referral record; SigCnt is `signatures.length`. */
export function writeMapReferralRecord(w: Writer, m: MapReferralRecord): void {
  const n = m.signatures.length;
  if (n > 15) throw new RangeError(`record has ${n} signatures, at most 15 fit`);
  const start = w.pos;
  writeEidRecord(w, m.record);
  const at = start + RECORD_SIGCNT;
  w.bytes[at] = (w.bytes[at]! & 0x0f) | (n << 4);
  for (let i = 0; i < n; i++) writeReferralSignature(w, m.signatures[i]!);
}

/** Encoded length of one Map-Referral record with its signatures. */
export function mapReferralRecordLength(m: MapReferralRecord): number {
  let len = eidRecordLength(m.record);
  for (const s of m.signatures) len += SIG_FIXED + s.signature.length;
  return len;
}

// ---------------------------------------------------------------------------
// Message
// ---------------------------------------------------------------------------

/** Error field names for record i, built once each so the happy path allocates no strings. */
const recordFields: string[] = [];

function recordField(i: number): string {
  return recordFields[i] ??= `map-referral.record[${i}]`;
}

/** Parses a Map-Referral; `bytes` must hold exactly the message. */
export function parseMapReferral(bytes: Uint8Array): MapReferral {
  const r = new Reader(bytes);
  r.need(HEADER_LENGTH, "map-referral.header");
  const type = bytes[0]! >>> TYPE_SHIFT;
  if (type !== MAP_REFERRAL_TYPE) {
    r.fail("map-referral.type", `type ${type} is not a Map-Referral (6)`, 0);
  }
  const count = bytes[RECORD_COUNT]!;
  const nonce = r.view.getBigUint64(NONCE, false);
  r.pos = HEADER_LENGTH;
  if (count * MIN_RECORD > r.remaining) {
    r.fail(
      "map-referral.record-count",
      `${count} records need at least ${count * MIN_RECORD} bytes, ${r.remaining} left`,
      RECORD_COUNT,
    );
  }
  const records: MapReferralRecord[] = new Array(count);
  for (let i = 0; i < count; i++) {
    if (r.pos >= r.end) {
      r.fail("map-referral.record-count", `announces ${count} records, data ends after ${i}`);
    }
    records[i] = readMapReferralRecord(r, recordField(i));
  }
  if (r.pos !== r.end) r.fail("map-referral", `${r.remaining} trailing bytes`);
  return { nonce, records };
}

/** Encoded length of a Map-Referral. */
export function mapReferralLength(m: MapReferral): number {
  let len = HEADER_LENGTH;
  for (const rec of m.records) len += mapReferralRecordLength(rec);
  return len;
}

/** Emits a Map-Referral into a new buffer or into `into` at `offset`. */
export function emitMapReferral(m: MapReferral, into?: Uint8Array, offset = 0): Uint8Array {
  const n = m.records.length;
  if (n > 0xff) throw new RangeError(`Map-Referral has ${n} records, at most 255 fit`);
  if (typeof m.nonce !== "bigint" || m.nonce < 0n || m.nonce > 0xffffffffffffffffn) {
    throw new RangeError(`Map-Referral nonce ${m.nonce} is not a 64-bit unsigned value`);
  }
  const len = mapReferralLength(m);
  const w = target(len, into, offset, "emitMapReferral");
  w.u8(MAP_REFERRAL_TYPE << TYPE_SHIFT);
  w.u16(0);
  w.u8(n);
  w.u64(m.nonce);
  for (let i = 0; i < n; i++) writeMapReferralRecord(w, m.records[i]!);
  return w.bytes.subarray(offset, offset + len);
}
