/**
 * The map-server on every core: answering Workers (_serving_worker.ts),
 * each with its own SO_REUSEPORT socket per family on the control port,
 * in front of the main thread, which stays the one owner of the state.
 *
 * Who does what:
 * - The kernel spreads datagrams over the Workers' sockets by their LISP
 *   nonce (`nonceSpreadFilter` of control_io/worker_pool.ts, a BPF program
 *   on the reuse-port group), so even one busy source (the map-resolver in
 *   front) keeps every Worker busy, and a retransmission reaches the Worker
 *   of its first try.
 * - A Worker answers what it can alone (fast_path.ts): Map-Requests with a
 *   negative Map-Reply or a proxy Map-Reply, and verifies Map-Registers
 *   (HMAC with the site's prepared key, Map-Notify written and signed).
 * - The main thread gets the rest, and the verified Map-Registers, as the
 *   Workers hand them over (one transferred buffer per receive batch): it
 *   runs them through its ControlPlane and the parts of ms.ts as it does
 *   without Workers, applies each verified Map-Register (limits, store),
 *   and sends what it sends on the first Worker's sockets (same port).
 *
 * How the state stays consistent: only the main thread changes the
 * registrations. Each change is published, before the main thread sends
 * anything about it (its Map-Notify), into the answer table the Workers
 * read in shared memory (answers.ts, under a sequence lock): a Map-Request
 * handled after that moment, by any Worker, sees the registration; one
 * handled while the table changes is read again. Nothing is copied per
 * Worker, so there is no lag to wait out: a registration is visible
 * everywhere once its Map-Notify is on its way. Expiry needs no message
 * either: an answer carries the time its first registration expires, past
 * which the Workers hand the request to the main thread, whose store
 * expires it (and publishes that). The per-source rate limit is one table
 * of buckets in shared memory (core/rate_limit.ts), taken by the Workers
 * and the main thread alike. The Workers count into their own arrays and
 * post the counts with each batch handed over (or within a millisecond).
 * The saved registrations (saved.ts) and the forward guard
 * (core/forward_guard.ts) stay on the main thread, which alone writes the
 * file and forwards.
 *
 * A Worker that dies is an error of the role (`reportError`): the runner
 * stops it, since 1/N of the traffic would reach nobody.
 *
 * @module
 */

import type { Config } from "../../config/mod.ts";
import type { ControlTransportFactory, Peer } from "../../core/control.ts";
import type { Counters } from "../../core/counters.ts";
import type { Logger } from "../../core/log.ts";
import { METRICS } from "../../core/metrics.ts";
import type { RateLimiter } from "../../core/rate_limit.ts";
import { type PoolMember, WorkerPool } from "../control_io/worker_pool.ts";
import type { AnswerTable } from "./answers.ts";
import { FAST_COUNTS } from "./fast_path.ts";
import {
  NOTIFY_SLOTS,
  type ToServing,
  UP_ADMITTED,
  UP_REGISTER,
  UP_REGISTER_KEPT,
  WORKER_COUNTS,
} from "./_serving_worker.ts";

export { defaultWorkers, MAX_WORKERS } from "../control_io/worker_pool.ts";

/** What the main thread does with what the Workers hand over. */
export interface ServingHandlers {
  /** A datagram for the dispatcher; `admitted` when its rate-limit token was taken. */
  deliver(bytes: Uint8Array, from: Peer, admitted: boolean): void;
  /**
   * A verified Map-Register and, if one is wanted, its signed Map-Notify to
   * send once it is applied: the bytes, or what to call for the Worker,
   * which holds them, to send them.
   */
  register(bytes: Uint8Array, from: Peer, notify: Uint8Array | (() => void) | undefined): void;
}

/** Options of {@link ServingPool.start}. */
export interface ServingOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly counters: Counters;
  /** Number of Workers (1..{@link MAX_WORKERS}). */
  readonly workers: number;
  /** The table the main thread publishes to. */
  readonly answers: AnswerTable;
  /** The shared buckets of `control-rate-limit`, if limited. */
  readonly limiter: RateLimiter | undefined;
}

type Series = { metric: (typeof METRICS)[keyof typeof METRICS]; labels: Record<string, string> };

/** The answering Workers and their sockets (see the module notes). */
export class ServingPool {
  readonly #o: ServingOptions;
  readonly #pool: WorkerPool<ToServing>;
  /** Per Worker, Uint8 [seq % NOTIFY_SLOTS]: 1 lets it send the kept Map-Notify of that entry. */
  readonly #verdicts: Uint8Array[] = [];
  /** Per Worker and verdict slot, what lets it send its kept Map-Notify (made once per slot). */
  readonly #release: (() => void)[][] = [];
  /** Whether the post being read held a Map-Register whose Map-Notify the Worker keeps. */
  #kept = false;
  readonly #series: Series[][] = [];

  private constructor(o: ServingOptions) {
    this.#o = o;
    this.#pool = new WorkerPool<ToServing>({
      url: new URL("./_serving_worker.ts", import.meta.url),
      name: "answering",
      prefix: "serving",
      rebindError: "an ms serving on Workers does not move its port",
      logger: o.logger,
      address: o.config.controlAddress,
      port: o.config.controlPort,
      init: (base, m) => {
        const verdicts = new Uint8Array(new SharedArrayBuffer(NOTIFY_SLOTS));
        this.#verdicts[m.index] = verdicts;
        this.#release[m.index] = [];
        return {
          ...base,
          config: o.config,
          verdicts: verdicts.buffer as SharedArrayBuffer,
          answers: o.answers.memory,
          ...(o.limiter !== undefined
            ? { limiter: { rate: o.limiter.rate, memory: o.limiter.memory } }
            : {}),
        };
      },
      counts: (i, counts) => this.#count(i, counts),
      // The Worker sends the Map-Notifies let go as soon as it sees the
      // acknowledgement: at once if busy, or woken from poll().
      acked: (m) => {
        if (this.#kept && Atomics.load(m.mailbox, 1) === 1) m.waker.wake();
        this.#kept = false;
      },
    });
    this.transport = this.#pool.transport;
  }

  /** Opens the sockets, starts the Workers and resolves once every one serves. */
  static async start(o: ServingOptions): Promise<ServingPool> {
    const pool = new ServingPool(o);
    try {
      await pool.#pool.start(o.workers, () => {
        pool.#countSeries(o.workers);
        o.counters.gauge(METRICS.msServingWorkers, () => pool.#pool.size);
      });
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /** The series each count of a Worker goes to. */
  #countSeries(n: number): void {
    const fixed: Series[] = [
      { metric: METRICS.controlMessagesIn, labels: { type: "map-request" } },
      { metric: METRICS.controlMessagesIn, labels: { type: "ecm-map-request" } },
      { metric: METRICS.controlMessagesIn, labels: { type: "map-register" } },
      { metric: METRICS.controlMessagesOut, labels: { type: "map-reply" } },
      { metric: METRICS.msMapRequestsAnswered, labels: { kind: "proxy" } },
      { metric: METRICS.msMapRequestsAnswered, labels: { kind: "negative-site" } },
      { metric: METRICS.msMapRequestsAnswered, labels: { kind: "negative-hole" } },
      { metric: METRICS.controlDropped, labels: { reason: "rate-limited" } },
      { metric: METRICS.msMapRequestsAnswered, labels: { kind: "referral" } },
      { metric: METRICS.msMapReferralsSent, labels: { action: "ms-ack" } },
      { metric: METRICS.controlMessagesOut, labels: { type: "map-referral" } },
    ];
    if (fixed.length !== FAST_COUNTS.length) throw new Error("FAST_COUNTS and their series differ");
    for (let i = 0; i < n; i++) {
      const w = String(i);
      this.#series.push([
        ...fixed,
        { metric: METRICS.msWorkerDatagrams, labels: { worker: w, path: "answered" } },
        { metric: METRICS.msWorkerDatagrams, labels: { worker: w, path: "register" } },
        { metric: METRICS.msWorkerDatagrams, labels: { worker: w, path: "main" } },
        { metric: METRICS.msWorkerDatagrams, labels: { worker: w, path: "dropped" } },
        { metric: METRICS.controlSendErrors, labels: { reason: "socket" } },
        { metric: METRICS.controlSendErrors, labels: { reason: "buffer-full" } },
        { metric: METRICS.controlSendErrors, labels: { reason: "no-socket" } },
        { metric: METRICS.controlMessagesOut, labels: { type: "map-notify" } },
      ]);
      if (this.#series[i]!.length !== FAST_COUNTS.length + WORKER_COUNTS.length) {
        throw new Error("WORKER_COUNTS and their series differ");
      }
    }
  }

  /** Applies the counts Worker `i` posted. */
  #count(i: number, counts: Float64Array): void {
    const series = this.#series[i]!;
    const c = this.#o.counters;
    for (let k = 0; k < counts.length; k++) {
      const n = counts[k]!;
      if (n > 0) c.inc(series[k]!.metric, series[k]!.labels as never, n);
    }
  }

  /** Gives every Worker the sites in force (an API edit): their answers follow at once. */
  updateSites(
    lispSites: Config["lispSites"],
    msStaticRegisteredSites: Config["msStaticRegisteredSites"],
  ): void {
    this.#pool.postAll({ op: "sites", lispSites, msStaticRegisteredSites });
  }

  /** The bound port. */
  get port(): number {
    return this.#pool.port;
  }

  /** Where handed-over datagrams go (set once the main thread's parts exist). */
  attach(h: ServingHandlers): void {
    this.#pool.attach((m: PoolMember, kind, from, data, extra, seq) => {
      if (kind === UP_REGISTER_KEPT) {
        this.#kept = true;
        const slot = seq & (NOTIFY_SLOTS - 1);
        const verdicts = this.#verdicts[m.index]!;
        const release = this.#release[m.index]!;
        release[slot] ??= () => void Atomics.store(verdicts, slot, 1);
        h.register(data, from, release[slot]);
      } else if (kind === UP_REGISTER) h.register(data, from, extra);
      else h.deliver(data, from, kind === UP_ADMITTED);
    });
  }

  /**
   * The main thread's ControlPlane transport: it sends on the first
   * Worker's sockets; what it receives comes through {@link attach}.
   */
  readonly transport: ControlTransportFactory;

  /** Stops the Workers (each within 3 s), then closes the sockets. */
  close(): Promise<void> {
    return this.#pool.close();
  }
}
