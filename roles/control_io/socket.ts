/**
 * The control port through libc, in batches: a {@link ControlTransport}
 * (core/control.ts) for every role's control port: the roles that serve
 * the mapping system (ms, mr, ddt, ddt-mr), where `node:dgram`'s one
 * datagram per async call was most of the cost of a message, and the
 * tunnel routers (xtr, mn, rtr; roles/tunnel_router/router.ts), whose
 * control port takes bursts (Map-Requests and RLOC-probes from every peer,
 * an RTR's relayed registrations) that the kernel's default buffer lost.
 *
 * - Receiving: the sockets are nonblocking. A loop on the main thread waits
 *   for them with a nonblocking FFI `poll()` (ffi/wait.ts: the event loop
 *   runs on meanwhile), then drains each with `recvmmsg()` into a
 *   {@link PacketBatch}, up to {@link DRAIN_BATCHES} batches before it waits
 *   again (which lets timers and other I/O in), and hands each datagram (a
 *   copy the receiver keeps) to {@link TransportHooks.receive}. While the
 *   sockets keep bringing datagrams it reads them again once the microtasks
 *   have run (the answers just queued have left), up to
 *   {@link BUSY_ROUNDS} times, before it waits with `poll()` again: each
 *   wait costs a round trip through a thread (about 35 µs), which under
 *   load, a few datagrams per wake-up, cost more than the messages.
 * - Sending: {@link SendQueue} copies each datagram into a batch of its
 *   family and sends the batch with one `sendmmsg()` when the current task
 *   ends (a microtask), or at once when the batch is full. A datagram larger
 *   than a slot goes out alone with `sendmsg()`, after the queue.
 * - Buffers: each socket asks for {@link CONTROL_RECV_BUFFER} bytes of
 *   receive buffer and {@link CONTROL_SEND_BUFFER} of send buffer, forced
 *   past `net.core.rmem_max` when the process may (CAP_NET_ADMIN). The
 *   kernel's default (208 KiB) holds about 190 small datagrams at loopback
 *   truesize, so a burst of more while the role is busy (a GC pause) was
 *   lost; 8 MiB holds several thousand. What the kernel granted is logged
 *   at start (`control-socket-buffers`), with a warning when it is less.
 *
 * Nothing here parses LISP: the bytes go to the dispatcher as they came.
 *
 * @module
 */

import type { ControlTransport, Peer, TransportHooks } from "../../core/control.ts";
import { type ErrnoError, errnoName, ipv4ToU32, strerror } from "../../ffi/libc.ts";
import { PacketBatch, UdpSocket } from "../../ffi/udp.ts";
import { WaitSet, Waker } from "../../ffi/wait.ts";
import { isIPv4 } from "../../wire/ip_text.ts";

/** Receive buffer each control socket asks for, bytes. */
export const CONTROL_RECV_BUFFER = 8 << 20;
/** Send buffer each control socket asks for, bytes. */
export const CONTROL_SEND_BUFFER = 4 << 20;
/** Most receive batches drained from a socket before waiting again. */
export const DRAIN_BATCHES = 8;
/** Most reads again, without `poll()`, while each brings datagrams (see the module notes). */
export const BUSY_ROUNDS = 16;
/** Slots of a receive batch. */
const RECV_SLOTS = 32;
/** A receive slot holds any UDP datagram (at most 65,527 bytes of payload). */
const RECV_SLOT_SIZE = 65536;
/** Slots of a send batch, per family. */
const SEND_SLOTS = 64;
/** A send slot; larger datagrams are sent alone. */
const SEND_SLOT_SIZE = 2048;
/** Longest wait between two looks at the sockets, ms (close and rebind wake it at once). */
const WAIT_MS = 1000;
/** How often a receive error is logged, ms. */
const LOG_INTERVAL_MS = 60_000;

/** Opens a UDP socket for a control port with the buffers above. */
export function openControlSocket(
  address: string,
  port: number,
  opts: { readonly reusePort?: boolean } = {},
): UdpSocket {
  return UdpSocket.open({
    address,
    port,
    recvBuffer: CONTROL_RECV_BUFFER,
    sendBuffer: CONTROL_SEND_BUFFER,
    ...(opts.reusePort === true ? { reusePort: true } : {}),
  });
}

/** Logs the buffer sizes a control socket got; warns when below what it asked. */
export function logSocketBuffers(hooks: Pick<TransportHooks, "logger">, s: UdpSocket): void {
  // The kernel reports twice the size asked for (it counts its overhead).
  const recv = s.recvBufferSize() / 2;
  const send = s.sendBufferSize() / 2;
  const fields = { family: s.family, "receive-buffer": recv, "send-buffer": send };
  if (recv < CONTROL_RECV_BUFFER) {
    hooks.logger.warn("control-socket-buffers", {
      ...fields,
      wanted: CONTROL_RECV_BUFFER,
      hint: "raise net.core.rmem_max, or run with CAP_NET_ADMIN",
    });
  } else {
    hooks.logger.debug("control-socket-buffers", fields);
  }
}

function describeErrno(code: number): string {
  return `${strerror(code)} (${errnoName(code)})`;
}

/**
 * Datagrams to send, batched per family and sent with `sendmmsg()` at the
 * end of the current task (see the module notes). It sends on sockets it
 * does not own: a transport's, or a Worker's (same fd, another thread).
 */
export class SendQueue {
  readonly #v4: UdpSocket | undefined;
  readonly #v6: UdpSocket | undefined;
  readonly #failed: TransportHooks["failed"];
  readonly #b4: PacketBatch | undefined;
  readonly #b6: PacketBatch | undefined;
  #scheduled = false;

  /** A queue sending on `v4` and `v6` (either may be absent), reporting failures to `failed`. */
  constructor(
    v4: UdpSocket | undefined,
    v6: UdpSocket | undefined,
    failed: TransportHooks["failed"],
  ) {
    this.#v4 = v4;
    this.#v6 = v6;
    this.#failed = failed;
    const opts = { slots: SEND_SLOTS, slotSize: SEND_SLOT_SIZE, headroom: 0 };
    if (v4 !== undefined) this.#b4 = new PacketBatch(opts);
    if (v6 !== undefined) this.#b6 = new PacketBatch(opts);
  }

  /** Queues `bytes` (copied) for `to`; false when it cannot go (reported to `failed`). */
  send(bytes: Uint8Array, to: Peer): boolean {
    // One parse of the address: a dotted quad is IPv4, anything else is tried as IPv6.
    const a4 = ipv4ToU32(to.address);
    const v4 = a4 !== undefined;
    const socket = v4 ? this.#v4 : this.#v6;
    const batch = v4 ? this.#b4 : this.#b6;
    if (socket === undefined || batch === undefined) {
      this.#failed("no-socket", to, "no socket for that address family");
      return false;
    }
    const port = to.port;
    if (!Number.isInteger(port) || port <= 0 || port > 0xffff) {
      this.#failed("bad-destination", to, `port ${port}`);
      return false;
    }
    if (!v4 && !/^[0-9a-fA-F:.]+$/.test(to.address)) {
      this.#failed("bad-destination", to, `address ${to.address}`);
      return false;
    }
    if (bytes.length > SEND_SLOT_SIZE) {
      this.flush();
      const n = socket.sendTo(bytes, 0, bytes.length, v4 ? a4 : to.address, port);
      if (n < 0) this.#failed("socket", to, describeErrno(socket.errno));
      return true;
    }
    if (batch.count === batch.slots) this.#flushBatch(socket, batch);
    const i = batch.count++;
    const at = batch.base(i);
    batch.bytes.set(bytes, at);
    batch.offset[i] = at;
    batch.length[i] = bytes.length;
    if (v4) batch.setPeer4(i, a4, port);
    else {
      try {
        batch.setPeer(i, to.address, port);
      } catch (e) {
        batch.count--;
        this.#failed("bad-destination", to, (e as Error).message);
        return false;
      }
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.flush());
    }
    return true;
  }

  /** Sends everything queued now. */
  flush(): void {
    this.#scheduled = false;
    if (this.#v4 !== undefined && this.#b4 !== undefined) this.#flushBatch(this.#v4, this.#b4);
    if (this.#v6 !== undefined && this.#b6 !== undefined) this.#flushBatch(this.#v6, this.#b6);
  }

  #flushBatch(socket: UdpSocket, batch: PacketBatch): void {
    sendWholeBatch(socket, batch, this.#full, this.#refused);
  }

  /** The send buffer is full at datagram `i`: what is left is lost, like any UDP datagram. */
  readonly #full = (batch: PacketBatch, i: number, count: number): void => {
    const to = peerOf(batch, i);
    for (; i < count; i++) this.#failed("buffer-full", to, "send buffer full");
  };

  /** The socket refused datagram `i` (its errno is still set). */
  readonly #refused = (batch: PacketBatch, i: number, socket: UdpSocket): void => {
    this.#failed("socket", peerOf(batch, i), describeErrno(socket.errno));
  };
}

/** Where datagram `i` of `batch` goes, for a report. */
function peerOf(batch: PacketBatch, i: number): Peer {
  const peer = batch.peer(i);
  return { address: peer?.address ?? "?", port: peer?.port ?? 0 };
}

/**
 * Sends the whole of `batch` with `sendmmsg()` and empties it: when the
 * send buffer is full at datagram `i`, `full(batch, i, count)` is told once
 * and datagrams `i` to `count - 1` are lost, like any UDP datagram; a
 * datagram the socket refuses is skipped after `refused(batch, i, socket)`
 * (its errno still set). {@link SendQueue} and the pool Workers
 * (pool_worker.ts) send through it.
 */
export function sendWholeBatch(
  socket: UdpSocket,
  batch: PacketBatch,
  full: (batch: PacketBatch, i: number, count: number) => void,
  refused: (batch: PacketBatch, i: number, socket: UdpSocket) => void,
): void {
  const count = batch.count;
  let i = 0;
  while (i < count) {
    const n = socket.sendmmsg(batch, i, count - i);
    if (n > 0) {
      i += n;
      continue;
    }
    if (n === 0) {
      full(batch, i, count);
      break;
    }
    refused(batch, i, socket);
    i++;
  }
  batch.count = 0;
}

/** Opens a {@link BatchedSocket} (a ControlTransportFactory). */
export async function batchedTransport(
  address: string | undefined,
  port: number,
  hooks: TransportHooks,
): Promise<ControlTransport> {
  return await Promise.resolve(new BatchedSocket(address, port, hooks));
}

interface Sockets {
  readonly v4: UdpSocket | undefined;
  readonly v6: UdpSocket | undefined;
  readonly queue: SendQueue;
}

/** A control port read and written in batches (see the module notes). */
export class BatchedSocket implements ControlTransport {
  readonly #hooks: TransportHooks;
  #sockets: Sockets;
  #address: string | undefined;
  #port: number;
  readonly #retired: Sockets[] = [];
  readonly #waker = new Waker();
  readonly #batch = new PacketBatch({
    slots: RECV_SLOTS,
    slotSize: RECV_SLOT_SIZE,
    headroom: 0,
  });
  #closed = false;
  readonly #loop: Promise<void>;
  #closing: Promise<void> | undefined;

  /** Binds (throws ErrnoError when it cannot) and starts receiving. */
  constructor(address: string | undefined, port: number, hooks: TransportHooks) {
    this.#hooks = hooks;
    try {
      this.#sockets = this.#bind(address, port);
    } catch (e) {
      this.#waker.close();
      throw e;
    }
    this.#address = address;
    this.#port = (this.#sockets.v4 ?? this.#sockets.v6)!.localAddress().port;
    for (const s of [this.#sockets.v4, this.#sockets.v6]) {
      if (s !== undefined) logSocketBuffers(hooks, s);
    }
    this.#loop = this.#routineReceive();
  }

  #bind(address: string | undefined, port: number): Sockets {
    const failed = this.#hooks.failed;
    if (address !== undefined) {
      const s = openControlSocket(address, port);
      return isIPv4(address)
        ? { v4: s, v6: undefined, queue: new SendQueue(s, undefined, failed) }
        : { v4: undefined, v6: s, queue: new SendQueue(undefined, s, failed) };
    }
    const v4 = openControlSocket("0.0.0.0", port);
    let v6: UdpSocket | undefined;
    try {
      v6 = openControlSocket("::", v4.localAddress().port);
    } catch (e) {
      this.#hooks.logger.warn("control-ipv6-unavailable", { error: (e as ErrnoError).message });
    }
    return { v4, v6, queue: new SendQueue(v4, v6, failed) };
  }

  get address(): string | undefined {
    return this.#address;
  }

  get port(): number {
    return this.#port;
  }

  send(bytes: Uint8Array, to: Peer): boolean {
    if (this.#closed) {
      this.#hooks.failed("no-socket", to, "the control socket is closed");
      return false;
    }
    return this.#sockets.queue.send(bytes, to);
  }

  rebind(address: string): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const next = this.#bind(address, this.#port);
    this.#sockets.queue.flush();
    this.#retired.push(this.#sockets);
    this.#sockets = next;
    this.#address = address;
    this.#waker.wake();
    return Promise.resolve();
  }

  /** Receives until closed (see the module notes). */
  async #routineReceive(): Promise<void> {
    let sockets: Sockets | undefined;
    let set: WaitSet | undefined;
    while (!this.#closed) {
      if (sockets !== this.#sockets || set === undefined) {
        sockets = this.#sockets;
        set = new WaitSet([sockets.v4?.fd ?? -1, sockets.v6?.fd ?? -1, this.#waker.fd]);
      }
      await set.wait(WAIT_MS);
      if (set.ready(2)) this.#waker.clear();
      for (const old of this.#retired.splice(0)) {
        old.v4?.close();
        old.v6?.close();
      }
      if (this.#closed || sockets !== this.#sockets) continue;
      let got = 0;
      if (sockets.v4 !== undefined && set.ready(0)) got += this.#drain(sockets.v4);
      if (sockets.v6 !== undefined && set.ready(1)) got += this.#drain(sockets.v6);
      // Busy: read again once the microtasks have run, without the poll's round trip.
      for (let k = 0; k < BUSY_ROUNDS && got > 0; k++) {
        await Promise.resolve();
        if (this.#closed || sockets !== this.#sockets) break;
        got = 0;
        if (sockets.v4 !== undefined) got += this.#drain(sockets.v4);
        if (sockets.v6 !== undefined) got += this.#drain(sockets.v6);
      }
    }
  }

  /** Reads what `socket` holds, up to {@link DRAIN_BATCHES} batches; returns how many datagrams. */
  #drain(socket: UdpSocket): number {
    const b = this.#batch;
    let got = 0;
    for (let k = 0; k < DRAIN_BATCHES && !this.#closed; k++) {
      const n = socket.recvmmsg(b);
      if (n < 0) {
        this.#hooks.logger.limited(
          `control-receive-error ${socket.family}`,
          LOG_INTERVAL_MS,
          "warn",
          "control-receive-error",
          { family: socket.family, error: describeErrno(socket.errno) },
        );
        return got;
      }
      got += n;
      for (let i = 0; i < n; i++) {
        const peer = b.peer(i);
        if (peer === undefined) continue;
        const o = b.offset[i]!;
        this.#hooks.receive(b.bytes.slice(o, o + b.length[i]!), {
          address: peer.address,
          port: peer.port,
        });
        if (this.#closed) return got;
      }
      if (n < b.slots) return got;
    }
    return got;
  }

  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#sockets.queue.flush();
      this.#waker.wake();
      this.#closing = this.#loop.finally(() => {
        for (const s of [this.#sockets, ...this.#retired.splice(0)]) {
          s.v4?.close();
          s.v6?.close();
        }
        this.#waker.close();
      });
    }
    return this.#closing;
  }
}
