/**
 * IPv4 (RFC 791 §3.1) and IPv6 (RFC 8200 §3) headers, the internet
 * checksum (RFC 1071) and the pseudo-header sums that UDP uses
 * (RFC 768, RFC 8200 §8.1).
 *
 * Two ways in: parsed records (`parseIPv4Header`, `parseIPv6Header`) for
 * the inner IP header of an Encapsulated Control Message, probes and
 * captures; and zero-copy accessors over a packet in a buffer
 * (`ipVersion`, `ipv4HeaderBytes`, `ipv4Protocol`, `ipv4IsFragment`, `ipv4DontFragment`,
 * `ipv6NextHeader`, `ipv6ExtensionLength`, and the `*_OFFSET` constants)
 * for the data plane, which reads headers in place and allocates nothing.
 *
 * - `parseIPv4Header`/`parseIPv6Header` read the header at the start of the
 *   bytes; the payload after it is not read and the length fields are not
 *   compared with the bytes given (`parseIpUdp` in udp.ts does that).
 * - A bad IPv4 header checksum is not an error: `checksumOk` reports it and
 *   the caller decides. `emitIPv4Header` computes the checksum (the record's
 *   `checksum` and `checksumOk` are ignored).
 * - The IPv4 reserved flag bit is ignored on parse and emitted as zero.
 *   IPv4 options are kept as raw bytes.
 *
 * @module
 */

import { checkUint, Reader, target, type Writer } from "./cursor.ts";
import { ipv4FromBytes, ipv4ToBytes, ipv6FromBytes, ipv6ToBytes } from "./ip_text.ts";

/** IP protocol number of ICMP. */
export const IP_PROTO_ICMP = 1;
/** IP protocol number of TCP. */
export const IP_PROTO_TCP = 6;
/** IP protocol number of UDP. */
export const IP_PROTO_UDP = 17;
/** IP protocol number of ICMPv6. */
export const IP_PROTO_ICMPV6 = 58;

/** Length of an IPv4 header without options. */
export const IPV4_HEADER_MIN_LENGTH = 20;
/** Largest IPv4 header (IHL 15). */
export const IPV4_HEADER_MAX_LENGTH = 60;
/** Length of the IPv6 fixed header. */
export const IPV6_HEADER_LENGTH = 40;

// Field table, RFC 791 §3.1 (byte offsets from the IPv4 header start).
/** Version (4 bits) and IHL (4 bits, in 32-bit words). */
const V4_VERSION_IHL = 0;
/** Type of service (DSCP and ECN, RFC 2474/3168). */
const V4_TOS = 1;
/** Total length of the datagram, header included. */
const V4_TOTAL_LENGTH = 2;
/** Identification. */
const V4_IDENTIFICATION = 4;
/** Flags (reserved, DF, MF) and fragment offset (13 bits, 8-byte units). */
const V4_FLAGS_FRAGMENT = 6;
/** Time to live. */
const V4_TTL = 8;
/** Protocol. */
export const IPV4_PROTOCOL_OFFSET = 9;
const V4_PROTOCOL = IPV4_PROTOCOL_OFFSET;
/** Header checksum. */
const V4_CHECKSUM = 10;
/** Source address; the destination follows at 16. */
export const IPV4_SRC_OFFSET = 12;
/** Destination address. */
export const IPV4_DST_OFFSET = 16;
const V4_DF = 0x4000;
const V4_MF = 0x2000;
const V4_FRAGMENT_MASK = 0x1fff;

// Field table, RFC 8200 §3 (byte offsets from the IPv6 header start).
/** Version (4), traffic class (8), flow label (20). */
const V6_VERSION_TC_FLOW = 0;
/** Payload length (bytes after the fixed header). */
const V6_PAYLOAD_LENGTH = 4;
/** Next header. */
export const IPV6_NEXT_HEADER_OFFSET = 6;
const V6_NEXT_HEADER = IPV6_NEXT_HEADER_OFFSET;
/** Hop limit. */
const V6_HOP_LIMIT = 7;
/** Source address; the destination follows at 24. */
export const IPV6_SRC_OFFSET = 8;
/** Destination address. */
export const IPV6_DST_OFFSET = 24;

/** IPv6 extension headers (RFC 8200 §4) that come before an upper-layer header. */
export const IPV6_EXT_HOP_BY_HOP = 0;
/** Routing header. */
export const IPV6_EXT_ROUTING = 43;
/** Fragment header (8 bytes). */
export const IPV6_EXT_FRAGMENT = 44;
/** Destination options header. */
export const IPV6_EXT_DEST_OPTS = 60;

/** An IPv4 header, RFC 791 §3.1. */
export interface IPv4Header {
  /** Always 4. */
  readonly version: 4;
  /** Type of service byte: DSCP (high 6 bits) and ECN (low 2 bits). */
  readonly tos: number;
  /** Total length of the datagram in bytes, header included. */
  readonly totalLength: number;
  /** Identification, 16 bits. */
  readonly identification: number;
  /** DF: don't fragment. */
  readonly dontFragment: boolean;
  /** MF: more fragments follow. */
  readonly moreFragments: boolean;
  /** Fragment offset in 8-byte units, 13 bits. */
  readonly fragmentOffset: number;
  /** Time to live. */
  readonly ttl: number;
  /** Protocol of the payload (`IP_PROTO_*`). */
  readonly protocol: number;
  /** Header checksum as received (ignored on emit, which computes it). */
  readonly checksum: number;
  /** Whether the received header checksum is right (ignored on emit). */
  readonly checksumOk: boolean;
  /** Source address, dotted quad. */
  readonly src: string;
  /** Destination address, dotted quad. */
  readonly dst: string;
  /** Options as raw bytes, a multiple of 4 and at most 40 bytes (usually empty). */
  readonly options: Uint8Array;
}

/** The fields `emitIPv4Header` needs: an `IPv4Header` without the checksum. */
export type IPv4HeaderFields = Omit<IPv4Header, "checksum" | "checksumOk">;

/** An IPv6 fixed header, RFC 8200 §3. */
export interface IPv6Header {
  /** Always 6. */
  readonly version: 6;
  /** Traffic class, 8 bits. */
  readonly trafficClass: number;
  /** Flow label, 20 bits. */
  readonly flowLabel: number;
  /** Bytes after this fixed header (extension headers included). */
  readonly payloadLength: number;
  /** Type of the header that follows (`IP_PROTO_*` or an extension header). */
  readonly nextHeader: number;
  /** Hop limit. */
  readonly hopLimit: number;
  /** Source address, RFC 5952 text. */
  readonly src: string;
  /** Destination address, RFC 5952 text. */
  readonly dst: string;
}

// ---------------------------------------------------------------------------
// Checksums.

/**
 * The 16-bit one's complement sum (RFC 1071) of `bytes[start, end)` taken
 * as big-endian 16-bit words (an odd last byte is padded with zero), added
 * to `initial` (a previous sum) and folded to 16 bits. Not complemented.
 */
export function onesComplementSum(
  bytes: Uint8Array,
  start: number,
  end: number,
  initial = 0,
): number {
  let sum = initial;
  let i = start;
  const last = end - 1;
  for (; i < last; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * The internet checksum (RFC 1071) of `bytes[start, end)`: the one's
 * complement of the one's complement sum, starting from the partial sum
 * `initial` (e.g. a pseudo-header sum). Over data that includes a correct
 * checksum field the result is 0.
 */
export function internetChecksum(
  bytes: Uint8Array,
  start: number,
  end: number,
  initial = 0,
): number {
  return ~onesComplementSum(bytes, start, end, initial) & 0xffff;
}

/**
 * The one's complement sum of the IPv4 pseudo-header (RFC 768): source and
 * destination address, zero, `protocol`, and the upper-layer `length`.
 * `addrs[off, off+8)` holds the source then the destination address, as an
 * IPv4 header does at `IPV4_SRC_OFFSET`.
 */
export function ipv4PseudoHeaderSum(
  addrs: Uint8Array,
  off: number,
  protocol: number,
  length: number,
): number {
  return onesComplementSum(addrs, off, off + 8, protocol + length);
}

/**
 * The one's complement sum of the IPv6 pseudo-header (RFC 8200 §8.1):
 * source and destination address, the 32-bit upper-layer `length`, zeros,
 * and `nextHeader`. `addrs[off, off+32)` holds the source then the
 * destination address, as an IPv6 header does at `IPV6_SRC_OFFSET`.
 */
export function ipv6PseudoHeaderSum(
  addrs: Uint8Array,
  off: number,
  nextHeader: number,
  length: number,
): number {
  return onesComplementSum(
    addrs,
    off,
    off + 32,
    nextHeader + Math.floor(length / 0x10000) + (length & 0xffff),
  );
}

// ---------------------------------------------------------------------------
// IPv4.

/** The IP version nibble of the packet at `off` (4, 6 or anything else). */
export function ipVersion(b: Uint8Array, off: number): number {
  return b[off]! >>> 4;
}

/** The header length in bytes (IHL × 4) of the IPv4 packet at `off`. */
export function ipv4HeaderBytes(b: Uint8Array, off: number): number {
  return (b[off + V4_VERSION_IHL]! & 0x0f) << 2;
}

/** The protocol of the IPv4 packet at `off` (`IP_PROTO_*`). */
export function ipv4Protocol(b: Uint8Array, off: number): number {
  return b[off + V4_PROTOCOL]!;
}

/** Whether the IPv4 packet at `off` is a fragment (MF set or a fragment offset). */
export function ipv4IsFragment(b: Uint8Array, off: number): boolean {
  return ((b[off + V4_FLAGS_FRAGMENT]! << 8 | b[off + V4_FLAGS_FRAGMENT + 1]!) &
    (V4_MF | V4_FRAGMENT_MASK)) !== 0;
}

/** Whether the IPv4 packet at `off` has DF (don't fragment) set. */
export function ipv4DontFragment(b: Uint8Array, off: number): boolean {
  return (b[off + V4_FLAGS_FRAGMENT]! & (V4_DF >>> 8)) !== 0;
}

/** The next-header field of the IPv6 fixed header at `off`. */
export function ipv6NextHeader(b: Uint8Array, off: number): number {
  return b[off + V6_NEXT_HEADER]!;
}

/**
 * The length in bytes of the hop-by-hop, routing or destination-options
 * extension header at `off` (its next-header field is its first byte).
 */
export function ipv6ExtensionLength(b: Uint8Array, off: number): number {
  return (b[off + 1]! + 1) << 3;
}

/**
 * Parses the IPv4 header at the start of `bytes`. Throws `WireError` if it
 * is truncated, the version is not 4, the IHL is below 5, or the total
 * length is shorter than the header. A bad checksum is reported in
 * `checksumOk`, not thrown.
 */
export function parseIPv4Header(bytes: Uint8Array): IPv4Header {
  return readIPv4Header(new Reader(bytes));
}

/** Reads an IPv4 header (options included) at `r.pos` and advances past it. */
export function readIPv4Header(r: Reader): IPv4Header {
  const start = r.pos;
  r.need(IPV4_HEADER_MIN_LENGTH, "ipv4.header");
  const b = r.bytes;
  const vi = b[start + V4_VERSION_IHL]!;
  if (vi >>> 4 !== 4) r.fail("ipv4.version", `is ${vi >>> 4}, not 4`, start);
  const headerLength = (vi & 0x0f) * 4;
  if (headerLength < IPV4_HEADER_MIN_LENGTH) {
    r.fail("ipv4.ihl", `is ${vi & 0x0f}, below 5`, start);
  }
  r.need(headerLength, "ipv4.options");
  const v = r.view;
  const totalLength = v.getUint16(start + V4_TOTAL_LENGTH, false);
  if (totalLength < headerLength) {
    r.fail(
      "ipv4.total-length",
      `${totalLength} is shorter than the ${headerLength}-byte header`,
      start + V4_TOTAL_LENGTH,
    );
  }
  const ff = v.getUint16(start + V4_FLAGS_FRAGMENT, false);
  const checksum = v.getUint16(start + V4_CHECKSUM, false);
  const h: IPv4Header = {
    version: 4,
    tos: b[start + V4_TOS]!,
    totalLength,
    identification: v.getUint16(start + V4_IDENTIFICATION, false),
    dontFragment: (ff & V4_DF) !== 0,
    moreFragments: (ff & V4_MF) !== 0,
    fragmentOffset: ff & V4_FRAGMENT_MASK,
    ttl: b[start + V4_TTL]!,
    protocol: b[start + V4_PROTOCOL]!,
    checksum,
    checksumOk: internetChecksum(b, start, start + headerLength) === 0,
    src: ipv4FromBytes(b, start + IPV4_SRC_OFFSET),
    dst: ipv4FromBytes(b, start + IPV4_DST_OFFSET),
    options: b.slice(start + IPV4_HEADER_MIN_LENGTH, start + headerLength),
  };
  r.pos = start + headerLength;
  return h;
}

/** Length of the IPv4 header `x` on the wire: 20 plus its options. */
export function ipv4HeaderLength(x: IPv4HeaderFields): number {
  return IPV4_HEADER_MIN_LENGTH + x.options.length;
}

/**
 * Writes the IPv4 header `x` at `w.pos` with a computed checksum.
 * RangeError/TypeError for out-of-range fields or bad address text.
 */
export function writeIPv4Header(w: Writer, x: IPv4HeaderFields): void {
  const n = x.options.length;
  if (n % 4 !== 0 || n > IPV4_HEADER_MAX_LENGTH - IPV4_HEADER_MIN_LENGTH) {
    throw new RangeError(
      `ipv4 options: ${n} bytes is not a multiple of 4 up to 40`,
    );
  }
  const headerLength = IPV4_HEADER_MIN_LENGTH + n;
  checkUint(x.tos, 0xff, "ipv4 tos");
  checkUint(x.totalLength, 0xffff, "ipv4 totalLength");
  if (x.totalLength < headerLength) {
    throw new RangeError(
      `ipv4 totalLength: ${x.totalLength} is shorter than the header`,
    );
  }
  checkUint(x.identification, 0xffff, "ipv4 identification");
  checkUint(x.fragmentOffset, V4_FRAGMENT_MASK, "ipv4 fragmentOffset");
  checkUint(x.ttl, 0xff, "ipv4 ttl");
  checkUint(x.protocol, 0xff, "ipv4 protocol");
  const b = w.bytes;
  const start = w.pos;
  if (!ipv4ToBytes(x.src, b, start + IPV4_SRC_OFFSET)) {
    throw new TypeError(`ipv4 src: ${JSON.stringify(x.src)} is not IPv4`);
  }
  if (!ipv4ToBytes(x.dst, b, start + IPV4_DST_OFFSET)) {
    throw new TypeError(`ipv4 dst: ${JSON.stringify(x.dst)} is not IPv4`);
  }
  w.u8(0x40 | (headerLength >>> 2));
  w.u8(x.tos);
  w.u16(x.totalLength);
  w.u16(x.identification);
  w.u16(
    (x.dontFragment ? V4_DF : 0) | (x.moreFragments ? V4_MF : 0) |
      x.fragmentOffset,
  );
  w.u8(x.ttl);
  w.u8(x.protocol);
  w.u16(0); // checksum, filled below
  w.pos += 8; // addresses, written above
  w.raw(x.options);
  const sum = internetChecksum(b, start, start + headerLength);
  w.view.setUint16(start + V4_CHECKSUM, sum, false);
}

/**
 * Emits the IPv4 header `x` (with a computed checksum) into a new buffer,
 * or into `into` at `offset`. `x.totalLength` must count the payload the
 * caller writes after it.
 */
export function emitIPv4Header(
  x: IPv4HeaderFields,
  into?: Uint8Array,
  offset = 0,
): Uint8Array {
  const len = ipv4HeaderLength(x);
  const w = target(len, into, offset, "emitIPv4Header");
  const start = w.pos;
  writeIPv4Header(w, x);
  return w.bytes.subarray(start, start + len);
}

// ---------------------------------------------------------------------------
// IPv6.

/**
 * Parses the IPv6 fixed header at the start of `bytes`. Throws `WireError`
 * if it is truncated or the version is not 6.
 */
export function parseIPv6Header(bytes: Uint8Array): IPv6Header {
  return readIPv6Header(new Reader(bytes));
}

/** Reads an IPv6 fixed header at `r.pos` and advances past it. */
export function readIPv6Header(r: Reader): IPv6Header {
  const start = r.pos;
  r.need(IPV6_HEADER_LENGTH, "ipv6.header");
  const b = r.bytes;
  const first = r.view.getUint32(start + V6_VERSION_TC_FLOW, false);
  if (first >>> 28 !== 6) {
    r.fail("ipv6.version", `is ${first >>> 28}, not 6`, start);
  }
  const h: IPv6Header = {
    version: 6,
    trafficClass: (first >>> 20) & 0xff,
    flowLabel: first & 0xfffff,
    payloadLength: r.view.getUint16(start + V6_PAYLOAD_LENGTH, false),
    nextHeader: b[start + V6_NEXT_HEADER]!,
    hopLimit: b[start + V6_HOP_LIMIT]!,
    src: ipv6FromBytes(b, start + IPV6_SRC_OFFSET),
    dst: ipv6FromBytes(b, start + IPV6_DST_OFFSET),
  };
  r.pos = start + IPV6_HEADER_LENGTH;
  return h;
}

/** Length of the IPv6 fixed header on the wire: always 40. */
export function ipv6HeaderLength(_x: IPv6Header): number {
  return IPV6_HEADER_LENGTH;
}

/**
 * Writes the IPv6 fixed header `x` at `w.pos`.
 * RangeError/TypeError for out-of-range fields or bad address text.
 */
export function writeIPv6Header(w: Writer, x: IPv6Header): void {
  checkUint(x.trafficClass, 0xff, "ipv6 trafficClass");
  checkUint(x.flowLabel, 0xfffff, "ipv6 flowLabel");
  checkUint(x.payloadLength, 0xffff, "ipv6 payloadLength");
  checkUint(x.nextHeader, 0xff, "ipv6 nextHeader");
  checkUint(x.hopLimit, 0xff, "ipv6 hopLimit");
  const b = w.bytes;
  const start = w.pos;
  if (!ipv6ToBytes(x.src, b, start + IPV6_SRC_OFFSET)) {
    throw new TypeError(`ipv6 src: ${JSON.stringify(x.src)} is not IPv6`);
  }
  if (!ipv6ToBytes(x.dst, b, start + IPV6_DST_OFFSET)) {
    throw new TypeError(`ipv6 dst: ${JSON.stringify(x.dst)} is not IPv6`);
  }
  w.u32((6 << 28) | (x.trafficClass << 20) | x.flowLabel);
  w.u16(x.payloadLength);
  w.u8(x.nextHeader);
  w.u8(x.hopLimit);
  w.pos += 32; // addresses, written above
}

/** Emits the IPv6 fixed header `x` into a new buffer, or into `into` at `offset`. */
export function emitIPv6Header(
  x: IPv6Header,
  into?: Uint8Array,
  offset = 0,
): Uint8Array {
  const w = target(IPV6_HEADER_LENGTH, into, offset, "emitIPv6Header");
  const start = w.pos;
  writeIPv6Header(w, x);
  return w.bytes.subarray(start, start + IPV6_HEADER_LENGTH);
}
