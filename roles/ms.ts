/**
 * The Map-Server role (`oor ms`): accepts Map-Registers for the sites of
 * its config and answers Map-Requests for them, as RFC 9301 §8 describes
 * and OOR's `lisp_ms.c` does, plus the DDT Map-Server part of RFC 8111.
 *
 * Map-Register (RFC 9301 §5.6, §8.2):
 * - Every record's EID must fall inside a `[[lisp-site]]`: the site prefix
 *   itself, or a more specific one when the site has
 *   `accept-more-specifics`. The message must be authenticated with the key
 *   of every site its records fall in, with the site's `key-type` as Key ID
 *   (another Key ID is rejected as a wrong key id).
 * - One bad record rejects the whole Map-Register: nothing is registered
 *   and no Map-Notify is sent. The ETR sends all its records together and
 *   signs them together, so a partial acceptance would leave it believing
 *   (from a Map-Notify listing what was accepted) in a state it did not
 *   ask for; OOR skips bad records, which hides configuration mistakes.
 *   Rejections are counted by reason and logged at most once per source
 *   address per minute.
 * - A registration expires 3 minutes after its last refresh (RFC 9301
 *   §8.2), or after its Record TTL when the T bit is set (§5.6). A record
 *   with TTL 0 withdraws the registration of that prefix by that ETR,
 *   whether or not T is set.
 * - Registrations of one prefix by several ETRs are kept apart (by xTR-ID,
 *   or by source address without the I bit) and their locators are merged
 *   in answers (see `_registrations.ts`).
 * - With the M bit, a Map-Notify goes back to the source address and port
 *   of the Map-Register: same nonce, same Key ID, signed with the site key,
 *   the records as registered, and the xTR-ID and site-ID when the I bit
 *   was set (RFC 9301 §5.7).
 *
 * Map-Request (RFC 9301 §8.3), plain or in an ECM:
 * - Registered: a proxy Map-Reply when an ETR set the P bit, the site has
 *   `proxy-reply`, or the registration is static; the record carries the
 *   merged locators with the L bit cleared and the A bit clear (RFC 9301
 *   §5.4: "A Map-Server generating Map-Reply messages as a proxy MUST NOT
 *   set the A-bit to 1"; "the L-bit is set to 0 for all Locators"), and the
 *   registered Record TTL. Otherwise the Map-Request is re-encapsulated in
 *   an ECM (same inner IP/UDP header) and forwarded to port 4342 of one
 *   RLOC of a registered ETR, which answers the ITR directly.
 * - Inside a site but not registered: negative Map-Reply, Natively-Forward,
 *   TTL 1 minute, for the site prefix (or, when more specifics of the site
 *   are registered, the least specific prefix around the EID that holds
 *   none of them).
 * - Outside every site: negative Map-Reply, Natively-Forward, TTL 15
 *   minutes, for the least specific prefix around the EID that overlaps no
 *   configured site (a "hole", RFC 9301 §8.3).
 * - Negative Map-Replies have the A bit set: the Map-Server is the
 *   authority for its configured EID space (as OOR does).
 * - A requested prefix that is shorter than some registered or configured
 *   prefix inside it gets a negative Map-Reply for exactly that prefix with
 *   action Send-Map-Request and TTL 1 minute, so the ITR asks again for
 *   the more specific destinations.
 * - Replies go to the first ITR-RLOC of the request that has an address
 *   family this Map-Server can send on, at the inner UDP source port of the
 *   ECM; a plain Map-Request is answered at its own source address and port.
 *   RLOC-probes and SMRs are dropped and counted (a Map-Server is neither).
 *
 * DDT (RFC 8111 §6.4, §7): a Map-Request in an ECM with the D bit comes
 * from a DDT Map-Resolver. The Map-Referral goes to the ECM's source:
 * - MS-ACK for a registered prefix (TTL 1440 minutes, A bit), and the
 *   request is then answered or forwarded as above;
 * - MS-NOT-REGISTERED for a site with no registration (TTL 1 minute, the
 *   same prefix as the negative Map-Reply above), and nothing else;
 * - NOT-AUTHORITATIVE for an EID outside every site (TTL 0, I bit, no A
 *   bit), and nothing else.
 * MS-ACK and MS-NOT-REGISTERED carry this Map-Server (`control-address`)
 * and the site's `ddt-ms-peers` as referral locators; the I bit says the
 * set is incomplete when `ddt-ms-peers-complete` is false or the
 * Map-Server has no `control-address` to list itself with.
 *
 * Counters (besides the transport's `oor_control_*`):
 * - `oor_ms_registrations{source="map-register"|"static"}` (gauge),
 *   `oor_ms_sites` (gauge);
 * - `oor_ms_registers_accepted_total`,
 *   `oor_ms_register_rejected_total{reason="auth"|"key-id"|"no-site"|"more-specific"}`,
 *   `oor_ms_registrations_withdrawn_total`, `oor_ms_registrations_expired_total`;
 * - `oor_ms_map_notifies_sent_total`,
 *   `oor_ms_map_notify_acks_total{result="matched"|"unmatched"|"auth"}`;
 * - `oor_ms_map_requests_answered_total{kind="proxy"|"forwarded"|"negative-site"|"negative-hole"|"referral"}`,
 *   `oor_ms_map_referrals_sent_total{action="ms-ack"|"ms-not-registered"|"not-authoritative"}`,
 *   `oor_ms_map_requests_dropped_total{reason="probe"|"smr"|"no-record"|"unsupported-eid"|"no-itr-rloc"|"no-etr-rloc"}`.
 *
 * NAT traversal: Info-Requests are answered with an Info-Reply (see
 * `#infoRequest`); Map-Registers an RTR relays (ECM with the N bit) are
 * accepted only from an `[[ms-rtr-node]]` address, and their Map-Notify
 * goes back to that RTR signed twice (roles/_nat.ts).
 *
 * Not handled yet: LISP-SEC, and the `merge` key of a site (merging is
 * always on).
 *
 * @module
 */

import { clearInterval, setInterval } from "node:timers";
import {
  type Address,
  addressToString,
  ipAddress,
  type IPv4Address,
  type IPv6Address,
} from "../wire/address.ts";
import { authStatus, HmacKey, signAuthenticated } from "../wire/auth.ts";
import { ACTION, type EidRecord, REFERRAL_ACTION } from "../wire/eid_record.ts";
import { isIPv4 } from "../wire/ip_text.ts";
import type { LocatorRecord } from "../wire/locator.ts";
import { emitSignedMapNotify, type MapNotify } from "../wire/map_notify.ts";
import { emitInfo, type InfoReply, type InfoRequest } from "../wire/info.ts";
import { emitMsRtrMapNotify } from "../core/nat_auth.ts";
import type { MapReferral } from "../wire/map_referral.ts";
import type { MapRegister } from "../wire/map_register.ts";
import type { MapReply } from "../wire/map_reply.ts";
import type { MapRequest, MapRequestRecord } from "../wire/map_request.ts";
import type { Config, LispSite, MsStaticRegisteredSite, RlocAddress } from "../config/mod.ts";
import { ControlPlane, formatPeer, type Peer, type Received } from "../core/control.ts";
import {
  formatPrefix,
  type Prefix,
  prefixEid,
  prefixEquals,
  prefixFromConfig,
  prefixOf,
  PrefixTable,
} from "../core/prefix.ts";
import {
  type Registration,
  registrationKey,
  RegistrationStore,
  STATIC_KEY,
} from "./_registrations.ts";
import type { RoleDeps, RoleHandle, RoleStart } from "../core/role.ts";
import type { StatusSource } from "../core/status.ts";

// ---------------------------------------------------------------------------
// Constants (RFC 9301 §8.2, §8.3; RFC 8111 §7)

/** Registration lifetime without the T bit: 3 minutes (RFC 9301 §8.2). */
export const REGISTRATION_TIMEOUT_MS = 3 * 60_000;
/** TTL of a negative Map-Reply for an EID outside every site, minutes (RFC 9301 §8.3). */
export const NOT_EID_TTL = 15;
/** TTL of a negative Map-Reply for a site with no registration, minutes (RFC 9301 §8.3). */
export const NOT_REGISTERED_TTL = 1;
/** TTL of an MS-ACK Map-Referral, minutes (RFC 8111 Default_Registered_TTL). */
export const MS_ACK_TTL = 1440;
/** TTL of an MS-NOT-REGISTERED Map-Referral, minutes (RFC 8111 Default_Configured_Not_Registered_TTL). */
export const MS_NOT_REGISTERED_TTL = 1;
/** TTL of a NOT-AUTHORITATIVE Map-Referral (RFC 8111 §7.3.1: 0, never cached). */
export const NOT_AUTHORITATIVE_TTL = 0;
/** The LISP control port: where forwarded Map-Requests go (RFC 9301 §5). */
export const LISP_CONTROL_PORT = 4342;

/** Most locators a record can carry (Locator Count is 8 bits, RFC 9301 §5.4). */
const MAX_LOCATORS = 255;
/** How often expired registrations are swept. */
const SWEEP_INTERVAL_MS = 10_000;
/** Rejections and drops are logged at most once per source per minute. */
const LOG_INTERVAL_MS = 60_000;
/** Map-Notify nonces remembered for matching Map-Notify-Acks. */
const NOTIFY_MEMORY = 4096;
/** How long a Map-Notify nonce is remembered. */
const NOTIFY_MEMORY_MS = 60_000;

/** Why a Map-Register was rejected (the `reason` label of the counter). */
export type RejectReason = "auth" | "key-id" | "no-site" | "more-specific" | "unknown-rtr";

/** Key type of the keys shared with RTRs (`[[ms-rtr-node]]` has no `key-type`; OOR: HMAC-SHA-1). */
const RTR_KEY_ID = 1;

// ---------------------------------------------------------------------------
// Handle and views

/** A locator of a registration, as the views show it. */
export interface RlocInfo {
  /** The locator address (`addressToString` form: `"192.0.2.1"`, `"elp{...}"`). */
  readonly address: string;
  /** Unicast priority. */
  readonly priority: number;
  /** Unicast weight. */
  readonly weight: number;
  /** R bit: reachable as the ETR sees it. */
  readonly reachable: boolean;
}

/** One registration, as {@link MsHandle.registrations} lists it (JSON-friendly). */
export interface RegistrationInfo {
  /** The EID prefix with its instance id: `"[5]10.1.0.0/24"` (`[iid]` only when non-zero). */
  readonly prefix: string;
  /** Instance id. */
  readonly iid: number;
  /** The `[[lisp-site]]` prefix it was accepted under (absent for static entries). */
  readonly site?: string;
  /** `"map-register"`, or `"static"` for `[[ms-static-registered-site]]`. */
  readonly source: "map-register" | "static";
  /** Source address and port of the last Map-Register. */
  readonly from?: string;
  /** xTR-ID (32 hex digits) when the Map-Register had the I bit. */
  readonly xtrId?: string;
  /** site-ID (16 hex digits) when the Map-Register had the I bit. */
  readonly siteId?: string;
  /** The registered locators. */
  readonly rlocs: readonly RlocInfo[];
  /** Record TTL in minutes (the TTL of proxy Map-Replies). */
  readonly ttl: number;
  /** P bit: the ETR asked the Map-Server to proxy-reply. */
  readonly proxyReply: boolean;
  /** First registration, ms since the epoch. */
  readonly firstSeen: number;
  /** Last refresh, ms since the epoch. */
  readonly lastSeen: number;
  /** Expiry, ms since the epoch; null for static entries. */
  readonly expiresAt: number | null;
}

/** One configured `[[lisp-site]]`, as {@link MsHandle.sites} lists it. */
export interface SiteInfo {
  /** The site prefix with its instance id. */
  readonly prefix: string;
  /** Instance id. */
  readonly iid: number;
  /** Key ID registrations must use (1 HMAC-SHA-1-96, 2 HMAC-SHA-256-128). */
  readonly keyType: number;
  /** Whether more specific prefixes may register. */
  readonly acceptMoreSpecifics: boolean;
  /** Whether Map-Requests are always answered here. */
  readonly proxyReply: boolean;
  /** Other DDT Map-Servers of the site. */
  readonly ddtMsPeers: readonly string[];
  /** Live registrations of the site (all its prefixes and ETRs). */
  readonly registrations: number;
}

/** A running Map-Server. */
export interface MsHandle extends RoleHandle {
  /** The bound control port. */
  readonly port: number;
  /** Every live registration, sorted by prefix; sweeps expired ones first. */
  registrations(): RegistrationInfo[];
  /** The configured sites, in config order. */
  sites(): SiteInfo[];
  /** What the HTTP API shows: details, sites and registrations, counters. */
  statusSource(): StatusSource;
}

// ---------------------------------------------------------------------------
// Sites

interface Site {
  readonly prefix: Prefix;
  readonly text: string;
  readonly config: LispSite;
  readonly key: HmacKey;
  readonly referralLocators: readonly LocatorRecord[];
  readonly referralIncomplete: boolean;
}

function locator(address: Address, priority = 1, weight = 100): LocatorRecord {
  return {
    priority,
    weight,
    mPriority: 255,
    mWeight: 0,
    local: false,
    probed: false,
    reachable: true,
    address,
  };
}

function staticLocators(s: MsStaticRegisteredSite, config: Config): LocatorRecord[] {
  return s.rlocAddresses.map((r: RlocAddress) => {
    if (r.kind === "address") return locator(ipAddress(r.address), r.priority, r.weight);
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
    return locator(address, r.priority, r.weight);
  });
}

function hex(v: bigint, digits: number): string {
  return v.toString(16).padStart(digits, "0");
}

/** The IP address to send to for a locator: itself, or an ELP's last hop. */
function locatorIp(a: Address): IPv4Address | IPv6Address | undefined {
  if (a.kind === "ipv4" || a.kind === "ipv6") return a;
  if (a.kind === "elp") {
    const last = a.hops[a.hops.length - 1];
    return last !== undefined ? locatorIp(last.address) : undefined;
  }
  return undefined;
}

/** An address in one text form (RFC 5952 for IPv6). */
function canonical(address: string): string {
  try {
    return ipAddress(address).ip;
  } catch {
    return address;
  }
}

/** The IP address inside an EID (unwrapping an Instance-ID LCAF). */
function eidIp(a: Address): IPv4Address | IPv6Address | undefined {
  if (a.kind === "iid") return eidIp(a.address);
  return a.kind === "ipv4" || a.kind === "ipv6" ? a : undefined;
}

// ---------------------------------------------------------------------------
// The Map-Server

class MapServer implements MsHandle {
  readonly #cp: ControlPlane;
  readonly #deps: RoleDeps;
  readonly #sites = new PrefixTable<Site>();
  readonly #siteList: Site[] = [];
  /** Every configured EID prefix (sites and static registrations): the EID space. */
  readonly #configured = new PrefixTable<true>();
  readonly #store = new RegistrationStore();
  readonly #families: ReadonlySet<string>;
  readonly #self?: string;
  readonly #notified = new Map<bigint, { site: Site; at: number }>();
  /** `[[ms-rtr-node]]` by canonical address: the RTRs that may relay Map-Registers. */
  readonly #rtrNodes = new Map<string, { name: string; key: HmacKey }>();
  /** The RTRs of `ms-advertised-rtrs-set`, sent in Info-Replies, and that set's TTL. */
  readonly #advertised: (IPv4Address | IPv6Address)[] = [];
  readonly #advertisedTtl: number = 0;
  readonly #sweep: ReturnType<typeof setInterval>;
  #closed = false;

  constructor(cp: ControlPlane, config: Config, deps: RoleDeps) {
    this.#cp = cp;
    this.#deps = deps;
    const self = config.controlAddress;
    if (self !== undefined) this.#self = self;
    this.#families = new Set(
      self === undefined ? ["ipv4", "ipv6"] : [isIPv4(self) ? "ipv4" : "ipv6"],
    );
    const keys = new Map<string, HmacKey>();
    for (const s of config.lispSites) {
      const prefix = prefixFromConfig(s.eidPrefix, s.iid);
      const keyName = `${s.keyType}:${s.key}`;
      let key = keys.get(keyName);
      if (key === undefined) {
        key = new HmacKey(s.keyType, s.key);
        keys.set(keyName, key);
      }
      const refs: LocatorRecord[] = [];
      const seen = new Set<string>();
      for (const a of self !== undefined ? [self, ...s.ddtMsPeers] : s.ddtMsPeers) {
        const ip = ipAddress(a);
        if (seen.has(ip.ip)) continue;
        seen.add(ip.ip);
        refs.push(locator(ip));
      }
      const site: Site = {
        prefix,
        text: formatPrefix(prefix),
        config: s,
        key,
        referralLocators: refs,
        referralIncomplete: !s.ddtMsPeersComplete || self === undefined,
      };
      this.#sites.set(prefix, site);
      this.#siteList.push(site);
      this.#configured.set(prefix, true);
    }
    const now = deps.now();
    for (const s of config.msStaticRegisteredSites) {
      const prefix = prefixFromConfig(s.eidPrefix, s.iid);
      this.#configured.set(prefix, true);
      this.#store.put({
        prefix,
        key: STATIC_KEY,
        static: true,
        locators: staticLocators(s, config),
        ttl: s.ttl,
        action: ACTION.NO_ACTION,
        mapVersion: 0,
        proxyReply: true,
        firstSeen: now,
        lastSeen: now,
        expiresAt: Infinity,
      });
    }
    for (const n of config.msRtrNodes) {
      this.#rtrNodes.set(ipAddress(n.address).ip, {
        name: n.name,
        key: new HmacKey(RTR_KEY_ID, n.key),
      });
    }
    const set = config.msRtrsSets.find((x) => x.name === config.msAdvertisedRtrsSet);
    if (set !== undefined) {
      this.#advertisedTtl = set.ttl;
      for (const name of set.rtrs) {
        const n = config.msRtrNodes.find((x) => x.name === name);
        if (n !== undefined) this.#advertised.push(ipAddress(n.address));
      }
    }
    const c = deps.counters;
    c.gauge("oor_ms_registrations", () => this.#store.dynamicCount, { source: "map-register" });
    c.gauge("oor_ms_registrations", () => this.#store.staticCount, { source: "static" });
    c.gauge("oor_ms_sites", () => this.#siteList.length);
    cp.on("map-register", (m, r) => this.#mapRegister(r, m));
    cp.on("map-request", (m, r) => this.#mapRequest(r, m));
    cp.on("map-notify-ack", (m, r) => this.#mapNotifyAck(r, m));
    cp.on("info-request", (m, r) => this.#infoRequest(r, m));
    this.#sweep = setInterval(() => this.#expiredRegistrations(), SWEEP_INTERVAL_MS).unref();
  }

  get port(): number {
    return this.#cp.port;
  }

  // -------------------------------------------------------------------------
  // Map-Register

  #reject(r: Received, reason: RejectReason, detail: string): void {
    this.#deps.counters.inc("oor_ms_register_rejected_total", { reason });
    this.#deps.logger.limited(
      `map-register-rejected ${r.from.address}`,
      LOG_INTERVAL_MS,
      "warn",
      "map-register-rejected",
      { reason, peer: formatPeer(r.from), detail },
    );
  }

  /**
   * Handles a Map-Register: all its records are registered (or withdrawn)
   * or, if any record or the authentication is wrong, none is.
   */
  #mapRegister(r: Received, m: MapRegister): void {
    const recs = m.records;
    if (recs.length === 0) return this.#reject(r, "no-site", "no records");
    const prefixes: Prefix[] = new Array(recs.length);
    const sites: Site[] = new Array(recs.length);
    let first: Site | undefined;
    let several = false;
    for (let i = 0; i < recs.length; i++) {
      const rec = recs[i]!;
      const p = prefixOf(rec.eid, rec.maskLen);
      if (p === undefined) {
        return this.#reject(r, "no-site", `EID ${addressToString(rec.eid)} is not a prefix`);
      }
      const site = this.#sites.lookup(p)?.value;
      if (site === undefined) {
        return this.#reject(r, "no-site", `${formatPrefix(p)} is in no lisp-site`);
      }
      if (!site.config.acceptMoreSpecifics && !prefixEquals(site.prefix, p)) {
        return this.#reject(
          r,
          "more-specific",
          `${formatPrefix(p)} is more specific than site ${site.text}`,
        );
      }
      prefixes[i] = p;
      sites[i] = site;
      if (first === undefined) first = site;
      else if (site !== first) several = true;
    }
    const checked = several ? new Set<Site>() : undefined;
    for (const site of several ? sites : [first!]) {
      if (checked?.has(site)) continue;
      checked?.add(site);
      if (m.keyId !== site.key.keyId) {
        return this.#reject(
          r,
          "key-id",
          `key id ${m.keyId}, site ${site.text} uses ${site.key.keyId}`,
        );
      }
      const status = authStatus(r.bytes, site.key);
      if (status === "bad-key-id") return this.#reject(r, "key-id", `key id ${m.keyId}`);
      if (status !== "ok") return this.#reject(r, "auth", `${status} for site ${site.text}`);
    }
    // Relayed by an RTR for an xTR behind a NAT (ECM with the N bit): only a known RTR may.
    const relayed = r.ecm?.rtrRelayed === true;
    const rtr = relayed ? this.#rtrNodes.get(canonical(r.from.address)) : undefined;
    if (relayed && rtr === undefined) {
      return this.#reject(r, "unknown-rtr", `${r.from.address} is no [[ms-rtr-node]]`);
    }
    // Accepted: apply every record.
    const c = this.#deps.counters;
    const log = this.#deps.logger;
    const now = this.#deps.now();
    const key = registrationKey(m.xtrId, r.from);
    c.inc("oor_ms_registers_accepted_total");
    for (let i = 0; i < recs.length; i++) {
      const rec = recs[i]!;
      const prefix = prefixes[i]!;
      if (rec.ttl === 0) {
        if (this.#store.remove(prefix, key) !== undefined) {
          c.inc("oor_ms_registrations_withdrawn_total");
          log.info("registration-withdrawn", {
            prefix: formatPrefix(prefix),
            peer: formatPeer(r.from),
            xtrId: m.xtrId,
          });
        }
        continue;
      }
      const old = this.#store.get(prefix, key);
      const reg: Registration = {
        prefix,
        key,
        static: false,
        ...(m.xtrIdPresent ? { xtrId: m.xtrId!, siteId: m.siteId! } : {}),
        from: r.from,
        locators: rec.locators,
        ttl: rec.ttl,
        action: rec.action,
        mapVersion: rec.mapVersion,
        proxyReply: m.proxyReply,
        site: sites[i]!.prefix,
        firstSeen: old !== undefined && old.expiresAt > now ? old.firstSeen : now,
        lastSeen: now,
        expiresAt: now + (m.useTtlForTimeout ? rec.ttl * 60_000 : REGISTRATION_TIMEOUT_MS),
        ...(relayed && r.ecm !== undefined ? { natPrivate: r.ecm.inner.src } : {}),
      };
      this.#store.put(reg);
      if (old === undefined || old.expiresAt <= now) {
        log.info("registered", {
          prefix: formatPrefix(prefix),
          peer: formatPeer(r.from),
          xtrId: m.xtrId,
          rlocs: rec.locators.map((l) => addressToString(l.address)).join(","),
          proxy: m.proxyReply,
        });
      } else if (log.enabled("debug")) {
        log.debug("registration-refreshed", { prefix: formatPrefix(prefix), key });
      }
    }
    if (m.wantMapNotify) this.#sendMapNotify(r, m, first!, rtr?.key);
  }

  /**
   * Sends the Map-Notify of an accepted Map-Register to its source; to an
   * RTR that relayed it (`rtrKey`), with the R bit and the MS-RTR
   * authentication (`_nat.ts`), for the RTR to check and pass on.
   */
  #sendMapNotify(r: Received, m: MapRegister, site: Site, rtrKey?: HmacKey): void {
    const notify: MapNotify = m.xtrIdPresent
      ? {
        ack: false,
        xtrIdPresent: true,
        rtrAuthPresent: false,
        nonce: m.nonce,
        keyId: m.keyId,
        authData: new Uint8Array(0),
        records: m.records,
        xtrId: m.xtrId!,
        siteId: m.siteId!,
      }
      : {
        ack: false,
        xtrIdPresent: false,
        rtrAuthPresent: false,
        nonce: m.nonce,
        keyId: m.keyId,
        authData: new Uint8Array(0),
        records: m.records,
      };
    const bytes = rtrKey !== undefined
      ? emitMsRtrMapNotify(notify, site.key, rtrKey)
      : emitSignedMapNotify(notify, site.key);
    this.#cp.send(bytes, r.from);
    this.#deps.counters.inc("oor_ms_map_notifies_sent_total");
    if (rtrKey !== undefined) this.#deps.counters.inc("oor_ms_map_notifies_via_rtr_total");
    if (this.#notified.size >= NOTIFY_MEMORY) {
      const oldest = this.#notified.keys().next();
      if (!oldest.done) this.#notified.delete(oldest.value);
    }
    this.#notified.set(m.nonce, { site, at: this.#deps.now() });
  }

  #mapNotifyAck(r: Received, m: MapNotify): void {
    const c = this.#deps.counters;
    const sent = this.#notified.get(m.nonce);
    let site = sent?.site;
    if (site === undefined && m.records.length > 0) {
      const rec = m.records[0]!;
      const p = prefixOf(rec.eid, rec.maskLen);
      if (p !== undefined) site = this.#sites.lookup(p)?.value;
    }
    if (site === undefined || authStatus(r.bytes, site.key) !== "ok") {
      c.inc("oor_ms_map_notify_acks_total", { result: "auth" });
      this.#deps.logger.limited(
        `map-notify-ack ${r.from.address}`,
        LOG_INTERVAL_MS,
        "warn",
        "map-notify-ack-rejected",
        { peer: formatPeer(r.from), reason: site === undefined ? "no site" : "authentication" },
      );
      return;
    }
    const result = sent !== undefined ? "matched" : "unmatched";
    if (sent !== undefined) this.#notified.delete(m.nonce);
    c.inc("oor_ms_map_notify_acks_total", { result });
    this.#deps.logger.debug("map-notify-ack", {
      peer: formatPeer(r.from),
      nonce: m.nonce,
      result,
    });
  }

  // -------------------------------------------------------------------------
  // Info-Request (NAT traversal)

  /**
   * Answers an Info-Request for an EID inside a site, authenticated with
   * the site's key: an Info-Reply with the same nonce, signed with that
   * key, whose NAT-Traversal LCAF carries the source address and port the
   * request came from (the xTR's global RLOC and port), this map-server's
   * address and port, the private RLOC of the xTR once an RTR has relayed
   * its registration (AFI 0 before: the request cannot carry it), and
   * the RTRs of `ms-advertised-rtrs-set`, with that set's TTL.
   */
  #infoRequest(r: Received, m: InfoRequest): void {
    const c = this.#deps.counters;
    const drop = (reason: string, detail: string) => {
      c.inc("oor_ms_info_requests_total", { result: reason });
      this.#deps.logger.limited(
        `info-request-rejected ${r.from.address}`,
        LOG_INTERVAL_MS,
        "warn",
        "info-request-rejected",
        { reason, peer: formatPeer(r.from), detail },
      );
    };
    const p = prefixOf(m.eid, m.maskLen);
    const site = p !== undefined ? this.#sites.lookup(p)?.value : undefined;
    if (p === undefined || site === undefined) {
      return drop("no-site", `EID ${addressToString(m.eid)} is in no lisp-site`);
    }
    if (m.keyId !== site.key.keyId) return drop("key-id", `key id ${m.keyId}`);
    const status = authStatus(r.bytes, site.key);
    if (status !== "ok") return drop("auth", `${status} for site ${site.text}`);
    // The private RLOC of the xTR, once an RTR has relayed its registration
    // (the ECM's inner source); AFI 0 before that: the request has none.
    const regs = this.#store.lookup(p, this.#deps.now(), (x) => this.#expired(x));
    const priv = regs?.registrations.find((x) => x.natPrivate !== undefined)?.natPrivate;
    const reply: InfoReply = {
      reply: true,
      nonce: m.nonce,
      keyId: site.key.keyId,
      authData: new Uint8Array(site.key.digestLength),
      ttl: this.#advertisedTtl,
      maskLen: m.maskLen,
      eid: m.eid,
      nat: {
        kind: "nat",
        msPort: this.#cp.port,
        etrPort: r.from.port,
        globalEtr: ipAddress(r.from.address),
        ms: this.#self !== undefined ? ipAddress(this.#self) : { kind: "none" },
        privateEtr: priv !== undefined ? ipAddress(priv) : { kind: "none" },
        rtrs: this.#advertised,
      },
    };
    const bytes = emitInfo(reply);
    signAuthenticated(bytes, site.key);
    this.#cp.send(bytes, r.from);
    c.inc("oor_ms_info_requests_total", { result: "answered" });
    this.#deps.logger.limited(
      `info-reply ${r.from.address}:${r.from.port}`,
      LOG_INTERVAL_MS,
      "info",
      "info-reply-sent",
      {
        peer: formatPeer(r.from),
        eid: formatPrefix(p),
        rtrs: this.#advertised.map((a) => a.ip).join(",") || "none",
      },
    );
  }

  // -------------------------------------------------------------------------
  // Map-Request

  #dropRequest(r: Received, reason: string, detail?: string): void {
    this.#deps.counters.inc("oor_ms_map_requests_dropped_total", { reason });
    this.#deps.logger.limited(
      `map-request-dropped ${r.from.address}`,
      LOG_INTERVAL_MS,
      "debug",
      "map-request-dropped",
      { reason, peer: formatPeer(r.from), detail },
    );
  }

  #mapRequest(r: Received, m: MapRequest): void {
    if (m.probe) return this.#dropRequest(r, "probe");
    if (m.smr) return this.#dropRequest(r, "smr");
    if (m.records.length === 0) return this.#dropRequest(r, "no-record");
    for (const rec of m.records) this.#answer(r, m, rec);
  }

  #answer(r: Received, m: MapRequest, rec: MapRequestRecord): void {
    const p = prefixOf(rec.eid, rec.maskLen);
    if (p === undefined) {
      return this.#dropRequest(r, "unsupported-eid", addressToString(rec.eid));
    }
    const ddt = r.ecm?.ddtOriginated === true;
    const now = this.#deps.now();
    const found = this.#store.lookup(p, now, (x) => this.#expired(x));
    if (found !== undefined) {
      const site = this.#sites.lookup(found.prefix)?.value;
      if (ddt) {
        this.#sendReferral(r, m.nonce, REFERRAL_ACTION.MS_ACK, found.prefix, MS_ACK_TTL, site);
      }
      const regs = found.registrations;
      const proxy = site?.config.proxyReply === true ||
        regs.some((x) => x.proxyReply || x.static);
      if (proxy) return this.#proxyReply(r, m, found.prefix, regs);
      return this.#forward(r, m, rec, regs);
    }
    const site = this.#sites.lookup(p)?.value;
    if (site !== undefined) {
      // Configured, not registered (RFC 9301 §8.3: Natively-Forward, 1 minute).
      const hole = this.#store.hole(p);
      const neg = hole === undefined ? p : hole.len < site.prefix.len ? site.prefix : hole;
      if (ddt) {
        return this.#sendReferral(
          r,
          m.nonce,
          REFERRAL_ACTION.MS_NOT_REGISTERED,
          neg,
          MS_NOT_REGISTERED_TTL,
          site,
        );
      }
      return this.#negativeReply(
        r,
        m,
        neg,
        hole === undefined ? ACTION.SEND_MAP_REQUEST : ACTION.NATIVELY_FORWARD,
        NOT_REGISTERED_TTL,
        "negative-site",
      );
    }
    if (ddt) {
      return this.#sendReferral(
        r,
        m.nonce,
        REFERRAL_ACTION.NOT_AUTHORITATIVE,
        p,
        NOT_AUTHORITATIVE_TTL,
        undefined,
      );
    }
    // Not EID space (RFC 9301 §8.3: Natively-Forward, 15 minutes, the hole).
    const hole = this.#configured.hole(p);
    if (hole === undefined) {
      return this.#negativeReply(
        r,
        m,
        p,
        ACTION.SEND_MAP_REQUEST,
        NOT_REGISTERED_TTL,
        "negative-hole",
      );
    }
    this.#negativeReply(r, m, hole, ACTION.NATIVELY_FORWARD, NOT_EID_TTL, "negative-hole");
  }

  /** Where a Map-Reply to this request goes (see the module notes). */
  #replyTo(r: Received, m: MapRequest): Peer | undefined {
    const ecm = r.ecm;
    if (ecm === undefined) return r.from;
    for (const a of m.itrRlocs) {
      if ((a.kind === "ipv4" || a.kind === "ipv6") && this.#families.has(a.kind)) {
        return { address: a.ip, port: ecm.inner.srcPort };
      }
    }
    return undefined;
  }

  #sendReply(r: Received, m: MapRequest, record: EidRecord, kind: string): void {
    const to = this.#replyTo(r, m);
    if (to === undefined) return this.#dropRequest(r, "no-itr-rloc");
    const reply: MapReply = {
      probe: false,
      echoNonce: false,
      security: false,
      nonce: m.nonce,
      records: [record],
    };
    this.#cp.send({ type: "map-reply", msg: reply }, to);
    this.#deps.counters.inc("oor_ms_map_requests_answered_total", { kind });
  }

  #negativeReply(
    r: Received,
    m: MapRequest,
    prefix: Prefix,
    action: number,
    ttl: number,
    kind: "negative-site" | "negative-hole",
  ): void {
    this.#sendReply(r, m, {
      ttl,
      maskLen: prefix.len,
      action,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: prefixEid(prefix),
      locators: [],
    }, kind);
  }

  #proxyReply(
    r: Received,
    m: MapRequest,
    prefix: Prefix,
    regs: readonly Registration[],
  ): void {
    const locators: LocatorRecord[] = [];
    const seen = new Set<string>();
    let ttl = regs[0]!.ttl;
    for (const reg of regs) {
      if (reg.ttl < ttl) ttl = reg.ttl;
      for (const l of reg.locators) {
        const k = `${l.address.kind} ${addressToString(l.address)}`;
        if (seen.has(k) || locators.length === MAX_LOCATORS) continue;
        seen.add(k);
        locators.push(l.local || l.probed ? { ...l, local: false, probed: false } : l);
      }
    }
    this.#sendReply(r, m, {
      ttl,
      maskLen: prefix.len,
      action: locators.length > 0 ? ACTION.NO_ACTION : regs[0]!.action,
      authoritative: false,
      incomplete: false,
      sigCount: 0,
      mapVersion: regs[0]!.mapVersion,
      eid: prefixEid(prefix),
      locators,
    }, "proxy");
  }

  /** The RLOC of a registered ETR to forward to: best priority, most recent registration first. */
  #etrRloc(regs: readonly Registration[]): string | undefined {
    let best: string | undefined;
    let bestPriority = 255;
    for (const reg of regs) {
      for (const l of reg.locators) {
        if (l.priority >= bestPriority) continue;
        const ip = locatorIp(l.address);
        if (ip === undefined || !this.#families.has(ip.kind)) continue;
        best = ip.ip;
        bestPriority = l.priority;
      }
    }
    return best;
  }

  #forward(
    r: Received,
    m: MapRequest,
    rec: MapRequestRecord,
    regs: readonly Registration[],
  ): void {
    const etr = this.#etrRloc(regs);
    if (etr === undefined) {
      return this.#dropRequest(r, "no-etr-rloc", addressToString(rec.eid));
    }
    let header;
    if (r.ecm !== undefined) {
      const i = r.ecm.inner;
      header = { src: i.src, dst: i.dst, srcPort: i.srcPort, dstPort: i.dstPort };
    } else {
      const src = r.from.address;
      const v4 = isIPv4(src);
      const eid = eidIp(rec.eid);
      const dst = eid !== undefined && (eid.kind === "ipv4") === v4 ? eid.ip : src;
      header = { src, dst, srcPort: r.from.port, dstPort: LISP_CONTROL_PORT };
    }
    this.#cp.sendEcm(r.bytes, header, { address: etr, port: LISP_CONTROL_PORT });
    this.#deps.counters.inc("oor_ms_map_requests_answered_total", { kind: "forwarded" });
    if (this.#deps.logger.enabled("debug")) {
      this.#deps.logger.debug("map-request-forwarded", {
        eid: addressToString(rec.eid),
        etr,
        nonce: m.nonce,
      });
    }
  }

  #sendReferral(
    r: Received,
    nonce: bigint,
    action: number,
    prefix: Prefix,
    ttl: number,
    site: Site | undefined,
  ): void {
    const notAuth = action === REFERRAL_ACTION.NOT_AUTHORITATIVE;
    const self = this.#self;
    const referral: MapReferral = {
      nonce,
      records: [{
        record: {
          ttl,
          maskLen: prefix.len,
          action,
          authoritative: !notAuth,
          incomplete: notAuth ||
            (site !== undefined ? site.referralIncomplete : self === undefined),
          sigCount: 0,
          mapVersion: 0,
          eid: prefixEid(prefix),
          locators: notAuth
            ? []
            : site !== undefined
            ? site.referralLocators
            : self !== undefined
            ? [locator(ipAddress(self))]
            : [],
        },
        signatures: [],
      }],
    };
    this.#cp.send({ type: "map-referral", msg: referral }, r.from);
    const c = this.#deps.counters;
    c.inc("oor_ms_map_requests_answered_total", { kind: "referral" });
    c.inc("oor_ms_map_referrals_sent_total", {
      action: action === REFERRAL_ACTION.MS_ACK
        ? "ms-ack"
        : action === REFERRAL_ACTION.MS_NOT_REGISTERED
        ? "ms-not-registered"
        : "not-authoritative",
    });
  }

  // -------------------------------------------------------------------------
  // Expiry

  #expired(r: Registration): void {
    this.#deps.counters.inc("oor_ms_registrations_expired_total");
    this.#deps.logger.info("registration-expired", {
      prefix: formatPrefix(r.prefix),
      peer: r.from !== undefined ? formatPeer(r.from) : undefined,
      xtrId: r.xtrId,
    });
  }

  /** Timer: removes expired registrations and forgets old Map-Notify nonces. */
  #expiredRegistrations(): void {
    const now = this.#deps.now();
    for (const r of this.#store.sweep(now)) this.#expired(r);
    for (const [nonce, n] of this.#notified) {
      if (now - n.at < NOTIFY_MEMORY_MS) break;
      this.#notified.delete(nonce);
    }
  }

  // -------------------------------------------------------------------------
  // Views

  registrations(): RegistrationInfo[] {
    this.#expiredRegistrations();
    const out: RegistrationInfo[] = [];
    for (const r of this.#store.all()) {
      const info: { -readonly [K in keyof RegistrationInfo]: RegistrationInfo[K] } = {
        prefix: formatPrefix(r.prefix),
        iid: r.prefix.iid,
        source: r.static ? "static" : "map-register",
        rlocs: r.locators.map((l) => ({
          address: addressToString(l.address),
          priority: l.priority,
          weight: l.weight,
          reachable: l.reachable,
        })),
        ttl: r.ttl,
        proxyReply: r.proxyReply,
        firstSeen: r.firstSeen,
        lastSeen: r.lastSeen,
        expiresAt: r.static ? null : r.expiresAt,
      };
      if (r.site !== undefined) info.site = formatPrefix(r.site);
      if (r.from !== undefined) info.from = formatPeer(r.from);
      if (r.xtrId !== undefined) info.xtrId = hex(r.xtrId, 32);
      if (r.siteId !== undefined) info.siteId = hex(r.siteId, 16);
      out.push(info);
    }
    return out.sort((a, b) =>
      a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : a.lastSeen - b.lastSeen
    );
  }

  sites(): SiteInfo[] {
    this.#expiredRegistrations();
    const counts = new Map<Site, number>();
    for (const r of this.#store.all()) {
      if (r.site === undefined) continue;
      const s = this.#sites.get(r.site);
      if (s !== undefined) counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    return this.#siteList.map((s) => ({
      prefix: s.text,
      iid: s.prefix.iid,
      keyType: s.key.keyId,
      acceptMoreSpecifics: s.config.acceptMoreSpecifics,
      proxyReply: s.config.proxyReply,
      ddtMsPeers: s.config.ddtMsPeers,
      registrations: counts.get(s) ?? 0,
    }));
  }

  statusSource(): StatusSource {
    return {
      status: () => ({
        details: {
          "control address": `${this.#self ?? "*"} port ${this.#cp.port}`,
          sites: this.#siteList.length,
          registrations: this.#store.dynamicCount,
          "static registrations": this.#store.staticCount,
        },
      }),
      sites: () => ({ sites: this.sites(), registrations: this.registrations() }),
      counters: () => this.#deps.counters.snapshot(),
    };
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      clearInterval(this.#sweep);
      this.#cp.close();
    }
    return Promise.resolve();
  }
}

/**
 * Starts a Map-Server from `config` (`[[lisp-site]]`,
 * `[[ms-static-registered-site]]`, `control-address`, `control-port`,
 * `control-rate-limit`): binds the control socket and serves until
 * `close()`.
 */
export const startMs: RoleStart<MsHandle> = async (config, deps) => {
  const cp = await ControlPlane.open({
    logger: deps.logger,
    counters: deps.counters,
    ...(config.controlAddress !== undefined ? { address: config.controlAddress } : {}),
    port: config.controlPort,
    rateLimit: config.controlRateLimit,
    now: deps.now,
  });
  let ms: MapServer;
  try {
    ms = new MapServer(cp, config, deps);
  } catch (e) {
    cp.close();
    throw e;
  }
  deps.logger.info("ms-listening", {
    port: cp.port,
    address: config.controlAddress ?? "*",
    sites: config.lispSites.length,
    static: config.msStaticRegisteredSites.length,
  });
  return ms;
};
