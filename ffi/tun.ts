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
 * @module
 */

import {
  addressOf,
  check,
  closeFd,
  cString,
  errno,
  ErrnoError,
  HOST_LE,
  IFF_NO_PI,
  IFF_TUN,
  IFNAMSIZ,
  libc,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  setPointer,
  TUNSETIFF,
} from "./libc.ts";
import type { PacketBatch } from "./batch.ts";
import { Netlink } from "./netlink.ts";

/** Default MTU of the TUN (oor.toml default). */
export const DEFAULT_TUN_MTU = 1440;

/** Options of {@link Tun.open}. */
export interface TunOptions {
  /** MTU to set; default 1440. 0 leaves the kernel default (1500). */
  readonly mtu?: number;
  /** Bring the link up after creating it; default true. */
  readonly up?: boolean;
  /** Netlink socket to use for MTU and link state; default a temporary one. */
  readonly netlink?: Netlink;
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
  /** One struct iovec for read/write of caller buffers. */
  readonly #iov = new Uint8Array(new ArrayBuffer(16));
  readonly #iv = new DataView(this.#iov.buffer);

  private constructor(fd: number, name: string, index: number) {
    this.fd = fd;
    this.name = name;
    this.index = index;
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
      new DataView(ifr.buffer).setUint16(IFNAMSIZ, IFF_TUN | IFF_NO_PI, HOST_LE);
      check(c.ioctl(fd, BigInt(TUNSETIFF), ifr), `TUNSETIFF ${name}`);
      const end = ifr.indexOf(0);
      const actual = new TextDecoder().decode(ifr.subarray(0, end < 0 ? IFNAMSIZ : end));
      const index = c.if_nametoindex(cString(actual));
      if (index === 0) throw ErrnoError.fromErrno(`if_nametoindex ${actual}`);
      const tun = new Tun(fd, actual, index);
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
   * thread, for the data-plane Worker). Nothing is checked or configured;
   * `name` and `index` are informative. The caller decides who closes the
   * fd: a wrapper that does not own it must never call {@link close}.
   */
  static fromFd(fd: number, name = "", index = 0): Tun {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`bad fd: ${fd}`);
    return new Tun(fd, name, index);
  }

  /**
   * Reads one packet into `buf[off, off+len)`. Returns its length, or -1
   * ({@link errno}: EAGAIN when no packet is waiting).
   */
  read(buf: Uint8Array, off = 0, len = buf.length - off): number {
    if (off < 0 || len < 0 || off + len > buf.length) throw new RangeError("Tun.read: bad range");
    setPointer(this.#iv, 0, addressOf(buf) + off);
    setPointer(this.#iv, 8, len);
    const n = libc().readv(this.fd, this.#iov, 1);
    if (n < 0) this.errno = errno();
    return n;
  }

  /**
   * Writes the packet `buf[off, off+len)` (an IPv4 or IPv6 packet).
   * Returns `len`, or -1 ({@link errno}).
   */
  write(buf: Uint8Array, off: number, len: number): number {
    if (off < 0 || len < 0 || off + len > buf.length) throw new RangeError("Tun.write: bad range");
    setPointer(this.#iv, 0, addressOf(buf) + off);
    setPointer(this.#iv, 8, len);
    const n = libc().writev(this.fd, this.#iov, 1);
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
    while (i < end) {
      batch.prepareRead(i);
      const n = c.readv_p(fd, batch.iovPointer(i), 1);
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
    for (let i = start; i < start + count; i++) {
      if (batch.length[i]! <= 0) continue; // dropped by the caller
      if (tags !== undefined && tags[i] !== tag) continue; // for another TUN
      batch.prepareWrite(i);
      if (c.writev_p(fd, batch.iovPointer(i), 1) < 0) {
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
