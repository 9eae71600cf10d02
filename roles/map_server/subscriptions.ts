/**
 * Publish/subscribe on the map-server (RFC 9437): ITRs subscribe to the
 * mappings they use, and every change of one is pushed to them in a
 * Map-Notify, so they converge at the speed of one message instead of an
 * SMR round or a TTL.
 *
 * - A subscription is a Map-Request with the I bit (the ITR's xTR-ID and
 *   Site-ID) and the N bit on a record, plain or in an ECM (a map-resolver
 *   passes it on). It is answered as any Map-Request (answerer.ts), and
 *   kept here per (instance id, requested prefix, xTR-ID) with the
 *   ITR-RLOCs and the port to notify: the inner UDP source port of the ECM,
 *   else the source port. A new subscription from the same xTR-ID replaces
 *   the ITR-RLOCs. One whose ITR-RLOCs are all AFI 0 withdraws it (§5).
 *   Without the I bit the N bit is ignored (counted `no-xtr-id`).
 * - Who may subscribe, and the key (RFC 9437 §7 leaves the security
 *   association to the deployment; our choice): the subscriber must be a
 *   registered xTR of a `[[lisp-site]]` here, found by its xTR-ID (a
 *   Map-Register with the I bit: `merge = true`) or else by one of its
 *   ITR-RLOCs being the source address of a live Map-Register. Its
 *   publications are signed with that site's key, which is the key in the
 *   ITR's own `[[map-server]]` entry. Anyone else is answered as usual and
 *   not kept (counted `unknown-xtr`, logged once a minute per source).
 * - On subscribing, the ITR gets a Map-Notify with the mapping as it is
 *   (when the prefix is registered), under the Map-Request's nonce. Every
 *   later change of the registrations covering the prefix (a new
 *   registration, a changed locator set, priority or weight, a withdrawal,
 *   an expiry) that changes the merged record (answerer.ts `proxyRecord`)
 *   is published under the subscription's next nonce (the last one plus
 *   one, so the ITR can tell old from new). A prefix left with no live
 *   registration is published as its record with no locators and TTL 0:
 *   the ITR forgets the mapping and asks again.
 * - Publications are Map-Notifies with the I bit (the subscriber's xTR-ID
 *   and Site-ID), signed HMAC over the whole message (RFC 9301 §5.7); they
 *   are sent to the first ITR-RLOC and resent every second until a
 *   Map-Notify-Ack with the same nonce, signed with the same key, comes
 *   back; after {@link PUBLICATION_RETRIES} resends they are given up
 *   (counted `unacknowledged`; the next change is published again).
 * - A subscription lives as long as the TTL of the record it last got
 *   (or {@link SUBSCRIPTION_DEFAULT_MS} when nothing was registered): the
 *   ITR subscribes again when its map-cache entry expires. Swept with the
 *   registrations.
 *
 * Counters: `oor_map_server_subscriptions` (gauge),
 * `oor_map_server_subscribe_requests_total{result="subscribed"|"withdrawn"|"no-xtr-id"|"unknown-xtr"}`,
 * `oor_map_server_publications_total{result="sent"|"resent"|"acknowledged"|"late-ack"|"unacknowledged"}`
 * (`late-ack`: an ack of a publication already acknowledged or replaced by a newer one).
 *
 * @module
 */

import { clearTimeout, setTimeout } from "node:timers";
import { type Address, addressToString } from "../../wire/address.ts";
import { ACTION, type EidRecord, emitEidRecord } from "../../wire/eid_record.ts";
import { emitSignedMapNotify, type MapNotify } from "../../wire/map_notify.ts";
import type { MapRequest } from "../../wire/map_request.ts";
import { authStatus } from "../../wire/auth.ts";
import { LISP_CONTROL_PORT } from "../../wire/data_header.ts";
import { formatPeer, type Peer, type Received } from "../../core/control.ts";
import type { ControlPlane } from "../../core/control.ts";
import type { RoleDeps } from "../../core/role.ts";
import type { SubscriptionView } from "../../core/status.ts";
import {
  formatPrefix,
  type Prefix,
  prefixContains,
  prefixEid,
  prefixOf,
} from "../../core/prefix.ts";
import { METRICS } from "../../core/metrics.ts";
import { proxyRecord } from "./answerer.ts";
import type { Registration, RegistrationStore } from "./registrations.ts";
import type { Site, Sites } from "./sites.ts";

/** How long a publication waits for its Map-Notify-Ack before it is sent again, ms. */
export const PUBLICATION_RESEND_MS = 1_000;
/** Resends of a publication before it is given up. */
export const PUBLICATION_RETRIES = 3;
/** Lifetime of a subscription to a prefix nothing is registered for, ms (a day). */
export const SUBSCRIPTION_DEFAULT_MS = 86_400_000;
/** Publications whose late Map-Notify-Acks are still recognised. */
const RECENT_PUBLICATIONS = 4096;
/** Log interval of a subscription's own lines (subscribed, published...), ms. */
const LINE_INTERVAL_MS = 1_000;
/** Log interval of refused subscriptions, per source. */
const LOG_INTERVAL_MS = 60_000;

/** One subscriber of one prefix. */
interface Subscription {
  readonly prefix: Prefix;
  readonly text: string;
  readonly xtrId: bigint;
  siteId: bigint;
  /** Where publications go. */
  to: Peer;
  itrRlocs: string[];
  /** The site whose key signs its publications. */
  site: Site;
  /** The nonce of the last Map-Notify sent to it. */
  nonce: bigint;
  /** The record last published (its bytes as hex), to publish changes only. */
  last: string | undefined;
  /** The prefix of that record (the registered prefix covering the subscribed one). */
  lastPrefix: Prefix | undefined;
  subscribedAt: number;
  expiresAt: number;
  /** Publications sent, and acknowledged. */
  sent: number;
  acked: number;
  /** The publication awaiting its Map-Notify-Ack. */
  pending:
    | { nonce: bigint; bytes: Uint8Array; tries: number; timer: ReturnType<typeof setTimeout> }
    | undefined;
}

/** A subscriber, as the API and the status page show it (core/status.ts). */
export type SubscriptionInfo = SubscriptionView;

/** What the subscriptions read and use. */
export interface SubscriptionsContext {
  readonly deps: RoleDeps;
  readonly cp: ControlPlane;
  readonly sites: Sites;
  readonly store: RegistrationStore;
}

function hex(v: bigint, digits: number): string {
  return v.toString(16).padStart(digits, "0");
}

function toHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i]!.toString(16).padStart(2, "0");
  return s;
}

/** The IP of an ITR-RLOC we can notify (IPv4 or IPv6), else undefined. */
function rlocIp(a: Address): string | undefined {
  return a.kind === "ipv4" || a.kind === "ipv6" ? a.ip : undefined;
}

/** Subscribers per prefix, and their publications (see the module notes). */
export class Subscriptions {
  readonly #c: SubscriptionsContext;
  /** By `${prefix text} ${xTR-ID}`. */
  readonly #subs = new Map<string, Subscription>();
  /** Outstanding publications by nonce. */
  readonly #pending = new Map<bigint, Subscription>();
  /**
   * Recent publications by nonce, also those acknowledged or superseded
   * (a late or repeated ack of one is ours, not the registrar's), oldest first.
   */
  readonly #recent = new Map<bigint, Subscription>();
  #closed = false;

  /** Hears of every change of the store (after whoever listened before). */
  constructor(ctx: SubscriptionsContext) {
    this.#c = ctx;
    const prev = ctx.store.onChange;
    ctx.store.onChange = (p) => {
      prev?.(p);
      this.changed(p);
    };
    ctx.deps.counters.gauge(METRICS.msSubscriptions, () => this.#subs.size);
  }

  /** How many subscriptions there are. */
  get size(): number {
    return this.#subs.size;
  }

  /**
   * A Map-Request answered by answerer.ts: if it subscribes (or
   * withdraws), the subscription is kept (or dropped) here.
   */
  request(r: Received, m: MapRequest): void {
    const wanted = m.records.filter((x) => x.notify === true);
    if (wanted.length === 0) return;
    const c = this.#c.deps.counters;
    if (m.xtrId === undefined || m.siteId === undefined) {
      c.inc(METRICS.msSubscribeRequests, { result: "no-xtr-id" });
      return;
    }
    // ITR-RLOCs of the family the control socket sends to, first.
    const bound = this.#c.cp.address;
    const v4 = bound !== undefined && !bound.includes(":");
    const all = m.itrRlocs.map(rlocIp).filter((x): x is string => x !== undefined);
    const rlocs = bound === undefined ? all : [
      ...all.filter((x) => !x.includes(":") === v4),
      ...all.filter((x) => !x.includes(":") !== v4),
    ];
    for (const rec of wanted) {
      const p = prefixOf(rec.eid, rec.maskLen);
      if (p === undefined) continue;
      const key = `${formatPrefix(p)} ${hex(m.xtrId, 32)}`;
      if (rlocs.length === 0) {
        const old = this.#subs.get(key);
        if (old !== undefined) this.#drop(key, old);
        c.inc(METRICS.msSubscribeRequests, { result: "withdrawn" });
        // Peers trigger these lines: at most one a second per subscription (and per line).
        this.#c.deps.logger.limited(
          `unsubscribed ${key}`,
          LINE_INTERVAL_MS,
          "info",
          "unsubscribed",
          {
            prefix: formatPrefix(p),
            xtrId: hex(m.xtrId, 32),
          },
        );
        continue;
      }
      const site = this.#siteOf(m.xtrId, rlocs);
      if (site === undefined) {
        c.inc(METRICS.msSubscribeRequests, { result: "unknown-xtr" });
        this.#c.deps.logger.limited(
          `subscription-refused ${r.from.address}`,
          LOG_INTERVAL_MS,
          "warn",
          "subscription-refused",
          {
            peer: formatPeer(r.from),
            prefix: formatPrefix(p),
            xtrId: hex(m.xtrId, 32),
            reason: "no registration here from this xTR-ID or its ITR-RLOCs",
          },
        );
        continue;
      }
      const port = r.ecm !== undefined ? r.ecm.inner.srcPort : r.from.port;
      const now = this.#c.deps.now();
      let s = this.#subs.get(key);
      if (s === undefined) {
        s = {
          prefix: p,
          text: formatPrefix(p),
          xtrId: m.xtrId,
          siteId: m.siteId,
          to: { address: rlocs[0]!, port: port || LISP_CONTROL_PORT },
          itrRlocs: rlocs,
          site,
          nonce: m.nonce,
          last: undefined,
          lastPrefix: undefined,
          subscribedAt: now,
          expiresAt: now + SUBSCRIPTION_DEFAULT_MS,
          sent: 0,
          acked: 0,
          pending: undefined,
        };
        this.#subs.set(key, s);
        this.#c.deps.logger.limited(`subscribed ${key}`, LINE_INTERVAL_MS, "info", "subscribed", {
          prefix: s.text,
          xtrId: hex(m.xtrId, 32),
          itrRlocs: rlocs.join(","),
          site: site.text,
        });
      } else {
        s.siteId = m.siteId;
        s.to = { address: rlocs[0]!, port: port || LISP_CONTROL_PORT };
        s.itrRlocs = rlocs;
        s.site = site;
        s.subscribedAt = now;
        s.expiresAt = now + SUBSCRIPTION_DEFAULT_MS;
      }
      c.inc(METRICS.msSubscribeRequests, { result: "subscribed" });
      // The mapping as it is now, under the Map-Request's nonce.
      s.nonce = m.nonce;
      s.last = undefined;
      this.#publish(s, now, true);
    }
  }

  /** The store changed `prefix`: every subscriber under it hears of a changed record. */
  changed(prefix: Prefix): void {
    if (this.#closed || this.#subs.size === 0) return;
    const now = this.#c.deps.now();
    for (const s of this.#subs.values()) {
      if (s.prefix.iid !== prefix.iid || s.prefix.family !== prefix.family) continue;
      if (!prefixContains(prefix, s.prefix) && !prefixContains(s.prefix, prefix)) continue;
      this.#publish(s, now, false);
    }
  }

  /**
   * A Map-Notify-Ack: true when it acknowledges one of our publications
   * (then handled here), false to leave it to the registrar.
   */
  ack(r: Received, m: MapNotify): boolean {
    const s = this.#pending.get(m.nonce) ?? this.#recent.get(m.nonce);
    if (s === undefined) return false;
    if (s.pending?.nonce !== m.nonce) {
      // Late: acknowledged already, or a newer publication replaced it.
      if (authStatus(r.bytes, s.site.key) === "ok") {
        this.#c.deps.counters.inc(METRICS.msPublications, { result: "late-ack" });
      } else {
        this.#c.deps.counters.inc(METRICS.msMapNotifyAcks, { result: "auth" });
      }
      return true;
    }
    if (authStatus(r.bytes, s.site.key) !== "ok") {
      this.#c.deps.counters.inc(METRICS.msMapNotifyAcks, { result: "auth" });
      this.#c.deps.logger.limited(
        `publication-ack ${r.from.address}`,
        LOG_INTERVAL_MS,
        "warn",
        "map-notify-ack-rejected",
        { peer: formatPeer(r.from), reason: "authentication", publication: s.text },
      );
      return true;
    }
    clearTimeout(s.pending.timer);
    s.pending = undefined;
    this.#pending.delete(m.nonce);
    s.acked++;
    this.#c.deps.counters.inc(METRICS.msPublications, { result: "acknowledged" });
    return true;
  }

  /** Timer: drops expired subscriptions. */
  expiredSweep(): void {
    const now = this.#c.deps.now();
    for (const [k, s] of this.#subs) {
      if (s.expiresAt <= now) {
        this.#drop(k, s);
        this.#c.deps.logger.info("subscription-expired", {
          prefix: s.text,
          xtrId: hex(s.xtrId, 32),
        });
      }
    }
  }

  /** The subscribers, sorted by prefix then xTR-ID. */
  list(): SubscriptionInfo[] {
    const out: SubscriptionInfo[] = [];
    for (const s of this.#subs.values()) {
      out.push({
        prefix: s.text,
        iid: s.prefix.iid,
        xtrId: hex(s.xtrId, 32),
        siteId: hex(s.siteId, 16),
        itrRlocs: s.itrRlocs,
        notify: formatPeer(s.to),
        site: s.site.text,
        published: s.sent,
        acknowledged: s.acked,
        pending: s.pending !== undefined,
        subscribedAt: s.subscribedAt,
        expiresAt: s.expiresAt,
      });
    }
    return out.sort((a, b) =>
      a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : a.xtrId < b.xtrId ? -1 : 1
    );
  }

  /** Stops every resend. */
  close(): void {
    this.#closed = true;
    for (const s of this.#subs.values()) if (s.pending !== undefined) clearTimeout(s.pending.timer);
    this.#pending.clear();
  }

  /** The site whose key the subscriber `xtrId` (with `rlocs`) shares with us, if it registered here. */
  #siteOf(xtrId: bigint, rlocs: readonly string[]): Site | undefined {
    let bySource: Registration | undefined;
    for (const reg of this.#c.store.all()) {
      if (reg.static || reg.site === undefined) continue;
      if (reg.xtrId === xtrId) return this.#c.sites.table.get(reg.site);
      if (bySource === undefined && reg.from !== undefined && rlocs.includes(reg.from.address)) {
        bySource = reg;
      }
    }
    return bySource !== undefined ? this.#c.sites.table.get(bySource.site!) : undefined;
  }

  /** The record a subscriber of `s.prefix` gets now, and how long it is good for. */
  #record(s: Subscription, now: number): EidRecord | undefined {
    const found = this.#c.store.lookup(s.prefix, now);
    if (found !== undefined && found.registrations.length > 0) {
      return proxyRecord(found.prefix, found.registrations);
    }
    const gone = s.lastPrefix;
    if (s.last === undefined || gone === undefined) return undefined; // nothing to withdraw
    return {
      ttl: 0,
      maskLen: gone.len,
      action: ACTION.NO_ACTION,
      authoritative: false,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: prefixEid(gone),
      locators: [],
    };
  }

  /** Publishes `s`'s record when it changed (or, `initial`, whatever it is). */
  #publish(s: Subscription, now: number, initial: boolean): void {
    const rec = this.#record(s, now);
    if (rec === undefined) return;
    const text = toHex(emitEidRecord(rec));
    if (text === s.last) return;
    s.last = text;
    s.lastPrefix = rec.ttl > 0 ? prefixOf(rec.eid, rec.maskLen) : undefined;
    if (!initial) s.nonce = (s.nonce + 1n) & 0xffff_ffff_ffff_ffffn;
    // It lives as long as the ITR's map-cache entry of this record (and a minute).
    if (rec.ttl > 0) s.expiresAt = now + rec.ttl * 60_000 + 60_000;
    const msg: MapNotify = {
      ack: false,
      xtrIdPresent: true,
      rtrAuthPresent: false,
      nonce: s.nonce,
      keyId: s.site.key.keyId,
      authData: new Uint8Array(0),
      records: [rec],
      xtrId: s.xtrId,
      siteId: s.siteId,
    };
    const bytes = emitSignedMapNotify(msg, s.site.key);
    if (s.pending !== undefined) {
      clearTimeout(s.pending.timer);
      this.#pending.delete(s.pending.nonce);
    }
    s.pending = { nonce: s.nonce, bytes, tries: 0, timer: this.#resendTimer(s) };
    this.#pending.set(s.nonce, s);
    this.#recent.set(s.nonce, s);
    if (this.#recent.size > RECENT_PUBLICATIONS) {
      this.#recent.delete(this.#recent.keys().next().value!);
    }
    s.sent++;
    this.#c.cp.send(bytes, s.to, "map-notify");
    this.#c.deps.counters.inc(METRICS.msPublications, { result: "sent" });
    const line = `published ${s.text} ${s.xtrId.toString(16)}`;
    this.#c.deps.logger.limited(line, LINE_INTERVAL_MS, "info", "published", {
      prefix: s.text,
      record: formatPrefix(prefixOf(rec.eid, rec.maskLen) ?? s.prefix),
      rlocs: rec.locators.map((l) => addressToString(l.address)).join(",") || "none",
      to: formatPeer(s.to),
      nonce: s.nonce,
    });
  }

  #resendTimer(s: Subscription): ReturnType<typeof setTimeout> {
    const t = setTimeout(() => this.#expiredResend(s), PUBLICATION_RESEND_MS);
    (t as { unref?: () => void }).unref?.();
    return t;
  }

  /** Timer: a publication not yet acknowledged is sent again, or given up. */
  #expiredResend(s: Subscription): void {
    const p = s.pending;
    if (p === undefined || this.#closed) return;
    if (p.tries >= PUBLICATION_RETRIES) {
      s.pending = undefined;
      this.#pending.delete(p.nonce);
      this.#c.deps.counters.inc(METRICS.msPublications, { result: "unacknowledged" });
      this.#c.deps.logger.limited(
        `publication-unacknowledged ${s.to.address}`,
        LOG_INTERVAL_MS,
        "warn",
        "publication-unacknowledged",
        { prefix: s.text, to: formatPeer(s.to), tries: p.tries + 1 },
      );
      return;
    }
    p.tries++;
    p.timer = this.#resendTimer(s);
    this.#c.cp.send(p.bytes, s.to, "map-notify");
    this.#c.deps.counters.inc(METRICS.msPublications, { result: "resent" });
  }

  #drop(key: string, s: Subscription): void {
    if (s.pending !== undefined) {
      clearTimeout(s.pending.timer);
      this.#pending.delete(s.pending.nonce);
    }
    this.#subs.delete(key);
  }
}
