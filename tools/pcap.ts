/**
 * Classic libpcap files, written and read by hand, plus the Ethernet, IPv4,
 * IPv6 and UDP framing needed to put a UDP payload into one.
 *
 * Used by the tests to hand our wire output to Wireshark's dissector
 * (`tshark`), and meant for a future `oor decode --pcap`: the reader pulls
 * UDP payloads out of Ethernet / raw IP / Linux cooked / BSD loopback
 * captures. This file has no Deno APIs, no clock and no randomness (the
 * timestamp of every packet is passed in), so it can move to a library.
 *
 * Formats:
 * - pcap: https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html
 *   (24-byte file header, 16-byte record header per packet).
 * - IPv4 RFC 791, IPv6 RFC 8200, UDP RFC 768 with the RFC 8200 §8.1
 *   pseudo-header for IPv6, Internet checksum RFC 1071.
 *
 * @module
 */

// ---------------------------------------------------------------------------
// Constants (offsets and numbers, each from the format named above)
// ---------------------------------------------------------------------------

/** pcap magic for microsecond timestamps. */
export const PCAP_MAGIC_USEC = 0xa1b2c3d4;
/** pcap magic for nanosecond timestamps (read only). */
export const PCAP_MAGIC_NSEC = 0xa1b23c4d;
/** LINKTYPE_NULL: BSD loopback, 4-byte host-endian address family. */
export const LINKTYPE_NULL = 0;
/** LINKTYPE_ETHERNET: IEEE 802.3 Ethernet. */
export const LINKTYPE_ETHERNET = 1;
/** DLT_RAW as some BSDs number it (12 / 14); bare IPv4 or IPv6. */
export const LINKTYPE_RAW_BSD = 12;
/** LINKTYPE_RAW: bare IPv4 or IPv6 packet, no link header. */
export const LINKTYPE_RAW = 101;
/** LINKTYPE_LOOP: OpenBSD loopback, 4-byte big-endian address family. */
export const LINKTYPE_LOOP = 108;
/** LINKTYPE_LINUX_SLL: Linux "cooked" capture v1 (`tcpdump -i any`). */
export const LINKTYPE_LINUX_SLL = 113;
/** LINKTYPE_LINUX_SLL2: Linux "cooked" capture v2. */
export const LINKTYPE_LINUX_SLL2 = 276;

const PCAP_HEADER_LEN = 24; // magic u32, major u16, minor u16, thiszone i32, sigfigs u32, snaplen u32, linktype u32
const PCAP_RECORD_LEN = 16; // ts_sec u32, ts_usec u32, incl_len u32, orig_len u32
const PCAP_VERSION_MAJOR = 2;
const PCAP_VERSION_MINOR = 4;
const DEFAULT_SNAPLEN = 65535;

const ETH_HEADER_LEN = 14; // dst MAC 6, src MAC 6, EtherType 2
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100; // IEEE 802.1Q
const ETHERTYPE_QINQ = 0x88a8; // IEEE 802.1ad
const SLL_HEADER_LEN = 16; // packet type 2, ARPHRD 2, addr len 2, addr 8, protocol 2
const SLL2_HEADER_LEN = 20; // protocol 2, reserved 2, ifindex 4, ARPHRD 2, type 1, addr len 1, addr 8

const IPV4_HEADER_LEN = 20; // without options
const IPV6_HEADER_LEN = 40;
const UDP_HEADER_LEN = 8;
const IPPROTO_UDP = 17;
// IPv6 extension headers the reader steps over (RFC 8200 §4).
const IPV6_EXT_HOP_BY_HOP = 0;
const IPV6_EXT_ROUTING = 43;
const IPV6_EXT_FRAGMENT = 44;
const IPV6_EXT_DEST_OPTS = 60;

/** Source MAC used by {@link ethernetFrame} when none is given (locally administered). */
export const DEFAULT_SRC_MAC: Uint8Array = Uint8Array.of(0x02, 0, 0, 0, 0, 0x01);
/** Destination MAC used by {@link ethernetFrame} when none is given (locally administered). */
export const DEFAULT_DST_MAC: Uint8Array = Uint8Array.of(0x02, 0, 0, 0, 0, 0x02);

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** A pcap file or a frame inside it that cannot be read. */
export class PcapError extends Error {
  /** Byte offset (in the file, or in the frame) where the fault was found. */
  readonly offset: number;
  /** The field being read, e.g. `"pcap.magic"`. */
  readonly field: string;

  /**
   * @param field the field being read
   * @param offset its byte offset
   * @param reason what is wrong
   */
  constructor(field: string, offset: number, reason: string) {
    super(`${field} at offset ${offset}: ${reason}`);
    this.name = "PcapError";
    this.field = field;
    this.offset = offset;
  }
}

// ---------------------------------------------------------------------------
// pcap writer
// ---------------------------------------------------------------------------

/** One captured packet. */
export interface PcapPacket {
  /** Capture time in microseconds since the Unix epoch (an integer). */
  readonly ts: number;
  /** The captured bytes, starting with the link-layer header of the file's link type. */
  readonly data: Uint8Array;
  /** Length of the packet on the wire; defaults to `data.length`. At least `data.length`. */
  readonly origLen?: number;
}

/** Options of {@link writePcap}. */
export interface WritePcapOptions {
  /** Link type of every packet: {@link LINKTYPE_ETHERNET} (default) or {@link LINKTYPE_RAW}, or any other. */
  readonly linktype?: number;
  /** Largest packet kept; longer packets are cut and keep their `origLen`. Default 65535. */
  readonly snaplen?: number;
  /** Write little-endian (as tcpdump on x86 does; default) or big-endian. */
  readonly littleEndian?: boolean;
}

/**
 * Writes a classic pcap file (version 2.4, microsecond timestamps).
 *
 * Deterministic: the same packets give the same bytes.
 */
export function writePcap(
  packets: readonly PcapPacket[],
  options: WritePcapOptions = {},
): Uint8Array {
  const linktype = options.linktype ?? LINKTYPE_ETHERNET;
  const snaplen = options.snaplen ?? DEFAULT_SNAPLEN;
  const le = options.littleEndian ?? true;
  checkU32(linktype, "linktype");
  if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > 0x7fffffff) {
    throw new RangeError(`snaplen ${snaplen} out of range`);
  }
  let total = PCAP_HEADER_LEN;
  for (const p of packets) {
    total += PCAP_RECORD_LEN + Math.min(p.data.length, snaplen);
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, PCAP_MAGIC_USEC, le); // magic
  view.setUint16(4, PCAP_VERSION_MAJOR, le); // version_major
  view.setUint16(6, PCAP_VERSION_MINOR, le); // version_minor
  view.setInt32(8, 0, le); // thiszone: UTC
  view.setUint32(12, 0, le); // sigfigs: 0 by convention
  view.setUint32(16, snaplen, le); // snaplen
  view.setUint32(20, linktype, le); // network (link type)
  let pos = PCAP_HEADER_LEN;
  for (const p of packets) {
    if (!Number.isSafeInteger(p.ts) || p.ts < 0 || p.ts >= 2 ** 32 * 1e6) {
      throw new RangeError(`timestamp ${p.ts} is not a microsecond count that fits pcap`);
    }
    const orig = p.origLen ?? p.data.length;
    if (!Number.isInteger(orig) || orig < p.data.length || orig > 0xffffffff) {
      throw new RangeError(`origLen ${orig} is smaller than the data or too large`);
    }
    const incl = Math.min(p.data.length, snaplen);
    view.setUint32(pos, Math.floor(p.ts / 1e6), le); // ts_sec
    view.setUint32(pos + 4, p.ts % 1e6, le); // ts_usec
    view.setUint32(pos + 8, incl, le); // incl_len
    view.setUint32(pos + 12, orig, le); // orig_len
    out.set(p.data.subarray(0, incl), pos + PCAP_RECORD_LEN);
    pos += PCAP_RECORD_LEN + incl;
  }
  return out;
}

// ---------------------------------------------------------------------------
// pcap reader
// ---------------------------------------------------------------------------

/** One packet read back from a pcap file. */
export interface PcapRecord {
  /** Capture time in microseconds since the Unix epoch (nanosecond files are truncated to µs). */
  readonly ts: number;
  /** The captured bytes (a view into the file's buffer). */
  readonly data: Uint8Array;
  /** Length of the packet on the wire (larger than `data.length` when the capture cut it). */
  readonly origLen: number;
}

/** A pcap file read back. */
export interface PcapFile {
  /** Link type of every packet (e.g. {@link LINKTYPE_ETHERNET}). */
  readonly linktype: number;
  /** Snapshot length from the file header. */
  readonly snaplen: number;
  /** Whether the file was written little-endian. */
  readonly littleEndian: boolean;
  /** Whether the file's timestamps were in nanoseconds. */
  readonly nanosecond: boolean;
  /** The packets, in file order. */
  readonly packets: readonly PcapRecord[];
}

/**
 * Reads a classic pcap file (either byte order, µs or ns timestamps).
 *
 * Throws {@link PcapError} for a bad magic or a record running past the end
 * of the file. pcapng is not supported (it says so).
 */
export function readPcap(bytes: Uint8Array): PcapFile {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < PCAP_HEADER_LEN) {
    throw new PcapError(
      "pcap.header",
      0,
      `needs ${PCAP_HEADER_LEN} bytes, file has ${bytes.length}`,
    );
  }
  const magicBE = view.getUint32(0, false);
  const magicLE = view.getUint32(0, true);
  let le: boolean;
  let nanosecond: boolean;
  if (magicBE === PCAP_MAGIC_USEC || magicBE === PCAP_MAGIC_NSEC) {
    le = false;
    nanosecond = magicBE === PCAP_MAGIC_NSEC;
  } else if (magicLE === PCAP_MAGIC_USEC || magicLE === PCAP_MAGIC_NSEC) {
    le = true;
    nanosecond = magicLE === PCAP_MAGIC_NSEC;
  } else if (magicBE === 0x0a0d0d0a) {
    throw new PcapError(
      "pcap.magic",
      0,
      "this is a pcapng file; convert it with `editcap -F pcap`",
    );
  } else {
    throw new PcapError("pcap.magic", 0, `unknown magic 0x${hex32(magicBE)}`);
  }
  const major = view.getUint16(4, le);
  if (major !== PCAP_VERSION_MAJOR) {
    throw new PcapError("pcap.version", 4, `unsupported major version ${major}`);
  }
  const snaplen = view.getUint32(16, le);
  // The top bits of the link type field may carry FCS information; the link type is the low 16 bits.
  const linktype = view.getUint32(20, le) & 0xffff;
  const packets: PcapRecord[] = [];
  let pos = PCAP_HEADER_LEN;
  while (pos < bytes.length) {
    if (pos + PCAP_RECORD_LEN > bytes.length) {
      throw new PcapError(
        "pcap.record",
        pos,
        `truncated record header (${bytes.length - pos} bytes)`,
      );
    }
    const sec = view.getUint32(pos, le);
    const frac = view.getUint32(pos + 4, le);
    const incl = view.getUint32(pos + 8, le);
    const orig = view.getUint32(pos + 12, le);
    const start = pos + PCAP_RECORD_LEN;
    if (start + incl > bytes.length) {
      throw new PcapError(
        "pcap.record.incl_len",
        pos + 8,
        `${incl} bytes announced, ${bytes.length - start} left`,
      );
    }
    const ts = sec * 1e6 + (nanosecond ? Math.floor(frac / 1000) : frac);
    packets.push({ ts, data: bytes.subarray(start, start + incl), origLen: Math.max(orig, incl) });
    pos = start + incl;
  }
  return { linktype, snaplen, littleEndian: le, nanosecond, packets };
}

// ---------------------------------------------------------------------------
// UDP extraction
// ---------------------------------------------------------------------------

/** A UDP datagram found in a captured frame. */
export interface UdpDatagram {
  /** IP version of the carrying packet. */
  readonly ipVersion: 4 | 6;
  /** Source address (canonical text: "192.0.2.1", "2001:db8::1"). */
  readonly src: string;
  /** Destination address (canonical text). */
  readonly dst: string;
  /** UDP source port. */
  readonly srcPort: number;
  /** UDP destination port. */
  readonly dstPort: number;
  /** The UDP payload (a view into the frame), as much as was captured. */
  readonly payload: Uint8Array;
  /** True when the capture holds fewer payload bytes than the UDP length says. */
  readonly truncated: boolean;
}

/**
 * Finds the UDP datagram in one captured frame of the given link type.
 *
 * Returns `undefined` for anything that is not an unfragmented UDP datagram
 * (other protocols, ARP, non-first or non-last fragments). Steps over 802.1Q
 * / 802.1ad tags, IPv4 options and IPv6 extension headers. Throws
 * {@link PcapError} when a header is cut short or inconsistent.
 */
export function udpFromFrame(linktype: number, frame: Uint8Array): UdpDatagram | undefined {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let pos: number;
  let etherType: number | undefined; // undefined: look at the IP version nibble
  switch (linktype) {
    case LINKTYPE_ETHERNET: {
      need(frame, 0, ETH_HEADER_LEN, "ethernet.header");
      pos = 12;
      etherType = view.getUint16(pos, false);
      pos += 2;
      while (etherType === ETHERTYPE_VLAN || etherType === ETHERTYPE_QINQ) {
        need(frame, pos, 4, "ethernet.vlan");
        etherType = view.getUint16(pos + 2, false); // skip TCI, read inner EtherType
        pos += 4;
      }
      break;
    }
    case LINKTYPE_RAW:
    case LINKTYPE_RAW_BSD:
    case 14: // DLT_RAW on OpenBSD
      pos = 0;
      break;
    case LINKTYPE_NULL:
    case LINKTYPE_LOOP:
      need(frame, 0, 4, "loopback.family");
      pos = 4; // address family (host- or big-endian); the version nibble decides
      break;
    case LINKTYPE_LINUX_SLL:
      need(frame, 0, SLL_HEADER_LEN, "sll.header");
      etherType = view.getUint16(14, false);
      pos = SLL_HEADER_LEN;
      break;
    case LINKTYPE_LINUX_SLL2:
      need(frame, 0, SLL2_HEADER_LEN, "sll2.header");
      etherType = view.getUint16(0, false);
      pos = SLL2_HEADER_LEN;
      break;
    default:
      throw new PcapError("pcap.linktype", 0, `link type ${linktype} is not supported`);
  }
  if (etherType !== undefined && etherType !== ETHERTYPE_IPV4 && etherType !== ETHERTYPE_IPV6) {
    return undefined;
  }
  need(frame, pos, 1, "ip.version");
  const version = frame[pos]! >> 4;
  if (version === 4) return udpFromIPv4(frame, view, pos);
  if (version === 6) return udpFromIPv6(frame, view, pos);
  if (etherType !== undefined) {
    throw new PcapError("ip.version", pos, `version ${version} under an IP EtherType`);
  }
  return undefined;
}

function udpFromIPv4(frame: Uint8Array, view: DataView, ip: number): UdpDatagram | undefined {
  need(frame, ip, IPV4_HEADER_LEN, "ipv4.header");
  const ihl = (frame[ip]! & 0x0f) * 4;
  if (ihl < IPV4_HEADER_LEN) throw new PcapError("ipv4.ihl", ip, `header length ${ihl} < 20`);
  need(frame, ip, ihl, "ipv4.options");
  const totalLength = view.getUint16(ip + 2, false);
  if (totalLength < ihl) {
    throw new PcapError("ipv4.total_length", ip + 2, `${totalLength} < header length ${ihl}`);
  }
  const fragment = view.getUint16(ip + 6, false);
  if ((fragment & 0x3fff) !== 0) return undefined; // MF set or offset != 0: a fragment
  if (frame[ip + 9] !== IPPROTO_UDP) return undefined;
  const src = formatIPv4(frame.subarray(ip + 12, ip + 16));
  const dst = formatIPv4(frame.subarray(ip + 16, ip + 20));
  return udpAt(frame, view, ip + ihl, ip + totalLength, 4, src, dst);
}

function udpFromIPv6(frame: Uint8Array, view: DataView, ip: number): UdpDatagram | undefined {
  need(frame, ip, IPV6_HEADER_LEN, "ipv6.header");
  const payloadLength = view.getUint16(ip + 4, false);
  let next = frame[ip + 6]!;
  const src = formatIPv6(frame.subarray(ip + 8, ip + 24));
  const dst = formatIPv6(frame.subarray(ip + 24, ip + 40));
  const end = ip + IPV6_HEADER_LEN + payloadLength;
  let pos = ip + IPV6_HEADER_LEN;
  for (;;) {
    if (next === IPPROTO_UDP) return udpAt(frame, view, pos, end, 6, src, dst);
    if (next === IPV6_EXT_FRAGMENT) {
      need(frame, pos, 8, "ipv6.fragment");
      if ((view.getUint16(pos + 2, false) & 0xfff9) !== 0) return undefined; // offset or M set
      next = frame[pos]!;
      pos += 8;
    } else if (
      next === IPV6_EXT_HOP_BY_HOP || next === IPV6_EXT_ROUTING || next === IPV6_EXT_DEST_OPTS
    ) {
      need(frame, pos, 2, "ipv6.extension");
      next = frame[pos]!;
      pos += (frame[pos + 1]! + 1) * 8;
    } else {
      return undefined;
    }
  }
}

function udpAt(
  frame: Uint8Array,
  view: DataView,
  pos: number,
  ipEnd: number,
  ipVersion: 4 | 6,
  src: string,
  dst: string,
): UdpDatagram {
  need(frame, pos, UDP_HEADER_LEN, "udp.header");
  const srcPort = view.getUint16(pos, false);
  const dstPort = view.getUint16(pos + 2, false);
  const length = view.getUint16(pos + 4, false);
  if (length < UDP_HEADER_LEN) throw new PcapError("udp.length", pos + 4, `${length} < 8`);
  if (pos + length > ipEnd) {
    throw new PcapError("udp.length", pos + 4, `${length} runs past the IP packet`);
  }
  const want = pos + length;
  const have = Math.min(want, frame.length);
  return {
    ipVersion,
    src,
    dst,
    srcPort,
    dstPort,
    payload: frame.subarray(pos + UDP_HEADER_LEN, have),
    truncated: have < want,
  };
}

/** One UDP datagram of a pcap file, with its capture time. */
export interface PcapUdp extends UdpDatagram {
  /** Capture time in microseconds since the Unix epoch. */
  readonly ts: number;
  /** Index of the packet in the file (0-based). */
  readonly index: number;
}

/**
 * Reads a pcap file and returns every UDP datagram in it, skipping other
 * packets. Throws {@link PcapError} for a broken file or frame.
 */
export function readPcapUdp(bytes: Uint8Array): PcapUdp[] {
  const file = readPcap(bytes);
  const out: PcapUdp[] = [];
  file.packets.forEach((p, index) => {
    const d = udpFromFrame(file.linktype, p.data);
    if (d !== undefined) out.push({ ...d, ts: p.ts, index });
  });
  return out;
}

// ---------------------------------------------------------------------------
// Frame builders
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

function need(frame: Uint8Array, pos: number, n: number, field: string): void {
  if (pos + n > frame.length) {
    throw new PcapError(
      field,
      pos,
      `needs ${n} bytes, ${Math.max(0, frame.length - pos)} captured`,
    );
  }
}

function checkUint(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new RangeError(`${what} ${v} out of range 0..${max}`);
  }
}

function checkU32(v: number, what: string): void {
  checkUint(v, 0xffffffff, what);
}

function hex32(v: number): string {
  return v.toString(16).padStart(8, "0");
}
