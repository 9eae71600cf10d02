/**
 * UDP (RFC 768): the 8-byte header, its checksum over the IPv4 or IPv6
 * pseudo-header, and whole IP/UDP packets as carried inside an
 * Encapsulated Control Message (RFC 9301 §5.8).
 *
 * ```
 *  0      7 8     15 16    23 24    31
 * +--------+--------+--------+--------+
 * |     Source      |   Destination   |
 * |      Port       |      Port       |
 * +--------+--------+--------+--------+
 * |                 |                 |
 * |     Length      |    Checksum     |
 * +--------+--------+--------+--------+
 * ```
 *
 * - `UdpHeader` (`parseUdpHeader`/`emitUdpHeader`) is the header verbatim,
 *   checksum included as given.
 * - `emitUdp` writes header + payload with the checksum computed over the
 *   pseudo-header of the given addresses.
 * - `emitIpUdp`/`parseIpUdp` handle a whole IPv4/UDP or IPv6/UDP packet.
 *   `parseIpUdp` is strict: the IP length field must cover exactly the
 *   bytes given and the UDP length must equal the IP payload length; IPv4
 *   fragments and IPv6 extension headers are refused.
 *
 * Checksum rules: a computed 0 is sent as 0xffff (RFC 768). On receipt
 * over IPv4 a zero checksum means "none" and is accepted; over IPv6 it is
 * invalid (RFC 8200 §8.1).
 *
 * @module
 */

import { checkUint, Reader, target, type Writer } from "./cursor.ts";
import {
  IP_PROTO_UDP,
  IPV4_HEADER_MIN_LENGTH,
  IPV4_SRC_OFFSET,
  type IPv4Header,
  ipv4PseudoHeaderSum,
  IPV6_HEADER_LENGTH,
  IPV6_SRC_OFFSET,
  type IPv6Header,
  ipv6PseudoHeaderSum,
  onesComplementSum,
  readIPv4Header,
  readIPv6Header,
  writeIPv4Header,
  writeIPv6Header,
} from "./ip.ts";
import { ipv4ToBytes, ipv6ToBytes } from "./ip_text.ts";

/** Length of the UDP header. */
export const UDP_HEADER_LENGTH = 8;

// Field table, RFC 768 (byte offsets from the UDP header start).
/** Source port. */
const SRC_PORT = 0;
/** Destination port. */
const DST_PORT = 2;
/** Length of header + data. */
const LENGTH = 4;
/** Checksum. */
const CHECKSUM = 6;

/** Default IPv4 TTL / IPv6 hop limit of `emitIpUdp`. */
const DEFAULT_TTL = 64;

/** A UDP header, RFC 768. */
export interface UdpHeader {
  /** Source port. */
  readonly srcPort: number;
  /** Destination port. */
  readonly dstPort: number;
  /** Length of header plus data in bytes, at least 8. */
  readonly length: number;
  /** Checksum as on the wire (0: none, IPv4 only). */
  readonly checksum: number;
}

// ---------------------------------------------------------------------------
// Header.

/**
 * Parses the UDP header at the start of `bytes` (the data after it is not
 * read). Throws `WireError` if truncated or if the length field is below 8.
 */
export function parseUdpHeader(bytes: Uint8Array): UdpHeader {
  return readUdpHeader(new Reader(bytes));
}

/** Reads a UDP header at `r.pos` and advances past it. */
export function readUdpHeader(r: Reader): UdpHeader {
  const start = r.pos;
  r.need(UDP_HEADER_LENGTH, "udp.header");
  const v = r.view;
  const length = v.getUint16(start + LENGTH, false);
  if (length < UDP_HEADER_LENGTH) {
    r.fail("udp.length", `${length} is below 8`, start + LENGTH);
  }
  r.pos = start + UDP_HEADER_LENGTH;
  return {
    srcPort: v.getUint16(start + SRC_PORT, false),
    dstPort: v.getUint16(start + DST_PORT, false),
    length,
    checksum: v.getUint16(start + CHECKSUM, false),
  };
}

/** Length of the UDP header on the wire: always 8. */
export function udpHeaderLength(_x: UdpHeader): number {
  return UDP_HEADER_LENGTH;
}

/** Writes the UDP header `x` verbatim (checksum as given) at `w.pos`. */
export function writeUdpHeader(w: Writer, x: UdpHeader): void {
  checkUint(x.srcPort, 0xffff, "udp srcPort");
  checkUint(x.dstPort, 0xffff, "udp dstPort");
  checkUint(x.length, 0xffff, "udp length");
  if (x.length < UDP_HEADER_LENGTH) {
    throw new RangeError(`udp length: ${x.length} is below 8`);
  }
  checkUint(x.checksum, 0xffff, "udp checksum");
  w.u16(x.srcPort);
  w.u16(x.dstPort);
  w.u16(x.length);
  w.u16(x.checksum);
}

/** Emits the UDP header `x` verbatim into a new buffer, or into `into` at `offset`. */
export function emitUdpHeader(
  x: UdpHeader,
  into?: Uint8Array,
  offset = 0,
): Uint8Array {
  const w = target(UDP_HEADER_LENGTH, into, offset, "emitUdpHeader");
  const start = w.pos;
  writeUdpHeader(w, x);
  return w.bytes.subarray(start, start + UDP_HEADER_LENGTH);
}

// ---------------------------------------------------------------------------
// Checksum.

/**
 * The checksum to send for the UDP datagram `bytes[start, end)` (header
 * and data), given the pseudo-header sum (`ipv4PseudoHeaderSum` /
 * `ipv6PseudoHeaderSum` with protocol 17 and length `end - start`). The
 * checksum field inside the datagram is skipped, so it may hold anything.
 * A computed 0 is returned as 0xffff. To verify a received datagram,
 * compare the result with its checksum field (after the IPv4 0 = none rule).
 */
export function udpChecksum(
  pseudoSum: number,
  bytes: Uint8Array,
  start: number,
  end: number,
): number {
  const s = onesComplementSum(bytes, start, start + CHECKSUM, pseudoSum);
  const c = ~onesComplementSum(bytes, start + CHECKSUM + 2, end, s) & 0xffff;
  return c === 0 ? 0xffff : c;
}

// ---------------------------------------------------------------------------
// Datagram with a computed checksum.

/** A UDP datagram to emit with its checksum computed. */
export interface UdpDatagram {
  /** IP source address (IPv4 or IPv6 text), for the pseudo-header. */
  readonly src: string;
  /** IP destination address, same family as `src`. */
  readonly dst: string;
  /** Source port. */
  readonly srcPort: number;
  /** Destination port. */
  readonly dstPort: number;
  /** Data after the header. */
  readonly payload: Uint8Array;
}

/** Addresses of the last pseudo-header, reused to avoid allocating. */
const scratchAddrs = new Uint8Array(32);

/**
 * Puts `src` then `dst` into `scratchAddrs`; returns 4 or 6.
 * TypeError if they are not both IPv4 or both IPv6.
 */
function addressFamily(src: string, dst: string, what: string): 4 | 6 {
  if (ipv4ToBytes(src, scratchAddrs, 0)) {
    if (ipv4ToBytes(dst, scratchAddrs, 4)) return 4;
  } else if (ipv6ToBytes(src, scratchAddrs, 0)) {
    if (ipv6ToBytes(dst, scratchAddrs, 16)) return 6;
  } else {
    throw new TypeError(`${what} src: ${JSON.stringify(src)} is not an IP address`);
  }
  throw new TypeError(
    `${what} dst: ${JSON.stringify(dst)} is not an address of the family of ${src}`,
  );
}

/** Length of `x` on the wire: 8 plus the payload. */
export function udpLength(x: UdpDatagram): number {
  return UDP_HEADER_LENGTH + x.payload.length;
}

/**
 * Emits the UDP header and payload of `x` with the checksum computed over
 * the pseudo-header of `x.src`/`x.dst`, into a new buffer or into `into`
 * at `offset`. TypeError for bad address text, RangeError for bad ports or
 * a datagram over 65535 bytes.
 */
export function emitUdp(
  x: UdpDatagram,
  into?: Uint8Array,
  offset = 0,
): Uint8Array {
  const len = udpLength(x);
  checkUint(len, 0xffff, "udp length");
  const family = addressFamily(x.src, x.dst, "emitUdp");
  const pseudo = family === 4
    ? ipv4PseudoHeaderSum(scratchAddrs, 0, IP_PROTO_UDP, len)
    : ipv6PseudoHeaderSum(scratchAddrs, 0, IP_PROTO_UDP, len);
  const w = target(len, into, offset, "emitUdp");
  const start = w.pos;
  writeUdpHeader(w, {
    srcPort: x.srcPort,
    dstPort: x.dstPort,
    length: len,
    checksum: 0,
  });
  w.raw(x.payload);
  const c = udpChecksum(pseudo, w.bytes, start, start + len);
  w.view.setUint16(start + CHECKSUM, c, false);
  return w.bytes.subarray(start, start + len);
}

// ---------------------------------------------------------------------------
// IP + UDP packet.

/** An IPv4/UDP or IPv6/UDP packet to emit (family chosen from the addresses). */
export interface IpUdpSpec {
  /** IP source address, IPv4 or IPv6 text. */
  readonly src: string;
  /** IP destination address, same family as `src`. */
  readonly dst: string;
  /** UDP source port. */
  readonly srcPort: number;
  /** UDP destination port. */
  readonly dstPort: number;
  /** IPv4 TTL or IPv6 hop limit; 64 if absent. */
  readonly ttl?: number;
  /** IPv4 TOS or IPv6 traffic class; 0 if absent. */
  readonly tos?: number;
  /** IPv4 identification; 0 if absent. */
  readonly identification?: number;
  /** IPv4 DF bit; set if absent (an atomic datagram, RFC 6864 §4). */
  readonly dontFragment?: boolean;
  /** IPv6 flow label; 0 if absent. */
  readonly flowLabel?: number;
  /** Send a zero UDP checksum (IPv4 only: "no checksum"); computed if absent or false. */
  readonly zeroUdpChecksum?: boolean;
  /** UDP data. */
  readonly payload: Uint8Array;
}

/** A parsed IPv4/UDP or IPv6/UDP packet. */
export interface IpUdpPacket {
  /** The IP header (`ip.version` tells which). */
  readonly ip: IPv4Header | IPv6Header;
  /** The UDP header. */
  readonly udp: UdpHeader;
  /** The UDP data: a subarray of the parsed bytes, not a copy. */
  readonly payload: Uint8Array;
  /**
   * Whether the checksums are right: the IPv4 header checksum (IPv4), and
   * the UDP checksum (a zero UDP checksum passes over IPv4, fails over IPv6).
   */
  readonly checksumOk: boolean;
}

/** Length of the packet `x` on the wire: IP header + 8 + payload. */
export function ipUdpLength(x: IpUdpSpec): number {
  const ipHeader = ipv4ToBytes(x.src, scratchAddrs, 0)
    ? IPV4_HEADER_MIN_LENGTH
    : IPV6_HEADER_LENGTH;
  return ipHeader + UDP_HEADER_LENGTH + x.payload.length;
}

/**
 * Emits a whole IP/UDP packet around `x.payload`: IPv4 (no options; by
 * default TOS 0, identification 0 with DF set, an atomic datagram per RFC
 * 6864 §4) or IPv6 (by default traffic class and flow label 0), chosen from
 * the address family, with the IPv4 header checksum and the UDP checksum
 * computed (unless `zeroUdpChecksum` over IPv4). Into a new
 * buffer or into `into` at `offset`. TypeError for bad or mixed address
 * families, RangeError for out-of-range fields or an oversized packet.
 */
export function emitIpUdp(
  x: IpUdpSpec,
  into?: Uint8Array,
  offset = 0,
): Uint8Array {
  const family = addressFamily(x.src, x.dst, "emitIpUdp");
  const ipHeader = family === 4 ? IPV4_HEADER_MIN_LENGTH : IPV6_HEADER_LENGTH;
  const udpLen = UDP_HEADER_LENGTH + x.payload.length;
  const total = ipHeader + udpLen;
  checkUint(family === 4 ? total : udpLen, 0xffff, "emitIpUdp packet length");
  const ttl = x.ttl ?? DEFAULT_TTL;
  checkUint(ttl, 0xff, "emitIpUdp ttl");
  const w = target(total, into, offset, "emitIpUdp");
  const start = w.pos;
  let pseudo: number;
  if (family === 4) {
    writeIPv4Header(w, {
      version: 4,
      tos: x.tos ?? 0,
      totalLength: total,
      identification: x.identification ?? 0,
      dontFragment: x.dontFragment ?? true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl,
      protocol: IP_PROTO_UDP,
      src: x.src,
      dst: x.dst,
      options: EMPTY,
    });
    pseudo = ipv4PseudoHeaderSum(
      w.bytes,
      start + IPV4_SRC_OFFSET,
      IP_PROTO_UDP,
      udpLen,
    );
  } else {
    writeIPv6Header(w, {
      version: 6,
      trafficClass: x.tos ?? 0,
      flowLabel: x.flowLabel ?? 0,
      payloadLength: udpLen,
      nextHeader: IP_PROTO_UDP,
      hopLimit: ttl,
      src: x.src,
      dst: x.dst,
    });
    pseudo = ipv6PseudoHeaderSum(
      w.bytes,
      start + IPV6_SRC_OFFSET,
      IP_PROTO_UDP,
      udpLen,
    );
  }
  const udpStart = w.pos;
  writeUdpHeader(w, {
    srcPort: x.srcPort,
    dstPort: x.dstPort,
    length: udpLen,
    checksum: 0,
  });
  w.raw(x.payload);
  if (family === 6 || x.zeroUdpChecksum !== true) {
    const c = udpChecksum(pseudo, w.bytes, udpStart, udpStart + udpLen);
    w.view.setUint16(udpStart + CHECKSUM, c, false);
  }
  return w.bytes.subarray(start, start + total);
}

const EMPTY = new Uint8Array(0);

/**
 * Parses a whole IPv4/UDP or IPv6/UDP packet that fills `bytes` exactly.
 * Throws `WireError` for: an IP version other than 4 or 6 (`ip.version`),
 * a payload that is not UDP (`ip.protocol`, also for IPv6 extension
 * headers), an IPv4 fragment (`ipv4.flags`), an IP length field that does
 * not match the bytes (`ipv4.total-length`, `ipv6.payload-length`), a UDP
 * length that does not match the IP payload (`udp.length`), and
 * truncation. Bad checksums are reported in `checksumOk`, not thrown.
 */
export function parseIpUdp(bytes: Uint8Array): IpUdpPacket {
  const r = new Reader(bytes);
  r.need(1, "ip.version");
  const version = bytes[0]! >>> 4;
  let ip: IPv4Header | IPv6Header;
  let pseudo: number;
  let ipOk: boolean;
  if (version === 4) {
    const h = readIPv4Header(r);
    if (h.protocol !== IP_PROTO_UDP) {
      r.fail("ip.protocol", `is ${h.protocol}, not UDP (17)`, 9);
    }
    if (h.moreFragments || h.fragmentOffset !== 0) {
      r.fail("ipv4.flags", "a fragment cannot be parsed as UDP", 6);
    }
    if (h.totalLength !== bytes.length) {
      r.fail(
        "ipv4.total-length",
        `is ${h.totalLength}, packet has ${bytes.length} bytes`,
        2,
      );
    }
    ip = h;
    ipOk = h.checksumOk;
    pseudo = ipv4PseudoHeaderSum(
      bytes,
      IPV4_SRC_OFFSET,
      IP_PROTO_UDP,
      bytes.length - r.pos,
    );
  } else if (version === 6) {
    const h = readIPv6Header(r);
    if (h.nextHeader !== IP_PROTO_UDP) {
      r.fail("ip.protocol", `next header is ${h.nextHeader}, not UDP (17)`, 6);
    }
    if (h.payloadLength !== bytes.length - IPV6_HEADER_LENGTH) {
      r.fail(
        "ipv6.payload-length",
        `is ${h.payloadLength}, packet has ${
          bytes.length - IPV6_HEADER_LENGTH
        } bytes after the header`,
        4,
      );
    }
    ip = h;
    ipOk = true;
    pseudo = ipv6PseudoHeaderSum(
      bytes,
      IPV6_SRC_OFFSET,
      IP_PROTO_UDP,
      bytes.length - r.pos,
    );
  } else {
    return r.fail("ip.version", `is ${version}, not 4 or 6`, 0);
  }
  const udpStart = r.pos;
  const udp = readUdpHeader(r);
  if (udp.length !== bytes.length - udpStart) {
    r.fail(
      "udp.length",
      `is ${udp.length}, IP payload has ${bytes.length - udpStart} bytes`,
      udpStart + LENGTH,
    );
  }
  let udpOk: boolean;
  if (udp.checksum === 0) {
    udpOk = version === 4;
  } else {
    udpOk = udpChecksum(pseudo, bytes, udpStart, bytes.length) ===
      udp.checksum;
  }
  return {
    ip,
    udp,
    payload: bytes.subarray(r.pos),
    checksumOk: ipOk && udpOk,
  };
}
