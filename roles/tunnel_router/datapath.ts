/**
 * The tunnel router's side of its data plane: the data UDP sockets (on
 * `data-port`, IPv4 and IPv6), the data-plane Worker started on them and
 * on the host's TUN(s), and every change the control plane pushes to it
 * (mappings, local EIDs, proxy-ETRs, locator state, datagrams to send from
 * the data port). The contract with the Worker is dataplane/api.ts.
 *
 * A router whose sockets are bound to its RLOC (a mobile node, see
 * `TunnelRouterSpec.bindToRloc`) calls {@link DataPath.rebind} when its
 * locators change: the Worker is stopped, the sockets bound again and a
 * new Worker started, given the local EIDs and proxy-ETRs again; the
 * caller pushes the map-cache again.
 *
 * Offloads (`[data-plane] offloads`, on by default) are asked of the
 * Worker; what it got is logged once it runs (`dataplane-offloads`, and
 * `dataplane-offload-unavailable` for each thing the kernel refused).
 *
 * Several Workers (`[data-plane] workers`, default the number of cores):
 * each has its own queue of every TUN (the host opened them multi-queue;
 * the first Worker reads the first queue, the others one this opens with
 * `Platform.openTunQueue`) and its own data socket of each family, all
 * bound to the data port with SO_REUSEPORT, the group spreading datagrams
 * by inner flow (dataplane/spread.ts). So one flow is handled by one
 * Worker: the socket by the BPF program's flow hash, the TUN queue by the
 * kernel's choice of the queue that last wrote that flow. What the control
 * plane changes goes to every Worker (while one starts, it is kept for it);
 * counters are summed over them (`map-cache-entries`, a gauge, is the
 * largest), and `worker-packets:<i>` says what each carried. What exists
 * once is shared: an RTR's raw IPv4 socket goes to every Worker; datagrams
 * from the data port (NAT traversal) leave from the first. A TUN that cannot
 * take more queues leaves the xTR with the Workers it could give one
 * (`dataplane-workers-reduced`).
 *
 * @module
 */

import type { Config } from "../../config/mod.ts";
import type { IpFamily } from "../../ffi/mod.ts";
import type { Prefix } from "../../core/prefix.ts";
import type {
  DataLocator,
  DataMapping,
  DataPlaneEvents,
  DataPlaneHandle,
  DataPlaneMode,
  EntryTraffic,
} from "../../dataplane/api.ts";
import { flowSpreadFilter } from "../../dataplane/spread.ts";
import { type Env, errText, type StartDataPlane } from "./context.ts";
import type { HostSetup } from "./host.ts";
import type { DataSocket, Platform } from "./platform.ts";

/** How a {@link DataPath} is set up. */
export interface DataPathOptions {
  /** What the Worker does (TUN <-> UDP, or UDP -> UDP). */
  readonly mode: DataPlaneMode;
  /** The TUNs it reads and writes. */
  readonly host: HostSetup;
  /** Where to bind the socket of each family (undefined: the wildcard). */
  readonly bind: (family: IpFamily) => string | undefined;
  /**
   * An RTR's control port: data to xTRs behind a NAT goes from it, through
   * the NAT binding their Map-Registers to that port opened (a raw IPv4
   * socket). Absent: it goes from the data socket.
   */
  readonly natSourcePort?: number;
  /** Packets per batch. */
  readonly batch: number;
  /** Poll timeout, ms. */
  readonly pollMs: number;
}

/** The most data-plane Workers (the `[data-plane] workers` limit). */
const MAX_WORKERS = 64;

/**
 * The data-plane Workers `config` asks for: `[data-plane] workers`, or the
 * number of cores (at most 64).
 */
export function dataPlaneWorkers(config: Pick<Config, "dataPlane">): number {
  const w = config.dataPlane.workers;
  if (w !== undefined) return w;
  const cores = typeof navigator !== "undefined" ? navigator.hardwareConcurrency : 1;
  return Math.max(1, Math.min(MAX_WORKERS, Number.isInteger(cores) ? cores : 1));
}

/** The key prefix of a Worker's packet count in {@link DataPath.counters}. */
export const WORKER_PACKETS = "worker-packets:";

/** Counters that are gauges: the largest over the Workers, not the sum. */
const GAUGES = new Set(["map-cache-entries"]);

/** What one Worker runs on, and its handle. */
interface Member {
  /** Its data socket of each family. */
  udp4: DataSocket | undefined;
  udp6: DataSocket | undefined;
  /** The TUN queues opened for it (none for the first: it reads the host's fds). */
  readonly queues: DataSocket[];
  /** Its main TUN fd and its instance TUNs' fds (the host's, or its queues). */
  tunFd: number;
  instanceTuns: { readonly fd: number; readonly iid: number }[];
  /** The running Worker. */
  dp: DataPlaneHandle | undefined;
  /** While it starts: the changes made meanwhile, handed to it once it runs. */
  whileStarting: ((dp: DataPlaneHandle) => void)[] | undefined;
}

function petrLocators(list: Config["proxyEtrsIpv4"]): DataLocator[] {
  return list.map((p) => ({
    address: p.address,
    priority: p.priority,
    weight: p.weight,
    up: true,
  }));
}

/** The data sockets and the Workers (see the module notes). */
export class DataPath {
  readonly #env: Env;
  readonly #platform: Platform;
  readonly #start: StartDataPlane;
  readonly #opts: DataPathOptions;
  readonly #events: DataPlaneEvents;
  #members: Member[] = [];
  #natRaw: DataSocket | undefined;
  #bound: Record<IpFamily, string | undefined> = { ipv4: undefined, ipv6: undefined };
  #local: readonly Prefix[] = [];

  constructor(
    env: Env,
    platform: Platform,
    start: StartDataPlane,
    opts: DataPathOptions,
    events: DataPlaneEvents,
  ) {
    this.#env = env;
    this.#platform = platform;
    this.#start = start;
    this.#opts = opts;
    this.#events = events;
  }

  /** How many Workers run (0 before {@link open}). */
  get workers(): number {
    return this.#members.length;
  }

  /**
   * Binds the data sockets and starts the Workers. Throws when neither
   * family can be bound, or a Worker does not start (the others are then
   * stopped and everything closed).
   */
  async open(): Promise<void> {
    const config = this.#env.config;
    this.#bound = { ipv4: this.#opts.bind("ipv4"), ipv6: this.#opts.bind("ipv6") };
    const members = this.#members = this.#openQueues(dataPlaneWorkers(config));
    const n = members.length;
    for (const family of ["ipv4", "ipv6"] as const) {
      const group = this.#openGroup(family, n);
      members.forEach((m, i) => {
        if (family === "ipv4") m.udp4 = group?.[i];
        else m.udp6 = group?.[i];
      });
    }
    if (members[0]!.udp4 === undefined && members[0]!.udp6 === undefined) {
      this.#closeAll();
      throw new Error(`no data socket could be bound to port ${config.dataPort}`);
    }
    const natPort = this.#opts.natSourcePort;
    if (natPort !== undefined && members[0]!.udp4 !== undefined && this.#platform.openRawIpv4) {
      try {
        this.#natRaw = this.#platform.openRawIpv4();
      } catch (e) {
        // Data to xTRs behind a NAT then leaves from the data port (fine for a full-cone NAT).
        this.#env.log.warn("nat-raw-socket-unavailable", { error: errText(e) });
      }
    }
    const host = this.#opts.host;
    for (const m of members) m.whileStarting = [];
    // Worker k's CPU with `[data-plane] cpus`: cpus[k % length].
    const cpus = config.dataPlane.cpus;
    const pinned = cpus === undefined ? undefined : members.map((_, k) => cpus[k % cpus.length]!);
    const started = await Promise.allSettled(members.map((m, k) =>
      this.#start({
        mode: this.#opts.mode,
        encapsulation: config.encapsulation,
        tunFd: m.tunFd,
        instanceTuns: m.instanceTuns,
        udp4Fd: m.udp4?.fd ?? -1,
        udp6Fd: m.udp6?.fd ?? -1,
        ...(this.#natRaw !== undefined
          ? { natRawFd: this.#natRaw.fd, natSourcePort: natPort }
          : {}),
        batch: this.#opts.batch,
        pollMs: this.#opts.pollMs,
        tunMtu: config.tunMtu,
        pathMtu: host.pathMtu,
        offloads: config.dataPlane.offloads,
        udpGso: config.dataPlane.udpGso,
        ...(n > 1 ? { spread: true } : {}),
        ...(pinned !== undefined ? { cpu: pinned[k]! } : {}),
      }, this.#events)
    ));
    const failed = started.find((r) => r.status === "rejected");
    if (failed !== undefined) {
      for (const m of members) m.whileStarting = undefined;
      await Promise.all(started.map((r) => r.status === "fulfilled" ? this.#stop(r.value) : 0));
      this.#closeAll();
      throw (failed as PromiseRejectedResult).reason;
    }
    started.forEach((r, i) => {
      const m = members[i]!;
      const dp = (r as PromiseFulfilledResult<DataPlaneHandle>).value;
      const meanwhile = m.whileStarting ?? [];
      m.whileStarting = undefined;
      m.dp = dp;
      if (i === 0) this.#logOffloads(dp, config.dataPlane.offloads);
      dp.setLocal(this.#local);
      dp.setPetrs(petrLocators(config.proxyEtrsIpv4), petrLocators(config.proxyEtrsIpv6));
      for (const change of meanwhile) change(dp);
    });
    if (n > 1 || pinned !== undefined) {
      this.#env.log.info("dataplane-workers", {
        workers: n,
        ...(pinned !== undefined ? { cpus: pinned.join(",") } : {}),
      });
    }
  }

  /**
   * The members of `want` Workers with their TUN fds: the host's for the
   * first, a new queue of each TUN for each other; fewer when a TUN takes
   * no more queues (logged).
   */
  #openQueues(want: number): Member[] {
    const host = this.#opts.host;
    const first: Member = {
      udp4: undefined,
      udp6: undefined,
      queues: [],
      tunFd: host.tunFd,
      instanceTuns: [...host.instanceTuns],
      dp: undefined,
      whileStarting: undefined,
    };
    const out = [first];
    // A platform without TUN queues or reuse-port spreading (a fake) runs one Worker.
    if (this.#platform.openTunQueue === undefined || this.#platform.spreadUdp === undefined) {
      return out;
    }
    const tuns = [
      ...(host.tunFd >= 0 ? [{ fd: host.tunFd, iid: -1 }] : []),
      ...host.instanceTuns,
    ];
    for (let i = 1; i < want; i++) {
      const m: Member = { ...first, queues: [], instanceTuns: [] };
      try {
        for (const t of tuns) {
          const q = this.#platform.openTunQueue(t.fd);
          m.queues.push(q);
          if (t.iid < 0) m.tunFd = q.fd;
          else m.instanceTuns.push({ fd: q.fd, iid: t.iid });
        }
      } catch (e) {
        for (const q of m.queues) this.#close(q);
        this.#env.log.warn("dataplane-workers-reduced", {
          wanted: want,
          workers: i,
          error: errText(e),
        });
        break;
      }
      out.push(m);
    }
    return out;
  }

  /**
   * `n` data sockets of `family` on the data port (with n > 1: SO_REUSEPORT,
   * the port checked free first, spread by flow), or undefined (logged).
   */
  #openGroup(family: IpFamily, n: number): DataSocket[] | undefined {
    const port = this.#env.config.dataPort;
    const address = this.#bound[family];
    const out: DataSocket[] = [];
    try {
      if (n === 1) return [this.#platform.openUdp(family, port, address)];
      // Without SO_REUSEPORT this bind fails when another process holds the port,
      // which a group of reuse-port sockets would otherwise share with it.
      this.#platform.openUdp(family, port, address).close();
      for (let i = 0; i < n; i++) out.push(this.#platform.openUdp(family, port, address, true));
    } catch (e) {
      for (const s of out) this.#close(s);
      this.#env.log.warn("data-socket-unavailable", { family, error: errText(e) });
      return undefined;
    }
    try {
      this.#platform.spreadUdp!(out[0]!.fd, flowSpreadFilter(n));
    } catch (e) {
      // The kernel's hash of addresses and ports then picks the socket: every flow between
      // two RLOCs on one Worker.
      this.#env.log.warn("dataplane-spread-unavailable", { family, error: errText(e) });
    }
    return out;
  }

  /** Logs what the Worker got of the offloads (one line, and one per refusal). */
  #logOffloads(dp: DataPlaneHandle, wanted: boolean): void {
    const r = dp.offloads?.();
    if (r === undefined) return;
    this.#env.log.info("dataplane-offloads", {
      wanted,
      tun: r.tuns.join(", ") || "none",
      refused: r.refused.join(" ") || "none",
      "udp-gso": [r.udpGso.ipv4 ? "ipv4" : "", r.udpGso.ipv6 ? "ipv6" : ""].filter(Boolean)
        .join(" ") || "none",
      "udp-gro": r.udpGro,
    });
    for (const error of r.errors) this.#env.log.warn("dataplane-offload-unavailable", { error });
  }

  /** Applies `change` to every running Worker, and to each starting one once it runs. */
  #apply(change: (dp: DataPlaneHandle) => void): void {
    for (const m of this.#members) {
      if (m.dp !== undefined) change(m.dp);
      else m.whileStarting?.push(change);
    }
  }

  /**
   * Binds again when the wanted addresses changed (see the module notes);
   * resolves true when it did and the new Workers run.
   */
  async rebind(): Promise<boolean> {
    const want = { ipv4: this.#opts.bind("ipv4"), ipv6: this.#opts.bind("ipv6") };
    if (want.ipv4 === this.#bound.ipv4 && want.ipv6 === this.#bound.ipv6) return false;
    await this.#stopWorkers();
    this.#closeAll();
    if (this.#env.signal.aborted) return false;
    try {
      await this.open();
    } catch (e) {
      this.#env.log.error("dataplane-rebind-failed", { error: errText(e) });
      return false;
    }
    this.#env.log.info("dataplane-rebound", {
      ipv4: this.#bound.ipv4 ?? "*",
      ipv6: this.#bound.ipv6 ?? "*",
    });
    return true;
  }

  /** Adds or replaces a mapping. */
  setMapping(m: DataMapping): void {
    this.#apply((dp) => dp.setMapping(m));
  }

  /** Removes a mapping. */
  deleteMapping(p: Prefix): void {
    this.#apply((dp) => dp.deleteMapping(p));
  }

  /** Replaces the local EID prefixes (kept, and given again to new Workers). */
  setLocal(prefixes: readonly Prefix[]): void {
    this.#local = prefixes;
    for (const m of this.#members) m.dp?.setLocal(prefixes);
  }

  /** Replaces the proxy-ETRs in every Worker (a reload: roles/tunnel_router/peers.ts). */
  setPetrs(v4: Config["proxyEtrsIpv4"], v6: Config["proxyEtrsIpv6"]): void {
    this.#apply((dp) => dp.setPetrs(petrLocators(v4), petrLocators(v6)));
  }

  /** Marks an RLOC up or down in every mapping that has it. */
  setLocator(address: string, up: boolean): void {
    this.#apply((dp) => dp.setLocator(address, up));
  }

  /** Sends one datagram from the data port (the first Worker's socket), or false when it cannot now. */
  sendControl(bytes: Uint8Array, address: string, port: number): boolean {
    const dp = this.#members[0]?.dp;
    if (dp?.sendControl === undefined) return false;
    dp.sendControl(bytes, address, port);
    return true;
  }

  /** Whether datagrams can be sent from the data port. */
  get canSendControl(): boolean {
    return this.#members[0]?.dp?.sendControl !== undefined;
  }

  /**
   * The Workers' latest counters, summed (gauges: the largest), with, when
   * more than one runs, `worker-packets:<i>`: what Worker i read from its
   * TUN queues and received on its sockets.
   */
  counters(): Readonly<Record<string, number>> {
    const running = this.#members.filter((m) => m.dp !== undefined);
    if (running.length === 1 && this.#members.length === 1) return running[0]!.dp!.counters();
    const out: Record<string, number> = {};
    this.#members.forEach((m, i) => {
      const c = m.dp?.counters();
      if (c === undefined) return;
      for (const k in c) {
        const v = c[k]!;
        out[k] = GAUGES.has(k) ? Math.max(out[k] ?? 0, v) : (out[k] ?? 0) + v;
      }
      out[`${WORKER_PACKETS}${i}`] = (c["tun-read"] ?? 0) + (c["udp-received"] ?? 0);
    });
    return out;
  }

  /** The Workers' latest traffic per map-cache entry, by `[iid]prefix`, summed; undefined: unknown. */
  entryCounts(): ReadonlyMap<string, EntryTraffic> | undefined {
    const each = this.#members.map((m) => m.dp?.entryCounts?.()).filter((e) => e !== undefined);
    if (each.length <= 1) return each[0];
    const out = new Map<string, EntryTraffic>();
    for (const e of each) {
      for (const [k, t] of e) {
        const had = out.get(k);
        out.set(
          k,
          had === undefined ? t : { packets: had.packets + t.packets, bytes: had.bytes + t.bytes },
        );
      }
    }
    return out;
  }

  async #stop(dp: DataPlaneHandle): Promise<void> {
    try {
      await dp.stop();
    } catch (e) {
      this.#env.log.warn("dataplane-stop-failed", { error: errText(e) });
    }
  }

  async #stopWorkers(): Promise<void> {
    const dps = this.#members.map((m) => m.dp);
    for (const m of this.#members) m.dp = undefined;
    await Promise.all(dps.map((dp) => dp !== undefined ? this.#stop(dp) : undefined));
  }

  #close(s: DataSocket | undefined): void {
    try {
      s?.close();
    } catch (e) {
      this.#env.log.warn("data-socket-close-failed", { error: errText(e) });
    }
  }

  /** Closes every data socket, the raw socket and the TUN queues this opened. */
  #closeAll(): void {
    for (const m of this.#members) {
      this.#close(m.udp4);
      this.#close(m.udp6);
      for (const q of m.queues) this.#close(q);
    }
    this.#close(this.#natRaw);
    this.#members = [];
    this.#natRaw = undefined;
  }

  /** Stops the Workers and closes the sockets and TUN queues. */
  async close(): Promise<void> {
    await this.#stopWorkers();
    this.#closeAll();
  }
}
