/**
 * The tunnel router's own locators, and the records that carry them.
 *
 * Flow: at start and after every burst of netlink link/address events,
 * {@link LocalLocators.resolve} reads the host ({@link HostSnapshot}) and
 * resolves every configured locator again; the caller then re-registers
 * the mappings whose locators changed and sends SMRs for them.
 *
 * - `[[database-mapping]]` locators come from `rloc-address` (used as
 *   written, unless the address sits on a local interface whose link is
 *   down: a remote RLOC is registered as it is) and `rloc-iface` (the first
 *   usable address of that family on the interface, IPv6 limited by
 *   `ipv6-scope`; none while the link is down). An `rloc-address` may name
 *   an `[[explicit-locator-path]]`.
 * - An rtr's own locators come from its `[[rtr-iface]]`s the same way.
 * - A locator that is down is left out of records (rather than sent with
 *   the R bit clear): a map-server forwards Map-Requests to the
 *   best-priority registered locator whatever its R bit, and peers cannot
 *   use what is not there.
 * - ITR-RLOCs are the locators on this host (never a remote RLOC: replies
 *   must come here), the one the kernel uses toward the first map-resolver
 *   first; just the control address when the control socket is bound to one.
 *
 * @module
 */

import {
  type Address,
  addressToString,
  ipAddress,
  type IPv4Address,
  type IPv6Address,
} from "../../wire/address.ts";
import { ACTION, type EidRecord } from "../../wire/eid_record.ts";
import { canonicalIp, isIPv4 } from "../../wire/ip_text.ts";
import { locatorRecord } from "../../wire/locator.ts";
import type { IpFamily } from "../../ffi/mod.ts";
import {
  type Config,
  type DatabaseMapping,
  MAX_RECORD_LOCATORS,
  type RlocAddress,
  type RlocIface,
  type RtrIface,
} from "../../config/mod.ts";
import {
  formatPrefix,
  type Prefix,
  prefixEid,
  prefixFromConfig,
  PrefixTable,
} from "../../core/prefix.ts";
import { linkUsable, type Platform, usableAddress } from "./platform.ts";
import type { LocalRloc } from "./routing.ts";

/** ITR-RLOCs a Map-Request can carry. */
const MAX_ITR_RLOCS = 32;

/** The address family of an IP address text. */
export function familyOf(ip: string): IpFamily {
  return isIPv4(ip) ? "ipv4" : "ipv6";
}

/** A locator of ours. */
export interface LocalLocator {
  /** As sent in records. */
  readonly address: Address;
  /** IP text when it is an IP address. */
  readonly ip?: string;
  readonly priority: number;
  readonly weight: number;
  /** Interface it was taken from or sits on. */
  readonly iface?: string;
  /** Index of that interface. */
  readonly index?: number;
}

/** Whether a locator is an IP address on one of this host's interfaces (not a remote RLOC). */
export function onHost(l: LocalLocator): boolean {
  return l.ip !== undefined && l.index !== undefined;
}

/** One `[[database-mapping]]` and its locators now. */
export interface LocalMapping {
  readonly prefix: Prefix;
  readonly text: string;
  /** Replaced in place when the API replaces the mapping. */
  config: DatabaseMapping;
  locators: LocalLocator[];
  signature: string;
}

/** Interface addresses and links at one moment. */
export class HostSnapshot {
  readonly #links = new Map<string, { index: number; usable: boolean }>();
  readonly #byIndex = new Map<number, { name: string; usable: boolean }>();
  readonly #addrs: { ip: string; index: number; family: IpFamily; scope: number }[] = [];

  /** Reads the links and addresses of `platform`. */
  constructor(platform: Platform) {
    for (const l of platform.net.links()) {
      const usable = linkUsable(l);
      this.#links.set(l.name, { index: l.index, usable });
      this.#byIndex.set(l.index, { name: l.name, usable });
    }
    for (const a of platform.net.addresses()) {
      if (!usableAddress(a)) continue;
      const ip = canonicalIp(a.address);
      if (ip !== undefined) {
        this.#addrs.push({ ip, index: a.index, family: a.family, scope: a.scope });
      }
    }
  }

  /** Every usable address. */
  ips(): Set<string> {
    return new Set(this.#addrs.map((a) => a.ip));
  }

  /** The interface holding `ip`: its index, name and whether it is usable. */
  holder(ip: string): { index: number; name: string; usable: boolean } | undefined {
    const a = this.#addrs.find((x) => x.ip === ip);
    if (a === undefined) return undefined;
    const l = this.#byIndex.get(a.index);
    return { index: a.index, name: l?.name ?? "", usable: l?.usable ?? true };
  }

  /** The first usable address of `family` on interface `name` (undefined while its link is down). */
  ifaceAddress(
    name: string,
    family: IpFamily,
    ipv6Scope: "GLOBAL" | "SITE",
  ): { ip: string; index: number } | undefined {
    const l = this.#links.get(name);
    if (l === undefined || !l.usable) return undefined;
    for (const a of this.#addrs) {
      if (a.index !== l.index || a.family !== family) continue;
      if (family === "ipv6" && !ipv6InScope(a.ip, a.scope, ipv6Scope)) continue;
      return { ip: a.ip, index: l.index };
    }
    return undefined;
  }
}

/** GLOBAL: 2000::/3; SITE: also unique-local fc00::/7 and site-local fec0::/10. */
function ipv6InScope(ip: string, scope: number, want: "GLOBAL" | "SITE"): boolean {
  if (scope >= 253) return false; // link or host scope
  const first = parseInt(ip.split(":")[0] || "0", 16);
  if ((first & 0xe000) === 0x2000) return true;
  if (want === "GLOBAL") return false;
  return (first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfec0;
}

/** The ELP LCAF address of the `[[explicit-locator-path]]` named `name`. */
export function elpAddress(name: string, config: Config): Address | undefined {
  const elp = config.explicitLocatorPaths.find((e) => e.name === name);
  if (elp === undefined) return undefined;
  return {
    kind: "elp",
    hops: elp.nodes.map((n) => ({
      lookup: n.lookup,
      probe: n.probe,
      strict: n.strict,
      address: ipAddress(n.address),
    })),
  };
}

/** Why a mapping cannot be taken: the request field at fault and what is wrong. */
export interface MappingProblem {
  readonly field: string;
  readonly reason: string;
}

/**
 * Checks a mapping (database or static map-cache entry) an API edit brings
 * before anything is routed or kept: its locators must fit one EID record
 * (at most 255, RFC 9301 §5.4) and every explicit locator path it names
 * must exist. Undefined when it can be taken.
 */
export function mappingProblem(
  m: { readonly rlocAddresses: readonly RlocAddress[]; readonly rlocIfaces?: readonly RlocIface[] },
  config: Config,
): MappingProblem | undefined {
  const n = m.rlocAddresses.length + (m.rlocIfaces?.length ?? 0);
  if (n > MAX_RECORD_LOCATORS) {
    return {
      field: m.rlocAddresses.length > 0 ? "rloc-address" : "rloc-iface",
      reason: `${n} locators, at most ${MAX_RECORD_LOCATORS} fit in one EID record ` +
        "(8-bit Locator Count, RFC 9301 §5.4)",
    };
  }
  for (const [i, r] of m.rlocAddresses.entries()) {
    if (r.kind === "elp" && elpAddress(r.elpName, config) === undefined) {
      return {
        field: `rloc-address[${i}].address`,
        reason: `no [[explicit-locator-path]] is named "${r.elpName}"`,
      };
    }
  }
  return undefined;
}

/** Interfaces to take a locator from: `rloc-iface` entries and `[[rtr-iface]]`s alike. */
interface IfaceSource {
  readonly iface: string;
  readonly ipVersion: 4 | 6;
  readonly priority: number;
  readonly weight: number;
}

/** Resolves configured locators against the host. */
function resolveLocators(
  addresses: readonly RlocAddress[],
  ifaces: readonly IfaceSource[],
  host: HostSnapshot,
  config: Config,
): LocalLocator[] {
  const out: LocalLocator[] = [];
  const seen = new Set<string>();
  for (const r of addresses) {
    if (r.kind === "elp") {
      const a = elpAddress(r.elpName, config);
      if (a === undefined) continue;
      const k = addressToString(a);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push({ address: a, priority: r.priority, weight: r.weight });
      continue;
    }
    const ip = canonicalIp(r.address);
    if (ip === undefined || seen.has(ip)) continue;
    const holder = host.holder(ip);
    if (holder !== undefined && !holder.usable) continue; // its link is down
    seen.add(ip);
    out.push({
      address: ipAddress(ip),
      ip,
      priority: r.priority,
      weight: r.weight,
      ...(holder !== undefined ? { iface: holder.name, index: holder.index } : {}),
    });
  }
  for (const f of ifaces) {
    const found = host.ifaceAddress(f.iface, f.ipVersion === 4 ? "ipv4" : "ipv6", config.ipv6Scope);
    if (found === undefined || seen.has(found.ip)) continue;
    seen.add(found.ip);
    out.push({
      address: ipAddress(found.ip),
      ip: found.ip,
      priority: f.priority,
      weight: f.weight,
      iface: f.iface,
      index: found.index,
    });
  }
  return out;
}

/** A short text that changes when a locator list changes. */
export function locatorSignature(ls: readonly LocalLocator[]): string {
  return ls.map((l) => `${addressToString(l.address)}/${l.priority}/${l.weight}`).join(",");
}

function ifacesOf(m: DatabaseMapping): IfaceSource[] {
  return m.rlocIfaces.map((f) => ({
    iface: f.interface,
    ipVersion: f.ipVersion,
    priority: f.priority,
    weight: f.weight,
  }));
}

/** What changed in one {@link LocalLocators.resolve}. */
export interface Resolved {
  /** Mappings whose locators changed. */
  readonly changed: LocalMapping[];
  /** Whether the rtr's own locators changed. */
  readonly ownChanged: boolean;
  /** Whether the set of this host's addresses changed (our place on an ELP may have). */
  readonly hostMoved: boolean;
}

/** The local database and the router's own locators (see the module notes). */
export class LocalLocators {
  /** The database, in config order. */
  readonly mappings: LocalMapping[] = [];
  /** The database by prefix. */
  readonly table = new PrefixTable<LocalMapping>();
  /** The rtr's own locators (from `[[rtr-iface]]`; none for a database). */
  own: LocalLocator[] = [];
  /** IP addresses of every resolved locator. */
  ownIps: ReadonlySet<string> = new Set();
  /** Every usable address on this host's interfaces (an ELP hop that is us). */
  hostIps: ReadonlySet<string> = new Set();
  /** Locators on local interfaces, for the per-RLOC tables. */
  rlocs: LocalRloc[] = [];
  /** ITR-RLOCs of Map-Requests and probes (see {@link computeItrRlocs}). */
  itrRlocs: (IPv4Address | IPv6Address)[] = [];

  readonly #config: Config;
  readonly #platform: Platform;
  readonly #ifaces: readonly IfaceSource[] | undefined;

  /**
   * The database's mappings (none for an rtr), and the `[[rtr-iface]]`s
   * for a router whose own locators come from them (undefined otherwise).
   */
  constructor(
    config: Config,
    platform: Platform,
    database: readonly DatabaseMapping[],
    rtrIfaces: readonly RtrIface[] | undefined,
  ) {
    this.#config = config;
    this.#platform = platform;
    this.#ifaces = rtrIfaces;
    for (const m of database) this.add(m);
  }

  /** Whether locators come from `[[rtr-iface]]`s rather than a database. */
  get hasOwn(): boolean {
    return this.#ifaces !== undefined;
  }

  /** Reads the host now. */
  snapshot(): HostSnapshot {
    return new HostSnapshot(this.#platform);
  }

  /** Every locator: the database's, then the rtr's own. */
  all(): LocalLocator[] {
    const out: LocalLocator[] = [];
    for (const m of this.mappings) out.push(...m.locators);
    out.push(...this.own);
    return out;
  }

  /** Resolves every locator against `host` (default: read now). */
  resolve(host: HostSnapshot = this.snapshot()): Resolved {
    const config = this.#config;
    const changed: LocalMapping[] = [];
    const ownBefore = locatorSignature(this.own);
    this.own = resolveLocators([], this.#ifaces ?? [], host, config);
    for (const m of this.mappings) {
      const ls = resolveLocators(m.config.rlocAddresses, ifacesOf(m.config), host, config);
      const sig = locatorSignature(ls);
      if (sig !== m.signature) {
        changed.push(m);
        m.locators = ls;
        m.signature = sig;
      }
    }
    const rlocs: LocalRloc[] = [];
    const own = new Set<string>();
    const seen = new Set<string>();
    for (const l of this.all()) {
      if (l.ip === undefined) continue;
      own.add(l.ip);
      if (l.index === undefined || seen.has(l.ip)) continue;
      seen.add(l.ip);
      rlocs.push({ address: l.ip, family: familyOf(l.ip), index: l.index });
    }
    this.rlocs = rlocs;
    this.ownIps = own;
    const hostIps = host.ips();
    const hostMoved = hostIps.size !== this.hostIps.size ||
      [...hostIps].some((ip) => !this.hostIps.has(ip));
    this.hostIps = hostIps;
    return { changed, ownChanged: locatorSignature(this.own) !== ownBefore, hostMoved };
  }

  /** Sets {@link itrRlocs}: see the module notes. */
  computeItrRlocs(controlAddress: string | undefined): void {
    if (controlAddress !== undefined) {
      this.itrRlocs = [ipAddress(controlAddress)];
      return;
    }
    const ips: string[] = [];
    const sorted = [...this.all()].sort((a, b) => a.priority - b.priority);
    for (const l of sorted) if (onHost(l) && !ips.includes(l.ip!)) ips.push(l.ip!);
    const mr = this.#config.mapResolvers[0];
    const preferred = mr !== undefined ? this.#platform.routeSource(mr) : undefined;
    const p = preferred !== undefined ? canonicalIp(preferred) : undefined;
    if (p !== undefined && ips.includes(p)) {
      ips.splice(ips.indexOf(p), 1);
      ips.unshift(p);
    }
    this.itrRlocs = ips.slice(0, MAX_ITR_RLOCS).map((ip) => ipAddress(ip));
  }

  /** The first locator on this host of `family`, if any. */
  firstOnHost(family: IpFamily): string | undefined {
    return this.all().find((l) => onHost(l) && familyOf(l.ip!) === family)?.ip;
  }

  /** Adds a mapping, or replaces the config of the one with its prefix (not resolved yet). */
  add(m: DatabaseMapping): { mapping: LocalMapping; added: boolean } {
    const prefix = prefixFromConfig(m.eidPrefix, m.iid);
    const old = this.table.get(prefix);
    if (old !== undefined) {
      old.config = m;
      return { mapping: old, added: false };
    }
    const mapping: LocalMapping = {
      prefix,
      text: formatPrefix(prefix),
      config: m,
      locators: [],
      signature: "",
    };
    this.mappings.push(mapping);
    this.table.set(prefix, mapping);
    return { mapping, added: true };
  }

  /** Removes the mapping of `prefix`; returns it, or undefined if there was none. */
  remove(prefix: Prefix): LocalMapping | undefined {
    const m = this.table.get(prefix);
    if (m === undefined) return undefined;
    this.mappings.splice(this.mappings.indexOf(m), 1);
    this.table.delete(prefix);
    return m;
  }

  /**
   * The record of a mapping with its locators now (the L bit on each;
   * the p bit on the one a probe reply leaves from, `probedFrom`); with no
   * locator, a drop record.
   */
  record(m: LocalMapping, ttl: number, probedFrom?: string): EidRecord {
    const locators = m.locators.map((l) =>
      locatorRecord(l.address, l.priority, l.weight, {
        local: true,
        probed: probedFrom !== undefined && l.ip === probedFrom,
      })
    );
    return {
      ttl,
      maskLen: m.prefix.len,
      action: locators.length > 0 ? ACTION.NO_ACTION : ACTION.DROP_NO_REASON,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: prefixEid(m.prefix),
      locators,
    };
  }

  /** A record for any `prefix` with the rtr's own locators (its answer to RLOC-probes). */
  ownRecord(prefix: Prefix, ttl: number, probedFrom?: string): EidRecord {
    return {
      ttl,
      maskLen: prefix.len,
      action: ACTION.NO_ACTION,
      authoritative: false,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: prefixEid(prefix),
      locators: this.own.map((l) =>
        locatorRecord(l.address, l.priority, l.weight, {
          local: true,
          probed: probedFrom !== undefined && l.ip === probedFrom,
        })
      ),
    };
  }
}
