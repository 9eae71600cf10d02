/**
 * A forwarding Worker of the map-resolver (started by forwarding.ts): it
 * owns one SO_REUSEPORT control socket per family, waits on them with a
 * synchronous `poll()`, drains them with `recvmmsg()`, forwards what
 * forward_path.ts forwards in place with one `sendmmsg()` per batch, and
 * copies the rest into one buffer per batch, posted (transferred) to the
 * main thread. Its counts are in shared memory ({@link ForwardingInit.counts}).
 * Past {@link MAX_BACKLOG} datagrams handed over and not yet handled there,
 * more are dropped and counted, not queued. The loop, the sockets and the
 * messages with the main thread are a pool Worker's
 * (roles/control_io/pool_worker.ts); this file says what a datagram becomes.
 *
 * @module
 */

import { RateLimiter } from "../../core/rate_limit.ts";
import { BACKLOG_FULL, MAX_BACKLOG, type Received } from "../control_io/hand_over.ts";
import {
  describe,
  PoolWorker,
  type PostToMain,
  runPoolWorker,
  SEND_SLOT,
} from "../control_io/pool_worker.ts";
import type { FromPoolWorker, PoolInit, PoolStop } from "../control_io/worker_pool.ts";
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

/** The map-servers to forward to, when they change. */
export interface ForwardingTargets {
  readonly op: "targets";
  readonly targets: readonly ForwardTarget[];
}

/** Messages to the Worker. */
export type ToForwarding = ForwardingInit | ForwardingTargets | PoolStop;

/** Messages from the Worker (no counts: they are in shared memory). */
export type FromForwarding = FromPoolWorker;

/** The Worker's state and loop. */
class Forwarder extends PoolWorker<ForwardingTargets> {
  readonly #path: ForwardPath;

  constructor(init: ForwardingInit, post: PostToMain) {
    const counts = new Float64Array(init.counts, init.index * COUNTS * 8, COUNTS);
    super(init, post, "forwarding", {
      counts,
      sendFull: W_SEND_FULL,
      sendRefused: W_SEND_SOCKET,
    });
    const limiter = init.limiter !== undefined
      ? new RateLimiter(init.limiter.rate, init.limiter.memory)
      : undefined;
    const families = (this.v4 !== undefined ? 1 : 0) | (this.v6 !== undefined ? 2 : 0);
    this.#path = new ForwardPath(
      limiter,
      counts,
      families,
      undefined,
      init.retransmitWindowMs,
      init.recent,
    );
    this.#path.setTargets(init.targets);
  }

  /** Forwards to these map-servers from now on. */
  message(m: ForwardingTargets): void {
    this.#path.setTargets(m.targets);
  }

  /** Forwards a datagram, or reports its drop, or hands it over. */
  protected one(d: Received, now: number): void {
    const { bytes: b, start, end, src4, src6 } = d;
    const path = this.#path;
    const v4 = path.toFamily === 4;
    const tx = v4 ? this.tx4 : this.tx6;
    let code: number;
    let j = -1;
    try {
      if (tx === undefined) code = FWD_MAIN;
      else {
        if (tx.count === tx.slots) this.flush(v4 ? this.v4 : this.v6, tx);
        j = tx.count;
        const at = tx.base(j);
        code = path.handle(b, start, end, src4, src6, now, tx.bytes, at, SEND_SLOT);
      }
    } catch (e) {
      // A bug, never a peer's doing: the main thread decides instead.
      this.log("forwarding-path-error", { error: describe(e) });
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
        return this.reportDrop(path.dropReason, d, now);
      case FWD_RATE_LIMITED:
        return this.reportDrop("rate-limited", d, now);
      case FWD_MAIN_ADMITTED:
        return this.#handOver(UP_ADMITTED, d);
      default:
        return this.#handOver(UP_RAW, d);
    }
  }

  /** Stages a datagram for the main thread (dropped and counted past the backlog). */
  #handOver(kind: number, d: Received): void {
    if (this.stage.stage(kind, d) === BACKLOG_FULL) {
      const c = this.counts;
      c[W_BACKLOG] = c[W_BACKLOG]! + 1;
      this.log("forwarding-backlog-full", { backlog: MAX_BACKLOG });
    }
  }

  /** Posts the staged datagrams. */
  protected postUp(): void {
    const stage = this.stage;
    const first = stage.first;
    const buf = stage.take();
    if (buf === undefined) return;
    this.post({ op: "up", buf, first, seq: stage.seq } satisfies FromForwarding, [buf]);
  }
}

runPoolWorker<ForwardingInit, ForwardingTargets>((init, post) => new Forwarder(init, post));
