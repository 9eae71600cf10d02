/**
 * An answering Worker of the map-server (started by serving.ts): it owns
 * one SO_REUSEPORT control socket per family, waits on them with a
 * synchronous `poll()`, drains them with `recvmmsg()`, runs each datagram
 * through the fast path (fast_path.ts) and sends the answers with one
 * `sendmmsg()` per batch. What the fast path leaves to the main thread is
 * copied into one buffer per batch and posted (transferred) to it, with
 * the counts of what the Worker did.
 *
 * Order: what a Worker hands to the main thread keeps its order, and an
 * answer it would give to a source whose earlier datagram it handed over,
 * not yet handled there, is handed over instead (the main thread
 * acknowledges in shared memory): what one Worker gets from one source is
 * handled in the order it came. Datagrams of one source that the kernel
 * gives to different Workers (serving.ts spreads them by nonce) are
 * handled in any order, as UDP may deliver them. Backlog: past
 * {@link MAX_BACKLOG} datagrams handed over and not yet handled, more are
 * dropped and counted (`dropped`), not queued.
 *
 * The protocol with serving.ts is {@link ServingInit}, {@link FromServing};
 * the loop, the sockets and the hand-over are a pool Worker's
 * (roles/control_io/pool_worker.ts, hand_over.ts).
 *
 * @module
 */

import type { Config } from "../../config/mod.ts";
import { RateLimiter } from "../../core/rate_limit.ts";
import { BACKLOG_FULL, MAX_BACKLOG, type Received, STAGED } from "../control_io/hand_over.ts";
import {
  describe,
  IDLE_MS,
  PoolWorker,
  type PostToMain,
  runPoolWorker,
} from "../control_io/pool_worker.ts";
import type { FromPoolWorker, PoolInit, PoolStop } from "../control_io/worker_pool.ts";
import { type AnswerMemory, AnswerTable } from "./answers.ts";
import {
  FAST_ANSWERED,
  FAST_ANSWERED_DDT,
  FAST_COUNTS,
  FAST_MAIN,
  FAST_MAIN_ADMITTED,
  FAST_RATE_LIMITED,
  FAST_REGISTER,
  FastPath,
  SiteIndex,
} from "./fast_path.ts";
import { Sites } from "./sites.ts";

/** Kinds of the datagrams handed to the main thread. */
export const UP_RAW = 1;
/** The rate limit was taken. */
export const UP_ADMITTED = 2;
/** A verified Map-Register; its Map-Notify (if any) follows it, for the main thread to send. */
export const UP_REGISTER = 3;
/**
 * A verified Map-Register whose Map-Notify the Worker keeps: it sends it
 * once the main thread, having applied the registration, says so (its
 * verdict byte, {@link ServingInit.verdicts}).
 */
export const UP_REGISTER_KEPT = 4;
/** Map-Notifies a Worker keeps at once (a power of two): the verdict ring's size. */
export const NOTIFY_SLOTS = 4096;
/** The largest Map-Notify a Worker keeps; a larger one goes with its Map-Register. */
const NOTIFY_SLOT = 1024;

/** What the Worker counts beyond the fast path's counts (appended after FAST_COUNTS). */
export const WORKER_COUNTS = [
  "path answered",
  "path register",
  "path main",
  "path dropped",
  "send-error socket",
  "send-error buffer-full",
  "send-error no-socket",
  "out map-notify",
] as const;
const W_ANSWERED = FAST_COUNTS.length;
const W_REGISTER = W_ANSWERED + 1;
const W_MAIN = W_ANSWERED + 2;
const W_DROPPED = W_ANSWERED + 3;
const W_SEND_SOCKET = W_ANSWERED + 4;
const W_SEND_FULL = W_ANSWERED + 5;
const W_SEND_NO_SOCKET = W_ANSWERED + 6;
const W_OUT_NOTIFY = W_ANSWERED + 7;
const COUNTS = FAST_COUNTS.length + WORKER_COUNTS.length;

/** The fast path's answers (any UDP datagram). */
const OUT_BYTES = 65536;
/** Counts are posted at most this often, ms, and never later than this after a change. */
const COUNTS_MS = 1;
/** Per-source order table (a power of two). */
const ORDER_SLOTS = 4096;

/** The Worker's settings (beyond those of every pool Worker). */
export interface ServingInit extends PoolInit {
  readonly config: Config;
  readonly answers: AnswerMemory;
  readonly limiter?: { readonly rate: number; readonly memory: SharedArrayBuffer | ArrayBuffer };
  /**
   * Uint8 [seq % NOTIFY_SLOTS]: 1 when the main thread applied the kept
   * Map-Register of that sequence number and its Map-Notify may go.
   */
  readonly verdicts: SharedArrayBuffer;
}

/** The sites in force after an API edit (roles/map_server/site_edits.ts). */
export interface ServingSites {
  readonly op: "sites";
  readonly lispSites: Config["lispSites"];
  readonly msStaticRegisteredSites: Config["msStaticRegisteredSites"];
}

/** Messages to the Worker. */
export type ToServing = ServingInit | ServingSites | PoolStop;

/**
 * Messages from the Worker: an `up`'s counts are by FAST_COUNTS then
 * WORKER_COUNTS index; a `drop` is `rate-limited`.
 */
export type FromServing = FromPoolWorker;

/** The Worker's state and loop. */
class Server extends PoolWorker<ServingSites> {
  readonly #fast: FastPath;
  readonly #out = new Uint8Array(OUT_BYTES);
  #countsDirty = false;
  #lastPost = 0;
  /** Per source hash: the sequence number of its last datagram handed over. */
  readonly #order = new Int32Array(ORDER_SLOTS);
  readonly #verdicts: Uint8Array;
  /** Kept Map-Notifies: per slot its sequence number (-1: none), length, family, port, IPv4 address. */
  readonly #nSeq = new Float64Array(NOTIFY_SLOTS).fill(-1);
  readonly #nLen = new Int32Array(NOTIFY_SLOTS);
  readonly #nFam = new Uint8Array(NOTIFY_SLOTS);
  readonly #nPort = new Uint16Array(NOTIFY_SLOTS);
  readonly #nAddr4 = new Uint32Array(NOTIFY_SLOTS);
  readonly #nAddr6 = new Uint8Array(NOTIFY_SLOTS * 16);
  readonly #nBytes = new Uint8Array(NOTIFY_SLOTS * NOTIFY_SLOT);
  /** Sequence numbers up to this one had their kept Map-Notify sent or dropped. */
  #notifiedUpTo = 0;
  readonly #config: Config;

  constructor(init: ServingInit, post: PostToMain) {
    const counts = new Float64Array(COUNTS);
    super(init, post, "serving", {
      counts,
      sendFull: W_SEND_FULL,
      sendRefused: W_SEND_SOCKET,
    });
    this.#config = init.config;
    this.#verdicts = new Uint8Array(init.verdicts);
    const limiter = init.limiter !== undefined
      ? new RateLimiter(init.limiter.rate, init.limiter.memory)
      : undefined;
    this.#fast = new FastPath(
      new SiteIndex(new Sites(init.config)),
      new AnswerTable(init.answers),
      limiter,
      counts,
    );
  }

  /** Answers from these sites from now on. */
  message(m: ServingSites): void {
    const config = {
      ...this.#config,
      lispSites: m.lispSites,
      msStaticRegisteredSites: m.msStaticRegisteredSites,
    };
    this.#fast.setSites(new SiteIndex(new Sites(config)));
  }

  protected override beforeWait(): void {
    // What the main thread acknowledged meanwhile would wait for the timeout.
    if (Atomics.load(this.acks, this.index) > this.#notifiedUpTo) this.#sendNotifies();
  }

  protected override waitMs(): number {
    return this.#countsDirty ? COUNTS_MS : IDLE_MS;
  }

  protected override beforeDrain(): void {
    this.#sendNotifies();
  }

  protected override afterDrain(): void {
    this.#sendNotifies();
  }

  /** Handles a datagram. */
  protected one(d: Received, now: number): void {
    const { bytes: b, start, end, fam, src4, src6, port } = d;
    const h = sourceHash(b, src4, src6, port);
    let code: number;
    const fast = this.#fast;
    try {
      code = fast.handle(b, start, end, src4, src6, now, this.#out, 0, this.#out.length);
    } catch (e) {
      // A bug, never a peer's doing: the main thread decides instead.
      this.log("serving-fast-path-error", { error: describe(e) });
      code = FAST_MAIN;
    }
    const c = this.counts;
    switch (code) {
      case FAST_ANSWERED:
      case FAST_ANSWERED_DDT: {
        if (this.#order[h]! > Atomics.load(this.acks, this.index)) {
          // An earlier datagram of this source waits in the main thread: the
          // answer must not overtake it (what is handed over keeps its order).
          fast.uncount();
          this.#handOver(UP_ADMITTED, d, 0, h);
          break;
        }
        c[W_ANSWERED] = c[W_ANSWERED]! + 1;
        this.#answer(b, src4, src6, port);
        if (code === FAST_ANSWERED_DDT) this.#referral(b, src4, src6, port);
        break;
      }
      case FAST_REGISTER: {
        c[W_REGISTER] = c[W_REGISTER]! + 1;
        const n = fast.outLength;
        // Keep the Map-Notify here when it fits and its slot is free.
        const next = this.stage.seq + 1;
        const keep = n > 0 && n <= NOTIFY_SLOT &&
          next - Atomics.load(this.acks, this.index) < NOTIFY_SLOTS &&
          next - this.#notifiedUpTo < NOTIFY_SLOTS;
        if (keep) {
          const k = next & (NOTIFY_SLOTS - 1);
          const out = this.#out;
          const at = k * NOTIFY_SLOT;
          for (let j = 0; j < n; j++) this.#nBytes[at + j] = out[j]!;
          this.#nLen[k] = n;
          this.#nFam[k] = fam;
          this.#nPort[k] = port;
          if (fam === 4) this.#nAddr4[k] = src4;
          else for (let j = 0; j < 16; j++) this.#nAddr6[k * 16 + j] = b[src6 + j]!;
          if (this.#handOver(UP_REGISTER_KEPT, d, 0, h)) {
            this.#nSeq[k] = this.stage.seq;
          }
        } else this.#handOver(UP_REGISTER, d, n, h);
        break;
      }
      case FAST_RATE_LIMITED:
        c[W_DROPPED] = c[W_DROPPED]! + 1;
        this.reportDrop("rate-limited", d, now);
        break;
      case FAST_MAIN_ADMITTED:
        this.#handOver(UP_ADMITTED, d, 0, h);
        break;
      default:
        this.#handOver(UP_RAW, d, 0, h);
    }
    this.#countsDirty = true;
  }

  /** Queues the fast path's answer (in #out) to its destination. */
  #answer(b: Uint8Array, src4: number, src6: number, port: number): void {
    const f = this.#fast;
    const v4 = f.toFamily === 4;
    const j = this.#queue(v4, 0, f.outLength);
    if (j < 0) return;
    const tx = (v4 ? this.tx4 : this.tx6)!;
    if (f.toAddress >= 0) {
      if (v4) {
        const a = f.toAddress;
        tx.setPeer4(
          j,
          ((b[a]! << 24) | (b[a + 1]! << 16) | (b[a + 2]! << 8) | b[a + 3]!) >>> 0,
          f.toPort,
        );
      } else tx.setPeer6(j, b, f.toAddress, f.toPort);
    } else if (v4) tx.setPeer4(j, src4, port);
    else tx.setPeer6(j, b, src6, port);
  }

  /** Queues a DDT answer's MS-ACK (in #out) to the source. */
  #referral(b: Uint8Array, src4: number, src6: number, port: number): void {
    const f = this.#fast;
    const v4 = src6 < 0;
    const j = this.#queue(v4, f.referralAt, f.referralLength);
    if (j < 0) return;
    if (v4) this.tx4!.setPeer4(j, src4, port);
    else this.tx6!.setPeer6(j, b, src6, port);
  }

  /**
   * Copies `#out[from, from + n)` into the next slot of the send batch of
   * that family (flushing a full one first) and returns the slot, for the
   * caller to set its peer; -1 (counted) without a socket of that family.
   */
  #queue(v4: boolean, from: number, n: number): number {
    const tx = v4 ? this.tx4 : this.tx6;
    if (tx === undefined) {
      const c = this.counts;
      c[W_SEND_NO_SOCKET] = c[W_SEND_NO_SOCKET]! + 1;
      return -1;
    }
    if (tx.count === tx.slots) this.flush(v4 ? this.v4 : this.v6, tx);
    const j = tx.count++;
    const at = tx.base(j);
    const out = this.#out;
    for (let k = 0; k < n; k++) tx.bytes[at + k] = out[from + k]!;
    tx.offset[j] = at;
    tx.length[j] = n;
    return j;
  }

  /** Copies a datagram (and a Map-Notify from #out) into the staging buffer for the main thread. */
  #handOver(kind: number, d: Received, notify: number, h: number): boolean {
    const c = this.counts;
    const r = this.stage.stage(kind, d, this.#out, notify);
    if (r !== STAGED) {
      if (r === BACKLOG_FULL) {
        c[W_DROPPED] = c[W_DROPPED]! + 1;
        this.log("serving-backlog-full", { backlog: MAX_BACKLOG });
      }
      return false;
    }
    this.#order[h] = this.stage.seq;
    c[W_MAIN] = c[W_MAIN]! + (kind === UP_REGISTER || kind === UP_REGISTER_KEPT ? 0 : 1);
    this.#countsDirty = true;
    return true;
  }

  /** Sends the kept Map-Notifies the main thread let go (see UP_REGISTER_KEPT). */
  #sendNotifies(): void {
    const acked = Atomics.load(this.acks, this.index);
    if (acked <= this.#notifiedUpTo) return;
    const c = this.counts;
    for (let s = this.#notifiedUpTo + 1; s <= acked; s++) {
      const k = s & (NOTIFY_SLOTS - 1);
      if (this.#nSeq[k] !== s) continue;
      this.#nSeq[k] = -1;
      if (Atomics.exchange(this.#verdicts, k, 0) !== 1) continue;
      const v4 = this.#nFam[k] === 4;
      const tx = v4 ? this.tx4 : this.tx6;
      if (tx === undefined) continue;
      if (tx.count === tx.slots) this.flush(v4 ? this.v4 : this.v6, tx);
      const j = tx.count++;
      const at = tx.base(j);
      const n = this.#nLen[k]!;
      const nb = this.#nBytes;
      const from = k * NOTIFY_SLOT;
      for (let x = 0; x < n; x++) tx.bytes[at + x] = nb[from + x]!;
      tx.offset[j] = at;
      tx.length[j] = n;
      if (v4) tx.setPeer4(j, this.#nAddr4[k]!, this.#nPort[k]!);
      else tx.setPeer6(j, this.#nAddr6, k * 16, this.#nPort[k]!);
      c[W_OUT_NOTIFY] = c[W_OUT_NOTIFY]! + 1;
      this.#countsDirty = true;
    }
    this.#notifiedUpTo = acked;
    this.flush(this.v4, this.tx4);
    this.flush(this.v6, this.tx6);
  }

  /** Posts the staged datagrams and the counts (the counts at most every COUNTS_MS). */
  protected postUp(force: boolean): void {
    const now = performance.now();
    const stage = this.stage;
    const staged = stage.length > 0;
    const countsDue = this.#countsDirty && (force || now - this.#lastPost >= COUNTS_MS);
    if (!staged && !countsDue) return;
    const counts = this.#countsDirty ? this.counts.slice() : undefined;
    if (counts !== undefined) {
      this.counts.fill(0);
      this.#countsDirty = false;
    }
    this.#lastPost = now;
    const first = stage.first;
    const buf = stage.take();
    if (buf !== undefined) {
      this.post({ op: "up", buf, seq: stage.seq, first, ...(counts ? { counts } : {}) }, [buf]);
    } else {
      this.post({ op: "up", seq: stage.seq, first, ...(counts ? { counts } : {}) });
    }
  }
}

/** A hash of a source address and port into the order table. */
function sourceHash(b: Uint8Array, src4: number, src6: number, port: number): number {
  let h = Math.imul(port ^ 0x9e37, 0x85ebca6b);
  if (src6 < 0) h ^= Math.imul(src4 | 0, 0xc2b2ae35);
  else {for (let k = 0; k < 16; k += 4) {
      h = Math.imul(
        h ^
          ((b[src6 + k]! << 24) | (b[src6 + k + 1]! << 16) | (b[src6 + k + 2]! << 8) |
            b[src6 + k + 3]!),
        0xc2b2ae35,
      );
    }}
  h ^= h >>> 15;
  return h & (ORDER_SLOTS - 1);
}

runPoolWorker<ServingInit, ServingSites>((init, post) => new Server(init, post));
