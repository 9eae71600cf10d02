/**
 * The ETR side of the TUN offloads: the inner packets of a received batch
 * (decapsulated in place, one or many per slot with UDP GRO) become TUN
 * writes, and consecutive in-order TCP segments of one flow are merged
 * into one GSO write (a virtio-net header with `gso_type` TCPV4/TCPV6,
 * `NEEDS_CSUM`), as Linux GRO would merge them (`tcp_gro_receive()`), so
 * the host behind the TUN takes up to 64 KiB per write; with USO granted,
 * equal-sized datagrams of one UDP flow likewise (UDP_L4). Everything else
 * is written as it came, in order.
 *
 * The rules of a merge (what Linux checks, and what wireguard-go's
 * tun/offload_linux.go checks): same TUN, same addresses and ports; IPv4
 * without options, not a fragment, with its total length equal to the
 * packet, the same TOS, DF and TTL, and identifications that go up by one
 * a segment (so that cutting the merged packet again, as the kernel may,
 * gives back the same packets); IPv6 with no extension header, the same
 * traffic class, flow label and hop limit; TCP with only ACK (PSH allowed:
 * it ends the merge), the same header length, options, acknowledgment
 * number and window, the sequence number that follows, a payload no bigger
 * than the first segment's (a smaller one ends the merge); UDP with a
 * checksum; at most 64 segments and 65,535 bytes; and, checked only when a
 * merge happens, a right IPv4 header checksum and TCP/UDP checksum on every
 * segment (a wrong one is written alone, for the kernel to drop and count).
 * A packet of a flow that cannot join that flow's merge ends it, so a
 * flow's packets keep their order.
 *
 * The merged packet is the first segment's headers with the lengths,
 * the IPv4 header checksum and PSH made right and, in the TCP/UDP checksum
 * field, the pseudo-header sum (the kernel finishes it, or checks nothing:
 * CHECKSUM_PARTIAL), then every segment's payload: gathered by iovecs
 * pointing into the batch, nothing copied. Nothing is allocated per packet.
 *
 * @module
 */

import type { PacketBatch } from "../ffi/batch.ts";
import {
  addressOf,
  type AddressParts,
  setPointer,
  setPointerAt,
  splitAddress,
} from "../ffi/libc.ts";
import { ChecksumBuffer, foldSum, wordSumExcept } from "../wire/checksum.ts";
import { IP_PROTO_TCP, IP_PROTO_UDP } from "../wire/ip.ts";
import {
  readU32,
  TCP_ACK_OFFSET,
  TCP_FLAG_ACK,
  TCP_FLAG_PSH,
  TCP_FLAGS_OFFSET,
  TCP_SEQ_OFFSET,
  TCP_WINDOW_OFFSET,
} from "../wire/tcp.ts";
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VIRTIO_NET_HDR_LENGTH,
  writeVirtioNetHeader,
} from "../wire/virtio_net.ts";

/** TUN mode bit: packets are written behind a virtio-net header. */
export const TUN_VNET = 1;
/** TUN mode bit: TCP segments may be merged (TSO4 and TSO6 granted). */
export const TUN_MERGE_TCP = 2;
/** TUN mode bit: UDP datagrams may be merged (USO4 and USO6 granted). */
export const TUN_MERGE_UDP = 4;

/** Most segments in one merged write (Linux GRO's limit too). */
export const MAX_MERGED_SEGMENTS = 64;
/** Most merges being built at once (flows interleaved in one batch). */
const OPEN_MAX = 8;

/** What #join did. */
const NOT_JOINED = 0;
const JOINED = 1;
const BAD = 2;

/** Kinds of write. */
const PLAIN = 0;
const TCP4 = 1;
const TCP6 = 2;
const UDP4 = 3;
const UDP6 = 4;

/**
 * What the sink gets for one write: the TUN, iovecs (struct iovec each,
 * from 0), how many, and how many packets the write carries.
 */
export type TunWriteSink = (tun: number, iov: Uint8Array, count: number, packets: number) => void;

/**
 * Builds the TUN writes of one received batch (see the module notes):
 * {@link begin}, {@link add} each inner packet in order, {@link flush}.
 * One per batch; nothing global, so several Workers each have their own.
 */
export class Coalescer {
  /** Packets merged into an earlier one (not written on their own), since start. */
  merged = 0;
  /** Writes of merged packets (GSO writes), since start. */
  gsoWrites = 0;
  /** Packets whose TCP/UDP (or IPv4 header) checksum was wrong when a merge checked it. */
  badChecksums = 0;

  readonly #b: PacketBatch;
  readonly #cb: ChecksumBuffer;
  readonly #mode = new Uint8Array(256);
  readonly #max: number;
  // Writes, in order.
  #n = 0;
  readonly #tun: Uint8Array;
  readonly #kind: Uint8Array;
  readonly #off: Int32Array;
  /** IP header length and IP + TCP/UDP header length of the first packet. */
  readonly #iphl: Uint8Array;
  readonly #hdrs: Uint8Array;
  /** Payload of the first packet: the segment size of a merge. */
  readonly #gso: Int32Array;
  /** Bytes of the packet so far (headers + every payload). */
  readonly #total: Int32Array;
  readonly #count: Int32Array;
  readonly #nextSeq: Uint32Array;
  /** 1 once nothing may join (PSH, a short segment, a packet of the flow that could not). */
  readonly #ended: Uint8Array;
  readonly #psh: Uint8Array;
  /** Checksums of the first packet: 0 not checked yet, 1 right, 2 wrong. */
  readonly #checked: Uint8Array;
  /**
   * Once the first packet is checked, the sums of what every packet that
   * joins shares with it (#join makes sure of that): its IPv4 header but
   * total length, identification and checksum; the pseudo-header's
   * addresses and protocol; its TCP header but sequence number,
   * offset/flags and checksum (UDP: the ports).
   */
  readonly #ipBase: Int32Array;
  readonly #pseudoBase: Int32Array;
  readonly #l4Base: Int32Array;
  readonly #hash: Int32Array;
  /** Appended payloads: a list per write. */
  readonly #xOff: Int32Array;
  readonly #xLen: Int32Array;
  readonly #xNext: Int32Array;
  readonly #first: Int32Array;
  readonly #last: Int32Array;
  #nx = 0;
  /** Writes that may still take packets, oldest first. */
  readonly #open = new Int32Array(OPEN_MAX);
  #nOpen = 0;
  /** iovecs of one write at 0, then a virtio-net header to fill, then a zero one. */
  readonly #iov: Uint8Array;
  readonly #iovView: DataView;
  readonly #vnetAt: number;
  readonly #zeroAt: number;
  readonly #scratch: AddressParts;
  readonly #bytesAt: AddressParts;

  /**
   * A coalescer for the inner packets of `batch` (at most `maxPackets` of
   * them per batch, e.g. slots × 64 with UDP GRO) and TUNs whose modes
   * ({@link setMode}) default to plain writes.
   */
  constructor(batch: PacketBatch, maxPackets: number) {
    this.#b = batch;
    this.#cb = new ChecksumBuffer(batch.bytes, batch.memory);
    const m = this.#max = maxPackets;
    this.#tun = new Uint8Array(m);
    this.#kind = new Uint8Array(m);
    this.#off = new Int32Array(m);
    this.#iphl = new Uint8Array(m);
    this.#hdrs = new Uint8Array(m);
    this.#gso = new Int32Array(m);
    this.#total = new Int32Array(m);
    this.#count = new Int32Array(m);
    this.#nextSeq = new Uint32Array(m);
    this.#ended = new Uint8Array(m);
    this.#psh = new Uint8Array(m);
    this.#checked = new Uint8Array(m);
    this.#ipBase = new Int32Array(m);
    this.#pseudoBase = new Int32Array(m);
    this.#l4Base = new Int32Array(m);
    this.#hash = new Int32Array(m);
    this.#xOff = new Int32Array(m);
    this.#xLen = new Int32Array(m);
    this.#xNext = new Int32Array(m);
    this.#first = new Int32Array(m);
    this.#last = new Int32Array(m);
    const iovs = MAX_MERGED_SEGMENTS + 1;
    this.#vnetAt = iovs * 16;
    this.#zeroAt = this.#vnetAt + 16;
    this.#iov = new Uint8Array(new ArrayBuffer(this.#zeroAt + 16));
    this.#iovView = new DataView(this.#iov.buffer);
    this.#scratch = splitAddress(addressOf(this.#iov));
    this.#bytesAt = batch.addressParts;
  }

  /** Sets how packets to TUN `tun` are written: `TUN_VNET`, `TUN_MERGE_TCP`, `TUN_MERGE_UDP` or'ed. */
  setMode(tun: number, mode: number): void {
    // Merging needs the header that says so.
    this.#mode[tun] = (mode & TUN_VNET) === 0 ? 0 : mode;
  }

  /** Starts a new batch (forgets the writes of the last one). */
  begin(): void {
    this.#n = 0;
    this.#nx = 0;
    this.#nOpen = 0;
  }

  /** Number of writes pending. */
  get pending(): number {
    return this.#n;
  }

  /** Most packets one batch may take before a {@link flush}. */
  get capacity(): number {
    return this.#max;
  }

  /**
   * Takes the inner packet `bytes[off, off+len)` of the batch, for TUN
   * `tun`, after those already taken. Never throws: whatever cannot be
   * merged is written alone.
   */
  add(tun: number, off: number, len: number): void {
    const mode = this.#mode[tun]!;
    const bytes = this.#b.bytes;
    let kind = PLAIN;
    let iphl = 0;
    let l4h = 0;
    if ((mode & (TUN_MERGE_TCP | TUN_MERGE_UDP)) !== 0 && len >= 28) {
      const v = bytes[off]!;
      if (v === 0x45) {
        // No options; total length exact; not a fragment (MF clear, offset 0).
        if (
          ((bytes[off + 2]! << 8) | bytes[off + 3]!) === len &&
          ((bytes[off + 6]! & 0x3f) | bytes[off + 7]!) === 0
        ) {
          iphl = 20;
          const p = bytes[off + 9]!;
          if (p === IP_PROTO_TCP) kind = (mode & TUN_MERGE_TCP) !== 0 ? TCP4 : PLAIN;
          else if (p === IP_PROTO_UDP) kind = (mode & TUN_MERGE_UDP) !== 0 ? UDP4 : PLAIN;
        }
      } else if (v >>> 4 === 6 && len >= 48) {
        if (((bytes[off + 4]! << 8) | bytes[off + 5]!) === len - 40) {
          iphl = 40;
          const p = bytes[off + 6]!;
          if (p === IP_PROTO_TCP) kind = (mode & TUN_MERGE_TCP) !== 0 ? TCP6 : PLAIN;
          else if (p === IP_PROTO_UDP) kind = (mode & TUN_MERGE_UDP) !== 0 ? UDP6 : PLAIN;
        }
      }
      if (kind === TCP4 || kind === TCP6) {
        l4h = (bytes[off + iphl + 12]! >>> 4) << 2;
        if (l4h < 20 || iphl + l4h > len) kind = PLAIN;
      } else if (kind !== PLAIN) {
        l4h = 8;
        const ulen = (bytes[off + iphl + 4]! << 8) | bytes[off + iphl + 5]!;
        if (ulen !== len - iphl) kind = PLAIN;
      }
    }
    if (kind === PLAIN) {
      // Of a flow being merged, perhaps (an IPv4 option, a fragment): none may pass it.
      if ((mode & (TUN_MERGE_TCP | TUN_MERGE_UDP)) !== 0) this.#closeTun(tun);
      this.#newWrite(tun, PLAIN, off, len, 0, 0, 0);
      return;
    }
    const hash = this.#flowHash(off, iphl, kind);
    const hdrs = iphl + l4h;
    const plen = len - hdrs;
    const tcp = kind === TCP4 || kind === TCP6;
    // A candidate: TCP with payload and only ACK (and PSH); UDP with payload and a checksum.
    let candidate = plen > 0;
    if (tcp) {
      const f = bytes[off + iphl + TCP_FLAGS_OFFSET]!;
      if ((f & ~TCP_FLAG_PSH) !== TCP_FLAG_ACK) candidate = false;
    } else if ((bytes[off + iphl + 6]! | bytes[off + iphl + 7]!) === 0) candidate = false;
    // The open write of this flow, if any.
    for (let k = this.#nOpen - 1; k >= 0; k--) {
      const w = this.#open[k]!;
      if (this.#hash[w] !== hash || this.#tun[w] !== tun || this.#kind[w] !== kind) continue;
      if (!this.#sameFlow(this.#off[w]!, off, iphl)) continue;
      if (candidate) {
        const r = this.#join(w, off, len, iphl, hdrs, plen, tcp);
        if (r === JOINED) return;
        if (r === BAD) candidate = false; // written alone; nothing can join it
      }
      this.#close(k); // this flow's next packets must not jump ahead of this one
      break;
    }
    const w = this.#newWrite(tun, kind, off, len, iphl, hdrs, plen);
    if (w < 0 || !candidate) return;
    this.#hash[w] = hash;
    if (tcp) {
      this.#nextSeq[w] = readU32(bytes, off + iphl + TCP_SEQ_OFFSET) + plen;
      if ((bytes[off + iphl + TCP_FLAGS_OFFSET]! & TCP_FLAG_PSH) !== 0) return; // nothing after PSH
    }
    if (this.#nOpen === OPEN_MAX) this.#close(0);
    this.#open[this.#nOpen++] = w;
  }

  /**
   * Writes every pending packet, in order, through `sink` (one call per
   * write; the iovecs are valid during the call only). Returns how many
   * writes were made; then {@link begin} again.
   */
  flush(sink: TunWriteSink): number {
    const n = this.#n;
    for (let w = 0; w < n; w++) this.#write(w, sink);
    this.begin();
    return n;
  }

  // -------------------------------------------------------------------------

  #newWrite(
    tun: number,
    kind: number,
    off: number,
    len: number,
    iphl: number,
    hdrs: number,
    plen: number,
  ): number {
    const w = this.#n;
    if (w >= this.#max) return -1; // more packets than the batch can hold: a bug upstream
    this.#n = w + 1;
    this.#tun[w] = tun;
    this.#kind[w] = kind;
    this.#off[w] = off;
    this.#iphl[w] = iphl;
    this.#hdrs[w] = hdrs;
    this.#gso[w] = plen;
    this.#total[w] = len;
    this.#count[w] = 1;
    this.#ended[w] = 0;
    this.#psh[w] = 0;
    this.#checked[w] = 0;
    this.#first[w] = -1;
    this.#last[w] = -1;
    return w;
  }

  /** Drops every open write of TUN `tun` from the open list. */
  #closeTun(tun: number): void {
    for (let k = this.#nOpen - 1; k >= 0; k--) {
      if (this.#tun[this.#open[k]!] === tun) this.#close(k);
    }
  }

  /** Drops open write number `k` from the open list. */
  #close(k: number): void {
    const open = this.#open;
    for (let j = k + 1; j < this.#nOpen; j++) open[j - 1] = open[j]!;
    this.#nOpen--;
  }

  #flowHash(off: number, iphl: number, kind: number): number {
    const b = this.#b.bytes;
    let h = kind;
    const a = off + (iphl === 20 ? 12 : 8);
    const end = off + (iphl === 20 ? 20 : 40);
    for (let i = a; i < end; i += 4) {
      h = Math.imul(
        h ^ ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!),
        0x9e3779b1,
      );
    }
    const p = off + iphl;
    h = Math.imul(
      h ^ ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!),
      0x85ebca6b,
    );
    return h ^ (h >>> 15);
  }

  /** Whether the packets at `a` and `b` have the same addresses and ports. */
  #sameFlow(a: number, b: number, iphl: number): boolean {
    // 32 bits at a time: 12 bytes (IPv4) or 36 (IPv6), both multiples of 4.
    const v = this.#b.view;
    for (let i = iphl === 20 ? 12 : 8; i < iphl + 4; i += 4) {
      if (v.getUint32(a + i) !== v.getUint32(b + i)) return false;
    }
    return true;
  }

  /**
   * Appends the packet at `off` to write `w` when every rule allows it (see
   * the module notes): {@link JOINED}, {@link NOT_JOINED}, or {@link BAD}
   * when only its own checksum is wrong.
   */
  #join(
    w: number,
    off: number,
    len: number,
    iphl: number,
    hdrs: number,
    plen: number,
    tcp: boolean,
  ): number {
    if (this.#ended[w] !== 0 || this.#hdrs[w] !== hdrs || plen > this.#gso[w]!) return NOT_JOINED;
    const count = this.#count[w]!;
    if (count >= MAX_MERGED_SEGMENTS) return NOT_JOINED;
    const total = this.#total[w]! + plen;
    if (total - (iphl === 40 ? 40 : 0) > 0xffff) return NOT_JOINED;
    const bytes = this.#b.bytes;
    const f = this.#off[w]!;
    if (iphl === 20) {
      // TOS; DF and the reserved bit; TTL; identification + count.
      if (bytes[f + 1] !== bytes[off + 1] || bytes[f + 6] !== bytes[off + 6]) return NOT_JOINED;
      if (bytes[f + 8] !== bytes[off + 8]) return NOT_JOINED;
      const id = (((bytes[f + 4]! << 8) | bytes[f + 5]!) + count) & 0xffff;
      if (((bytes[off + 4]! << 8) | bytes[off + 5]!) !== id) return NOT_JOINED;
    } else {
      // Version, traffic class, flow label; hop limit.
      for (let i = 0; i < 4; i++) if (bytes[f + i] !== bytes[off + i]) return NOT_JOINED;
      if (bytes[f + 7] !== bytes[off + 7]) return NOT_JOINED;
    }
    const l4 = off + iphl;
    if (tcp) {
      const fl4 = f + iphl;
      if (readU32(bytes, l4 + TCP_SEQ_OFFSET) !== this.#nextSeq[w]) return NOT_JOINED;
      // Acknowledgment, offset, reserved bits; window; then the urgent
      // pointer and the options (a multiple of 4 bytes from 16 on, the
      // checksum at 16-17 masked out), 32 bits at a time.
      const v = this.#b.view;
      if (
        v.getUint32(fl4 + TCP_ACK_OFFSET) !== v.getUint32(l4 + TCP_ACK_OFFSET) ||
        bytes[fl4 + TCP_FLAGS_OFFSET - 1] !== bytes[l4 + TCP_FLAGS_OFFSET - 1] ||
        v.getUint16(fl4 + TCP_WINDOW_OFFSET) !== v.getUint16(l4 + TCP_WINDOW_OFFSET) ||
        v.getUint16(fl4 + 18) !== v.getUint16(l4 + 18)
      ) return NOT_JOINED;
      for (let i = 20; i < hdrs - iphl; i += 4) {
        if (v.getUint32(fl4 + i) !== v.getUint32(l4 + i)) return NOT_JOINED;
      }
    }
    // Checksums, only now that a merge would happen: the first packet once, then this one.
    if (this.#checked[w] === 0) {
      const ok = this.#valid(f, hdrs + this.#gso[w]!, iphl, tcp);
      this.#checked[w] = ok ? 1 : 2;
      if (!ok) this.badChecksums++;
      else this.#bases(w, f, iphl, hdrs, tcp);
    }
    if (this.#checked[w] !== 1) return NOT_JOINED;
    if (!this.#validJoining(w, off, len, iphl, hdrs, tcp)) {
      this.badChecksums++;
      return BAD;
    }
    // Join.
    const x = this.#nx++;
    this.#xOff[x] = off + hdrs;
    this.#xLen[x] = plen;
    this.#xNext[x] = -1;
    if (this.#last[w]! < 0) this.#first[w] = x;
    else this.#xNext[this.#last[w]!] = x;
    this.#last[w] = x;
    this.#count[w] = count + 1;
    this.#total[w] = total;
    this.merged++;
    if (tcp) {
      this.#nextSeq[w] = this.#nextSeq[w]! + plen;
      if ((bytes[l4 + TCP_FLAGS_OFFSET]! & TCP_FLAG_PSH) !== 0) {
        this.#psh[w] = 1;
        this.#ended[w] = 1;
      }
    }
    if (plen < this.#gso[w]!) this.#ended[w] = 1;
    return JOINED;
  }

  /** Whether the IPv4 header checksum and the TCP/UDP checksum of the packet at `off` are right. */
  #valid(off: number, len: number, iphl: number, tcp: boolean): boolean {
    const cb = this.#cb;
    const proto = tcp ? IP_PROTO_TCP : IP_PROTO_UDP;
    const l4len = len - iphl;
    let pseudo: number;
    if (iphl === 20) {
      if (cb.sum(off, off + 20) !== 0xffff) return false;
      pseudo = cb.sum(off + 12, off + 20, proto + l4len);
    } else pseudo = cb.sum(off + 8, off + 40, proto + l4len);
    return cb.sum(off + iphl, off + len, pseudo) === 0xffff;
  }

  /** Sums, once, what the packets joining write `w` (first packet at `f`) share with it. */
  #bases(w: number, f: number, iphl: number, hdrs: number, tcp: boolean): void {
    const bytes = this.#b.bytes;
    const proto = tcp ? IP_PROTO_TCP : IP_PROTO_UDP;
    this.#ipBase[w] = iphl === 20 ? wordSumExcept(bytes, f, 20, 2, 4, 10, -1) : 0;
    this.#pseudoBase[w] = iphl === 20
      ? this.#cb.sum(f + 12, f + 20, proto)
      : this.#cb.sum(f + 8, f + 40, proto);
    this.#l4Base[w] = tcp
      ? wordSumExcept(bytes, f + iphl, hdrs - iphl, 4, 6, 12, 16)
      : wordSumExcept(bytes, f + iphl, 4, -1, -1, -1, -1);
  }

  /**
   * {@link #valid} for a packet that #join found equal to write `w`'s first
   * packet in every header field but the lengths, the identification, the
   * sequence number, the flags and the checksums: those are added to the
   * sums of the shared part ({@link #bases}); only the payload is summed.
   */
  #validJoining(
    w: number,
    off: number,
    len: number,
    iphl: number,
    hdrs: number,
    tcp: boolean,
  ): boolean {
    const bytes = this.#b.bytes;
    if (iphl === 20) {
      const h = this.#ipBase[w]! + len + ((bytes[off + 4]! << 8) | bytes[off + 5]!) +
        ((bytes[off + 10]! << 8) | bytes[off + 11]!);
      if (foldSum(h) !== 0xffff) return false;
    }
    const l4 = off + iphl;
    const l4len = len - iphl;
    let s = this.#pseudoBase[w]! + l4len + this.#l4Base[w]!;
    if (tcp) {
      s += ((bytes[l4 + 4]! << 8) | bytes[l4 + 5]!) + ((bytes[l4 + 6]! << 8) | bytes[l4 + 7]!) +
        ((bytes[l4 + 12]! << 8) | bytes[l4 + 13]!) + ((bytes[l4 + 16]! << 8) | bytes[l4 + 17]!);
    } else {
      s += l4len + ((bytes[l4 + 6]! << 8) | bytes[l4 + 7]!);
    }
    return this.#cb.sum(off + hdrs, off + len, foldSum(s)) === 0xffff;
  }

  /** Makes write `w`'s iovecs (and fixes a merged packet's headers) and hands them to `sink`. */
  #write(w: number, sink: TunWriteSink): void {
    const mode = this.#mode[this.#tun[w]!]!;
    const v = this.#iovView;
    const base = this.#bytesAt;
    const off = this.#off[w]!;
    const count = this.#count[w]!;
    let n = 0;
    if (count === 1) {
      if ((mode & TUN_VNET) !== 0) {
        setPointerAt(v, 0, this.#scratch, this.#zeroAt);
        setPointer(v, 8, VIRTIO_NET_HDR_LENGTH);
        n = 1;
      }
      setPointerAt(v, n * 16, base, off);
      setPointer(v, n * 16 + 8, this.#total[w]!);
      sink(this.#tun[w]!, this.#iov, n + 1, 1);
      return;
    }
    // A merged packet: fix the first packet's headers in place.
    const bytes = this.#b.bytes;
    const cb = this.#cb;
    const kind = this.#kind[w]!;
    const iphl = this.#iphl[w]!;
    const hdrs = this.#hdrs[w]!;
    const total = this.#total[w]!;
    const l4len = total - iphl;
    const tcp = kind === TCP4 || kind === TCP6;
    const proto = tcp ? IP_PROTO_TCP : IP_PROTO_UDP;
    let pseudo: number;
    if (iphl === 20) {
      bytes[off + 2] = total >>> 8;
      bytes[off + 3] = total;
      bytes[off + 10] = 0;
      bytes[off + 11] = 0;
      const hc = ~cb.sum(off, off + 20) & 0xffff;
      bytes[off + 10] = hc >>> 8;
      bytes[off + 11] = hc;
      pseudo = cb.sum(off + 12, off + 20, proto + l4len);
    } else {
      bytes[off + 4] = l4len >>> 8;
      bytes[off + 5] = l4len;
      pseudo = cb.sum(off + 8, off + 40, proto + l4len);
    }
    const l4 = off + iphl;
    let at: number;
    if (tcp) {
      if (this.#psh[w] !== 0) {
        bytes[l4 + TCP_FLAGS_OFFSET] = bytes[l4 + TCP_FLAGS_OFFSET]! | TCP_FLAG_PSH;
      }
      at = l4 + 16;
    } else {
      bytes[l4 + 4] = l4len >>> 8;
      bytes[l4 + 5] = l4len;
      at = l4 + 6;
    }
    bytes[at] = pseudo >>> 8;
    bytes[at + 1] = pseudo;
    const gsoType = kind === TCP4
      ? VIRTIO_NET_HDR_GSO_TCPV4
      : kind === TCP6
      ? VIRTIO_NET_HDR_GSO_TCPV6
      : VIRTIO_NET_HDR_GSO_UDP_L4;
    writeVirtioNetHeader(
      this.#iov,
      this.#vnetAt,
      VIRTIO_NET_HDR_F_NEEDS_CSUM,
      gsoType,
      hdrs,
      this.#gso[w]!,
      iphl,
      tcp ? 16 : 6,
      LITTLE_ENDIAN,
    );
    setPointerAt(v, 0, this.#scratch, this.#vnetAt);
    setPointer(v, 8, VIRTIO_NET_HDR_LENGTH);
    setPointerAt(v, 16, base, off);
    setPointer(v, 24, hdrs + this.#gso[w]!);
    n = 2;
    for (let x = this.#first[w]!; x >= 0; x = this.#xNext[x]!) {
      setPointerAt(v, n * 16, base, this.#xOff[x]!);
      setPointer(v, n * 16 + 8, this.#xLen[x]!);
      n++;
    }
    this.gsoWrites++;
    sink(this.#tun[w]!, this.#iov, n, count);
  }
}

/** The host's byte order, which a TUN's virtio-net header uses (legacy virtio). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
