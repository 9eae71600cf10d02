/**
 * The LISP data header (RFC 9300 §5.3), the 8 bytes after the outer UDP
 * header of every encapsulated packet:
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |N|L|E|V|I|R|K|K|            Nonce/Map-Version                  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                 Instance ID/Locator-Status-Bits               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * Choices where the RFC leaves room:
 * - N and V both set: RFC 9300 §5.3 says they MUST NOT be, and that a
 *   decapsulating ETR then treats the field as a nonce. `parse` does that
 *   (keeps both flags, reads `nonce`, map versions 0); `emit` refuses to
 *   produce such a header (RangeError).
 * - The three low flag bits (R and the RFC 8061 Key ID "KK") are kept in
 *   `flagsReserved` so they round-trip; build them as 0 unless you mean it.
 * - The E bit is kept as received even when N is 0 (the RFC says the
 *   receiver ignores it then).
 * - With neither N nor V set, the 24-bit field carries nothing: it parses as
 *   `nonce` 0 and is emitted as zero.
 * - `lsb` is kept as received whether or not L is set: 32 bits without I,
 *   the low 8 bits with I.
 *
 * The record form (`parseLispDataHeader`/`emitLispDataHeader`) is for the
 * control side and tests; the data path uses the accessors and
 * `writeLispDataHeader`, which allocate nothing and never throw.
 *
 * @module
 */

import { checkUint, Reader, target } from "./cursor.ts";

/** UDP port of LISP encapsulated data packets (RFC 9300 §5.2). */
export const LISP_DATA_PORT = 4341;
/** UDP port of LISP control messages (RFC 9301 §5.1). */
export const LISP_CONTROL_PORT = 4342;
/** UDP port of VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe §3.2). */
export const VXLAN_GPE_PORT = 4790;

/** Length of the LISP data header in bytes. */
export const LISP_DATA_HEADER_LENGTH = 8;

// Field table, RFC 9300 §5.3 (byte offsets from the header start).
/** Byte 0: the flag bits. */
const FLAGS = 0;
/** Bytes 1..3: the nonce, or the source (12 bits) and dest (12 bits) map versions. */
const NONCE = 1;
/** Bytes 4..7: Instance ID (24 bits) + LSBs (8 bits), or 32 LSBs. */
const IID_LSB = 4;

/** N: nonce present (flag byte bit). */
export const LISP_FLAG_N = 0x80;
/** L: locator-status-bits in use. */
export const LISP_FLAG_L = 0x40;
/** E: echo-nonce request (meaningful only with N). */
export const LISP_FLAG_E = 0x20;
/** V: map-version present. */
export const LISP_FLAG_V = 0x10;
/** I: instance id present. */
export const LISP_FLAG_I = 0x08;
/** R and KK: the three low flag bits (reserved; KK is the RFC 8061 key id). */
export const LISP_FLAGS_RESERVED_MASK = 0x07;

/** A LISP data header, RFC 9300 §5.3. */
export interface LispDataHeader {
  /** N: the 24-bit field holds a nonce. */
  readonly n: boolean;
  /** L: the locator-status-bits are in use. */
  readonly l: boolean;
  /** E: the sender asks the receiver to echo the nonce (meaningful only with N). */
  readonly e: boolean;
  /** V: the 24-bit field holds source and destination map versions (ignored when N is also set). */
  readonly v: boolean;
  /** I: the second word holds a 24-bit instance id and 8 locator-status-bits. */
  readonly i: boolean;
  /** The three low flag bits (R, K, K), kept as received: 0..7. */
  readonly flagsReserved: number;
  /** 24-bit nonce when N is set; 0 otherwise. */
  readonly nonce: number;
  /** 12-bit source map version when V is set and N is not; 0 otherwise. */
  readonly sourceMapVersion: number;
  /** 12-bit destination map version when V is set and N is not; 0 otherwise. */
  readonly destMapVersion: number;
  /** 24-bit instance id when I is set; 0 otherwise. */
  readonly instanceId: number;
  /** Locator-status-bits: 32 bits without I, 8 bits with I. */
  readonly lsb: number;
}

/** A `LispDataHeader` whose fields can be overwritten, for `readLispDataHeaderInto`. */
export type MutableLispDataHeader = {
  -readonly [K in keyof LispDataHeader]: LispDataHeader[K];
};

/** A zeroed `MutableLispDataHeader` to reuse with `readLispDataHeaderInto`. */
export function newLispDataHeader(): MutableLispDataHeader {
  return {
    n: false,
    l: false,
    e: false,
    v: false,
    i: false,
    flagsReserved: 0,
    nonce: 0,
    sourceMapVersion: 0,
    destMapVersion: 0,
    instanceId: 0,
    lsb: 0,
  };
}

/** Decodes 8 in-bounds bytes at `off` into `out`. */
function decode(b: Uint8Array, off: number, out: MutableLispDataHeader): void {
  const f = b[off + FLAGS]!;
  const mid = (b[off + NONCE]! << 16) | (b[off + NONCE + 1]! << 8) |
    b[off + NONCE + 2]!;
  const word = ((b[off + IID_LSB]! << 24) | (b[off + IID_LSB + 1]! << 16) |
    (b[off + IID_LSB + 2]! << 8) | b[off + IID_LSB + 3]!) >>> 0;
  const n = (f & LISP_FLAG_N) !== 0;
  const v = (f & LISP_FLAG_V) !== 0;
  const i = (f & LISP_FLAG_I) !== 0;
  out.n = n;
  out.l = (f & LISP_FLAG_L) !== 0;
  out.e = (f & LISP_FLAG_E) !== 0;
  out.v = v;
  out.i = i;
  out.flagsReserved = f & LISP_FLAGS_RESERVED_MASK;
  out.nonce = n ? mid : 0;
  const versions = v && !n;
  out.sourceMapVersion = versions ? mid >>> 12 : 0;
  out.destMapVersion = versions ? mid & 0xfff : 0;
  out.instanceId = i ? word >>> 8 : 0;
  out.lsb = i ? word & 0xff : word;
}

/**
 * Parses the LISP data header at the start of `bytes` (the inner packet
 * that follows is not read). Throws `WireError` if fewer than 8 bytes.
 */
export function parseLispDataHeader(bytes: Uint8Array): LispDataHeader {
  return readLispDataHeader(new Reader(bytes));
}

/** Reads a LISP data header at `r.pos` and advances past it. */
export function readLispDataHeader(r: Reader): LispDataHeader {
  r.need(LISP_DATA_HEADER_LENGTH, "lisp-data.header");
  const out = newLispDataHeader();
  decode(r.bytes, r.pos, out);
  r.pos += LISP_DATA_HEADER_LENGTH;
  return out;
}

/** Length of `x` on the wire: always 8. */
export function lispDataHeaderLength(_x: LispDataHeader): number {
  return LISP_DATA_HEADER_LENGTH;
}

/**
 * Emits `x` (8 bytes) into a new buffer, or into `into` at `offset`.
 * RangeError if N and V are both set or a field is out of range.
 */
export function emitLispDataHeader(
  x: LispDataHeader,
  into?: Uint8Array,
  offset = 0,
): Uint8Array {
  if (x.n && x.v) {
    throw new RangeError("lisp data header: N and V must not both be set");
  }
  checkUint(x.flagsReserved, 7, "lisp data header flagsReserved");
  if (x.n) checkUint(x.nonce, 0xffffff, "lisp data header nonce");
  if (x.v) {
    checkUint(x.sourceMapVersion, 0xfff, "lisp data header sourceMapVersion");
    checkUint(x.destMapVersion, 0xfff, "lisp data header destMapVersion");
  }
  if (x.i) {
    checkUint(x.instanceId, 0xffffff, "lisp data header instanceId");
    checkUint(x.lsb, 0xff, "lisp data header lsb");
  } else {
    checkUint(x.lsb, 0xffffffff, "lisp data header lsb");
  }
  const w = target(LISP_DATA_HEADER_LENGTH, into, offset, "emitLispDataHeader");
  const flags = (x.n ? LISP_FLAG_N : 0) | (x.l ? LISP_FLAG_L : 0) |
    (x.e ? LISP_FLAG_E : 0) | (x.v ? LISP_FLAG_V : 0) |
    (x.i ? LISP_FLAG_I : 0) | x.flagsReserved;
  const mid = x.n ? x.nonce : x.v ? lispMapVersions(x.sourceMapVersion, x.destMapVersion) : 0;
  const word = x.i ? lispIidLsb(x.instanceId, x.lsb) : x.lsb;
  writeLispDataHeader(w.bytes, w.pos, flags, mid, word);
  return w.bytes.subarray(w.pos, w.pos + LISP_DATA_HEADER_LENGTH);
}

// ---------------------------------------------------------------------------
// Data path: no allocation, no exceptions. Callers check the length first.

/**
 * Decodes the header at `bytes[offset, offset+8)` into `out`, reusing it.
 * Returns false (leaving `out` untouched) if fewer than 8 bytes remain.
 */
export function readLispDataHeaderInto(
  bytes: Uint8Array,
  offset: number,
  out: MutableLispDataHeader,
): boolean {
  if (offset < 0 || offset + LISP_DATA_HEADER_LENGTH > bytes.length) {
    return false;
  }
  decode(bytes, offset, out);
  return true;
}

/**
 * The instance ID of a "Data-Map-Notify" (NAT traversal as OOR 1.3.0
 * does it): a LISP data packet from an RTR whose inner IP/UDP packet
 * carries a Map-Notify to the xTR's private RLOC, through the NAT binding
 * of its data port. No EID lives in this instance.
 */
export const DATA_MAP_NOTIFY_IID = 0xffffff;

/**
 * A Data-Map-Notify: a LISP data header (I bit, instance
 * {@link DATA_MAP_NOTIFY_IID}, nonce and locator-status-bits 0) in front of
 * `inner`, the IP/UDP packet carrying the Map-Notify.
 */
export function emitDataMapNotify(inner: Uint8Array): Uint8Array {
  const out = new Uint8Array(LISP_DATA_HEADER_LENGTH + inner.length);
  writeLispDataHeader(out, 0, LISP_FLAG_I, 0, lispIidLsb(DATA_MAP_NOTIFY_IID, 0));
  out.set(inner, LISP_DATA_HEADER_LENGTH);
  return out;
}

/**
 * Whether the first byte of a datagram on the LISP data port is a control
 * message rather than a LISP data header (NAT traversal sends these on the
 * data port's NAT binding): an Info-Request/Reply (type 7: as a data
 * header, E set without N, which RFC 9300 §5.3 forbids) or an ECM with the
 * R or N bit (type 8 with a reserved data-header flag set).
 */
export function isControlOnLispDataPort(first: number): boolean {
  const type = first >>> 4;
  return type === 7 || (type === 8 && (first & 0x03) !== 0);
}

/** The flag byte (N L E V I R K K) of the header at `off`; test with `LISP_FLAG_*`. */
export function lispFlags(b: Uint8Array, off: number): number {
  return b[off + FLAGS]!;
}

/** The raw 24-bit nonce / map-version field of the header at `off`. */
export function lispNonce(b: Uint8Array, off: number): number {
  return (b[off + NONCE]! << 16) | (b[off + NONCE + 1]! << 8) |
    b[off + NONCE + 2]!;
}

/** The instance id of the header at `off` if its I bit is set, else 0. */
export function lispInstanceId(b: Uint8Array, off: number): number {
  if ((b[off + FLAGS]! & LISP_FLAG_I) === 0) return 0;
  return (b[off + IID_LSB]! << 16) | (b[off + IID_LSB + 1]! << 8) |
    b[off + IID_LSB + 2]!;
}

/** The locator-status-bits of the header at `off`: 8 bits if I is set, else 32. */
export function lispLocatorStatusBits(b: Uint8Array, off: number): number {
  if ((b[off + FLAGS]! & LISP_FLAG_I) !== 0) return b[off + IID_LSB + 3]!;
  return ((b[off + IID_LSB]! << 24) | (b[off + IID_LSB + 1]! << 16) |
    (b[off + IID_LSB + 2]! << 8) | b[off + IID_LSB + 3]!) >>> 0;
}

/** The 24-bit field holding a source and a destination map version (12 bits each). */
export function lispMapVersions(source: number, dest: number): number {
  return ((source & 0xfff) << 12) | (dest & 0xfff);
}

/** The second header word holding a 24-bit instance id and 8 locator-status-bits. */
export function lispIidLsb(instanceId: number, lsb: number): number {
  return (((instanceId & 0xffffff) << 8) | (lsb & 0xff)) >>> 0;
}

/**
 * Writes a LISP data header straight into a packet buffer at `off`
 * (caller guarantees 8 bytes): `flags` is the flag byte (`LISP_FLAG_*`
 * or-ed), `nonceOrVersions` the 24-bit field (a nonce, or
 * `lispMapVersions()`), `iidOrLsb` the second word (`lispIidLsb()` with
 * I, else the 32 locator-status-bits). Values are masked, not checked.
 */
export function writeLispDataHeader(
  b: Uint8Array,
  off: number,
  flags: number,
  nonceOrVersions: number,
  iidOrLsb: number,
): void {
  b[off] = flags;
  b[off + 1] = nonceOrVersions >>> 16;
  b[off + 2] = nonceOrVersions >>> 8;
  b[off + 3] = nonceOrVersions;
  b[off + 4] = iidOrLsb >>> 24;
  b[off + 5] = iidOrLsb >>> 16;
  b[off + 6] = iidOrLsb >>> 8;
  b[off + 7] = iidOrLsb;
}
