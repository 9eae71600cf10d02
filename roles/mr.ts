/**
 * The `mr` and `ddt-mr` roles: a Map-Resolver. It accepts Map-Requests
 * that ITRs send in ECMs (RFC 9301 §5.8, §8.1) and either
 *
 * - **resolves them through LISP-DDT** (RFC 8111 §7.3) when
 *   `ddt-root-addresses` is set, or
 * - **forwards them to a `[[map-server]]`** otherwise.
 *
 * ## DDT resolution (RFC 8111 §7.3)
 *
 * Each ECM Map-Request becomes a pending request, keyed by the ITR's
 * address and nonce (a retransmission joins it). The resolver starts from
 * the most specific unexpired entry of its referral cache
 * (map_resolver/referral_cache.ts), or from the DDT
 * roots (§7.3.1), and asks one RLOC of the referral set at a time
 * (map_resolver/ddt_query.ts). Two kinds of query:
 *
 * - To DDT nodes (the roots, a NODE-REFERRAL's): a DDT Map-Request of our
 *   own (D bit, the ITR's first record, a fresh random nonce per query, this
 *   resolver as ITR-RLOC and inner source, the ITR's inner TTL less one).
 *   Whoever sent the ITR's request knows its nonce: asked with it, a node's
 *   spoofed address could plant referrals in the cache for a day.
 * - To the DDT Map-Servers of an MS-REFERRAL: the ITR's own ECM
 *   Map-Request (its nonce, ITR-RLOCs and inner header, TTL less one) with
 *   the D bit, as RFC 8111 §7.3.1 and §7.2 have it: the map-server answers
 *   the ITR itself (proxy reply, or forwarded to an ETR) and returns MS-ACK,
 *   which ends the request. Four datagrams, and one request's work in the
 *   map-server, where our own query and then the ITR's request after MS-ACK
 *   (OOR's DDT map-resolver's way) took seven and two. OOR's map-server
 *   answers such a request the same way (MS-ACK to the ECM's source, the
 *   reply to the ITR-RLOCs). On the ITR's nonce only MS-ACK,
 *   MS-NOT-REGISTERED (answered, never cached) and NOT-AUTHORITATIVE are
 *   taken; any other referral is neither cached nor followed
 *   (`oor_mr_dropped_total{reason="referral-to-itr-nonce"}`): the set is
 *   asked again with our own nonce, as after a restart from the roots.
 *   With a cached MS-REFERRAL this runs from the datagram as it came, no
 *   parse and no Promise (map_resolver/ddt_fast_path.ts).
 *
 * A Map-Referral counts only from the node asked with that query's nonce;
 * any other is dropped (`oor_control_dropped_total{reason="wrong-source"|
 * "unknown-nonce"}`). After MS-ACK to a query of our own, the ITR's
 * request goes to that map-server (no D bit); what it sends back to our
 * own query is dropped (`oor_mr_map_replies_ignored_total`). A negative
 * referral is answered and cached for its own prefix, which must cover the
 * requested one or lie inside it (a node answers a request wider than a
 * delegation for its first address); anything else is a bad referral.
 * Map-Referrals are handled as §7.3.2 says:
 *
 * | referral          | what the resolver does                                                        |
 * | ----------------- | ----------------------------------------------------------------------------- |
 * | NODE-REFERRAL     | caches it (TTL, unless the I bit is set) and asks one of the referred nodes   |
 * | MS-REFERRAL       | the same; the referred nodes are DDT Map-Servers                              |
 * | MS-ACK            | done: the Map-Server has (or now gets) the ITR's request and answers the ITR  |
 * | MS-NOT-REGISTERED | tries the other RLOCs of the set, then the map-servers the referral lists (its `ddt-ms-peers`) not asked yet; then a negative Map-Reply for the prefix, TTL 1 min, cached 1 min |
 * | DELEGATION-HOLE   | negative Map-Reply for the hole prefix with its TTL (15 min), cached as long   |
 * | NOT-AUTHORITATIVE | tries the other RLOCs; then: begun from the cache, restarts from the roots; from the roots themselves, a Natively-Forward reply for the EID (outside the tree); from a node the roots referred to, a failure |
 *
 * When an RLOC does not answer within `referralTimeoutMs`, the next RLOC of
 * the set is tried, cycling through the set `map-request-retries + 1`
 * times (§7.3.3); an RLOC that timed out is tried last for `suspectMs`
 * afterwards, so later requests go to a live node first. When every RLOC
 * of a cached referral is dead the entry is dropped and resolution
 * restarts from the roots once. Loops (§7.3.4) are detected when a
 * referral is not more specific than the one before it, when a node that
 * already referred this request answers again, or after `maxReferrals`
 * referrals.
 *
 * Negative Map-Replies go to the first ITR-RLOC (of the family the ECM
 * came over, if any) at the inner UDP source port (RFC 9301 §5.4); they
 * carry the EID's instance ID. Actions (RFC 9301 §5.4): Natively-Forward
 * when the tree says the EID is not a registered LISP destination
 * (delegation hole, not registered, not authoritative at the root);
 * Send-Map-Request with a 1-minute TTL when resolution failed (no DDT node
 * answered, a loop, a malformed referral), so the ITR asks again soon.
 *
 * ## Forwarding (no DDT roots)
 *
 * The ECM is re-sent (the ITR's inner header kept, so the Map-Server
 * answers the ITR; its TTL less one) to the first `[[map-server]]`; when
 * the same ITR asks again for the same EID within `retransmitWindowMs` (its
 * retransmission after a lost answer) it goes to the next one. A
 * `[[map-server]]` that is this resolver itself is skipped.
 *
 * ## Loops (core/forward_guard.ts)
 *
 * Nothing is forwarded to our own address; an ITR's request with inner TTL
 * 1 or 0 is dropped (`ttl-expired`); a request with the nonce and EID of
 * one forwarded within 500 ms is dropped (`duplicate`); on a ddt-mr's cached
 * path, a copy of a request waiting for its MS-ACK joins it. A request with
 * the D bit that reaches a map-resolver is dropped (`ddt-originated`).
 *
 * ## Counters
 *
 * `oor_mr_requests_total{mode}`, `oor_mr_dropped_total{reason}` (among the
 * reasons `own-address`, `ttl-expired`, `duplicate`),
 * `oor_mr_duplicates_total` (retransmissions joining a pending request),
 * `oor_mr_extra_records_total` (requests with more than one record),
 * `oor_mr_forwarded_total` (ITR requests passed to a map-server: a ddt-mr's
 * with the D bit, or after MS-ACK), `oor_mr_ddt_requests_sent_total`,
 * `oor_mr_referrals_total{action}`, `oor_mr_resolutions_total{result,reason}`,
 * `oor_mr_negative_replies_total{reason}`, `oor_mr_referral_timeouts_total`,
 * `oor_mr_loops_total`, `oor_mr_root_restarts_total`, `oor_mr_map_server_peers_asked_total`,
 * `oor_mr_referral_cache_hits_total{kind}`, `oor_mr_map_replies_ignored_total` (answers to
 * queries of our own only), and the gauges
 * `oor_mr_referral_cache_entries` and `oor_mr_pending_requests`.
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import {
  ControlPlane,
  type ControlTransportFactory,
  formatPeer,
  type Peer,
  type Received,
} from "../core/control.ts";
import { ForwardGuard, OwnAddresses } from "../core/forward_guard.ts";
import { formatPrefix, type Prefix, prefixContains, prefixOf } from "../core/prefix.ts";
import type { RoleDeps, RoleHandle, RoleStart } from "../core/role.ts";
import type { StatusSource } from "../core/status.ts";
import { MapServerTargets, setMrMapServers } from "./map_resolver/map_servers.ts";
import { forwardedEcm } from "./map_resolver/forward_path.ts";
import { type ForwardingPool, openMrControl } from "./map_resolver/forwarding.ts";
import { DdtFastPath, throughFastPath } from "./map_resolver/ddt_fast_path.ts";
import { type Answer, DdtQueries, type QueriedRequest } from "./map_resolver/ddt_query.ts";
import {
  NOT_REGISTERED_TTL,
  ReferralCache,
  type ReferralCacheEntry,
} from "./map_resolver/referral_cache.ts";
import { batchedTransport } from "./control_io/socket.ts";
import type { RateLimiter } from "../core/rate_limit.ts";
import { referralActionName } from "./ddt.ts";
import { netlinkHostAddresses } from "./host_addresses.ts";
import {
  negativeMapReply,
  negativePrefix,
  referralRlocs,
  replyPeer,
} from "./map_resolver/messages.ts";
import type { Ecm } from "../wire/ecm.ts";
import { ACTION, REFERRAL_ACTION } from "../wire/eid_record.ts";
import { LISP_TYPE } from "../wire/message.ts";
import { METRICS } from "../core/metrics.ts";

export { NOT_REGISTERED_TTL, type ReferralCacheEntry };
/** TTL of the negative Map-Reply when resolution failed, minutes. */
export const FAILURE_TTL = 1;

/** Tuning of a Map-Resolver beyond what `oor.toml` says (tests shorten the timers). */
export interface MrOptions {
  /** Milliseconds to wait for a Map-Referral after each DDT Map-Request (default 2000). */
  readonly referralTimeoutMs?: number;
  /** Milliseconds a DDT node that timed out is tried after the others (default 60000). */
  readonly suspectMs?: number;
  /** Most referrals followed for one request before it counts as a loop (default 16). */
  readonly maxReferrals?: number;
  /** Window in which an ITR's repeated request goes to the next map-server (default 3000 ms). */
  readonly retransmitWindowMs?: number;
  /** Milliseconds between sweeps of expired referral-cache entries (default 60000). */
  readonly sweepIntervalMs?: number;
  /**
   * Most requests resolved at once; more are dropped and counted (default 10000). A ddt-mr's
   * cached path holds as many more, waiting for their MS-ACK.
   */
  readonly maxPending?: number;
  /** The control port's sockets (default: the batched transport); benchmarks pass their own. */
  readonly transport?: ControlTransportFactory;
  /**
   * Forwarding Workers of an `mr` (roles/map_resolver/forwarding.ts), 0: none. Default: one per
   * CPU, or 0 on a test's clock or with `transport`. A `ddt-mr` has none.
   */
  readonly workers?: number;
}

/** A running Map-Resolver. */
export interface MrHandle extends RoleHandle {
  /** The control transport (its `port` is the bound UDP port). */
  readonly control: ControlPlane;
  /** Whether it resolves through DDT (`ddt-root-addresses` set). */
  readonly ddt: boolean;
  /** The unexpired referral-cache entries. */
  referralCache(): ReferralCacheEntry[];
  /** Number of requests being resolved. */
  readonly pendingCount: number;
  /** What the HTTP API shows: mode, referral cache, counters. */
  statusSource(): StatusSource;
}

/** An ITR's request as received, being resolved. */
interface Original extends QueriedRequest {
  readonly key: string;
  /** Whether a map-server may still be sent the ITR's own request (see the module notes). */
  itrFlow: boolean;
}

/** Where the walk is: a referral set and the prefix it was given for. */
interface Step {
  /** Undefined at the roots. */
  readonly prefix?: Prefix;
  readonly rlocs: readonly string[];
  readonly fromRoot: boolean;
  /** The referred nodes are DDT Map-Servers (an MS-REFERRAL). */
  readonly ms?: boolean;
  /**
   * The nodes are the peers an MS-NOT-REGISTERED listed: that answer
   * stands when none of them answers.
   */
  readonly notRegistered?: Extract<Answer, { readonly kind: "referral" }>;
}

/** The most peers of one MS-NOT-REGISTERED (`ddt-ms-peers`) asked before the answer is negative. */
export const MAX_MS_PEERS = 8;

/** What a map-server may answer the ITR's own request with (anything else: asked again, ours). */
const ITR_ANSWERS: ReadonlySet<number> = new Set([
  REFERRAL_ACTION.MS_ACK,
  REFERRAL_ACTION.MS_NOT_REGISTERED,
  REFERRAL_ACTION.NOT_AUTHORITATIVE,
]);

const NEGATIVE_CACHE_ACTIONS: ReadonlySet<number> = new Set([
  REFERRAL_ACTION.DELEGATION_HOLE,
  REFERRAL_ACTION.MS_NOT_REGISTERED,
]);

/** Builds a Map-Resolver `start` with `options`. */
export function mrStarter(options: MrOptions = {}): RoleStart<MrHandle> {
  return (config, deps) => Mr.start(config, deps, options);
}

/** Starts a Map-Resolver (`mr` or `ddt-mr`) with the default timers. */
export const startMr: RoleStart<MrHandle> = mrStarter();

class Mr implements MrHandle {
  readonly control: ControlPlane;
  readonly ddt: boolean;
  /** The config; its `mapServers` change with the API's edits (`setPeers`). */
  #config: Config;
  readonly #deps: RoleDeps;
  readonly #maxReferrals: number;
  readonly #windowMs: number;
  readonly #maxPending: number;
  readonly #guard: ForwardGuard;
  readonly #cache: ReferralCache;
  readonly #pending = new Map<string, Original>();
  readonly #recent = new Map<string, { index: number; at: number }>();
  readonly #targetList: MapServerTargets;
  readonly #abort = new AbortController();
  readonly #sweep: ReturnType<typeof setInterval>;
  /** The forwarding Workers, if any, and the timer that gives them their targets. */
  readonly #pool: ForwardingPool | undefined;
  readonly #targetsTimer: ReturnType<typeof setInterval> | undefined;
  /** A ddt-mr's cached path (roles/map_resolver/ddt_fast_path.ts). */
  readonly #fast: DdtFastPath | undefined;
  /** The walk's queries, and which DDT nodes are suspect. */
  readonly #queries: DdtQueries;

  private constructor(
    config: Config,
    deps: RoleDeps,
    options: MrOptions,
    control: ControlPlane,
    pool: ForwardingPool | undefined,
    limiter: RateLimiter | undefined,
  ) {
    this.#config = config;
    this.#deps = deps;
    this.#cache = new ReferralCache(deps.now);
    this.control = control;
    this.ddt = config.ddtRootAddresses.length > 0;
    const timeoutMs = options.referralTimeoutMs ?? 2000;
    this.#maxReferrals = options.maxReferrals ?? 16;
    this.#windowMs = options.retransmitWindowMs ?? 3000;
    this.#maxPending = options.maxPending ?? 10_000;
    const own = new OwnAddresses({
      socket: control,
      host: netlinkHostAddresses(),
      now: deps.now,
      logger: deps.logger,
    });
    this.#guard = new ForwardGuard(own, { now: deps.now });
    this.#queries = new DdtQueries({
      control,
      counters: deps.counters,
      logger: deps.logger,
      guard: this.#guard,
      now: deps.now,
      timeoutMs,
      suspectMs: options.suspectMs ?? 60_000,
      signal: this.#abort.signal,
      port: () => this.#config.controlPort,
      cycles: () => this.#config.mapRequestRetries + 1,
      waiting: (nonce) => this.#fast?.has(nonce) === true,
      drop: (reason, r) => this.#drop(reason, r),
    });
    this.#targetList = new MapServerTargets(own, deps.logger);
    this.#sweep = setInterval(() => this.#expiredReferrals(), options.sweepIntervalMs ?? 60_000);
    const c = deps.counters;
    c.gauge(METRICS.mrReferralCacheEntries, () => this.#cache.size);
    c.gauge(METRICS.mrPendingRequests, () => this.pendingCount);
    if (this.ddt) {
      this.#fast = new DdtFastPath({
        control,
        counters: c,
        logger: deps.logger,
        port: config.controlPort,
        timeoutMs,
        maxWaiting: this.#maxPending,
        allow: limiter === undefined ? undefined : (a) => limiter.allow(a, deps.now()),
        msReferral: (eid) => {
          const hit = this.#cache.lookup(eid);
          return hit?.action === REFERRAL_ACTION.MS_REFERRAL ? hit.rlocs : undefined;
        },
        first: (rlocs) => this.#queries.first(rlocs),
        timedOut: (rloc) => this.#queries.timedOut(rloc),
        walk: (r) => this.#begin(r, false),
      });
    }
    control.on("map-request", (_m, r) => this.#onMapRequest(r));
    // Answers to our own DDT Map-Requests that a DDT map-server forwarded
    // or proxy-replied to (the ITR gets its own): counted, not even parsed.
    control.takeUnread(LISP_TYPE.MAP_REPLY, () => c.inc(METRICS.mrMapRepliesIgnored));
    this.#pool = pool;
    if (pool !== undefined) {
      pool.attach((bytes, from, admitted) => control.receive(bytes, from, "control", { admitted }));
      this.#publishTargets();
      // Our own addresses may change (read again every 30 s): checked every second.
      this.#targetsTimer = setInterval(() => this.#publishTargets(), 1000);
    }
  }

  /** Gives the forwarding Workers the map-servers that are not this resolver. */
  #publishTargets(): void {
    if (this.#pool === undefined) return;
    this.#pool.setTargets(
      this.#config.mapServers.length === 0 ? [] : this.#targets(this.#deps.now()),
    );
  }

  static async start(config: Config, deps: RoleDeps, options: MrOptions): Promise<Mr> {
    // A ddt-mr's datagrams go through its cached path first.
    let fast: DdtFastPath | undefined;
    const opened = await openMrControl(
      config,
      deps,
      config.ddtRootAddresses.length === 0 ? options : {
        ...options,
        transport: throughFastPath(options.transport ?? batchedTransport, () => fast),
      },
    );
    const { control, pool } = opened;
    let mr: Mr;
    try {
      mr = new Mr(config, deps, options, control, pool, opened.limiter);
      fast = mr.#fast;
    } catch (e) {
      await control.close();
      throw e;
    }
    if (mr.ddt && config.mapServers.length > 0) {
      deps.logger.warn("mr-map-servers-ignored", {
        reason: "ddt-root-addresses is set: requests are resolved through DDT",
      });
    }
    deps.logger.info("map-resolver-ready", {
      port: control.port,
      address: config.controlAddress,
      mode: mr.ddt ? "ddt" : "forward",
      roots: config.ddtRootAddresses.join(","),
      "map-servers": config.mapServers.map((m) => m.address).join(","),
      workers: pool?.workers ?? 0,
    });
    return mr;
  }

  get pendingCount(): number {
    return this.#pending.size + (this.#fast?.size ?? 0);
  }

  referralCache(): ReferralCacheEntry[] {
    return this.#cache.entries();
  }

  statusSource(): StatusSource {
    return {
      status: () => {
        const config = this.#config;
        return {
          details: {
            "control address": `${config.controlAddress ?? "*"} port ${this.control.port}`,
            mode: this.ddt ? "ddt" : "forward",
            [this.ddt ? "ddt roots" : "map-servers"]: this.ddt
              ? config.ddtRootAddresses.join(", ")
              : config.mapServers.map((m) => m.address).join(", "),
            "requests being resolved": this.#pending.size,
            "forwarding workers": this.#pool?.workers ?? 0,
          },
        };
      },
      referrals: () =>
        this.referralCache().map((e) => ({
          eidPrefix: formatPrefix({ ...e.prefix, iid: 0 }),
          iid: e.prefix.iid,
          action: referralActionName(e.action),
          rlocs: e.rlocs,
          ttl: e.ttl,
          expiresAt: e.expiresAt,
          origin: "cache" as const,
        })),
      counters: () => this.#deps.counters.snapshot(),
      setPeers: (peers) => {
        const c = setMrMapServers(this.#config, peers);
        this.#config = c.config;
        this.#publishTargets();
        for (const line of c.changes) this.#deps.logger.info("mr-map-servers-changed", { line });
        return c.changes;
      },
    };
  }

  close(): Promise<void> {
    clearInterval(this.#sweep);
    this.#fast?.close();
    if (this.#targetsTimer !== undefined) clearInterval(this.#targetsTimer);
    this.#abort.abort(new Error("map-resolver closed"));
    return this.control.close();
  }

  // -------------------------------------------------------------------------
  // Requests from ITRs

  #drop(reason: string, r: { readonly from: Peer }): void {
    this.#deps.counters.inc(METRICS.mrDropped, { reason });
    this.#deps.logger.limited(
      `mr-drop ${reason} ${r.from.address}`,
      60_000,
      "warn",
      "mr-request-dropped",
      { reason, peer: formatPeer(r.from) },
    );
  }

  #onMapRequest(r: Received): void {
    if (r.message.type !== "map-request") return;
    const request = r.message.msg;
    const c = this.#deps.counters;
    c.inc(METRICS.mrRequests, { mode: this.ddt ? "ddt" : "forward" });
    if (r.ecm === undefined) return this.#drop("not-encapsulated", r);
    if (r.ecm.ddtOriginated) return this.#drop("ddt-originated", r);
    if (request.probe || request.smr) return this.#drop(request.probe ? "probe" : "smr", r);
    const record = request.records[0];
    if (record === undefined) return this.#drop("no-record", r);
    // RFC 9301 §5.2: senders send exactly one record; only the first is resolved.
    if (request.records.length > 1) c.inc(METRICS.mrExtraRecords);
    const eid = prefixOf(record.eid, record.maskLen);
    if (eid === undefined) return this.#drop("eid-not-a-prefix", r);
    // Whatever we send on for this request carries its inner TTL less one.
    if (r.ecm.inner.ttl <= 1) return this.#drop("ttl-expired", r);
    if (!this.ddt) return this.#forward(r, r.ecm, eid, request.nonce);
    this.#begin(r, true);
  }

  /** Resolves an ITR's request through DDT; `itrFlow`: a map-server may get the ITR's own. */
  #begin(r: Received, itrFlow: boolean): void {
    if (r.message.type !== "map-request" || r.ecm === undefined) return;
    const request = r.message.msg;
    const eid = prefixOf(request.records[0]!.eid, request.records[0]!.maskLen);
    if (eid === undefined) return;
    const c = this.#deps.counters;
    const key = `${r.from.address}|${request.nonce.toString(16)}`;
    if (this.#pending.has(key)) {
      c.inc(METRICS.mrDuplicates);
      return;
    }
    if (this.#pending.size >= this.#maxPending) return this.#drop("overloaded", r);
    const eidText = formatPrefix(eid);
    const ecm = r.ecm;
    const datagram = r.datagram;
    const o: Original = { key, request, eid, eidText, ecm, from: r.from, datagram, itrFlow };
    this.#pending.set(key, o);
    this.#resolve(o)
      .catch((e) => {
        if (this.#abort.signal.aborted) return;
        this.#deps.logger.error("mr-resolve-failed", {
          eid: formatPrefix(eid),
          error: e instanceof Error ? e.message : String(e),
        });
      })
      .finally(() => this.#pending.delete(key));
  }

  #targets(now: number): readonly Peer[] {
    return this.#targetList.get(this.#config.mapServers, this.#config.controlPort, now);
  }

  #forward(r: Received, ecm: Ecm, eid: Prefix, nonce: bigint): void {
    if (this.#config.mapServers.length === 0) return this.#drop("no-map-server", r);
    const now = this.#deps.now();
    const servers = this.#targets(now);
    if (servers.length === 0) return this.#drop("own-address", r);
    const eidText = formatPrefix(eid);
    let index = 0;
    if (servers.length > 1) {
      // The same ITR asking again for the same EID soon: its retransmission, to the next one.
      const k = `${r.from.address}|${eidText}`;
      const last = this.#recent.get(k);
      if (last !== undefined && now - last.at < this.#windowMs) {
        index = (last.index + 1) % servers.length;
      }
      if (this.#recent.size > 10_000) this.#recent.clear();
      this.#recent.set(k, { index, at: now });
    }
    const to = servers[index]!;
    if (!this.#forwardEcm(r, ecm, nonce, eid, to, eidText)) return;
    if (this.#deps.logger.enabled("debug")) {
      this.#deps.logger.debug("mr-forwarded", {
        eid: formatPrefix(eid),
        itr: formatPeer(r.from),
        "map-server": formatPeer(to),
        nonce,
      });
    }
  }

  /**
   * Sends an ITR's ECM on to a map-server, with its inner TTL less one,
   * unless core/forward_guard.ts refuses (dropped and counted). Returns
   * whether it was sent.
   */
  #forwardEcm(
    r: { readonly from: Peer; readonly datagram?: Uint8Array | undefined },
    ecm: Ecm,
    nonce: bigint,
    eid: Prefix,
    to: Peer,
    eidText = formatPrefix(eid),
  ): boolean {
    const ttl = this.#guard.check(to, ecm.inner.ttl, nonce, eidText);
    if (typeof ttl === "string") {
      this.#drop(ttl, r);
      return false;
    }
    this.control.send(forwardedEcm(ecm, ttl, r.datagram), to);
    this.#deps.counters.inc(METRICS.mrForwarded);
    return true;
  }

  // -------------------------------------------------------------------------
  // DDT resolution

  #root(): Step {
    return { rlocs: this.#config.ddtRootAddresses, fromRoot: true };
  }

  #expiredReferrals(): void {
    const now = this.#deps.now();
    this.#cache.sweep();
    this.#queries.sweep(now);
    for (const [k, v] of this.#recent) if (now - v.at >= this.#windowMs) this.#recent.delete(k);
  }

  async #resolve(o: Original): Promise<void> {
    const c = this.#deps.counters;
    const hit = this.#cache.lookup(o.eid);
    let step: Step = this.#root();
    if (hit !== undefined) {
      if (NEGATIVE_CACHE_ACTIONS.has(hit.action)) {
        c.inc(METRICS.mrReferralCacheHits, { kind: "negative" });
        const ttl = Math.max(1, Math.ceil((hit.expiresAt - this.#deps.now()) / 60_000));
        const reason = referralActionName(hit.action);
        this.#negative(o, hit.prefix, ttl, ACTION.NATIVELY_FORWARD, reason);
        c.inc(METRICS.mrResolutions, { result: "succeeded", reason: `cached-${reason}` });
        return;
      }
      c.inc(METRICS.mrReferralCacheHits, { kind: "referral" });
      const ms = hit.action === REFERRAL_ACTION.MS_REFERRAL;
      step = { prefix: hit.prefix, rlocs: hit.rlocs, fromRoot: false, ms };
    }
    for (;;) {
      const outcome = await this.#walk(o, step);
      if (outcome !== "restart-from-root") return;
      c.inc(METRICS.mrRootRestarts);
      step = this.#root();
    }
  }

  /** Follows referrals from `start`; returns "restart-from-root" when a non-root start failed. */
  async #walk(o: Original, start: Step): Promise<"done" | "restart-from-root"> {
    const c = this.#deps.counters;
    const log = this.#deps.logger;
    let referred: Set<string> | undefined; // made at the first referral (not on MS-ACK at once)
    // The map-servers asked and how many of them were peers, made at MS-NOT-REGISTERED.
    let asked: { rlocs: Set<string>; peers: number } | undefined;
    let step = start;
    let referrals = 0;
    for (;;) {
      const got = await this.#queries.set(o, step.rlocs, step.ms === true && o.itrFlow);
      if (got.kind === "aborted") return "done"; // closing, or the nonce is busy
      if (got.kind === "busy") { // another request has the ITR's nonce: ours, then
        o.itrFlow = false;
        continue;
      }
      const answer = got.kind === "referral" ? got : step.notRegistered;
      if (answer === undefined) { // no answer
        if (!step.fromRoot) return this.#restart(o, step);
        this.#fail(o, "no-response", step);
        return "done";
      }
      const { record, rloc } = answer;
      const action = record.action;
      const name = referralActionName(action);
      const fresh = answer === got; // not the MS-NOT-REGISTERED whose peers were silent
      if (fresh) c.inc(METRICS.mrReferrals, { action: name });
      if (answer.itr && !ITR_ANSWERS.has(action)) {
        // Anyone who saw the ITR's request knows its nonce: a referral to it
        // is never followed nor cached. The same set is asked with our own.
        c.inc(METRICS.mrDropped, { reason: "referral-to-itr-nonce" });
        o.itrFlow = false;
        continue;
      }
      const rp = prefixOf(record.eid, record.maskLen);
      if (fresh && log.enabled("debug")) {
        log.debug("mr-referral", {
          eid: formatPrefix(o.eid),
          from: rloc,
          action: name,
          prefix: rp ? formatPrefix(rp) : undefined,
          ttl: record.ttl,
          incomplete: record.incomplete,
        });
      }
      switch (action) {
        case REFERRAL_ACTION.NODE_REFERRAL:
        case REFERRAL_ACTION.MS_REFERRAL: {
          if (rp === undefined || !prefixContains(rp, o.eid)) {
            this.#fail(o, "bad-referral", step, `referral ${name} does not cover the EID`);
            return "done";
          }
          // RFC 8111 §7.3.4: each referral must be more specific than the
          // last, and no node may refer the same request twice.
          const loop = (step.prefix !== undefined && rp.len <= step.prefix.len)
            ? `prefix ${formatPrefix(rp)} is not more specific than ${formatPrefix(step.prefix)}`
            : referred?.has(rloc)
            ? `${rloc} referred this request before`
            : referrals >= this.#maxReferrals
            ? `more than ${this.#maxReferrals} referrals`
            : undefined;
          if (loop !== undefined) {
            c.inc(METRICS.mrLoops);
            this.#fail(o, "loop", step, loop);
            return "done";
          }
          (referred ??= new Set()).add(rloc);
          referrals++;
          asked = undefined;
          const rlocs = referralRlocs(record);
          if (rlocs.length === 0) {
            this.#fail(o, "bad-referral", step, `${name} without usable RLOCs`);
            return "done";
          }
          this.#cache.add(rp, record, rlocs);
          const ms = action === REFERRAL_ACTION.MS_REFERRAL;
          step = { prefix: rp, rlocs, fromRoot: step.fromRoot, ms };
          continue;
        }
        case REFERRAL_ACTION.MS_ACK: {
          // RFC 8111 §7.3.2: the Map-Server has the EID. Asked with the ITR's
          // request, it has answered the ITR; asked with our own, the ITR's,
          // with the ITR's nonce, goes to it now.
          if (!answer.itr) {
            const ms = { address: rloc, port: this.#config.controlPort };
            this.#forwardEcm(o, o.ecm, o.request.nonce, o.eid, ms, o.eidText);
          }
          c.inc(METRICS.mrResolutions, { result: "succeeded", reason: "ms-ack" });
          return "done";
        }
        case REFERRAL_ACTION.MS_NOT_REGISTERED: {
          const p = negativePrefix(rp, o.eid);
          if (p === undefined) {
            this.#fail(o, "bad-referral", step, `${name} does not match the EID`);
            return "done";
          }
          // RFC 8111 §7.3.2: the referral lists the prefix's map-servers
          // (the map-server's ddt-ms-peers); an ETR may have registered with
          // another one only, so those not asked yet are asked first. Only
          // a list that came on our own nonce is followed.
          const seen = asked ??= { rlocs: new Set(step.rlocs), peers: 0 };
          const peers = referralRlocs(record)
            .filter((r) => !seen.rlocs.has(r))
            .slice(0, MAX_MS_PEERS - seen.peers);
          if (peers.length > 0) {
            if (answer.itr) {
              o.itrFlow = false;
              continue;
            }
            for (const r of peers) seen.rlocs.add(r);
            seen.peers += peers.length;
            c.inc(METRICS.mrPeersAsked, undefined, peers.length);
            step = { ...step, rlocs: peers, notRegistered: answer };
            continue;
          }
          if (!answer.itr) this.#cache.add(p, record, []);
          this.#negative(o, p, NOT_REGISTERED_TTL, ACTION.NATIVELY_FORWARD, name);
          c.inc(METRICS.mrResolutions, { result: "succeeded", reason: name });
          return "done";
        }
        case REFERRAL_ACTION.DELEGATION_HOLE: {
          const p = negativePrefix(rp, o.eid);
          if (p === undefined) {
            this.#fail(o, "bad-referral", step, `${name} does not match the EID`);
            return "done";
          }
          this.#cache.add(p, record, []);
          this.#negative(o, p, record.ttl, ACTION.NATIVELY_FORWARD, name);
          c.inc(METRICS.mrResolutions, { result: "succeeded", reason: name });
          return "done";
        }
        case REFERRAL_ACTION.NOT_AUTHORITATIVE:
          // Started from the cache: the cached referral is stale.
          if (!step.fromRoot) return this.#restart(o, step);
          // A node the roots referred to disowns the EID: the tree is misconfigured.
          if (step.prefix !== undefined) {
            this.#fail(o, "not-authoritative", step, `${rloc} is not authoritative`);
            return "done";
          }
          // The roots themselves: the EID is outside the DDT tree, not a LISP destination.
          this.#negative(o, o.eid, FAILURE_TTL, ACTION.NATIVELY_FORWARD, name);
          c.inc(METRICS.mrResolutions, { result: "failed", reason: name });
          return "done";
        default:
          this.#fail(o, "bad-referral", step, `unknown referral action ${action}`);
          return "done";
      }
    }
  }

  /**
   * RFC 8111 §7.3.3: a cached referral that led nowhere (every RLOC dead,
   * or NOT-AUTHORITATIVE) is dropped and the request starts over from the
   * roots.
   */
  #restart(o: Original, step: Step): "restart-from-root" {
    if (step.prefix !== undefined) this.#cache.delete(step.prefix);
    o.itrFlow = false;
    return "restart-from-root";
  }

  // -------------------------------------------------------------------------
  // Answers to the ITR

  #fail(o: Original, reason: string, step: Step, detail?: string): void {
    const c = this.#deps.counters;
    c.inc(METRICS.mrResolutions, { result: "failed", reason });
    // Limited per ITR, not per EID: an ITR choosing EIDs must not choose
    // how many lines we write.
    this.#deps.logger.limited(
      `mr-fail ${reason} ${o.from.address}`,
      60_000,
      "warn",
      "mr-resolution-failed",
      {
        eid: formatPrefix(o.eid),
        peer: formatPeer(o.from),
        reason,
        detail,
        at: step.prefix ? formatPrefix(step.prefix) : "root",
        rlocs: step.rlocs.join(","),
      },
    );
    this.#negative(o, o.eid, FAILURE_TTL, ACTION.SEND_MAP_REQUEST, reason);
  }

  /** Sends the ITR a negative Map-Reply (no locators) for `prefix`. */
  #negative(o: Original, prefix: Prefix, ttl: number, action: number, reason: string): void {
    this.#deps.counters.inc(METRICS.mrNegativeReplies, { reason });
    const msg = negativeMapReply(o.request.nonce, prefix, ttl, action);
    this.control.send({ type: "map-reply", msg }, replyPeer(o));
  }
}
