/**
 * Map-Register and Map-Notify on the map-server (RFC 9301 §5.6, §5.7,
 * §8.2).
 *
 * Flow: Map-Register → every record's EID must fall inside a
 * `[[lisp-site]]` (the site prefix itself, or a more specific one when
 * the site has `accept-more-specifics`) → the message must be
 * authenticated with the key of every site its records fall in, with the
 * site's `key-type` as Key ID → a Map-Register an RTR relays (ECM with the
 * N bit) must come from an `[[ms-rtr-node]]` → the limits must hold (below)
 * → every record is registered (or withdrawn, TTL 0) in the store → with
 * the M bit, a Map-Notify to the source address and port: same nonce and
 * Key ID, signed with the site key, the records as registered, the xTR-ID
 * and site-ID when the I bit was set; to a relaying RTR, signed a second
 * time for it (MS-RTR).
 *
 * One bad record rejects the whole Map-Register: nothing is registered
 * and no Map-Notify is sent (the ETR signs its records together, and a
 * partial acceptance would leave it believing in a state it did not ask
 * for; OOR skips bad records, which hides configuration mistakes).
 * Rejections are counted by reason and logged at most once per source per
 * minute; the last {@link RECENT_REJECTIONS} (source address, reason) pairs
 * are kept for the status page ({@link Registrar.rejections}).
 *
 * Limits, checked for every record before any is applied:
 * - a site holds at most its `max-registrations` registrations (one per
 *   prefix and registering xTR; a refresh of one it holds always fits):
 *   past it, reason `site-limit`. Expired registrations count until the
 *   sweep drops them.
 * - the locators of one prefix, merged over every xTR that registered it
 *   (as a proxy Map-Reply carries them), fit one record: at most 255
 *   (8-bit Locator Count, RFC 9301 §5.4); past it, reason `locators`.
 *
 * A registration expires 3 minutes after its last refresh, or after its
 * record TTL with the T bit.
 *
 * Refreshes that change nothing (the bulk of an ms's Map-Registers: every
 * ETR sends its own every minute) take a cheap path
 * ({@link Registrar.refreshVerified}): a Map-Register an answering Worker
 * verified, whose bytes but the nonce and authentication data equal those
 * of the one that made its registrations, from the same address and port,
 * with the sites unchanged since, and whose registrations are still held,
 * each alone under its prefix and live, can only move their times. The
 * limits hold as they did; nothing is parsed, republished or logged above
 * debug; the counts and the Map-Notify are those of any accepted
 * Map-Register. Anything else is judged and applied as above.
 *
 * @module
 */

import { addressToString } from "../../wire/address.ts";
import { authStatus, type HmacKey } from "../../wire/auth.ts";
import { ecmRtrRelayed } from "../../wire/ecm.ts";
import { canonicalIp } from "../../wire/ip_text.ts";
import { emitSignedMapNotify, type MapNotify } from "../../wire/map_notify.ts";
import type { LocatorRecord } from "../../wire/locator.ts";
import type { MapRegister } from "../../wire/map_register.ts";
import { readU32 } from "../../wire/tcp.ts";
import { nonceKey } from "../../wire/control_view.ts";
import { type ControlPlane, formatPeer, type Peer, type Received } from "../../core/control.ts";
import { emitMsRtrMapNotify } from "../../core/nat_auth.ts";
import { formatPrefix, type Prefix, prefixEquals, prefixOf } from "../../core/prefix.ts";
import type { RoleDeps } from "../../core/role.ts";
import type { RejectionView } from "../../core/status.ts";
import {
  type Registration,
  type RegistrationHolder,
  registrationKey,
  type RegistrationStore,
} from "./registrations.ts";
import type { Site, Sites } from "./sites.ts";
import { METRICS } from "../../core/metrics.ts";

/** Registration lifetime without the T bit: 3 minutes (RFC 9301 §8.2). */
export const REGISTRATION_TIMEOUT_MS = 3 * 60_000;
/** Rejections and drops are logged at most once per source per minute. */
export const LOG_INTERVAL_MS = 60_000;
/** Map-Notify nonces remembered for matching Map-Notify-Acks. */
const NOTIFY_MEMORY = 4096;
/** How long a Map-Notify nonce is remembered. */
const NOTIFY_MEMORY_MS = 60_000;

/** (Source address, reason) pairs of rejected Map-Registers kept for the status page. */
export const RECENT_REJECTIONS = 32;

/**
 * A Map-Notify signed by an answering Worker: its bytes, or what to call
 * for the Worker, which holds them, to send them.
 */
export type SignedNotify = Uint8Array | (() => void);

/** A Map-Notify sent: for the site whose key checks its Map-Notify-Ack, and when. */
interface Notified {
  readonly site: Site;
  readonly at: number;
  /** The nonce's high and low 32 bits. */
  readonly hi: number;
  readonly lo: number;
}

/** Why a Map-Register was rejected (the `reason` label of the counter). */
export type RejectReason =
  | "auth"
  | "key-id"
  | "no-site"
  | "more-specific"
  | "unknown-rtr"
  | "site-limit"
  | "locators";

/** Most locators one record holds: its Locator Count is 8 bits (RFC 9301 §5.4). */
const MAX_LOCATORS = 255;

/** The identity of a locator when the locators of several registrations are merged. */
function locatorKey(l: LocatorRecord): string {
  return `${l.address.kind} ${addressToString(l.address)}`;
}

/**
 * What a verified Map-Register registered, kept for its refreshes: the
 * message (its nonce and authentication data aside, the same bytes give
 * the same registrations), its source, and per record the registration it
 * made and that registration's lifetime.
 */
interface Applied {
  /** {@link registeredPart} of the message. */
  readonly registered: readonly number[];
  readonly address: string;
  readonly port: number;
  readonly site: Site;
  readonly sitesVersion: number;
  readonly wantMapNotify: boolean;
  readonly regs: readonly Registration[];
  readonly holders: readonly RegistrationHolder[];
  readonly lifetimes: readonly number[];
}

/** Byte offsets in a Map-Register (RFC 9301 §5.6): the nonce, the auth data length, the auth data. */
const REG_NONCE = 4;
const REG_AUTH_LENGTH = 14;
const REG_AUTH_DATA = 16;

/** Where the part of a Map-Register that says what it registers starts: past its auth data (or -1). */
function registeredPartAt(b: Uint8Array): number {
  if (b.length < REG_AUTH_DATA) return -1;
  const at = REG_AUTH_DATA + ((b[REG_AUTH_LENGTH]! << 8) | b[REG_AUTH_LENGTH + 1]!);
  return at <= b.length ? at : -1;
}

/** A hash of what a Map-Register registers: flags, record count, Key ID, records, xTR-ID. */
function registeredHash(b: Uint8Array, body: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < REG_NONCE; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  for (let i = 12; i < REG_AUTH_DATA; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  for (let i = body; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

/**
 * The bytes of a Map-Register that say what it registers (flags, record
 * count, Key ID, auth data length, records, xTR-ID), in a plain array (no
 * buffer of its own to allocate and track).
 */
function registeredPart(b: Uint8Array, body: number): number[] {
  const head = REG_NONCE + REG_AUTH_DATA - 12;
  const out: number[] = new Array(head + b.length - body).fill(0);
  for (let i = 0; i < REG_NONCE; i++) out[i] = b[i]!;
  for (let i = 12; i < REG_AUTH_DATA; i++) out[i - 12 + REG_NONCE] = b[i]!;
  for (let i = body, j = head; i < b.length; i++, j++) out[j] = b[i]!;
  return out;
}

/** Whether `b` registers what `part` ({@link registeredPart}) says (all but the nonce and the auth data equal). */
function sameRegistered(part: readonly number[], b: Uint8Array, body: number): boolean {
  const head = REG_NONCE + REG_AUTH_DATA - 12;
  if (part.length !== head + b.length - body) return false;
  for (let i = 0; i < REG_NONCE; i++) if (part[i] !== b[i]) return false;
  for (let i = 12; i < REG_AUTH_DATA; i++) if (part[i - 12 + REG_NONCE] !== b[i]) return false;
  for (let i = body, j = head; i < b.length; i++, j++) if (part[j] !== b[i]) return false;
  return true;
}

/** Takes Map-Registers and Map-Notify-Acks (see the module notes). */
export class Registrar {
  readonly #deps: RoleDeps;
  readonly #cp: ControlPlane;
  readonly #sites: Sites;
  readonly #store: RegistrationStore;
  readonly #notified = new Map<number, Notified>();
  /**
   * The same, oldest first, in a ring: the oldest goes without walking the
   * map from its start (which steps over every entry deleted since the map
   * was last compacted: thousands, when one goes per Map-Notify).
   */
  readonly #sentOrder: (Notified | undefined)[] = new Array(
    NOTIFY_MEMORY,
  );
  #sentHead = 0;
  #sentCount = 0;
  /**
   * Sees each Map-Notify-Ack first: true when it acknowledged a publication
   * (subscriptions.ts), which is then not the registrar's.
   */
  publicationAck: ((r: Received, m: MapNotify) => boolean) | undefined;
  /** Verified Map-Registers applied, by {@link registeredHash}: their refreshes are cheap. */
  readonly #applied = new Map<number, Applied>();
  /** Recent rejections by `address reason`, oldest first. */
  readonly #rejections = new Map<
    string,
    { -readonly [K in keyof RejectionView]: RejectionView[K] }
  >();

  /** Registers the `map-register` and `map-notify-ack` handlers on `cp`. */
  constructor(deps: RoleDeps, cp: ControlPlane, sites: Sites, store: RegistrationStore) {
    this.#deps = deps;
    this.#cp = cp;
    this.#sites = sites;
    this.#store = store;
    cp.on("map-register", (m, r) => this.#mapRegister(r, m));
    cp.on("map-notify-ack", (m, r) => this.#mapNotifyAck(r, m));
  }

  #reject(r: Received, reason: RejectReason, detail: string): void {
    this.#deps.counters.inc(METRICS.msRegisterRejected, { reason });
    this.#noteRejection(canonicalIp(r.from.address) ?? r.from.address, reason, detail);
    this.#deps.logger.limited(
      `map-register-rejected ${r.from.address}`,
      LOG_INTERVAL_MS,
      "warn",
      "map-register-rejected",
      { reason, peer: formatPeer(r.from), detail },
    );
  }

  /**
   * A Map-Register an answering Worker verified (roles/map_server/
   * fast_path.ts: its records in one site that admits them, its HMAC
   * checked with that site's key), with the Map-Notify the Worker signed:
   * the rest is checked (the limits) and it is applied here, as any other;
   * the Map-Notify goes out only then: `notify` is its bytes to send, or
   * what to call for the Worker, which holds them, to send them.
   */
  registerVerified(r: Received, m: MapRegister, notify: SignedNotify | undefined): void {
    this.#mapRegister(r, m, { notify });
  }

  /**
   * A verified Map-Register (as {@link registerVerified}) that registers
   * exactly what an earlier one from the same source and port registered,
   * and whose registrations are still held as they were, each alone under
   * its prefix and live: a refresh that changes nothing but the times. It
   * is applied here without parsing: the registrations' times move
   * (`RegistrationStore.refresh`, which moves the answer's expiry too), the
   * counts and the Map-Notify are as for any other. False for anything else
   * (nothing done): the caller parses it and calls {@link registerVerified}.
   */
  refreshVerified(bytes: Uint8Array, from: Peer, notify: SignedNotify | undefined): boolean {
    const body = registeredPartAt(bytes);
    if (body < 0) return false;
    const a = this.#applied.get(registeredHash(bytes, body));
    if (
      a === undefined || a.port !== from.port || a.address !== from.address ||
      a.sitesVersion !== this.#sites.version || (a.wantMapNotify && notify === undefined) ||
      !sameRegistered(a.registered, bytes, body)
    ) {
      return false;
    }
    const now = this.#deps.now();
    const regs = a.regs;
    for (let i = 0; i < regs.length; i++) {
      // A refresh left undone here is done again, as a change, by the caller.
      if (!this.#store.refresh(regs[i]!, a.holders[i]!, now, now + a.lifetimes[i]!)) return false;
    }
    const c = this.#deps.counters;
    c.inc(METRICS.msRegistersAccepted);
    const log = this.#deps.logger;
    if (log.enabled("debug")) {
      for (const r of regs) {
        log.debug("registration-refreshed", { prefix: formatPrefix(r.prefix), key: r.key });
      }
    }
    if (a.wantMapNotify) {
      if (typeof notify === "function") notify();
      else this.#cp.send(notify!, from);
      c.inc(METRICS.msMapNotifiesSent);
      this.#noted(readU32(bytes, REG_NONCE), readU32(bytes, REG_NONCE + 4), a.site);
    }
    return true;
  }

  /** Keeps what a verified Map-Register made (see {@link refreshVerified}). */
  #keepApplied(
    r: Received,
    m: MapRegister,
    site: Site,
    regs: Registration[],
    lifetimes: number[],
  ): void {
    const bytes = r.bytes;
    const body = registeredPartAt(bytes);
    if (body < 0) return;
    const holders: RegistrationHolder[] = [];
    for (const x of regs) {
      const h = this.#store.holder(x);
      if (h === undefined) return;
      holders.push(h);
    }
    const applied = this.#applied;
    // Bounded: past twice what the store holds, what no longer matches goes.
    if (applied.size >= 2 * this.#store.dynamicCount + 1024) {
      for (const [h, a] of applied) {
        if (a.holders.some((x, i) => x.get(a.regs[i]!.key) !== a.regs[i])) applied.delete(h);
      }
      if (applied.size >= 2 * this.#store.dynamicCount + 1024) applied.clear();
    }
    applied.set(registeredHash(bytes, body), {
      registered: registeredPart(bytes, body),
      address: r.from.address,
      port: r.from.port,
      site,
      sitesVersion: this.#sites.version,
      wantMapNotify: m.wantMapNotify,
      regs,
      holders,
      lifetimes,
    });
  }

  /** All records registered (or withdrawn) or, if any record or the authentication is wrong, none. */
  #mapRegister(r: Received, m: MapRegister, verified?: { notify: SignedNotify | undefined }): void {
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
      const site = this.#sites.table.lookup(p)?.value;
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
      if (verified !== undefined) continue;
      const status = authStatus(r.bytes, site.key);
      if (status === "bad-key-id") return this.#reject(r, "key-id", `key id ${m.keyId}`);
      if (status !== "ok") return this.#reject(r, "auth", `${status} for site ${site.text}`);
    }
    // Relayed by an RTR for an xTR behind a NAT (ECM with the N bit): only a known RTR may.
    const relayed = r.ecm !== undefined && ecmRtrRelayed(r.ecm);
    const rtr = relayed
      ? this.#sites.rtrNodes.get(canonicalIp(r.from.address) ?? r.from.address)
      : undefined;
    if (relayed && rtr === undefined) {
      return this.#reject(r, "unknown-rtr", `${r.from.address} is no [[ms-rtr-node]]`);
    }
    const now = this.#deps.now();
    // Without an xTR-ID, registrations from several addresses are kept apart
    // only when the site merges (or the Map-Register asks to): otherwise the
    // newest replaces the others, so an ETR that moved leaves no stale RLOC.
    const bySource = m.mergeRequest || sites.every((s) => s.config.merge);
    const key = registrationKey(m.xtrId, r.from, bySource);
    const over = this.#overLimit(recs, prefixes, sites, key, now);
    if (over !== undefined) return this.#reject(r, over.reason, over.detail);
    // Accepted: apply every record.
    const c = this.#deps.counters;
    const log = this.#deps.logger;
    c.inc(METRICS.msRegistersAccepted);
    // A verified Map-Register that only registers: its refreshes may take the cheap path.
    const keep = verified !== undefined && !relayed && recs.every((x) => x.ttl > 0);
    const made: Registration[] = [];
    const lifetimes: number[] = [];
    for (let i = 0; i < recs.length; i++) {
      const rec = recs[i]!;
      const prefix = prefixes[i]!;
      if (rec.ttl === 0) {
        if (this.#store.remove(prefix, key) !== undefined) {
          c.inc(METRICS.msRegistrationsWithdrawn);
          log.info("registration-withdrawn", {
            prefix: formatPrefix(prefix),
            peer: formatPeer(r.from),
            xtrId: m.xtrId,
          });
        }
        continue;
      }
      const old = this.#store.get(prefix, key);
      const lifetime = m.useTtlForTimeout ? rec.ttl * 60_000 : REGISTRATION_TIMEOUT_MS;
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
        expiresAt: now + lifetime,
        ...(relayed && r.ecm !== undefined ? { natPrivate: r.ecm.inner.src } : {}),
      };
      this.#store.put(reg);
      if (keep) {
        made.push(reg);
        lifetimes.push(lifetime);
      }
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
    if (keep) this.#keepApplied(r, m, first!, made, lifetimes);
    if (m.wantMapNotify) this.#sendMapNotify(r, m, first!, rtr?.key, verified?.notify);
  }

  /** The first limit (see the module notes) the records of a Map-Register from `key` would break. */
  #overLimit(
    recs: MapRegister["records"],
    prefixes: readonly Prefix[],
    sites: readonly Site[],
    key: string,
    now: number,
  ): { reason: RejectReason; detail: string } | undefined {
    let adding: Map<Site, Set<string>> | undefined;
    for (let i = 0; i < recs.length; i++) {
      const rec = recs[i]!;
      if (rec.ttl === 0) continue; // a withdrawal only ever frees room
      const prefix = prefixes[i]!;
      const site = sites[i]!;
      if (this.#store.get(prefix, key) === undefined) {
        adding ??= new Map();
        let set = adding.get(site);
        if (set === undefined) adding.set(site, set = new Set());
        set.add(formatPrefix(prefix));
      }
      // The merge below is only needed when other xTRs hold the prefix too.
      let merged: Set<string> | undefined;
      for (const other of this.#store.at(prefix)) {
        if (other.key === key || other.static || other.expiresAt <= now) continue;
        if (merged === undefined) {
          merged = new Set<string>();
          for (const l of rec.locators) merged.add(locatorKey(l));
        }
        for (const l of other.locators) merged.add(locatorKey(l));
        if (merged.size > MAX_LOCATORS) break;
      }
      if ((merged?.size ?? rec.locators.length) > MAX_LOCATORS) {
        return {
          reason: "locators",
          detail: `${formatPrefix(prefix)}: more than ${MAX_LOCATORS} locators merged with ` +
            "the other xTRs' registrations of it, which one record cannot carry",
        };
      }
    }
    for (const [site, added] of adding ?? []) {
      const held = this.#store.siteCount(site.prefix);
      const max = site.config.maxRegistrations;
      if (held + added.size > max) {
        return {
          reason: "site-limit",
          detail: `site ${site.text} holds ${held} registrations, ${added.size} more would pass ` +
            `max-registrations ${max}`,
        };
      }
    }
    return undefined;
  }

  /**
   * Sends the Map-Notify of an accepted Map-Register to its source; to an
   * RTR that relayed it (`rtrKey`), with the R bit and the MS-RTR
   * authentication (core/nat_auth.ts), for the RTR to check and pass on.
   */
  #sendMapNotify(
    r: Received,
    m: MapRegister,
    site: Site,
    rtrKey?: HmacKey,
    signed?: SignedNotify,
  ): void {
    if (typeof signed === "function") signed();
    else this.#cp.send(this.#notifyBytes(m, site, rtrKey, signed), r.from);
    this.#deps.counters.inc(METRICS.msMapNotifiesSent);
    if (rtrKey !== undefined) this.#deps.counters.inc(METRICS.msMapNotifiesViaRtr);
    this.#notedNotify(m.nonce, site);
  }

  /** Remembers the nonce of a Map-Notify sent, for its Map-Notify-Ack. */
  #notedNotify(nonce: bigint, site: Site): void {
    const hi = Number(nonce >> 32n);
    const lo = Number(nonce & 0xffff_ffffn);
    this.#noted(hi, lo, site);
  }

  /** {@link #notedNotify} of the nonce whose halves are `hi` and `lo`. */
  #noted(hi: number, lo: number, site: Site): void {
    if (this.#sentCount === NOTIFY_MEMORY) this.#forgetOldest();
    const n: Notified = { site, at: this.#deps.now(), hi, lo };
    this.#sentOrder[(this.#sentHead + this.#sentCount++) % NOTIFY_MEMORY] = n;
    this.#notified.set(nonceKey(hi, lo), n);
  }

  /** The Map-Notify of `m`, signed (with `signed` already, or here). */
  #notifyBytes(m: MapRegister, site: Site, rtrKey?: HmacKey, signed?: Uint8Array): Uint8Array {
    if (signed !== undefined && rtrKey === undefined) return signed;
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
    return rtrKey !== undefined
      ? emitMsRtrMapNotify(notify, site.key, rtrKey)
      : emitSignedMapNotify(notify, site.key);
  }

  #mapNotifyAck(r: Received, m: MapNotify): void {
    if (this.publicationAck?.(r, m) === true) return;
    const c = this.#deps.counters;
    const hi = Number(m.nonce >> 32n);
    const lo = Number(m.nonce & 0xffff_ffffn);
    const found = this.#notified.get(nonceKey(hi, lo));
    const sent = found !== undefined && found.hi === hi && found.lo === lo ? found : undefined;
    let site = sent?.site;
    if (site === undefined && m.records.length > 0) {
      const rec = m.records[0]!;
      const p = prefixOf(rec.eid, rec.maskLen);
      if (p !== undefined) site = this.#sites.table.lookup(p)?.value;
    }
    if (site === undefined || authStatus(r.bytes, site.key) !== "ok") {
      c.inc(METRICS.msMapNotifyAcks, { result: "auth" });
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
    if (sent !== undefined) this.#notified.delete(nonceKey(hi, lo));
    c.inc(METRICS.msMapNotifyAcks, { result });
    this.#deps.logger.debug("map-notify-ack", {
      peer: formatPeer(r.from),
      nonce: m.nonce,
      result,
    });
  }

  /** Keeps a rejection for {@link rejections}: the pair moves to the newest place. */
  #noteRejection(from: string, reason: RejectReason, detail: string): void {
    const key = `${from} ${reason}`;
    const now = this.#deps.now();
    const old = this.#rejections.get(key);
    if (old !== undefined) {
      this.#rejections.delete(key);
      old.count++;
      old.lastAt = now;
      old.detail = detail;
      this.#rejections.set(key, old);
      return;
    }
    this.#rejections.set(key, { from, reason, detail, count: 1, firstAt: now, lastAt: now });
    if (this.#rejections.size > RECENT_REJECTIONS) {
      this.#rejections.delete(this.#rejections.keys().next().value!);
    }
  }

  /** The recent rejections, one per source address and reason, newest first. */
  rejections(): RejectionView[] {
    return [...this.#rejections.values()].reverse().map((x) => ({ ...x }));
  }

  /** Timer: forgets old Map-Notify nonces. */
  expiredNotifies(): void {
    const now = this.#deps.now();
    while (this.#sentCount > 0) {
      const e = this.#sentOrder[this.#sentHead]!;
      if (now - e.at < NOTIFY_MEMORY_MS) break;
      this.#forgetOldest();
    }
  }

  /** Drops the oldest Map-Notify nonce remembered (unless acked or sent again since). */
  #forgetOldest(): void {
    const e = this.#sentOrder[this.#sentHead]!;
    this.#sentOrder[this.#sentHead] = undefined;
    this.#sentHead = (this.#sentHead + 1) % NOTIFY_MEMORY;
    this.#sentCount--;
    const k = nonceKey(e.hi, e.lo);
    if (this.#notified.get(k) === e) this.#notified.delete(k);
  }
}
