/**
 * The control plane's map-cache: the truth the data plane's copy is made
 * from. Every change here is pushed to the Worker at once
 * ({@link MapCache.install}, {@link MapCache.remove}); what the Worker
 * gets for an entry ({@link MapCache.toData}) also depends on probing
 * (locators marked down), on where this host sits on an explicit locator
 * path and the bits of its hops (elp.ts: L hops resolved through this
 * map-cache, P hops probed, S hops that cannot be reached make the locator
 * drop), and on NAT traversal (behind a NAT, everything goes to the RTRs).
 * An entry whose explicit locator path depends on something that changes
 * (an L hop's own entry, a probe, a route) is given to the Worker again
 * when what it gets changes ({@link MapCache.pushElp}).
 *
 * - Entries learned from Map-Replies (resolution.ts) expire after their
 *   TTL ({@link MapCache.expiredSweep}); TTL 0 records are never cached.
 * - `[[static-map-cache]]` entries, and those added through the API, never
 *   expire and are never replaced by Map-Replies.
 * - An rtr's entries for xTRs behind a NAT (learned from relayed
 *   registrations, rtr_relay.ts) carry the xTR's translated port.
 * - The views say where each entry came from (`origin`: `config` for a
 *   `[[static-map-cache]]`, `map-reply`, or `map-notify` for an rtr's NAT
 *   entries; API edits are marked by web/state.ts), since when the
 *   prefix has an entry, and what the data plane encapsulated by it.
 *
 * @module
 */

import { type Address, addressToString, type ElpAddress, ipAddress } from "../../wire/address.ts";
import { ACTION } from "../../wire/eid_record.ts";
import { type LocatorRecord, locatorRecord } from "../../wire/locator.ts";
import type { StaticMapCacheEntry } from "../../config/mod.ts";
import {
  formatPrefix,
  type Prefix,
  prefixContains,
  prefixEquals,
  prefixFromConfig,
  PrefixTable,
} from "../../core/prefix.ts";
import { type MapCacheView, type Origin, splitIidPrefix } from "../../core/status.ts";
import type { DataAction, DataLocator, DataMapping, EntryTraffic } from "../../dataplane/api.ts";
import { type Env, type MapCacheInfo, TTL_FOREVER } from "./context.ts";
import { elpAddress } from "./locals.ts";
import {
  elpLookupEids,
  type ElpNextHop,
  elpNextHop,
  elpProbeTargets,
  type ElpReader,
} from "./elp.ts";
import { METRICS } from "../../core/metrics.ts";

/** One map-cache entry. */
export interface CacheEntry {
  readonly prefix: Prefix;
  readonly static: boolean;
  readonly action: DataAction;
  readonly locators: readonly LocatorRecord[];
  /** Record TTL in minutes (TTL_FOREVER for static). */
  readonly ttl: number;
  readonly expiresAt: number;
  readonly from?: string;
  /**
   * rtr: the entry of an xTR behind a NAT, learned from its relayed
   * registration: its locator is the xTR's translated address and this
   * its translated port. Never replaced by Map-Replies, never probed.
   */
  readonly natPort?: number;
  /** Where it came from, when the views cannot tell (a `[[static-map-cache]]`: `config`). */
  readonly origin?: Origin;
}

/** The data-plane action of each negative Map-Reply action. */
export const DATA_ACTIONS: Readonly<Record<number, DataAction>> = {
  [ACTION.NO_ACTION]: "native-forward",
  [ACTION.NATIVELY_FORWARD]: "native-forward",
  [ACTION.SEND_MAP_REQUEST]: "send-map-request",
  [ACTION.DROP_NO_REASON]: "drop",
  [ACTION.DROP_POLICY_DENIED]: "drop",
  [ACTION.DROP_AUTH_FAILURE]: "drop",
};

/** Negative-entry actions as the API names them. */
const VIEW_ACTIONS: Readonly<Record<DataAction, string>> = {
  "encapsulate": "drop",
  "native-forward": "natively-forward",
  "send-map-request": "send-map-request",
  "drop": "drop",
};

/** `static`, `positive` or `negative`. */
export function kindOf(e: CacheEntry): "static" | "positive" | "negative" {
  return e.static ? "static" : e.locators.length > 0 ? "positive" : "negative";
}

/** The data-plane locators of RTRs (all equal). */
export function rtrLocators(rtrs: readonly string[]): DataLocator[] {
  return rtrs.map((address) => ({ address, priority: 1, weight: 100, up: true }));
}

/**
 * The IP address to encapsulate to for a locator: itself or, for an
 * explicit locator path, the hop after the last hop that is an address
 * of this host (`here`; an RTR on the path re-encapsulates to the next
 * hop), else the path's first hop (the ITR sends to the first RTR).
 * Undefined when this host is the path's last hop.
 */
export function locatorIp(a: Address, here?: ReadonlySet<string>): string | undefined {
  if (a.kind === "ipv4" || a.kind === "ipv6") return a.ip;
  if (a.kind === "elp") {
    let next = 0;
    if (here !== undefined && here.size > 0) {
      for (let i = a.hops.length - 1; i >= 0; i--) {
        const ip = locatorIp(a.hops[i]!.address);
        if (ip !== undefined && here.has(ip)) {
          next = i + 1;
          break;
        }
      }
    }
    const hop = a.hops[next];
    return hop !== undefined ? locatorIp(hop.address) : undefined;
  }
  return undefined;
}

/** What the map-cache reads from the other parts. */
export interface MapCacheContext {
  /** The data plane's copy. */
  readonly data: {
    setMapping(m: DataMapping): void;
    deleteMapping(p: Prefix): void;
    /** The data plane's traffic per entry, by `[iid]prefix` (undefined: not known). */
    entryCounts?(): ReadonlyMap<string, EntryTraffic> | undefined;
  };
  /** This host's addresses (an ELP hop that is us). */
  hostIps(): ReadonlySet<string>;
  /** Whether probing has not marked the RLOC down. */
  locatorUp(ip: string): boolean;
  /** An RLOC a new entry uses: probing checks it at once if it is marked down. */
  locatorUsed(ip: string): void;
  /** Behind a NAT: the RTRs everything goes to; else undefined. */
  natRtrs(): readonly string[] | undefined;
  /** Whether this host has a route to `ip` (an explicit locator path's hop); default yes. */
  hasRoute?(ip: string): boolean;
  /** Asks the mapping system for `eid` (an L hop of an explicit locator path). */
  resolveEid?(eid: Prefix): void;
}

/** The control plane's map-cache (see the module notes). */
export class MapCache {
  readonly #env: Env;
  readonly #ctx: MapCacheContext;
  readonly #table = new PrefixTable<CacheEntry>();
  /** When each prefix got its entry (kept while it is replaced), ms since the epoch. */
  readonly #since = new PrefixTable<number>();
  /** Entries with an explicit locator path: what the Worker was last given for each. */
  readonly #elpGiven = new Map<string, string>();

  constructor(env: Env, ctx: MapCacheContext) {
    this.#env = env;
    this.#ctx = ctx;
    for (const kind of ["positive", "negative", "static"] as const) {
      env.counters.gauge(METRICS.trMapCacheEntries, () => this.count(kind), { kind });
    }
  }

  /** Number of entries. */
  get size(): number {
    return this.#table.size;
  }

  /** Entries of one kind. */
  count(kind: "static" | "positive" | "negative"): number {
    let n = 0;
    for (const { value } of this.#table.entries()) if (kindOf(value) === kind) n++;
    return n;
  }

  /** The entry of exactly `p`. */
  get(p: Prefix): CacheEntry | undefined {
    return this.#table.get(p);
  }

  /** The longest entry covering `p`. */
  lookup(p: Prefix): { prefix: Prefix; value: CacheEntry } | undefined {
    return this.#table.lookup(p);
  }

  /** Every entry. */
  *entries(): Iterable<CacheEntry> {
    for (const { value } of this.#table.entries()) yield value;
  }

  /** What the data plane gets for `e` (see the module notes). */
  toData(e: CacheEntry): DataMapping {
    const rtrs = this.#ctx.natRtrs();
    if (rtrs !== undefined && e.action === "encapsulate") {
      return { prefix: e.prefix, action: e.action, locators: rtrLocators(rtrs) };
    }
    const here = this.#ctx.hostIps();
    const locators: DataLocator[] = [];
    for (const l of e.locators) {
      if (l.address.kind === "elp") {
        const next = this.elpNextHop(l.address, here);
        if (next.kind === "last") continue;
        locators.push({
          address: next.ip,
          priority: l.priority,
          weight: l.weight,
          up: l.reachable && next.kind === "send",
          ...(next.kind === "strict" ? { elpStrict: true } : {}),
          ...(e.natPort !== undefined ? { port: e.natPort } : {}),
        });
        continue;
      }
      const ip = locatorIp(l.address, here);
      if (ip === undefined) continue;
      locators.push({
        address: ip,
        priority: l.priority,
        weight: l.weight,
        up: l.reachable && this.#ctx.locatorUp(ip),
        ...(e.natPort !== undefined ? { port: e.natPort } : {}),
      });
    }
    return { prefix: e.prefix, action: e.action, locators };
  }

  /**
   * Where a packet on `elp` goes from this host (elp.ts): L hops are
   * looked up here (a positive entry's first usable locator; none yet: the
   * mapping system is asked), P hops in probing, routes on the host.
   */
  elpNextHop(
    elp: ElpAddress,
    here: ReadonlySet<string> = this.#ctx.hostIps(),
    ask = true,
  ): ElpNextHop {
    return elpNextHop(elp, this.#elpReader(here, ask));
  }

  /** The hops of `elp` this host RLOC-probes (elp.ts: the P hops ahead, L hops once resolved). */
  elpProbeTargets(elp: ElpAddress, here: ReadonlySet<string> = this.#ctx.hostIps()): string[] {
    return elpProbeTargets(elp, this.#elpReader(here));
  }

  /** `ask`: an unresolved L hop is asked for (not when the views or logs only look). */
  #elpReader(here: ReadonlySet<string>, ask = true): ElpReader {
    return {
      here,
      resolve: (eid) => this.#resolveHop(eid, here, ask),
      probedDown: (ip) => !this.#ctx.locatorUp(ip),
      hasRoute: (ip) => this.#ctx.hasRoute?.(ip) ?? true,
    };
  }

  /** The RLOC of an L hop's EID: from its entry, else undefined (and it is asked for). */
  #resolveHop(eid: Prefix, here: ReadonlySet<string>, ask: boolean): string | undefined {
    const hit = this.#table.lookup(eid)?.value;
    if (hit !== undefined && hit.action === "encapsulate") {
      let best: { ip: string; priority: number } | undefined;
      for (const l of hit.locators) {
        if (l.address.kind === "elp" || !l.reachable || l.priority === 255) continue;
        const ip = locatorIp(l.address, here);
        if (ip === undefined || !this.#ctx.locatorUp(ip)) continue;
        if (best === undefined || l.priority < best.priority) best = { ip, priority: l.priority };
      }
      if (best !== undefined) return best.ip;
    }
    if (ask && (hit === undefined || hit.action === "send-map-request")) {
      this.#ctx.resolveEid?.(eid);
    }
    return undefined;
  }

  /** Whether `e` has an explicit-locator-path locator. */
  #hasElp(e: CacheEntry): boolean {
    return e.locators.some((l) => l.address.kind === "elp");
  }

  /** Gives `e` (an ELP entry) to the Worker if what it gets changed, or `force`. */
  #giveElp(e: CacheEntry, force: boolean): void {
    const m = this.toData(e);
    const key = formatPrefix(e.prefix);
    const sig = JSON.stringify([m.action, m.locators]);
    const was = this.#elpGiven.get(key);
    if (!force && was === sig) return;
    this.#elpGiven.set(key, sig);
    this.#ctx.data.setMapping(m);
    if (was !== sig) {
      // Where its paths lead from here, once per change (a peer's replies drive it: limited).
      const here = this.#ctx.hostIps();
      const paths = e.locators.flatMap((l) => {
        if (l.address.kind !== "elp") return [];
        const n = this.elpNextHop(l.address, here, false);
        return [
          n.kind === "last"
            ? "last-hop"
            : n.kind === "send"
            ? `send:${n.ip}${n.skipped > 0 ? `(skipped ${n.skipped})` : ""}`
            : `${n.kind}:${n.ip}(${n.problem})`,
        ];
      });
      this.#env.log.limited(`elp-path ${key}`, 10_000, "info", "elp-path", {
        prefix: key,
        paths: paths.join(","),
      });
    }
  }

  /** The ELP entries with an L hop inside `p` get their path again (its entry changed). */
  #lookupChanged(p: Prefix): void {
    if (this.#elpGiven.size === 0) return;
    for (const e of this.entries()) {
      if (!this.#hasElp(e) || prefixEquals(e.prefix, p)) continue;
      const depends = e.locators.some((l) =>
        l.address.kind === "elp" &&
        elpLookupEids(l.address).some((eid) => prefixContains(p, eid))
      );
      if (depends) this.#giveElp(e, false);
    }
  }

  /** Adds or replaces an entry, here and in the data plane. */
  install(e: CacheEntry): void {
    if (this.#table.get(e.prefix) === undefined) this.#since.set(e.prefix, this.#env.now());
    this.#table.set(e.prefix, e);
    if (this.#hasElp(e)) this.#giveElp(e, true);
    else {
      this.#elpGiven.delete(formatPrefix(e.prefix));
      this.#ctx.data.setMapping(this.toData(e));
    }
    this.#lookupChanged(e.prefix);
    const log = this.#env.log;
    if (log.enabled("debug")) {
      const now = this.#env.now();
      log.debug("map-cache-set", {
        prefix: formatPrefix(e.prefix),
        action: e.action,
        rlocs: e.locators.map((l) => addressToString(l.address)).join(","),
        ttl: e.static ? "static" : e.ttl,
        expiresIn: Number.isFinite(e.expiresAt) ? e.expiresAt - now : undefined,
      });
    }
    const here = this.#ctx.hostIps();
    for (const l of e.locators) {
      if (l.address.kind === "elp") continue; // its probed hops: probing.ts
      const ip = locatorIp(l.address, here);
      if (ip !== undefined) this.#ctx.locatorUsed(ip);
    }
  }

  /** Removes the entry of exactly `p`, here and in the data plane; false if there was none. */
  remove(p: Prefix): boolean {
    if (this.#table.get(p) === undefined) return false;
    this.#table.delete(p);
    this.#since.delete(p);
    this.#elpGiven.delete(formatPrefix(p));
    this.#ctx.data.deleteMapping(p);
    this.#lookupChanged(p);
    return true;
  }

  /** Gives every entry to the data plane again (a new Worker, a NAT change). */
  pushAll(): void {
    for (const e of this.entries()) {
      if (this.#hasElp(e)) this.#giveElp(e, true);
      else this.#ctx.data.setMapping(this.toData(e));
    }
  }

  /**
   * Gives the explicit-locator-path entries again where what the Worker
   * gets changed (this host's place on a path, a probed hop, a route, an L
   * hop's RLOC); `force`: all of them.
   */
  pushElp(force = false): void {
    if (this.#elpGiven.size === 0) return;
    for (const e of this.entries()) if (this.#hasElp(e)) this.#giveElp(e, force);
  }

  /** Timer: removes expired entries. */
  expiredSweep(): void {
    const now = this.#env.now();
    const gone: Prefix[] = [];
    for (const { prefix, value } of this.#table.entries()) {
      if (!value.static && value.expiresAt <= now) gone.push(prefix);
    }
    for (const p of gone) {
      this.remove(p);
      this.#env.counters.inc(METRICS.trMapCacheExpired);
      this.#env.log.debug("map-cache-expired", { prefix: formatPrefix(p) });
    }
  }

  // -------------------------------------------------------------------------
  // Static entries

  /** The entry of a `[[static-map-cache]]` (locators of unknown ELPs left out). */
  staticEntry(s: StaticMapCacheEntry): CacheEntry {
    const locators: LocatorRecord[] = [];
    for (const r of s.rlocAddresses) {
      const address = r.kind === "address"
        ? ipAddress(r.address)
        : elpAddress(r.elpName, this.#env.config);
      if (address === undefined) continue;
      locators.push(locatorRecord(address, r.priority, r.weight));
    }
    return {
      prefix: prefixFromConfig(s.eidPrefix, s.iid),
      static: true,
      action: "encapsulate",
      locators,
      ttl: TTL_FOREVER,
      expiresAt: Infinity,
    };
  }

  /** Installs every `[[static-map-cache]]` of the config. */
  installStatic(): void {
    for (const s of this.#env.config.staticMapCache) {
      this.install({ ...this.staticEntry(s), origin: "config" });
    }
  }

  // -------------------------------------------------------------------------
  // Views

  /** Locator `l` as the views show it, with its state. */
  #locatorUp(l: LocatorRecord): boolean {
    if (l.address.kind === "elp") {
      const next = this.elpNextHop(l.address, undefined, false).kind;
      return l.reachable && (next === "send" || next === "last");
    }
    const ip = locatorIp(l.address, this.#ctx.hostIps());
    return l.reachable && (ip === undefined || this.#ctx.locatorUp(ip));
  }

  /** Every entry, sorted by prefix. */
  info(): MapCacheInfo[] {
    const out: MapCacheInfo[] = [];
    for (const e of this.entries()) {
      out.push({
        prefix: formatPrefix(e.prefix),
        kind: kindOf(e),
        action: e.action,
        ttl: e.static ? null : e.ttl,
        expiresAt: Number.isFinite(e.expiresAt) ? e.expiresAt : null,
        ...(e.from !== undefined ? { from: e.from } : {}),
        locators: e.locators.map((l) => ({
          address: addressToString(l.address),
          priority: l.priority,
          weight: l.weight,
          up: this.#locatorUp(l),
        })),
      });
    }
    return out.sort((a, b) => a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0);
  }

  /**
   * Where `e` came from: as installed, else a Map-Reply, or for an rtr's
   * NAT entry the Map-Notify it relayed; undefined for a static entry
   * added through the API (web/state.ts marks those `api`).
   */
  #origin(e: CacheEntry): Origin | undefined {
    if (e.origin !== undefined) return e.origin;
    if (e.static) return undefined;
    return e.natPort !== undefined ? "map-notify" : "map-reply";
  }

  /** The API's view of the entries of `iid` (all without). */
  view(iid: number | undefined): MapCacheView[] {
    const out: MapCacheView[] = [];
    const traffic = this.#ctx.data.entryCounts?.();
    for (const e of this.entries()) {
      if (iid !== undefined && e.prefix.iid !== iid) continue;
      const text = formatPrefix(e.prefix);
      const { eidPrefix } = splitIidPrefix(text);
      const positive = e.locators.length > 0;
      const origin = this.#origin(e);
      const since = this.#since.get(e.prefix);
      const t = traffic?.get(text);
      out.push({
        eidPrefix,
        iid: e.prefix.iid,
        kind: positive ? "positive" : "negative",
        ...(!positive ? { action: VIEW_ACTIONS[e.action] } : {}),
        static: e.static,
        ...(origin !== undefined ? { origin } : {}),
        ...(e.static ? {} : { ttl: e.ttl }),
        expiresAt: Number.isFinite(e.expiresAt) ? e.expiresAt : null,
        ...(since !== undefined ? { since } : {}),
        ...(traffic !== undefined ? { packets: t?.packets ?? 0, bytes: t?.bytes ?? 0 } : {}),
        rlocs: e.locators.map((l) => ({
          address: addressToString(l.address),
          priority: l.priority,
          weight: l.weight,
          state: this.#locatorUp(l) ? "up" : "down",
        })),
      });
    }
    return out;
  }
}
