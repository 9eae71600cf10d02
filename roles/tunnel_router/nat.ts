/**
 * NAT traversal, the xTR side (draft-ietf-lisp-nat-traversal; xtr and mn
 * with `nat_traversal_support`).
 *
 * Flow, in the format OOR 1.3.0 speaks: every 10 s an Info-Request goes to
 * each map-server from the control port, signed with that map-server's key
 * → the Info-Reply gives the global address and port the map-server saw and
 * its RTRs → when the global address is not ours, the router is behind a
 * NAT (`nat-detected`): its Map-Registers go ECM'd (R bit) from the data
 * port to each RTR's control port ({@link NatClient.send}), which opens the
 * NAT binding the RTR answers through: its Map-Notify comes back as a
 * "Data-Map-Notify" (a LISP data packet of instance 0xFFFFFF to the data
 * port, whose inner IP/UDP packet carries the Map-Notify; router.ts hands
 * it to the control plane), and so does the data for our EIDs. Everything
 * the router encapsulates goes to the RTRs (the map-cache asks
 * {@link NatClient.rtrs}; a catch-all entry per instance and family covers
 * destinations not cached). A new global address later
 * (`nat-global-rloc-changed`) registers everything again.
 *
 * Registration waits for the first Info-Reply; three unanswered
 * Info-Requests in a row from every map-server mean there is no way to
 * learn the NAT: the router registers directly until one answers again.
 *
 * @module
 */

import { ipAddress, NO_ADDRESS } from "../../wire/address.ts";
import { authStatus, HmacKey, signAuthenticated } from "../../wire/auth.ts";
import { LISP_CONTROL_PORT } from "../../wire/data_header.ts";
import type { EidRecord } from "../../wire/eid_record.ts";
import { emitEcm } from "../../wire/ecm.ts";
import { emitInfo, type InfoReply, type InfoRequest } from "../../wire/info.ts";
import { canonicalIp, isIPv4 } from "../../wire/ip_text.ts";
import { emitSignedMapRegister, type MapRegister } from "../../wire/map_register.ts";
import { locatorRecord } from "../../wire/locator.ts";
import type { MapServer } from "../../config/mod.ts";
import { type ControlPlane, formatPeer, type Peer } from "../../core/control.ts";
import { formatPrefix, parsePrefix, type Prefix, prefixEid } from "../../core/prefix.ts";
import type { Env } from "./context.ts";
import type { DataPath } from "./datapath.ts";
import type { LocalLocators } from "./locals.ts";
import { type MapCache, rtrLocators } from "./map_cache.ts";
import type { NatRegistrar, RegState } from "./registration.ts";
import { METRICS } from "../../core/metrics.ts";

/** Info-Requests unanswered in a row before a NATed xTR registers directly again. */
const NAT_MAX_FAILURES = 3;
/** RTRs of an Info-Reply used (the rest ignored). */
const MAX_RTRS = 8;

/** The Info-Request state towards one map-server. */
interface NatProbe {
  readonly ms: MapServer;
  readonly key: HmacKey;
  readonly peer: Peer;
  /** Nonce of the Info-Request not answered yet. */
  pending: bigint | undefined;
  /** Unanswered Info-Requests in a row. */
  failures: number;
  lastReplyAt: number | null;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** How the xTR is seen from outside its NAT, from the last Info-Reply. */
interface NatView {
  /** Global (translated) RLOC. */
  readonly global: string;
  /** Translated port of the data port. */
  readonly port: number;
  /** RTR RLOCs to register through and encapsulate to. */
  readonly rtrs: readonly string[];
}

/** What the NAT client makes the other parts do. */
export interface NatHooks {
  /** The way to the map-servers changed: register every mapping again. */
  registerAll(): void;
  /** No map-server answers: register what is stalled, directly. */
  registerStalled(): void;
}

/** The xTR side of NAT traversal (see the module notes). */
export class NatClient implements NatRegistrar {
  readonly #env: Env;
  readonly #cp: ControlPlane;
  readonly #data: DataPath;
  readonly #locals: LocalLocators;
  readonly #cache: MapCache;
  readonly #hooks: NatHooks;
  readonly #probes: NatProbe[] = [];
  readonly #nonces = new Map<bigint, NatProbe>();
  #view: NatView | undefined;
  /** Whether an Info-Reply has told whether there is a NAT. */
  #known = false;
  /** Catch-all prefixes pushed to the data plane while behind a NAT. */
  #catchAll: Prefix[] = [];

  /** Registers the `info-reply` handler on `cp`. */
  constructor(
    env: Env,
    cp: ControlPlane,
    data: DataPath,
    locals: LocalLocators,
    cache: MapCache,
    hooks: NatHooks,
  ) {
    this.#env = env;
    this.#cp = cp;
    this.#data = data;
    this.#locals = locals;
    this.#cache = cache;
    this.#hooks = hooks;
    cp.on("info-reply", (m, r) => this.#infoReply(r.bytes, m, r.from));
  }

  /** Sets up one Info-Request probe per map-server with a key and sends the first ones. */
  start(): void {
    if (this.#locals.mappings.length === 0) return;
    for (const ms of this.#env.config.mapServers) {
      if (ms.key === undefined) continue;
      this.#probes.push({
        ms,
        key: new HmacKey(ms.keyType, ms.key),
        peer: { address: ms.address, port: this.#env.peerPort(ms.address) },
        pending: undefined,
        failures: 0,
        lastReplyAt: null,
        timer: undefined,
      });
    }
    for (const p of this.#probes) this.#expiredInfoRequest(p);
  }

  /** Stops the timers. */
  close(): void {
    for (const p of this.#probes) if (p.timer !== undefined) clearTimeout(p.timer);
  }

  waiting(): boolean {
    return this.#probes.length > 0 && !this.#known &&
      this.#probes.some((p) => p.failures < NAT_MAX_FAILURES);
  }

  behind(): boolean {
    return this.#view !== undefined;
  }

  /** Behind a NAT: the RTRs everything is encapsulated to; else undefined. */
  rtrs(): readonly string[] | undefined {
    return this.#view?.rtrs;
  }

  describe(): Record<string, string> {
    const v = this.#view;
    return v === undefined ? {} : { via: v.rtrs.join(","), global: `${v.global}:${v.port}` };
  }

  rediscover(): void {
    for (const p of this.#probes) {
      if (p.pending !== undefined) continue; // one in flight already
      if (p.timer !== undefined) clearTimeout(p.timer);
      this.#expiredInfoRequest(p);
    }
  }

  /**
   * Timer: sends an Info-Request to `p`'s map-server and schedules the
   * next: the keepalive period once answered, quick doubling retries while
   * not.
   */
  #expiredInfoRequest(p: NatProbe): void {
    p.timer = undefined;
    const env = this.#env;
    if (env.signal.aborted) return;
    if (p.pending !== undefined) {
      this.#nonces.delete(p.pending);
      p.pending = undefined;
      p.failures++;
      env.counters.inc(METRICS.trInfoRequestTimeouts);
      if (p.failures === NAT_MAX_FAILURES) {
        env.log.warn("nat-info-request-timeout", {
          mapServer: p.ms.address,
          attempts: p.failures,
          behindNat: this.#view !== undefined,
        });
        // No word from any map-server: register directly until one answers again.
        if (this.#probes.every((x) => x.failures >= NAT_MAX_FAILURES)) {
          this.#set(undefined, p);
          this.#hooks.registerStalled();
        }
      }
    }
    const mapping = this.#locals.mappings[0];
    if (mapping !== undefined) {
      const nonce = env.nonce();
      const req: InfoRequest = {
        reply: false,
        nonce,
        keyId: p.key.keyId,
        authData: new Uint8Array(p.key.digestLength),
        ttl: 0,
        maskLen: mapping.prefix.len,
        eid: prefixEid(mapping.prefix),
        address: NO_ADDRESS,
      };
      const bytes = emitInfo(req);
      signAuthenticated(bytes, p.key);
      this.#cp.send(bytes, p.peer);
      p.pending = nonce;
      this.#nonces.set(nonce, p);
      env.counters.inc(METRICS.trInfoRequestsSent);
    }
    const t = env.timing;
    const delay = p.failures === 0 && p.lastReplyAt !== null
      ? t.natKeepaliveMs
      : Math.min(t.natKeepaliveMs, t.natRetryMs * 2 ** Math.min(p.failures, 10));
    p.timer = setTimeout(() => this.#expiredInfoRequest(p), delay);
  }

  /** An Info-Reply: checks it and takes the NAT view it gives. */
  #infoReply(bytes: Uint8Array, m: InfoReply, from: Peer): void {
    const env = this.#env;
    if (env.signal.aborted) return;
    const p = this.#nonces.get(m.nonce);
    if (p === undefined || m.keyId !== p.key.keyId || authStatus(bytes, p.key) !== "ok") {
      env.counters.inc(METRICS.trInfoReplies, {
        result: p === undefined ? "unmatched" : "auth",
      });
      env.log.limited(
        `info-reply-rejected ${from.address}`,
        60_000,
        "warn",
        "info-reply-rejected",
        {
          peer: formatPeer(from),
          reason: p === undefined ? "unknown nonce" : "authentication",
        },
      );
      return;
    }
    this.#nonces.delete(m.nonce);
    env.counters.inc(METRICS.trInfoReplies, { result: "ok" });
    p.pending = undefined;
    p.failures = 0;
    p.lastReplyAt = env.now();
    const g = m.nat.globalEtr;
    if (g.kind !== "ipv4" && g.kind !== "ipv6") return;
    const rtrs: string[] = [];
    for (const r of m.nat.rtrs) {
      if ((r.kind === "ipv4" || r.kind === "ipv6") && !rtrs.includes(r.ip)) rtrs.push(r.ip);
      if (rtrs.length >= MAX_RTRS) break;
    }
    // The Info-Request left from the control port: its port is the one to compare.
    const natted = !this.#locals.ownIps.has(g.ip) || m.nat.etrPort !== this.#cp.port;
    if (natted && rtrs.length === 0) {
      env.log.limited("nat-without-rtrs", 60_000, "warn", "nat-without-rtrs", {
        mapServer: p.ms.address,
        global: `${g.ip}:${m.nat.etrPort}`,
      });
    }
    this.#set(
      natted && rtrs.length > 0 ? { global: g.ip, port: m.nat.etrPort, rtrs } : undefined,
      p,
    );
  }

  /** Takes a new NAT view: logs a change, moves the data plane and the registrations over. */
  #set(next: NatView | undefined, p: NatProbe): void {
    const prev = this.#view;
    const sig = (v: NatView | undefined) =>
      v === undefined ? "" : `${v.global}:${v.port} ${v.rtrs}`;
    const firstAnswer = !this.#known;
    this.#known = true;
    const log = this.#env.log;
    if (sig(prev) === sig(next)) {
      if (firstAnswer) {
        log.info("nat-not-detected", { mapServer: p.ms.address });
        this.#hooks.registerAll();
      }
      return;
    }
    this.#view = next;
    this.#env.counters.inc(METRICS.trNatChanges);
    if (next === undefined) {
      log.info("nat-gone", { mapServer: p.ms.address, was: `${prev!.global}:${prev!.port}` });
    } else if (prev === undefined) {
      log.info("nat-detected", {
        mapServer: p.ms.address,
        global: `${next.global}:${next.port}`,
        rtrs: next.rtrs.join(","),
      });
    } else {
      log.info("nat-global-rloc-changed", {
        mapServer: p.ms.address,
        from: `${prev.global}:${prev.port}`,
        to: `${next.global}:${next.port}`,
        rtrs: next.rtrs.join(","),
      });
    }
    this.#pushCatchAll();
    this.#cache.pushAll();
    this.#hooks.registerAll();
  }

  /**
   * Behind a NAT everything goes to the RTRs: a catch-all entry per
   * instance id and family of the local prefixes (more specific map-cache
   * entries point at the RTRs too, see `MapCache.toData`). Without a NAT
   * they go.
   */
  #pushCatchAll(): void {
    for (const p of this.#catchAll) {
      const e = this.#cache.get(p);
      if (e !== undefined) this.#data.setMapping(this.#cache.toData(e));
      else this.#data.deleteMapping(p);
    }
    this.#catchAll = [];
    const view = this.#view;
    if (view === undefined) return;
    const seen = new Set<string>();
    for (const m of this.#locals.mappings) {
      if (m.prefix.family === "mac") continue;
      const p = parsePrefix(m.prefix.family === "ipv4" ? "0.0.0.0/0" : "::/0", m.prefix.iid);
      if (p === undefined || seen.has(formatPrefix(p))) continue;
      seen.add(formatPrefix(p));
      this.#catchAll.push(p);
      this.#data.setMapping({ prefix: p, action: "encapsulate", locators: rtrLocators(view.rtrs) });
    }
  }

  /**
   * Behind a NAT: the Map-Register goes to each RTR's control port, from
   * the data port, in an ECM with the R bit whose inner header runs from
   * our private RLOC to the map-server. Its record lists the RTRs as locators (what public
   * ITRs must encapsulate to), with the P bit (the map-server answers for
   * us: Map-Requests cannot reach us) and the R and I bits.
   */
  send(s: RegState, reg: MapRegister, withdraw: boolean): bigint[] | undefined {
    const view = this.#view;
    const msIp = canonicalIp(s.ms.address);
    const v4 = msIp !== undefined && isIPv4(msIp);
    const priv = s.mapping.locators.find((l) => l.ip !== undefined && isIPv4(l.ip) === v4)?.ip;
    if (view === undefined || !this.#data.canSendControl || msIp === undefined) return undefined;
    if (priv === undefined) return undefined;
    const base = s.mapping.locators[0]!;
    const rec = reg.records[0]!;
    const record: EidRecord = {
      ...rec,
      locators: view.rtrs.map((ip) => locatorRecord(ipAddress(ip), base.priority, base.weight)),
    };
    const nonces: bigint[] = [];
    for (const rtr of view.rtrs) {
      if (isIPv4(rtr) !== v4) continue;
      const nonce = nonces.length === 0 ? reg.nonce : this.#env.nonce();
      const viaRtr: MapRegister = { ...reg, proxyReply: true, rtr: true, nonce, records: [record] };
      const ecm = emitEcm({
        security: false,
        ddtOriginated: false,
        forRtr: true,
        rtrRelayed: false,
        inner: {
          src: priv,
          dst: msIp,
          srcPort: LISP_CONTROL_PORT,
          dstPort: LISP_CONTROL_PORT,
          ttl: 64,
        },
        payload: emitSignedMapRegister(viaRtr, s.key),
      });
      this.#data.sendControl(ecm, rtr, this.#env.peerPort(rtr));
      nonces.push(nonce);
    }
    return withdraw ? [] : nonces;
  }
}
