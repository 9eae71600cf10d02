/**
 * A batch of packet buffers with the kernel structures that
 * `recvmmsg`/`sendmmsg` (and TUN `readv`/`writev`) need, all carved once
 * from one ArrayBuffer. Per call nothing is allocated: the calls rewrite
 * a few fields of the preallocated `struct iovec`/`struct mmsghdr` and
 * read the results back into typed arrays.
 *
 * Memory layout (one ArrayBuffer, addresses fixed for its lifetime):
 *
 * ```
 * [slot 0 | slot 1 | ... ]           slots × slotSize bytes of packet data
 * [sockaddr 0 | sockaddr 1 | ...]    slots × 32: peer of each slot (sockaddr_in / sockaddr_in6)
 * [iovec 0 | iovec 1 | ...]          slots × 16: base and length of each slot's data
 * [mmsghdr 0 | mmsghdr 1 | ...]      slots × 64: msg_name -> sockaddr i, msg_iov -> iovec i
 * [control 0 | control 1 | ...]      slots × 32: ancillary data (a UDP_GRO or UDP_SEGMENT cmsg)
 * [GSO mmsghdr 0 | ...]              slots × 64: one per run of slots sent as one UDP GSO send
 * [spill]                            `spill` bytes (option): where a TUN read too big for a slot goes on
 * ```
 *
 * UDP offloads: a receive also reads each slot's UDP_GRO control message,
 * so a socket with UDP GRO on gives a slot holding several datagrams of
 * {@link PacketBatch.gsoSize} bytes each (the last may be shorter).
 * {@link PacketBatch.prepareGso} turns runs of consecutive slots to one peer
 * with equal lengths (the last may be shorter) into one message each: its
 * `msg_iov` is the run's iovecs (consecutive slots have consecutive
 * iovecs, so nothing is copied) and a UDP_SEGMENT control message says the
 * segment size; the kernel sends each slot as its own datagram.
 *
 * A slot's packet lives at `bytes[offset[i], offset[i] + length[i])`. A
 * receive puts it at `base(i) + headroom`, so a LISP or VXLAN-GPE header
 * (8 bytes) or more can be prepended in place with {@link PacketBatch.prepend}
 * and the packet sent without a copy; {@link PacketBatch.strip} drops an
 * outer header the same way.
 *
 * The peer (source after a receive, destination for a send) is stored in
 * the slot's sockaddr, exactly as the kernel reads and writes it, and read
 * or written through the `peer*` accessors: an IPv4 address as a u32
 * (`10.0.0.1` is `0x0a000001`), an IPv6 address as 16 bytes inside
 * `bytes` at {@link PacketBatch.peerAddr6Offset}. A packet received and
 * sent back therefore needs no address copy at all.
 *
 * Safety: the mmsghdrs hold raw addresses into this batch's own
 * ArrayBuffer. Keep the batch referenced while any call using it runs (all
 * calls are synchronous, so passing it as an argument is enough) and never
 * transfer its buffer to another Worker; give each Worker its own batches.
 *
 * @module
 */

import {
  addressOf,
  type AddressParts,
  AF_INET,
  AF_INET6,
  HOST_LE,
  ipv4ToU32,
  MSG_TRUNC,
  pointerAt,
  setPointer,
  setPointerAt,
  SOCKADDR_IN6_SIZE,
  SOCKADDR_IN_SIZE,
  type SocketAddress,
  SOL_UDP,
  splitAddress,
  u32ToIpv4,
  UDP_GRO,
  UDP_SEGMENT,
} from "./libc.ts";
import { ipv6FromBytes, ipv6ToBytes, isIPv4 } from "../wire/ip_text.ts";

/** Bytes reserved per slot for its sockaddr (a sockaddr_in6 is 28). */
const SA_STRIDE = 32;
/** struct iovec: void *iov_base; size_t iov_len. */
const IOV_SIZE = 16;
/** struct mmsghdr: struct msghdr (56) + unsigned msg_len + padding. */
const MMSG_SIZE = 64;
/** Offsets inside struct msghdr / mmsghdr (LP64 Linux). */
const MH_NAME = 0;
const MH_NAMELEN = 8;
const MH_IOV = 16;
const MH_IOVLEN = 24;
const MH_CONTROL = 32;
const MH_CONTROLLEN = 40;
const MH_FLAGS = 48;
const MH_LEN = 56;
/** Bytes of control data per slot: a cmsghdr (16) and an int, aligned (CMSG_SPACE(4) = 24). */
const CTRL_STRIDE = 32;
/** struct cmsghdr: size_t cmsg_len; int cmsg_level; int cmsg_type; data. */
const CMSG_LEVEL = 8;
const CMSG_TYPE = 12;
const CMSG_DATA = 16;
/** CMSG_LEN(2) and CMSG_SPACE(2): a UDP_SEGMENT message (u16 data). */
const CMSG_LEN_U16 = 18;
const CMSG_SPACE_U16 = 24;

/**
 * Largest slot: an IP packet of 65,535 bytes (the most a TUN of MTU 65535
 * hands over) with an outer header in front and headroom, rounded up.
 */
export const MAX_SLOT_SIZE = 65536 + 512;

/** Options of {@link PacketBatch}. */
export interface BatchOptions {
  /** Number of slots (packets per batch). Default 64. */
  readonly slots?: number;
  /** Bytes per slot, headroom included; a multiple of 8 up to {@link MAX_SLOT_SIZE}. Default 2048. */
  readonly slotSize?: number;
  /** Bytes left free before received data, for headers to prepend. Default 64. */
  readonly headroom?: number;
  /**
   * Bytes of a spill area after everything else (a multiple of 8), where a
   * TUN read of a GSO super-packet goes on past its slot
   * (`Tun.readSlot`). Default 0.
   */
  readonly spill?: number;
  /**
   * Allocate the memory in a `WebAssembly.Memory` (never grown), so that
   * WebAssembly code can read the packets: wire/checksum.ts sums them with
   * SIMD there. Default false (a plain ArrayBuffer).
   */
  readonly wasm?: boolean;
}

/**
 * N packet buffers plus their iovec/mmsghdr/sockaddr structures, from one
 * ArrayBuffer. See the module documentation for layout and rules.
 */
export class PacketBatch {
  /** Number of slots. */
  readonly slots: number;
  /** Bytes per slot, headroom included. */
  readonly slotSize: number;
  /** Free bytes before received data in each slot. */
  readonly headroom: number;
  /** Largest packet a receive takes into a slot: `slotSize - headroom`. */
  readonly capacity: number;
  /** The whole memory of the batch (packets, then kernel structures). */
  readonly bytes: Uint8Array;
  /** A DataView over {@link bytes}; IP/LISP headers are big-endian: pass `false`. */
  readonly view: DataView;
  /** Start of each slot's packet in {@link bytes}. */
  readonly offset: Int32Array;
  /** Length of each slot's packet. */
  readonly length: Int32Array;
  /** 1 when the slot's datagram was longer than {@link capacity} and cut (MSG_TRUNC). */
  readonly truncated: Uint8Array;
  /**
   * After a receive on a socket with UDP GRO: the size of the datagrams
   * coalesced into the slot (each `gsoSize` bytes, the last maybe fewer);
   * 0 when the slot holds one datagram.
   */
  readonly gsoSize: Uint16Array;
  /** After {@link prepareGso}: how many slots each GSO message carries. */
  readonly gsoRun: Int32Array;
  /**
   * A key per slot (a flow hash): with {@link gsoByKey}, a GSO run holds
   * slots of one key only.
   */
  readonly runKey: Uint32Array;
  /** Whether {@link prepareGso} ends a run where {@link runKey} changes (default false). */
  gsoByKey = false;
  /** Number of filled slots: set by receives, read by the caller. */
  count = 0;
  /** Address of `bytes[0]` in process memory (for iovecs pointing into the batch). */
  readonly address: number;
  /** {@link address} in parts, for `setPointerAt` (no heap number per call). */
  readonly addressParts: AddressParts;
  /** Start of the spill area in {@link bytes} (its end is the end of `bytes`). */
  readonly spillOffset: number;
  /** The WebAssembly memory {@link bytes} lives in (option `wasm`), or undefined. */
  readonly memory: WebAssembly.Memory | undefined;

  readonly #saBase: number;
  readonly #iovBase: number;
  readonly #mmsgBase: number;
  readonly #ctrlBase: number;
  readonly #gsoBase: number;
  /** Address of bytes[0] in process memory. */
  readonly #addr: number;
  readonly #iovPtr: Deno.PointerObject[] = [];
  readonly #mmsgPtr: Deno.PointerObject[] = [];
  readonly #gsoPtr: Deno.PointerObject;

  /** Allocates a batch (one ArrayBuffer) and links its structures. */
  constructor(options: BatchOptions = {}) {
    const slots = options.slots ?? 64;
    const slotSize = options.slotSize ?? 2048;
    const headroom = options.headroom ?? 64;
    if (!Number.isInteger(slots) || slots < 1 || slots > 1024) {
      throw new RangeError(`batch slots must be 1..1024: ${slots}`);
    }
    if (
      !Number.isInteger(slotSize) || slotSize < 64 || slotSize % 8 !== 0 ||
      slotSize > MAX_SLOT_SIZE
    ) {
      throw new RangeError(
        `batch slotSize must be a multiple of 8 in 64..${MAX_SLOT_SIZE}: ${slotSize}`,
      );
    }
    if (!Number.isInteger(headroom) || headroom < 0 || headroom > slotSize - 64) {
      throw new RangeError(`batch headroom must be 0..slotSize-64: ${headroom}`);
    }
    const spill = options.spill ?? 0;
    if (!Number.isInteger(spill) || spill < 0 || spill % 8 !== 0 || spill > 1 << 20) {
      throw new RangeError(`batch spill must be a multiple of 8 up to 1 MiB: ${spill}`);
    }
    this.slots = slots;
    this.slotSize = slotSize;
    this.headroom = headroom;
    this.capacity = slotSize - headroom;
    this.#saBase = slots * slotSize;
    this.#iovBase = this.#saBase + slots * SA_STRIDE;
    this.#mmsgBase = this.#iovBase + slots * IOV_SIZE;
    this.#ctrlBase = this.#mmsgBase + slots * MMSG_SIZE;
    this.#gsoBase = this.#ctrlBase + slots * CTRL_STRIDE;
    this.spillOffset = this.#gsoBase + slots * MMSG_SIZE;
    const total = this.spillOffset + spill;
    if (options.wasm === true) {
      this.memory = new WebAssembly.Memory({ initial: Math.ceil(total / 65536) });
      this.bytes = new Uint8Array(this.memory.buffer, 0, total);
    } else {
      this.memory = undefined;
      this.bytes = new Uint8Array(new ArrayBuffer(total));
    }
    this.view = new DataView(this.bytes.buffer);
    this.offset = new Int32Array(slots);
    this.length = new Int32Array(slots);
    this.truncated = new Uint8Array(slots);
    this.gsoSize = new Uint16Array(slots);
    this.gsoRun = new Int32Array(slots);
    this.runKey = new Uint32Array(slots);
    this.#addr = addressOf(this.bytes);
    this.address = this.#addr;
    this.addressParts = splitAddress(this.#addr);
    this.#gsoPtr = pointerAt(this.#addr + this.#gsoBase);
    const v = this.view;
    for (let i = 0; i < slots; i++) {
      this.offset[i] = i * slotSize + headroom;
      const iov = this.#iovBase + i * IOV_SIZE;
      const mh = this.#mmsgBase + i * MMSG_SIZE;
      setPointer(v, mh + MH_NAME, this.#addr + this.#saBase + i * SA_STRIDE);
      v.setUint32(mh + MH_NAMELEN, 0, HOST_LE);
      setPointer(v, mh + MH_IOV, this.#addr + iov);
      setPointer(v, mh + MH_IOVLEN, 1);
      setPointer(v, mh + MH_CONTROL, 0);
      setPointer(v, mh + MH_CONTROLLEN, 0);
      v.setInt32(mh + MH_FLAGS, 0, HOST_LE);
      v.setUint32(mh + MH_LEN, 0, HOST_LE);
      this.#iovPtr.push(pointerAt(this.#addr + iov));
      this.#mmsgPtr.push(pointerAt(this.#addr + mh));
    }
  }

  /** Start of slot `i`'s region in {@link bytes} (its headroom begins here). */
  base(i: number): number {
    return i * this.slotSize;
  }

  /** Puts slot `i`'s packet back at `base(i) + headroom` with length 0. */
  reset(i: number): void {
    this.offset[i] = i * this.slotSize + this.headroom;
    this.length[i] = 0;
    this.truncated[i] = 0;
    this.gsoSize[i] = 0;
  }

  /** A view of slot `i`'s packet (allocates a subarray: not for per-packet use). */
  packet(i: number): Uint8Array {
    const o = this.offset[i]!;
    return this.bytes.subarray(o, o + this.length[i]!);
  }

  /**
   * Grows slot `i`'s packet by `n` bytes at the front (for an outer
   * header) and returns its new offset, where the header goes. Throws
   * RangeError when the headroom left is too small.
   */
  prepend(i: number, n: number): number {
    const o = this.offset[i]! - n;
    if (o < i * this.slotSize) throw new RangeError(`slot ${i}: no headroom for ${n} bytes`);
    this.offset[i] = o;
    this.length[i] = this.length[i]! + n;
    return o;
  }

  /** Drops `n` bytes from the front of slot `i`'s packet (an outer header). */
  strip(i: number, n: number): void {
    if (n > this.length[i]!) throw new RangeError(`slot ${i}: cannot strip ${n} bytes`);
    this.offset[i] = this.offset[i]! + n;
    this.length[i] = this.length[i]! - n;
  }

  /**
   * Swaps slots `i` and `j`: their packets (offsets and lengths, not the
   * bytes), truncation marks and peers. For compacting the slots to send
   * to the front. Afterwards a slot's packet may live in another slot's
   * region: address packets through `offset`, never through `base()`.
   * The next receive puts every slot back into its own region.
   */
  swap(i: number, j: number): void {
    if (i === j) return;
    const o = this.offset[i]!;
    this.offset[i] = this.offset[j]!;
    this.offset[j] = o;
    const l = this.length[i]!;
    this.length[i] = this.length[j]!;
    this.length[j] = l;
    const t = this.truncated[i]!;
    this.truncated[i] = this.truncated[j]!;
    this.truncated[j] = t;
    const g = this.gsoSize[i]!;
    this.gsoSize[i] = this.gsoSize[j]!;
    this.gsoSize[j] = g;
    const v = this.view;
    const a = this.#saBase + i * SA_STRIDE;
    const b = this.#saBase + j * SA_STRIDE;
    for (let k = 0; k < SA_STRIDE; k += 4) {
      const x = v.getUint32(a + k, HOST_LE);
      v.setUint32(a + k, v.getUint32(b + k, HOST_LE), HOST_LE);
      v.setUint32(b + k, x, HOST_LE);
    }
  }

  /**
   * Moves the slots among `[0, count)` whose length is above 0 to the
   * front, keeping their order (by {@link swap}), sets `count` to how many
   * there are and returns it. Mark a packet dropped with `length[i] = 0`,
   * then compact before a sendmmsg.
   */
  compact(): number {
    let j = 0;
    for (let i = 0; i < this.count; i++) {
      if (this.length[i]! > 0) {
        this.swap(i, j);
        j++;
      }
    }
    this.count = j;
    return j;
  }

  // -------------------------------------------------------------------------
  // Peers.

  /** Slot `i`'s peer family: 4, 6, or 0 when unset or another family. */
  peerFamily(i: number): 0 | 4 | 6 {
    const f = this.view.getUint16(this.#saBase + i * SA_STRIDE, HOST_LE);
    return f === AF_INET ? 4 : f === AF_INET6 ? 6 : 0;
  }

  /** Slot `i`'s peer port. */
  peerPort(i: number): number {
    return this.view.getUint16(this.#saBase + i * SA_STRIDE + 2, false);
  }

  /** Slot `i`'s IPv4 peer as a u32 (meaningful when `peerFamily(i) === 4`). */
  peerAddr4(i: number): number {
    return this.view.getUint32(this.#saBase + i * SA_STRIDE + 4, false);
  }

  /** Offset in {@link bytes} of slot `i`'s 16 IPv6 peer address bytes (when family 6). */
  peerAddr6Offset(i: number): number {
    return this.#saBase + i * SA_STRIDE + 8;
  }

  /** Sets slot `i`'s peer to IPv4 `addr` (u32) and `port`. */
  setPeer4(i: number, addr: number, port: number): void {
    const v = this.view;
    const o = this.#saBase + i * SA_STRIDE;
    v.setUint16(o, AF_INET, HOST_LE);
    v.setUint16(o + 2, port, false);
    v.setUint32(o + 4, addr, false);
    v.setUint32(o + 8, 0, HOST_LE);
    v.setUint32(o + 12, 0, HOST_LE);
  }

  /** Sets slot `i`'s peer to the IPv6 address at `src[srcOff, srcOff+16)` and `port`. */
  setPeer6(i: number, src: Uint8Array, srcOff: number, port: number): void {
    const v = this.view;
    const o = this.#saBase + i * SA_STRIDE;
    v.setUint16(o, AF_INET6, HOST_LE);
    v.setUint16(o + 2, port, false);
    v.setUint32(o + 4, 0, false);
    const b = this.bytes;
    for (let k = 0; k < 16; k++) b[o + 8 + k] = src[srcOff + k]!;
    v.setUint32(o + 24, 0, HOST_LE);
  }

  /** Copies slot `from`'s peer to slot `to`. */
  copyPeer(from: number, to: number): void {
    const s = this.#saBase + from * SA_STRIDE;
    this.bytes.copyWithin(this.#saBase + to * SA_STRIDE, s, s + SA_STRIDE);
  }

  /** Sets slot `i`'s peer from text (allocates; for set-up and tests). */
  setPeer(i: number, address: string, port: number): void {
    if (isIPv4(address)) {
      this.setPeer4(i, ipv4ToU32(address)!, port);
      return;
    }
    const b = new Uint8Array(16);
    if (!ipv6ToBytes(address, b, 0)) throw new TypeError(`not an IP address: ${address}`);
    this.setPeer6(i, b, 0, port);
  }

  /** Slot `i`'s peer as text, or undefined (allocates; for logs and tests). */
  peer(i: number): SocketAddress | undefined {
    switch (this.peerFamily(i)) {
      case 4:
        return { family: "ipv4", address: u32ToIpv4(this.peerAddr4(i)), port: this.peerPort(i) };
      case 6:
        return {
          family: "ipv6",
          address: ipv6FromBytes(this.bytes, this.peerAddr6Offset(i)),
          port: this.peerPort(i),
        };
      default:
        return undefined;
    }
  }

  // -------------------------------------------------------------------------
  // Low level, for ffi/udp.ts and ffi/tun.ts.

  /** Pointer to slot `i`'s struct iovec (for readv/writev). */
  iovPointer(i: number): Deno.PointerObject {
    return this.#iovPtr[i]!;
  }

  /** Pointer to slot `i`'s struct mmsghdr (for recvmmsg/sendmmsg from slot `i` on). */
  mmsgPointer(i: number): Deno.PointerObject {
    return this.#mmsgPtr[i]!;
  }

  /** Points slot `i`'s iovec at its receive area: `base(i) + headroom`, `capacity` bytes. */
  prepareRead(i: number): void {
    const iov = this.#iovBase + i * IOV_SIZE;
    setPointerAt(this.view, iov, this.addressParts, i * this.slotSize + this.headroom);
    setPointer(this.view, iov + 8, this.capacity);
  }

  /** Points slot `i`'s iovec at its packet (`offset[i]`, `length[i]`). */
  prepareWrite(i: number): void {
    const iov = this.#iovBase + i * IOV_SIZE;
    const len = this.length[i]!;
    setPointerAt(this.view, iov, this.addressParts, this.offset[i]!);
    setPointer(this.view, iov + 8, len > 0 ? len : 0);
  }

  /** Readies slots `[start, start+n)` for a recvmmsg (with room for a UDP_GRO control message). */
  prepareRecv(start: number, n: number): void {
    const v = this.view;
    for (let i = start; i < start + n; i++) {
      this.prepareRead(i);
      const mh = this.#mmsgBase + i * MMSG_SIZE;
      v.setUint32(mh + MH_NAMELEN, SOCKADDR_IN6_SIZE, HOST_LE);
      setPointerAt(v, mh + MH_CONTROL, this.addressParts, this.#ctrlBase + i * CTRL_STRIDE);
      setPointer(v, mh + MH_CONTROLLEN, CTRL_STRIDE);
      v.setInt32(mh + MH_FLAGS, 0, HOST_LE);
    }
  }

  /**
   * Records the results of a recvmmsg that filled slots `[start, start+n)`:
   * length, truncation and, from a UDP_GRO control message, {@link gsoSize}.
   */
  completeRecv(start: number, n: number): void {
    const v = this.view;
    for (let i = start; i < start + n; i++) {
      const mh = this.#mmsgBase + i * MMSG_SIZE;
      this.offset[i] = i * this.slotSize + this.headroom;
      this.length[i] = v.getUint32(mh + MH_LEN, HOST_LE);
      this.truncated[i] = (v.getInt32(mh + MH_FLAGS, HOST_LE) & MSG_TRUNC) !== 0 ? 1 : 0;
      let gso = 0;
      // msg_controllen is a size_t; the kernel sets it to what it wrote (at most CTRL_STRIDE).
      if (v.getUint32(mh + MH_CONTROLLEN + (HOST_LE ? 0 : 4), HOST_LE) >= CMSG_DATA + 2) {
        const c = this.#ctrlBase + i * CTRL_STRIDE;
        if (
          v.getInt32(c + CMSG_LEVEL, HOST_LE) === SOL_UDP &&
          v.getInt32(c + CMSG_TYPE, HOST_LE) === UDP_GRO
        ) {
          gso = v.getInt32(c + CMSG_DATA, HOST_LE);
          if (gso < 0 || gso > 0xffff) gso = 0;
        }
      }
      this.gsoSize[i] = gso;
    }
  }

  /**
   * Readies slots `[start, start+n)` for a sendmmsg: iovecs from
   * offset/length, and the peer as destination when `named` (false for a
   * connected socket).
   */
  prepareSend(start: number, n: number, named: boolean): void {
    const v = this.view;
    for (let i = start; i < start + n; i++) {
      this.prepareWrite(i);
      const mh = this.#mmsgBase + i * MMSG_SIZE;
      let namelen = 0;
      if (named) {
        const f = v.getUint16(this.#saBase + i * SA_STRIDE, HOST_LE);
        namelen = f === AF_INET ? SOCKADDR_IN_SIZE : f === AF_INET6 ? SOCKADDR_IN6_SIZE : 0;
      }
      v.setUint32(mh + MH_NAMELEN, namelen, HOST_LE);
      setPointer(v, mh + MH_CONTROLLEN, 0);
      v.setInt32(mh + MH_FLAGS, 0, HOST_LE);
    }
  }

  /** Pointer to the first GSO message (for sendmmsg after {@link prepareGso}). */
  gsoPointer(): Deno.PointerObject {
    return this.#gsoPtr;
  }

  /** Whether slots `i` and `j` have the same peer (family, port and address). */
  samePeer(i: number, j: number): boolean {
    const v = this.view;
    const a = this.#saBase + i * SA_STRIDE;
    const b = this.#saBase + j * SA_STRIDE;
    const f = v.getUint32(a, HOST_LE); // family and port
    if (f !== v.getUint32(b, HOST_LE)) return false;
    if (v.getUint16(a, HOST_LE) === AF_INET) return v.getUint32(a + 4) === v.getUint32(b + 4);
    for (let k = 8; k < 24; k += 4) if (v.getUint32(a + k) !== v.getUint32(b + k)) return false;
    return true;
  }

  /**
   * Readies slots `[start, start+count)` for one sendmmsg of GSO messages
   * (from {@link gsoPointer}): each run of consecutive slots with the same
   * peer (unless `named` is false: a connected socket) and the same length
   * (the last may be shorter), at most `maxSegments` slots and `maxBytes`
   * bytes, becomes one message with a UDP_SEGMENT control message (a run of
   * one is a plain message). Sets {@link gsoRun} and returns the number of
   * messages. Slots of length 0 must not be in the range.
   */
  prepareGso(
    start: number,
    count: number,
    named: boolean,
    maxSegments: number,
    maxBytes: number,
  ): number {
    const v = this.view;
    const end = start + count;
    let m = 0;
    let r = start;
    while (r < end) {
      const size = this.length[r]!;
      let k = 1;
      let bytes = size;
      this.prepareWrite(r);
      while (r + k < end && k < maxSegments) {
        const j = r + k;
        const l = this.length[j]!;
        if (l > size || bytes + l > maxBytes || (named && !this.samePeer(r, j))) break;
        if (this.gsoByKey && this.runKey[j] !== this.runKey[r]) break;
        this.prepareWrite(j);
        bytes += l;
        k++;
        if (l < size) break; // a shorter one ends the run
      }
      const mh = this.#gsoBase + m * MMSG_SIZE;
      setPointerAt(v, mh + MH_NAME, this.addressParts, this.#saBase + r * SA_STRIDE);
      let namelen = 0;
      if (named) {
        const f = v.getUint16(this.#saBase + r * SA_STRIDE, HOST_LE);
        namelen = f === AF_INET ? SOCKADDR_IN_SIZE : f === AF_INET6 ? SOCKADDR_IN6_SIZE : 0;
      }
      v.setUint32(mh + MH_NAMELEN, namelen, HOST_LE);
      setPointerAt(v, mh + MH_IOV, this.addressParts, this.#iovBase + r * IOV_SIZE);
      setPointer(v, mh + MH_IOVLEN, k);
      if (k > 1) {
        const c = this.#ctrlBase + r * CTRL_STRIDE;
        setPointer(v, c, CMSG_LEN_U16);
        v.setInt32(c + CMSG_LEVEL, SOL_UDP, HOST_LE);
        v.setInt32(c + CMSG_TYPE, UDP_SEGMENT, HOST_LE);
        v.setUint16(c + CMSG_DATA, size, HOST_LE);
        setPointerAt(v, mh + MH_CONTROL, this.addressParts, c);
        setPointer(v, mh + MH_CONTROLLEN, CMSG_SPACE_U16);
      } else {
        setPointer(v, mh + MH_CONTROL, 0);
        setPointer(v, mh + MH_CONTROLLEN, 0);
      }
      v.setInt32(mh + MH_FLAGS, 0, HOST_LE);
      v.setUint32(mh + MH_LEN, 0, HOST_LE);
      this.gsoRun[m] = k;
      m++;
      r += k;
    }
    return m;
  }
}
