/**
 * A layer-3 TUN interface (`IFF_TUN | IFF_NO_PI`, nonblocking, close on
 * exec): each read returns one IP packet the kernel routed into the
 * interface, each write injects one IP packet as if it arrived on it.
 *
 * The interface is not persistent: it disappears when the fd is closed
 * (or the process dies), which is how a role removes it on shutdown. MTU
 * and link state are set through rtnetlink ({@link Netlink}); the product
 * never runs `ip`.
 *
 * Data-path calls never throw: `read`/`write` return -1 with the errno in
 * {@link Tun.errno} (EAGAIN: nothing to read; EIO: the link is down;
 * EINVAL: not an IP packet).
 *
 * Offloads: a TUN opened with `vnetHdr` (`IFF_VNET_HDR`) carries a 10-byte
 * virtio-net header (wire/virtio_net.ts) in front of every packet, both
 * ways. Until {@link Tun.setOffloads} asks for some, the kernel hands over
 * only plain, complete packets with a zero header, and `read`,
 * `readBatch`, `write` and `writeBatch` add and drop the header
 * themselves, so a caller sees packets as without it. With offloads
 * (checksum, TSO, USO) a read may bring a packet whose checksum is partial
 * or a GSO super-packet of up to 64 KiB: read those with
 * {@link Tun.readSlot}, which keeps the header in {@link Tun.vnet}, and
 * write offloaded packets with {@link Tun.writeIovecs}.
 *
 * Queues: a TUN opened with `multiQueue` (`IFF_MULTI_QUEUE`) takes more
 * fds ({@link Tun.openQueue}), one per data-plane Worker. The kernel hands
 * each packet it routes into the interface to one queue: the one that last
 * wrote a packet of the same flow (its symmetric flow hash), else by that
 * hash; so one flow is read from one queue. The interface goes when its
 * last queue is closed.
 *
 * @module
 */

import {
  addressOf,
  type AddressParts,
  check,
  closeFd,
  cString,
  EINVAL,
  errno,
  ErrnoError,
  HOST_LE,
  IFF_NO_PI,
  IFF_TUN,
  IFF_VNET_HDR,
  IFNAMSIZ,
  libc,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  setPointer,
  setPointerAt,
  splitAddress,
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  TUN_F_TSO_ECN,
  TUN_F_USO4,
  TUN_F_USO6,
  TUNGETIFF,
  TUNSETIFF,
  TUNSETOFFLOAD,
} from "./libc.ts";
import type { PacketBatch } from "./batch.ts";
import { Netlink } from "./netlink.ts";

/** ifreq flag: a TUN with several queues (linux/if_tun.h). */
const IFF_MULTI_QUEUE = 0x0100;
/** Flags TUNSETIFF must repeat when it attaches a queue (linux/if_tun.h TUN_FEATURES, less IFF_TAP). */
const QUEUE_FLAGS = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE;

/** Most queues a TUN takes (the kernel's MAX_TAP_QUEUES). */
export const MAX_TUN_QUEUES = 256;

/** Default MTU of the TUN (oor.toml default). */
export const DEFAULT_TUN_MTU = 1440;

/** Length of the virtio-net header of a TUN with `vnetHdr` (struct virtio_net_hdr). */
export const VNET_HDR_LENGTH = 10;

/**
 * The offloads a TUN can take, in the order {@link offloadFallbacks} drops
 * them when the kernel refuses: the newest first.
 */
const OFFLOAD_FALLBACK: readonly number[] = [
  TUN_F_USO4 | TUN_F_USO6, // Linux 6.2, both or neither
  TUN_F_TSO_ECN,
  TUN_F_TSO6,
  TUN_F_TSO4,
  TUN_F_CSUM, // what every other one needs
];

/**
 * The TUNSETOFFLOAD requests {@link Tun.setOffloads} makes for `wanted`,
 * in order, while the kernel refuses (EINVAL): `wanted`, then without USO,
 * without TSO-ECN, without TSO6, without TSO4, and 0 (each step only when
 * it drops something; without the checksum nothing else stands).
 */
export function offloadFallbacks(wanted: number): number[] {
  const out = [wanted];
  let flags = wanted;
  for (const f of OFFLOAD_FALLBACK) {
    if ((flags & f) === 0) continue;
    flags &= ~f;
    if ((flags & TUN_F_CSUM) === 0) flags = 0;
    out.push(flags);
    if (flags === 0) break;
  }
  if (out[out.length - 1] !== 0) out.push(0);
  return out;
}

/** The names of TUN_F_* bits, for logs ("csum tso4 tso6"). */
export function offloadNames(flags: number): string {
  const names: string[] = [];
  for (
    const [bit, name] of [
      [TUN_F_CSUM, "csum"],
      [TUN_F_TSO4, "tso4"],
      [TUN_F_TSO6, "tso6"],
      [TUN_F_TSO_ECN, "tso-ecn"],
      [TUN_F_USO4, "uso4"],
      [TUN_F_USO6, "uso6"],
    ] as const
  ) if ((flags & bit) !== 0) names.push(name);
  return names.length === 0 ? "none" : names.join(" ");
}

/** Options of {@link Tun.open}. */
export interface TunOptions {
  /** MTU to set; default 1440. 0 leaves the kernel default (1500). */
  readonly mtu?: number;
  /** Bring the link up after creating it; default true. */
  readonly up?: boolean;
  /** Netlink socket to use for MTU and link state; default a temporary one. */
  readonly netlink?: Netlink;
  /** Open with `IFF_VNET_HDR` (a virtio-net header on every packet; see the module notes). */
  readonly vnetHdr?: boolean;
  /** Open with `IFF_MULTI_QUEUE`, so that {@link Tun.openQueue} can add queues. */
  readonly multiQueue?: boolean;
}

/** struct ifreq: char ifr_name[16]; short ifr_flags; padding to 40 bytes. */
const IFREQ_SIZE = 40;

/** A TUN interface and its fd. */
export class Tun {
  /** The file descriptor (-1 once closed). */
  fd: number;
  /** The interface name the kernel gave (the name asked for, or the expansion of `%d`). */
  readonly name: string;
  /** The interface index. */
  readonly index: number;
  /** errno of the last failed read or write. */
  errno = 0;
  /** Packets {@link writeBatch} could not write (each failure also sets {@link errno}). */
  writeErrors = 0;
  /** Whether every packet carries a virtio-net header (`IFF_VNET_HDR`). */
  readonly vnetHdr: boolean;
  /** The offloads granted (TUN_F_* bits), 0 until {@link setOffloads}. */
  offloads = 0;
  /** The virtio-net header of the last read (10 bytes), with {@link vnetHdr}. */
  readonly vnet: Uint8Array;
  /**
   * Scratch, one ArrayBuffer: iovecs [0, 48) (three), the header of reads
   * at 48, a zero header for plain writes at 64.
   */
  readonly #scratch = new Uint8Array(new ArrayBuffer(80));
  readonly #iv = new DataView(this.#scratch.buffer);
  readonly #iovPtr: Deno.PointerObject;
  /** Address of #scratch. */
  readonly #base: number;
  readonly #baseParts: AddressParts;

  private constructor(fd: number, name: string, index: number, vnetHdr: boolean) {
    this.fd = fd;
    this.name = name;
    this.index = index;
    this.vnetHdr = vnetHdr;
    this.vnet = this.#scratch.subarray(48, 48 + VNET_HDR_LENGTH);
    this.#base = addressOf(this.#scratch);
    this.#baseParts = splitAddress(this.#base);
    this.#iovPtr = Deno.UnsafePointer.create(BigInt(this.#base))!;
  }

  /**
   * Creates (or attaches to a free persistent) TUN interface `name`
   * (1 to 15 bytes; `%d` lets the kernel number it), sets its MTU and
   * brings it up. Throws {@link ErrnoError}: EPERM without CAP_NET_ADMIN,
   * EBUSY when another process has it open, ENOENT without /dev/net/tun.
   */
  static open(name = "lispTun0", options: TunOptions = {}): Tun {
    const nameBytes = new TextEncoder().encode(name);
    if (nameBytes.length === 0 || nameBytes.length >= IFNAMSIZ || /[\s/:]/.test(name)) {
      throw new TypeError(`bad interface name: ${JSON.stringify(name)}`);
    }
    const c = libc();
    const fd = check(
      c.open(cString("/dev/net/tun"), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0),
      "open /dev/net/tun",
    );
    try {
      const ifr = new Uint8Array(IFREQ_SIZE);
      ifr.set(nameBytes);
      const vnet = options.vnetHdr === true;
      new DataView(ifr.buffer).setUint16(
        IFNAMSIZ,
        IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0) |
          (options.multiQueue === true ? IFF_MULTI_QUEUE : 0),
        HOST_LE,
      );
      check(c.ioctl(fd, BigInt(TUNSETIFF), ifr), `TUNSETIFF ${name}`);
      const end = ifr.indexOf(0);
      const actual = new TextDecoder().decode(ifr.subarray(0, end < 0 ? IFNAMSIZ : end));
      const index = c.if_nametoindex(cString(actual));
      if (index === 0) throw ErrnoError.fromErrno(`if_nametoindex ${actual}`);
      const tun = new Tun(fd, actual, index, vnet);
      const mtu = options.mtu ?? DEFAULT_TUN_MTU;
      const up = options.up ?? true;
      if (mtu !== 0 || up) {
        const nl = options.netlink ?? Netlink.open();
        try {
          if (mtu !== 0) nl.linkSetMtu(index, mtu);
          if (up) nl.linkSetUp(index, true);
        } finally {
          if (options.netlink === undefined) nl.close();
        }
      }
      return tun;
    } catch (e) {
      closeFd(fd);
      throw e;
    }
  }

  /**
   * Wraps an fd of a TUN interface opened elsewhere (e.g. by the main
   * thread, for the data-plane Worker). Whether it has a virtio-net header
   * is asked of the kernel (TUNGETIFF); nothing is configured; `name` and
   * `index` are informative. The caller decides who closes the fd: a
   * wrapper that does not own it must never call {@link close}.
   */
  static fromFd(fd: number, name = "", index = 0): Tun {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`bad fd: ${fd}`);
    const ifr = new Uint8Array(IFREQ_SIZE);
    let vnet = false;
    if (libc().ioctl(fd, BigInt(TUNGETIFF), ifr) === 0) {
      vnet = (new DataView(ifr.buffer).getUint16(IFNAMSIZ, HOST_LE) & IFF_VNET_HDR) !== 0;
    }
    return new Tun(fd, name, index, vnet);
  }

  /**
   * Opens one more queue of the multi-queue TUN whose fd is `fd` (opened
   * with `multiQueue`): a new fd attached with TUNSETIFF under the same name
   * and flags (TUNGETIFF), nonblocking. Packets the kernel routes into the
   * interface are then spread over its queues (see the module notes). The
   * queue is detached when its fd is closed, the interface goes with the
   * last one. Throws {@link ErrnoError} (EINVAL: the TUN is not
   * multi-queue; E2BIG: it has {@link MAX_TUN_QUEUES} already).
   */
  static openQueue(fd: number): Tun {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`bad fd: ${fd}`);
    const c = libc();
    const ifr = new Uint8Array(IFREQ_SIZE);
    check(c.ioctl(fd, BigInt(TUNGETIFF), ifr), `TUNGETIFF fd ${fd}`);
    const view = new DataView(ifr.buffer);
    const flags = view.getUint16(IFNAMSIZ, HOST_LE);
    const end = ifr.indexOf(0);
    const name = new TextDecoder().decode(ifr.subarray(0, end < 0 ? IFNAMSIZ : end));
    if ((flags & IFF_MULTI_QUEUE) === 0) {
      throw new ErrnoError(EINVAL, `TUN ${name} is not multi-queue`);
    }
    const q = check(
      c.open(cString("/dev/net/tun"), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0),
      "open /dev/net/tun",
    );
    try {
      // The same flags: TUNSETIFF sets the interface's features from them.
      view.setUint16(IFNAMSIZ, flags & QUEUE_FLAGS, HOST_LE);
      check(c.ioctl(q, BigInt(TUNSETIFF), ifr), `TUNSETIFF ${name} (queue)`);
      return new Tun(q, name, c.if_nametoindex(cString(name)), (flags & IFF_VNET_HDR) !== 0);
    } catch (e) {
      closeFd(q);
      throw e;
    }
  }

  /**
   * Asks the kernel for the offloads `wanted` (TUN_F_* bits; a TUN with
   * {@link vnetHdr} only) and, while it refuses (EINVAL: a kernel without
   * that feature), for fewer ({@link offloadFallbacks}): USO, then TSO-ECN,
   * TSO6, TSO4 and the checksum are dropped one by one. Returns the offloads granted (also in
   * {@link offloads}), 0 when none. `setOffloads(0)` turns them all off.
   * Throws {@link ErrnoError} for another error, or TypeError without a
   * virtio-net header.
   */
  setOffloads(wanted: number): number {
    if (!this.vnetHdr) throw new TypeError(`TUN ${this.name || this.fd} has no virtio-net header`);
    for (const flags of offloadFallbacks(wanted)) {
      if (libc().ioctl_v(this.fd, BigInt(TUNSETOFFLOAD), BigInt(flags)) === 0) {
        this.offloads = flags;
        return flags;
      }
      const e = errno();
      if (e !== EINVAL || flags === 0) throw new ErrnoError(e, `TUNSETOFFLOAD ${this.name}`);
    }
    throw new ErrnoError(EINVAL, `TUNSETOFFLOAD ${this.name}`); // not reached: 0 is always last
  }

  /** Points iovec `k` of the scratch at `addr`, `len` bytes. */
  #iovec(k: number, addr: number, len: number): void {
    setPointer(this.#iv, k * 16, addr);
    setPointer(this.#iv, k * 16 + 8, len);
  }

  /** Points iovec `k` of the scratch at `a + rel`, `len` bytes (allocates nothing). */
  #iovecAt(k: number, a: AddressParts, rel: number, len: number): void {
    setPointerAt(this.#iv, k * 16, a, rel);
    setPointer(this.#iv, k * 16 + 8, len);
  }

  /**
   * Reads one packet into `buf[off, off+len)`. Returns its length, or -1
   * ({@link errno}: EAGAIN when no packet is waiting). With a virtio-net
   * header, the header goes to {@link vnet}.
   */
  read(buf: Uint8Array, off = 0, len = buf.length - off): number {
    if (off < 0 || len < 0 || off + len > buf.length) throw new RangeError("Tun.read: bad range");
    const h = this.vnetHdr ? 1 : 0;
    if (h) this.#iovec(0, this.#base + 48, VNET_HDR_LENGTH);
    this.#iovec(h, addressOf(buf) + off, len);
    const n = libc().readv(this.fd, this.#scratch, 1 + h);
    if (n < 0) this.errno = errno();
    return n < 0 ? n : n - h * VNET_HDR_LENGTH;
  }

  /**
   * Writes the packet `buf[off, off+len)` (an IPv4 or IPv6 packet; behind
   * a zero virtio-net header when the TUN has one). Returns `len`, or -1
   * ({@link errno}).
   */
  write(buf: Uint8Array, off: number, len: number): number {
    if (off < 0 || len < 0 || off + len > buf.length) throw new RangeError("Tun.write: bad range");
    const h = this.vnetHdr ? 1 : 0;
    if (h) this.#iovec(0, this.#base + 64, VNET_HDR_LENGTH);
    this.#iovec(h, addressOf(buf) + off, len);
    const n = libc().writev(this.fd, this.#scratch, 1 + h);
    if (n < 0) this.errno = errno();
    return n < 0 ? n : n - h * VNET_HDR_LENGTH;
  }

  /**
   * Reads one packet (a TUN with {@link vnetHdr}) into slot `i` of `batch`
   * at `base(i) + headroom`, its virtio-net header into {@link vnet}; what
   * does not fit in the slot's capacity (a GSO super-packet) goes on into
   * the batch's spill area at `spillOffset + capacity`, so that copying
   * the slot's part to `spillOffset` makes the whole packet contiguous
   * there. Returns the packet's length (more than `batch.capacity` when it
   * spilled), or -1 ({@link errno}; EAGAIN when none is waiting). Sets the
   * slot's offset and length (cut to the capacity). Allocates nothing.
   */
  readSlot(batch: PacketBatch, i: number): number {
    this.#iovecAt(0, this.#baseParts, 48, VNET_HDR_LENGTH);
    const o = i * batch.slotSize + batch.headroom;
    this.#iovecAt(1, batch.addressParts, o, batch.capacity);
    const spillAt = batch.spillOffset + batch.capacity;
    this.#iovecAt(2, batch.addressParts, spillAt, Math.max(0, batch.bytes.length - spillAt));
    const n = libc().readv_p(this.fd, this.#iovPtr, 3);
    if (n < 0) {
      this.errno = errno();
      return -1;
    }
    const len = n - VNET_HDR_LENGTH;
    batch.offset[i] = o;
    batch.length[i] = len < batch.capacity ? len : batch.capacity;
    batch.truncated[i] = 0;
    return len;
  }

  /**
   * Writes one packet gathered from `count` iovecs at the start of `iov`
   * (`struct iovec` each: the virtio-net header first, with a TUN that has
   * one). Returns the bytes written, or -1 ({@link errno}).
   */
  writeIovecs(iov: Uint8Array, count: number): number {
    const n = libc().writev(this.fd, iov, count);
    if (n < 0) this.errno = errno();
    return n;
  }

  /**
   * Reads packets into slots `start, start+1, ...` (at `base(i) +
   * headroom`) until none is waiting or `max` are read. Sets `offset` and
   * `length` of each slot read and `batch.count = start + n`; returns n.
   * A read error other than EAGAIN ends the batch early, with
   * {@link errno} set.
   */
  readBatch(batch: PacketBatch, start = 0, max = batch.slots - start): number {
    if (start < 0 || start + max > batch.slots) throw new RangeError("readBatch: bad range");
    const c = libc();
    const fd = this.fd;
    let i = start;
    const end = start + max;
    const vnet = this.vnetHdr;
    if (vnet) this.#iovecAt(0, this.#baseParts, 48, VNET_HDR_LENGTH);
    while (i < end) {
      let n: number;
      if (vnet) {
        this.#iovecAt(1, batch.addressParts, i * batch.slotSize + batch.headroom, batch.capacity);
        n = c.readv_p(fd, this.#iovPtr, 2);
        if (n >= 0) n -= VNET_HDR_LENGTH;
      } else {
        batch.prepareRead(i);
        n = c.readv_p(fd, batch.iovPointer(i), 1);
      }
      if (n < 0) {
        this.errno = errno();
        break;
      }
      batch.offset[i] = i * batch.slotSize + batch.headroom;
      batch.length[i] = n;
      batch.truncated[i] = 0;
      i++;
    }
    batch.count = i;
    return i - start;
  }

  /**
   * Writes the packets of slots `[start, start+count)` (default: up to
   * `batch.count`), one write each, skipping slots of length 0 (dropped by
   * the caller) and, when `tags` is given, slots whose tag is not `tag`
   * (several TUNs sharing one batch). Returns how many were written;
   * failures are counted in {@link writeErrors} with {@link errno} set.
   */
  writeBatch(
    batch: PacketBatch,
    start = 0,
    count = batch.count - start,
    tags?: Uint8Array,
    tag = 0,
  ): number {
    if (count <= 0) return 0;
    if (start < 0 || start + count > batch.slots) throw new RangeError("writeBatch: bad range");
    const c = libc();
    const fd = this.fd;
    let ok = 0;
    const vnet = this.vnetHdr;
    if (vnet) this.#iovecAt(0, this.#baseParts, 64, VNET_HDR_LENGTH);
    for (let i = start; i < start + count; i++) {
      if (batch.length[i]! <= 0) continue; // dropped by the caller
      if (tags !== undefined && tags[i] !== tag) continue; // for another TUN
      let r: number;
      if (vnet) {
        this.#iovecAt(1, batch.addressParts, batch.offset[i]!, batch.length[i]!);
        r = c.writev_p(fd, this.#iovPtr, 2);
      } else {
        batch.prepareWrite(i);
        r = c.writev_p(fd, batch.iovPointer(i), 1);
      }
      if (r < 0) {
        this.errno = errno();
        this.writeErrors++;
      } else {
        ok++;
      }
    }
    return ok;
  }

  /** Closes the fd, which deletes the interface with its addresses and routes (idempotent). */
  close(): void {
    if (this.fd >= 0) {
      closeFd(this.fd);
      this.fd = -1;
    }
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
