/**
 * The ITR side of the TUN offloads: what a TUN with checksum, TSO and USO
 * offloads hands over (dataplane/worker.ts reads it with `Tun.readSlot`)
 * made into packets that are complete and valid on the wire, as Linux's
 * own GSO would have made them, because whatever receives them (our ETR,
 * the C OOR, any LISP router) must take each one alone:
 *
 * - a packet with a partial checksum (`NEEDS_CSUM`: the field holds the
 *   pseudo-header sum) gets it finished in place ({@link Segmenter.complete}),
 *   as `skb_checksum_help()` does (a sum of 0 is written 0xffff);
 * - a GSO super-packet (TCP over IPv4 or IPv6, or UDP: `gso_type` TCPV4,
 *   TCPV6, UDP_L4) is cut into segments of `gso_size` payload bytes, one
 *   batch slot each ({@link Segmenter.split}): the IP and TCP/UDP headers
 *   copied in front of each, then fixed: IPv4 total length, identification
 *   (+1 a segment) and header checksum; IPv6 payload length; TCP sequence
 *   number (+ the payload before), FIN and PSH only on the last segment,
 *   CWR only on the first (`tcp_gso_segment()`); UDP length; and every
 *   TCP/UDP checksum computed whole (RFC 9293 §3.1, RFC 768), over the
 *   pseudo-header, the header and the payload.
 *
 * The super-packet lies contiguous in the batch's spill area. Per segment
 * the headers are copied with `copyWithin` and the payload is copied and
 * summed in one pass (`ChecksumBuffer.copySum`: WebAssembly SIMD over a
 * WebAssembly batch); the sums of what all segments share (IPv4 header
 * but its lengths, identification and checksum; addresses; TCP header but
 * sequence number, flags and checksum) are taken once per super-packet and
 * each segment's checksums finished by arithmetic. No allocation. (That
 * cut the split of a 64 KiB super-packet in `deno bench
 * dataplane/offload_bench.ts` by about 40%.) Nothing throws for any
 * packet bytes: what cannot be split (an unknown GSO type, headers that do
 * not say what the virtio-net header does, IPv6 extension headers, a
 * segment bigger than a slot) is refused with -1 for the caller to count
 * and drop.
 *
 * @module
 */

import type { PacketBatch } from "../ffi/batch.ts";
import { ChecksumBuffer, foldSum, wordSumExcept } from "../wire/checksum.ts";
import {
  IP_PROTO_TCP,
  IP_PROTO_UDP,
  IPV4_HEADER_MIN_LENGTH,
  IPV4_PROTOCOL_OFFSET,
  IPV6_HEADER_LENGTH,
  IPV6_NEXT_HEADER_OFFSET,
} from "../wire/ip.ts";
import {
  readU32,
  TCP_CHECKSUM_OFFSET,
  TCP_FLAG_CWR,
  TCP_FLAG_FIN,
  TCP_FLAG_PSH,
  TCP_FLAGS_OFFSET,
  TCP_HEADER_MIN_LENGTH,
  TCP_SEQ_OFFSET,
  tcpHeaderBytes,
  writeU32,
} from "../wire/tcp.ts";
import {
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP_L4,
} from "../wire/virtio_net.ts";
import { UDP_HEADER_LENGTH } from "../wire/udp.ts";

/** The GSO type without the ECN bit. */
const GSO_TYPE_MASK = 0x7f;
/** RFC 768: the UDP length and checksum fields. */
const UDP_LENGTH_OFFSET = 4;
const UDP_CHECKSUM_OFFSET = 6;
/** RFC 791: total length, identification, flags/fragment offset, header checksum. */
const V4_TOTAL_LENGTH = 2;
const V4_ID = 4;
const V4_FLAGS = 6;
const V4_CHECKSUM = 10;
/** RFC 8200: payload length. */
const V6_PAYLOAD_LENGTH = 4;
/** Address ranges summed into the pseudo-headers. */
const V4_ADDRS = 12;
const V6_ADDRS = 8;

/**
 * Splits super-packets and finishes partial checksums into the slots of
 * one {@link PacketBatch} (see the module notes). One per batch; nothing
 * global, so several Workers each have their own.
 */
export class Segmenter {
  /**
   * Per slot, after {@link split}: 1 when the slot holds the segment that
   * follows the one in the slot before (for `Engine.fromTun`), else 0.
   * Slots the caller fills otherwise it sets to 0 itself.
   */
  readonly follows: Uint8Array;
  readonly #b: PacketBatch;
  readonly #cb: ChecksumBuffer;
  /** The last {@link plan}: header bytes (IP + TCP/UDP), payload bytes, segments. */
  #hdrs = 0;
  #payload = 0;
  #segments = 0;

  /** A segmenter writing into `batch` (whose spill area holds the super-packets). */
  constructor(batch: PacketBatch) {
    this.#b = batch;
    this.#cb = new ChecksumBuffer(batch.bytes, batch.memory);
    this.follows = new Uint8Array(batch.slots);
  }

  /**
   * Finishes the partial checksum of slot `i`'s packet: the sum from
   * `csumStart` to the end (the field at `csumStart + csumOffset` holds the
   * pseudo-header sum), complemented, into that field (0 written as
   * 0xffff). False, with nothing changed, when the field is not inside the
   * packet.
   */
  complete(i: number, csumStart: number, csumOffset: number): boolean {
    const b = this.#b;
    const o = b.offset[i]!;
    const len = b.length[i]!;
    const at = csumStart + csumOffset;
    if (csumStart < IPV4_HEADER_MIN_LENGTH || at + 2 > len) return false;
    const bytes = b.bytes;
    const c = ~this.#cb.sum(o + csumStart, o + len) & 0xffff;
    const v = c === 0 ? 0xffff : c;
    bytes[o + at] = v >>> 8;
    bytes[o + at + 1] = v;
    return true;
  }

  /**
   * Checks the super-packet `bytes[from, from+len)` of the batch against
   * its virtio-net header fields and returns how many segments (slots) it
   * makes, or -1 when it cannot be split (see the module notes).
   */
  plan(from: number, len: number, gsoType: number, gsoSize: number, csumStart: number): number {
    const bytes = this.#b.bytes;
    const type = gsoType & GSO_TYPE_MASK;
    if (len < IPV4_HEADER_MIN_LENGTH || gsoSize <= 0) return -1;
    const ver = bytes[from]! >>> 4;
    let proto: number;
    if (ver === 4) {
      if (type === VIRTIO_NET_HDR_GSO_TCPV6) return -1;
      if (((bytes[from]! & 0x0f) << 2) !== csumStart || csumStart < IPV4_HEADER_MIN_LENGTH) {
        return -1;
      }
      // A fragment cannot be a GSO packet.
      if (((bytes[from + V4_FLAGS]! & 0x3f) | bytes[from + V4_FLAGS + 1]!) !== 0) return -1;
      proto = bytes[from + IPV4_PROTOCOL_OFFSET]!;
    } else if (ver === 6) {
      if (type === VIRTIO_NET_HDR_GSO_TCPV4 || csumStart !== IPV6_HEADER_LENGTH) return -1;
      proto = bytes[from + IPV6_NEXT_HEADER_OFFSET]!;
    } else return -1;
    let l4: number;
    if (type === VIRTIO_NET_HDR_GSO_TCPV4 || type === VIRTIO_NET_HDR_GSO_TCPV6) {
      if (proto !== IP_PROTO_TCP || csumStart + TCP_HEADER_MIN_LENGTH > len) return -1;
      l4 = tcpHeaderBytes(bytes, from + csumStart);
      if (l4 < TCP_HEADER_MIN_LENGTH) return -1;
    } else if (type === VIRTIO_NET_HDR_GSO_UDP_L4) {
      if (proto !== IP_PROTO_UDP) return -1;
      l4 = UDP_HEADER_LENGTH;
    } else return -1;
    const hdrs = csumStart + l4;
    const payload = len - hdrs;
    if (payload <= 0 || hdrs + gsoSize > this.#b.capacity) return -1;
    this.#hdrs = hdrs;
    this.#payload = payload;
    this.#segments = Math.ceil(payload / gsoSize);
    return this.#segments;
  }

  /**
   * Cuts segments `[first, first + count)` (default: all) of the
   * super-packet that the last {@link plan} checked into slots `[slot,
   * slot + count)` (their own regions, after the headroom), each a whole
   * packet (see the module notes); a batch smaller than the super-packet
   * takes it in several calls. The caller made sure those slots exist.
   * Returns `count`.
   */
  split(
    from: number,
    gsoSize: number,
    csumStart: number,
    slot: number,
    first = 0,
    count = this.#segments - first,
  ): number {
    const b = this.#b;
    const bytes = b.bytes;
    const cb = this.#cb;
    const hdrs = this.#hdrs;
    const k = this.#segments;
    const payload = this.#payload;
    const v4 = bytes[from]! >>> 4 === 4;
    const tcp =
      (v4 ? bytes[from + IPV4_PROTOCOL_OFFSET] : bytes[from + IPV6_NEXT_HEADER_OFFSET]) ===
        IP_PROTO_TCP;
    const proto = tcp ? IP_PROTO_TCP : IP_PROTO_UDP;
    const id0 = v4 ? (bytes[from + V4_ID]! << 8) | bytes[from + V4_ID + 1]! : 0;
    const l4At = from + csumStart;
    const seq0 = tcp ? readU32(bytes, l4At + TCP_SEQ_OFFSET) : 0;
    const flags0 = tcp ? bytes[l4At + TCP_FLAGS_OFFSET]! : 0;
    const doff = tcp ? bytes[l4At + TCP_FLAGS_OFFSET - 1]! : 0;
    // Once per call, the sums of what every segment has alike: the IPv4
    // header without total length, identification and checksum; the
    // pseudo-header's addresses; the TCP header without sequence number,
    // offset/flags and checksum (UDP: the ports). Per segment only the
    // payload is summed (while it is copied) and the rest is arithmetic.
    const ipBase = v4
      ? wordSumExcept(bytes, from, csumStart, V4_TOTAL_LENGTH, V4_ID, V4_CHECKSUM, -1)
      : 0;
    const pseudoBase = v4
      ? cb.sum(from + V4_ADDRS, from + V4_ADDRS + 8, proto)
      : cb.sum(from + V6_ADDRS, from + V6_ADDRS + 32, proto);
    const l4Base = tcp
      ? wordSumExcept(bytes, l4At, hdrs - csumStart, TCP_SEQ_OFFSET, TCP_SEQ_OFFSET + 2, 12, 16)
      : ((bytes[l4At]! << 8) | bytes[l4At + 1]!) + ((bytes[l4At + 2]! << 8) | bytes[l4At + 3]!);
    for (let j = first; j < first + count; j++) {
      const s = slot + j - first;
      const o = s * b.slotSize + b.headroom;
      const at0 = j * gsoSize;
      const plen = payload - at0 < gsoSize ? payload - at0 : gsoSize;
      bytes.copyWithin(o, from, from + hdrs);
      const payloadSum = cb.copySum(o + hdrs, from + hdrs + at0, plen);
      const total = hdrs + plen;
      const l4 = o + csumStart;
      const l4len = total - csumStart;
      if (v4) {
        bytes[o + V4_TOTAL_LENGTH] = total >>> 8;
        bytes[o + V4_TOTAL_LENGTH + 1] = total;
        const id = (id0 + j) & 0xffff;
        bytes[o + V4_ID] = id >>> 8;
        bytes[o + V4_ID + 1] = id;
        const hc = ~foldSum(ipBase + total + id) & 0xffff;
        bytes[o + V4_CHECKSUM] = hc >>> 8;
        bytes[o + V4_CHECKSUM + 1] = hc;
      } else {
        const pl = total - IPV6_HEADER_LENGTH;
        bytes[o + V6_PAYLOAD_LENGTH] = pl >>> 8;
        bytes[o + V6_PAYLOAD_LENGTH + 1] = pl;
      }
      let at: number;
      let headerSum: number;
      if (tcp) {
        const seq = (seq0 + at0) >>> 0;
        writeU32(bytes, l4 + TCP_SEQ_OFFSET, seq);
        let f = flags0;
        if (j < k - 1) f &= ~(TCP_FLAG_FIN | TCP_FLAG_PSH);
        if (j > 0) f &= ~TCP_FLAG_CWR;
        bytes[l4 + TCP_FLAGS_OFFSET] = f;
        headerSum = l4Base + (seq >>> 16) + (seq & 0xffff) + ((doff << 8) | f);
        at = l4 + TCP_CHECKSUM_OFFSET;
      } else {
        bytes[l4 + UDP_LENGTH_OFFSET] = l4len >>> 8;
        bytes[l4 + UDP_LENGTH_OFFSET + 1] = l4len;
        headerSum = l4Base + l4len;
        at = l4 + UDP_CHECKSUM_OFFSET;
      }
      let c = ~foldSum(pseudoBase + l4len + headerSum + payloadSum) & 0xffff;
      if (c === 0 && !tcp) c = 0xffff; // RFC 768: 0 means no checksum
      bytes[at] = c >>> 8;
      bytes[at + 1] = c;
      b.offset[s] = o;
      b.length[s] = total;
      b.truncated[s] = 0;
      this.follows[s] = j > 0 && s > 0 ? 1 : 0;
    }
    return count;
  }
}
