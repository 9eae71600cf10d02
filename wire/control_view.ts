/**
 * The common control messages read in place, and answers written in place,
 * without allocating: the map-server's per-message fast path (its answering
 * Workers, roles/map_server/fast_path.ts).
 *
 * - {@link scanMapRequest}: a Map-Request, plain or in an ECM, of the
 *   shape ITRs and map-resolvers send: one record, a host EID (IPv4 or
 *   IPv6, possibly in an Instance-ID LCAF), a source EID and ITR-RLOCs of
 *   AFI 0, 1 or 2 (or an Instance-ID LCAF of those for the source EID), no
 *   Map-Reply record. It fills a {@link MapRequestView} with offsets into
 *   the datagram.
 * - {@link scanMapRegister}: a Map-Register whose records have IPv4 or
 *   IPv6 EIDs (possibly in an Instance-ID LCAF) and IPv4 or IPv6 locators,
 *   with every reserved bit zero, so that its records written back
 *   ({@link writeMapNotifyFrom}) are byte for byte what
 *   `emitMapNotify()` writes for the parsed records.
 * - {@link writeMapReplyHeader}, {@link writeNegativeRecord}: a Map-Reply
 *   with one record, as `emitMapReply()` writes it.
 *
 * A Map-Request that subscribes (RFC 9437: the N bit on its record, or the
 * I bit) is not of the common shape: the map-server's main thread keeps
 * the subscriptions.
 *
 * A scan returns false for anything else, including everything malformed:
 * the caller then hands the datagram to the full codec (message.ts), which
 * decides. So what a scan accepts, the codec parses to the same fields
 * (wire/control_view_test.ts checks this on random and mutated messages).
 * Offsets are into the buffer given; bounds are checked against `end`.
 *
 * @module
 */

import { AFI, LCAF_TYPE } from "./address.ts";
import { AUTH_DATA_OFFSET, AUTH_LENGTH_OFFSET } from "./auth.ts";

/** LISP message types read here. */
const TYPE_MAP_REQUEST = 1;
const TYPE_MAP_REPLY = 2;
const TYPE_MAP_REGISTER = 3;
const TYPE_MAP_NOTIFY = 4;
const TYPE_ECM = 8;
/** ECM byte 0: D bit (DDT-originated). */
const ECM_D = 0x04;
/** ECM header length. */
const ECM_HEADER = 4;
/** IP protocol number of UDP. */
const PROTO_UDP = 17;
/** Map-Request byte 0 flags: M (a Map-Reply record follows), P (probe), S (SMR). */
const MREQ_M = 0x04;
const MREQ_P = 0x02;
const MREQ_S = 0x01;
/** Map-Request byte 1: I bit (xTR-ID and Site-ID follow, RFC 9437). */
const MREQ_I = 0x10;
/** Map-Request record, Reserved byte: N bit (a subscription, RFC 9437). */
const MREQ_RECORD_N = 0x80;
/** Map-Register byte 0: I bit (xTR-ID and site-ID follow). */
const MREG_I = 0x02;
/** Map-Register byte 2: M bit (want Map-Notify). */
const MREG_M = 0x01;
/** Map-Register byte 0: P bit (proxy reply). */
const MREG_P = 0x08;
/** Map-Notify byte 0: I bit. */
const MNOT_I = 0x08;
/** Instance-ID mask length our records carry (wire/address.ts IID_EXACT_MASK_LEN). */
const IID_MASK_LEN = 32;

/** What {@link scanMapRequest} found, as offsets into the datagram. */
export class MapRequestView {
  /** Whether it came in an ECM. */
  ecm = false;
  /** The ECM's D bit (from a DDT map-resolver). */
  ddt = false;
  /** ECM: the inner UDP source port (where the Map-Reply goes). */
  innerSrcPort = 0;
  /** ECM: the inner IPv4 TTL or IPv6 hop limit. */
  innerTtl = 0;
  /** Offset of the Map-Request. */
  message = 0;
  /** Offset of its 8-byte nonce. */
  nonce = 0;
  /** Family (4 or 6) of the first ITR-RLOC of a family allowed; 0 when none is. */
  itrFamily = 0;
  /** Offset of that ITR-RLOC's address bytes. */
  itrAddress = 0;
  /** The EID's instance id (0 without an Instance-ID LCAF). */
  iid = 0;
  /** The EID's family: 4 or 6. */
  eidFamily: 4 | 6 = 4;
  /** Offset of the EID's address bytes. */
  eidAddress = 0;
}

/** Reads an AFI-encoded IPv4/IPv6 address (or AFI 0 when `none`): its end, or -1. */
function plainAddress(b: Uint8Array, p: number, end: number, none: boolean): number {
  if (p + 2 > end) return -1;
  const afi = (b[p]! << 8) | b[p + 1]!;
  if (afi === AFI.IPV4) return p + 6 <= end ? p + 6 : -1;
  if (afi === AFI.IPV6) return p + 18 <= end ? p + 18 : -1;
  if (afi === AFI.NONE && none) return p + 2;
  return -1;
}

/**
 * Reads an EID: IPv4/IPv6, or an Instance-ID LCAF around one (with its
 * reserved and flag bytes zero when `canonical`, as our codec writes them).
 * Returns the end, or -1; `out` gets the iid, family and address offset.
 */
function eidAddress(
  b: Uint8Array,
  p: number,
  end: number,
  out: { iid: number; family: 4 | 6; at: number },
  canonical = false,
): number {
  if (p + 2 > end) return -1;
  let afi = (b[p]! << 8) | b[p + 1]!;
  out.iid = 0;
  if (afi === AFI.LCAF) {
    // rsvd1, flags, type, IID mask-len, length, IID, then the address.
    if (p + 14 > end || b[p + 4] !== LCAF_TYPE.INSTANCE_ID) return -1;
    if (canonical && (b[p + 2] !== 0 || b[p + 3] !== 0)) return -1;
    const length = (b[p + 6]! << 8) | b[p + 7]!;
    out.iid = ((b[p + 8]! << 24) | (b[p + 9]! << 16) | (b[p + 10]! << 8) | b[p + 11]!) >>> 0;
    p += 12;
    afi = (b[p]! << 8) | b[p + 1]!;
    const inner = afi === AFI.IPV4 ? 6 : afi === AFI.IPV6 ? 18 : -1;
    if (inner < 0 || length !== 4 + inner || p + inner > end) return -1;
  }
  if (afi === AFI.IPV4) {
    if (p + 6 > end) return -1;
    out.family = 4;
    out.at = p + 2;
    return p + 6;
  }
  if (afi === AFI.IPV6) {
    if (p + 18 > end) return -1;
    out.family = 6;
    out.at = p + 2;
    return p + 18;
  }
  return -1;
}

const eidOut = { iid: 0, family: 4 as 4 | 6, at: 0 };

/**
 * Reads the ECM around a Map-Request: checks what wire/ecm.ts checks
 * (inner IPv4 or IPv6 header, UDP, lengths that end where the datagram
 * does, no fragment). Returns the offset of the inner message, or -1.
 */
function scanEcm(b: Uint8Array, start: number, end: number, v: MapRequestView): number {
  if (end - start < ECM_HEADER + 1) return -1;
  const ip = start + ECM_HEADER;
  const version = b[ip]! >>> 4;
  let udp: number;
  if (version === 4) {
    const ihl = (b[ip]! & 0x0f) * 4;
    if (ihl < 20 || ip + ihl > end) return -1;
    const total = (b[ip + 2]! << 8) | b[ip + 3]!;
    if (total < ihl || total !== end - ip) return -1;
    if (b[ip + 9] !== PROTO_UDP) return -1;
    if ((((b[ip + 6]! << 8) | b[ip + 7]!) & 0x3fff) !== 0) return -1; // MF or an offset
    v.innerTtl = b[ip + 8]!;
    udp = ip + ihl;
  } else if (version === 6) {
    if (ip + 40 > end) return -1;
    if (((b[ip + 4]! << 8) | b[ip + 5]!) !== end - ip - 40 || b[ip + 6] !== PROTO_UDP) return -1;
    v.innerTtl = b[ip + 7]!;
    udp = ip + 40;
  } else {
    return -1;
  }
  if (udp + 8 > end || ((b[udp + 4]! << 8) | b[udp + 5]!) !== end - udp) return -1;
  v.innerSrcPort = (b[udp]! << 8) | b[udp + 1]!;
  v.ddt = (b[start]! & ECM_D) !== 0;
  return udp + 8;
}

/**
 * Scans the datagram `b[start, end)` as a Map-Request of the common shape
 * (see the module notes), plain or in an ECM. `families` says which
 * ITR-RLOC families may be answered (bit 1: IPv4, bit 2: IPv6). Returns
 * false for anything else (probes, SMRs and a Map-Reply record included).
 */
export function scanMapRequest(
  b: Uint8Array,
  start: number,
  end: number,
  v: MapRequestView,
  families: number,
): boolean {
  if (end - start < 1) return false;
  let m = start;
  v.ecm = false;
  v.ddt = false;
  if (b[start]! >>> 4 === TYPE_ECM) {
    m = scanEcm(b, start, end, v);
    if (m < 0) return false;
    v.ecm = true;
  }
  if (end - m < 12 || b[m]! >>> 4 !== TYPE_MAP_REQUEST) return false;
  const b0 = b[m]!;
  if ((b0 & (MREQ_M | MREQ_P | MREQ_S)) !== 0 || b[m + 3] !== 1) return false;
  v.message = m;
  v.nonce = m + 4;
  const irc = (b[m + 2]! & 0x1f) + 1;
  let p = m + 12;
  // Source EID: AFI 0, IPv4, IPv6, or an Instance-ID LCAF of IPv4/IPv6.
  if (p + 2 <= end && ((b[p]! << 8) | b[p + 1]!) === AFI.LCAF) p = eidAddress(b, p, end, eidOut);
  else p = plainAddress(b, p, end, true);
  if (p < 0) return false;
  v.itrFamily = 0;
  for (let i = 0; i < irc; i++) {
    const at = p;
    p = plainAddress(b, p, end, false);
    if (p < 0) return false;
    if (v.itrFamily === 0) {
      const f = p - at === 6 ? 4 : 6;
      if ((families & (f === 4 ? 1 : 2)) !== 0) {
        v.itrFamily = f;
        v.itrAddress = at + 2;
      }
    }
  }
  // The record: reserved, mask length, the EID. A subscription (RFC 9437:
  // the N bit, or the I bit with an xTR-ID) is the main thread's.
  if (p + 2 > end || (b[p]! & MREQ_RECORD_N) !== 0 || (b[m + 1]! & MREQ_I) !== 0) return false;
  const maskLen = b[p + 1]!;
  p = eidAddress(b, p + 2, end, eidOut);
  if (p !== end) return false;
  if (maskLen !== (eidOut.family === 4 ? 32 : 128)) return false;
  v.iid = eidOut.iid;
  v.eidFamily = eidOut.family;
  v.eidAddress = eidOut.at;
  return true;
}

/** Most records a {@link MapRegisterView} keeps (a Map-Register carries at most 255). */
const MAX_RECORDS = 255;

/** What {@link scanMapRegister} found, as offsets into the datagram. */
export class MapRegisterView {
  /** The M bit: a Map-Notify is wanted. */
  wantMapNotify = false;
  /** The P bit. */
  proxyReply = false;
  /** The I bit: an xTR-ID and site-ID follow the records. */
  xtrIdPresent = false;
  /** The Key ID. */
  keyId = 0;
  /** Number of records. */
  records = 0;
  /** Per record: its TTL. */
  readonly ttl = new Float64Array(MAX_RECORDS);
  /** Per record: the EID's mask length. */
  readonly maskLen = new Uint8Array(MAX_RECORDS);
  /** Per record: the EID's instance id. */
  readonly iid = new Float64Array(MAX_RECORDS);
  /** Per record: the EID's family (4 or 6). */
  readonly family = new Uint8Array(MAX_RECORDS);
  /** Per record: the offset of the EID's address bytes. */
  readonly address = new Int32Array(MAX_RECORDS);
}

/** Reads a locator record of an IPv4 or IPv6 locator with its reserved bits zero: its end, or -1. */
function locator(b: Uint8Array, p: number, end: number): number {
  if (p + 6 > end || b[p + 4] !== 0 || (b[p + 5]! & 0xf8) !== 0) return -1;
  return plainAddress(b, p + 6, end, false);
}

/**
 * Scans `b[start, end)` as a Map-Register of the shape described in the
 * module notes; fills `v`. False for anything else (malformed included).
 * The authentication is not checked here (wire/auth.ts `authStatusAt`).
 */
export function scanMapRegister(
  b: Uint8Array,
  start: number,
  end: number,
  v: MapRegisterView,
): boolean {
  if (end - start < AUTH_DATA_OFFSET || b[start]! >>> 4 !== TYPE_MAP_REGISTER) return false;
  const b0 = b[start]!;
  const b2 = b[start + 2]!;
  const count = b[start + 3]!;
  v.wantMapNotify = (b2 & MREG_M) !== 0;
  v.proxyReply = (b0 & MREG_P) !== 0;
  v.xtrIdPresent = (b0 & MREG_I) !== 0;
  v.keyId = (b[start + 12]! << 8) | b[start + 13]!;
  const authLength = (b[start + AUTH_LENGTH_OFFSET]! << 8) | b[start + AUTH_LENGTH_OFFSET + 1]!;
  let p = start + AUTH_DATA_OFFSET + authLength;
  const stop = end - (v.xtrIdPresent ? 24 : 0);
  if (p > stop) return false;
  for (let i = 0; i < count; i++) {
    // TTL, locator count, mask length, ACT|A|I|reserved(3), reserved, sig count|version.
    if (p + 12 > stop) return false;
    if ((b[p + 6]! & 0x07) !== 0 || b[p + 7] !== 0) return false;
    v.ttl[i] = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
    const locators = b[p + 4]!;
    const maskLen = b[p + 5]!;
    p = eidAddress(b, p + 10, stop, eidOut, true);
    if (p < 0 || maskLen > (eidOut.family === 4 ? 32 : 128)) return false;
    v.maskLen[i] = maskLen;
    v.iid[i] = eidOut.iid;
    v.family[i] = eidOut.family;
    v.address[i] = eidOut.at;
    for (let l = 0; l < locators; l++) {
      p = locator(b, p, stop);
      if (p < 0) return false;
    }
  }
  if (p !== stop) return false;
  v.records = count;
  return true;
}

/**
 * Writes the Map-Notify answering the Map-Register at `src[start, end)`
 * (which {@link scanMapRegister} accepted) to `out[at]`: type 4, the I bit
 * as the Map-Register had it, and the rest of the message as it came
 * (nonce, Key ID, records, xTR-ID and site-ID), the authentication data
 * zeroed for signing (wire/auth.ts `signAuthenticatedAt`). Returns its
 * length (that of the Map-Register).
 */
export function writeMapNotifyFrom(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  at: number,
): number {
  const n = end - start;
  for (let i = 0; i < n; i++) out[at + i] = src[start + i]!;
  out[at] = (TYPE_MAP_NOTIFY << 4) | ((src[start]! & MREG_I) !== 0 ? MNOT_I : 0);
  out[at + 1] = 0;
  out[at + 2] = 0;
  const authLength = (src[start + AUTH_LENGTH_OFFSET]! << 8) | src[start + AUTH_LENGTH_OFFSET + 1]!;
  out.fill(0, at + AUTH_DATA_OFFSET, at + AUTH_DATA_OFFSET + authLength);
  return n;
}

/**
 * Writes the 12-byte header of a Map-Reply with one record and the nonce
 * at `src[nonce, nonce + 8)` to `out[at]`; returns 12.
 */
export function writeMapReplyHeader(
  out: Uint8Array,
  at: number,
  src: Uint8Array,
  nonce: number,
): number {
  out[at] = TYPE_MAP_REPLY << 4;
  out[at + 1] = 0;
  out[at + 2] = 0;
  out[at + 3] = 1;
  for (let i = 0; i < 8; i++) out[at + 4 + i] = src[nonce + i]!;
  return 12;
}

/**
 * Writes a record with no locators for the prefix `len` bits long of the
 * address at `addr[off]` (4 or 16 bytes; the bits past `len` are written
 * as zero) in instance `iid`: TTL `ttl` minutes, action `action`, the A
 * bit as `authoritative` says, map-version 0; the EID in an Instance-ID
 * LCAF (IID mask-len 32) when `iid` is not 0. Returns its length.
 */
export function writeNegativeRecord(
  out: Uint8Array,
  at: number,
  ttl: number,
  action: number,
  authoritative: boolean,
  iid: number,
  family: 4 | 6,
  addr: Uint8Array,
  off: number,
  len: number,
): number {
  out[at] = ttl >>> 24;
  out[at + 1] = ttl >>> 16;
  out[at + 2] = ttl >>> 8;
  out[at + 3] = ttl;
  out[at + 4] = 0;
  out[at + 5] = len;
  out[at + 6] = (action << 5) | (authoritative ? 0x10 : 0);
  out[at + 7] = 0;
  out[at + 8] = 0;
  out[at + 9] = 0;
  let p = at + 10;
  const n = family === 4 ? 4 : 16;
  if (iid !== 0) {
    const body = 4 + 2 + n;
    out[p] = AFI.LCAF >>> 8;
    out[p + 1] = AFI.LCAF & 0xff;
    out[p + 2] = 0;
    out[p + 3] = 0;
    out[p + 4] = LCAF_TYPE.INSTANCE_ID;
    out[p + 5] = IID_MASK_LEN;
    out[p + 6] = body >>> 8;
    out[p + 7] = body & 0xff;
    out[p + 8] = iid >>> 24;
    out[p + 9] = iid >>> 16;
    out[p + 10] = iid >>> 8;
    out[p + 11] = iid;
    p += 12;
  }
  out[p] = 0;
  out[p + 1] = family === 4 ? AFI.IPV4 : AFI.IPV6;
  p += 2;
  for (let i = 0; i < n; i++) {
    const keep = len - i * 8;
    const byte = addr[off + i]!;
    out[p + i] = keep >= 8 ? byte : keep <= 0 ? 0 : byte & (0xff << (8 - keep));
  }
  return p + n - at;
}

/**
 * A 64-bit nonce's two 32-bit halves as one exact number, for a table of
 * nonces keyed by number (no bigint per message): the low 21 bits of
 * `lo`, and `hi` with the rest of `lo` folded in (53 bits). Nonces with
 * the same `hi` (an ITR counting) never share a key; others rarely do, so
 * a table keyed by it still compares both halves.
 */
export function nonceKey(hi: number, lo: number): number {
  return ((hi ^ (lo >>> 21)) >>> 0) * 2097152 + (lo & 0x1fffff);
}
