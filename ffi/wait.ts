/**
 * Waiting for fds on the main thread without blocking its event loop, and
 * waking a waiter from another thread.
 *
 * - {@link WaitSet}: `poll(2)` over a fixed set of fds through a
 *   *nonblocking* FFI symbol: Deno runs the call on a thread of its
 *   blocking pool and resolves a Promise with the result, so the event loop
 *   keeps running timers and other I/O meanwhile. One round trip costs
 *   about 35 µs here, so it suits a loop that then drains every ready fd
 *   with synchronous calls (`recvmmsg`) until EAGAIN: the cost is per
 *   batch, not per datagram. A Worker, which may block, uses
 *   {@link PollSet} (ffi/poll.ts) instead.
 * - {@link Waker}: an `eventfd(2)`. Put its fd in a poll set; `wake()`
 *   (from any thread: fds are process-wide) makes that poll return,
 *   `clear()` reads the count back. Closing a socket that another thread
 *   is polling would not wake it; a Waker does.
 *
 * The symbols are opened here, apart from ffi/libc.ts's table, because
 * Deno fixes whether a symbol is nonblocking when the library is opened.
 *
 * @module
 */

import { check, closeFd, HOST_LE, libc, POLLIN } from "./libc.ts";

const SYMBOLS = {
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

function symbols(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  lib ??= Deno.dlopen("libc.so.6", SYMBOLS);
  return lib.symbols;
}

/** eventfd flags: nonblocking, close-on-exec. */
const EFD_NONBLOCK = 0x800;
const EFD_CLOEXEC = 0x80000;

/** Size of struct pollfd. */
const POLLFD_SIZE = 8;

/** A fixed set of fds polled without blocking the event loop (see the module notes). */
export class WaitSet {
  /** Number of fds. */
  readonly size: number;
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  readonly #nfds: bigint;
  #waiting = false;

  /** A set waiting for `events` (POLLIN by default) on `fds`; -1 marks an unused slot. */
  constructor(fds: readonly number[], events = POLLIN) {
    this.size = fds.length;
    this.#buf = new Uint8Array(new ArrayBuffer(Math.max(1, fds.length) * POLLFD_SIZE));
    this.#view = new DataView(this.#buf.buffer);
    this.#nfds = BigInt(fds.length);
    for (let i = 0; i < fds.length; i++) {
      this.#view.setInt32(i * POLLFD_SIZE, fds[i]!, HOST_LE);
      this.#view.setInt16(i * POLLFD_SIZE + 4, events, HOST_LE);
    }
  }

  /**
   * Waits up to `timeoutMs` for any fd to be ready; resolves to how many
   * are (0 on timeout or a signal). One wait at a time: the kernel writes
   * into this set's memory until the call returns (RangeError otherwise).
   */
  async wait(timeoutMs: number): Promise<number> {
    if (this.#waiting) throw new RangeError("WaitSet.wait() is already waiting");
    this.#waiting = true;
    for (let i = 0; i < this.size; i++) this.#view.setInt16(i * POLLFD_SIZE + 6, 0, HOST_LE);
    try {
      const n = await symbols().poll(this.#buf, this.#nfds, timeoutMs);
      return n > 0 ? n : 0;
    } finally {
      this.#waiting = false;
    }
  }

  /** Whether fd `i` had an event at the last wait (readable, error or hang-up). */
  ready(i: number): boolean {
    return this.#view.getInt16(i * POLLFD_SIZE + 6, HOST_LE) !== 0;
  }
}

/** An eventfd that wakes a poll on it (see the module notes). */
export class Waker {
  /** The eventfd (-1 once closed). */
  fd: number;
  readonly #one = new Uint8Array(8);
  readonly #scratch = new Uint8Array(8);

  /** Creates the eventfd. Throws ErrnoError. */
  constructor() {
    this.fd = check(symbols().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), "eventfd");
    new DataView(this.#one.buffer).setBigUint64(0, 1n, HOST_LE);
  }

  /** Makes a poll on {@link fd} return (from any thread). */
  wake(): void {
    if (this.fd >= 0) libc().write(this.fd, this.#one, 8n);
  }

  /** Reads the count back, so the fd is quiet again. */
  clear(): void {
    if (this.fd >= 0) libc().read(this.fd, this.#scratch, 8n);
  }

  /** Closes the eventfd. */
  close(): void {
    if (this.fd < 0) return;
    closeFd(this.fd);
    this.fd = -1;
  }
}
