/**
 * Nonblocking UDP sockets driven by synchronous libc calls, for the data
 * plane: `recvmmsg`/`sendmmsg` over a {@link PacketBatch} (zero allocations
 * per call) and single-datagram `recvFrom`/`sendTo` over preallocated
 * msghdr structures, plus {@link PollSet} to wait on several fds.
 *
 * Return conventions on the data path (nothing throws per packet):
 * - `recvmmsg`/`sendmmsg` return the number of datagrams moved, `0` when
 *   the call would block (EAGAIN), `-1` on another error, with the errno in
 *   {@link UdpSocket.errno}. For `sendmmsg`, `-1` means the first datagram
 *   of the range failed (e.g. ENETUNREACH, EMSGSIZE, EPERM from a
 *   firewall): skip it and call again for the rest.
 * - `recvFrom`/`sendTo` return the byte count or `-1`, with the errno in
 *   {@link UdpSocket.errno} (EAGAIN when it would block).
 *
 * Set-up calls (`open`, `connect`, buffer sizes) throw {@link ErrnoError}.
 *
 * Buffers passed in stay referenced by the caller for the duration of the
 * call, which is synchronous; raw addresses are taken with
 * {@link addressOf} and never kept past the call except for the batch's
 * own memory.
 *
 * @module
 */

import {
  addressOf,
  AF_INET,
  AF_INET6,
  check,
  closeFd,
  decodeSockaddr,
  EAGAIN,
  EPERM,
  errno,
  ErrnoError,
  getIntOption,
  HOST_LE,
  IPPROTO_IPV6,
  IPPROTO_RAW,
  IPV6_V6ONLY,
  libc,
  MSG_DONTWAIT,
  setIntOption,
  setPointer,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOCKADDR_IN6_SIZE,
  SOCKADDR_IN_SIZE,
  type SocketAddress,
  SOL_SOCKET,
  SOL_UDP,
  UDP_GRO,
  UDP_SEGMENT,
} from "./libc.ts";
import type { PacketBatch } from "./batch.ts";
import { ipv4ToBytes, ipv6ToBytes, isIPv4 } from "../wire/ip_text.ts";

export { type BatchOptions, PacketBatch } from "./batch.ts";
export { poll, PollSet } from "./poll.ts";

/** Options of {@link UdpSocket.open}. */
export interface UdpOptions {
  /** `"ipv4"` or `"ipv6"`; default: the family of `address`, else IPv4. */
  readonly family?: "ipv4" | "ipv6";
  /** Local address to bind; default the wildcard (`0.0.0.0` or `::`). */
  readonly address?: string;
  /** Local port; default 0 (the kernel picks one). */
  readonly port?: number;
  /** SO_RCVBUF in bytes; SO_RCVBUFFORCE is tried first (it ignores rmem_max, needs CAP_NET_ADMIN). */
  readonly recvBuffer?: number;
  /** SO_SNDBUF in bytes; SO_SNDBUFFORCE is tried first. */
  readonly sendBuffer?: number;
  /** SO_REUSEADDR. */
  readonly reuseAddr?: boolean;
  /** SO_REUSEPORT (several sockets, e.g. one per Worker, on one port). */
  readonly reusePort?: boolean;
  /** IPV6_V6ONLY for IPv6 sockets; default true (no v4-mapped peers). */
  readonly v6only?: boolean;
}

/** Most segments one UDP GSO send may carry (UDP_MAX_SEGMENTS: 64 before Linux 6.9, 128 since). */
export const UDP_GSO_MAX_SEGMENTS = 64;
/** Most UDP payload bytes of one GSO send over IPv4 (65,535 less the IPv4 and UDP headers). */
const GSO_MAX_BYTES_V4 = 65535 - 20 - 8;
/** ... over IPv6 (the payload length, 65,535, less the UDP header). */
const GSO_MAX_BYTES_V6 = 65535 - 8;

/** SOL_SOCKET: a classic BPF program choosing the socket of a reuse-port group. */
const SO_ATTACH_REUSEPORT_CBPF = 51;

/** struct msghdr offsets (LP64 Linux). */
const MH_NAME = 0;
const MH_NAMELEN = 8;
const MH_IOV = 16;
const MH_IOVLEN = 24;
/** Layout of a MsgScratch: msghdr, iovec, sockaddr. */
const S_MSGHDR = 0;
const S_IOV = 56;
const S_ADDR = 72;
const S_SIZE = 104;

/** A msghdr with one iovec and a sockaddr, in one ArrayBuffer, for single-datagram calls. */
class MsgScratch {
  readonly bytes = new Uint8Array(new ArrayBuffer(S_SIZE));
  readonly view = new DataView(this.bytes.buffer);
  constructor() {
    const base = addressOf(this.bytes);
    setPointer(this.view, S_MSGHDR + MH_NAME, base + S_ADDR);
    setPointer(this.view, S_MSGHDR + MH_IOV, base + S_IOV);
    setPointer(this.view, S_MSGHDR + MH_IOVLEN, 1);
  }
}

/** A nonblocking AF_INET or AF_INET6 datagram socket. */
export class UdpSocket {
  /** The file descriptor (-1 once closed). */
  fd: number;
  /** The address family. */
  readonly family: "ipv4" | "ipv6";
  /** errno of the last failed data-path call (EAGAIN when it would have blocked). */
  errno = 0;
  /** After {@link sendGso} returned -1: how many slots the failed message carried. */
  gsoFailedRun = 0;
  readonly #af: number;
  #connected = false;
  /** For recvFrom: keeps the last sender. */
  readonly #rx = new MsgScratch();
  /** For sendTo and set-up calls. */
  readonly #tx = new MsgScratch();

  private constructor(fd: number, family: "ipv4" | "ipv6") {
    this.fd = fd;
    this.family = family;
    this.#af = family === "ipv4" ? AF_INET : AF_INET6;
  }

  /** Opens, configures and binds a socket. Throws {@link ErrnoError} or TypeError. */
  static open(options: UdpOptions = {}): UdpSocket {
    const family = options.family ??
      (options.address !== undefined && !isIPv4(options.address) ? "ipv6" : "ipv4");
    const address = options.address ?? (family === "ipv4" ? "0.0.0.0" : "::");
    const port = options.port ?? 0;
    const c = libc();
    const af = family === "ipv4" ? AF_INET : AF_INET6;
    const fd = check(
      c.socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
      `socket ${family}`,
    );
    const s = new UdpSocket(fd, family);
    try {
      if (family === "ipv6") {
        setIntOption(
          fd,
          IPPROTO_IPV6,
          IPV6_V6ONLY,
          options.v6only === false ? 0 : 1,
          "IPV6_V6ONLY",
        );
      }
      if (options.reuseAddr) setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
      if (options.reusePort) setIntOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
      if (options.recvBuffer !== undefined) s.setRecvBuffer(options.recvBuffer);
      if (options.sendBuffer !== undefined) s.setSendBuffer(options.sendBuffer);
      const sa = s.#encodeAddress(address, port, "bind");
      check(c.bind(fd, sa, sa.length), `bind ${formatEndpoint(address, port)}`);
      return s;
    } catch (e) {
      s.close();
      throw e;
    }
  }

  /**
   * Opens a send-only raw IPv4 socket (SOCK_RAW, IPPROTO_RAW: the kernel
   * receives nothing on it): every datagram sent carries its own IPv4
   * header, in which the kernel fills in the checksum, the total length
   * and, when they are zero, the source address and the identification.
   * The slot peers of a {@link sendmmsg} give the destination (the port is
   * ignored). An RTR uses it to send data from its control port to xTRs
   * behind a NAT. Needs CAP_NET_RAW. Throws {@link ErrnoError}.
   */
  static openRawIpv4(sendBuffer?: number): UdpSocket {
    const fd = check(
      libc().socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW),
      "socket raw ipv4",
    );
    const s = new UdpSocket(fd, "ipv4");
    try {
      if (sendBuffer !== undefined) s.setSendBuffer(sendBuffer);
      return s;
    } catch (e) {
      s.close();
      throw e;
    }
  }

  /**
   * Wraps a UDP socket fd opened elsewhere (e.g. by the main thread, for
   * the data-plane Worker); the family is read with getsockname. It should
   * be nonblocking (every socket {@link open} makes is). The caller decides
   * who closes the fd: a wrapper that does not own it must never call
   * {@link close}. Throws {@link ErrnoError} (EBADF, ENOTSOCK) or TypeError
   * for a socket that is not AF_INET/AF_INET6.
   */
  static fromFd(fd: number): UdpSocket {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`bad fd: ${fd}`);
    const sa = new Uint8Array(SOCKADDR_IN6_SIZE);
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, sa.length, HOST_LE);
    check(libc().getsockname(fd, sa, len), `getsockname fd ${fd}`);
    const af = new DataView(sa.buffer).getUint16(0, HOST_LE);
    if (af !== AF_INET && af !== AF_INET6) throw new TypeError(`fd ${fd} is not an IP socket`);
    return new UdpSocket(fd, af === AF_INET ? "ipv4" : "ipv6");
  }

  /** The bound address and port (getsockname). */
  localAddress(): SocketAddress {
    const sa = new Uint8Array(SOCKADDR_IN6_SIZE);
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, sa.length, HOST_LE);
    check(libc().getsockname(this.fd, sa, len), "getsockname");
    const a = decodeSockaddr(sa);
    if (a === undefined) throw new Error("getsockname: unexpected address family");
    return a;
  }

  /**
   * Connects the socket to one peer: the kernel then only delivers its
   * datagrams, and sendmmsg sends every slot to it (slot peers ignored).
   */
  connect(address: string, port: number): void {
    const sa = this.#encodeAddress(address, port, "connect");
    check(libc().connect(this.fd, sa, sa.length), `connect ${formatEndpoint(address, port)}`);
    this.#connected = true;
  }

  /**
   * Attaches a classic BPF program (`filter`: `struct sock_filter` entries,
   * 8 bytes each) to this socket's SO_REUSEPORT group: for each datagram the
   * kernel runs it on the UDP payload and delivers to the group's socket at
   * the index it returns (in bind order; an index out of range falls back to
   * the kernel's hash). Throws {@link ErrnoError}.
   */
  attachReusePortFilter(filter: Uint8Array): void {
    if (filter.length === 0 || filter.length % 8 !== 0) {
      throw new RangeError(`a BPF program is 8 bytes per instruction, not ${filter.length}`);
    }
    // struct sock_fprog: unsigned short len; (padding); struct sock_filter *filter.
    const prog = new Uint8Array(16);
    const v = new DataView(prog.buffer);
    v.setUint16(0, filter.length / 8, HOST_LE);
    setPointer(v, 8, addressOf(filter));
    check(
      libc().setsockopt(this.fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, prog, prog.length),
      "setsockopt SO_ATTACH_REUSEPORT_CBPF",
    );
  }

  /** Sets the receive buffer (forced past rmem_max when allowed). Returns the size granted. */
  setRecvBuffer(bytes: number): number {
    return this.#setBuffer(SO_RCVBUFFORCE, SO_RCVBUF, bytes, "SO_RCVBUF");
  }

  /** Sets the send buffer (forced past wmem_max when allowed). Returns the size granted. */
  setSendBuffer(bytes: number): number {
    return this.#setBuffer(SO_SNDBUFFORCE, SO_SNDBUF, bytes, "SO_SNDBUF");
  }

  /** The receive buffer size the kernel reports (twice what was asked: it counts overhead). */
  recvBufferSize(): number {
    return getIntOption(this.fd, SOL_SOCKET, SO_RCVBUF, "getsockopt SO_RCVBUF");
  }

  /** The send buffer size the kernel reports. */
  sendBufferSize(): number {
    return getIntOption(this.fd, SOL_SOCKET, SO_SNDBUF, "getsockopt SO_SNDBUF");
  }

  #setBuffer(force: number, plain: number, bytes: number, what: string): number {
    try {
      setIntOption(this.fd, SOL_SOCKET, force, bytes, `setsockopt ${what}FORCE`);
    } catch (e) {
      if (!(e instanceof ErrnoError && e.errno === EPERM)) throw e;
      setIntOption(this.fd, SOL_SOCKET, plain, bytes, `setsockopt ${what}`);
    }
    return getIntOption(this.fd, SOL_SOCKET, plain, `getsockopt ${what}`);
  }

  /**
   * Turns UDP GRO on (`UDP_GRO`, Linux 5.0): the kernel may then hand over
   * several datagrams of one sender, of equal size but the last, as one
   * slot whose {@link PacketBatch.gsoSize} says the size; and a UDP GSO
   * packet arriving whole (over veth, loopback) stays whole. Throws
   * {@link ErrnoError} (ENOPROTOOPT on older kernels).
   */
  enableGro(): void {
    setIntOption(this.fd, SOL_UDP, UDP_GRO, 1, "setsockopt UDP_GRO");
  }

  /** Whether UDP GRO is on (getsockopt UDP_GRO; false when the kernel does not know it). */
  groEnabled(): boolean {
    try {
      return getIntOption(this.fd, SOL_UDP, UDP_GRO, "getsockopt UDP_GRO") !== 0;
    } catch {
      return false;
    }
  }

  /** Whether the kernel takes UDP GSO sends (`UDP_SEGMENT`, Linux 4.18) on this socket. */
  gsoAvailable(): boolean {
    try {
      getIntOption(this.fd, SOL_UDP, UDP_SEGMENT, "getsockopt UDP_SEGMENT");
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Sends slots `[start, start+count)` of `batch` like {@link sendmmsg},
   * but each run of consecutive slots to one peer with equal lengths (the
   * last may be shorter) as one UDP GSO send ({@link PacketBatch.prepareGso},
   * at most `maxSegments` slots a run): the kernel cuts it back into one
   * datagram per slot. Returns how many slots were sent (whole runs, a
   * prefix of the range), 0 when the socket buffer is full (EAGAIN), -1
   * when the first run failed ({@link errno}; {@link gsoFailedRun} says how
   * many slots it had: send those with {@link sendmmsg} instead, EINVAL and
   * EIO mean the path takes no GSO).
   */
  sendGso(
    batch: PacketBatch,
    start = 0,
    count = batch.count - start,
    maxSegments = UDP_GSO_MAX_SEGMENTS,
  ): number {
    if (count <= 0) return 0;
    if (start < 0 || start + count > batch.slots) {
      throw new RangeError(`sendGso: slots [${start}, ${start + count}) outside the batch`);
    }
    const max = this.#af === AF_INET ? GSO_MAX_BYTES_V4 : GSO_MAX_BYTES_V6;
    const m = batch.prepareGso(start, count, !this.#connected, maxSegments, max);
    const n = libc().sendmmsg(this.fd, batch.gsoPointer(), m, MSG_DONTWAIT);
    if (n < 0) {
      const e = errno();
      this.errno = e;
      this.gsoFailedRun = batch.gsoRun[0]!;
      return e === EAGAIN ? 0 : -1;
    }
    let slots = 0;
    for (let k = 0; k < n; k++) slots += batch.gsoRun[k]!;
    return slots;
  }

  /**
   * Receives up to `max` datagrams into slots `[start, start+max)` of
   * `batch` without blocking. Sets `offset`, `length`, `truncated` and the
   * peer of each slot filled, and `batch.count = start + n`. Returns n,
   * 0 when nothing is waiting, -1 on another error ({@link errno}).
   */
  recvmmsg(batch: PacketBatch, start = 0, max = batch.slots - start): number {
    if (start < 0 || max < 1 || start + max > batch.slots) {
      throw new RangeError(`recvmmsg: slots [${start}, ${start + max}) outside the batch`);
    }
    batch.prepareRecv(start, max);
    const n = libc().recvmmsg(this.fd, batch.mmsgPointer(start), max, MSG_DONTWAIT, null);
    if (n < 0) {
      const e = errno();
      this.errno = e;
      batch.count = start;
      return e === EAGAIN ? 0 : -1;
    }
    batch.completeRecv(start, n);
    batch.count = start + n;
    return n;
  }

  /**
   * Sends slots `[start, start+count)` of `batch` (default: from `start`
   * to `batch.count`), each to its peer (or to the connected peer).
   * Returns how many were sent (a prefix of the range), 0 when the socket
   * buffer is full (EAGAIN), -1 when the first one failed with another
   * error ({@link errno}; skip that slot and go on).
   */
  sendmmsg(batch: PacketBatch, start = 0, count = batch.count - start): number {
    if (count <= 0) return 0;
    if (start < 0 || start + count > batch.slots) {
      throw new RangeError(`sendmmsg: slots [${start}, ${start + count}) outside the batch`);
    }
    batch.prepareSend(start, count, !this.#connected);
    const n = libc().sendmmsg(this.fd, batch.mmsgPointer(start), count, MSG_DONTWAIT);
    if (n < 0) {
      const e = errno();
      this.errno = e;
      return e === EAGAIN ? 0 : -1;
    }
    return n;
  }

  /**
   * Receives one datagram into `buf[off, off+len)`. Returns its length
   * (cut to `len`), or -1 ({@link errno}: EAGAIN when none is waiting).
   * The sender is then available from {@link fromFamily},
   * {@link fromAddr4}, {@link fromPort} and {@link from}.
   */
  recvFrom(buf: Uint8Array, off = 0, len = buf.length - off): number {
    if (off < 0 || len < 0 || off + len > buf.length) throw new RangeError("recvFrom: bad range");
    const v = this.#rx.view;
    setPointer(v, S_IOV, addressOf(buf) + off);
    setPointer(v, S_IOV + 8, len);
    v.setUint32(S_MSGHDR + MH_NAMELEN, SOCKADDR_IN6_SIZE, HOST_LE);
    const n = libc().recvmsg(this.fd, this.#rx.bytes, MSG_DONTWAIT);
    if (n < 0) this.errno = errno();
    return n;
  }

  /** Family of the last {@link recvFrom} sender: 4 or 6 (0 if none). */
  fromFamily(): 0 | 4 | 6 {
    const f = this.#rx.view.getUint16(S_ADDR, HOST_LE);
    return f === AF_INET ? 4 : f === AF_INET6 ? 6 : 0;
  }

  /** IPv4 address (u32) of the last {@link recvFrom} sender. */
  fromAddr4(): number {
    return this.#rx.view.getUint32(S_ADDR + 4, false);
  }

  /** Port of the last {@link recvFrom} sender. */
  fromPort(): number {
    return this.#rx.view.getUint16(S_ADDR + 2, false);
  }

  /** The last {@link recvFrom} sender as text (allocates). */
  from(): SocketAddress | undefined {
    return decodeSockaddr(this.#rx.bytes, S_ADDR);
  }

  /**
   * Sends `buf[off, off+len)` to `address` (text, or an IPv4 u32) and
   * `port`. Returns the bytes sent or -1 ({@link errno}). Allocates
   * nothing. Throws TypeError for address text that does not parse.
   */
  sendTo(
    buf: Uint8Array,
    off: number,
    len: number,
    address: string | number,
    port: number,
  ): number {
    if (off < 0 || len < 0 || off + len > buf.length) throw new RangeError("sendTo: bad range");
    const v = this.#tx.view;
    const namelen = this.#writeAddress(address, port);
    setPointer(v, S_IOV, addressOf(buf) + off);
    setPointer(v, S_IOV + 8, len);
    v.setUint32(S_MSGHDR + MH_NAMELEN, namelen, HOST_LE);
    const n = libc().sendmsg(this.fd, this.#tx.bytes, MSG_DONTWAIT);
    if (n < 0) this.errno = errno();
    return n;
  }

  /** Writes a sockaddr for address/port into the scratch area; returns its length. */
  #writeAddress(address: string | number, port: number): number {
    const v = this.#tx.view;
    if (typeof address === "number" || isIPv4(address)) {
      v.setUint16(S_ADDR, AF_INET, HOST_LE);
      v.setUint16(S_ADDR + 2, port, false);
      if (typeof address === "number") v.setUint32(S_ADDR + 4, address, false);
      else ipv4ToBytes(address, this.#tx.bytes, S_ADDR + 4);
      v.setUint32(S_ADDR + 8, 0, HOST_LE);
      v.setUint32(S_ADDR + 12, 0, HOST_LE);
      return SOCKADDR_IN_SIZE;
    }
    v.setUint16(S_ADDR, AF_INET6, HOST_LE);
    v.setUint16(S_ADDR + 2, port, false);
    v.setUint32(S_ADDR + 4, 0, false);
    if (!ipv6ToBytes(address, this.#tx.bytes, S_ADDR + 8)) {
      throw new TypeError(`not an IP address: ${address}`);
    }
    v.setUint32(S_ADDR + 24, 0, HOST_LE);
    return SOCKADDR_IN6_SIZE;
  }

  /** A fresh sockaddr for set-up calls, in this socket's family (v4-mapped for IPv6 sockets). */
  #encodeAddress(address: string, port: number, what: string): Uint8Array {
    if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
      throw new RangeError(`${what}: port out of range: ${port}`);
    }
    let text = address;
    if (this.#af === AF_INET6 && isIPv4(address)) text = `::ffff:${address}`;
    if (this.#af === AF_INET && !isIPv4(address)) {
      throw new TypeError(`${what}: not an IPv4 address: ${address}`);
    }
    const len = this.#writeAddress(text, port);
    return this.#tx.bytes.slice(S_ADDR, S_ADDR + len);
  }

  /** Closes the socket (idempotent). */
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

function formatEndpoint(address: string, port: number): string {
  return isIPv4(address) ? `${address}:${port}` : `[${address}]:${port}`;
}
