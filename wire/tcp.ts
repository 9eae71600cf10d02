/**
 * The TCP header (RFC 9293 §3.1), as far as a tunnel router touches it: the
 * data plane splits and merges TCP segments of its inner packets
 * (dataplane/segment.ts, dataplane/coalesce.ts) and reads and writes a few
 * fields in place through the accessors and offsets here; the record form
 * (`parseTcpHeader` / `emitTcpHeader`) is for tests and tools.
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |          Source Port          |       Destination Port        |
 * |                        Sequence Number                        |
 * |                    Acknowledgment Number                      |
 * |  Data |       |C|E|U|A|P|R|S|F|                               |
 * | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 * |           Checksum            |         Urgent Pointer        |
 * |                    Options (data offset > 5)                  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * The four reserved bits are kept in `reserved` so they round-trip.
 *
 * @module
 */

import { checkUint, Reader, target } from "./cursor.ts";
import { WireError } from "./errors.ts";

/** Length of a TCP header without options. */
export const TCP_HEADER_MIN_LENGTH = 20;
/** Largest TCP header (data offset 15). */
export const TCP_HEADER_MAX_LENGTH = 60;

// Field table, RFC 9293 §3.1 (byte offsets from the header start).
/** Source port; the destination port follows at 2. */
export const TCP_SRC_PORT_OFFSET = 0;
/** Destination port. */
export const TCP_DST_PORT_OFFSET = 2;
/** Sequence number. */
export const TCP_SEQ_OFFSET = 4;
/** Acknowledgment number. */
export const TCP_ACK_OFFSET = 8;
/** Data offset (high 4 bits, in 32-bit words) and the reserved bits. */
export const TCP_DATA_OFFSET_OFFSET = 12;
/** The control bits (CWR ... FIN). */
export const TCP_FLAGS_OFFSET = 13;
/** Window. */
export const TCP_WINDOW_OFFSET = 14;
/** Checksum (RFC 9293 §3.1: over the pseudo-header, the header and the data). */
export const TCP_CHECKSUM_OFFSET = 16;
/** Urgent pointer. */
export const TCP_URGENT_OFFSET = 18;

/** FIN: no more data from the sender. */
export const TCP_FLAG_FIN = 0x01;
/** SYN: synchronize sequence numbers. */
export const TCP_FLAG_SYN = 0x02;
/** RST: reset the connection. */
export const TCP_FLAG_RST = 0x04;
/** PSH: push function. */
export const TCP_FLAG_PSH = 0x08;
/** ACK: the acknowledgment field is significant. */
export const TCP_FLAG_ACK = 0x10;
/** URG: the urgent pointer is significant. */
export const TCP_FLAG_URG = 0x20;
/** ECE: ECN echo (RFC 3168). */
export const TCP_FLAG_ECE = 0x40;
/** CWR: congestion window reduced (RFC 3168). */
export const TCP_FLAG_CWR = 0x80;

/** A TCP header, RFC 9293 §3.1. */
export interface TcpHeader {
  /** Source port. */
  readonly srcPort: number;
  /** Destination port. */
  readonly dstPort: number;
  /** Sequence number (32 bits, unsigned). */
  readonly seq: number;
  /** Acknowledgment number (32 bits, unsigned). */
  readonly ack: number;
  /** The four reserved bits, as received. */
  readonly reserved: number;
  /** The control bits, `TCP_FLAG_*` or'ed. */
  readonly flags: number;
  /** Window. */
  readonly window: number;
  /** Checksum as received (written as given on emit: the caller computes it). */
  readonly checksum: number;
  /** Urgent pointer. */
  readonly urgent: number;
  /** Options and padding as raw bytes: a multiple of 4, at most 40 bytes. */
  readonly options: Uint8Array;
}

// ---------------------------------------------------------------------------
// Data path: in place, no allocation; the caller checks the length first.

/** The header length in bytes (data offset × 4) of the TCP header at `off`. */
export function tcpHeaderBytes(b: Uint8Array, off: number): number {
  return (b[off + TCP_DATA_OFFSET_OFFSET]! >>> 4) << 2;
}

/** The control bits of the TCP header at `off`. */
export function tcpFlags(b: Uint8Array, off: number): number {
  return b[off + TCP_FLAGS_OFFSET]!;
}

/** The 32-bit big-endian value at `b[off...]` (sequence and acknowledgment numbers). */
export function readU32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

/** Writes `v` as a 32-bit big-endian value at `b[off...]` (modulo 2^32). */
export function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 24;
  b[off + 1] = v >>> 16;
  b[off + 2] = v >>> 8;
  b[off + 3] = v;
}

/** The sequence number of the TCP header at `off`. */
export function tcpSeq(b: Uint8Array, off: number): number {
  return readU32(b, off + TCP_SEQ_OFFSET);
}

/** The acknowledgment number of the TCP header at `off`. */
export function tcpAck(b: Uint8Array, off: number): number {
  return readU32(b, off + TCP_ACK_OFFSET);
}

// ---------------------------------------------------------------------------
// Record form.

/**
 * Parses the TCP header at the start of `bytes` (the data after it is not
 * read). Throws `WireError` when it is truncated or its data offset is
 * below 5.
 */
export function parseTcpHeader(bytes: Uint8Array): TcpHeader {
  const r = new Reader(bytes);
  r.need(TCP_HEADER_MIN_LENGTH, "tcp.header");
  const b = r.bytes;
  const hl = tcpHeaderBytes(b, 0);
  if (hl < TCP_HEADER_MIN_LENGTH) {
    throw new WireError("tcp.data-offset", TCP_DATA_OFFSET_OFFSET, `${hl >>> 2} is below 5`);
  }
  r.need(hl, "tcp.options");
  return {
    srcPort: (b[0]! << 8) | b[1]!,
    dstPort: (b[2]! << 8) | b[3]!,
    seq: tcpSeq(b, 0),
    ack: tcpAck(b, 0),
    reserved: b[TCP_DATA_OFFSET_OFFSET]! & 0x0f,
    flags: b[TCP_FLAGS_OFFSET]!,
    window: (b[TCP_WINDOW_OFFSET]! << 8) | b[TCP_WINDOW_OFFSET + 1]!,
    checksum: (b[TCP_CHECKSUM_OFFSET]! << 8) | b[TCP_CHECKSUM_OFFSET + 1]!,
    urgent: (b[TCP_URGENT_OFFSET]! << 8) | b[TCP_URGENT_OFFSET + 1]!,
    options: b.slice(TCP_HEADER_MIN_LENGTH, hl),
  };
}

/** Length of `x` on the wire: 20 plus its options. */
export function tcpHeaderLength(x: TcpHeader): number {
  return TCP_HEADER_MIN_LENGTH + x.options.length;
}

/**
 * Emits `x` into a new buffer, or into `into` at `offset`. RangeError when
 * a field is out of range or the options are not a multiple of 4 up to 40
 * bytes.
 */
export function emitTcpHeader(x: TcpHeader, into?: Uint8Array, offset = 0): Uint8Array {
  checkUint(x.srcPort, 0xffff, "tcp srcPort");
  checkUint(x.dstPort, 0xffff, "tcp dstPort");
  checkUint(x.seq, 0xffffffff, "tcp seq");
  checkUint(x.ack, 0xffffffff, "tcp ack");
  checkUint(x.reserved, 0x0f, "tcp reserved");
  checkUint(x.flags, 0xff, "tcp flags");
  checkUint(x.window, 0xffff, "tcp window");
  checkUint(x.checksum, 0xffff, "tcp checksum");
  checkUint(x.urgent, 0xffff, "tcp urgent");
  const n = x.options.length;
  if (n % 4 !== 0 || n > TCP_HEADER_MAX_LENGTH - TCP_HEADER_MIN_LENGTH) {
    throw new RangeError(`tcp options: ${n} bytes is not a multiple of 4 up to 40`);
  }
  const len = tcpHeaderLength(x);
  const w = target(len, into, offset, "emitTcpHeader");
  const b = w.bytes;
  const o = w.pos;
  b[o] = x.srcPort >>> 8;
  b[o + 1] = x.srcPort;
  b[o + 2] = x.dstPort >>> 8;
  b[o + 3] = x.dstPort;
  writeU32(b, o + TCP_SEQ_OFFSET, x.seq);
  writeU32(b, o + TCP_ACK_OFFSET, x.ack);
  b[o + TCP_DATA_OFFSET_OFFSET] = ((len >>> 2) << 4) | x.reserved;
  b[o + TCP_FLAGS_OFFSET] = x.flags;
  b[o + TCP_WINDOW_OFFSET] = x.window >>> 8;
  b[o + TCP_WINDOW_OFFSET + 1] = x.window;
  b[o + TCP_CHECKSUM_OFFSET] = x.checksum >>> 8;
  b[o + TCP_CHECKSUM_OFFSET + 1] = x.checksum;
  b[o + TCP_URGENT_OFFSET] = x.urgent >>> 8;
  b[o + TCP_URGENT_OFFSET + 1] = x.urgent;
  b.set(x.options, o + TCP_HEADER_MIN_LENGTH);
  return b.subarray(o, o + len);
}
