/**
 * Map-Requests on the map-server (RFC 9301 §8.3), plain or in an ECM, and
 * Map-Referrals to DDT map-resolvers (RFC 8111 §6.4, §7).
 *
 * - Registered: a proxy Map-Reply when an ETR set the P bit, the site has
 *   `proxy-reply`, or the registration is static; the record carries the
 *   merged locators with the L bit cleared and the A bit clear (RFC 9301
 *   §5.4: a map-server replying as a proxy "MUST NOT set the A-bit"; "the
 *   L-bit is set to 0 for all Locators"), and the registered record TTL.
 *   Otherwise the Map-Request is re-encapsulated in an ECM (same inner
 *   IP/UDP header, its TTL less one; a plain Map-Request gets one from its
 *   source with TTL 64) and forwarded to port 4342 of the best-priority
 *   RLOC of a registered ETR, which answers the ITR directly. Never to our
 *   own address (the next RLOC then, if any), never with no TTL left, and
 *   never twice for one nonce and EID within 500 ms (core/forward_guard.ts):
 *   such a request is dropped, counted by reason (`own-address`,
 *   `ttl-expired`, `duplicate`) and logged once a minute per reason
 *   (`map-request-not-forwarded`).
 * - Inside a site but not registered: negative Map-Reply, Natively-Forward,
 *   TTL 1 minute, for the site prefix (or, when more specifics of the site
 *   are registered, the least specific prefix around the EID that holds
 *   none of them).
 * - Outside every site: negative Map-Reply, Natively-Forward, TTL 15
 *   minutes, for the least specific prefix around the EID that overlaps no
 *   configured site (a "hole").
 * - Negative Map-Replies have the A bit set: the map-server is the
 *   authority for its configured EID space (as OOR does).
 * - A requested prefix shorter than some registered or configured prefix
 *   inside it gets a negative Map-Reply for exactly that prefix with action
 *   Send-Map-Request and TTL 1 minute, so the ITR asks again for the more
 *   specific destinations.
 * - Replies go to the first ITR-RLOC the map-server can send to, at the
 *   inner UDP source port of the ECM; a plain Map-Request is answered at
 *   its own source address and port. RLOC-probes and SMRs are dropped and
 *   counted (a map-server is neither).
 *
 * DDT: a Map-Request in an ECM with the D bit comes from a DDT map-resolver,
 * and the Map-Referral goes to the ECM's source: MS-ACK for a registered
 * prefix (TTL 1440, A bit; the request is then answered or forwarded as
 * above); MS-NOT-REGISTERED for a site with no registration (TTL 1, the
 * prefix of the negative reply above, and nothing else); NOT-AUTHORITATIVE
 * for an EID outside every site (TTL 0, I bit, no A bit, nothing else).
 * MS-ACK and MS-NOT-REGISTERED list this map-server (`control-address`)
 * and the site's `ddt-ms-peers`; their I bit says the set is incomplete
 * when `ddt-ms-peers-complete` is false or there is no `control-address`.
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
import { LISP_CONTROL_PORT } from "../../wire/data_header.ts";
import { ACTION, type EidRecord, REFERRAL_ACTION } from "../../wire/eid_record.ts";
import { isIPv4 } from "../../wire/ip_text.ts";
import { type LocatorRecord, locatorRecord } from "../../wire/locator.ts";
import type { MapReferral } from "../../wire/map_referral.ts";
import type { MapReply } from "../../wire/map_reply.ts";
import type { MapRequest, MapRequestRecord } from "../../wire/map_request.ts";
import { formatPeer, type Peer, type Received } from "../../core/control.ts";
import type { ForwardRefusal } from "../../core/forward_guard.ts";
import { formatPrefix, type Prefix, prefixEid, prefixOf } from "../../core/prefix.ts";
import type { Registration } from "./registrations.ts";
import type { MsContext } from "./context.ts";
import { LOG_INTERVAL_MS } from "./registrar.ts";
import type { Site } from "./sites.ts";
import { METRICS } from "../../core/metrics.ts";

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

/** Most locators a record can carry (Locator Count is 8 bits, RFC 9301 §5.4). */
const MAX_LOCATORS = 255;

/** The IP address to send to for a locator: itself, or an ELP's last hop. */
function locatorIp(a: Address): IPv4Address | IPv6Address | undefined {
  if (a.kind === "ipv4" || a.kind === "ipv6") return a;
  if (a.kind === "elp") {
    const last = a.hops[a.hops.length - 1];
    return last !== undefined ? locatorIp(last.address) : undefined;
  }
  return undefined;
}

/** The IP address inside an EID (unwrapping an Instance-ID LCAF). */
function eidIp(a: Address): IPv4Address | IPv6Address | undefined {
  if (a.kind === "iid") return eidIp(a.address);
  return a.kind === "ipv4" || a.kind === "ipv6" ? a : undefined;
}

/**
 * The record of a proxy Map-Reply for `prefix` from its live registrations
 * `regs` (in answer order, registrations.ts `liveOrder`): their locators
 * merged (each address once, at most 255), with the L and p bits clear;
 * the smallest TTL; the first registration's action (when no locator is
 * left) and map-version; the A bit clear (RFC 9301 §5.4).
 */
export function proxyRecord(prefix: Prefix, regs: readonly Registration[]): EidRecord {
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
  return {
    ttl,
    maskLen: prefix.len,
    action: locators.length > 0 ? ACTION.NO_ACTION : regs[0]!.action,
    authoritative: false,
    incomplete: false,
    sigCount: 0,
    mapVersion: regs[0]!.mapVersion,
    eid: prefixEid(prefix),
    locators,
  };
}

/** Answers Map-Requests (see the module notes). */
export class Answerer {
  readonly #c: MsContext;

  /** Registers the `map-request` handler on the control plane. */
  constructor(ctx: MsContext) {
    this.#c = ctx;
    this.#c.cp.on("map-request", (m, r) => this.#mapRequest(r, m));
  }

  #dropRequest(r: Received, reason: string, detail?: string): void {
    this.#c.deps.counters.inc(METRICS.msMapRequestsDropped, { reason });
    this.#c.deps.logger.limited(
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
    this.#c.subscribe?.(r, m);
  }

  #answer(r: Received, m: MapRequest, rec: MapRequestRecord): void {
    const p = prefixOf(rec.eid, rec.maskLen);
    if (p === undefined) {
      return this.#dropRequest(r, "unsupported-eid", addressToString(rec.eid));
    }
    const ddt = r.ecm?.ddtOriginated === true;
    const now = this.#c.deps.now();
    const found = this.#c.store.lookup(p, now, this.#c.expired);
    if (found !== undefined) {
      const site = this.#c.sites.table.lookup(found.prefix)?.value;
      if (ddt) {
        this.#sendReferral(r, m.nonce, REFERRAL_ACTION.MS_ACK, found.prefix, MS_ACK_TTL, site);
      }
      const regs = found.registrations;
      const proxy = site?.config.proxyReply === true ||
        regs.some((x) => x.proxyReply || x.static);
      if (proxy) return this.#proxyReply(r, m, found.prefix, regs);
      return this.#forward(r, m, rec, p, regs);
    }
    const site = this.#c.sites.table.lookup(p)?.value;
    if (site !== undefined) {
      // Configured, not registered (RFC 9301 §8.3: Natively-Forward, 1 minute).
      const hole = this.#c.store.hole(p);
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
    const hole = this.#c.sites.configured.hole(p);
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
      if ((a.kind === "ipv4" || a.kind === "ipv6") && this.#c.sites.families.has(a.kind)) {
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
    this.#c.cp.send({ type: "map-reply", msg: reply }, to);
    this.#c.deps.counters.inc(METRICS.msMapRequestsAnswered, { kind });
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
    this.#sendReply(r, m, proxyRecord(prefix, regs), "proxy");
  }

  /**
   * The RLOC of a registered ETR to forward to: best priority, most recent
   * registration first, never our own address ("own-address" when that is
   * all there is).
   */
  #etrRloc(regs: readonly Registration[]): string | "own-address" | undefined {
    let best: string | undefined;
    let bestPriority = 255;
    let self = false;
    for (const reg of regs) {
      for (const l of reg.locators) {
        if (l.priority >= bestPriority) continue;
        const ip = locatorIp(l.address);
        if (ip === undefined || !this.#c.sites.families.has(ip.kind)) continue;
        if (this.#c.guard.own.isSelf({ address: ip.ip, port: LISP_CONTROL_PORT })) {
          self = true;
          continue;
        }
        best = ip.ip;
        bestPriority = l.priority;
      }
    }
    return best ?? (self ? "own-address" : undefined);
  }

  /** A forward not sent (core/forward_guard.ts): counted, and logged once a minute per reason. */
  #notForwarded(r: Received, reason: ForwardRefusal, eid: string, to?: string): void {
    this.#c.deps.counters.inc(METRICS.msMapRequestsDropped, { reason });
    this.#c.deps.logger.limited(
      `map-request-not-forwarded ${reason}`,
      LOG_INTERVAL_MS,
      "warn",
      "map-request-not-forwarded",
      { reason, eid, to, peer: formatPeer(r.from), ttl: r.ecm?.inner.ttl },
    );
  }

  #forward(
    r: Received,
    m: MapRequest,
    rec: MapRequestRecord,
    prefix: Prefix,
    regs: readonly Registration[],
  ): void {
    const etr = this.#etrRloc(regs);
    if (etr === undefined) {
      return this.#dropRequest(r, "no-etr-rloc", addressToString(rec.eid));
    }
    if (etr === "own-address") return this.#notForwarded(r, etr, addressToString(rec.eid));
    const to = { address: etr, port: LISP_CONTROL_PORT };
    const ttl = this.#c.guard.check(to, r.ecm?.inner.ttl, m.nonce, formatPrefix(prefix));
    if (typeof ttl === "string") return this.#notForwarded(r, ttl, addressToString(rec.eid), etr);
    let header;
    if (r.ecm !== undefined) {
      const i = r.ecm.inner;
      header = { src: i.src, dst: i.dst, srcPort: i.srcPort, dstPort: i.dstPort, ttl };
    } else {
      const src = r.from.address;
      const v4 = isIPv4(src);
      const eid = eidIp(rec.eid);
      const dst = eid !== undefined && (eid.kind === "ipv4") === v4 ? eid.ip : src;
      header = { src, dst, srcPort: r.from.port, dstPort: LISP_CONTROL_PORT, ttl };
    }
    this.#c.cp.sendEcm(r.bytes, header, to);
    this.#c.deps.counters.inc(METRICS.msMapRequestsAnswered, { kind: "forwarded" });
    if (this.#c.deps.logger.enabled("debug")) {
      this.#c.deps.logger.debug("map-request-forwarded", {
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
    const self = this.#c.sites.self;
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
            ? [locatorRecord(ipAddress(self))]
            : [],
        },
        signatures: [],
      }],
    };
    this.#c.cp.send({ type: "map-referral", msg: referral }, r.from);
    const c = this.#c.deps.counters;
    c.inc(METRICS.msMapRequestsAnswered, { kind: "referral" });
    c.inc(METRICS.msMapReferralsSent, {
      action: action === REFERRAL_ACTION.MS_ACK
        ? "ms-ack"
        : action === REFERRAL_ACTION.MS_NOT_REGISTERED
        ? "ms-not-registered"
        : "not-authoritative",
    });
  }
}
