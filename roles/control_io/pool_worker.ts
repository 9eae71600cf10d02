/**
 * A pool's Worker, Worker side: what the ms's answering Workers
 * (roles/map_server/_serving_worker.ts) and the mr's forwarding Workers
 * (roles/map_resolver/_forwarding_worker.ts) share. The main side is
 * worker_pool.ts.
 *
 * - {@link PoolWorker}: the Worker's sockets (one per family, from the
 *   main thread's fds), its receive and send batches, the loop that waits
 *   in a synchronous `poll()` (woken by the main thread's eventfd), lets
 *   the main thread's messages in, drains the sockets with `recvmmsg()` and
 *   sends with `sendmmsg()`; its hand-over stage (hand_over.ts), a log
 *   limiter and the reports of dropped datagrams (once a minute per source). The role's class says what one datagram becomes
 *   ({@link PoolWorker.one}) and what it posts ({@link PoolWorker.postUp}).
 * - {@link runPoolWorker}: the glue, `onmessage`: `init` once (`ready`, or
 *   `stopped` with the error), `stop`, the role's messages, and `stopped`
 *   when the loop ends.
 *
 * @module
 */

import { errnoName, libc, u32ToIpv4 } from "../../ffi/libc.ts";
import { PacketBatch, PollSet, UdpSocket } from "../../ffi/udp.ts";
import { ipv6FromBytes } from "../../wire/ip_text.ts";
import { HandOverStage, type Received } from "./hand_over.ts";
import { sendWholeBatch } from "./socket.ts";
import type { FromPoolWorker, PoolInit, PoolStop } from "./worker_pool.ts";

/** Slots of the receive batch and of each send batch. */
const SLOTS = 64;
/** A receive slot holds any UDP datagram. */
const RECV_SLOT = 65536;
/** A send slot. */
export const SEND_SLOT = 2048;
/** Most receive batches drained from a socket before the loop goes round. */
const DRAIN_BATCHES = 16;
/** Poll timeout when idle, ms (a post wakes the Worker through its eventfd at once). */
export const IDLE_MS = 250;
/** Least time between two log events of a Worker, ms (errors a peer may trigger). */
const LOG_EVERY_MS = 10_000;
/** Least time between two reports of drops from one source address (and reason), ms. */
const DROP_REPORT_EVERY_MS = 60_000;
/** Per source address and reason hash: when its last drop was reported (a power of two). */
const DROP_REPORT_SLOTS = 4096;

/** What a Worker posts to the main thread. */
export type PostToMain = (message: FromPoolWorker, transfer?: Transferable[]) => void;

/** The text of what was thrown. */
export function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** What the counts array of a {@link PoolWorker} holds where. */
export interface PoolWorkerCounts {
  /** The Worker's counts. */
  readonly counts: Float64Array;
  /** Index of the datagrams a full socket buffer refused. */
  readonly sendFull: number;
  /** Index of the sends the socket refused. */
  readonly sendRefused: number;
}

/**
 * A pool Worker's sockets, batches, loop, hand-over stage and log limiter;
 * the role's class extends it (see the module notes).
 */
export abstract class PoolWorker<Message extends { readonly op: string }> {
  /** Posts to the main thread. */
  protected readonly post: PostToMain;
  /** This Worker's index in the pool. */
  protected readonly index: number;
  protected readonly v4: UdpSocket | undefined;
  protected readonly v6: UdpSocket | undefined;
  protected readonly rx = new PacketBatch({ slots: SLOTS, slotSize: RECV_SLOT, headroom: 0 });
  protected readonly tx4: PacketBatch | undefined;
  protected readonly tx6: PacketBatch | undefined;
  /** The datagram being handled (filled in place from {@link rx}). */
  protected readonly received: Received = {
    bytes: this.rx.bytes,
    start: 0,
    end: 0,
    fam: 0,
    src4: 0,
    src6: -1,
    port: 0,
  };
  /** Int32 [index]: the last handed-over sequence number the main thread handled. */
  protected readonly acks: Int32Array;
  /** What the Worker hands over; a full stage posts ({@link postUp}). */
  protected readonly stage: HandOverStage;
  protected readonly counts: Float64Array;
  /** Set by `stop`: the loop ends at its next turn. */
  stopping = false;
  readonly #prefix: string;
  readonly #wakeFd: number;
  readonly #mailbox: Int32Array;
  readonly #eventfdScratch = new Uint8Array(8);
  readonly #sendFull: number;
  readonly #sendRefused: number;
  #handled = 0;
  #lastLog = 0;
  readonly #dropReported = new Float64Array(DROP_REPORT_SLOTS).fill(-Infinity);

  /**
   * @param prefix Of the log events (`<prefix>-receive-error`).
   * @throws Error when `init` has no socket.
   */
  constructor(init: PoolInit, post: PostToMain, prefix: string, counts: PoolWorkerCounts) {
    this.post = post;
    this.#prefix = prefix;
    this.index = init.index;
    this.v4 = init.fds.v4 >= 0 ? UdpSocket.fromFd(init.fds.v4) : undefined;
    this.v6 = init.fds.v6 >= 0 ? UdpSocket.fromFd(init.fds.v6) : undefined;
    if (this.v4 === undefined && this.v6 === undefined) throw new Error("no socket");
    const tx = { slots: SLOTS, slotSize: SEND_SLOT, headroom: 0 };
    if (this.v4 !== undefined) this.tx4 = new PacketBatch(tx);
    if (this.v6 !== undefined) this.tx6 = new PacketBatch(tx);
    this.#wakeFd = init.wakeFd;
    this.#mailbox = new Int32Array(init.mailbox);
    this.acks = new Int32Array(init.acks);
    this.stage = new HandOverStage(this.acks, this.index, () => this.postUp(true));
    this.counts = counts.counts;
    this.#sendFull = counts.sendFull;
    this.#sendRefused = counts.sendRefused;
  }

  /** A message of the role's (not init, not stop). */
  abstract message(msg: Message): void;

  /** Handles the datagram `d` (a slot of {@link rx}), received at `now` (Date.now()). */
  protected abstract one(d: Received, now: number): void;

  /** Posts what is staged (and counts); `force`: now, not when due. */
  protected abstract postUp(force: boolean): void;

  /** Before the loop waits in poll(), the main thread told it waits (mailbox [1] is 1). */
  protected beforeWait(): void {}

  /** How long the loop may wait in poll(), ms. */
  protected waitMs(): number {
    return IDLE_MS;
  }

  /** Before the sockets are drained, each turn. */
  protected beforeDrain(): void {}

  /** After the sockets are drained, each turn (before {@link postUp}). */
  protected afterDrain(): void {}

  /** A message arrived (onmessage). */
  noteMessage(): void {
    this.#handled++;
  }

  /** The loop, until `stop`. */
  async routineServe(): Promise<void> {
    const poll = new PollSet([this.v4?.fd ?? -1, this.v6?.fd ?? -1, this.#wakeFd]);
    const lib = libc();
    while (!this.stopping) {
      Atomics.store(this.#mailbox, 1, 1);
      this.beforeWait();
      poll.poll(this.waitMs());
      Atomics.store(this.#mailbox, 1, 0);
      if (poll.readable(2)) lib.read(this.#wakeFd, this.#eventfdScratch, 8n);
      if (Atomics.load(this.#mailbox, 0) !== this.#handled) {
        // Messages wait in the event loop: let them in (the role's, stop).
        await new Promise<void>((r) => setTimeout(r, 0));
        if (this.stopping) break;
      }
      const now = Date.now();
      this.beforeDrain();
      if (this.v4 !== undefined && poll.readable(0)) this.#drain(this.v4, now);
      if (this.v6 !== undefined && poll.readable(1)) this.#drain(this.v6, now);
      this.afterDrain();
      this.postUp(false);
    }
    this.postUp(true);
  }

  #drain(socket: UdpSocket, now: number): void {
    const rx = this.rx;
    for (let k = 0; k < DRAIN_BATCHES; k++) {
      const n = socket.recvmmsg(rx);
      if (n <= 0) {
        if (n < 0) this.log(`${this.#prefix}-receive-error`, { error: errnoName(socket.errno) });
        return;
      }
      const d = this.received;
      for (let i = 0; i < n; i++) {
        const fam = rx.peerFamily(i);
        if (fam === 0) continue;
        d.start = rx.offset[i]!;
        d.end = d.start + rx.length[i]!;
        d.fam = fam;
        d.src4 = fam === 4 ? rx.peerAddr4(i) : 0;
        d.src6 = fam === 6 ? rx.peerAddr6Offset(i) : -1;
        d.port = rx.peerPort(i);
        this.one(d, now);
      }
      this.flush(this.v4, this.tx4);
      this.flush(this.v6, this.tx6);
      this.postUp(false);
      if (n < rx.slots) return;
    }
  }

  /** Sends a batch (counting what the socket refused). */
  protected flush(socket: UdpSocket | undefined, tx: PacketBatch | undefined): void {
    if (socket === undefined || tx === undefined || tx.count === 0) return;
    sendWholeBatch(socket, tx, this.#full, this.#refused);
  }

  /** A full send buffer loses the rest of the batch: counted. */
  readonly #full = (_tx: PacketBatch, i: number, count: number): void => {
    this.counts[this.#sendFull] = this.counts[this.#sendFull]! + (count - i);
  };

  /** A datagram the socket refused: counted. */
  readonly #refused = (): void => {
    this.counts[this.#sendRefused] = this.counts[this.#sendRefused]! + 1;
  };

  /**
   * Posts the drop of `d` for `reason` (the main thread logs it), at most
   * once a minute per source address and reason; `now` is Date.now().
   * Reasons are told apart by their length (the roles' reasons all differ
   * in length); sources whose hashes collide share a slot.
   */
  protected reportDrop(reason: string, d: Received, now: number): void {
    const { bytes: b, src4, src6 } = d;
    let h = Math.imul(src4 ^ reason.length, 0x9e3779b1);
    if (src6 >= 0) { for (let k = 0; k < 16; k++) h = Math.imul(h ^ b[src6 + k]!, 0x01000193); }
    h = (h ^ (h >>> 15)) & (DROP_REPORT_SLOTS - 1);
    if (now - this.#dropReported[h]! < DROP_REPORT_EVERY_MS) return;
    this.#dropReported[h] = now;
    const address = src6 < 0 ? u32ToIpv4(src4) : ipv6FromBytes(b, src6);
    this.post({ op: "drop", reason, address, port: d.port });
  }

  /** Posts a log event, at most one every 10 s per Worker (errors a peer may trigger). */
  protected log(event: string, fields: Record<string, string | number>): void {
    const now = performance.now();
    if (now - this.#lastLog < LOG_EVERY_MS) return;
    this.#lastLog = now;
    this.post({ op: "log", event, fields: { worker: this.index, ...fields } });
  }
}

interface WorkerScope<In> {
  postMessage(message: FromPoolWorker, transfer?: Transferable[]): void;
  onmessage: ((m: MessageEvent<In>) => void) | null;
}

/**
 * In a Worker (nothing elsewhere): answers the main thread's messages
 * with a {@link PoolWorker} made by `create` from the first `init`.
 */
export function runPoolWorker<Init extends PoolInit, Message extends { readonly op: string }>(
  create: (init: Init, post: PostToMain) => PoolWorker<Message>,
): void {
  if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "function") {
    return;
  }
  const scope = globalThis as unknown as WorkerScope<Init | Message | PoolStop>;
  const post: PostToMain = (x, t) => scope.postMessage(x, t ?? []);
  let body: PoolWorker<Message> | undefined;
  scope.onmessage = (m) => {
    const msg = m.data;
    body?.noteMessage();
    if (msg.op === "stop") {
      if (body === undefined) post({ op: "stopped" });
      else body.stopping = true;
      return;
    }
    if (msg.op !== "init") {
      body?.message(msg as Message);
      return;
    }
    if (body !== undefined) return;
    try {
      body = create(msg as Init, post);
      body.noteMessage();
    } catch (e) {
      post({ op: "stopped", error: describe(e) });
      return;
    }
    post({ op: "ready" });
    body.routineServe().then(
      () => post({ op: "stopped" }),
      (e) => post({ op: "stopped", error: describe(e) }),
    );
  };
}
