/**
 * poll(2) over a preallocated `struct pollfd` array, for the data-plane
 * Worker: one synchronous call waits on the TUN fd and the data sockets,
 * then the caller drains each ready fd until EAGAIN. Nothing is allocated
 * per call.
 *
 * `poll` blocks the calling thread for up to the timeout: call it from a
 * Worker, or with timeout 0 on the main thread.
 *
 * @module
 */

import {
  check,
  EINTR,
  errno,
  ErrnoError,
  F_GETFL,
  F_SETFL,
  HOST_LE,
  libc,
  O_NONBLOCK,
  POLLIN,
} from "./libc.ts";

/** Size of struct pollfd: int fd, short events, short revents. */
const POLLFD_SIZE = 8;

/**
 * A fixed set of fds to poll, in a preallocated pollfd array. A slot whose
 * fd is negative is ignored by the kernel (use -1 for "absent").
 */
export class PollSet {
  /** Number of slots. */
  readonly size: number;
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  readonly #nfds: bigint;

  /** A set polling `fds` (for `events`, POLLIN by default). */
  constructor(fds: readonly number[], events = POLLIN) {
    this.size = fds.length;
    this.#buf = new Uint8Array(new ArrayBuffer(Math.max(1, fds.length) * POLLFD_SIZE));
    this.#view = new DataView(this.#buf.buffer);
    this.#nfds = BigInt(fds.length);
    for (let i = 0; i < fds.length; i++) this.set(i, fds[i]!, events);
  }

  /** Puts `fd` (or -1 to ignore the slot) with `events` in slot `i`. */
  set(i: number, fd: number, events = POLLIN): void {
    if (!(i >= 0 && i < this.size)) throw new RangeError(`poll slot ${i} out of range`);
    this.#view.setInt32(i * POLLFD_SIZE, fd, HOST_LE);
    this.#view.setInt16(i * POLLFD_SIZE + 4, events, HOST_LE);
    this.#view.setInt16(i * POLLFD_SIZE + 6, 0, HOST_LE);
  }

  /** Changes the events of slot `i` (e.g. add POLLOUT while a send is pending). */
  setEvents(i: number, events: number): void {
    this.#view.setInt16(i * POLLFD_SIZE + 4, events, HOST_LE);
  }

  /** The fd in slot `i`. */
  fd(i: number): number {
    return this.#view.getInt32(i * POLLFD_SIZE, HOST_LE);
  }

  /**
   * Waits up to `timeoutMs` (-1: forever, 0: just look) for any fd to be
   * ready. Returns how many slots have revents set; 0 on timeout or when
   * a signal interrupted the wait (EINTR). Other errors (EFAULT, EINVAL,
   * ENOMEM) throw {@link ErrnoError}.
   */
  poll(timeoutMs: number): number {
    const n = libc().poll(this.#buf, this.#nfds, timeoutMs);
    if (n >= 0) return n;
    const e = errno();
    if (e === EINTR) return 0;
    throw new ErrnoError(e, "poll");
  }

  /** The revents of slot `i` after {@link poll} (POLLIN, POLLOUT, POLLERR, POLLHUP, POLLNVAL). */
  revents(i: number): number {
    return this.#view.getInt16(i * POLLFD_SIZE + 6, HOST_LE);
  }

  /** True when slot `i` is readable (or has an error or hang-up the next read will report). */
  readable(i: number): boolean {
    return this.#view.getInt16(i * POLLFD_SIZE + 6, HOST_LE) !== 0;
  }
}

let shared: PollSet | undefined;

/**
 * Polls `fds` (at most 31) for `events` up to `timeoutMs`, reusing one
 * preallocated pollfd array per thread while the fd list stays the same
 * length. Returns a bit mask of the indexes of `fds` with revents (bit i
 * for `fds[i]`), 0 on timeout or EINTR.
 */
export function poll(fds: readonly number[], timeoutMs: number, events = POLLIN): number {
  if (fds.length > 31) throw new RangeError("poll(): at most 31 fds; use PollSet");
  if (shared === undefined || shared.size !== fds.length) shared = new PollSet(fds, events);
  else for (let i = 0; i < fds.length; i++) shared.set(i, fds[i]!, events);
  if (shared.poll(timeoutMs) === 0) return 0;
  let mask = 0;
  for (let i = 0; i < fds.length; i++) if (shared.revents(i) !== 0) mask |= 1 << i;
  return mask;
}

/** Sets O_NONBLOCK on `fd` (for fds that were not opened nonblocking). */
export function setNonblocking(fd: number): void {
  const c = libc();
  const flags = check(c.fcntl(fd, F_GETFL, 0), "fcntl F_GETFL");
  check(c.fcntl(fd, F_SETFL, flags | O_NONBLOCK), "fcntl F_SETFL");
}
