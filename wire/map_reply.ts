/**
 * Map-Reply (RFC 9301 §5.4, LISP type 2): the answer to a Map-Request,
 * carrying EID-to-RLOC mappings (or negative answers with an action and no
 * locators).
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Type=2 |P|E|S|          Reserved               | Record Count  |  0
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                         Nonce . . .                           |  4
 * |                         . . . Nonce                           |  8
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    Records (eid_record.ts) ...                | 12
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * Choices where the RFC leaves room:
 * - The 17 reserved header bits are emitted as zero and ignored on parse.
 *   Reserved bits inside a record (the I bit and the SigCnt nibble, which
 *   are Map-Referral fields) are kept by {@link EidRecord} and round-trip.
 * - `parseMapReply` is strict: bytes after the last record are a
 *   `WireError`. RFC 9301 defines nothing there; with the S bit, LISP-SEC
 *   (RFC 9303) appends its authentication data after the records, which
 *   its own codec must read: use `readMapReply`, which stops after the last
 *   record and leaves the reader there.
 *
 * @module
 */

import { Reader, target, Writer } from "./cursor.ts";
import { type EidRecord, eidRecordLength, readEidRecord, writeEidRecord } from "./eid_record.ts";

export { ACTION } from "./eid_record.ts";

// ---------------------------------------------------------------------------
// Field table (RFC 9301 §5.4)
// ---------------------------------------------------------------------------

/** LISP type of a Map-Reply (RFC 9301 §5.4, IANA "LISP Packet Types"). */
export const MAP_REPLY_TYPE = 2;
/** Byte 0: Type in the top 4 bits. */
const TYPE_SHIFT = 4;
/** Byte 0, bit 4: P, the reply answers an RLOC-probe. */
const FLAG_P = 0x08;
/** Byte 0, bit 5: E, the ETR can echo nonces. */
const FLAG_E = 0x04;
/** Byte 0, bit 6: S, LISP-SEC security data follows (RFC 9303). */
const FLAG_S = 0x02;
/** Byte 3: Record Count. */
const RECORD_COUNT = 3;
/** Bytes 4..11: Nonce. */
const NONCE = 4;
/** Length of the fixed header (type word + nonce); records follow. */
const HEADER_LENGTH = 12;
/** Most records a Map-Reply can carry (Record Count is 8 bits). */
export const MAX_MAP_REPLY_RECORDS = 255;

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** A Map-Reply message (RFC 9301 §5.4). */
export interface MapReply {
  /** P bit: the reply answers an RLOC-probe (the nonce is the probe's). */
  readonly probe: boolean;
  /** E bit: the sending ETR can do echo-nonce locator reachability (RFC 9300 §10.1). */
  readonly echoNonce: boolean;
  /** S bit: LISP-SEC authentication data follows the records (RFC 9303). */
  readonly security: boolean;
  /** Nonce (64 bits) copied from the Map-Request. */
  readonly nonce: bigint;
  /** The mappings (0..255); a negative answer is a record with no locators. */
  readonly records: readonly EidRecord[];
}

// ---------------------------------------------------------------------------
// Parse
// ---------------------------------------------------------------------------

const recordFields: string[] = [];

function recordField(i: number): string {
  return recordFields[i] ??= `map-reply.record[${i}]`;
}

/**
 * Reads one Map-Reply at the reader's position and leaves the reader just
 * after its last record. Bytes beyond are not looked at.
 */
export function readMapReply(r: Reader): MapReply {
  const start = r.pos;
  r.need(HEADER_LENGTH, "map-reply.header");
  const b0 = r.bytes[start]!;
  const type = b0 >>> TYPE_SHIFT;
  if (type !== MAP_REPLY_TYPE) {
    r.fail("map-reply.type", `type ${type} is not a Map-Reply (2)`, start);
  }
  const count = r.bytes[start + RECORD_COUNT]!;
  const nonce = r.view.getBigUint64(start + NONCE, false);
  r.pos = start + HEADER_LENGTH;
  const records: EidRecord[] = new Array(count);
  for (let i = 0; i < count; i++) {
    if (r.pos >= r.end) {
      r.fail(
        "map-reply.record-count",
        `announces ${count} records, data ends after ${i}`,
        start + RECORD_COUNT,
      );
    }
    records[i] = readEidRecord(r, recordField(i));
  }
  return {
    probe: (b0 & FLAG_P) !== 0,
    echoNonce: (b0 & FLAG_E) !== 0,
    security: (b0 & FLAG_S) !== 0,
    nonce,
    records,
  };
}

/**
 * Parses a Map-Reply; `bytes` must hold exactly the message (trailing bytes
 * are a `WireError`, see the module notes).
 */
export function parseMapReply(bytes: Uint8Array): MapReply {
  const r = new Reader(bytes);
  const m = readMapReply(r);
  if (r.pos !== r.end) {
    r.fail("map-reply", `${r.remaining} trailing byte${r.remaining === 1 ? "" : "s"}`);
  }
  return m;
}

// ---------------------------------------------------------------------------
// Length and emit
// ---------------------------------------------------------------------------

/** Encoded length of a Map-Reply. */
export function mapReplyLength(m: MapReply): number {
  let len = HEADER_LENGTH;
  const recs = m.records;
  for (let i = 0; i < recs.length; i++) len += eidRecordLength(recs[i]!);
  return len;
}

/**
 * Writes a Map-Reply at the writer's position. Throws `RangeError` for more
 * than 255 records or a nonce outside 64 bits (and whatever
 * `writeEidRecord` throws for a bad record).
 */
export function writeMapReply(w: Writer, m: MapReply): void {
  const n = m.records.length;
  check(n, m.nonce);
  w.u8(
    (MAP_REPLY_TYPE << TYPE_SHIFT) |
      (m.probe ? FLAG_P : 0) |
      (m.echoNonce ? FLAG_E : 0) |
      (m.security ? FLAG_S : 0),
  );
  w.u16(0);
  w.u8(n);
  w.u64(m.nonce);
  for (let i = 0; i < n; i++) writeEidRecord(w, m.records[i]!);
}

/** Emits a Map-Reply into a new buffer or into `into` at `offset`. */
export function emitMapReply(m: MapReply, into?: Uint8Array, offset = 0): Uint8Array {
  check(m.records.length, m.nonce);
  const len = mapReplyLength(m);
  const w = target(len, into, offset, "emitMapReply");
  writeMapReply(w, m);
  return w.bytes.subarray(offset, offset + len);
}

function check(n: number, nonce: bigint): void {
  if (n > MAX_MAP_REPLY_RECORDS) {
    throw new RangeError(`Map-Reply has ${n} records, at most ${MAX_MAP_REPLY_RECORDS} fit`);
  }
  if (typeof nonce !== "bigint" || nonce < 0n || nonce > 0xffffffffffffffffn) {
    throw new RangeError(`Map-Reply nonce ${nonce} is not a 64-bit unsigned value`);
  }
}
