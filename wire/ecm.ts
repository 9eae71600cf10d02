/**
 * Encapsulated Control Message (RFC 9301 §5.8, LISP type 8): a LISP header
 * word, then an inner IPv4 or IPv6 header, a UDP header and a LISP control
 * message (usually a Map-Request or, via an RTR, a Map-Register).
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Type=8 |S|D|E|M| |R|N|            Reserved                     |  0
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
 * Flag bits:
 * - S (byte 0, 0x08): security, LISP-SEC material follows (RFC 9301 §5.8,
 *   RFC 9303).
 * - D (byte 0, 0x04): DDT-originated, set by a DDT Map-Resolver sending to
 *   a DDT node (RFC 8111).
 * - E (byte 0, 0x02): to-ETR, set by a Map-Server forwarding the ECM to an
 *   ETR (RFC 9301 §5.8).
 * - M (byte 0, 0x01): to-MS, set by a Map-Resolver forwarding the ECM to a
 *   Map-Server (RFC 9301 §5.8).
 * - R (byte 1, 0x40): the inner message is for an RTR to process, and N
 *   (byte 1, 0x20): an RTR relays an ECM'd Map-Register to a Map-Server
 *   (NAT traversal). These are the positions OOR 1.3.0 uses, past RFC
 *   9301's E and M; earlier drafts (and oor before 0.2) put R and N where E
 *   and M now are. Receivers of a Map-Register or Map-Notify, where E and M
 *   mean nothing, take E as R and M as N too ({@link ecmForRtr},
 *   {@link ecmRtrRelayed}).
 * The other bits are reserved: emitted as zero, ignored on parse.
 *
 * The inner packet goes through udp.ts, and parse keeps every header field
 * emit needs to write the same bytes again: IPv4 TOS, identification, DF
 * and TTL, IPv6 traffic class, flow label and hop limit, and a zero UDP
 * checksum over IPv4 (which OOR sends). Emit computes the IPv4 header
 * checksum and the UDP checksum (unless `zeroUdpChecksum`); absent fields
 * default to an atomic datagram (DF, identification 0, TOS 0; IPv6 traffic
 * class and flow label 0). On parse the IP and UDP lengths must match the
 * bytes exactly and the protocol must be UDP (`WireError` with the udp.ts
 * field under "ecm.", offsets from the ECM start); a bad or absent checksum
 * is not an error but is reported in `checksumOk`.
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
/** Byte 0: E bit, forwarded by a Map-Server to an ETR (RFC 9301 §5.8). */
export const ECM_FLAG_E = 0x02;
/** Byte 0: M bit, forwarded by a Map-Resolver to a Map-Server (RFC 9301 §5.8). */
export const ECM_FLAG_M = 0x01;
/** Byte 1: R bit, to be processed by an RTR (NAT traversal; OOR 1.3.0's position). */
export const ECM_FLAG_R = 0x40;
/** Byte 1: N bit, Map-Register relayed by an RTR to a Map-Server (NAT traversal; OOR 1.3.0). */
export const ECM_FLAG_N = 0x20;
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
  /** IPv4 TOS or IPv6 traffic class; 0 when absent. */
  readonly tos?: number;
  /** IPv4 identification; 0 when absent. */
  readonly identification?: number;
  /** IPv4 DF bit; set when absent. */
  readonly dontFragment?: boolean;
  /** IPv6 flow label; 0 when absent. */
  readonly flowLabel?: number;
  /** Whether the UDP checksum is (or is to be sent as) zero, over IPv4 only. */
  readonly zeroUdpChecksum?: boolean;
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
  /** E bit: a Map-Server forwards this ECM to an ETR; false when absent. */
  readonly toEtr?: boolean;
  /** M bit: a Map-Resolver forwards this ECM to a Map-Server; false when absent. */
  readonly toMs?: boolean;
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
  const b1 = bytes[1]!;
  return {
    security: (b0 & ECM_FLAG_S) !== 0,
    ddtOriginated: (b0 & ECM_FLAG_D) !== 0,
    forRtr: (b1 & ECM_FLAG_R) !== 0,
    rtrRelayed: (b1 & ECM_FLAG_N) !== 0,
    toEtr: (b0 & ECM_FLAG_E) !== 0,
    toMs: (b0 & ECM_FLAG_M) !== 0,
    inner: ip.version === 4
      ? {
        src: ip.src,
        dst: ip.dst,
        srcPort: p.udp.srcPort,
        dstPort: p.udp.dstPort,
        ttl: ip.ttl,
        tos: ip.tos,
        identification: ip.identification,
        dontFragment: ip.dontFragment,
        zeroUdpChecksum: p.udp.checksum === 0,
      }
      : {
        src: ip.src,
        dst: ip.dst,
        srcPort: p.udp.srcPort,
        dstPort: p.udp.dstPort,
        ttl: ip.hopLimit,
        tos: ip.trafficClass,
        flowLabel: ip.flowLabel,
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
  emitIpUdp({ ...inner, payload: m.payload }, w.bytes, start + ECM_HEADER_LENGTH);
  w.u8(
    (ECM_TYPE << TYPE_SHIFT) | (m.security ? ECM_FLAG_S : 0) | (m.ddtOriginated ? ECM_FLAG_D : 0) |
      (m.toEtr === true ? ECM_FLAG_E : 0) | (m.toMs === true ? ECM_FLAG_M : 0),
  );
  w.u8((m.forRtr ? ECM_FLAG_R : 0) | (m.rtrRelayed ? ECM_FLAG_N : 0));
  w.u16(0);
  return w.bytes.subarray(start, start + len);
}

/**
 * Whether an ECM carrying a Map-Register is for an RTR to process: the R
 * bit, or the E bit where earlier NAT-traversal drafts put R (E means
 * nothing on a Map-Register).
 */
export function ecmForRtr(m: Ecm): boolean {
  return m.forRtr || m.toEtr === true;
}

/**
 * Whether an ECM carrying a Map-Register or Map-Notify was relayed by an
 * RTR: the N bit, or the M bit where earlier NAT-traversal drafts put N (M
 * means nothing on these).
 */
export function ecmRtrRelayed(m: Ecm): boolean {
  return m.rtrRelayed || m.toMs === true;
}
