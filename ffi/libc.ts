/**
 * The one libc symbol table of the program, opened lazily through
 * `Deno.dlopen("libc.so.6")`, with errno, {@link ErrnoError}, the Linux
 * constants the rest of ffi/ uses and `struct sockaddr_in`/`sockaddr_in6`
 * helpers. Linux on 64-bit little- or big-endian hosts only (x86_64, arm64).
 *
 * Every symbol is synchronous (`nonblocking: false`, the default): a call
 * runs on the calling JS thread and errno can be read right after it. Calls
 * that may block (`poll` with a timeout, blocking `recv` on a netlink
 * socket) are meant for the data-plane Worker, or are bounded (netlink uses
 * `SO_RCVTIMEO`); see DESIGN.md, "Engine and data plane".
 *
 * Types are chosen for V8 fast calls: 64-bit integer parameters are only
 * fast when given a `bigint`, so hot calls take `pointer` or `buffer`
 * arguments and precomputed `bigint` lengths; `ssize_t` results of
 * `read`/`write`/`recvfrom`/`sendto`/`readv`/`writev` are declared `i32`
 * (the low half of the return register: exact for every length below 2 GiB
 * and for -1), which avoids a `bigint` allocation per call.
 *
 * Memory handed to the kernel: `buffer` arguments and raw addresses from
 * {@link addressOf} must stay referenced until the call returns. All calls
 * here are synchronous, so holding the typed array in a local or a field
 * across the call is enough. Never transfer (postMessage with transfer,
 * `ArrayBuffer.prototype.transfer`) an ArrayBuffer whose address was taken:
 * structures that store its address would then point at freed memory.
 *
 * @module
 */

import { ipv4ToBytes, ipv6FromBytes, ipv6ToBytes, isIPv4 } from "../wire/ip_text.ts";

/** The libc symbols, all synchronous. Aliases (`*_p`) take raw pointers. */
const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  readv: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  writev: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  readv_p: { name: "readv", parameters: ["i32", "pointer", "i32"], result: "i32" },
  writev_p: { name: "writev", parameters: ["i32", "pointer", "i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  /** ioctl whose argument is a value, not a pointer (TUNSETOFFLOAD). */
  ioctl_v: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "i32" },
  recvfrom: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"], result: "i32" },
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  sendmmsg: { parameters: ["i32", "pointer", "u32", "i32"], result: "i32" },
  recvmmsg: { parameters: ["i32", "pointer", "u32", "i32", "pointer"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  __xpg_strerror_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  if_indextoname: { parameters: ["u32", "buffer"], result: "pointer" },
  getpid: { parameters: [], result: "i32" },
  sched_setaffinity: { parameters: ["i32", "usize", "buffer"], result: "i32" },
  sched_getaffinity: { parameters: ["i32", "usize", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The type of the libc symbol table. */
export type LibcSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

/**
 * The libc symbols, opening libc on first use (once per isolate, so once
 * per Worker). Needs `--allow-ffi`.
 */
export function libc(): LibcSymbols {
  if (lib === undefined) {
    lib = Deno.dlopen("libc.so.6", SYMBOLS);
    // Locate this thread's errno now, so that reading it later costs no call.
    const p = lib.symbols.__errno_location();
    if (p === null) throw new Error("__errno_location() returned NULL");
    errnoView = new Deno.UnsafePointerView(p);
  }
  return lib.symbols;
}

// ---------------------------------------------------------------------------
// Host layout.

/** True on little-endian hosts; pass it to every DataView call on a kernel struct. */
export const HOST_LE: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------
// Constants (Linux, x86_64 and arm64 share these values).

/** Address families. */
export const AF_UNSPEC = 0;
/** IPv4. */
export const AF_INET = 2;
/** IPv6. */
export const AF_INET6 = 10;
/** Netlink. */
export const AF_NETLINK = 16;
/** Datagram socket. */
export const SOCK_DGRAM = 2;
/** Raw socket (netlink uses it). */
export const SOCK_RAW = 3;
/** `socket()` type flag: O_NONBLOCK on the new fd. */
export const SOCK_NONBLOCK = 0x800;
/** `socket()` type flag: close on exec. */
export const SOCK_CLOEXEC = 0x80000;
/** Netlink protocol of rtnetlink. */
export const NETLINK_ROUTE = 0;
/** `open()` read-write. */
export const O_RDWR = 2;
/** `open()` nonblocking. */
export const O_NONBLOCK = 0x800;
/** `open()` close on exec. */
export const O_CLOEXEC = 0x80000;
/** fcntl get file status flags. */
export const F_GETFL = 3;
/** fcntl set file status flags. */
export const F_SETFL = 4;
/** fcntl get fd flags. */
export const F_GETFD = 1;
/** fd flag close-on-exec. */
export const FD_CLOEXEC = 1;
/** poll: data to read. */
export const POLLIN = 0x1;
/** poll: urgent data. */
export const POLLPRI = 0x2;
/** poll: writable. */
export const POLLOUT = 0x4;
/** poll: error condition (revents only). */
export const POLLERR = 0x8;
/** poll: hang up (revents only). */
export const POLLHUP = 0x10;
/** poll: fd not open (revents only). */
export const POLLNVAL = 0x20;
/** recv flag: peek. */
export const MSG_PEEK = 0x2;
/** msg_flags: control data truncated. */
export const MSG_CTRUNC = 0x8;
/** recv flag / msg_flags: datagram truncated. */
export const MSG_TRUNC = 0x20;
/** send/recv flag: do not block. */
export const MSG_DONTWAIT = 0x40;
/** Socket-level options. */
export const SOL_SOCKET = 1;
/** SOL_SOCKET: allow reuse of local addresses. */
export const SO_REUSEADDR = 2;
/** SOL_SOCKET: send buffer size (capped by net.core.wmem_max). */
export const SO_SNDBUF = 7;
/** SOL_SOCKET: receive buffer size (capped by net.core.rmem_max). */
export const SO_RCVBUF = 8;
/** SOL_SOCKET: allow several sockets on one port. */
export const SO_REUSEPORT = 15;
/** SOL_SOCKET: receive timeout (struct timeval, 64-bit). */
export const SO_RCVTIMEO = 20;
/** SOL_SOCKET: send buffer size ignoring wmem_max (CAP_NET_ADMIN). */
export const SO_SNDBUFFORCE = 32;
/** SOL_SOCKET: receive buffer size ignoring rmem_max (CAP_NET_ADMIN). */
export const SO_RCVBUFFORCE = 33;
/** IPv4 protocol level. */
export const IPPROTO_IP = 0;
/** UDP protocol. */
export const IPPROTO_UDP = 17;
/** UDP socket option level (the protocol number). */
export const SOL_UDP = 17;
/** SOL_UDP: segment size of UDP GSO sends (option, or a `cmsg` per sendmsg: u16). */
export const UDP_SEGMENT = 103;
/** SOL_UDP: receive coalesced datagrams (UDP GRO); each comes with a `cmsg` (int) of its segment size. */
export const UDP_GRO = 104;
/** IPv6 protocol level. */
export const IPPROTO_IPV6 = 41;
/** IPPROTO_RAW: a send-only raw socket whose datagrams carry their own IPv4 header. */
export const IPPROTO_RAW = 255;
/** IPPROTO_IPV6: the socket speaks IPv6 only (no v4-mapped addresses). */
export const IPV6_V6ONLY = 26;
/** IPPROTO_IP: path MTU discovery mode. */
export const IP_MTU_DISCOVER = 10;
/** IP_MTU_DISCOVER value: never set DF. */
export const IP_PMTUDISC_DONT = 0;
/** Netlink socket option level. */
export const SOL_NETLINK = 270;
/** SOL_NETLINK: acks carry no copy of the request. */
export const NETLINK_CAP_ACK = 10;
/** SOL_NETLINK: extended acks (error messages). */
export const NETLINK_EXT_ACK = 11;
/** `ioctl` on /dev/net/tun: attach to (or create) an interface. */
export const TUNSETIFF = 0x400454ca;
/** TUNSETIFF flag: layer-3 device. */
export const IFF_TUN = 0x0001;
/** TUNSETIFF flag: no packet-information prefix. */
export const IFF_NO_PI = 0x1000;
/** TUNSETIFF flag: every packet carries a `struct virtio_net_hdr` (offloads). */
export const IFF_VNET_HDR = 0x4000;
/** `ioctl` on a TUN fd: the TUNSETIFF flags of the interface (struct ifreq). */
export const TUNGETIFF = 0x800454d2;
/** `ioctl` on a TUN fd: the offloads userspace takes (TUN_F_*, by value). */
export const TUNSETOFFLOAD = 0x400454d0;
/** TUNSETOFFLOAD: packets may come with a partial checksum (NEEDS_CSUM). */
export const TUN_F_CSUM = 0x01;
/** TUNSETOFFLOAD: TCP over IPv4 super-packets (TSO). */
export const TUN_F_TSO4 = 0x02;
/** TUNSETOFFLOAD: TCP over IPv6 super-packets. */
export const TUN_F_TSO6 = 0x04;
/** TUNSETOFFLOAD: TSO of streams using ECN (CWR on the first segment only). */
export const TUN_F_TSO_ECN = 0x08;
/** TUNSETOFFLOAD: UDP over IPv4 segmentation (USO, Linux 6.2). */
export const TUN_F_USO4 = 0x20;
/** TUNSETOFFLOAD: UDP over IPv6 segmentation (USO, Linux 6.2; only with USO4). */
export const TUN_F_USO6 = 0x40;
/** Interface flag: administratively up. */
export const IFF_UP = 0x1;
/** Interface flag: operationally up. */
export const IFF_RUNNING = 0x40;
/** Interface flag: carrier (driver signals L1 up). */
export const IFF_LOWER_UP = 0x10000;
/** Longest interface name, with the terminating NUL (IFNAMSIZ). */
export const IFNAMSIZ = 16;

/** errno: operation not permitted. */
export const EPERM = 1;
/** errno: no such file or directory. */
export const ENOENT = 2;
/** errno: no such process (rtnetlink: no such route). */
export const ESRCH = 3;
/** errno: interrupted system call. */
export const EINTR = 4;
/** errno: I/O error (TUN: write while the link is down). */
export const EIO = 5;
/** errno: bad file descriptor. */
export const EBADF = 9;
/** errno: try again (would block). */
export const EAGAIN = 11;
/** errno: file exists. */
export const EEXIST = 17;
/** errno: no such device. */
export const ENODEV = 19;
/** errno: invalid argument. */
export const EINVAL = 22;
/** errno: message too long. */
export const EMSGSIZE = 90;
/** errno: protocol not available (an unknown socket option). */
export const ENOPROTOOPT = 92;
/** errno: operation not supported. */
export const EOPNOTSUPP = 95;
/** errno: address family not supported. */
export const EAFNOSUPPORT = 97;
/** errno: address in use. */
export const EADDRINUSE = 98;
/** errno: address not available (also: deleting an absent interface address). */
export const EADDRNOTAVAIL = 99;
/** errno: network unreachable. */
export const ENETUNREACH = 101;
/** errno: no buffer space (netlink: events were lost). */
export const ENOBUFS = 105;
/** errno: connection refused (ICMP port unreachable on a connected socket). */
export const ECONNREFUSED = 111;
/** errno: host unreachable. */
export const EHOSTUNREACH = 113;

/** Linux errno names, index = errno (asm-generic/errno-base.h, errno.h). */
const ERRNO_NAMES: readonly string[] = (
  "_ EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES " +
  "EFAULT ENOTBLK EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY " +
  "ETXTBSY EFBIG ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EDEADLK ENAMETOOLONG ENOLCK " +
  "ENOSYS ENOTEMPTY ELOOP E41 ENOMSG EIDRM ECHRNG EL2NSYNC EL3HLT EL3RST ELNRNG EUNATCH " +
  "ENOCSI EL2HLT EBADE EBADR EXFULL ENOANO EBADRQC EBADSLT E58 EBFONT ENOSTR ENODATA ETIME " +
  "ENOSR ENONET ENOPKG EREMOTE ENOLINK EADV ESRMNT ECOMM EPROTO EMULTIHOP EDOTDOT EBADMSG " +
  "EOVERFLOW ENOTUNIQ EBADFD EREMCHG ELIBACC ELIBBAD ELIBSCN ELIBMAX ELIBEXEC EILSEQ " +
  "ERESTART ESTRPIPE EUSERS ENOTSOCK EDESTADDRREQ EMSGSIZE EPROTOTYPE ENOPROTOOPT " +
  "EPROTONOSUPPORT ESOCKTNOSUPPORT EOPNOTSUPP EPFNOSUPPORT EAFNOSUPPORT EADDRINUSE " +
  "EADDRNOTAVAIL ENETDOWN ENETUNREACH ENETRESET ECONNABORTED ECONNRESET ENOBUFS EISCONN " +
  "ENOTCONN ESHUTDOWN ETOOMANYREFS ETIMEDOUT ECONNREFUSED EHOSTDOWN EHOSTUNREACH EALREADY " +
  "EINPROGRESS ESTALE EUCLEAN ENOTNAM ENAVAIL EISNAM EREMOTEIO EDQUOT ENOMEDIUM EMEDIUMTYPE " +
  "ECANCELED ENOKEY EKEYEXPIRED EKEYREVOKED EKEYREJECTED EOWNERDEAD ENOTRECOVERABLE ERFKILL " +
  "EHWPOISON"
).split(" ");

/** The symbolic name of a Linux errno value ("EAGAIN"), or `"E<n>"` when unknown. */
export function errnoName(code: number): string {
  return (code > 0 ? ERRNO_NAMES[code] : undefined) ?? `E${code}`;
}

// ---------------------------------------------------------------------------
// errno.

/**
 * The calling thread's errno. Read it immediately after the synchronous
 * call that failed, before any other FFI call, allocation-heavy work or
 * `await`: anything in between may overwrite it. The view of errno is
 * cached per isolate (each Worker has its own thread and its own copy of
 * this module), so reading it allocates nothing.
 */
export function errno(): number {
  if (errnoView === undefined) libc();
  return errnoView!.getInt32(0);
}

/** The C library's message for an errno value ("No such process"). */
export function strerror(code: number): string {
  const buf = new Uint8Array(256);
  if (libc().__xpg_strerror_r(code, buf, BigInt(buf.length)) !== 0) return `error ${code}`;
  const end = buf.indexOf(0);
  return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end));
}

/**
 * A failed system call: the errno value, its name and the call (with
 * whatever identifies its object, e.g. `"TUNSETIFF lispTun0"` or
 * `"RTM_DELROUTE 10.9.0.0/16 table 100"`). The message reads
 * `call: strerror (CODE)` plus the kernel's extended ack text, if any.
 */
export class ErrnoError extends Error {
  /** The errno value (positive). */
  readonly errno: number;
  /** Its symbolic name, e.g. `"EAGAIN"`, `"ESRCH"`. */
  readonly code: string;
  /** What failed, e.g. `"bind 127.0.0.1:4341"`. */
  readonly call: string;
  /** Extra text from the kernel (netlink extended ack), if any. */
  readonly detail?: string;

  /** An error for `code` raised by `call`. */
  constructor(code: number, call: string, detail?: string) {
    const name = errnoName(code);
    super(`${call}: ${strerror(code)} (${name})${detail ? `: ${detail}` : ""}`);
    this.name = "ErrnoError";
    this.errno = code;
    this.code = name;
    this.call = call;
    if (detail !== undefined) this.detail = detail;
  }

  /** An error from the current errno; call it right after the failed call. */
  static fromErrno(call: string): ErrnoError {
    return new ErrnoError(errno(), call);
  }
}

/**
 * Returns `ret` when it is not negative, else throws {@link ErrnoError}
 * from errno (read at once). `call` names what failed.
 */
export function check(ret: number, call: string): number {
  if (ret < 0) throw ErrnoError.fromErrno(call);
  return ret;
}

/** Bytes of the CPU masks below: 1,024 CPUs, glibc's `cpu_set_t`. */
const CPU_SET_BYTES = 128;
/** The highest CPU number {@link pinThread} takes. */
export const MAX_CPU = CPU_SET_BYTES * 8 - 1;

/**
 * Pins the calling thread (the Worker or main thread that makes the call:
 * `sched_setaffinity(0, ...)` acts on the calling thread only) to CPU
 * `cpu`. Throws {@link ErrnoError} (EINVAL: no such CPU, or one outside
 * the process's cpuset) or RangeError.
 */
export function pinThread(cpu: number): void {
  if (!Number.isInteger(cpu) || cpu < 0 || cpu > MAX_CPU) {
    throw new RangeError(`CPU ${cpu} is not in 0..${MAX_CPU}`);
  }
  const mask = new Uint8Array(CPU_SET_BYTES);
  mask[cpu >>> 3] = 1 << (cpu & 7);
  check(
    libc().sched_setaffinity(0, BigInt(CPU_SET_BYTES), mask),
    `sched_setaffinity CPU ${cpu}`,
  );
}

/** The CPUs the calling thread may run on (`sched_getaffinity`), ascending. */
export function threadCpus(): number[] {
  const mask = new Uint8Array(CPU_SET_BYTES);
  check(libc().sched_getaffinity(0, BigInt(CPU_SET_BYTES), mask), "sched_getaffinity");
  const out: number[] = [];
  for (let i = 0; i <= MAX_CPU; i++) if ((mask[i >>> 3]! & (1 << (i & 7))) !== 0) out.push(i);
  return out;
}

/** Closes `fd`, ignoring errors (Linux releases the fd even when close() fails). */
export function closeFd(fd: number): void {
  if (fd >= 0) libc().close(fd);
}

// ---------------------------------------------------------------------------
// Raw addresses of JS memory.

const bases = new WeakMap<ArrayBufferLike, number>();

/**
 * The address of `buf[0]` in process memory, as a number (exact: user
 * space addresses are below 2^53). The base of each ArrayBuffer is cached,
 * so this allocates nothing after the first call per buffer. V8 never moves
 * an ArrayBuffer's backing store once its address was taken (an on-heap
 * typed array is moved off-heap for good by `.buffer`). The caller must
 * keep `buf` referenced while the address is in use and must not transfer
 * its ArrayBuffer.
 */
export function addressOf(buf: Uint8Array): number {
  const ab = buf.buffer;
  let base = bases.get(ab);
  if (base === undefined) {
    if (ab.byteLength === 0) throw new RangeError("addressOf: empty or detached buffer");
    base = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(ab)));
    bases.set(ab, base);
  }
  return base + buf.byteOffset;
}

/** Writes a pointer-sized (64-bit) value at `off` without allocating a bigint. */
export function setPointer(view: DataView, off: number, addr: number): void {
  // A length or a small address (the common case) needs no division.
  const small = addr < 0x1_0000_0000;
  const lo = small ? addr : addr % 0x1_0000_0000;
  const hi = small ? 0 : (addr - lo) / 0x1_0000_0000;
  if (HOST_LE) {
    view.setUint32(off, lo, true);
    view.setUint32(off + 4, hi, true);
  } else {
    view.setUint32(off, hi, false);
    view.setUint32(off + 4, lo, false);
  }
}

/**
 * An address split in two parts that are both small integers (`hi` below
 * 2^23 on a 47-bit user space, `lo` below 2^24). A whole address is a
 * double above 2^31, which V8 boxes in a new heap number each time it
 * passes one to a function it does not inline; these parts never are.
 */
export interface AddressParts {
  /** `floor(address / 2^24)`. */
  readonly hi: number;
  /** `address % 2^24`. */
  readonly lo: number;
}

/** `addr` as {@link AddressParts} (allocates: once per buffer). */
export function splitAddress(addr: number): AddressParts {
  return { hi: Math.floor(addr / 0x100_0000), lo: addr % 0x100_0000 };
}

/**
 * Writes the pointer `a + rel` at `off` (`rel` a non-negative integer below
 * 2^30), like {@link setPointer} but allocating nothing even where V8 does
 * not inline the call: every argument is an object or a small integer.
 */
export function setPointerAt(view: DataView, off: number, a: AddressParts, rel: number): void {
  // The low 32 bits are (the low 8 bits of hi) × 2^24 + lo + rel, below
  // 2^33: ToUint32 and a carry, no floating-point division or modulo (a
  // tenth of the time: this runs for every iovec of the data path).
  const low = (a.hi & 0xff) * 0x100_0000 + a.lo + rel;
  const lo = low >>> 0;
  const hi = (a.hi >>> 8) + (low >= 0x1_0000_0000 ? 1 : 0);
  if (HOST_LE) {
    view.setUint32(off, lo, true);
    view.setUint32(off + 4, hi, true);
  } else {
    view.setUint32(off, hi, false);
    view.setUint32(off + 4, lo, false);
  }
}

/** A pointer object for a raw address (allocates; for set-up, not per packet). */
export function pointerAt(addr: number): Deno.PointerObject {
  const p = Deno.UnsafePointer.create(BigInt(addr));
  if (p === null) throw new RangeError("pointerAt: null address");
  return p;
}

// ---------------------------------------------------------------------------
// sockaddr_in / sockaddr_in6.

/** Size of struct sockaddr_in. */
export const SOCKADDR_IN_SIZE = 16;
/** Size of struct sockaddr_in6. */
export const SOCKADDR_IN6_SIZE = 28;

/** An IP endpoint as text. */
export interface SocketAddress {
  /** `"ipv4"` or `"ipv6"`. */
  readonly family: "ipv4" | "ipv6";
  /** Address text: dotted quad or RFC 5952 IPv6. */
  readonly address: string;
  /** Port, host order. */
  readonly port: number;
}

/** `"10.0.0.1"` as the u32 0x0a000001; undefined when not a dotted quad. */
export function ipv4ToU32(text: string): number | undefined {
  const b = new Uint8Array(4);
  if (!ipv4ToBytes(text, b, 0)) return undefined;
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

/** The u32 0x0a000001 as `"10.0.0.1"`. */
export function u32ToIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}

/**
 * Writes a struct sockaddr_in (family host-endian, port and address
 * big-endian) for `address` (text or u32) and `port` into `into` at `off`
 * (16 bytes; a new buffer when `into` is omitted). Returns the 16 bytes.
 */
export function encodeSockaddrIn(
  address: string | number,
  port: number,
  into?: Uint8Array,
  off = 0,
): Uint8Array {
  const out = into ?? new Uint8Array(SOCKADDR_IN_SIZE);
  const v = new DataView(out.buffer, out.byteOffset + off, SOCKADDR_IN_SIZE);
  const a = typeof address === "number" ? address : ipv4ToU32(address);
  if (a === undefined) throw new TypeError(`not an IPv4 address: ${address}`);
  checkPort(port);
  v.setUint16(0, AF_INET, HOST_LE);
  v.setUint16(2, port, false);
  v.setUint32(4, a >>> 0, false);
  v.setUint32(8, 0, HOST_LE);
  v.setUint32(12, 0, HOST_LE);
  return out.subarray(off, off + SOCKADDR_IN_SIZE);
}

/**
 * Writes a struct sockaddr_in6 (family, flowinfo and scope id host-endian
 * except flowinfo, which is big-endian; port and address big-endian) into
 * `into` at `off` (28 bytes; a new buffer when omitted). Returns the bytes.
 */
export function encodeSockaddrIn6(
  address: string | Uint8Array,
  port: number,
  into?: Uint8Array,
  off = 0,
  scopeId = 0,
): Uint8Array {
  const out = into ?? new Uint8Array(SOCKADDR_IN6_SIZE);
  const v = new DataView(out.buffer, out.byteOffset + off, SOCKADDR_IN6_SIZE);
  checkPort(port);
  v.setUint16(0, AF_INET6, HOST_LE);
  v.setUint16(2, port, false);
  v.setUint32(4, 0, false); // sin6_flowinfo
  if (typeof address === "string") {
    if (!ipv6ToBytes(address, out, off + 8)) throw new TypeError(`not an IPv6 address: ${address}`);
  } else {
    if (address.length !== 16) throw new TypeError("an IPv6 address has 16 bytes");
    out.set(address, off + 8);
  }
  v.setUint32(24, scopeId, HOST_LE);
  return out.subarray(off, off + SOCKADDR_IN6_SIZE);
}

/** sockaddr_in or sockaddr_in6 for `address` (IPv4 or IPv6 text) and `port`. */
export function encodeSockaddr(address: string, port: number): Uint8Array {
  return isIPv4(address) ? encodeSockaddrIn(address, port) : encodeSockaddrIn6(address, port);
}

/**
 * Reads a sockaddr_in or sockaddr_in6 at `off` of `buf`; undefined for
 * another family (or too few bytes).
 */
export function decodeSockaddr(buf: Uint8Array, off = 0): SocketAddress | undefined {
  if (buf.length - off < 2) return undefined;
  const v = new DataView(buf.buffer, buf.byteOffset + off, buf.length - off);
  const family = v.getUint16(0, HOST_LE);
  if (family === AF_INET && v.byteLength >= SOCKADDR_IN_SIZE) {
    return {
      family: "ipv4",
      address: u32ToIpv4(v.getUint32(4, false)),
      port: v.getUint16(2, false),
    };
  }
  if (family === AF_INET6 && v.byteLength >= SOCKADDR_IN6_SIZE) {
    return { family: "ipv6", address: ipv6FromBytes(buf, off + 8), port: v.getUint16(2, false) };
  }
  return undefined;
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new RangeError(`port out of range: ${port}`);
  }
}

// ---------------------------------------------------------------------------
// Small conveniences.

const encoder = new TextEncoder();

/** A NUL-terminated C string. */
export function cString(text: string): Uint8Array {
  const b = encoder.encode(text);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/**
 * The index of interface `name`, or 0 when there is none (errno ENODEV).
 * Uses if_nametoindex(3).
 */
export function ifNameToIndex(name: string): number {
  return libc().if_nametoindex(cString(name));
}

/** Sets an int socket option; throws {@link ErrnoError}. */
export function setIntOption(
  fd: number,
  level: number,
  name: number,
  value: number,
  call: string,
): void {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, value, HOST_LE);
  check(libc().setsockopt(fd, level, name, b, 4), call);
}

/** Reads an int socket option; throws {@link ErrnoError}. */
export function getIntOption(fd: number, level: number, name: number, call: string): number {
  const b = new Uint8Array(4);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, 4, HOST_LE);
  check(libc().getsockopt(fd, level, name, b, len), call);
  return new DataView(b.buffer).getInt32(0, HOST_LE);
}
