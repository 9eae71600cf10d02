/**
 * Encapsulated Control Message (RFC 9301 §5.8, LISP type 8): a LISP header
 * word, then an inner IPv4 or IPv6 header, a UDP header and a LISP control
 * message (usually a Map-Request or, via an RTR, a Map-Register).
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Type=8 |S|D|R|N|                 Reserved                      |  0
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                       IPv4 or IPv6 Header                     |  4
 * |                  (uses RLOC or EID addresses)                 |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |       Source Port = xxxx      |       Dest Port = yyyy        |
 * |           UDP Length          |        UDP Checksum           |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                      LISP Control Message                     |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * Flag bits of byte 0 (after the 4-bit type):
 * - S (0x08): security, LISP-SEC material follows (RFC 9301 §5.8, RFC 9303).
 * - D (0x04): DDT-originated, set by a DDT Map-Resolver sending to a DDT
 *   node (RFC 8111; Wireshark `ECM_FLAG_D` 0x04000000).
 * - R (0x02): the inner message is for an RTR to process
 *   (draft-ermagan-lisp-nat-traversal; OOR `ecm_hdr_t.r_bit`).
 * - N (0x01): an RTR relays an ECM'd Map-Register to a Map-Server
 *   (draft-ermagan-lisp-nat-traversal; OOR `ecm_hdr_t.n_bit`).
 * The other 24 bits are reserved: emitted as zero, ignored on parse.
 *
 * The inner packet goes through udp.ts: on emit the IPv4 header checksum
 * and the UDP checksum are computed (IPv4 gets DF, identification 0, TOS 0;
 * IPv6 traffic class and flow label 0). On parse the IP and UDP lengths
 * must match the bytes exactly and the protocol must be UDP (`WireError`
 * with the udp.ts field under "ecm.", offsets from the ECM start); a bad
 * or absent checksum is not an error (OOR sends a zero UDP checksum over
 * IPv4) but is reported in `checksumOk`.
 *
 * @module
 */

import { copyBytes, target } from "./cursor.ts";
import { WireError } from "./errors.ts";
import { IPV4_HEADER_MIN_LENGTH, IPV6_HEADER_LENGTH } from "./ip.ts";
import { isIPv4 } from "./ip_text.ts";
import { emitIpUdp, type IpUdpPacket, parseIpUdp, UDP_HEADER_LENGTH } from "./udp.ts";

// ---------------------------------------------------------------------------
// Field table (RFC 9301 §5.8; D: RFC 8111; R, N: NAT traversal draft)
// ---------------------------------------------------------------------------

/** LISP type of an Encapsulated Control Message (IANA "LISP Packet Types"). */
export const ECM_TYPE = 8;
/** Byte 0: Type in the top 4 bits. */
const TYPE_SHIFT = 4;
/** Byte 0: S bit, security (RFC 9301 §5.8). */
export const ECM_FLAG_S = 0x08;
/** Byte 0: D bit, DDT-originated (RFC 8111). */
export const ECM_FLAG_D = 0x04;
/** Byte 0: R bit, to be processed by an RTR (NAT traversal draft). */
export const ECM_FLAG_R = 0x02;
/** Byte 0: N bit, Map-Register relayed by an RTR to a Map-Server (NAT traversal draft). */
export const ECM_FLAG_N = 0x01;
/** Length of the LISP ECM header word; the inner IP header starts here. */
export const ECM_HEADER_LENGTH = 4;

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** The inner IP and UDP header fields of an ECM. */
export interface EcmInner {
  /** Inner IP source (IPv4 or IPv6 text): the ITR's RLOC or the source EID. */
  readonly src: string;
  /** Inner IP destination, same family as `src`: usually the EID looked up. */
  readonly dst: string;
  /** Inner UDP source port (the port the reply goes to). */
  readonly srcPort: number;
  /** Inner UDP destination port (4342 for a Map-Request). */
  readonly dstPort: number;
  /** Inner IPv4 TTL or IPv6 hop limit. */
  readonly ttl: number;
}

/** An Encapsulated Control Message. */
export interface Ecm {
  /** S bit: LISP-SEC security material is present. */
  readonly security: boolean;
  /** D bit: sent by a DDT Map-Resolver to a DDT node. */
  readonly ddtOriginated: boolean;
  /** R bit: the inner message is for an RTR to process. */
  readonly forRtr: boolean;
  /** N bit: an RTR relays this ECM'd Map-Register to a Map-Server. */
  readonly rtrRelayed: boolean;
  /** The inner IP and UDP headers. */
  readonly inner: EcmInner;
  /** The inner LISP control message (the UDP data), copied out of the input. */
  readonly payload: Uint8Array;
  /**
   * Set by parse: whether the inner IPv4 header checksum and the UDP
   * checksum are right (a zero UDP checksum over IPv4 counts as right).
   * Ignored by emit, which computes both.
   */
  readonly checksumOk?: boolean;
}

// ---------------------------------------------------------------------------
// Parse
// ---------------------------------------------------------------------------

/**
 * Parses an ECM; `bytes` must hold exactly the message (the inner IP
 * length fields must end where `bytes` ends).
 */
export function parseEcm(bytes: Uint8Array): Ecm {
  if (bytes.length < ECM_HEADER_LENGTH) {
    throw new WireError("ecm.header", 0, `needs 4 bytes, ${bytes.length} left`);
  }
  const b0 = bytes[0]!;
  const type = b0 >>> TYPE_SHIFT;
  if (type !== ECM_TYPE) {
    throw new WireError("ecm.type", 0, `type ${type} is not an ECM (8)`);
  }
  let p: IpUdpPacket;
  try {
    p = parseIpUdp(bytes.subarray(ECM_HEADER_LENGTH));
  } catch (e) {
    if (!(e instanceof WireError)) throw e;
    const prefix = `${e.field} at offset ${e.offset}: `;
    const reason = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
    throw new WireError(`ecm.${e.field}`, e.offset + ECM_HEADER_LENGTH, reason);
  }
  const ip = p.ip;
  return {
    security: (b0 & ECM_FLAG_S) !== 0,
    ddtOriginated: (b0 & ECM_FLAG_D) !== 0,
    forRtr: (b0 & ECM_FLAG_R) !== 0,
    rtrRelayed: (b0 & ECM_FLAG_N) !== 0,
    inner: {
      src: ip.src,
      dst: ip.dst,
      srcPort: p.udp.srcPort,
      dstPort: p.udp.dstPort,
      ttl: ip.version === 4 ? ip.ttl : ip.hopLimit,
    },
    payload: copyBytes(p.payload, 0, p.payload.length),
    checksumOk: p.checksumOk,
  };
}

// ---------------------------------------------------------------------------
// Length and emit
// ---------------------------------------------------------------------------

/** Encoded length of an ECM: 4 + inner IP header (20 or 40) + 8 + payload. */
export function ecmLength(m: Ecm): number {
  return ECM_HEADER_LENGTH + (isIPv4(m.inner.src) ? IPV4_HEADER_MIN_LENGTH : IPV6_HEADER_LENGTH) +
    UDP_HEADER_LENGTH + m.payload.length;
}

/**
 * Emits an ECM into a new buffer or into `into` at `offset`, with the inner
 * checksums computed. TypeError for bad or mixed-family inner addresses,
 * RangeError for out-of-range ports/TTL or an oversized inner packet.
 */
export function emitEcm(m: Ecm, into?: Uint8Array, offset = 0): Uint8Array {
  const len = ecmLength(m);
  const w = target(len, into, offset, "emitEcm");
  const start = w.pos;
  const inner = m.inner;
  emitIpUdp(
    {
      src: inner.src,
      dst: inner.dst,
      srcPort: inner.srcPort,
      dstPort: inner.dstPort,
      ttl: inner.ttl,
      payload: m.payload,
    },
    w.bytes,
    start + ECM_HEADER_LENGTH,
  );
  w.u8(
    (ECM_TYPE << TYPE_SHIFT) | (m.security ? ECM_FLAG_S : 0) | (m.ddtOriginated ? ECM_FLAG_D : 0) |
      (m.forRtr ? ECM_FLAG_R : 0) | (m.rtrRelayed ? ECM_FLAG_N : 0),
  );
  w.u8(0);
  w.u16(0);
  return w.bytes.subarray(start, start + len);
}
