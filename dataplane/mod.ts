/**
 * The main-thread side of a tunnel router's data plane: {@link DataPlane}
 * spawns the Worker of worker.ts, hands it the fds the role
 * opened (TUN, data UDP sockets), forwards control changes to it and
 * reports what it says back (misses, peers, counters). The contract is
 * api.ts; the role keeps owning (and closes) the fds.
 *
 * Every post to the Worker bumps a shared counter
 * (`SharedArrayBuffer` + `Atomics`), which the Worker's loop checks
 * between polls: it yields to its event loop to read messages only when
 * some are waiting, so a busy data plane costs the control plane nothing
 * and a control change reaches the data path within one poll timeout.
 *
 * @module
 */

import type {
  DataLocator,
  DataMapping,
  DataPlaneEvents,
  DataPlaneHandle,
  EntryCounts,
  EntryTraffic,
  FromWorker,
  OffloadReport,
} from "./api.ts";
import type { Prefix } from "../core/prefix.ts";
import type { InitMessage, WorkerIn } from "./worker.ts";

/** The settings of {@link DataPlane.start}: the contract's `init` without `op`. */
export type DataPlaneInit = Omit<InitMessage, "op">;

/** How long {@link DataPlane.start} and {@link DataPlane.stop} wait for the Worker. */
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

/** A running data-plane Worker. */
export class DataPlane implements DataPlaneHandle {
  readonly #worker: Worker;
  readonly #wake: Int32Array;
  readonly #events: DataPlaneEvents;
  #counters: Readonly<Record<string, number>> = {};
  #offloads: OffloadReport | undefined;
  readonly #entries = new Map<string, EntryTraffic>();
  #stopped = false;
  #stopping: Promise<void> | undefined;
  #onStopped: ((error: string | undefined) => void) | undefined;
  readonly #reports: ((c: Readonly<Record<string, number>>) => void)[] = [];

  private constructor(worker: Worker, wake: Int32Array, events: DataPlaneEvents) {
    this.#worker = worker;
    this.#wake = wake;
    this.#events = events;
  }

  /**
   * Spawns the Worker, sends `init` and resolves once its loop runs.
   * Rejects (and terminates the Worker) when the Worker refuses the
   * settings (bad fd, xtr without a TUN, no socket) or does not answer
   * within 10 s.
   */
  static async start(init: DataPlaneInit, events: DataPlaneEvents): Promise<DataPlane> {
    const worker = new Worker(new URL("./worker.ts", import.meta.url), {
      type: "module",
    });
    const sab = new SharedArrayBuffer(4);
    const dp = new DataPlane(worker, new Int32Array(sab), events);
    let settle: ((error: string | undefined) => void) | undefined;
    const ready = new Promise<string | undefined>((resolve) => (settle = resolve));
    worker.onmessage = (m: MessageEvent<FromWorker>) => {
      const msg = m.data;
      if (settle !== undefined) {
        if (msg.op === "ready") {
          dp.#offloads = msg.offloads;
          const s = settle;
          settle = undefined;
          s(undefined);
          return;
        }
        if (msg.op === "stopped") {
          const s = settle;
          settle = undefined;
          s(msg.error ?? "the data-plane worker stopped during start");
          return;
        }
      }
      dp.#receive(msg);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      const text = `data-plane worker error: ${e.message}`;
      if (settle !== undefined) {
        const s = settle;
        settle = undefined;
        s(text);
      } else dp.#died(text);
    };
    dp.#post({ op: "init", ...init, wake: sab });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(
        () => resolve("the data-plane worker did not start within 10 s"),
        START_TIMEOUT_MS,
      );
    });
    const error = await Promise.race([ready, timeout]);
    clearTimeout(timer);
    if (error !== undefined) {
      settle = undefined;
      dp.#stopped = true;
      worker.terminate();
      throw new Error(error);
    }
    return dp;
  }

  #post(m: WorkerIn): void {
    if (this.#stopped) return;
    this.#worker.postMessage(m);
    Atomics.add(this.#wake, 0, 1);
  }

  #receive(msg: FromWorker): void {
    switch (msg.op) {
      case "miss":
        this.#events.onMiss(msg.iid, msg.dst, msg.src);
        return;
      case "peer":
        this.#events.onPeer?.(msg.rloc, msg.iid, msg.srcEid);
        return;
      case "control":
        this.#events.onControl?.(msg.bytes, msg.address, msg.port, msg.inIpUdp === true);
        return;
      case "counters": {
        this.#counters = msg.values;
        if (msg.entries !== undefined) this.#mergeEntries(msg.entries);
        for (const r of this.#reports.splice(0)) r(msg.values);
        return;
      }
      case "stopped":
        if (this.#onStopped !== undefined) this.#onStopped(msg.error);
        else this.#died(msg.error);
        return;
      case "ready":
        return;
    }
  }

  /** Takes a report of per-entry counts: first the deleted entries, then the counted ones. */
  #mergeEntries(r: EntryCounts): void {
    for (const p of r.gone) this.#entries.delete(p);
    for (let i = 0; i < r.prefixes.length; i++) {
      this.#entries.set(r.prefixes[i]!, { packets: r.packets[i]!, bytes: r.bytes[i]! });
    }
  }

  /** The Worker stopped on its own. */
  #died(error: string | undefined): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#worker.terminate();
    for (const r of this.#reports.splice(0)) r(this.#counters);
    this.#events.onStopped?.(error);
  }

  /** Adds or replaces a mapping. */
  setMapping(m: DataMapping): void {
    this.#post({ op: "set", mapping: m });
  }

  /** Removes a mapping. */
  deleteMapping(prefix: Prefix): void {
    this.#post({ op: "delete", prefix });
  }

  /** Replaces the set of local EID prefixes. */
  setLocal(prefixes: readonly Prefix[]): void {
    this.#post({ op: "local", prefixes });
  }

  /** Replaces the proxy-ETRs (for IPv4 and for IPv6 inner destinations). */
  setPetrs(ipv4: readonly DataLocator[], ipv6: readonly DataLocator[]): void {
    this.#post({ op: "petrs", ipv4, ipv6 });
  }

  /** Marks an RLOC up or down in every mapping (and proxy-ETR list) that has it. */
  setLocator(address: string, up: boolean): void {
    this.#post({ op: "locator", address, up });
  }

  /** Sends one datagram from the data socket of `address`'s family (NAT traversal). */
  sendControl(bytes: Uint8Array, address: string, port: number): void {
    this.#post({ op: "send", address, port, bytes });
  }

  /** The Worker's latest counters (posted every second). */
  counters(): Readonly<Record<string, number>> {
    return this.#counters;
  }

  /** What the Worker got of the offloads it asked for (from its `ready` message). */
  offloads(): OffloadReport | undefined {
    return this.#offloads;
  }

  /** The latest traffic per map-cache entry, by `[iid]prefix` (entries without traffic absent). */
  entryCounts(): ReadonlyMap<string, EntryTraffic> {
    return this.#entries;
  }

  /**
   * Asks the Worker for its counters now; resolves with them once it
   * has handled every message posted before (so a change posted before
   * the call is already in effect), or with the last known ones when it
   * has stopped.
   */
  readCounters(): Promise<Readonly<Record<string, number>>> {
    if (this.#stopped) return Promise.resolve(this.#counters);
    return new Promise((resolve) => {
      this.#reports.push(resolve);
      this.#post({ op: "report" });
    });
  }

  /** Whether the Worker has stopped (after {@link stop}, or on its own). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Stops the Worker: it leaves its loop (within one poll timeout),
   * posts its last counters and "stopped"; then it is terminated. The
   * fds stay open. Idempotent.
   */
  stop(): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    if (this.#stopped) return Promise.resolve();
    this.#stopping = new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#stopped = true;
        this.#worker.terminate();
        for (const r of this.#reports.splice(0)) r(this.#counters);
        resolve();
      };
      const timer = setTimeout(done, STOP_TIMEOUT_MS);
      this.#onStopped = done;
      this.#post({ op: "stop" });
    });
    return this.#stopping;
  }

  /** Same as {@link stop}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
