/**
 * The "packet too big" errors an ITR answers with when a packet plus the
 * encapsulation would exceed the path MTU (RFC 9300 §7.1, the stateless
 * approach), each in the IP packet that carries it:
 *
 * - ICMPv4 Destination Unreachable, code 4 "fragmentation needed and DF
 *   set", with the next-hop MTU in the low 16 bits of the second word
 *   (RFC 792, RFC 1191 §4);
 * - ICMPv6 Packet Too Big, type 2 code 0, with a 32-bit MTU (RFC 4443 §3.2).
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     Type      |     Code      |           Checksum            |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |   unused = 0 (v4)             |      Next-Hop MTU (v4)        |
 * |                           MTU (v6)                            |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |    As much of the packet that was too big as fits (576 bytes  |
 * |    in all for ICMPv4, RFC 1812 §4.3.2.3; 1280 for ICMPv6)     |
 * ```
 *
 * The ICMPv4 checksum covers the ICMP message; the ICMPv6 checksum also
 * the IPv6 pseudo-header (RFC 4443 §2.3). The record form
 * (`parseIcmpTooBig`/`emitIcmpTooBig`) is for tests and tools; the data
 * path uses {@link icmpErrorAllowed} and {@link writeTooBigReply}, which
 * build the answer in place, in the headroom in front of the packet that
 * was too big, and allocate nothing.
 *
 * Choices: the IPv4 header of an error has TOS 0xc0 (internetwork control,
 * as Linux sends its own), identification 0 and no DF; parse accepts any
 * of those, and a bad checksum (IPv4 header or ICMP) is reported in
 * `checksumOk`, not thrown.
 *
 * @module
 */

import { checkUint, Reader, target } from "./cursor.ts";
import {
  internetChecksum,
  IP_PROTO_ICMP,
  IP_PROTO_ICMPV6,
  IPV4_DST_OFFSET,
  IPV4_HEADER_MIN_LENGTH,
  IPV4_PROTOCOL_OFFSET,
  IPV4_SRC_OFFSET,
  ipv4HeaderBytes,
  IPV6_DST_OFFSET,
  IPV6_HEADER_LENGTH,
  IPV6_NEXT_HEADER_OFFSET,
  IPV6_SRC_OFFSET,
  ipv6PseudoHeaderSum,
  readIPv4Header,
  readIPv6Header,
} from "./ip.ts";
import { ipv4ToBytes, ipv6ToBytes } from "./ip_text.ts";

/** ICMPv4 type Destination Unreachable (RFC 792). */
export const ICMPV4_DEST_UNREACHABLE = 3;
/** Its code "fragmentation needed and DF set" (RFC 792, RFC 1191 §4). */
export const ICMPV4_FRAGMENTATION_NEEDED = 4;
/** ICMPv6 type Packet Too Big (RFC 4443 §3.2); its code is 0. */
export const ICMPV6_PACKET_TOO_BIG = 2;
/** Length of the ICMP header of these errors (type, code, checksum, second word). */
export const ICMP_HEADER_LENGTH = 8;
/** Largest ICMPv4 error, IP header included (RFC 1812 §4.3.2.3). */
export const ICMPV4_ERROR_MAX_LENGTH = 576;
/** Largest ICMPv6 error, IPv6 header included: the minimum IPv6 MTU (RFC 4443 §2.4 (c)). */
export const ICMPV6_ERROR_MAX_LENGTH = 1280;
/** Bytes {@link writeTooBigReply} writes in front of an IPv4 packet: IPv4 and ICMP headers. */
export const TOO_BIG_HEADROOM_V4 = IPV4_HEADER_MIN_LENGTH + ICMP_HEADER_LENGTH;
/** Bytes {@link writeTooBigReply} writes in front of an IPv6 packet: IPv6 and ICMPv6 headers. */
export const TOO_BIG_HEADROOM_V6 = IPV6_HEADER_LENGTH + ICMP_HEADER_LENGTH;

// Field table (byte offsets from the ICMP header start), RFC 792, RFC 1191 §4, RFC 4443 §3.2.
/** Type. */
const TYPE = 0;
/** Code. */
const CODE = 1;
/** Checksum. */
const CHECKSUM = 2;
/** ICMPv4: 16 unused bits (zero). */
const V4_UNUSED = 4;
/** ICMPv4: the next-hop MTU. */
const V4_NEXT_HOP_MTU = 6;
/** ICMPv6: the MTU. */
const V6_MTU = 4;

/** TOS of the IPv4 header of an error we send (precedence internetwork control). */
const ERROR_TOS = 0xc0;
/** Default TTL / hop limit of an error we send. */
const DEFAULT_TTL = 64;

/** A "packet too big" error in its IP packet (see the module notes). */
export interface IcmpTooBig {
  /** 4: ICMPv4 fragmentation needed in IPv4; 6: ICMPv6 Packet Too Big in IPv6. */
  readonly version: 4 | 6;
  /** Source address of the error (who says the packet is too big). */
  readonly src: string;
  /** Destination: the source of the packet that was too big. */
  readonly dst: string;
  /** TTL or hop limit. */
  readonly ttl: number;
  /** The MTU the destination may send: 16 bits in ICMPv4, 32 in ICMPv6. */
  readonly mtu: number;
  /** The start of the packet that was too big, as quoted. */
  readonly quote: Uint8Array;
}

/** An {@link IcmpTooBig} as parsed, with whether its checksums are right. */
export interface ParsedIcmpTooBig extends IcmpTooBig {
  /** The IPv4 header checksum (v4) and the ICMP checksum are right. */
  readonly checksumOk: boolean;
}

// ---------------------------------------------------------------------------
// Record form.

/**
 * Parses an IP packet carrying a "packet too big" error. Throws
 * `WireError` when it is truncated, its lengths disagree with the bytes,
 * it is not ICMP (IPv4 protocol 1, IPv6 next header 58 with no extension
 * header), or not that error (type 3 code 4, type 2 code 0). Bad
 * checksums are reported in `checksumOk`.
 */
export function parseIcmpTooBig(bytes: Uint8Array): ParsedIcmpTooBig {
  const r = new Reader(bytes);
  r.need(1, "ip.version");
  const version = bytes[0]! >>> 4;
  let src: string;
  let dst: string;
  let ttl: number;
  let ok: boolean;
  let pseudo = 0;
  if (version === 4) {
    const h = readIPv4Header(r);
    if (h.protocol !== IP_PROTO_ICMP) r.fail("ip.protocol", `is ${h.protocol}, not ICMP (1)`, 9);
    if (h.moreFragments || h.fragmentOffset !== 0) {
      r.fail("ipv4.flags", "a fragment cannot be parsed as ICMP", 6);
    }
    if (h.totalLength !== bytes.length) {
      r.fail("ipv4.total-length", `is ${h.totalLength}, packet has ${bytes.length} bytes`, 2);
    }
    ({ src, dst, ttl } = h);
    ok = h.checksumOk;
  } else if (version === 6) {
    const h = readIPv6Header(r);
    if (h.nextHeader !== IP_PROTO_ICMPV6) {
      r.fail("ip.protocol", `next header is ${h.nextHeader}, not ICMPv6 (58)`, 6);
    }
    const rest = bytes.length - IPV6_HEADER_LENGTH;
    if (h.payloadLength !== rest) {
      r.fail("ipv6.payload-length", `is ${h.payloadLength}, ${rest} bytes follow the header`, 4);
    }
    ({ src, dst } = h);
    ttl = h.hopLimit;
    ok = true;
    pseudo = ipv6PseudoHeaderSum(bytes, IPV6_SRC_OFFSET, IP_PROTO_ICMPV6, rest);
  } else {
    return r.fail("ip.version", `is ${version}, not 4 or 6`, 0);
  }
  const start = r.pos;
  r.need(ICMP_HEADER_LENGTH, "icmp.header");
  const type = bytes[start + TYPE]!;
  const code = bytes[start + CODE]!;
  const v = r.view;
  let mtu: number;
  if (version === 4) {
    if (type !== ICMPV4_DEST_UNREACHABLE || code !== ICMPV4_FRAGMENTATION_NEEDED) {
      r.fail("icmp.type", `is ${type} code ${code}, not 3 code 4 (fragmentation needed)`, start);
    }
    mtu = v.getUint16(start + V4_NEXT_HOP_MTU, false);
  } else {
    if (type !== ICMPV6_PACKET_TOO_BIG || code !== 0) {
      r.fail("icmp.type", `is ${type} code ${code}, not 2 code 0 (packet too big)`, start);
    }
    mtu = v.getUint32(start + V6_MTU, false);
  }
  ok = ok && internetChecksum(bytes, start, bytes.length, pseudo) === 0;
  r.pos = start + ICMP_HEADER_LENGTH;
  const quote = r.copy(r.remaining, "icmp.quote");
  return { version, src, dst, ttl, mtu, quote, checksumOk: ok };
}

/** Length of `x` on the wire: IP header, ICMP header and the quote. */
export function icmpTooBigLength(x: IcmpTooBig): number {
  return (x.version === 4 ? TOO_BIG_HEADROOM_V4 : TOO_BIG_HEADROOM_V6) + x.quote.length;
}

/**
 * Emits `x` (IP header, ICMP header with its checksum, the quote) into a
 * new buffer, or into `into` at `offset`. RangeError/TypeError for fields
 * out of range or addresses of the other family; the quote is written as
 * given (keep it within the maximum lengths yourself).
 */
export function emitIcmpTooBig(x: IcmpTooBig, into?: Uint8Array, offset = 0): Uint8Array {
  const len = icmpTooBigLength(x);
  checkUint(x.ttl, 0xff, "icmp too-big ttl");
  checkUint(x.mtu, x.version === 4 ? 0xffff : 0xffffffff, "icmp too-big mtu");
  if (x.version === 4) checkUint(len, 0xffff, "icmp too-big length");
  else checkUint(len - IPV6_HEADER_LENGTH, 0xffff, "icmp too-big payload length");
  const w = target(len, into, offset, "emitIcmpTooBig");
  const b = w.bytes;
  const start = w.pos;
  const v4 = x.version === 4;
  const addrs = start + (v4 ? IPV4_SRC_OFFSET : IPV6_SRC_OFFSET);
  const n = v4 ? 4 : 16;
  const put = v4 ? ipv4ToBytes : ipv6ToBytes;
  if (!put(x.src, b, addrs)) {
    throw new TypeError(`icmp too-big src: ${JSON.stringify(x.src)} is not IPv${x.version}`);
  }
  if (!put(x.dst, b, addrs + n)) {
    throw new TypeError(`icmp too-big dst: ${JSON.stringify(x.dst)} is not IPv${x.version}`);
  }
  b.set(x.quote, start + len - x.quote.length);
  writeHeaders(b, start, x.version, x.ttl, x.mtu, x.quote.length);
  return b.subarray(start, start + len);
}

/**
 * Writes the IP header (all but its addresses, already at their offsets),
 * the ICMP header and both checksums of an error starting at `start` whose
 * quote of `quoteLen` bytes follows the ICMP header.
 */
function writeHeaders(
  b: Uint8Array,
  start: number,
  version: 4 | 6,
  ttl: number,
  mtu: number,
  quoteLen: number,
): void {
  if (version === 4) {
    const total = TOO_BIG_HEADROOM_V4 + quoteLen;
    b[start] = 0x45;
    b[start + 1] = ERROR_TOS;
    b[start + 2] = total >>> 8;
    b[start + 3] = total;
    b.fill(0, start + 4, start + 8); // identification, flags, fragment offset
    b[start + 8] = ttl;
    b[start + IPV4_PROTOCOL_OFFSET] = IP_PROTO_ICMP;
    b[start + 10] = 0;
    b[start + 11] = 0;
    const c = internetChecksum(b, start, start + IPV4_HEADER_MIN_LENGTH);
    b[start + 10] = c >>> 8;
    b[start + 11] = c;
    const i = start + IPV4_HEADER_MIN_LENGTH;
    b[i + TYPE] = ICMPV4_DEST_UNREACHABLE;
    b[i + CODE] = ICMPV4_FRAGMENTATION_NEEDED;
    b[i + CHECKSUM] = 0;
    b[i + CHECKSUM + 1] = 0;
    b[i + V4_UNUSED] = 0;
    b[i + V4_UNUSED + 1] = 0;
    b[i + V4_NEXT_HOP_MTU] = mtu >>> 8;
    b[i + V4_NEXT_HOP_MTU + 1] = mtu;
    const ic = internetChecksum(b, i, start + total);
    b[i + CHECKSUM] = ic >>> 8;
    b[i + CHECKSUM + 1] = ic;
    return;
  }
  const payload = ICMP_HEADER_LENGTH + quoteLen;
  b[start] = 0x60;
  b.fill(0, start + 1, start + 4); // traffic class, flow label
  b[start + 4] = payload >>> 8;
  b[start + 5] = payload;
  b[start + IPV6_NEXT_HEADER_OFFSET] = IP_PROTO_ICMPV6;
  b[start + 7] = ttl;
  const i = start + IPV6_HEADER_LENGTH;
  b[i + TYPE] = ICMPV6_PACKET_TOO_BIG;
  b[i + CODE] = 0;
  b[i + CHECKSUM] = 0;
  b[i + CHECKSUM + 1] = 0;
  b[i + V6_MTU] = mtu >>> 24;
  b[i + V6_MTU + 1] = mtu >>> 16;
  b[i + V6_MTU + 2] = mtu >>> 8;
  b[i + V6_MTU + 3] = mtu;
  const pseudo = ipv6PseudoHeaderSum(b, start + IPV6_SRC_OFFSET, IP_PROTO_ICMPV6, payload);
  const c = internetChecksum(b, i, i + payload, pseudo);
  b[i + CHECKSUM] = c >>> 8;
  b[i + CHECKSUM + 1] = c;
}

// ---------------------------------------------------------------------------
// Data path: in place, no allocation, no exceptions for any packet bytes.

/** ICMPv4 types that are errors (RFC 1122 §3.2.2: never answered with an error). */
function icmpv4IsError(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

/**
 * Whether the IPv4 or IPv6 packet `b[off, off+len)` may be answered with an
 * ICMP error (RFC 1122 §3.2.2, RFC 1812 §4.3.2.7, RFC 4443 §2.4 (e)): it is
 * not itself an ICMP error (ICMPv6 types below 128), not an IPv4 fragment
 * other than the first, and its source is not unspecified, broadcast or
 * multicast. Extension headers before an ICMPv6 message are not followed
 * (such a packet may be answered). False for anything too short to tell.
 */
export function icmpErrorAllowed(b: Uint8Array, off: number, len: number): boolean {
  const version = b[off]! >>> 4;
  if (version === 4) {
    if (len < IPV4_HEADER_MIN_LENGTH) return false;
    const hl = ipv4HeaderBytes(b, off);
    if (hl < IPV4_HEADER_MIN_LENGTH || hl > len) return false;
    const s = off + IPV4_SRC_OFFSET;
    const first = b[s]!;
    if (first >= 224) return false; // multicast, class E, broadcast
    if (first === 0 && b[s + 1] === 0 && b[s + 2] === 0 && b[s + 3] === 0) return false;
    const fragOffset = ((b[off + 6]! & 0x1f) << 8) | b[off + 7]!;
    if (fragOffset !== 0) return false;
    if (b[off + IPV4_PROTOCOL_OFFSET] === IP_PROTO_ICMP) {
      if (hl + 1 > len || icmpv4IsError(b[off + hl]!)) return false;
    }
    return true;
  }
  if (version === 6) {
    if (len < IPV6_HEADER_LENGTH) return false;
    const s = off + IPV6_SRC_OFFSET;
    if (b[s] === 0xff) return false; // multicast
    let any = 0;
    for (let k = 0; k < 16; k++) any |= b[s + k]!;
    if (any === 0) return false;
    if (b[off + IPV6_NEXT_HEADER_OFFSET] === IP_PROTO_ICMPV6) {
      if (IPV6_HEADER_LENGTH + 1 > len || b[off + IPV6_HEADER_LENGTH]! < 128) return false;
    }
    return true;
  }
  return false;
}

/**
 * Answers the IPv4 or IPv6 packet `b[off, off+len)` that is too big: writes
 * in front of it, from `off - TOO_BIG_HEADROOM_V4` (or `_V6`), an IP packet
 * from its destination to its source carrying ICMPv4 "fragmentation
 * needed" or ICMPv6 "packet too big" with `mtu`, quoting as much of the
 * packet as fits in 576 (1280) bytes. Returns the length of the answer.
 * The caller checks the version, the length of the header and
 * {@link icmpErrorAllowed}; RangeError when there is no room in front
 * (misuse).
 */
export function writeTooBigReply(
  b: Uint8Array,
  off: number,
  len: number,
  mtu: number,
  ttl = DEFAULT_TTL,
): number {
  const v4 = b[off]! >>> 4 === 4;
  const head = v4 ? TOO_BIG_HEADROOM_V4 : TOO_BIG_HEADROOM_V6;
  const start = off - head;
  if (start < 0) throw new RangeError(`writeTooBigReply: no room for ${head} bytes at ${off}`);
  const quote = Math.min(len, (v4 ? ICMPV4_ERROR_MAX_LENGTH : ICMPV6_ERROR_MAX_LENGTH) - head);
  if (v4) {
    // Source: the packet's destination; destination: its source.
    b.copyWithin(start + IPV4_SRC_OFFSET, off + IPV4_DST_OFFSET, off + IPV4_DST_OFFSET + 4);
    b.copyWithin(start + IPV4_DST_OFFSET, off + IPV4_SRC_OFFSET, off + IPV4_SRC_OFFSET + 4);
    writeHeaders(b, start, 4, ttl, Math.min(mtu, 0xffff), quote);
  } else {
    b.copyWithin(start + IPV6_SRC_OFFSET, off + IPV6_DST_OFFSET, off + IPV6_DST_OFFSET + 16);
    b.copyWithin(start + IPV6_DST_OFFSET, off + IPV6_SRC_OFFSET, off + IPV6_SRC_OFFSET + 16);
    writeHeaders(b, start, 6, ttl, mtu >>> 0, quote);
  }
  return head + quote;
}
