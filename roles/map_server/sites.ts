/**
 * What a map-server knows from its config: the `[[lisp-site]]`s (prefix,
 * key prepared once, DDT referral locators; the API may add and remove
 * sites at run time, roles/map_server/site_edits.ts), the whole configured
 * EID space (sites and static registrations), the RTRs that may relay
 * registrations (`[[ms-rtr-node]]`) and those it advertises in
 * Info-Replies (`ms-advertised-rtrs-set`), and the address families it can
 * answer on.
 *
 * @module
 */

import { type Address, ipAddress, type IPv4Address, type IPv6Address } from "../../wire/address.ts";
import { HmacKey } from "../../wire/auth.ts";
import { isIPv4 } from "../../wire/ip_text.ts";
import { type LocatorRecord, locatorRecord } from "../../wire/locator.ts";
import type { Config, LispSite, MsStaticRegisteredSite } from "../../config/mod.ts";
import { formatPrefix, type Prefix, prefixFromConfig, PrefixTable } from "../../core/prefix.ts";

/** Key type of the keys shared with RTRs (`[[ms-rtr-node]]` has no `key-type`; OOR: HMAC-SHA-1). */
const RTR_KEY_ID = 1;

/** One configured `[[lisp-site]]`. */
export interface Site {
  readonly prefix: Prefix;
  readonly text: string;
  readonly config: LispSite;
  /** The site key, prepared once (sites with the same key and type share it). */
  readonly key: HmacKey;
  /** This map-server and the site's `ddt-ms-peers`, for MS-ACK referrals. */
  readonly referralLocators: readonly LocatorRecord[];
  /** Whether that set is incomplete (the referral's I bit). */
  readonly referralIncomplete: boolean;
}

/** The locators of a `[[ms-static-registered-site]]` (ELPs by name). */
export function staticLocators(s: MsStaticRegisteredSite, config: Config): LocatorRecord[] {
  return s.rlocAddresses.map((r) => {
    if (r.kind === "address") return locatorRecord(ipAddress(r.address), r.priority, r.weight);
    const elp = config.explicitLocatorPaths.find((e) => e.name === r.elpName);
    if (elp === undefined) throw new TypeError(`no explicit-locator-path named ${r.elpName}`);
    const address: Address = {
      kind: "elp",
      hops: elp.nodes.map((n) => ({
        lookup: n.lookup,
        probe: n.probe,
        strict: n.strict,
        address: ipAddress(n.address),
      })),
    };
    return locatorRecord(address, r.priority, r.weight);
  });
}

/** The map-server's configured sites and RTRs (see the module notes). */
export class Sites {
  /** Sites by prefix. */
  readonly table = new PrefixTable<Site>();
  /** Sites in config order. */
  readonly list: Site[] = [];
  /** Every configured EID prefix (sites and static registrations): the EID space. */
  readonly configured = new PrefixTable<true>();
  /** This map-server's `control-address`, if set. */
  readonly self?: string;
  /** Address families it answers on. */
  readonly families: ReadonlySet<string>;
  /** `[[ms-rtr-node]]` by canonical address: the RTRs that may relay Map-Registers. */
  readonly rtrNodes = new Map<string, { readonly name: string; readonly key: HmacKey }>();
  /** The RTRs of `ms-advertised-rtrs-set`, sent in Info-Replies. */
  readonly advertised: (IPv4Address | IPv6Address)[] = [];
  /** That set's TTL. */
  readonly advertisedTtl: number = 0;
  /** Keys by `keyType:key`: sites with the same key share one. */
  readonly #keys = new Map<string, HmacKey>();
  #version = 0;

  /** Bumped by every {@link add} and {@link remove}: what was judged against the sites before may differ. */
  get version(): number {
    return this.#version;
  }

  /** Reads `config`. Throws TypeError on what validation should have refused. */
  constructor(config: Config) {
    const self = config.controlAddress;
    if (self !== undefined) this.self = self;
    this.families = new Set(
      self === undefined ? ["ipv4", "ipv6"] : [isIPv4(self) ? "ipv4" : "ipv6"],
    );
    for (const s of config.lispSites) this.add(s);
    for (const s of config.msStaticRegisteredSites) {
      this.configured.set(prefixFromConfig(s.eidPrefix, s.iid), true);
    }
    for (const n of config.msRtrNodes) {
      this.rtrNodes.set(ipAddress(n.address).ip, {
        name: n.name,
        key: new HmacKey(RTR_KEY_ID, n.key),
      });
    }
    const set = config.msRtrsSets.find((x) => x.name === config.msAdvertisedRtrsSet);
    if (set !== undefined) {
      this.advertisedTtl = set.ttl;
      for (const name of set.rtrs) {
        const n = config.msRtrNodes.find((x) => x.name === name);
        if (n !== undefined) this.advertised.push(ipAddress(n.address));
      }
    }
  }

  /**
   * Adds `s` (a `[[lisp-site]]` of the config, or one added at run time),
   * replacing a site of the same prefix and instance; returns it.
   */
  add(s: LispSite): Site {
    const prefix = prefixFromConfig(s.eidPrefix, s.iid);
    this.#version++;
    const keyName = `${s.keyType}:${s.key}`;
    let key = this.#keys.get(keyName);
    if (key === undefined) {
      key = new HmacKey(s.keyType, s.key);
      this.#keys.set(keyName, key);
    }
    const refs: LocatorRecord[] = [];
    const seen = new Set<string>();
    const self = this.self;
    for (const a of self !== undefined ? [self, ...s.ddtMsPeers] : s.ddtMsPeers) {
      const ip = ipAddress(a);
      if (seen.has(ip.ip)) continue;
      seen.add(ip.ip);
      refs.push(locatorRecord(ip));
    }
    const site: Site = {
      prefix,
      text: formatPrefix(prefix),
      config: s,
      key,
      referralLocators: refs,
      referralIncomplete: !s.ddtMsPeersComplete || self === undefined,
    };
    const old = this.table.get(prefix);
    if (old !== undefined) this.list.splice(this.list.indexOf(old), 1);
    this.table.set(prefix, site);
    this.list.push(site);
    this.configured.set(prefix, true);
    return site;
  }

  /**
   * Removes the site of exactly `prefix` (its EID space stays configured
   * when `keepSpace`, a static registration of that prefix); returns it.
   */
  remove(prefix: Prefix, keepSpace = false): Site | undefined {
    const site = this.table.get(prefix);
    if (site === undefined) return undefined;
    this.#version++;
    this.table.delete(prefix);
    this.list.splice(this.list.indexOf(site), 1);
    if (!keepSpace) this.configured.delete(prefix);
    return site;
  }
}
