/**
 * Classic libpcap files, written and read by hand, and the UDP datagrams
 * inside their frames: what `oor decode --pcap` reads, and how the tests
 * hand our wire output to Wireshark's dissector (`tshark`).
 *
 * The reader steps over the link layer (Ethernet with 802.1Q/802.1ad tags,
 * raw IP, Linux cooked v1/v2, BSD and OpenBSD loopback) and decodes IP and
 * UDP through wire/ (ip.ts, udp.ts). This file has no Deno APIs, no clock
 * and no randomness (the timestamp of every packet is passed in).
 *
 * Format: https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html
 * (24-byte file header, 16-byte record header per packet).
 *
 * @module
 */

import { Reader } from "../wire/cursor.ts";
import { WireError } from "../wire/errors.ts";
import {
  IP_PROTO_UDP,
  IPV6_EXT_DEST_OPTS,
  IPV6_EXT_FRAGMENT,
  IPV6_EXT_HOP_BY_HOP,
  IPV6_EXT_ROUTING,
  ipv6ExtensionLength,
  readIPv4Header,
  readIPv6Header,
} from "../wire/ip.ts";
import { readUdpHeader, UDP_HEADER_LENGTH } from "../wire/udp.ts";

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
/** EtherType of IPv4. */
export const ETHERTYPE_IPV4 = 0x0800;
/** EtherType of IPv6. */
export const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100; // IEEE 802.1Q
const ETHERTYPE_QINQ = 0x88a8; // IEEE 802.1ad
const SLL_HEADER_LEN = 16; // packet type 2, ARPHRD 2, addr len 2, addr 8, protocol 2
const SLL2_HEADER_LEN = 20; // protocol 2, reserved 2, ifindex 4, ARPHRD 2, type 1, addr len 1, addr 8

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
 * (other protocols, ARP, fragments). Steps over 802.1Q / 802.1ad tags, IPv4
 * options and IPv6 extension headers. Throws {@link PcapError} when a header
 * is cut short or inconsistent (with wire/'s field name for IP and UDP).
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
  if (version === 4 || version === 6) {
    try {
      return udpFromIp(frame, pos);
    } catch (e) {
      if (e instanceof WireError) throw new PcapError(e.field, e.offset, e.message);
      throw e;
    }
  }
  if (etherType !== undefined) {
    throw new PcapError("ip.version", pos, `version ${version} under an IP EtherType`);
  }
  return undefined;
}

/** The UDP datagram of the IPv4 or IPv6 packet at `frame[ip...]`, through wire/. */
function udpFromIp(frame: Uint8Array, ip: number): UdpDatagram | undefined {
  const r = new Reader(frame, ip);
  let end: number;
  let next: number;
  let src: string;
  let dst: string;
  let version: 4 | 6;
  if ((frame[ip]! >> 4) === 4) {
    const h = readIPv4Header(r);
    if (h.moreFragments || h.fragmentOffset !== 0) return undefined;
    if (h.protocol !== IP_PROTO_UDP) return undefined;
    ({ src, dst } = h);
    end = ip + h.totalLength;
    version = 4;
  } else {
    const h = readIPv6Header(r);
    ({ src, dst } = h);
    end = r.pos + h.payloadLength;
    version = 6;
    next = h.nextHeader;
    for (;;) {
      if (next === IP_PROTO_UDP) break;
      if (next === IPV6_EXT_FRAGMENT) {
        r.need(8, "ipv6.fragment");
        // A fragment unless offset and M are both zero (an atomic fragment).
        if (((frame[r.pos + 2]! << 8 | frame[r.pos + 3]!) & 0xfff9) !== 0) return undefined;
        next = frame[r.pos]!;
        r.pos += 8;
      } else if (
        next === IPV6_EXT_HOP_BY_HOP || next === IPV6_EXT_ROUTING || next === IPV6_EXT_DEST_OPTS
      ) {
        r.need(2, "ipv6.extension");
        next = frame[r.pos]!;
        r.pos += ipv6ExtensionLength(frame, r.pos);
      } else {
        return undefined;
      }
    }
  }
  const pos = r.pos;
  const udp = readUdpHeader(r);
  if (udp.length < UDP_HEADER_LENGTH) r.fail("udp.length", `${udp.length} < 8`, pos + 4);
  if (pos + udp.length > end) {
    r.fail("udp.length", `${udp.length} runs past the IP packet`, pos + 4);
  }
  const want = pos + udp.length;
  const have = Math.min(want, frame.length);
  return {
    ipVersion: version,
    src,
    dst,
    srcPort: udp.srcPort,
    dstPort: udp.dstPort,
    payload: frame.subarray(pos + UDP_HEADER_LENGTH, have),
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

function checkU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new RangeError(`${what} ${v} out of range 0..${0xffffffff}`);
  }
}

function hex32(v: number): string {
  return v.toString(16).padStart(8, "0");
}
