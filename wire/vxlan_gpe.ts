/**
 * The VXLAN-GPE header (draft-ietf-nvo3-vxlan-gpe §3.3), 8 bytes after the
 * outer UDP header (destination port 4790, `VXLAN_GPE_PORT` in
 * data_header.ts):
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |R|R|Ver|I|P|B|O|       Reserved                |Next Protocol  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                VXLAN Network Identifier (VNI) |   Reserved    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * Reserved bits (the two R flags, the 16-bit and the last 8-bit reserved
 * fields) are ignored on parse and emitted as zero. The version is kept as
 * a number: the draft says a receiver drops versions it does not support
 * (only 0 is defined), which is the data path's decision, not the codec's.
 * Unknown Next Protocol values are kept as numbers.
 *
 * @module
 */

import { checkUint, Reader, target } from "./cursor.ts";

/** Length of the VXLAN-GPE header in bytes. */
export const VXLAN_GPE_HEADER_LENGTH = 8;

// Field table, draft-ietf-nvo3-vxlan-gpe §3.3 (byte offsets from the header start).
/** Byte 0: R R Ver(2) I P B O. */
const FLAGS = 0;
/** Byte 3: Next Protocol. */
const NEXT_PROTOCOL = 3;
/** Bytes 4..6: VNI. */
const VNI = 4;
/** Bits of byte 0 holding the version. */
const VERSION_SHIFT = 4;
const VERSION_MASK = 0x30;

/** I: the VNI is valid. */
export const VXLAN_GPE_FLAG_I = 0x08;
/** P: the Next Protocol field is present. */
export const VXLAN_GPE_FLAG_P = 0x04;
/** B: the packet is BUM (broadcast, unknown unicast, multicast) traffic. */
export const VXLAN_GPE_FLAG_B = 0x02;
/** O: the packet is an OAM packet. */
export const VXLAN_GPE_FLAG_O = 0x01;

/** Next Protocol 1: IPv4. */
export const VXLAN_GPE_NP_IPV4 = 1;
/** Next Protocol 2: IPv6. */
export const VXLAN_GPE_NP_IPV6 = 2;
/** Next Protocol 3: Ethernet. */
export const VXLAN_GPE_NP_ETHERNET = 3;
/** Next Protocol 4: Network Service Header (RFC 8300). */
export const VXLAN_GPE_NP_NSH = 4;

/** A VXLAN-GPE header. */
export interface VxlanGpeHeader {
  /** Protocol version, 0..3 (only 0 is defined). */
  readonly version: number;
  /** I: the VNI is valid. */
  readonly i: boolean;
  /** P: the Next Protocol field is present. */
  readonly p: boolean;
  /** B: BUM traffic. */
  readonly b: boolean;
  /** O: OAM packet. */
  readonly o: boolean;
  /** Next Protocol, 0..255 (`VXLAN_GPE_NP_*`; unknown values kept). */
  readonly nextProtocol: number;
  /** 24-bit VXLAN Network Identifier. */
  readonly vni: number;
}

/** A `VxlanGpeHeader` whose fields can be overwritten, for `readVxlanGpeHeaderInto`. */
export type MutableVxlanGpeHeader = {
  -readonly [K in keyof VxlanGpeHeader]: VxlanGpeHeader[K];
};

/** A zeroed `MutableVxlanGpeHeader` to reuse with `readVxlanGpeHeaderInto`. */
export function newVxlanGpeHeader(): MutableVxlanGpeHeader {
  return {
    version: 0,
    i: false,
    p: false,
    b: false,
    o: false,
    nextProtocol: 0,
    vni: 0,
  };
}

/** Decodes 8 in-bounds bytes at `off` into `out`. */
function decode(b: Uint8Array, off: number, out: MutableVxlanGpeHeader): void {
  const f = b[off + FLAGS]!;
  out.version = (f & VERSION_MASK) >>> VERSION_SHIFT;
  out.i = (f & VXLAN_GPE_FLAG_I) !== 0;
  out.p = (f & VXLAN_GPE_FLAG_P) !== 0;
  out.b = (f & VXLAN_GPE_FLAG_B) !== 0;
  out.o = (f & VXLAN_GPE_FLAG_O) !== 0;
  out.nextProtocol = b[off + NEXT_PROTOCOL]!;
  out.vni = (b[off + VNI]! << 16) | (b[off + VNI + 1]! << 8) | b[off + VNI + 2]!;
}

/**
 * Parses the VXLAN-GPE header at the start of `bytes` (the inner packet
 * that follows is not read). Throws `WireError` if fewer than 8 bytes.
 */
export function parseVxlanGpeHeader(bytes: Uint8Array): VxlanGpeHeader {
  return readVxlanGpeHeader(new Reader(bytes));
}

/** Reads a VXLAN-GPE header at `r.pos` and advances past it. */
export function readVxlanGpeHeader(r: Reader): VxlanGpeHeader {
  r.need(VXLAN_GPE_HEADER_LENGTH, "vxlan-gpe.header");
  const out = newVxlanGpeHeader();
  decode(r.bytes, r.pos, out);
  r.pos += VXLAN_GPE_HEADER_LENGTH;
  return out;
}

/** Length of `x` on the wire: always 8. */
export function vxlanGpeHeaderLength(_x: VxlanGpeHeader): number {
  return VXLAN_GPE_HEADER_LENGTH;
}

/** Emits `x` (8 bytes) into a new buffer, or into `into` at `offset`. */
export function emitVxlanGpeHeader(
  x: VxlanGpeHeader,
  into?: Uint8Array,
  offset = 0,
): Uint8Array {
  checkUint(x.version, 3, "vxlan-gpe version");
  checkUint(x.nextProtocol, 0xff, "vxlan-gpe nextProtocol");
  checkUint(x.vni, 0xffffff, "vxlan-gpe vni");
  const w = target(VXLAN_GPE_HEADER_LENGTH, into, offset, "emitVxlanGpeHeader");
  const flags = (x.version << VERSION_SHIFT) | (x.i ? VXLAN_GPE_FLAG_I : 0) |
    (x.p ? VXLAN_GPE_FLAG_P : 0) | (x.b ? VXLAN_GPE_FLAG_B : 0) |
    (x.o ? VXLAN_GPE_FLAG_O : 0);
  writeVxlanGpeHeader(w.bytes, w.pos, flags, x.nextProtocol, x.vni);
  return w.bytes.subarray(w.pos, w.pos + VXLAN_GPE_HEADER_LENGTH);
}

// ---------------------------------------------------------------------------
// Data path: no allocation, no exceptions. Callers check the length first.

/**
 * Decodes the header at `bytes[offset, offset+8)` into `out`, reusing it.
 * Returns false (leaving `out` untouched) if fewer than 8 bytes remain.
 */
export function readVxlanGpeHeaderInto(
  bytes: Uint8Array,
  offset: number,
  out: MutableVxlanGpeHeader,
): boolean {
  if (offset < 0 || offset + VXLAN_GPE_HEADER_LENGTH > bytes.length) {
    return false;
  }
  decode(bytes, offset, out);
  return true;
}

/** The flag byte (R R Ver Ver I P B O) of the header at `off`; test with `VXLAN_GPE_FLAG_*`. */
export function vxlanGpeFlags(b: Uint8Array, off: number): number {
  return b[off + FLAGS]!;
}

/** The version (0..3) of the header at `off`. */
export function vxlanGpeVersion(b: Uint8Array, off: number): number {
  return (b[off + FLAGS]! & VERSION_MASK) >>> VERSION_SHIFT;
}

/** The Next Protocol byte of the header at `off`. */
export function vxlanGpeNextProtocol(b: Uint8Array, off: number): number {
  return b[off + NEXT_PROTOCOL]!;
}

/** The 24-bit VNI of the header at `off` (whether or not I is set). */
export function vxlanGpeVni(b: Uint8Array, off: number): number {
  return (b[off + VNI]! << 16) | (b[off + VNI + 1]! << 8) | b[off + VNI + 2]!;
}

/**
 * Writes a VXLAN-GPE header straight into a packet buffer at `off` (caller
 * guarantees 8 bytes): `flags` is the flag byte (`VXLAN_GPE_FLAG_*` or-ed,
 * version in bits 4..5), then `nextProtocol` and the 24-bit `vni`; reserved
 * fields are zeroed. Values are masked, not checked.
 */
export function writeVxlanGpeHeader(
  b: Uint8Array,
  off: number,
  flags: number,
  nextProtocol: number,
  vni: number,
): void {
  b[off] = flags & 0x3f;
  b[off + 1] = 0;
  b[off + 2] = 0;
  b[off + 3] = nextProtocol;
  b[off + 4] = vni >>> 16;
  b[off + 5] = vni >>> 8;
  b[off + 6] = vni;
  b[off + 7] = 0;
}
