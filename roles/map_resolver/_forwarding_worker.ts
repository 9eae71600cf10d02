/**
 * A forwarding Worker of the map-resolver (started by forwarding.ts): it
 * owns one SO_REUSEPORT control socket per family, waits on them with a
 * synchronous `poll()`, drains them with `recvmmsg()`, forwards what
 * forward_path.ts forwards in place with one `sendmmsg()` per batch, and
 * copies the rest into one buffer per batch, posted (transferred) to the
 * main thread. Its counts are in shared memory ({@link ForwardingInit.counts}). Past {@link MAX_BACKLOG}
 * datagrams handed over and not yet handled there, more are dropped and
 * counted, not queued.
 *
 * @module
 */

import { RateLimiter } from "../../core/rate_limit.ts";
import { errnoName, libc, u32ToIpv4 } from "../../ffi/libc.ts";
import { PacketBatch, PollSet, UdpSocket } from "../../ffi/udp.ts";
import { BACKLOG_FULL, HandOverStage, MAX_BACKLOG } from "../control_io/hand_over.ts";
import { sendBatchCounting } from "../control_io/socket.ts";
import type { FromPoolWorker, PoolInit, PoolStop } from "../control_io/worker_pool.ts";
import { ipv6FromBytes } from "../../wire/ip_text.ts";
import {
  FORWARD_COUNTS,
  ForwardPath,
  type ForwardTarget,
  FWD_DROPPED,
  FWD_MAIN,
  FWD_MAIN_ADMITTED,
  FWD_RATE_LIMITED,
  FWD_SENT,
} from "./forward_path.ts";

/** Kinds of the datagrams handed to the main thread. */
export const UP_RAW = 1;
/** The rate-limit token was taken. */
export const UP_ADMITTED = 2;
/** What the Worker counts beyond the fast path's (appended after FORWARD_COUNTS). */
export const WORKER_COUNTS = [
  "dropped backlog",
  "send-error socket",
  "send-error buffer-full",
] as const;
const W_BACKLOG = FORWARD_COUNTS.length;
const W_SEND_SOCKET = W_BACKLOG + 1;
const W_SEND_FULL = W_BACKLOG + 2;
/** Counts of one Worker in the shared counts memory. */
export const COUNTS = FORWARD_COUNTS.length + WORKER_COUNTS.length;

const SLOTS = 64;
const RECV_SLOT = 65536;
const SEND_SLOT = 2048;
const DRAIN_BATCHES = 16;
const IDLE_MS = 250;
/** Per source hash: when its last drop was reported (a power of two). */
const REPORT_SLOTS = 4096;

/** The Worker's settings (beyond those of every pool Worker). */
export interface ForwardingInit extends PoolInit {
  readonly limiter?: { readonly rate: number; readonly memory: SharedArrayBuffer | ArrayBuffer };
  readonly targets: readonly ForwardTarget[];
  /** How long an ITR's repeated request for an EID goes to the next map-server, ms. */
  readonly retransmitWindowMs: number;
  /** The table of recent forwards, one for all Workers (ForwardPath.recentMemory). */
  readonly recent: SharedArrayBuffer;
  /**
   * Float64 [index * COUNTS + k]: what this Worker counted, by
   * FORWARD_COUNTS then WORKER_COUNTS index, written by it alone, read by
   * the main thread when the counters are listed.
   */
  readonly counts: SharedArrayBuffer;
}

/** Messages to the Worker. */
export type ToForwarding =
  | ForwardingInit
  | { readonly op: "targets"; readonly targets: readonly ForwardTarget[] }
  | PoolStop;

/** Messages from the Worker (no counts: they are in shared memory). */
export type FromForwarding = FromPoolWorker;

interface WorkerScope {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((m: MessageEvent<ToForwarding>) => void) | null;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

class Forwarder {
  readonly #post: WorkerScope["postMessage"];
  readonly #v4: UdpSocket | undefined;
  readonly #v6: UdpSocket | undefined;
  readonly #wakeFd: number;
  readonly #mailbox: Int32Array;
  readonly #acks: Int32Array;
  readonly #index: number;
  readonly #path: ForwardPath;
  readonly #rx = new PacketBatch({ slots: SLOTS, slotSize: RECV_SLOT, headroom: 0 });
  readonly #tx4: PacketBatch | undefined;
  readonly #tx6: PacketBatch | undefined;
  readonly #stage: HandOverStage;
  readonly #counts: Float64Array;
  readonly #eventfdScratch = new Uint8Array(8);
  readonly #reported = new Float64Array(REPORT_SLOTS).fill(-Infinity);
  #handled = 0;
  #lastError = 0;
  stopping = false;

  constructor(init: ForwardingInit, post: WorkerScope["postMessage"]) {
    this.#post = post;
    this.#index = init.index;
    this.#v4 = init.fds.v4 >= 0 ? UdpSocket.fromFd(init.fds.v4) : undefined;
    this.#v6 = init.fds.v6 >= 0 ? UdpSocket.fromFd(init.fds.v6) : undefined;
    if (this.#v4 === undefined && this.#v6 === undefined) throw new Error("no socket");
    const tx = { slots: SLOTS, slotSize: SEND_SLOT, headroom: 0 };
    if (this.#v4 !== undefined) this.#tx4 = new PacketBatch(tx);
    if (this.#v6 !== undefined) this.#tx6 = new PacketBatch(tx);
    this.#wakeFd = init.wakeFd;
    this.#mailbox = new Int32Array(init.mailbox);
    this.#acks = new Int32Array(init.acks);
    this.#stage = new HandOverStage(this.#acks, this.#index, () => this.#postUp());
    this.#counts = new Float64Array(init.counts, init.index * COUNTS * 8, COUNTS);
    const limiter = init.limiter !== undefined
      ? new RateLimiter(init.limiter.rate, init.limiter.memory)
      : undefined;
    const families = (this.#v4 !== undefined ? 1 : 0) | (this.#v6 !== undefined ? 2 : 0);
    this.#path = new ForwardPath(
      limiter,
      this.#counts,
      families,
      undefined,
      init.retransmitWindowMs,
      init.recent,
    );
    this.#path.setTargets(init.targets);
  }

  setTargets(targets: readonly ForwardTarget[]): void {
    this.#path.setTargets(targets);
  }

  noteMessage(): void {
    this.#handled++;
  }

  async routineForward(): Promise<void> {
    const poll = new PollSet([this.#v4?.fd ?? -1, this.#v6?.fd ?? -1, this.#wakeFd]);
    const lib = libc();
    while (!this.stopping) {
      Atomics.store(this.#mailbox, 1, 1);
      poll.poll(IDLE_MS);
      Atomics.store(this.#mailbox, 1, 0);
      if (poll.readable(2)) lib.read(this.#wakeFd, this.#eventfdScratch, 8n);
      if (Atomics.load(this.#mailbox, 0) !== this.#handled) {
        // Messages wait in the event loop: let them in (targets, stop).
        await new Promise<void>((r) => setTimeout(r, 0));
        if (this.stopping) break;
      }
      const now = Date.now();
      if (this.#v4 !== undefined && poll.readable(0)) this.#drain(this.#v4, now);
      if (this.#v6 !== undefined && poll.readable(1)) this.#drain(this.#v6, now);
      this.#postUp();
    }
    this.#postUp();
  }

  #drain(socket: UdpSocket, now: number): void {
    const rx = this.#rx;
    for (let k = 0; k < DRAIN_BATCHES; k++) {
      const n = socket.recvmmsg(rx);
      if (n <= 0) {
        if (n < 0) this.#log("forwarding-receive-error", { error: errnoName(socket.errno) });
        return;
      }
      for (let i = 0; i < n; i++) this.#one(i, now);
      this.#flush(this.#v4, this.#tx4);
      this.#flush(this.#v6, this.#tx6);
      this.#postUp();
      if (n < rx.slots) return;
    }
  }

  #one(i: number, now: number): void {
    const rx = this.#rx;
    const b = rx.bytes;
    const start = rx.offset[i]!;
    const end = start + rx.length[i]!;
    const fam = rx.peerFamily(i);
    if (fam === 0) return;
    const src4 = fam === 4 ? rx.peerAddr4(i) : 0;
    const src6 = fam === 6 ? rx.peerAddr6Offset(i) : -1;
    const port = rx.peerPort(i);
    const path = this.#path;
    const v4 = path.toFamily === 4;
    const tx = v4 ? this.#tx4 : this.#tx6;
    let code: number;
    let j = -1;
    try {
      if (tx === undefined) code = FWD_MAIN;
      else {
        if (tx.count === tx.slots) this.#flush(v4 ? this.#v4 : this.#v6, tx);
        j = tx.count;
        const at = tx.base(j);
        code = path.handle(b, start, end, src4, src6, now, tx.bytes, at, SEND_SLOT);
      }
    } catch (e) {
      // A bug, never a peer's doing: the main thread decides instead.
      this.#log("forwarding-path-error", { error: describe(e) });
      code = FWD_MAIN;
    }
    switch (code) {
      case FWD_SENT: {
        const t = tx!;
        t.count++;
        t.offset[j] = t.base(j);
        t.length[j] = path.outLength;
        if (v4) t.setPeer4(j, path.toAddr4, path.toPort);
        else t.setPeer6(j, path.toAddr6, 0, path.toPort);
        return;
      }
      case FWD_DROPPED:
        return this.#report(path.dropReason, b, src4, src6, port, now);
      case FWD_RATE_LIMITED:
        return this.#report("rate-limited", b, src4, src6, port, now);
      case FWD_MAIN_ADMITTED:
        return this.#handOver(UP_ADMITTED, b, start, end, fam, src4, src6, port);
      default:
        return this.#handOver(UP_RAW, b, start, end, fam, src4, src6, port);
    }
  }

  /** Posts a drop for the main thread's log, at most once a minute per source address. */
  #report(
    reason: string,
    b: Uint8Array,
    src4: number,
    src6: number,
    port: number,
    now: number,
  ): void {
    let h = Math.imul(src4 ^ reason.length, 0x9e3779b1);
    if (src6 >= 0) { for (let k = 0; k < 16; k++) h = Math.imul(h ^ b[src6 + k]!, 0x01000193); }
    h = (h ^ (h >>> 15)) & (REPORT_SLOTS - 1);
    if (now - this.#reported[h]! < 60_000) return;
    this.#reported[h] = now;
    const address = src6 < 0 ? u32ToIpv4(src4) : ipv6FromBytes(b, src6);
    this.#post({ op: "drop", reason, address, port } satisfies FromForwarding);
  }

  #flush(socket: UdpSocket | undefined, tx: PacketBatch | undefined): void {
    sendBatchCounting(socket, tx, this.#counts, W_SEND_FULL, W_SEND_SOCKET);
  }

  #handOver(
    kind: number,
    b: Uint8Array,
    start: number,
    end: number,
    fam: number,
    src4: number,
    src6: number,
    port: number,
  ): void {
    if (this.#stage.stage(kind, b, start, end, fam, src4, src6, port) === BACKLOG_FULL) {
      const c = this.#counts;
      c[W_BACKLOG] = c[W_BACKLOG]! + 1;
      this.#log("forwarding-backlog-full", { backlog: MAX_BACKLOG });
    }
  }

  /** Posts the staged datagrams. */
  #postUp(): void {
    const stage = this.#stage;
    const first = stage.first;
    const buf = stage.take();
    if (buf === undefined) return;
    this.#post({ op: "up", buf, first, seq: stage.seq } satisfies FromForwarding, [buf]);
  }

  /** Posts a log event, at most one every 10 s per Worker. */
  #log(event: string, fields: Record<string, string | number>): void {
    const now = performance.now();
    if (now - this.#lastError < 10_000) return;
    this.#lastError = now;
    this.#post({ op: "log", event, fields: { worker: this.#index, ...fields } });
  }
}

function isWorker(): boolean {
  return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "function";
}

if (isWorker()) {
  const scope = globalThis as unknown as WorkerScope;
  let fwd: Forwarder | undefined;
  scope.onmessage = (m: MessageEvent<ToForwarding>) => {
    const msg = m.data;
    fwd?.noteMessage();
    if (msg.op === "stop") {
      if (fwd === undefined) scope.postMessage({ op: "stopped" } satisfies FromForwarding);
      else fwd.stopping = true;
      return;
    }
    if (msg.op === "targets") {
      fwd?.setTargets(msg.targets);
      return;
    }
    if (fwd !== undefined) return;
    try {
      fwd = new Forwarder(msg, (x, t) => scope.postMessage(x, t ?? []));
      fwd.noteMessage();
    } catch (e) {
      scope.postMessage({ op: "stopped", error: describe(e) } satisfies FromForwarding);
      return;
    }
    scope.postMessage({ op: "ready" } satisfies FromForwarding);
    const f = fwd;
    f.routineForward().then(
      () => scope.postMessage({ op: "stopped" } satisfies FromForwarding),
      (e) => scope.postMessage({ op: "stopped", error: describe(e) } satisfies FromForwarding),
    );
  };
}
