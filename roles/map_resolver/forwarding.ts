/**
 * The map-resolver (`oor mr`, forwarding to `[[map-server]]`s) on every
 * core: forwarding Workers (_forwarding_worker.ts), each with its own
 * SO_REUSEPORT socket per family on the control port, in front of the
 * main thread, which keeps the config, the API, the metrics and whatever
 * the Workers do not forward.
 *
 * - The kernel spreads datagrams over the Workers' sockets by their LISP
 *   nonce (roles/control_io/worker_pool.ts `nonceSpreadFilter`), so one busy
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
  type ControlTransportFactory,
  formatPeer,
  type Peer,
} from "../../core/control.ts";
import type { Counters } from "../../core/counters.ts";
import type { Logger } from "../../core/log.ts";
import { METRICS } from "../../core/metrics.ts";
import { RateLimiter } from "../../core/rate_limit.ts";
import { batchedTransport } from "../control_io/socket.ts";
import { defaultWorkers, MAX_WORKERS, WorkerPool } from "../control_io/worker_pool.ts";
import { FORWARD_COUNTS, ForwardPath, type ForwardTarget } from "./forward_path.ts";
import { COUNTS, type ToForwarding, UP_ADMITTED, WORKER_COUNTS } from "./_forwarding_worker.ts";

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
  readonly #pool: WorkerPool<ToForwarding>;
  readonly #counts = new Float64Array(new SharedArrayBuffer(8 * COUNTS * MAX_WORKERS));
  readonly #recent = ForwardPath.recentMemory();
  #targets: readonly ForwardTarget[] = [];
  #targetsKey = "";

  private constructor(o: ForwardingOptions) {
    this.#pool = new WorkerPool<ToForwarding>({
      url: new URL("./_forwarding_worker.ts", import.meta.url),
      name: "forwarding",
      prefix: "forwarding",
      rebindError: "an mr forwarding on Workers does not move its port",
      logger: o.logger,
      address: o.address,
      port: o.port,
      init: (base) => ({
        ...base,
        targets: this.#targets,
        retransmitWindowMs: o.retransmitWindowMs ?? 3000,
        recent: this.#recent,
        counts: this.#counts.buffer as SharedArrayBuffer,
        ...(o.limiter !== undefined
          ? { limiter: { rate: o.limiter.rate, memory: o.limiter.memory } }
          : {}),
      }),
      // As roles/mr.ts logs its drops: once a minute per reason and source.
      dropped: (reason, address, peer) =>
        o.logger.limited(`mr-drop ${reason} ${address}`, 60_000, "warn", "mr-request-dropped", {
          reason,
          peer,
        }),
    });
    this.transport = this.#pool.transport;
  }

  /** Opens the sockets, starts the Workers and resolves once every one forwards. */
  static async start(o: ForwardingOptions): Promise<ForwardingPool> {
    const n = o.workers;
    const pool = new ForwardingPool(o);
    try {
      await pool.#pool.start(n, () => {
        const counts = pool.#counts;
        SERIES.forEach((s, k) => {
          o.counters.addend(s.metric, () => {
            let sum = 0;
            for (let i = 0; i < n; i++) sum += counts[i * COUNTS + k]!;
            return sum;
          }, s.labels as never);
        });
      });
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /** The bound port. */
  get port(): number {
    return this.#pool.port;
  }

  /** Number of Workers. */
  get workers(): number {
    return this.#pool.size;
  }

  /** Where handed-over datagrams go (set once the main thread's parts exist). */
  attach(deliver: ForwardingDeliver): void {
    this.#pool.attach((_m, kind, from, data) => deliver(data, from, kind === UP_ADMITTED));
  }

  /** The map-servers to forward to (those that are not this resolver); posted when they change. */
  setTargets(targets: readonly ForwardTarget[]): void {
    const key = targets.map((t) => formatPeer(t)).join(",");
    if (key === this.#targetsKey) return;
    this.#targetsKey = key;
    this.#targets = targets.map((t) => ({ address: t.address, port: t.port }));
    this.#pool.postAll({ op: "targets", targets: this.#targets });
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
