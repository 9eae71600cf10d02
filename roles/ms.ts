/**
 * The Map-Server role (`oor ms`): accepts Map-Registers for the sites of
 * its config and answers Map-Requests for them, as RFC 9301 §8 describes
 * and OOR's `lisp_ms.c` does, plus the DDT Map-Server part of RFC 8111 and
 * the map-server side of NAT traversal.
 *
 * Its parts (roles/map_server/):
 *
 * | part | concern |
 * | --- | --- |
 * | sites.ts | the configured sites, keys prepared once, the EID space, the RTRs |
 * | registrations.ts | the registration store: by prefix, then by who registered |
 * | registrar.ts | Map-Register → checks → store → Map-Notify; Map-Notify-Acks |
 * | answerer.ts | Map-Request → proxy reply, forward to an ETR, negative reply, referral |
 * | info.ts | Info-Request → Info-Reply (NAT traversal) |
 * | saved.ts | the registrations written to a file and read back at a restart |
 * | serving.ts, _serving_worker.ts | answering Workers on every core, SO_REUSEPORT sockets |
 * | fast_path.ts | a Worker's answer to one datagram, or its hand-over to the main thread |
 * | answers.ts, shared_trie.ts, publisher.ts | the registrations as the Workers read them |
 * | subscriptions.ts | RFC 9437 subscribers per prefix; a Map-Notify to each on every change |
 *
 * On every core: unless told otherwise ({@link MsOptions}), the ms runs one
 * answering Worker per CPU (serving.ts). The Workers answer Map-Requests
 * with negative and proxy Map-Replies and verify Map-Registers; the main
 * thread keeps the one copy of the state (registrations, saved file,
 * forward guard, Map-Notify-Acks) and does everything else. A change is
 * published to the Workers' shared answer table before its Map-Notify goes
 * out, so a Map-Request sent after the Map-Notify sees it on any Worker.
 *
 * Registrations from different xTR-IDs (or, without the I bit and with the
 * site's `merge`, different source addresses) of one prefix are kept apart
 * and their locators merged in answers. Expiry is swept every 10 s and on every lookup. With a state
 * file (run from the CLI), live registrations are kept beside it across a
 * restart (map_server/saved.ts).
 *
 * Counters (besides the transport's `oor_control_*`):
 * - `oor_map_server_registrations{source="map-register"|"static"}` (gauge),
 *   `oor_map_server_sites` (gauge);
 * - `oor_map_server_map_registers_accepted_total`,
 *   `oor_map_server_map_registers_rejected_total{reason="auth"|"key-id"|"no-site"|"more-specific"|"unknown-rtr"|"site-limit"|"locators"}`,
 *   `oor_map_server_registrations_withdrawn_total`, `oor_map_server_registrations_expired_total`;
 * - `oor_map_server_map_notifies_sent_total`, `oor_map_server_map_notifies_via_rtr_total`,
 *   `oor_map_server_map_notify_acks_total{result="matched"|"unmatched"|"auth"}`;
 * - `oor_map_server_map_requests_answered_total{kind="proxy"|"forwarded"|"negative-site"|"negative-hole"|"referral"}`,
 *   `oor_map_server_map_referrals_sent_total{action="ms-ack"|"ms-not-registered"|"not-authoritative"}`,
 *   `oor_map_server_map_requests_dropped_total{reason="probe"|"smr"|"no-record"|"unsupported-eid"|"no-itr-rloc"|"no-etr-rloc"|"own-address"|"ttl-expired"|"duplicate"}`;
 * - `oor_map_server_info_requests_total{result}`;
 * - `oor_map_server_serving_workers` (gauge),
 *   `oor_map_server_worker_datagrams_total{worker,path="answered"|"register"|"main"|"dropped"}`.
 *
 * A site's `merge` decides for registrations without an xTR-ID: kept apart
 * by source address (true), or the newest replaces the others (false, the
 * default, as OOR does).
 *
 * Publish/subscribe (RFC 9437, map_server/subscriptions.ts): a Map-Request
 * with the N and I bits is answered and its ITR kept as a subscriber;
 * every change of the mapping is published to it in a signed Map-Notify,
 * resent until acknowledged. Counters `oor_map_server_subscriptions`,
 * `oor_map_server_subscribe_requests_total{result}`,
 * `oor_map_server_publications_total{result}`.
 *
 * Not handled yet: LISP-SEC.
 *
 * @module
 */

import { clearInterval, setInterval } from "node:timers";
import { addressToString } from "../wire/address.ts";
import { ACTION } from "../wire/eid_record.ts";
import type { Config } from "../config/mod.ts";
import { ControlPlane, formatPeer } from "../core/control.ts";
import { batchedTransport } from "./control_io/socket.ts";
import { ForwardGuard, OwnAddresses } from "../core/forward_guard.ts";
import { formatPrefix, prefixFromConfig } from "../core/prefix.ts";
import type { RoleDeps, RoleHandle, RoleStart } from "../core/role.ts";
import type { StatusSource } from "../core/status.ts";
import { netlinkHostAddresses } from "./host_addresses.ts";
import { Answerer } from "./map_server/answerer.ts";
import { InfoResponder } from "./map_server/info.ts";
import { Registrar } from "./map_server/registrar.ts";
import { type Registration, RegistrationStore, STATIC_KEY } from "./map_server/registrations.ts";
import { SavedRegistrations, savedRegistrationsPath } from "./map_server/saved.ts";
import { AnswerTable } from "./map_server/answers.ts";
import { AnswerPublisher } from "./map_server/publisher.ts";
import { defaultWorkers, ServingPool } from "./map_server/serving.ts";
import { parseMapRegister } from "../wire/map_register.ts";
import { RateLimiter } from "../core/rate_limit.ts";
import type { Peer } from "../core/control.ts";
import { type Site, Sites, staticLocators } from "./map_server/sites.ts";
import { type SubscriptionInfo, Subscriptions } from "./map_server/subscriptions.ts";
import type { MapRequest } from "../wire/map_request.ts";
import type { Received } from "../core/control.ts";
import { SiteEdits } from "./map_server/site_edits.ts";

export { REGISTRATION_TIMEOUT_MS, type RejectReason } from "./map_server/registrar.ts";
export type { SubscriptionInfo } from "./map_server/subscriptions.ts";
export {
  MS_ACK_TTL,
  MS_NOT_REGISTERED_TTL,
  NOT_AUTHORITATIVE_TTL,
  NOT_EID_TTL,
  NOT_REGISTERED_TTL,
} from "./map_server/answerer.ts";
import { METRICS } from "../core/metrics.ts";

/** How often expired registrations are swept. */
const SWEEP_INTERVAL_MS = 10_000;

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
  /** The subscribers of mappings (RFC 9437), sorted by prefix. */
  subscriptions(): SubscriptionInfo[];
  /** What the HTTP API shows: details, sites and registrations, counters. */
  statusSource(): StatusSource;
}

function hex(v: bigint, digits: number): string {
  return v.toString(16).padStart(digits, "0");
}

// ---------------------------------------------------------------------------
// The Map-Server

class MapServer implements MsHandle {
  readonly #cp: ControlPlane;
  readonly #deps: RoleDeps;
  readonly #sites: Sites;
  readonly #store = new RegistrationStore();
  readonly #registrar: Registrar;
  readonly #sweep: ReturnType<typeof setInterval>;
  readonly #saved: SavedRegistrations | undefined;
  #subscriptions: Subscriptions | undefined;
  readonly #edits: SiteEdits;
  #closed = false;

  readonly #workers: number;

  constructor(
    cp: ControlPlane,
    config: Config,
    deps: RoleDeps,
    serving?: {
      readonly pool: ServingPool;
      readonly answers: AnswerTable;
      readonly workers: number;
    },
  ) {
    this.#cp = cp;
    this.#deps = deps;
    this.#sites = new Sites(config);
    this.#edits = new SiteEdits({
      sites: this.#sites,
      store: this.#store,
      config,
      now: deps.now,
      logger: deps.logger,
      ...(serving !== undefined ? { changed: (l, s) => serving.pool.updateSites(l, s) } : {}),
    });
    const now = deps.now();
    for (const s of config.msStaticRegisteredSites) {
      this.#store.put({
        prefix: prefixFromConfig(s.eidPrefix, s.iid),
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
    if (deps.statePath !== undefined) {
      this.#saved = new SavedRegistrations(
        savedRegistrationsPath(deps.statePath),
        this.#store,
        deps,
      );
      this.#saved.load(this.#sites);
    }
    const c = deps.counters;
    c.gauge(METRICS.msRegistrations, () => this.#store.dynamicCount, { source: "map-register" });
    c.gauge(METRICS.msRegistrations, () => this.#store.staticCount, { source: "static" });
    c.gauge(METRICS.msSites, () => this.#sites.list.length);
    const expired = (r: Registration) => this.#expired(r);
    this.#registrar = new Registrar(deps, cp, this.#sites, this.#store);
    const own = new OwnAddresses({
      socket: cp,
      host: netlinkHostAddresses(),
      now: deps.now,
      logger: deps.logger,
    });
    const guard = new ForwardGuard(own, { now: deps.now });
    const subscribe = (r: Received, m: MapRequest) => this.#subscriptions?.request(r, m);
    const ctx = { deps, cp, sites: this.#sites, store: this.#store, expired, guard, subscribe };
    new Answerer(ctx);
    new InfoResponder(ctx);
    this.#workers = serving?.workers ?? 0;
    if (serving !== undefined) {
      // The Workers answer from what the store holds: publish it now and each change.
      new AnswerPublisher(serving.answers, this.#store, this.#sites, deps.now, deps.logger);
      serving.pool.attach({
        deliver: (bytes, from, admitted) => cp.receive(bytes, from, "control", { admitted }),
        register: (bytes, from, notify) => this.#registerVerified(bytes, from, notify),
      });
    }
    // Publish/subscribe (RFC 9437): after the answer table hears of a change.
    this.#subscriptions = new Subscriptions({ deps, cp, sites: this.#sites, store: this.#store });
    this.#registrar.publicationAck = (r, m) => this.#subscriptions!.ack(r, m);
    this.#sweep = setInterval(() => this.#expiredSweepAndSave(), SWEEP_INTERVAL_MS).unref();
  }

  get port(): number {
    return this.#cp.port;
  }

  /** A Map-Register an answering Worker verified: applied by the registrar. */
  #registerVerified(
    bytes: Uint8Array,
    from: Peer,
    notify: Uint8Array | (() => void) | undefined,
  ): void {
    // A refresh that changes nothing is applied without parsing it.
    if (this.#registrar.refreshVerified(bytes, from, notify)) return;
    let m;
    try {
      m = parseMapRegister(bytes);
    } catch {
      // The Worker's scan accepts only what parses; should it not, the dispatcher judges.
      this.#cp.receive(bytes, from, "control", { admitted: true });
      return;
    }
    const r = {
      message: { type: "map-register" as const, msg: m },
      bytes,
      from,
      via: "control" as const,
    };
    this.#registrar.registerVerified(r, m, notify);
  }

  #expired(r: Registration): void {
    this.#deps.counters.inc(METRICS.msRegistrationsExpired);
    this.#deps.logger.info("registration-expired", {
      prefix: formatPrefix(r.prefix),
      peer: r.from !== undefined ? formatPeer(r.from) : undefined,
      xtrId: r.xtrId,
    });
  }

  /** Timer: removes expired registrations and forgets old Map-Notify nonces. */
  #expiredRegistrations(): void {
    for (const r of this.#store.sweep(this.#deps.now())) this.#expired(r);
    this.#registrar.expiredNotifies();
    this.#subscriptions?.expiredSweep();
  }

  /** Timer: sweeps, then writes the registrations if they changed (saved.ts). */
  #expiredSweepAndSave(): void {
    this.#expiredRegistrations();
    this.#saved?.saveSoon();
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

  subscriptions(): SubscriptionInfo[] {
    this.#subscriptions?.expiredSweep();
    return this.#subscriptions?.list() ?? [];
  }

  sites(): SiteInfo[] {
    this.#expiredRegistrations();
    const counts = new Map<Site, number>();
    for (const r of this.#store.all()) {
      if (r.site === undefined) continue;
      const s = this.#sites.table.get(r.site);
      if (s !== undefined) counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    return this.#sites.list.map((s) => ({
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
          "control address": `${this.#sites.self ?? "*"} port ${this.#cp.port}`,
          sites: this.#sites.list.length,
          registrations: this.#store.dynamicCount,
          "static registrations": this.#store.staticCount,
          "answering workers": this.#workers,
        },
      }),
      sites: () => ({
        sites: this.sites(),
        registrations: this.registrations(),
        rejections: this.#registrar.rejections(),
        subscriptions: this.subscriptions(),
      }),
      counters: () => this.#deps.counters.snapshot(),
      addLispSite: (s) => this.#edits.addSite(s),
      removeLispSite: (p, iid) => this.#edits.removeSite(p, iid),
      addStaticSite: (s) => this.#edits.addStatic(s),
      removeStaticSite: (p, iid) => this.#edits.removeStatic(p, iid),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return await this.#cp.close();
    this.#closed = true;
    clearInterval(this.#sweep);
    this.#subscriptions?.close();
    await this.#cp.close();
    await this.#saved?.close();
  }
}

/** Options of {@link msStarter}, beyond the config. */
export interface MsOptions {
  /**
   * Answering Workers (roles/map_server/serving.ts), 0 for the main thread
   * alone. Default: one per CPU (up to 16), or 0 when the role runs on a
   * clock of its own (a test's): the Workers read the system clock.
   */
  readonly workers?: number;
}

/** Builds a Map-Server `start` with `options`. */
export function msStarter(options: MsOptions = {}): RoleStart<MsHandle> {
  return async (config, deps) => {
    const workers = options.workers ?? (deps.now === Date.now ? defaultWorkers() : 0);
    const rate = config.controlRateLimit;
    const common = {
      logger: deps.logger,
      counters: deps.counters,
      ...(config.controlAddress !== undefined ? { address: config.controlAddress } : {}),
      port: config.controlPort,
      rateLimit: rate,
      now: deps.now,
    };
    let cp: ControlPlane;
    let serving: { pool: ServingPool; answers: AnswerTable; workers: number } | undefined;
    if (workers > 0) {
      const answers = new AnswerTable();
      const limiter = rate > 0 ? new RateLimiter(rate) : undefined;
      const pool = await ServingPool.start({
        config,
        logger: deps.logger,
        counters: deps.counters,
        workers,
        answers,
        limiter,
      });
      serving = { pool, answers, workers };
      try {
        cp = await ControlPlane.open({
          ...common,
          ...(limiter !== undefined ? { limiter } : {}),
          transport: pool.transport,
        });
      } catch (e) {
        await pool.close();
        throw e;
      }
    } else {
      cp = await ControlPlane.open({ ...common, transport: batchedTransport });
    }
    let ms: MapServer;
    try {
      ms = new MapServer(cp, config, deps, serving);
    } catch (e) {
      await cp.close();
      throw e;
    }
    deps.logger.info("ms-listening", {
      port: cp.port,
      address: config.controlAddress ?? "*",
      sites: config.lispSites.length,
      static: config.msStaticRegisteredSites.length,
      workers,
    });
    return ms;
  };
}

/**
 * Starts a Map-Server from `config` (`[[lisp-site]]`,
 * `[[ms-static-registered-site]]`, `control-address`, `control-port`,
 * `control-rate-limit`): binds the control socket and serves until
 * `close()`, on answering Workers ({@link MsOptions}).
 */
export const startMs: RoleStart<MsHandle> = msStarter();
