/**
 * The virtio-net header (`struct virtio_net_hdr`, Linux
 * include/uapi/linux/virtio_net.h; virtio 1.x §5.1.6): the 10 bytes a TUN
 * opened with `IFF_VNET_HDR` puts in front of every packet it hands over,
 * and expects in front of every packet written to it. It carries the
 * offloads: a packet that still needs its TCP/UDP checksum (`NEEDS_CSUM`:
 * the field at `csumStart + csumOffset` holds the pseudo-header sum, the
 * rest is to be summed from `csumStart` on), and a GSO super-packet of up to
 * 64 KiB that stands for segments of `gsoSize` payload bytes each.
 *
 * ```
 *  byte 0      flags        NEEDS_CSUM (1), DATA_VALID (2)
 *  byte 1      gso_type     NONE 0, TCPV4 1, UDP 3 (UFO), TCPV6 4, UDP_L4 5; | ECN 0x80
 *  bytes 2-3   hdr_len      bytes of headers (a hint)
 *  bytes 4-5   gso_size     payload bytes per segment
 *  bytes 6-7   csum_start   where the checksum sum starts
 *  bytes 8-9   csum_offset  where, from csum_start, the checksum goes
 * ```
 *
 * The 16-bit fields are in the device's byte order: a TUN uses the host's
 * (legacy virtio) unless told otherwise, so every function takes
 * `littleEndian` (default true, as on x86-64 and arm64).
 *
 * The record form (`parseVirtioNetHeader` / `emitVirtioNetHeader`) is for
 * tests and tools; the data path reads fields in place (`vnet*`) and writes
 * with {@link writeVirtioNetHeader}, allocating nothing.
 *
 * @module
 */

import { checkUint, Reader, target } from "./cursor.ts";

/** Length of `struct virtio_net_hdr` (without `num_buffers`). */
export const VIRTIO_NET_HDR_LENGTH = 10;

// Field table (byte offsets from the header start).
/** Flags. */
export const VNET_FLAGS_OFFSET = 0;
/** GSO type. */
export const VNET_GSO_TYPE_OFFSET = 1;
/** Header length. */
export const VNET_HDR_LEN_OFFSET = 2;
/** GSO segment size. */
export const VNET_GSO_SIZE_OFFSET = 4;
/** Checksum start. */
export const VNET_CSUM_START_OFFSET = 6;
/** Checksum offset from the start. */
export const VNET_CSUM_OFFSET_OFFSET = 8;

/** flags: the checksum is partial (see the module notes). */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
/** flags: the checksum was verified (receive direction). */
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;

/** gso_type: not a GSO packet. */
export const VIRTIO_NET_HDR_GSO_NONE = 0;
/** gso_type: TCP over IPv4 (TSO). */
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
/** gso_type: UDP fragmentation offload (UFO, deprecated). */
export const VIRTIO_NET_HDR_GSO_UDP = 3;
/** gso_type: TCP over IPv6. */
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
/** gso_type: UDP segmentation (USO), IPv4 or IPv6. */
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
/** gso_type bit: the TCP stream uses ECN (CWR only on the first segment). */
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/** A virtio-net header. */
export interface VirtioNetHeader {
  /** `VIRTIO_NET_HDR_F_*` or'ed. */
  readonly flags: number;
  /** `VIRTIO_NET_HDR_GSO_*`, possibly with the ECN bit. */
  readonly gsoType: number;
  /** Header bytes (IP + transport); a hint for the receiver. */
  readonly hdrLen: number;
  /** Payload bytes per segment (GSO). */
  readonly gsoSize: number;
  /** Where the checksum sum starts (NEEDS_CSUM). */
  readonly csumStart: number;
  /** Where the checksum goes, counted from `csumStart` (16 TCP, 6 UDP). */
  readonly csumOffset: number;
}

// ---------------------------------------------------------------------------
// Data path: in place, no allocation; the caller checks the length first.

function u16(b: Uint8Array, off: number, le: boolean): number {
  return le ? b[off]! | (b[off + 1]! << 8) : (b[off]! << 8) | b[off + 1]!;
}

function put16(b: Uint8Array, off: number, v: number, le: boolean): void {
  if (le) {
    b[off] = v;
    b[off + 1] = v >>> 8;
  } else {
    b[off] = v >>> 8;
    b[off + 1] = v;
  }
}

/** The flags of the header at `off`. */
export function vnetFlags(b: Uint8Array, off: number): number {
  return b[off + VNET_FLAGS_OFFSET]!;
}

/** The GSO type of the header at `off` (with the ECN bit). */
export function vnetGsoType(b: Uint8Array, off: number): number {
  return b[off + VNET_GSO_TYPE_OFFSET]!;
}

/** The GSO segment size of the header at `off`. */
export function vnetGsoSize(b: Uint8Array, off: number, littleEndian = true): number {
  return u16(b, off + VNET_GSO_SIZE_OFFSET, littleEndian);
}

/** The checksum start of the header at `off`. */
export function vnetCsumStart(b: Uint8Array, off: number, littleEndian = true): number {
  return u16(b, off + VNET_CSUM_START_OFFSET, littleEndian);
}

/** The checksum offset of the header at `off`. */
export function vnetCsumOffset(b: Uint8Array, off: number, littleEndian = true): number {
  return u16(b, off + VNET_CSUM_OFFSET_OFFSET, littleEndian);
}

/** Writes a whole header at `b[off, off+10)`; fields are taken modulo their width. */
export function writeVirtioNetHeader(
  b: Uint8Array,
  off: number,
  flags: number,
  gsoType: number,
  hdrLen: number,
  gsoSize: number,
  csumStart: number,
  csumOffset: number,
  littleEndian = true,
): void {
  b[off + VNET_FLAGS_OFFSET] = flags;
  b[off + VNET_GSO_TYPE_OFFSET] = gsoType;
  put16(b, off + VNET_HDR_LEN_OFFSET, hdrLen, littleEndian);
  put16(b, off + VNET_GSO_SIZE_OFFSET, gsoSize, littleEndian);
  put16(b, off + VNET_CSUM_START_OFFSET, csumStart, littleEndian);
  put16(b, off + VNET_CSUM_OFFSET_OFFSET, csumOffset, littleEndian);
}

// ---------------------------------------------------------------------------
// Record form.

/**
 * Parses the header at the start of `bytes` (the packet after it is not
 * read). Throws `WireError` when fewer than 10 bytes are given; any values
 * are kept (unknown flags and types included).
 */
export function parseVirtioNetHeader(bytes: Uint8Array, littleEndian = true): VirtioNetHeader {
  const r = new Reader(bytes);
  r.need(VIRTIO_NET_HDR_LENGTH, "virtio-net.header");
  const b = r.bytes;
  return {
    flags: vnetFlags(b, 0),
    gsoType: vnetGsoType(b, 0),
    hdrLen: u16(b, VNET_HDR_LEN_OFFSET, littleEndian),
    gsoSize: vnetGsoSize(b, 0, littleEndian),
    csumStart: vnetCsumStart(b, 0, littleEndian),
    csumOffset: vnetCsumOffset(b, 0, littleEndian),
  };
}

/** Length of `x`: always 10. */
export function virtioNetHeaderLength(_x: VirtioNetHeader): number {
  return VIRTIO_NET_HDR_LENGTH;
}

/** Emits `x` into a new buffer, or into `into` at `offset`. RangeError for a field out of range. */
export function emitVirtioNetHeader(
  x: VirtioNetHeader,
  into?: Uint8Array,
  offset = 0,
  littleEndian = true,
): Uint8Array {
  checkUint(x.flags, 0xff, "virtio-net flags");
  checkUint(x.gsoType, 0xff, "virtio-net gsoType");
  checkUint(x.hdrLen, 0xffff, "virtio-net hdrLen");
  checkUint(x.gsoSize, 0xffff, "virtio-net gsoSize");
  checkUint(x.csumStart, 0xffff, "virtio-net csumStart");
  checkUint(x.csumOffset, 0xffff, "virtio-net csumOffset");
  const w = target(VIRTIO_NET_HDR_LENGTH, into, offset, "emitVirtioNetHeader");
  writeVirtioNetHeader(
    w.bytes,
    w.pos,
    x.flags,
    x.gsoType,
    x.hdrLen,
    x.gsoSize,
    x.csumStart,
    x.csumOffset,
    littleEndian,
  );
  return w.bytes.subarray(w.pos, w.pos + VIRTIO_NET_HDR_LENGTH);
}
