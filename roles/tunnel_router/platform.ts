/**
 * What a tunnel router (xtr, mn, rtr) asks of the host: interface
 * addresses and link state, rtnetlink routes and rules, the TUN device,
 * the data UDP sockets, link/address events and sysctls. {@link Platform}
 * is that surface; {@link linuxPlatform} implements it with ffi/ (never
 * by running `ip`), and unit tests pass an in-memory fake.
 *
 * On top of it:
 *
 * - {@link Journal}: everything the role adds to the host, in order, with
 *   how to undo it; shutdown undoes it in reverse, logging (never
 *   throwing) what fails.
 * - {@link RouteSetup}: the routing of each mode as OOR's README describes
 *   it (see the module notes of `_tunnel_router.ts`), and the per-RLOC
 *   source tables kept in step with the interfaces.
 * - {@link preflight}: rp_filter and forwarding checks that say exactly
 *   which sysctl to change.
 *
 * @module
 */

import {
  ErrnoError,
  type InterfaceAddress,
  type IpFamily,
  type Link,
  Netlink,
  type NetlinkEvent,
  NetlinkEvents,
  type Route,
  type RouteSpec,
  type Rule,
  type RuleSpec,
  Tun,
  UdpSocket,
} from "../../ffi/mod.ts";
import type { Logger } from "../../core/log.ts";

// ---------------------------------------------------------------------------
// Constants (OOR's routing layout, README "xTR mode", "MN mode", "RTR mode")

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

// ---------------------------------------------------------------------------
// The platform

/** The rtnetlink operations a tunnel router uses (a subset of {@link Netlink}). */
export type NetOps = Pick<
  Netlink,
  | "routeAdd"
  | "routeDel"
  | "ruleAdd"
  | "ruleDel"
  | "addrAdd"
  | "addrDel"
  | "routes"
  | "rules"
  | "addresses"
  | "links"
>;

/** An open TUN device. */
export interface TunDevice {
  /** File descriptor (given to the data plane). */
  readonly fd: number;
  /** Interface index. */
  readonly index: number;
  /** Interface name. */
  readonly name: string;
  /** Closes the fd, which deletes the interface. */
  close(): void;
}

/** An open data UDP socket. */
export interface DataSocket {
  /** File descriptor (given to the data plane). */
  readonly fd: number;
  /** Closes it. */
  close(): void;
}

/** What a tunnel router needs from the host. */
export interface Platform {
  /** rtnetlink requests. */
  readonly net: NetOps;
  /** Opens the TUN device `name` with `mtu`, up. */
  openTun(name: string, mtu: number): TunDevice;
  /** Opens a nonblocking UDP socket bound to `address` (default the wildcard) and `port`. */
  openUdp(family: IpFamily, port: number, address?: string): DataSocket;
  /** Link and address events until `signal` aborts. */
  events(signal: AbortSignal): AsyncIterable<NetlinkEvent>;
  /** A sysctl under /proc/sys by path segments (`["net", "ipv4", "ip_forward"]`), trimmed. */
  readSysctl(path: readonly string[]): string | undefined;
  /** The source address the kernel would use toward `dst`, if there is a route. */
  routeSource(dst: string): string | undefined;
  /** Releases what the platform holds (netlink sockets). */
  close(): void;
}

/** Socket buffers of the data sockets (forced when allowed). */
const DATA_SOCKET_BUFFER = 4 << 20;

/** The host's platform through ffi/: rtnetlink, TUN, UDP sockets, /proc/sys. */
export function linuxPlatform(): Platform {
  const nl = Netlink.open();
  return {
    net: nl,
    openTun: (name, mtu) => Tun.open(name, { mtu, netlink: nl }),
    openUdp: (family, port, address) =>
      UdpSocket.open({
        family,
        port,
        ...(address !== undefined ? { address } : {}),
        recvBuffer: DATA_SOCKET_BUFFER,
        sendBuffer: DATA_SOCKET_BUFFER,
      }),
    events: (signal) => routineNetlinkEvents(signal),
    readSysctl: (path) => {
      try {
        return Deno.readTextFileSync(`/proc/sys/${path.join("/")}`).trim();
      } catch {
        return undefined;
      }
    },
    routeSource: (dst) => {
      try {
        return nl.routeGet(dst).src;
      } catch {
        return undefined;
      }
    },
    close: () => nl.close(),
  };
}

async function* routineNetlinkEvents(signal: AbortSignal): AsyncGenerator<NetlinkEvent> {
  const ev = NetlinkEvents.open();
  try {
    yield* ev.listen({ intervalMs: 100, signal });
  } finally {
    ev.close();
  }
}

// ---------------------------------------------------------------------------
// Journal

/** The errno name of an error from {@link NetOps} (or a fake's `{code}`). */
export function errCode(e: unknown): string | undefined {
  if (e instanceof ErrnoError) return e.code;
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === "string" ? c : undefined;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Errors that mean "already gone" when undoing (the kernel removed it with its link). */
const GONE = new Set(["ESRCH", "ENOENT", "EADDRNOTAVAIL", "ENODEV"]);

/**
 * Everything a role added to the host, in the order it was added, each
 * with its undo. Keys make entries unique, so state kept in step with the
 * host (the per-RLOC tables) can be added and removed one by one.
 */
export class Journal {
  readonly #entries = new Map<string, { readonly what: string; readonly undo: () => void }>();
  readonly #logger: Logger;

  /** A journal logging through `logger`. */
  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Number of entries. */
  get size(): number {
    return this.#entries.size;
  }

  /** Whether `key` is recorded. */
  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** Keys starting with `prefix`, oldest first. */
  keys(prefix = ""): string[] {
    return [...this.#entries.keys()].filter((k) => k.startsWith(prefix));
  }

  /** What each entry is, oldest first (for logs and tests). */
  list(): string[] {
    return [...this.#entries.values()].map((e) => e.what);
  }

  /** Records that `what` was added and how to undo it. */
  add(key: string, what: string, undo: () => void): void {
    this.#entries.set(key, { what, undo });
  }

  /** Undoes one entry now (errors logged, not thrown); false if it was not there. */
  undo(key: string): boolean {
    const e = this.#entries.get(key);
    if (e === undefined) return false;
    this.#entries.delete(key);
    this.#run(e.what, e.undo);
    return true;
  }

  /** Undoes every entry, newest first. */
  undoAll(): void {
    const all = [...this.#entries.values()].reverse();
    this.#entries.clear();
    for (const e of all) this.#run(e.what, e.undo);
  }

  #run(what: string, undo: () => void): void {
    try {
      undo();
      this.#logger.debug("undone", { what });
    } catch (e) {
      const code = errCode(e);
      if (code !== undefined && GONE.has(code)) {
        this.#logger.debug("undo-already-gone", { what, code });
      } else {
        this.#logger.warn("undo-failed", { what, error: errText(e) });
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Routing of the modes

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
  const parts = [`route ${r.dst}`];
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
    };
    this.#journal.add(key, routeText(r), () => this.#net.routeDel(del));
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
   * route in table 100 and goes on to main).
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
        this.addRoute(
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
   * instances use the same prefixes.
   */
  setupInstance(r: InstanceRouting, destinations: readonly TextPrefix[] = []): void {
    const table = instanceTable(r.iid);
    for (const f of r.families) {
      for (const dst of overlayRoutes(f, destinations, [f === "ipv4" ? "0.0.0.0/0" : "::/0"])) {
        this.addRoute(`iid-tun ${r.iid} ${f} ${dst}`, { dst, dev: r.tunIndex, table });
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
   * or, with `destination-prefixes`, only those of that family.
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
        this.addRoute(`mn-half ${dst}`, { dst, dev: tunIndex, src, table: MAIN_TABLE });
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

// ---------------------------------------------------------------------------
// Preflight

/** One sysctl that should be changed. */
export interface PreflightFinding {
  /** The sysctl key, e.g. `net.ipv4.ip_forward`. */
  readonly key: string;
  /** Its current value. */
  readonly value: string;
  /** What it should be. */
  readonly want: string;
  /** Why. */
  readonly why: string;
  /** The command that fixes it. */
  readonly fix: string;
}

/** What {@link preflight} checks. */
export interface PreflightInput {
  /** Whether the role forwards between interfaces (xtr, rtr). */
  readonly forwarding: boolean;
  /** Families whose forwarding matters. */
  readonly families: ReadonlySet<IpFamily>;
  /** Names of the RLOC interfaces (their rp_filter is checked). */
  readonly rlocIfaces: readonly string[];
}

/**
 * Checks the sysctls a tunnel router depends on (OOR README: "Make sure
 * that rp_filter kernel network parameter is disabled ... Make sure too
 * that IP forwarding is enabled"): reverse-path filtering must be off (0)
 * or loose (2) for `all` and each RLOC interface, since encapsulated
 * traffic may arrive on an interface that is not the route back to its
 * source; and forwarding must be on for xtr and rtr. Returns what to
 * change; reads only.
 */
export function preflight(
  read: (path: readonly string[]) => string | undefined,
  input: PreflightInput,
): PreflightFinding[] {
  const out: PreflightFinding[] = [];
  const check = (path: string[], ok: (v: string) => boolean, want: string, why: string) => {
    const v = read(path);
    if (v === undefined || ok(v)) return;
    const key = path.join(".");
    out.push({ key, value: v, want, why, fix: `sysctl -w ${key}=${want}` });
  };
  const rpWhy = "strict reverse-path filtering drops encapsulated packets that arrive on " +
    "another interface than the route back to their source; use 0 (off) or 2 (loose)";
  if (input.families.has("ipv4") || input.rlocIfaces.length > 0) {
    check(["net", "ipv4", "conf", "all", "rp_filter"], (v) => v !== "1", "0", rpWhy);
    for (const iface of new Set(input.rlocIfaces)) {
      check(["net", "ipv4", "conf", iface, "rp_filter"], (v) => v !== "1", "0", rpWhy);
    }
  }
  if (input.forwarding) {
    const why = "the router forwards packets between its interfaces and the TUN";
    if (input.families.has("ipv4")) {
      check(["net", "ipv4", "ip_forward"], (v) => v === "1", "1", why);
    }
    if (input.families.has("ipv6")) {
      check(["net", "ipv6", "conf", "all", "forwarding"], (v) => v === "1", "1", why);
    }
  }
  return out;
}

/** Addresses usable as RLOCs: not tentative, not failed DAD. */
export function usableAddress(a: InterfaceAddress): boolean {
  const IFA_F_DADFAILED = 0x08;
  const IFA_F_TENTATIVE = 0x40;
  return (a.flags & (IFA_F_DADFAILED | IFA_F_TENTATIVE)) === 0;
}

/** Whether a link carries traffic (administratively up and running). */
export function linkUsable(l: Link): boolean {
  return l.up && l.running;
}
