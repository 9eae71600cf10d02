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

function petrLocators(list: Config["proxyEtrsIpv4"]): DataLocator[] {
  return list.map((p) => ({
    address: p.address,
    priority: p.priority,
    weight: p.weight,
    up: true,
  }));
}

/** The data sockets and the Worker (see the module notes). */
export class DataPath {
  readonly #env: Env;
  readonly #platform: Platform;
  readonly #start: StartDataPlane;
  readonly #opts: DataPathOptions;
  readonly #events: DataPlaneEvents;
  #dp: DataPlaneHandle | undefined;
  #udp4: DataSocket | undefined;
  #udp6: DataSocket | undefined;
  #natRaw: DataSocket | undefined;
  #bound: Record<IpFamily, string | undefined> = { ipv4: undefined, ipv6: undefined };
  #local: readonly Prefix[] = [];
  /**
   * While a Worker starts: the changes made meanwhile (a Map-Notify or
   * Map-Reply can come in then), handed to it once it runs.
   */
  #whileStarting: ((dp: DataPlaneHandle) => void)[] | undefined;

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

  /** Binds the data sockets and starts the Worker. Throws when neither family can be bound. */
  async open(): Promise<void> {
    const config = this.#env.config;
    this.#bound = { ipv4: this.#opts.bind("ipv4"), ipv6: this.#opts.bind("ipv6") };
    const open = (family: IpFamily): DataSocket | undefined => {
      try {
        return this.#platform.openUdp(family, config.dataPort, this.#bound[family]);
      } catch (e) {
        this.#env.log.warn("data-socket-unavailable", { family, error: errText(e) });
        return undefined;
      }
    };
    this.#udp4 = open("ipv4");
    this.#udp6 = open("ipv6");
    if (this.#udp4 === undefined && this.#udp6 === undefined) {
      throw new Error(`no data socket could be bound to port ${config.dataPort}`);
    }
    const natPort = this.#opts.natSourcePort;
    if (natPort !== undefined && this.#udp4 !== undefined && this.#platform.openRawIpv4) {
      try {
        this.#natRaw = this.#platform.openRawIpv4();
      } catch (e) {
        // Data to xTRs behind a NAT then leaves from the data port (fine for a full-cone NAT).
        this.#env.log.warn("nat-raw-socket-unavailable", { error: errText(e) });
      }
    }
    const host = this.#opts.host;
    const meanwhile: ((dp: DataPlaneHandle) => void)[] = [];
    this.#whileStarting = meanwhile;
    let dp: DataPlaneHandle;
    try {
      dp = await this.#start({
        mode: this.#opts.mode,
        encapsulation: config.encapsulation,
        tunFd: host.tunFd,
        instanceTuns: host.instanceTuns,
        udp4Fd: this.#udp4?.fd ?? -1,
        udp6Fd: this.#udp6?.fd ?? -1,
        ...(this.#natRaw !== undefined
          ? { natRawFd: this.#natRaw.fd, natSourcePort: natPort }
          : {}),
        batch: this.#opts.batch,
        pollMs: this.#opts.pollMs,
        tunMtu: config.tunMtu,
        pathMtu: host.pathMtu,
        offloads: config.dataPlane.offloads,
        udpGso: config.dataPlane.udpGso,
      }, this.#events);
    } finally {
      this.#whileStarting = undefined;
    }
    this.#dp = dp;
    this.#logOffloads(dp, config.dataPlane.offloads);
    dp.setLocal(this.#local);
    dp.setPetrs(petrLocators(config.proxyEtrsIpv4), petrLocators(config.proxyEtrsIpv6));
    for (const change of meanwhile) change(dp);
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

  /** Applies `change` to the running Worker, or to the one starting once it runs. */
  #apply(change: (dp: DataPlaneHandle) => void): void {
    if (this.#dp !== undefined) change(this.#dp);
    else this.#whileStarting?.push(change);
  }

  /**
   * Binds again when the wanted addresses changed (see the module notes);
   * resolves true when it did and the new Worker runs.
   */
  async rebind(): Promise<boolean> {
    const want = { ipv4: this.#opts.bind("ipv4"), ipv6: this.#opts.bind("ipv6") };
    if (want.ipv4 === this.#bound.ipv4 && want.ipv6 === this.#bound.ipv6) return false;
    await this.#stopWorker();
    this.#closeSockets();
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

  /** Replaces the local EID prefixes (kept, and given again to a new Worker). */
  setLocal(prefixes: readonly Prefix[]): void {
    this.#local = prefixes;
    this.#dp?.setLocal(prefixes);
  }

  /** Marks an RLOC up or down in every mapping that has it. */
  setLocator(address: string, up: boolean): void {
    this.#apply((dp) => dp.setLocator(address, up));
  }

  /** Sends one datagram from the data port, or false when that cannot be done now. */
  sendControl(bytes: Uint8Array, address: string, port: number): boolean {
    const dp = this.#dp;
    if (dp?.sendControl === undefined) return false;
    dp.sendControl(bytes, address, port);
    return true;
  }

  /** Whether datagrams can be sent from the data port. */
  get canSendControl(): boolean {
    return this.#dp?.sendControl !== undefined;
  }

  /** The Worker's latest counters. */
  counters(): Readonly<Record<string, number>> {
    return this.#dp?.counters() ?? {};
  }

  /** The Worker's latest traffic per map-cache entry, by `[iid]prefix`; undefined: unknown. */
  entryCounts(): ReadonlyMap<string, EntryTraffic> | undefined {
    return this.#dp?.entryCounts?.();
  }

  async #stopWorker(): Promise<void> {
    const dp = this.#dp;
    this.#dp = undefined;
    try {
      await dp?.stop();
    } catch (e) {
      this.#env.log.warn("dataplane-stop-failed", { error: errText(e) });
    }
  }

  #closeSockets(): void {
    for (const s of [this.#udp4, this.#udp6, this.#natRaw]) {
      try {
        s?.close();
      } catch (e) {
        this.#env.log.warn("data-socket-close-failed", { error: errText(e) });
      }
    }
    this.#udp4 = this.#udp6 = this.#natRaw = undefined;
  }

  /** Stops the Worker and closes the sockets. */
  async close(): Promise<void> {
    await this.#stopWorker();
    this.#closeSockets();
  }
}
