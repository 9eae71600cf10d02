/**
 * The map-resolver (`oor mr`, forwarding to `[[map-server]]`s) on every
 * core: forwarding Workers (_forwarding_worker.ts), each with its own
 * SO_REUSEPORT socket per family on the control port, in front of the
 * main thread, which keeps the config, the API, the metrics and whatever
 * the Workers do not forward.
 *
 * - The kernel spreads datagrams over the Workers' sockets by their LISP
 *   nonce (roles/map_server/serving.ts `nonceSpreadFilter`), so one busy
 *   ITR keeps every Worker busy and every copy of one request (same nonce)
 *   meets the same Worker's duplicate table.
 * - A Worker forwards in place (forward_path.ts) the ECM'd Map-Requests of
 *   the common shape when there is one map-server to send to; the main
 *   thread works out which (the `[[map-server]]`s that are not this
 *   resolver, as roles/mr.ts does) and posts it when it changes.
 * - The rest is handed over (one transferred buffer per receive batch) to
 *   the main thread, which runs it through its ControlPlane and roles/mr.ts
 *   as without Workers, and sends on the first Worker's sockets.
 * - Counts: each Worker counts into its part of a shared array, which the
 *   role's counters add in when they are listed (`Counters.addend`): no
 *   message per count, and a count is there before the forward is sent.
 *   `control-rate-limit`'s buckets are one table in shared memory.
 *
 * A Worker that dies is an error of the role (`reportError`): the runner
 * stops it, since 1/N of the requests would reach nobody.
 *
 * @module
 */

import type { Config } from "../../config/mod.ts";
import type { RoleDeps } from "../../core/role.ts";
import {
  ControlPlane,
  type ControlTransport,
  type ControlTransportFactory,
  formatPeer,
  type Peer,
  type TransportHooks,
} from "../../core/control.ts";
import type { Counters } from "../../core/counters.ts";
import type { Logger } from "../../core/log.ts";
import { METRICS } from "../../core/metrics.ts";
import { RateLimiter } from "../../core/rate_limit.ts";
import type { UdpSocket } from "../../ffi/udp.ts";
import { Waker } from "../../ffi/wait.ts";
import { HandOverReader } from "../control_io/hand_over.ts";
import { batchedTransport, logSocketBuffers, SendQueue } from "../control_io/socket.ts";
import {
  defaultWorkers,
  MAX_WORKERS,
  openReusePortGroups,
  stopPool,
} from "../map_server/serving.ts";
import { FORWARD_COUNTS, ForwardPath, type ForwardTarget } from "./forward_path.ts";
import {
  COUNTS,
  type FromForwarding,
  type ToForwarding,
  UP_ADMITTED,
  WORKER_COUNTS,
} from "./_forwarding_worker.ts";

const START_TIMEOUT_MS = 60_000;
/** Logged when the kernel takes no spread program (roles/map_server/serving.ts). */
const SPREAD_EVENT = "forwarding-spread-unavailable";

/** Options of {@link ForwardingPool.start}. */
export interface ForwardingOptions {
  /** `control-address` (undefined: 0.0.0.0 and ::). */
  readonly address: string | undefined;
  /** `control-port`. */
  readonly port: number;
  readonly logger: Logger;
  readonly counters: Counters;
  /** Number of Workers (1..16). */
  readonly workers: number;
  /** The shared buckets of `control-rate-limit`, if limited. */
  readonly limiter: RateLimiter | undefined;
  /** How long an ITR's repeated request for an EID goes to the next map-server (default 3000 ms). */
  readonly retransmitWindowMs?: number;
}

interface Member {
  readonly worker: Worker;
  readonly waker: Waker;
  readonly mailbox: Int32Array;
  readonly v4: UdpSocket | undefined;
  readonly v6: UdpSocket | undefined;
  readonly stopped: Promise<void>;
  readonly done: () => void;
}

type Series = { metric: (typeof METRICS)[keyof typeof METRICS]; labels: Record<string, string> };

/** The series of each count a Worker posts, by FORWARD_COUNTS then WORKER_COUNTS index. */
const SERIES: readonly Series[] = [
  { metric: METRICS.controlMessagesIn, labels: { type: "ecm-map-request" } },
  { metric: METRICS.mrRequests, labels: { mode: "forward" } },
  { metric: METRICS.mrForwarded, labels: {} },
  { metric: METRICS.controlMessagesOut, labels: { type: "ecm" } },
  { metric: METRICS.mrDropped, labels: { reason: "ttl-expired" } },
  { metric: METRICS.mrDropped, labels: { reason: "duplicate" } },
  { metric: METRICS.controlDropped, labels: { reason: "rate-limited" } },
  { metric: METRICS.mrDropped, labels: { reason: "worker-backlog" } },
  { metric: METRICS.controlSendErrors, labels: { reason: "socket" } },
  { metric: METRICS.controlSendErrors, labels: { reason: "buffer-full" } },
];
if (SERIES.length !== FORWARD_COUNTS.length + WORKER_COUNTS.length) {
  throw new Error("the forwarding counts and their series differ");
}

/**
 * Opens a map-resolver's ControlPlane: on forwarding Workers (their
 * sockets, `control-rate-limit` in shared buckets) for an `mr` (no
 * `ddt-root-addresses`), `workers` of them (default: one per CPU, or none
 * on a clock of a test's own: the Workers read the system clock), else on
 * `transport` (default: the batched transport; given, no Workers).
 */
export async function openMrControl(
  config: Config,
  deps: Pick<RoleDeps, "logger" | "counters" | "now">,
  options: {
    readonly workers?: number;
    readonly transport?: ControlTransportFactory;
    readonly retransmitWindowMs?: number;
  },
): Promise<
  { control: ControlPlane; pool: ForwardingPool | undefined; limiter: RateLimiter | undefined }
> {
  const workers = config.ddtRootAddresses.length > 0 || options.transport !== undefined
    ? 0
    : options.workers ?? (deps.now === Date.now ? defaultWorkers() : 0);
  const rate = config.controlRateLimit;
  // Shared with the Workers, or with a ddt-mr's cached path (roles/map_resolver/ddt_fast_path.ts).
  const ddt = config.ddtRootAddresses.length > 0;
  const limiter = (workers > 0 || ddt) && rate > 0 ? new RateLimiter(rate) : undefined;
  const pool = workers > 0
    ? await ForwardingPool.start({
      address: config.controlAddress,
      port: config.controlPort,
      logger: deps.logger,
      counters: deps.counters,
      workers,
      limiter,
      ...(options.retransmitWindowMs !== undefined
        ? { retransmitWindowMs: options.retransmitWindowMs }
        : {}),
    })
    : undefined;
  try {
    const control = await ControlPlane.open({
      logger: deps.logger,
      counters: deps.counters,
      port: config.controlPort,
      rateLimit: rate,
      now: deps.now,
      transport: pool?.transport ?? options.transport ?? batchedTransport,
      ...(limiter !== undefined ? { limiter } : {}),
      ...(config.controlAddress !== undefined ? { address: config.controlAddress } : {}),
    });
    return { control, pool, limiter };
  } catch (e) {
    await pool?.close();
    throw e;
  }
}

/** What the main thread does with a datagram a Worker handed over. */
export type ForwardingDeliver = (bytes: Uint8Array, from: Peer, admitted: boolean) => void;

/** The forwarding Workers and their sockets (see the module notes). */
export class ForwardingPool {
  readonly #o: ForwardingOptions;
  readonly #members: Member[] = [];
  readonly #acks = new Int32Array(new SharedArrayBuffer(4 * MAX_WORKERS));
  readonly #counts = new Float64Array(new SharedArrayBuffer(8 * COUNTS * MAX_WORKERS));
  readonly #recent = ForwardPath.recentMemory();
  readonly #sockets: UdpSocket[] = [];
  #port = 0;
  #deliver: ForwardingDeliver | undefined;
  #queue: SendQueue | undefined;
  #closing: Promise<void> | undefined;
  #targets: readonly ForwardTarget[] = [];
  #targetsKey = "";
  /** Walks what the Workers hand over. */
  readonly #reader = new HandOverReader((e) =>
    this.#o.logger.limited("forwarding-hand-over", 60_000, "error", "forwarding-hand-over-failed", {
      error: e instanceof Error ? e.message : String(e),
    })
  );

  private constructor(o: ForwardingOptions) {
    this.#o = o;
  }

  /** Opens the sockets, starts the Workers and resolves once every one forwards. */
  static async start(o: ForwardingOptions): Promise<ForwardingPool> {
    const n = o.workers;
    if (!(Number.isInteger(n) && n >= 1 && n <= MAX_WORKERS)) {
      throw new RangeError(`forwarding Workers: ${n}, not 1..${MAX_WORKERS}`);
    }
    const pool = new ForwardingPool(o);
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
    const { v4, v6 } = openReusePortGroups(o.address, o.port, n, o.logger, SPREAD_EVENT);
    this.#sockets.push(...v4, ...v6);
    this.#port = (v4[0] ?? v6[0])!.localAddress().port;
    for (const s of [v4[0], v6[0]]) if (s !== undefined) logSocketBuffers(o, s);
    const counts = this.#counts;
    SERIES.forEach((s, k) => {
      o.counters.addend(s.metric, () => {
        let sum = 0;
        for (let i = 0; i < n; i++) sum += counts[i * COUNTS + k]!;
        return sum;
      }, s.labels as never);
    });
    const started: Promise<void>[] = [];
    for (let i = 0; i < n; i++) started.push(this.#spawn(i, v4[i], v6[i]));
    await Promise.all(started);
  }

  #spawn(i: number, v4: UdpSocket | undefined, v6: UdpSocket | undefined): Promise<void> {
    const o = this.#o;
    const worker = new Worker(new URL("./_forwarding_worker.ts", import.meta.url), {
      type: "module",
    });
    const mailboxMemory = new SharedArrayBuffer(8);
    let done = () => {};
    const stopped = new Promise<void>((r) => (done = r));
    const m: Member = {
      worker,
      waker: new Waker(),
      mailbox: new Int32Array(mailboxMemory),
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
        reject(new Error(`forwarding Worker ${i} did not start within ${START_TIMEOUT_MS} ms`));
      }, START_TIMEOUT_MS);
      worker.onmessage = (e: MessageEvent<FromForwarding>) => {
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
            this.#up(i, msg.buf, msg.first, msg.seq);
            return;
          case "log":
            o.logger.limited(`forwarding ${msg.event} ${i}`, 60_000, "warn", msg.event, msg.fields);
            return;
          case "drop": {
            // As roles/mr.ts and core/control.ts log their drops: once a minute per reason and source.
            const peer = formatPeer({ address: msg.address, port: msg.port });
            if (msg.reason === "rate-limited") {
              o.logger.limited(`${msg.reason} ${msg.address}`, 60_000, "warn", "control-dropped", {
                reason: msg.reason,
                peer,
              });
            } else {
              o.logger.limited(
                `mr-drop ${msg.reason} ${msg.address}`,
                60_000,
                "warn",
                "mr-request-dropped",
                { reason: msg.reason, peer },
              );
            }
            return;
          }
          case "stopped":
            m.done();
            if (starting) {
              starting = false;
              clearTimeout(timer);
              reject(new Error(`forwarding Worker ${i} refused to start: ${msg.error}`));
            } else if (this.#closing === undefined) this.#died(i, msg.error ?? "stopped");
            return;
        }
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        m.done();
        if (starting) {
          starting = false;
          clearTimeout(timer);
          reject(new Error(`forwarding Worker ${i}: ${e.message}`));
        } else if (this.#closing === undefined) this.#died(i, e.message);
      };
      this.#post(m, {
        op: "init",
        index: i,
        fds: { v4: v4?.fd ?? -1, v6: v6?.fd ?? -1 },
        wakeFd: m.waker.fd,
        mailbox: mailboxMemory,
        acks: this.#acks.buffer as SharedArrayBuffer,
        targets: this.#targets,
        retransmitWindowMs: o.retransmitWindowMs ?? 3000,
        recent: this.#recent,
        counts: this.#counts.buffer as SharedArrayBuffer,
        ...(o.limiter !== undefined
          ? { limiter: { rate: o.limiter.rate, memory: o.limiter.memory } }
          : {}),
      });
    });
  }

  #post(m: Member, msg: ToForwarding): void {
    m.worker.postMessage(msg);
    Atomics.add(m.mailbox, 0, 1);
    m.waker.wake();
  }

  #died(i: number, why: string): void {
    this.#o.logger.error("forwarding-worker-died", { worker: i, error: why });
    reportError(new Error(`forwarding Worker ${i} died: ${why}`));
  }

  #up(i: number, buf: ArrayBuffer | undefined, first: number, seq: number): void {
    const deliver = this.#deliver;
    if (buf !== undefined && deliver !== undefined && this.#closing === undefined) {
      this.#reader.read(
        buf,
        first,
        (kind, from, data) => deliver(data, from, kind === UP_ADMITTED),
      );
    }
    Atomics.store(this.#acks, i, seq);
  }

  /** The bound port. */
  get port(): number {
    return this.#port;
  }

  /** Number of Workers. */
  get workers(): number {
    return this.#members.length;
  }

  /** Where handed-over datagrams go (set once the main thread's parts exist). */
  attach(deliver: ForwardingDeliver): void {
    this.#deliver = deliver;
  }

  /** The map-servers to forward to (those that are not this resolver); posted when they change. */
  setTargets(targets: readonly ForwardTarget[]): void {
    const key = targets.map((t) => formatPeer(t)).join(",");
    if (key === this.#targetsKey) return;
    this.#targetsKey = key;
    this.#targets = targets.map((t) => ({ address: t.address, port: t.port }));
    for (const m of this.#members) this.#post(m, { op: "targets", targets: this.#targets });
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
      address: this.#o.address,
      port: this.#port,
      send: (bytes, to) => queue.send(bytes, to),
      rebind: () => Promise.reject(new Error("an mr forwarding on Workers does not move its port")),
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
