/**
 * Host set-up of a tunnel router: the TUN devices and the routing of its
 * mode, as OOR's README describes them. A role file picks one:
 *
 * - {@link xtrHost}: the TUN (`tun-name`, `tun-mtu`); `to <EID> lookup
 *   main` (99) and `from <EID> lookup 100` (100) per EID prefix; a default
 *   route into the TUN in table 100 (or the `destination-prefixes`). Each
 *   `[[instance]]` gets its own TUN and table (`iif` rules for its site
 *   interfaces and its TUN, its site interfaces' routes copied in), so its
 *   prefixes may overlap other instances'.
 * - {@link mnHost}: the EID as an address of the TUN, and the two halves
 *   of the address space (or the destination prefixes) routed into it.
 * - {@link rtrHost}: no TUN.
 *
 * All three keep the per-RLOC source tables (`from <RLOC> lookup x`) in
 * step with the interfaces ({@link HostSetup.sync}). Every change goes
 * through the {@link Journal}, which undoes them at shutdown. Every route
 * into a TUN has an unreachable twin behind it (routing.ts,
 * `FAIL_CLOSED_METRIC`) that stays when the process is killed: the host
 * fails closed, and the next start adopts it.
 *
 * @module
 */

import type { Config, DatabaseMapping, Prefix as ConfigPrefix } from "../../config/mod.ts";
import { formatPrefix as configPrefixText } from "../../config/mod.ts";
import type { IpFamily, Link } from "../../ffi/mod.ts";
import type { Logger } from "../../core/log.ts";
import { errText } from "./context.ts";
import { dataPlaneWorkers } from "./datapath.ts";
import type { Journal } from "./journal.ts";
import type { Platform, TunDevice } from "./platform.ts";
import type { InstanceRouting, LocalRloc, RouteSetup, TextPrefix } from "./routing.ts";

/** What a host set-up is built with. */
export interface HostSetupContext {
  readonly config: Config;
  readonly platform: Platform;
  readonly log: Logger;
  readonly journal: Journal;
  readonly routing: RouteSetup;
}

/** The TUNs and routing of one mode (see the module notes). */
export interface HostSetup {
  /** Opens the TUN(s) and routes the database's EID prefixes (once, at start). */
  setup(database: readonly DatabaseMapping[]): void;
  /** The TUN the data plane reads and writes, -1 without one. */
  readonly tunFd: number;
  /** The TUNs of `[[instance]]`s, with their instance ids. */
  readonly instanceTuns: readonly { readonly fd: number; readonly iid: number }[];
  /** Routes an EID prefix added at run time. Throws when the host refuses (nothing changed). */
  routeEid(m: DatabaseMapping): void;
  /** Undoes the routing of a removed EID prefix that no mapping in `left` still needs. */
  unrouteEid(m: DatabaseMapping, left: readonly DatabaseMapping[]): void;
  /** Brings the per-RLOC (and instance) tables in step with the interfaces; updates {@link pathMtu}. */
  sync(rlocs: readonly LocalRloc[]): void;
  /**
   * The largest outer packet toward RLOCs of each family (RFC 9300 §7.1's
   * L): the smallest MTU of the interfaces the local RLOCs of that family
   * are on, 0 when none is known. Set by {@link sync}; the data plane takes
   * it when it starts.
   */
  readonly pathMtu: { readonly ipv4: number; readonly ipv6: number };
  /** The TUNs, for logs and the status page. */
  describe(): TunDescription;
}

/** The TUNs of a host set-up, for logs and the status page. */
export interface TunDescription {
  /** Names of every TUN, the main one first. */
  readonly names: readonly string[];
  /** The main TUN. */
  readonly tun?: string;
  /** The instance TUNs: `name (iid N)`, comma-separated. */
  readonly instanceTuns?: string;
}

/**
 * The smallest MTU among the interfaces of the RLOCs of each family (0 for
 * a family without an RLOC on a link that reports its MTU).
 */
export function pathMtu(
  links: readonly Link[],
  rlocs: readonly LocalRloc[],
): { ipv4: number; ipv6: number } {
  const out = { ipv4: 0, ipv6: 0 };
  for (const r of rlocs) {
    const mtu = links.find((l) => l.index === r.index)?.mtu;
    if (mtu === undefined || mtu <= 0) continue;
    if (out[r.family] === 0 || mtu < out[r.family]) out[r.family] = mtu;
  }
  return out;
}

/** A config prefix in the routing's text form. */
export function textPrefix(p: ConfigPrefix): TextPrefix {
  return { family: p.family === 4 ? "ipv4" : "ipv6", text: configPrefixText(p) };
}

/** An rtr: no TUN, the per-RLOC tables only. */
class RlocTablesOnly implements HostSetup {
  protected readonly ctx: HostSetupContext;
  tunFd = -1;
  instanceTuns: readonly { readonly fd: number; readonly iid: number }[] = [];
  pathMtu: { readonly ipv4: number; readonly ipv6: number } = { ipv4: 0, ipv6: 0 };

  constructor(ctx: HostSetupContext) {
    this.ctx = ctx;
  }

  setup(_database: readonly DatabaseMapping[]): void {}

  routeEid(_m: DatabaseMapping): void {}

  unrouteEid(_m: DatabaseMapping, _left: readonly DatabaseMapping[]): void {}

  sync(rlocs: readonly LocalRloc[]): void {
    try {
      this.ctx.routing.syncRlocTables(rlocs);
    } catch (e) {
      this.ctx.log.warn("rloc-tables-failed", { error: errText(e) });
    }
    try {
      const mtu = pathMtu(this.ctx.platform.net.links(), rlocs);
      if (mtu.ipv4 !== this.pathMtu.ipv4 || mtu.ipv6 !== this.pathMtu.ipv6) {
        this.pathMtu = mtu;
        this.ctx.log.info("path-mtu", { ipv4: mtu.ipv4, ipv6: mtu.ipv6 });
      }
    } catch (e) {
      this.ctx.log.warn("path-mtu-failed", { error: errText(e) });
    }
  }

  describe(): TunDescription {
    return { names: [] };
  }

  protected get destinations(): TextPrefix[] {
    return this.ctx.config.destinationPrefixes.map(textPrefix);
  }

  protected openTun(name: string, key: string, what: string): TunDevice {
    // Multi-queue with several data-plane Workers: each reads its own queue (datapath.ts).
    const multiQueue = dataPlaneWorkers(this.ctx.config) > 1;
    const dev = this.ctx.platform.openTun(name, this.ctx.config.tunMtu, multiQueue);
    this.ctx.journal.add(key, `${what} ${dev.name}`, () => dev.close());
    return dev;
  }
}

/** An xtr: the TUN, OOR's rules and table 100, and the `[[instance]]` TUNs and tables. */
class XtrHost extends RlocTablesOnly {
  #tun: TunDevice | undefined;
  #instances: { readonly tun: TunDevice; routing: InstanceRouting }[] = [];

  override setup(database: readonly DatabaseMapping[]): void {
    const { config, routing } = this.ctx;
    const tun = this.#tun = this.openTun(config.tunName, "tun", "tun");
    this.tunFd = tun.fd;
    const eids = database.filter((m) => !this.#hasInstance(m.iid)).map((m) =>
      textPrefix(m.eidPrefix)
    );
    routing.setupXtr(tun.index, eids, this.destinations);
    for (const inst of config.instances) {
      const dev = this.openTun(inst.tunName, `tun ${inst.iid}`, "tun");
      const families = new Set<IpFamily>();
      for (const m of database) {
        if (m.iid === inst.iid) families.add(m.eidPrefix.family === 4 ? "ipv4" : "ipv6");
      }
      const r: InstanceRouting = {
        iid: inst.iid,
        tunIndex: dev.index,
        tunName: dev.name,
        siteInterfaces: inst.siteInterfaces,
        families: [...families],
      };
      this.#instances.push({ tun: dev, routing: r });
      routing.setupInstance(r, this.destinations);
    }
    this.instanceTuns = this.#instances.map((i) => ({ fd: i.tun.fd, iid: i.routing.iid }));
  }

  #hasInstance(iid: number): boolean {
    return this.ctx.config.instances.some((i) => i.iid === iid);
  }

  override routeEid(m: DatabaseMapping): void {
    const tp = textPrefix(m.eidPrefix);
    const inst = this.#instances.find((i) => i.routing.iid === m.iid);
    if (inst !== undefined) {
      if (inst.routing.families.includes(tp.family)) return;
      const r = { ...inst.routing, families: [...inst.routing.families, tp.family] };
      this.ctx.routing.setupInstance(r, this.destinations);
      inst.routing = r;
    } else if (this.#tun !== undefined) {
      this.ctx.routing.setupXtr(this.#tun.index, [tp], this.destinations);
    }
  }

  override unrouteEid(m: DatabaseMapping, left: readonly DatabaseMapping[]): void {
    if (this.#hasInstance(m.iid) || this.#tun === undefined) return;
    const tp = textPrefix(m.eidPrefix);
    const rest = left.filter((x) => !this.#hasInstance(x.iid)).map((x) => textPrefix(x.eidPrefix));
    const journal = this.ctx.journal;
    if (!rest.some((x) => x.text === tp.text)) {
      journal.undo(`eid-to ${tp.family} ${tp.text}`);
      journal.undo(`eid-from ${tp.family} ${tp.text}`);
    }
    if (!rest.some((x) => x.family === tp.family)) {
      const routing = this.ctx.routing;
      routing.removeOverlayRoute(`eid-default ${tp.family}`);
      for (const d of this.destinations) {
        routing.removeOverlayRoute(`eid-dest ${tp.family} ${d.text}`);
      }
    }
  }

  override sync(rlocs: readonly LocalRloc[]): void {
    super.sync(rlocs);
    try {
      this.ctx.routing.syncInstanceTables(this.#instances.map((i) => i.routing));
    } catch (e) {
      this.ctx.log.warn("instance-tables-failed", { error: errText(e) });
    }
  }

  override describe(): TunDescription {
    return {
      names: [this.#tun, ...this.#instances.map((i) => i.tun)]
        .filter((t) => t !== undefined).map((t) => t.name),
      ...(this.#tun !== undefined ? { tun: this.#tun.name } : {}),
      ...(this.#instances.length > 0
        ? {
          instanceTuns: this.#instances.map((i) => `${i.tun.name} (iid ${i.routing.iid})`)
            .join(", "),
        }
        : {}),
    };
  }
}

/** A mobile node: its EID on the TUN, the halves of the address space routed into it. */
class MnHost extends RlocTablesOnly {
  #tun: TunDevice | undefined;

  override setup(database: readonly DatabaseMapping[]): void {
    const tun = this.#tun = this.openTun(this.ctx.config.tunName, "tun", "tun");
    this.tunFd = tun.fd;
    this.ctx.routing.setupMn(
      tun.index,
      database.map((m) => textPrefix(m.eidPrefix)),
      this.destinations,
    );
  }

  override routeEid(m: DatabaseMapping): void {
    if (this.#tun === undefined) return;
    this.ctx.routing.setupMn(this.#tun.index, [textPrefix(m.eidPrefix)], this.destinations);
  }

  /** The EID off the TUN; the half routes (their source may have been it) set up again. */
  override unrouteEid(m: DatabaseMapping, left: readonly DatabaseMapping[]): void {
    const tun = this.#tun;
    if (tun === undefined) return;
    const tp = textPrefix(m.eidPrefix);
    const sameFamily = left.map((x) => textPrefix(x.eidPrefix)).filter((x) =>
      x.family === tp.family
    );
    const address = m.eidPrefix.address;
    if (sameFamily.some((x) => x.text.slice(0, x.text.indexOf("/")) === address)) return;
    const halves = tp.family === "ipv4" ? ["0.0.0.0/1", "128.0.0.0/1"] : ["::/1", "8000::/1"];
    for (const dst of [...halves, ...this.destinations.map((d) => d.text)]) {
      this.ctx.routing.removeOverlayRoute(`mn-half ${dst}`);
    }
    this.ctx.journal.undo(`addr ${tun.index} ${address}/${tp.family === "ipv4" ? 32 : 128}`);
    try {
      this.ctx.routing.setupMn(tun.index, sameFamily, this.destinations);
    } catch (e) {
      this.ctx.log.warn("mn-routes-failed", { error: errText(e) });
    }
  }

  override describe(): TunDescription {
    return this.#tun !== undefined
      ? { names: [this.#tun.name], tun: this.#tun.name }
      : { names: [] };
  }
}

/** The xtr's host set-up (see the module notes). */
export function xtrHost(ctx: HostSetupContext): HostSetup {
  return new XtrHost(ctx);
}

/** The mobile node's host set-up (see the module notes). */
export function mnHost(ctx: HostSetupContext): HostSetup {
  return new MnHost(ctx);
}

/** The rtr's host set-up: the per-RLOC tables only. */
export function rtrHost(ctx: HostSetupContext): HostSetup {
  return new RlocTablesOnly(ctx);
}
