/**
 * Map-Request (RFC 9301 §5.2, LISP type 1): asks for the mapping of an EID
 * prefix; also the RLOC-probe (P bit) and the Solicit-Map-Request (S bit).
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Type=1 |A|M|P|S|p|s|R|I|  Rsvd   |L|D|   IRC   | Record Count  |  0
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                         Nonce . . .                           |  4
 * |                         . . . Nonce                           |  8
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |         Source-EID-AFI        |   Source EID Address  ...     | 12
 * |         ITR-RLOC-AFI 1        |    ITR-RLOC Address 1  ...    |
 * |                              ...                              |
 * |         ITR-RLOC-AFI n        |    ITR-RLOC Address n  ...    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |N|  Reserved   | EID mask-len  |        EID-Prefix-AFI         |  Rec
 * |                       EID-Prefix  ...                         |  (x Record Count)
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                   Map-Reply Record  ...                       |  (if M)
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |             xTR-ID (128 bits), Site-ID (64 bits)              |  (if I)
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * Bit 10 ("R") and bits 12..16 ("Rsvd") are reserved; bit 17 is L
 * (local xTR), bit 18 is D (don't map-reply), bits 19..23 are IRC, the
 * number of ITR-RLOCs minus one.
 *
 * Publish/subscribe (RFC 9437 §4): bit 11 is I, "xTR-ID present": the
 * 128-bit xTR-ID and 64-bit Site-ID follow the message (after the
 * Map-Reply record when M is set); the top bit of a record's Reserved byte
 * is N, "notification requested": the ITR subscribes to that prefix.
 * Both are fields here: `xtrId`/`siteId` present exactly when I is set,
 * `notify` on a record present (true) exactly when N is set.
 *
 * Choices where the RFC leaves room:
 * - The M bit is not a field of {@link MapRequest}: it is set on emit exactly
 *   when `mapReply` is present, and on parse `mapReply` is present exactly
 *   when M was set, so the two can never disagree.
 * - Reserved bits (R, Rsvd, and the rest of each record's Reserved byte)
 *   are emitted as zero and ignored on parse; they do not round-trip.
 * - A record count of 0 is accepted both ways (RFC 9301 has senders send
 *   exactly one record, and receivers accept one or more).
 * - Each record's EID mask-len must fit the EID's family (32 for IPv4, 128
 *   for IPv6, 48 for MAC, the inner family for an Instance-ID LCAF): a
 *   `WireError` on parse, a `RangeError` on emit.
 * - `parseMapRequest` is strict: bytes after the last record (after the
 *   Map-Reply record when M is set, after the xTR-ID and Site-ID when I is
 *   set) are a `WireError`. Extensions that append other data (LISP-SEC's
 *   ECM authentication data, RFC 9303) must be read by their own codec:
 *   use `readMapRequest`, which stops after the message and leaves the
 *   reader there.
 * - Wireshark 4.0 knows neither I nor N: it shows I inside its reserved
 *   bits (`lisp.mreq.res`) and the xTR-ID and Site-ID as trailing data,
 *   with no expert warning.
 *
 * @module
 */

import { checkUint, Reader, target, Writer } from "./cursor.ts";
import { type Address, addressLength, maxMaskLen, readAddress, writeAddress } from "./address.ts";
import { type EidRecord, eidRecordLength, readEidRecord, writeEidRecord } from "./eid_record.ts";

// ---------------------------------------------------------------------------
// Field table (RFC 9301 §5.2)
// ---------------------------------------------------------------------------

/** LISP type of a Map-Request (RFC 9301 §5.2, IANA "LISP Packet Types"). */
export const MAP_REQUEST_TYPE = 1;
/** Byte 0: Type in the top 4 bits. */
const TYPE_SHIFT = 4;
/** Byte 0, bit 4: A, authoritative. */
const FLAG_A = 0x08;
/** Byte 0, bit 5: M, map-data-present (a Map-Reply record follows the records). */
const FLAG_M = 0x04;
/** Byte 0, bit 6: P, probe. */
const FLAG_P = 0x02;
/** Byte 0, bit 7: S, Solicit-Map-Request. */
const FLAG_S = 0x01;
/** Byte 1: p (bit 8, PITR) and s (bit 9, SMR-invoked); the rest is reserved. */
const FLAGS2 = 1;
/** Byte 1, bit 8: p, the sender is a PITR. */
const FLAG_PITR = 0x80;
/** Byte 1, bit 9: s, SMR-invoked. */
const FLAG_SMR_INVOKED = 0x40;
/** Byte 1, bit 11: I, xTR-ID and Site-ID follow the message (RFC 9437 §4). */
const FLAG_I = 0x10;
/** A record's Reserved byte, top bit: N, notification requested (RFC 9437 §4). */
const RECORD_N = 0x80;
/** xTR-ID (16 bytes) and Site-ID (8 bytes) after the message, with the I bit. */
const XTR_ID_LENGTH = 24;
/** Byte 2: one reserved bit (16), L (17), D (18), IRC (19..23). */
const FLAGS3 = 2;
/** Byte 2, bit 17: L, local xTR. */
const FLAG_L = 0x40;
/** Byte 2, bit 18: D, don't map-reply. */
const FLAG_D = 0x20;
/** Byte 2, bits 19..23: IRC, ITR-RLOC count minus one. */
const IRC_MASK = 0x1f;
/** Byte 3: Record Count. */
const RECORD_COUNT = 3;
/** Bytes 4..11: Nonce. */
const NONCE = 4;
/** Length of the fixed header (type word + nonce); the Source-EID-AFI follows. */
const HEADER_LENGTH = 12;
/** Per record, before the EID-Prefix-AFI: Reserved (1) and EID mask-len (1). */
const RECORD_FIXED = 2;
/** Most ITR-RLOCs a Map-Request can carry (IRC is 5 bits, count minus one). */
export const MAX_ITR_RLOCS = 32;
/** Most records a Map-Request can carry (Record Count is 8 bits). */
export const MAX_MAP_REQUEST_RECORDS = 255;

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** One EID prefix asked for by a Map-Request. */
export interface MapRequestRecord {
  /** EID mask-len: the prefix length. */
  readonly maskLen: number;
  /** The EID prefix (IPv4, IPv6, MAC, or an LCAF such as Instance-ID). */
  readonly eid: Address;
  /**
   * N bit (RFC 9437 §4): the ITR subscribes to this prefix, asking to be
   * notified of every change. Present (true) exactly when set on the wire.
   */
  readonly notify?: boolean;
}

/** A Map-Request message (RFC 9301 §5.2). */
export interface MapRequest {
  /** A bit: the ITR wants the answer from the destination site, not the mapping system. */
  readonly authoritative: boolean;
  /** P bit: an RLOC-probe; the reply must be a probe reply with the nonce copied. */
  readonly probe: boolean;
  /** S bit: a Solicit-Map-Request (RFC 9301 §6.1). */
  readonly smr: boolean;
  /** p bit: the sender is a PITR (its Source EID is not from a LISP site). */
  readonly pitr: boolean;
  /** s bit: this Map-Request was sent because an SMR was received. */
  readonly smrInvoked: boolean;
  /** L bit: the sender is an xTR of the same site, announcing its own RLOC. */
  readonly localXtr: boolean;
  /** D bit: the receiver must not answer with a Map-Reply. */
  readonly dontMapReply: boolean;
  /** Nonce (64 bits), copied into the Map-Reply. */
  readonly nonce: bigint;
  /** Source EID (AFI 0 when the sender has none, e.g. a PITR or an RLOC-probe). */
  readonly sourceEid: Address;
  /**
   * ITR-RLOCs the reply may be sent to (1..32; IPv4, IPv6, or an LCAF such
   * as NAT traversal). IRC on the wire is their count minus one.
   */
  readonly itrRlocs: readonly Address[];
  /** The EID prefixes asked for (0..255; senders send exactly one). */
  readonly records: readonly MapRequestRecord[];
  /**
   * The sender's own mapping (M bit set exactly when present), e.g. the
   * ITR's mapping in an RLOC-probe or an SMR.
   */
  readonly mapReply?: EidRecord;
  /**
   * 128-bit xTR-ID of the ITR (RFC 9437 §4, the I bit); present exactly
   * when the I bit is set, together with `siteId`.
   */
  readonly xtrId?: bigint;
  /** 64-bit Site-ID; present exactly when `xtrId` is. */
  readonly siteId?: bigint;
}

// ---------------------------------------------------------------------------
// Field names, built once per index so the happy path allocates no strings.
// ---------------------------------------------------------------------------

const itrRlocFields: string[] = [];
const recordFields: string[] = [];
const recordEidFields: string[] = [];

function itrRlocField(i: number): string {
  return itrRlocFields[i] ??= `map-request.itr-rloc[${i}]`;
}

function recordField(i: number): string {
  return recordFields[i] ??= `map-request.record[${i}]`;
}

function recordEidField(i: number): string {
  return recordEidFields[i] ??= `map-request.record[${i}].eid`;
}

// ---------------------------------------------------------------------------
// Parse
// ---------------------------------------------------------------------------

/**
 * Reads one Map-Request at the reader's position and leaves the reader just
 * after it (after the Map-Reply record when M is set). Bytes beyond are not
 * looked at: use this when an extension appends data to the message.
 */
export function readMapRequest(r: Reader): MapRequest {
  const start = r.pos;
  r.need(HEADER_LENGTH, "map-request.header");
  const b = r.bytes;
  const b0 = b[start]!;
  const type = b0 >>> TYPE_SHIFT;
  if (type !== MAP_REQUEST_TYPE) {
    r.fail("map-request.type", `type ${type} is not a Map-Request (1)`, start);
  }
  const b1 = b[start + FLAGS2]!;
  const b2 = b[start + FLAGS3]!;
  const count = b[start + RECORD_COUNT]!;
  const nonce = r.view.getBigUint64(start + NONCE, false);
  r.pos = start + HEADER_LENGTH;

  const sourceEid = readAddress(r, "map-request.source-eid");

  const irc = (b2 & IRC_MASK) + 1;
  const itrRlocs: Address[] = new Array(irc);
  for (let i = 0; i < irc; i++) {
    if (r.pos >= r.end) {
      r.fail(
        "map-request.irc",
        `announces ${irc} ITR-RLOCs, data ends after ${i}`,
        start + FLAGS3,
      );
    }
    itrRlocs[i] = readAddress(r, itrRlocField(i));
  }

  const records: MapRequestRecord[] = new Array(count);
  for (let i = 0; i < count; i++) {
    if (r.pos >= r.end) {
      r.fail(
        "map-request.record-count",
        `announces ${count} records, data ends after ${i}`,
        start + RECORD_COUNT,
      );
    }
    const at = r.pos;
    r.need(RECORD_FIXED, recordField(i));
    const notify = (b[at]! & RECORD_N) !== 0;
    const maskLen = b[at + 1]!;
    r.pos = at + RECORD_FIXED;
    const eid = readAddress(r, recordEidField(i));
    const max = maxMaskLen(eid);
    if (max !== 0 && maskLen > max) {
      r.fail(`${recordField(i)}.eid-mask-len`, `mask-len ${maskLen} exceeds ${max}`, at + 1);
    }
    records[i] = notify ? { maskLen, eid, notify } : { maskLen, eid };
  }

  let mapReply: EidRecord | undefined;
  if ((b0 & FLAG_M) !== 0) {
    if (r.pos >= r.end) {
      r.fail("map-request.map-reply", "M bit set but no Map-Reply record follows");
    }
    mapReply = readEidRecord(r, "map-request.map-reply");
  }

  if ((b1 & FLAG_I) !== 0) {
    r.need(XTR_ID_LENGTH, "map-request.xtr-id");
    const xtrId = r.u128("map-request.xtr-id");
    const siteId = r.u64("map-request.site-id");
    const m: MapRequest = {
      authoritative: (b0 & FLAG_A) !== 0,
      probe: (b0 & FLAG_P) !== 0,
      smr: (b0 & FLAG_S) !== 0,
      pitr: (b1 & FLAG_PITR) !== 0,
      smrInvoked: (b1 & FLAG_SMR_INVOKED) !== 0,
      localXtr: (b2 & FLAG_L) !== 0,
      dontMapReply: (b2 & FLAG_D) !== 0,
      nonce,
      sourceEid,
      itrRlocs,
      records,
      xtrId,
      siteId,
    };
    return mapReply === undefined ? m : { ...m, mapReply };
  }

  // Two literals rather than a spread: one allocation, stable shapes.
  return mapReply === undefined
    ? {
      authoritative: (b0 & FLAG_A) !== 0,
      probe: (b0 & FLAG_P) !== 0,
      smr: (b0 & FLAG_S) !== 0,
      pitr: (b1 & FLAG_PITR) !== 0,
      smrInvoked: (b1 & FLAG_SMR_INVOKED) !== 0,
      localXtr: (b2 & FLAG_L) !== 0,
      dontMapReply: (b2 & FLAG_D) !== 0,
      nonce,
      sourceEid,
      itrRlocs,
      records,
    }
    : {
      authoritative: (b0 & FLAG_A) !== 0,
      probe: (b0 & FLAG_P) !== 0,
      smr: (b0 & FLAG_S) !== 0,
      pitr: (b1 & FLAG_PITR) !== 0,
      smrInvoked: (b1 & FLAG_SMR_INVOKED) !== 0,
      localXtr: (b2 & FLAG_L) !== 0,
      dontMapReply: (b2 & FLAG_D) !== 0,
      nonce,
      sourceEid,
      itrRlocs,
      records,
      mapReply,
    };
}

/**
 * Parses a Map-Request; `bytes` must hold exactly the message (trailing
 * bytes are a `WireError`, see the module notes).
 */
export function parseMapRequest(bytes: Uint8Array): MapRequest {
  const r = new Reader(bytes);
  const m = readMapRequest(r);
  if (r.pos !== r.end) {
    r.fail("map-request", `${r.remaining} trailing byte${r.remaining === 1 ? "" : "s"}`);
  }
  return m;
}

// ---------------------------------------------------------------------------
// Length and emit
// ---------------------------------------------------------------------------

/** Encoded length of a Map-Request. */
export function mapRequestLength(m: MapRequest): number {
  let len = HEADER_LENGTH + addressLength(m.sourceEid);
  const itr = m.itrRlocs;
  for (let i = 0; i < itr.length; i++) len += addressLength(itr[i]!);
  const recs = m.records;
  for (let i = 0; i < recs.length; i++) len += RECORD_FIXED + addressLength(recs[i]!.eid);
  if (m.mapReply !== undefined) len += eidRecordLength(m.mapReply);
  if (m.xtrId !== undefined) len += XTR_ID_LENGTH;
  return len;
}

/**
 * Writes a Map-Request at the writer's position. Throws `RangeError` for
 * 0 or more than 32 ITR-RLOCs, more than 255 records, a nonce outside
 * 64 bits, or a mask-len too long for its EID.
 */
export function writeMapRequest(w: Writer, m: MapRequest): void {
  const nItr = m.itrRlocs.length;
  const nRec = m.records.length;
  checkCounts(nItr, nRec, m.nonce);
  checkXtrId(m);
  const mr = m.mapReply;
  w.u8(
    (MAP_REQUEST_TYPE << TYPE_SHIFT) |
      (m.authoritative ? FLAG_A : 0) |
      (mr !== undefined ? FLAG_M : 0) |
      (m.probe ? FLAG_P : 0) |
      (m.smr ? FLAG_S : 0),
  );
  w.u8(
    (m.pitr ? FLAG_PITR : 0) | (m.smrInvoked ? FLAG_SMR_INVOKED : 0) |
      (m.xtrId !== undefined ? FLAG_I : 0),
  );
  w.u8((m.localXtr ? FLAG_L : 0) | (m.dontMapReply ? FLAG_D : 0) | (nItr - 1));
  w.u8(nRec);
  w.u64(m.nonce);
  writeAddress(w, m.sourceEid);
  for (let i = 0; i < nItr; i++) writeAddress(w, m.itrRlocs[i]!);
  for (let i = 0; i < nRec; i++) {
    const rec = m.records[i]!;
    checkMaskLen(rec, i);
    w.u8(rec.notify === true ? RECORD_N : 0);
    w.u8(rec.maskLen);
    writeAddress(w, rec.eid);
  }
  if (mr !== undefined) writeEidRecord(w, mr);
  if (m.xtrId !== undefined) {
    w.u128(m.xtrId);
    w.u64(m.siteId!);
  }
}

/** Emits a Map-Request into a new buffer or into `into` at `offset`. */
export function emitMapRequest(m: MapRequest, into?: Uint8Array, offset = 0): Uint8Array {
  checkCounts(m.itrRlocs.length, m.records.length, m.nonce);
  checkXtrId(m);
  const len = mapRequestLength(m);
  const w = target(len, into, offset, "emitMapRequest");
  writeMapRequest(w, m);
  return w.bytes.subarray(offset, offset + len);
}

function checkCounts(nItr: number, nRec: number, nonce: bigint): void {
  if (nItr < 1 || nItr > MAX_ITR_RLOCS) {
    throw new RangeError(`Map-Request has ${nItr} ITR-RLOCs, needs 1..${MAX_ITR_RLOCS}`);
  }
  if (nRec > MAX_MAP_REQUEST_RECORDS) {
    throw new RangeError(
      `Map-Request has ${nRec} records, at most ${MAX_MAP_REQUEST_RECORDS} fit`,
    );
  }
  if (typeof nonce !== "bigint" || nonce < 0n || nonce > 0xffffffffffffffffn) {
    throw new RangeError(`Map-Request nonce ${nonce} is not a 64-bit unsigned value`);
  }
}

const MAX_U128 = (1n << 128n) - 1n;

/** xtrId and siteId: both or neither, each in range (RangeError / TypeError). */
function checkXtrId(m: MapRequest): void {
  if (m.xtrId === undefined && m.siteId === undefined) return;
  if (m.xtrId === undefined || m.siteId === undefined) {
    throw new TypeError("Map-Request: xtrId and siteId go together (the I bit)");
  }
  if (typeof m.xtrId !== "bigint" || m.xtrId < 0n || m.xtrId > MAX_U128) {
    throw new RangeError(`Map-Request xTR-ID ${m.xtrId} is not a 128-bit unsigned value`);
  }
  if (typeof m.siteId !== "bigint" || m.siteId < 0n || m.siteId > 0xffffffffffffffffn) {
    throw new RangeError(`Map-Request site-ID ${m.siteId} is not a 64-bit unsigned value`);
  }
}

function checkMaskLen(rec: MapRequestRecord, i: number): void {
  checkUint(rec.maskLen, 0xff, `Map-Request record ${i} mask-len`);
  const max = maxMaskLen(rec.eid);
  if (max !== 0 && rec.maskLen > max) {
    throw new RangeError(`Map-Request record ${i} mask-len ${rec.maskLen} exceeds ${max}`);
  }
}
