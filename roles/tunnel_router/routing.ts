/**
 * {@link RouteSetup}: the routing of each mode as OOR's README describes
 * it ("xTR mode", "Mobile Node mode", "RTR mode"), and the per-RLOC source
 * tables and instance tables kept in step with the interfaces, every
 * change recorded in a {@link Journal}.
 *
 * Every route into a TUN has a fail-closed twin ({@link FAIL_CLOSED_METRIC}):
 * an unreachable route to the same destination in the same table, less
 * preferred, that outlives the TUN when the process dies without undoing
 * its changes, so site traffic is refused rather than routed natively.
 *
 * @module
 */

import type { IpFamily, Route, RouteSpec, Rule, RuleSpec } from "../../ffi/mod.ts";
import type { Logger } from "../../core/log.ts";
import { errText } from "./context.ts";
import type { Journal } from "./journal.ts";
import { errCode, type NetOps } from "./platform.ts";

/** OOR's routing layout (README "xTR mode", "MN mode", "RTR mode"). */
/** Table holding the default route into the TUN (`from <EID-prefix> lookup 100`). */
export const EID_TABLE = 100;
/** Priority of `to <EID-prefix> lookup main`: local-site traffic stays native. */
export const TO_EID_PRIORITY = 99;
/** Priority of `from <EID-prefix> lookup 100`: site traffic goes into the TUN. */
export const FROM_EID_PRIORITY = 100;
/**
 * Per-RLOC source tables are `RLOC_TABLE_BASE + ifindex`, and their
 * `from <RLOC> lookup x` rules have priority x (capped below main's 32766).
 * They must come after the `to <EID-prefix>` rules (99), or traffic from
 * an RLOC to a local EID would leave through the underlay gateway.
 */
export const RLOC_TABLE_BASE = 1000;
/**
 * Metric of the unreachable route kept behind every route into a TUN (the
 * same destination, in the same table): while the TUN exists its own
 * route wins (IPv4 metric 0, IPv6 1024); when the TUN goes without a clean
 * stop (kill -9, a crash) its routes go with it, and the unreachable one
 * stays, so the rules that send site traffic to table 100 end there
 * instead of falling through to the main table and leaving natively. A
 * restart adopts it; a clean stop removes it.
 */
export const FAIL_CLOSED_METRIC = 65535;
/** Highest priority number a per-RLOC rule gets (main's rule is 32766). */
const RLOC_PRIORITY_MAX = 32000;
/** The main routing table. */
const MAIN_TABLE = 254;
/**
 * An `[[instance]]`'s routing table is `INSTANCE_TABLE_BASE + iid` (above
 * every per-RLOC table); `iif <site interface>` and `iif <its TUN>` rules
 * point at it with priority {@link INSTANCE_PRIORITY}, before OOR's rules.
 */
export const INSTANCE_TABLE_BASE = 0x100000;
/** Priority of the `iif` rules of instances. */
export const INSTANCE_PRIORITY = 98;

/** The routing table of instance `iid`. */
export function instanceTable(iid: number): number {
  return INSTANCE_TABLE_BASE + iid;
}

/** The routing of one `[[instance]]`: its TUN, its site interfaces, its EID families. */
export interface InstanceRouting {
  /** Instance ID. */
  readonly iid: number;
  /** Its TUN's index and name. */
  readonly tunIndex: number;
  readonly tunName: string;
  /** Interfaces of its sites. */
  readonly siteInterfaces: readonly string[];
  /** Families of its EID prefixes. */
  readonly families: readonly IpFamily[];
}

/** The per-RLOC table (and rule priority) of interface `index`. */
export function rlocTable(index: number): number {
  return RLOC_TABLE_BASE + index;
}

function rlocPriority(index: number): number {
  return Math.min(rlocTable(index), RLOC_PRIORITY_MAX);
}

/** A prefix in text form with its family, e.g. `{family: "ipv4", text: "10.1.0.0/24"}`. */
export interface TextPrefix {
  /** Address family. */
  readonly family: IpFamily;
  /** `address/length`. */
  readonly text: string;
}

/** A local RLOC: an address on an interface. */
export interface LocalRloc {
  /** Address text. */
  readonly address: string;
  /** Family. */
  readonly family: IpFamily;
  /** Interface index it sits on. */
  readonly index: number;
}

/** The journal key of the fail-closed route behind the overlay route of journal key `key`. */
function closedKey(key: string): string {
  return `${key} closed`;
}

function ruleText(r: RuleSpec): string {
  const parts = [`rule ${r.family}`];
  if (r.priority !== undefined) parts.push(`pref ${r.priority}`);
  if (r.from !== undefined) parts.push(`from ${r.from}`);
  if (r.to !== undefined) parts.push(`to ${r.to}`);
  if (r.iif !== undefined) parts.push(`iif ${r.iif}`);
  if (r.table !== undefined) parts.push(`lookup ${r.table}`);
  return parts.join(" ");
}

function routeText(r: RouteSpec): string {
  const kind = r.type !== undefined && r.type !== "unicast" ? `${r.type} ` : "";
  const parts = [`route ${kind}${r.dst}`];
  if (r.gateway !== undefined) parts.push(`via ${r.gateway}`);
  if (r.dev !== undefined) parts.push(`dev ${r.dev}`);
  if (r.metric !== undefined) parts.push(`metric ${r.metric}`);
  parts.push(`table ${r.table ?? MAIN_TABLE}`);
  return parts.join(" ");
}

function hostLen(family: IpFamily): number {
  return family === "ipv4" ? 32 : 128;
}

function sameRule(a: Rule, b: RuleSpec): boolean {
  return a.family === b.family && a.priority === b.priority && a.table === b.table &&
    (a.from ?? "") === (b.from ?? "") && (a.to ?? "") === (b.to ?? "") &&
    (a.iif ?? "") === (b.iif ?? "");
}

function routeKey(r: { dst: string; gateway?: string; dev?: number; metric?: number }): string {
  return `${r.dst} ${r.gateway ?? "-"} ${r.dev ?? "-"} ${r.metric ?? 0}`;
}

/**
 * Sets up and tears down a mode's routing through {@link NetOps},
 * recording every change in a {@link Journal}.
 *
 * An object that already exists when we add it (EEXIST: left behind by a
 * run that was killed) is adopted: recorded as ours, so shutdown removes it.
 */
export class RouteSetup {
  readonly #net: NetOps;
  readonly #journal: Journal;
  readonly #logger: Logger;

  /** Routing changes through `net`, recorded in `journal`. */
  constructor(net: NetOps, journal: Journal, logger: Logger) {
    this.#net = net;
    this.#journal = journal;
    this.#logger = logger;
  }

  /** Adds a rule and journals it. */
  addRule(key: string, r: RuleSpec): void {
    if (this.#journal.has(key)) return;
    try {
      this.#net.ruleAdd(r);
    } catch (e) {
      if (errCode(e) !== "EEXIST") throw e;
      this.#logger.info("adopted-existing", { what: ruleText(r) });
    }
    this.#journal.add(key, ruleText(r), () => this.#net.ruleDel(r));
  }

  /** Adds a route (replacing one with the same key) and journals it. */
  addRoute(key: string, r: RouteSpec): void {
    if (this.#journal.has(key)) return;
    try {
      this.#net.routeAdd(r);
    } catch (e) {
      if (errCode(e) !== "EEXIST") throw e;
      this.#net.routeAdd({ ...r, replace: true });
      this.#logger.info("adopted-existing", { what: routeText(r) });
    }
    const del: RouteSpec = {
      dst: r.dst,
      table: r.table ?? MAIN_TABLE,
      ...(r.dev !== undefined ? { dev: r.dev } : {}),
      ...(r.gateway !== undefined ? { gateway: r.gateway } : {}),
      ...(r.metric !== undefined ? { metric: r.metric } : {}),
      ...(r.type !== undefined ? { type: r.type } : {}),
    };
    this.#journal.add(key, routeText(r), () => this.#net.routeDel(del));
  }

  /**
   * Adds a route into a TUN (journal key `key`) with, first, its
   * fail-closed twin: an unreachable route to the same destination in the
   * same table with {@link FAIL_CLOSED_METRIC} (key `<key> closed`),
   * adopted when a killed run left it.
   */
  addOverlayRoute(key: string, r: RouteSpec): void {
    this.addRoute(closedKey(key), {
      dst: r.dst,
      table: r.table ?? MAIN_TABLE,
      type: "unreachable",
      metric: FAIL_CLOSED_METRIC,
    });
    this.addRoute(key, r);
  }

  /** Removes a route of {@link addOverlayRoute} and its fail-closed twin. */
  removeOverlayRoute(key: string): void {
    this.#journal.undo(key);
    this.#journal.undo(closedKey(key));
  }

  /** Adds an address to a link and journals it. */
  addAddress(index: number, prefix: string): void {
    const key = `addr ${index} ${prefix}`;
    if (this.#journal.has(key)) return;
    try {
      this.#net.addrAdd(index, prefix, { nodad: true });
    } catch (e) {
      if (errCode(e) !== "EEXIST") throw e;
      this.#logger.info("adopted-existing", { what: `address ${prefix} on ${index}` });
    }
    this.#journal.add(
      key,
      `address ${prefix} dev ${index}`,
      () => this.#net.addrDel(index, prefix),
    );
  }

  /**
   * xTR (README "xTR mode"): for each EID prefix, `to <prefix> lookup main`
   * (priority 99) and `from <prefix> lookup 100` (priority 100); for each
   * family of them, a default route into the TUN in table 100 — or, with
   * `destination-prefixes`, one route per destination prefix of that
   * family, so only that traffic enters the overlay (the rest finds no
   * route in table 100 and goes on to main). Each of those routes has its
   * fail-closed twin ({@link addOverlayRoute}).
   */
  setupXtr(
    tunIndex: number,
    eids: readonly TextPrefix[],
    destinations: readonly TextPrefix[] = [],
  ): void {
    const families = new Set<IpFamily>();
    for (const p of eids) {
      families.add(p.family);
      this.addRule(`eid-to ${p.family} ${p.text}`, {
        family: p.family,
        priority: TO_EID_PRIORITY,
        to: p.text,
        table: MAIN_TABLE,
      });
      this.addRule(`eid-from ${p.family} ${p.text}`, {
        family: p.family,
        priority: FROM_EID_PRIORITY,
        from: p.text,
        table: EID_TABLE,
      });
    }
    for (const f of families) {
      for (const dst of overlayRoutes(f, destinations, [f === "ipv4" ? "0.0.0.0/0" : "::/0"])) {
        this.addOverlayRoute(
          destinations.length === 0 ? `eid-default ${f}` : `eid-dest ${f} ${dst}`,
          { dst, dev: tunIndex, table: EID_TABLE },
        );
      }
    }
  }

  /**
   * An `[[instance]]`: `iif <site interface> lookup T` and `iif <its TUN>
   * lookup T` (priority 98) for each family of its EIDs, and in table T a
   * default route into its TUN (or the `destination-prefixes` routes). The
   * routes of its site interfaces are copied into T by
   * {@link syncInstanceTables}, so traffic between its sites stays local
   * and decapsulated traffic leaves through them, whatever other
   * instances use the same prefixes. The routes into its TUN have their
   * fail-closed twins ({@link addOverlayRoute}).
   */
  setupInstance(r: InstanceRouting, destinations: readonly TextPrefix[] = []): void {
    const table = instanceTable(r.iid);
    for (const f of r.families) {
      for (const dst of overlayRoutes(f, destinations, [f === "ipv4" ? "0.0.0.0/0" : "::/0"])) {
        this.addOverlayRoute(`iid-tun ${r.iid} ${f} ${dst}`, { dst, dev: r.tunIndex, table });
      }
      for (const iif of [...r.siteInterfaces, r.tunName]) {
        this.addRule(`iid-rule ${r.iid} ${f} ${iif}`, {
          family: f,
          priority: INSTANCE_PRIORITY,
          iif,
          table,
        });
      }
    }
  }

  /**
   * Copies the main-table routes through each instance's site interfaces
   * into its table (like {@link syncRlocTables}: run again after interface
   * changes; adds what is missing, removes what is no longer there).
   */
  syncInstanceTables(instances: readonly InstanceRouting[]): void {
    if (instances.length === 0) return;
    const byName = new Map(this.#net.links().map((l) => [l.name, l.index]));
    const want = new Map<string, RouteSpec>();
    const present = new Set<string>();
    for (const family of ["ipv4", "ipv6"] as const) {
      const routes = this.#net.routes({ family });
      for (const inst of instances) {
        if (!inst.families.includes(family)) continue;
        const table = instanceTable(inst.iid);
        const indexes = new Set<number>();
        for (const n of inst.siteInterfaces) {
          const i = byName.get(n);
          if (i !== undefined) indexes.add(i);
        }
        for (const route of routes) {
          if (route.table === MAIN_TABLE) {
            const spec = copyRoute(route, indexes, table);
            if (spec !== undefined) {
              want.set(`iid-route ${family} ${table} ${routeKey(spec)}`, spec);
            }
          } else if (route.table === table) {
            present.add(`iid-route ${family} ${table} ${routeKey(route)}`);
          }
        }
      }
    }
    for (const key of this.#journal.keys("iid-route ")) {
      if (!want.has(key)) this.#journal.undo(key);
    }
    for (const [key, spec] of want) {
      if (this.#journal.has(key) && present.has(key)) continue;
      if (this.#journal.has(key)) this.#journal.undo(key); // flushed by the kernel: re-add
      try {
        this.addRoute(key, spec);
      } catch (e) {
        this.#logger.warn("instance-route-failed", { what: routeText(spec), error: errText(e) });
      }
    }
  }

  /**
   * Mobile node (README "Mobile Node mode"): the EID (a host prefix) as an
   * address of the TUN, and the two halves of each EID family's address
   * space routed into it (0.0.0.0/1 and 128.0.0.0/1, ::/1 and 8000::/1) —
   * or, with `destination-prefixes`, only those of that family. Each has
   * its fail-closed twin in main ({@link addOverlayRoute}): a killed mobile
   * node sends nothing natively except from its RLOCs (their rules).
   */
  setupMn(
    tunIndex: number,
    eids: readonly TextPrefix[],
    destinations: readonly TextPrefix[] = [],
  ): void {
    const families = new Map<IpFamily, string>();
    for (const p of eids) {
      const address = p.text.slice(0, p.text.indexOf("/"));
      this.addAddress(tunIndex, `${address}/${hostLen(p.family)}`);
      if (!families.has(p.family)) families.set(p.family, address);
    }
    for (const [f, src] of families) {
      const halves = f === "ipv4" ? ["0.0.0.0/1", "128.0.0.0/1"] : ["::/1", "8000::/1"];
      for (const dst of overlayRoutes(f, destinations, halves)) {
        this.addOverlayRoute(`mn-half ${dst}`, { dst, dev: tunIndex, src, table: MAIN_TABLE });
      }
    }
  }

  /**
   * Per-RLOC source routing (README: `x: from <RLOC> lookup x`): for every
   * local RLOC a rule sending traffic from it to table x of its
   * interface, and in table x a copy of the main-table routes through that
   * interface (its subnet, its default gateway). Run again whenever
   * interfaces change: it adds what is missing (also routes the kernel
   * flushed when the link went down) and removes what is no longer wanted.
   */
  syncRlocTables(rlocs: readonly LocalRloc[]): void {
    const wantRules = new Map<string, RuleSpec>();
    const wantRoutes = new Map<string, RouteSpec>();
    const byFamily = new Map<IpFamily, Set<number>>();
    for (const r of rlocs) {
      const table = rlocTable(r.index);
      wantRules.set(`rloc-rule ${r.family} ${r.address} ${table}`, {
        family: r.family,
        priority: rlocPriority(r.index),
        from: `${r.address}/${hostLen(r.family)}`,
        table,
      });
      let s = byFamily.get(r.family);
      if (s === undefined) byFamily.set(r.family, s = new Set());
      s.add(r.index);
    }
    const present = new Set<string>();
    for (const [family, indexes] of byFamily) {
      for (const route of this.#net.routes({ family })) {
        if (route.table === MAIN_TABLE) {
          const spec = copyRoute(route, indexes);
          if (spec !== undefined) {
            wantRoutes.set(`rloc-route ${family} ${spec.table} ${routeKey(spec)}`, spec);
          }
        } else if (route.table >= RLOC_TABLE_BASE) {
          present.add(`rloc-route ${family} ${route.table} ${routeKey(route)}`);
        }
      }
    }
    // Remove what is no longer wanted: rules first, then routes.
    for (const key of this.#journal.keys("rloc-rule ")) {
      if (!wantRules.has(key)) this.#journal.undo(key);
    }
    for (const key of this.#journal.keys("rloc-route ")) {
      if (!wantRoutes.has(key)) this.#journal.undo(key);
    }
    // Add what is missing: routes first, so a rule never points at an empty table.
    for (const [key, spec] of wantRoutes) {
      if (this.#journal.has(key) && present.has(key)) continue;
      if (this.#journal.has(key)) this.#journal.undo(key); // flushed by the kernel: re-add
      try {
        this.addRoute(key, spec);
      } catch (e) {
        this.#logger.warn("rloc-route-failed", { what: routeText(spec), error: errText(e) });
      }
    }
    const rules = new Map<IpFamily, Rule[]>();
    for (const [key, spec] of wantRules) {
      if (this.#journal.has(key)) {
        let list = rules.get(spec.family);
        if (list === undefined) rules.set(spec.family, list = this.#net.rules(spec.family));
        if (list.some((r) => sameRule(r, spec))) continue;
        this.#journal.undo(key); // removed behind our back: add again
      }
      try {
        this.addRule(key, spec);
      } catch (e) {
        this.#logger.warn("rloc-rule-failed", { what: ruleText(spec), error: errText(e) });
      }
    }
  }
}

/**
 * What goes into the TUN for `family`: `all` without destination filters,
 * else the destination prefixes of that family (maybe none).
 */
function overlayRoutes(
  family: IpFamily,
  destinations: readonly TextPrefix[],
  all: readonly string[],
): readonly string[] {
  if (destinations.length === 0) return all;
  return destinations.filter((d) => d.family === family).map((d) => d.text);
}

/**
 * The copy of a main-table route through one of `indexes` for table
 * `table` (default: the per-RLOC table of its interface), or undefined.
 */
function copyRoute(
  r: Route,
  indexes: ReadonlySet<number>,
  table?: number,
): RouteSpec | undefined {
  if (r.type !== "unicast" || r.dev === undefined || !indexes.has(r.dev)) return undefined;
  return {
    dst: r.dst,
    table: table ?? rlocTable(r.dev),
    dev: r.dev,
    scope: r.scope,
    ...(r.gateway !== undefined ? { gateway: r.gateway } : {}),
    ...(r.src !== undefined ? { src: r.src } : {}),
    ...(r.metric !== undefined ? { metric: r.metric } : {}),
  };
}
