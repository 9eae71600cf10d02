/**
 * Frames for pcap files, built by hand from the RFCs and independent of
 * wire/: Ethernet II, IPv4 (RFC 791), IPv6 (RFC 8200) and UDP (RFC 768,
 * with the RFC 8200 §8.1 pseudo-header for IPv6), with the Internet
 * checksum of RFC 1071. The tests wrap our wire output in these to hand it
 * to Wireshark's dissector; being a second implementation, they also check
 * wire/'s own IP and UDP code.
 *
 * @module
 */

import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, LINKTYPE_ETHERNET, LINKTYPE_RAW } from "../tools/pcap.ts";

const ETH_HEADER_LEN = 14; // dst MAC 6, src MAC 6, EtherType 2
const IPV4_HEADER_LEN = 20; // without options
const IPV6_HEADER_LEN = 40;
const UDP_HEADER_LEN = 8;
const IPPROTO_UDP = 17;

/** Source MAC used by {@link ethernetFrame} when none is given (locally administered). */
export const DEFAULT_SRC_MAC: Uint8Array = Uint8Array.of(0x02, 0, 0, 0, 0, 0x01);
/** Destination MAC used by {@link ethernetFrame} when none is given (locally administered). */
export const DEFAULT_DST_MAC: Uint8Array = Uint8Array.of(0x02, 0, 0, 0, 0, 0x02);

/** What to wrap: a UDP payload between two endpoints. */
export interface UdpFrameSpec {
  /** Source address: IPv4 ("192.0.2.1") or IPv6 ("2001:db8::1"); both ends the same family. */
  readonly src: string;
  /** Destination address. */
  readonly dst: string;
  /** UDP source port. */
  readonly srcPort: number;
  /** UDP destination port. */
  readonly dstPort: number;
  /** The UDP payload. */
  readonly payload: Uint8Array;
  /** IPv4 TTL / IPv6 hop limit; default 64. */
  readonly ttl?: number;
  /** IPv4 identification; default 0. */
  readonly ipId?: number;
  /** Link layer: {@link LINKTYPE_ETHERNET} (default) adds an Ethernet header; {@link LINKTYPE_RAW} does not. */
  readonly linktype?: number;
  /** Ethernet source MAC (6 bytes). */
  readonly srcMac?: Uint8Array;
  /** Ethernet destination MAC (6 bytes). */
  readonly dstMac?: Uint8Array;
}

/**
 * Builds a whole frame for a pcap of the given link type: Ethernet (unless
 * raw) + IPv4 or IPv6 + UDP + payload, with a correct IPv4 header checksum
 * and UDP checksum.
 */
export function udpFrame(spec: UdpFrameSpec): Uint8Array {
  const linktype = spec.linktype ?? LINKTYPE_ETHERNET;
  const v6 = spec.src.includes(":");
  if (v6 !== spec.dst.includes(":")) {
    throw new TypeError(`source ${spec.src} and destination ${spec.dst} are different families`);
  }
  const udp = udpDatagram(spec.src, spec.dst, spec.srcPort, spec.dstPort, spec.payload);
  const ip = v6
    ? ipv6Packet({
      src: spec.src,
      dst: spec.dst,
      nextHeader: IPPROTO_UDP,
      payload: udp,
      hopLimit: spec.ttl ?? 64,
    })
    : ipv4Packet({
      src: spec.src,
      dst: spec.dst,
      protocol: IPPROTO_UDP,
      payload: udp,
      ttl: spec.ttl ?? 64,
      id: spec.ipId ?? 0,
    });
  if (linktype === LINKTYPE_RAW) return ip;
  if (linktype !== LINKTYPE_ETHERNET) {
    throw new RangeError(`udpFrame() builds Ethernet (1) or raw IP (101) frames, not ${linktype}`);
  }
  return ethernetFrame({
    etherType: v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4,
    payload: ip,
    ...(spec.srcMac ? { srcMac: spec.srcMac } : {}),
    ...(spec.dstMac ? { dstMac: spec.dstMac } : {}),
  });
}

/** Ethernet II header fields. */
export interface EthernetSpec {
  /** Destination MAC (6 bytes); default {@link DEFAULT_DST_MAC}. */
  readonly dstMac?: Uint8Array;
  /** Source MAC (6 bytes); default {@link DEFAULT_SRC_MAC}. */
  readonly srcMac?: Uint8Array;
  /** EtherType, e.g. 0x0800 for IPv4, 0x86dd for IPv6. */
  readonly etherType: number;
  /** What follows the header. */
  readonly payload: Uint8Array;
}

/** Builds an Ethernet II frame (no FCS, no padding). */
export function ethernetFrame(spec: EthernetSpec): Uint8Array {
  const dstMac = spec.dstMac ?? DEFAULT_DST_MAC;
  const srcMac = spec.srcMac ?? DEFAULT_SRC_MAC;
  if (dstMac.length !== 6 || srcMac.length !== 6) throw new RangeError("a MAC address has 6 bytes");
  checkUint(spec.etherType, 0xffff, "etherType");
  const out = new Uint8Array(ETH_HEADER_LEN + spec.payload.length);
  out.set(dstMac, 0); // destination MAC
  out.set(srcMac, 6); // source MAC
  out[12] = spec.etherType >> 8; // EtherType
  out[13] = spec.etherType & 0xff;
  out.set(spec.payload, ETH_HEADER_LEN);
  return out;
}

/** IPv4 header fields (no options). */
export interface IPv4Spec {
  /** Source address, dotted quad. */
  readonly src: string;
  /** Destination address, dotted quad. */
  readonly dst: string;
  /** Protocol number (17 for UDP, 1 for ICMP). */
  readonly protocol: number;
  /** What follows the header. */
  readonly payload: Uint8Array;
  /** Time to live; default 64. */
  readonly ttl?: number;
  /** Identification; default 0. */
  readonly id?: number;
  /** Type of service / DSCP+ECN byte; default 0. */
  readonly tos?: number;
  /** Set the Don't Fragment flag; default false. */
  readonly dontFragment?: boolean;
}

/** Builds an IPv4 packet with a correct header checksum (RFC 791). */
export function ipv4Packet(spec: IPv4Spec): Uint8Array {
  const total = IPV4_HEADER_LEN + spec.payload.length;
  if (total > 0xffff) throw new RangeError(`IPv4 packet of ${total} bytes is too long`);
  const ttl = spec.ttl ?? 64;
  const id = spec.id ?? 0;
  const tos = spec.tos ?? 0;
  checkUint(spec.protocol, 0xff, "protocol");
  checkUint(ttl, 0xff, "ttl");
  checkUint(id, 0xffff, "id");
  checkUint(tos, 0xff, "tos");
  const out = new Uint8Array(total);
  out[0] = 0x45; // version 4, IHL 5 (20 bytes)
  out[1] = tos; // DSCP + ECN
  out[2] = total >> 8; // total length
  out[3] = total & 0xff;
  out[4] = id >> 8; // identification
  out[5] = id & 0xff;
  out[6] = spec.dontFragment ? 0x40 : 0; // flags (DF) + fragment offset 0
  out[7] = 0;
  out[8] = ttl; // time to live
  out[9] = spec.protocol; // protocol
  // out[10..11]: header checksum, computed below over the header with it zero
  out.set(parseIPv4(spec.src), 12); // source address
  out.set(parseIPv4(spec.dst), 16); // destination address
  const sum = internetChecksum(out.subarray(0, IPV4_HEADER_LEN));
  out[10] = sum >> 8;
  out[11] = sum & 0xff;
  out.set(spec.payload, IPV4_HEADER_LEN);
  return out;
}

/** IPv6 header fields (no extension headers). */
export interface IPv6Spec {
  /** Source address. */
  readonly src: string;
  /** Destination address. */
  readonly dst: string;
  /** Next header (17 for UDP, 58 for ICMPv6). */
  readonly nextHeader: number;
  /** What follows the header. */
  readonly payload: Uint8Array;
  /** Hop limit; default 64. */
  readonly hopLimit?: number;
  /** Traffic class; default 0. */
  readonly trafficClass?: number;
  /** Flow label (20 bits); default 0. */
  readonly flowLabel?: number;
}

/** Builds an IPv6 packet (RFC 8200 §3). */
export function ipv6Packet(spec: IPv6Spec): Uint8Array {
  const len = spec.payload.length;
  if (len > 0xffff) throw new RangeError(`IPv6 payload of ${len} bytes needs a jumbogram`);
  const hop = spec.hopLimit ?? 64;
  const tc = spec.trafficClass ?? 0;
  const flow = spec.flowLabel ?? 0;
  checkUint(spec.nextHeader, 0xff, "nextHeader");
  checkUint(hop, 0xff, "hopLimit");
  checkUint(tc, 0xff, "trafficClass");
  checkUint(flow, 0xfffff, "flowLabel");
  const out = new Uint8Array(IPV6_HEADER_LEN + len);
  out[0] = 0x60 | (tc >> 4); // version 6, traffic class high nibble
  out[1] = ((tc & 0x0f) << 4) | (flow >> 16); // traffic class low nibble, flow label
  out[2] = (flow >> 8) & 0xff;
  out[3] = flow & 0xff;
  out[4] = len >> 8; // payload length
  out[5] = len & 0xff;
  out[6] = spec.nextHeader; // next header
  out[7] = hop; // hop limit
  out.set(parseIPv6(spec.src), 8); // source address
  out.set(parseIPv6(spec.dst), 24); // destination address
  out.set(spec.payload, IPV6_HEADER_LEN);
  return out;
}

/**
 * Builds a UDP header + payload with its checksum computed over the IPv4 or
 * IPv6 pseudo-header of `src` and `dst` (RFC 768, RFC 8200 §8.1). A computed
 * checksum of 0 is sent as 0xffff.
 */
export function udpDatagram(
  src: string,
  dst: string,
  srcPort: number,
  dstPort: number,
  payload: Uint8Array,
): Uint8Array {
  checkUint(srcPort, 0xffff, "srcPort");
  checkUint(dstPort, 0xffff, "dstPort");
  const len = UDP_HEADER_LEN + payload.length;
  if (len > 0xffff) throw new RangeError(`UDP datagram of ${len} bytes is too long`);
  const out = new Uint8Array(len);
  out[0] = srcPort >> 8; // source port
  out[1] = srcPort & 0xff;
  out[2] = dstPort >> 8; // destination port
  out[3] = dstPort & 0xff;
  out[4] = len >> 8; // length (header + payload)
  out[5] = len & 0xff;
  // out[6..7]: checksum, computed below with it zero
  out.set(payload, UDP_HEADER_LEN);
  const sum = transportChecksum(src, dst, IPPROTO_UDP, out);
  const wire = sum === 0 ? 0xffff : sum;
  out[6] = wire >> 8;
  out[7] = wire & 0xff;
  return out;
}

/**
 * The Internet checksum of an upper-layer segment (UDP, TCP, ICMPv6) with
 * the pseudo-header of `src`/`dst` (IPv4 when they are dotted quads, else
 * IPv6). The segment's own checksum field must be zero. Returns the value to
 * put in the field (before UDP's 0 -> 0xffff rule).
 */
export function transportChecksum(
  src: string,
  dst: string,
  protocol: number,
  segment: Uint8Array,
): number {
  const v6 = src.includes(":");
  let pseudo: Uint8Array;
  if (v6) {
    pseudo = new Uint8Array(40);
    pseudo.set(parseIPv6(src), 0); // source address
    pseudo.set(parseIPv6(dst), 16); // destination address
    new DataView(pseudo.buffer).setUint32(32, segment.length, false); // upper-layer length
    pseudo[39] = protocol; // 3 zero bytes, next header
  } else {
    pseudo = new Uint8Array(12);
    pseudo.set(parseIPv4(src), 0); // source address
    pseudo.set(parseIPv4(dst), 4); // destination address
    pseudo[9] = protocol; // zero, protocol
    pseudo[10] = segment.length >> 8; // UDP/TCP length
    pseudo[11] = segment.length & 0xff;
  }
  return internetChecksum(pseudo, segment);
}

/**
 * RFC 1071 Internet checksum over the concatenation of `parts` (each part's
 * length may be odd only for the last part). Returns the one's complement of
 * the one's complement sum, as a 16-bit number.
 */
export function internetChecksum(...parts: Uint8Array[]): number {
  let sum = 0;
  let odd = false; // a byte is pending from an odd-length earlier part
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) {
      sum += odd ? p[i]! : p[i]! << 8;
      odd = !odd;
    }
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

/** Parses a dotted-quad IPv4 address into 4 bytes; throws TypeError when it is not one. */
export function parseIPv4(text: string): Uint8Array {
  const parts = text.split(".");
  if (parts.length !== 4) throw new TypeError(`not an IPv4 address: ${JSON.stringify(text)}`);
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const s = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(s) || Number(s) > 255) {
      throw new TypeError(`not an IPv4 address: ${JSON.stringify(text)}`);
    }
    out[i] = Number(s);
  }
  return out;
}

/** Parses an IPv6 address (with `::` and an optional dotted-quad tail) into 16 bytes; throws TypeError. */
export function parseIPv6(text: string): Uint8Array {
  const bad = () => new TypeError(`not an IPv6 address: ${JSON.stringify(text)}`);
  const halves = text.split("::");
  if (halves.length > 2) throw bad();
  const groups = (s: string): number[] => {
    if (s === "") return [];
    const out: number[] = [];
    const items = s.split(":");
    items.forEach((g, i) => {
      if (i === items.length - 1 && g.includes(".")) {
        const v4 = parseIPv4(g);
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw bad();
        out.push(parseInt(g, 16));
      }
    });
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) throw bad();
  const all = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** Formats 4 bytes as a dotted quad. */
export function formatIPv4(b: Uint8Array): string {
  if (b.length !== 4) throw new RangeError("an IPv4 address has 4 bytes");
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** Formats 16 bytes as RFC 5952 text (lowercase, longest zero run of 2+ groups as `::`). */
export function formatIPv6(b: Uint8Array): string {
  if (b.length !== 16) throw new RangeError("an IPv6 address has 16 bytes");
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 1; // a single zero group is not compressed
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hexes = g.map((x) => x.toString(16));
  if (bestStart < 0) return hexes.join(":");
  return `${hexes.slice(0, bestStart).join(":")}::${hexes.slice(bestStart + bestLen).join(":")}`;
}

function checkUint(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new RangeError(`${what} ${v} out of range 0..${max}`);
  }
}
