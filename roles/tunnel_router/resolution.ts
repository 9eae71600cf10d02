/**
 * Resolution, the ITR side (RFC 9301 §5.8, §6).
 *
 * Flow: the data plane reports a miss (no entry, or a send-map-request
 * entry) → {@link Resolver.miss} → an ECM Map-Request to the
 * map-resolvers, one per attempt in turn, `map-request-retries`
 * retransmissions a second apart → the Map-Reply (from a map-server or an
 * ETR, so matched by nonce alone) → {@link MapCache.install}.
 *
 * - At most one request per EID per second, one in flight per EID, and
 *   200 a second in all; the rest are counted as `limited`.
 * - The ITR-RLOCs are the router's usable locators (locals.ts); the inner
 *   header goes from the first of the EID's family to the EID, from the
 *   control port.
 * - A record is taken when its prefix covers the EID asked for: positive
 *   records are encapsulated to their locators, negative ones keep their
 *   action; TTL 0 records remove what is cached and are not cached.
 *   Static entries and an rtr's NAT entries are never replaced.
 * - A reply none of whose records covers the EID (OOR's map-server answers
 *   a negative reply for the nearest registered prefix's neighbourhood)
 *   is rejected, and the EID is not asked for again for 2 s, doubling with
 *   every such reply up to {@link REJECTED_BACKOFF_MAX_MS}; logged once
 *   when the back-off starts (`map-reply-rejected`), and forgotten when a
 *   covering reply comes. SMR-invoked requests are not held back.
 * - When nothing answers, or only rejected records, and proxy-ETRs are
 *   configured, the EID gets a native-forward entry for a minute, so its
 *   traffic goes to a PETR.
 * - An SMR-invoked request (smr.ts) takes the same path with the s bit.
 * - With `subscribe = true` every request subscribes (RFC 9437: the N bit,
 *   the I bit with the xTR-ID and Site-ID; subscription.ts takes the
 *   publications that follow).
 *
 * @module
 */

import {
  type Address,
  addressToString,
  inInstance,
  ipAddress,
  type IPv4Address,
  type IPv6Address,
  NO_ADDRESS,
} from "../../wire/address.ts";
import { LISP_CONTROL_PORT } from "../../wire/data_header.ts";
import { canonicalIp, isIPv4 } from "../../wire/ip_text.ts";
import type { MapReply } from "../../wire/map_reply.ts";
import { emitMapRequest } from "../../wire/map_request.ts";
import { type ControlPlane, formatPeer, NoReplyError, type Received } from "../../core/control.ts";
import {
  formatPrefix,
  parsePrefix,
  type Prefix,
  prefixAddress,
  prefixContains,
  prefixEid,
  prefixOf,
} from "../../core/prefix.ts";
import { type Env, errText, TTL_FOREVER } from "./context.ts";
import type { LocalLocators } from "./locals.ts";
import { type CacheEntry, DATA_ACTIONS, type MapCache } from "./map_cache.ts";
import { METRICS } from "../../core/metrics.ts";
import type { Subscriber } from "./subscription.ts";

/** At most one Map-Request per EID per this many ms (also for SMRs received). */
export const MISS_INTERVAL_MS = 1_000;
/** Misses turned into Map-Requests per second, all EIDs together. */
const MISS_RATE = 200;
/** The first back-off after a reply that does not cover the EID, ms. */
export const REJECTED_BACKOFF_MS = 2_000;
/** The longest such back-off, ms. */
export const REJECTED_BACKOFF_MAX_MS = 64_000;
/** EIDs in back-off kept at most (the oldest are forgotten first). */
const BACKOFF_MAX_ENTRIES = 10_000;

/** The EID address of `p` as a source EID: inside an Instance-ID LCAF unless iid 0. */
export function sourceEidOf(ip: IPv4Address | IPv6Address, iid: number): Address {
  return inInstance(iid, ip);
}

/** Turns misses into Map-Requests and their replies into map-cache entries. */
export class Resolver {
  readonly #env: Env;
  readonly #cp: ControlPlane;
  readonly #cache: MapCache;
  readonly #locals: LocalLocators;
  readonly #lastMiss = new Map<string, number>();
  readonly #inFlight = new Set<string>();
  /** EIDs whose last reply covered nothing: no request before `until`. */
  readonly #backoff = new Map<string, { until: number; delayMs: number }>();
  #tokens = MISS_RATE;
  #tokensAt = 0;
  readonly #subscriber: Subscriber | undefined;

  constructor(
    env: Env,
    cp: ControlPlane,
    cache: MapCache,
    locals: LocalLocators,
    subscriber?: Subscriber,
  ) {
    this.#env = env;
    this.#cp = cp;
    this.#cache = cache;
    this.#locals = locals;
    this.#subscriber = subscriber;
  }

  /** A data-plane miss for `dst` (from `src`) in `iid`. */
  miss(iid: number, dst: string, src: string): void {
    if (this.#env.signal.aborted) return;
    const p = parsePrefix(dst, iid);
    if (p === undefined || p.family === "mac") return;
    this.resolve(p, src, false);
  }

  /** Whether the control socket can send to `ip`'s family. */
  canSend(ip: string): boolean {
    const bound = this.#cp.address;
    return bound === undefined || isIPv4(bound) === isIPv4(ip);
  }

  /** Whether a Map-Request for `key` may go now (see the module notes). */
  #allowRequest(key: string): boolean {
    const now = this.#env.now();
    const last = this.#lastMiss.get(key);
    if (last !== undefined && now - last < MISS_INTERVAL_MS) return false;
    this.#tokens = Math.min(MISS_RATE, this.#tokens + (now - this.#tokensAt) * MISS_RATE / 1000);
    this.#tokensAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    this.#lastMiss.set(key, now);
    return true;
  }

  /** Sends an ECM Map-Request for `p` through the map-resolvers and installs the answer. */
  resolve(p: Prefix, src: string | undefined, smrInvoked: boolean): void {
    const { counters: c, log, config } = this.#env;
    const cp = this.#cp;
    const key = formatPrefix(p);
    if (this.#inFlight.has(key) || !this.#allowRequest(key)) {
      c.inc(METRICS.trMisses, { result: "limited" });
      return;
    }
    const held = this.#backoff.get(key);
    if (held !== undefined && !smrInvoked && this.#env.now() < held.until) {
      c.inc(METRICS.trMisses, { result: "backoff" });
      return;
    }
    const mrs = config.mapResolvers.filter((a) => this.canSend(a));
    const itrRlocs = this.#locals.itrRlocs;
    if (mrs.length === 0 || itrRlocs.length === 0) {
      log.limited("no-map-resolver", 60_000, "warn", "map-request-not-sent", {
        eid: key,
        reason: mrs.length === 0 ? "no usable map-resolver" : "no local RLOC",
      });
      return;
    }
    c.inc(METRICS.trMisses, { result: "sent" });
    if (log.enabled("debug")) log.debug("resolving", { eid: key, src, smrInvoked });
    const eid = prefixAddress(p) as IPv4Address | IPv6Address;
    const v4 = eid.kind === "ipv4";
    const srcIp = src !== undefined ? canonicalIp(src) : undefined;
    const sameFamily = srcIp !== undefined && isIPv4(srcIp) === v4;
    const innerSrc = itrRlocs.find((a) => (a.kind === "ipv4") === v4)?.ip ??
      (sameFamily ? srcIp : v4 ? "0.0.0.0" : "::");
    const nonce = this.#env.nonce();
    // RFC 9437: subscribe (N bit, I bit with the xTR-ID) when configured.
    const sub = this.#subscriber?.enabled === true ? this.#subscriber.requestFields() : undefined;
    const bytes = emitMapRequest({
      authoritative: false,
      probe: false,
      smr: false,
      pitr: false,
      smrInvoked,
      localXtr: false,
      dontMapReply: false,
      nonce,
      sourceEid: sameFamily ? sourceEidOf(ipAddress(srcIp!), p.iid) : NO_ADDRESS,
      itrRlocs,
      records: [
        sub !== undefined
          ? { maskLen: p.len, eid: prefixEid(p), notify: true }
          : { maskLen: p.len, eid: prefixEid(p) },
      ],
      ...(sub !== undefined ? sub : {}),
    });
    let attempt = 0;
    const send = () => {
      const mr = mrs[attempt++ % mrs.length]!;
      cp.sendEcm(
        bytes,
        { src: innerSrc, dst: eid.ip, srcPort: cp.port, dstPort: LISP_CONTROL_PORT },
        { address: mr, port: this.#env.peerPort(mr) },
      );
      c.inc(METRICS.trMapRequestsSent, { reason: smrInvoked ? "smr-invoked" : "miss" });
    };
    this.#inFlight.add(key);
    cp.request(nonce, send, `Map-Request ${key}`, {
      retries: config.mapRequestRetries,
      timeoutMs: this.#env.timing.mapRequestTimeoutMs,
      expect: ["map-reply"],
      signal: this.#env.signal,
    }).then(
      (r) => {
        if (r.message.type === "map-reply") this.#mapReply(r, r.message.msg, p);
      },
      (e) => {
        if (this.#env.signal.aborted) return;
        if (!(e instanceof NoReplyError)) {
          log.warn("map-request-failed", { eid: key, error: errText(e) });
          return;
        }
        c.inc(METRICS.trMapRequestTimeouts);
        log.limited(`unresolved ${key}`, 60_000, "info", "map-request-timeout", {
          eid: key,
          attempts: attempt,
        });
        this.#unresolved(p);
      },
    ).finally(() => this.#inFlight.delete(key));
  }

  /** No answer: with proxy-ETRs, the EID is natively forwarded (to them) for a while. */
  #unresolved(p: Prefix): void {
    const config = this.#env.config;
    const petrs = p.family === "ipv4" ? config.proxyEtrsIpv4 : config.proxyEtrsIpv6;
    if (petrs.length === 0 || this.#cache.lookup(p) !== undefined) return;
    this.#cache.install({
      prefix: p,
      static: false,
      action: "native-forward",
      locators: [],
      ttl: 1,
      expiresAt: this.#env.now() + this.#env.timing.unresolvedMs,
    });
  }

  #mapReply(r: Received, m: MapReply, asked: Prefix): void {
    const { counters: c, log } = this.#env;
    const now = this.#env.now();
    const key = formatPrefix(asked);
    let covered = false;
    const rejected: string[] = [];
    for (const rec of m.records) {
      const p = prefixOf(rec.eid, rec.maskLen);
      if (p === undefined || !prefixContains(p, asked)) {
        c.inc(METRICS.trMapReplies, { result: "not-covering" });
        rejected.push(p !== undefined ? formatPrefix(p) : addressToString(rec.eid));
        continue;
      }
      covered = true;
      const old = this.#cache.get(p);
      if (old?.static || old?.natPort !== undefined) {
        c.inc(METRICS.trMapReplies, { result: "static" });
        continue;
      }
      if (rec.ttl === 0) {
        c.inc(METRICS.trMapReplies, { result: "ttl-0" });
        this.#cache.remove(p);
        continue;
      }
      const positive = rec.locators.length > 0;
      c.inc(METRICS.trMapReplies, { result: positive ? "positive" : "negative" });
      const entry: CacheEntry = {
        prefix: p,
        static: false,
        action: positive ? "encapsulate" : DATA_ACTIONS[rec.action] ?? "drop",
        locators: rec.locators,
        ttl: rec.ttl,
        expiresAt: rec.ttl === TTL_FOREVER ? Infinity : now + rec.ttl * 60_000,
        from: formatPeer(r.from),
      };
      this.#cache.install(entry);
      if (old === undefined) {
        log.info("map-cache-added", {
          prefix: formatPrefix(p),
          action: entry.action,
          rlocs: rec.locators.map((l) => addressToString(l.address)).join(","),
          ttl: rec.ttl,
          from: formatPeer(r.from),
        });
      }
    }
    if (covered) {
      this.#backoff.delete(key);
    } else {
      this.#rejected(r, asked, key, rejected);
    }
  }

  /** A reply with no record covering `asked`: back off (see the module notes). */
  #rejected(r: Received, asked: Prefix, key: string, got: readonly string[]): void {
    const now = this.#env.now();
    const prev = this.#backoff.get(key);
    const delayMs = prev === undefined
      ? REJECTED_BACKOFF_MS
      : Math.min(REJECTED_BACKOFF_MAX_MS, prev.delayMs * 2);
    this.#backoff.delete(key); // re-inserted last: the map stays in age order
    this.#backoff.set(key, { until: now + delayMs, delayMs });
    if (this.#backoff.size > BACKOFF_MAX_ENTRIES) {
      this.#backoff.delete(this.#backoff.keys().next().value!);
    }
    const fields = {
      peer: formatPeer(r.from),
      asked: key,
      got: got.join(",") || "no record",
      retryInMs: delayMs,
    };
    if (prev === undefined) this.#env.log.warn("map-reply-rejected", fields);
    else if (this.#env.log.enabled("debug")) this.#env.log.debug("map-reply-rejected", fields);
    this.#unresolved(asked);
  }

  /** Timer: forgets stale per-EID limits. */
  expiredSweep(): void {
    const now = this.#env.now();
    for (const [k, b] of this.#backoff) {
      // Kept a while after it ends, so that the next rejection doubles it.
      if (now - b.until >= REJECTED_BACKOFF_MAX_MS) this.#backoff.delete(k);
    }
    if (this.#lastMiss.size <= 10_000) return;
    for (const [k, t] of this.#lastMiss) {
      if (now - t >= MISS_INTERVAL_MS) this.#lastMiss.delete(k);
    }
  }
}
