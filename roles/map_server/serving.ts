/**
 * The map-server on every core: answering Workers (_serving_worker.ts),
 * each with its own SO_REUSEPORT socket per family on the control port,
 * in front of the main thread, which stays the one owner of the state.
 *
 * Who does what:
 * - The kernel spreads datagrams over the Workers' sockets by their LISP
 *   nonce ({@link nonceSpreadFilter}, a BPF program on the reuse-port
 *   group), so even one busy source (the map-resolver in front) keeps every
 *   Worker busy, and a retransmission reaches the Worker of its first try.
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
import {
  type ControlTransport,
  type ControlTransportFactory,
  formatPeer,
  type Peer,
  type TransportHooks,
} from "../../core/control.ts";
import type { Counters } from "../../core/counters.ts";
import type { Logger } from "../../core/log.ts";
import { METRICS } from "../../core/metrics.ts";
import type { RateLimiter } from "../../core/rate_limit.ts";
import { HOST_LE } from "../../ffi/libc.ts";
import type { UdpSocket } from "../../ffi/udp.ts";
import { Waker } from "../../ffi/wait.ts";
import { isIPv4 } from "../../wire/ip_text.ts";
import { HandOverReader } from "../control_io/hand_over.ts";
import { logSocketBuffers, openControlSocket, SendQueue } from "../control_io/socket.ts";
import type { AnswerTable } from "./answers.ts";
import { FAST_COUNTS } from "./fast_path.ts";
import {
  type FromServing,
  NOTIFY_SLOTS,
  type ToServing,
  UP_ADMITTED,
  UP_REGISTER,
  UP_REGISTER_KEPT,
  WORKER_COUNTS,
} from "./_serving_worker.ts";

/** How long a Worker has to start or to stop. */
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 3_000;
/** Most answering Workers. */
export const MAX_WORKERS = 16;

/** The default number of answering Workers: one per CPU the process may use, up to 16. */
export function defaultWorkers(): number {
  const n = globalThis.navigator?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.min(MAX_WORKERS, n));
}

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

interface Member {
  readonly worker: Worker;
  readonly waker: Waker;
  readonly mailbox: Int32Array;
  /** Uint8 [seq % NOTIFY_SLOTS]: 1 lets the Worker send the kept Map-Notify of that entry. */
  readonly verdicts: Uint8Array;
  /** Per verdict slot, what lets the Worker send its kept Map-Notify (made once per slot). */
  readonly release: (() => void)[];
  readonly v4: UdpSocket | undefined;
  readonly v6: UdpSocket | undefined;
  readonly stopped: Promise<void>;
  readonly done: () => void;
}

/**
 * A classic BPF program for a reuse-port group of `n` sockets: the socket
 * of a datagram is its LISP nonce (its two halves XORed) modulo `n` (bytes
 * 4..11 of the message, or of the Map-Request inside an ECM over IPv4), so
 * one busy source (a
 * map-resolver in front of the ms sends everything from one address and
 * port, which the kernel's own hash would give to one socket) spreads over
 * every Worker, while a message and its retransmissions (same nonce) stay
 * on one.
 */
export function nonceSpreadFilter(n: number): Uint8Array {
  const code: [number, number, number, number][] = [
    [0x30, 0, 0, 0], // 0 ldb [0]: type and flags
    [0x74, 0, 0, 4], // 1 rsh #4: the type
    [0x15, 0, 5, 8], // 2 jeq #8 (ECM) ? 3 : 8
    [0x20, 0, 0, 36], // 3 ld [36]: ECM 4 + IPv4 20 + UDP 8, then the Map-Request's nonce at 4
    [0x02, 0, 0, 0], // 4 st M[0]
    [0x20, 0, 0, 40], // 5 ld [40]: its low half
    [0x61, 0, 0, 0], // 6 ldx M[0]
    [0x05, 0, 0, 4], // 7 ja 12
    [0x20, 0, 0, 4], // 8 ld [4]: the message's nonce
    [0x02, 0, 0, 0], // 9 st M[0]
    [0x20, 0, 0, 8], // 10 ld [8]: its low half
    [0x61, 0, 0, 0], // 11 ldx M[0]
    [0xac, 0, 0, 0], // 12 xor x: both halves
    [0x94, 0, 0, n], // 13 mod #n
    [0x16, 0, 0, 0], // 14 ret a: the socket's index in the group
  ];
  const b = new Uint8Array(code.length * 8);
  const v = new DataView(b.buffer);
  code.forEach(([op, jt, jf, k], i) => {
    v.setUint16(i * 8, op, HOST_LE);
    b[i * 8 + 2] = jt;
    b[i * 8 + 3] = jf;
    v.setUint32(i * 8 + 4, k, HOST_LE);
  });
  return b;
}

/**
 * Opens `n` sockets on one address and port, SO_REUSEPORT, spread by
 * {@link nonceSpreadFilter}; the port is checked free first. Without the
 * filter it logs `event` (the kernel's hash then spreads the datagrams).
 * The ms's answering and the mr's forwarding Workers both use it.
 */
export function openReusePortGroup(
  address: string,
  port: number,
  n: number,
  logger?: Logger,
  event = "serving-spread-unavailable",
): UdpSocket[] {
  // Without SO_REUSEPORT this bind fails when another process holds the port,
  // which a group of reuse-port sockets would otherwise share with it.
  const probe = openControlSocket(address, port);
  const p = probe.localAddress().port;
  probe.close();
  const out: UdpSocket[] = [];
  try {
    for (let i = 0; i < n; i++) out.push(openControlSocket(address, p, { reusePort: true }));
  } catch (e) {
    for (const s of out) s.close();
    throw e;
  }
  if (n > 1) {
    try {
      out[0]!.attachReusePortFilter(nonceSpreadFilter(n));
    } catch (e) {
      // Without it the kernel's hash of addresses and ports spreads the datagrams.
      logger?.warn(event, { error: (e as Error).message });
    }
  }
  return out;
}

/**
 * The reuse-port groups of a pool: on `address` (its family only), or on
 * both wildcards (IPv6 where the host has it, on the port IPv4 got).
 */
export function openReusePortGroups(
  address: string | undefined,
  port: number,
  n: number,
  logger: Logger,
  event?: string,
): { v4: UdpSocket[]; v6: UdpSocket[] } {
  if (address !== undefined) {
    const group = openReusePortGroup(address, port, n, logger, event);
    return isIPv4(address) ? { v4: group, v6: [] } : { v4: [], v6: group };
  }
  const v4 = openReusePortGroup("0.0.0.0", port, n, logger, event);
  let v6: UdpSocket[] = [];
  try {
    v6 = openReusePortGroup("::", v4[0]!.localAddress().port, n, logger, event);
  } catch (e) {
    logger.warn("control-ipv6-unavailable", { error: (e as Error).message });
  }
  return { v4, v6 };
}

/** What {@link stopPool} needs of a pool's Worker. */
export interface PoolMember {
  readonly worker: Worker;
  readonly waker: { close(): void };
  readonly stopped: Promise<void>;
}

/**
 * A pool's close: flushes the main thread's sends, asks each Worker to stop
 * (`stop`), waits for them at most 3 s, terminates them and closes their
 * wakers, then the sockets. The ms's and the mr's pools share it.
 */
export async function stopPool<M extends PoolMember>(
  queue: SendQueue | undefined,
  members: readonly M[],
  sockets: readonly UdpSocket[],
  stop: (m: M) => void,
): Promise<void> {
  queue?.flush();
  for (const m of members) stop(m);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((r) => (timer = setTimeout(r, STOP_TIMEOUT_MS)));
  await Promise.race([Promise.all(members.map((m) => m.stopped)), late]);
  clearTimeout(timer);
  for (const m of members) {
    m.worker.terminate();
    m.waker.close();
  }
  for (const s of sockets) s.close();
}

/** The answering Workers and their sockets (see the module notes). */
export class ServingPool {
  readonly #o: ServingOptions;
  readonly #members: Member[] = [];
  readonly #acks: Int32Array;
  readonly #sockets: UdpSocket[] = [];
  readonly #address: string | undefined;
  #port = 0;
  #handlers: ServingHandlers | undefined;
  #queue: SendQueue | undefined;
  #closing: Promise<void> | undefined;
  /** Walks what the Workers hand over. */
  readonly #reader = new HandOverReader((e) =>
    this.#o.logger.limited("serving-hand-over", 60_000, "error", "serving-hand-over-failed", {
      error: e instanceof Error ? e.message : String(e),
    })
  );
  /** Whether the buffer being read held a Map-Register whose Map-Notify the Worker keeps. */
  #kept = false;
  readonly #series: {
    metric: (typeof METRICS)[keyof typeof METRICS];
    labels: Record<string, string>;
  }[][] = [];

  private constructor(o: ServingOptions) {
    this.#o = o;
    this.#address = o.config.controlAddress;
    this.#acks = new Int32Array(new SharedArrayBuffer(4 * MAX_WORKERS));
  }

  /** Opens the sockets, starts the Workers and resolves once every one serves. */
  static async start(o: ServingOptions): Promise<ServingPool> {
    const n = o.workers;
    if (!(Number.isInteger(n) && n >= 1 && n <= MAX_WORKERS)) {
      throw new RangeError(`answering Workers: ${n}, not 1..${MAX_WORKERS}`);
    }
    const pool = new ServingPool(o);
    try {
      await pool.#start(n);
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  async #start(n: number): Promise<void> {
    const o = this.#o;
    const address = this.#address;
    const { v4, v6 } = openReusePortGroups(address, o.config.controlPort, n, o.logger);
    this.#sockets.push(...v4, ...v6);
    this.#port = (v4[0] ?? v6[0])!.localAddress().port;
    for (const s of [v4[0], v6[0]]) if (s !== undefined) logSocketBuffers(o, s);
    this.#countSeries(n);
    o.counters.gauge(METRICS.msServingWorkers, () => this.#members.length);
    const started: Promise<void>[] = [];
    for (let i = 0; i < n; i++) started.push(this.#spawn(i, v4[i], v6[i]));
    await Promise.all(started);
  }

  /** The series each count of a Worker goes to. */
  #countSeries(n: number): void {
    const fixed: {
      metric: (typeof METRICS)[keyof typeof METRICS];
      labels: Record<string, string>;
    }[] = [
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

  #spawn(i: number, v4: UdpSocket | undefined, v6: UdpSocket | undefined): Promise<void> {
    const o = this.#o;
    const worker = new Worker(new URL("./_serving_worker.ts", import.meta.url), { type: "module" });
    const mailboxMemory = new SharedArrayBuffer(8);
    let done = () => {};
    const stopped = new Promise<void>((r) => (done = r));
    const m: Member = {
      worker,
      waker: new Waker(),
      mailbox: new Int32Array(mailboxMemory),
      verdicts: new Uint8Array(new SharedArrayBuffer(NOTIFY_SLOTS)),
      release: [],
      v4,
      v6,
      stopped,
      done: () => done(),
    };
    this.#members.push(m);
    return new Promise<void>((resolve, reject) => {
      let starting = true;
      const timer = setTimeout(() => {
        starting = false;
        reject(new Error(`answering Worker ${i} did not start within ${START_TIMEOUT_MS} ms`));
      }, START_TIMEOUT_MS);
      worker.onmessage = (e: MessageEvent<FromServing>) => {
        const msg = e.data;
        switch (msg.op) {
          case "ready":
            if (starting) {
              starting = false;
              clearTimeout(timer);
              resolve();
            }
            return;
          case "up":
            this.#up(i, m, msg.buf, msg.first, msg.seq, msg.counts);
            return;
          case "log":
            o.logger.limited(`serving ${msg.event} ${i}`, 60_000, "warn", msg.event, msg.fields);
            return;
          case "drop": {
            // As core/control.ts logs its own drops: once a minute per reason and source.
            const from = { address: msg.address, port: msg.port };
            o.logger.limited(`${msg.reason} ${msg.address}`, 60_000, "warn", "control-dropped", {
              reason: msg.reason,
              peer: formatPeer(from),
            });
            return;
          }
          case "stopped":
            m.done();
            if (starting) {
              starting = false;
              clearTimeout(timer);
              reject(new Error(`answering Worker ${i} refused to start: ${msg.error}`));
            } else if (this.#closing === undefined) {
              this.#died(i, msg.error ?? "stopped");
            }
            return;
        }
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        m.done();
        if (starting) {
          starting = false;
          clearTimeout(timer);
          reject(new Error(`answering Worker ${i}: ${e.message}`));
        } else if (this.#closing === undefined) this.#died(i, e.message);
      };
      this.#post(m, {
        op: "init",
        index: i,
        config: o.config,
        fds: { v4: v4?.fd ?? -1, v6: v6?.fd ?? -1 },
        wakeFd: m.waker.fd,
        mailbox: mailboxMemory,
        acks: this.#acks.buffer as SharedArrayBuffer,
        verdicts: m.verdicts.buffer as SharedArrayBuffer,
        answers: o.answers.memory,
        ...(o.limiter !== undefined
          ? { limiter: { rate: o.limiter.rate, memory: o.limiter.memory } }
          : {}),
      });
    });
  }

  /** Gives every Worker the sites in force (an API edit): their answers follow at once. */
  updateSites(
    lispSites: Config["lispSites"],
    msStaticRegisteredSites: Config["msStaticRegisteredSites"],
  ): void {
    for (const m of this.#members) {
      this.#post(m, { op: "sites", lispSites, msStaticRegisteredSites });
    }
  }

  #post(m: Member, msg: ToServing): void {
    m.worker.postMessage(msg);
    Atomics.add(m.mailbox, 0, 1);
    m.waker.wake();
  }

  #died(i: number, why: string): void {
    this.#o.logger.error("serving-worker-died", { worker: i, error: why });
    reportError(new Error(`answering Worker ${i} died: ${why}`));
  }

  /** Handles what Worker `i` handed over and applies its counts. */
  #up(
    i: number,
    m: Member,
    buf: ArrayBuffer | undefined,
    first: number,
    seq: number,
    counts: Float64Array | undefined,
  ): void {
    if (counts !== undefined) {
      const series = this.#series[i]!;
      const c = this.#o.counters;
      for (let k = 0; k < counts.length; k++) {
        const n = counts[k]!;
        if (n > 0) c.inc(series[k]!.metric, series[k]!.labels as never, n);
      }
    }
    const h = this.#handlers;
    this.#kept = false;
    if (buf !== undefined && h !== undefined && this.#closing === undefined) {
      this.#reader.read(buf, first, (kind, from, data, extra, s) => {
        if (kind === UP_REGISTER_KEPT) {
          this.#kept = true;
          const slot = s & (NOTIFY_SLOTS - 1);
          const release = m.release[slot] ??= () => void Atomics.store(m.verdicts, slot, 1);
          h.register(data, from, release);
        } else if (kind === UP_REGISTER) h.register(data, from, extra);
        else h.deliver(data, from, kind === UP_ADMITTED);
      });
    }
    Atomics.store(this.#acks, i, seq);
    // The Worker sends the Map-Notifies let go as soon as it sees the
    // acknowledgement: at once if busy, or woken from poll().
    if (this.#kept && Atomics.load(m.mailbox, 1) === 1) m.waker.wake();
  }

  /** The bound port. */
  get port(): number {
    return this.#port;
  }

  /** Where handed-over datagrams go (set once the main thread's parts exist). */
  attach(h: ServingHandlers): void {
    this.#handlers = h;
  }

  /**
   * The main thread's ControlPlane transport: it sends on the first
   * Worker's sockets; what it receives comes through {@link attach}.
   */
  readonly transport: ControlTransportFactory = (_address, _port, hooks: TransportHooks) => {
    const first = this.#members[0];
    this.#queue = new SendQueue(first?.v4, first?.v6, hooks.failed);
    const queue = this.#queue;
    const t: ControlTransport = {
      address: this.#address,
      port: this.#port,
      send: (bytes, to) => queue.send(bytes, to),
      rebind: () => Promise.reject(new Error("an ms serving on Workers does not move its port")),
      close: () => this.close(),
    };
    return Promise.resolve(t);
  };

  /** Stops the Workers (each within 3 s), then closes the sockets. */
  close(): Promise<void> {
    this.#closing ??= stopPool(
      this.#queue,
      this.#members,
      this.#sockets,
      (m) => this.#post(m, { op: "stop" }),
    );
    return this.#closing;
  }
}
