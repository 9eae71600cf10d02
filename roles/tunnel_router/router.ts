/**
 * The tunnel router assembled from its parts, for the spec a role file
 * gives (roles/xtr.ts, mn.ts, rtr.ts). Each part owns one concern and is
 * handed what it reads and what it may change:
 *
 * | part | concern |
 * | --- | --- |
 * | locals.ts | own locators, resolved from the host; the records that carry them |
 * | host.ts (+ routing.ts, journal.ts) | TUNs, routes and rules of the mode; undone at shutdown |
 * | datapath.ts | data sockets and the data-plane Worker |
 * | registration.ts | Map-Register / Map-Notify with every map-server |
 * | nat.ts, rtr_relay.ts | NAT traversal: the xTR side, the RTR's relay |
 * | map_cache.ts, resolution.ts | the map-cache; misses → Map-Requests → entries |
 * | etr.ts | answers to Map-Requests and RLOC-probes |
 * | probing.ts | RLOC probing |
 * | smr.ts | SMRs sent on locator changes, and acted on |
 * | subscription.ts | RFC 9437: subscribing Map-Requests, publications into the map-cache |
 * | views.ts | what the status page and API show |
 *
 * This module does the start-up order, the reaction to interface changes
 * (locators resolved again → routing, ITR-RLOCs, a mobile node's sockets,
 * re-registration, SMRs), runtime edits of the database and static
 * entries, and a shutdown that withdraws the registrations, stops the data
 * plane and undoes every host change in reverse order.
 *
 * @module
 */

import { addressToString } from "../../wire/address.ts";
import { WireError } from "../../wire/errors.ts";
import { parseIpUdp } from "../../wire/udp.ts";
import {
  type Config,
  type DatabaseMapping,
  formatPrefix as configPrefixText,
  type Prefix as ConfigPrefix,
  type StaticMapCacheEntry,
} from "../../config/mod.ts";
import { ControlPlane, type Peer } from "../../core/control.ts";
import { batchedTransport } from "../control_io/socket.ts";
import { formatPrefix, prefixFromConfig } from "../../core/prefix.ts";
import type { RoleDeps } from "../../core/role.ts";
import { SourceError, type StatusSource } from "../../core/status.ts";
import { DataPlane } from "../../dataplane/mod.ts";
import type { NetlinkEvent } from "../../ffi/mod.ts";
import {
  type DatabaseInfo,
  defaultTiming,
  type Env,
  errText,
  type MapCacheInfo,
  type ProbeInfo,
  randomNonce,
  randomXtrId,
  type RegistrationInfo,
  type TunnelRouterHandle,
  type TunnelRouterMode,
  type TunnelRouterOptions,
  type TunnelRouterSpec,
} from "./context.ts";
import { DataPath } from "./datapath.ts";
import { Etr } from "./etr.ts";
import type { HostSetup } from "./host.ts";
import { Journal } from "./journal.ts";
import { familyOf, LocalLocators, mappingProblem, onHost, type Resolved } from "./locals.ts";
import { MapCache } from "./map_cache.ts";
import { NatClient } from "./nat.ts";
import { linuxPlatform, type Platform } from "./platform.ts";
import { preflight, type PreflightFinding } from "./preflight.ts";
import { Prober } from "./probing.ts";
import { Registration } from "./registration.ts";
import { applyPeers } from "./peers.ts";
import { Resolver } from "./resolution.ts";
import { Subscriber } from "./subscription.ts";
import { RouteSetup } from "./routing.ts";
import { RtrRelay } from "./rtr_relay.ts";
import { Smr } from "./smr.ts";
import { databaseInfo, databaseView, rlocStatus } from "./views.ts";
import { dataplaneSeries, METRICS } from "../../core/metrics.ts";

/** How often the data plane's counters are checked for new series. */
const DP_COUNTER_SCAN_MS = 5_000;

/** The parts that exist once the control socket is bound. */
interface Parts {
  readonly cp: ControlPlane;
  readonly data: DataPath;
  readonly cache: MapCache;
  readonly resolver: Resolver;
  readonly prober: Prober;
  readonly smr: Smr;
  readonly registration: Registration | undefined;
  readonly nat: NatClient | undefined;
}

class TunnelRouter implements TunnelRouterHandle {
  readonly mode: TunnelRouterMode;
  readonly xtrId: bigint;
  preflight: readonly PreflightFinding[] = [];

  readonly #spec: TunnelRouterSpec;
  readonly #env: Env;
  readonly #options: TunnelRouterOptions;
  readonly #platform: Platform;
  readonly #ownsPlatform: boolean;
  readonly #journal: Journal;
  readonly #host: HostSetup;
  readonly #locals: LocalLocators;
  readonly #abort = new AbortController();
  #parts: Parts | undefined;
  #rlocCheck: Promise<void> = Promise.resolve();
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  readonly #syncTimers = new Set<ReturnType<typeof setTimeout>>();
  #eventTimer: ReturnType<typeof setTimeout> | undefined;
  #eventsDone: Promise<void> = Promise.resolve();
  readonly #dpCounterKeys = new Set<string>();
  #closing: Promise<void> | undefined;

  constructor(
    spec: TunnelRouterSpec,
    config: Config,
    deps: RoleDeps,
    options: TunnelRouterOptions,
  ) {
    this.mode = spec.mode;
    this.#spec = spec;
    this.#options = options;
    this.xtrId = options.xtrId ?? randomXtrId();
    this.#env = {
      config,
      log: deps.logger,
      counters: deps.counters,
      now: deps.now,
      nonce: options.nonce ?? randomNonce,
      peerPort: options.peerPort ?? (() => 4342),
      timing: { ...defaultTiming(config), ...options.timing },
      signal: this.#abort.signal,
    };
    this.#ownsPlatform = options.platform === undefined;
    this.#platform = options.platform ?? linuxPlatform();
    this.#journal = new Journal(deps.logger);
    this.#host = spec.host({
      config,
      platform: this.#platform,
      log: deps.logger,
      journal: this.#journal,
      routing: new RouteSetup(this.#platform.net, this.#journal, deps.logger),
    });
    const database = spec.locals.kind === "database" ? config.databaseMappings : [];
    const ifaces = spec.locals.kind === "rtr-ifaces" ? config.rtrIfaces : undefined;
    this.#locals = new LocalLocators(config, this.#platform, database, ifaces);
  }

  get controlPort(): number {
    return this.#parts?.cp.port ?? 0;
  }

  // -------------------------------------------------------------------------
  // Start

  async start(): Promise<void> {
    const { config, log } = this.#env;
    const locals = this.#locals;
    this.#resolve();
    this.#runPreflight();
    const cp = await ControlPlane.open({
      logger: log,
      counters: this.#env.counters,
      ...(this.#controlAddress() !== undefined ? { address: this.#controlAddress()! } : {}),
      port: config.controlPort,
      rateLimit: config.controlRateLimit,
      now: this.#env.now,
      // recvmmsg/sendmmsg in batches, 8 MiB receive buffer (roles/control_io/socket.ts).
      transport: batchedTransport,
    });
    locals.computeItrRlocs(cp.address);
    this.#parts = this.#assemble(cp);
    const { data, cache, registration, nat } = this.#parts;
    this.#host.setup(locals.mappings.map((m) => m.config));
    this.#host.sync(locals.rlocs);
    log.info("host-configured", { changes: this.#journal.size });
    data.setLocal(locals.mappings.map((m) => m.prefix));
    await data.open();
    cache.installStatic();
    nat?.start(); // before the first Map-Registers: they wait for its first answer
    registration?.start();
    // Routines.
    const t = this.#env.timing;
    const { resolver, prober } = this.#parts;
    this.#timers.push(setInterval(() => {
      if (this.#abort.signal.aborted) return;
      cache.expiredSweep();
      resolver.expiredSweep();
    }, t.sweepMs));
    if (t.probeIntervalMs > 0) {
      this.#timers.push(setInterval(() => prober.expiredRound(), t.probeIntervalMs));
    }
    this.#timers.push(setInterval(() => this.#host.sync(locals.rlocs), t.routeSyncMs));
    this.#timers.push(setInterval(() => this.#scanDataPlaneCounters(), DP_COUNTER_SCAN_MS));
    this.#eventsDone = this.#routineEvents();
    const tuns = this.#host.describe();
    log.info("tunnel-router-up", {
      mode: this.mode,
      control: `${cp.address ?? "*"}:${cp.port}`,
      dataPort: config.dataPort,
      encapsulation: config.encapsulation,
      tun: tuns.names.join(",") || undefined,
      mappings: locals.mappings.length,
      rlocs: [...locals.ownIps].join(","),
      xtrId: this.xtrId,
    });
  }

  /** Builds the parts around the bound control socket and wires them together. */
  #assemble(cp: ControlPlane): Parts {
    const env = this.#env;
    const spec = this.#spec;
    const locals = this.#locals;
    const opts = this.#options;
    // Parts refer to parts built after them only through closures called later.
    let nat: NatClient | undefined;
    const data = new DataPath(env, this.#platform, opts.startDataPlane ?? DataPlane.start, {
      mode: spec.dataPlane,
      host: this.#host,
      bind: (family) => spec.bindToRloc ? locals.firstOnHost(family) : undefined,
      batch: opts.batch ?? 64,
      pollMs: opts.pollMs ?? 10,
      ...(spec.nat === "relay" ? { natSourcePort: cp.port } : {}),
    }, {
      onMiss: (iid, dst, src) => resolver.miss(iid, dst, src),
      onPeer: (rloc, iid, srcEid) => smr.peer(rloc, iid, srcEid),
      onControl: (bytes, address, port, inIpUdp) =>
        this.#dataPortControl(cp, bytes, { address, port }, inIpUdp === true),
      onStopped: (error) => {
        if (!env.signal.aborted) env.log.error("dataplane-stopped", { error: error ?? "stopped" });
      },
    });
    const cache: MapCache = new MapCache(env, {
      data,
      hostIps: () => locals.hostIps,
      locatorUp: (ip): boolean => prober.isUp(ip),
      locatorUsed: (ip): void => prober.used(ip),
      natRtrs: () => nat?.rtrs(),
      // Explicit locator paths (elp.ts): a hop with no route is unreachable; L hops are resolved.
      hasRoute: (ip) => this.#platform.routeSource(ip) !== undefined,
      resolveEid: (eid) => resolver.resolve(eid, undefined, false),
    });
    // Publish/subscribe (RFC 9437): Map-Requests subscribe, publications go to the map-cache.
    const subscriber = new Subscriber(env, cp, cache, {
      xtrId: this.xtrId,
      siteId: opts.siteId ?? 0n,
    });
    const resolver = new Resolver(env, cp, cache, locals, subscriber);
    const canSend = (ip: string) => resolver.canSend(ip);
    const prober = new Prober(env, cp, locals, cache, {
      setLocator: (address, up) => data.setLocator(address, up),
      canSend,
    });
    const smr = new Smr(env, cp, locals, cache, resolver, () => nat?.behind() === true);
    new Etr(env, cp, locals, {
      probeAnyEid: spec.probeAnyEid,
      canSend,
      smr: (r, m) => smr.received(r, m),
    });
    let registration: Registration | undefined;
    if (spec.locals.kind === "database") {
      registration = new Registration(env, cp, locals, {
        xtrId: this.xtrId,
        siteId: opts.siteId ?? 0n,
        mobileNode: spec.locals.mobileNode,
        publication: (r, m) => subscriber.publication(r, m),
      });
      if (spec.nat === "client" && env.config.natTraversalSupport) {
        const reg = registration;
        nat = new NatClient(env, cp, data, locals, cache, {
          registerAll: () => reg.registerAll(),
          registerStalled: () => reg.registerStalled(),
        });
        registration.useNat(nat);
      }
    }
    if (spec.nat === "relay") new RtrRelay(env, cp, cache);
    return { cp, data, cache, resolver, prober, smr, registration, nat };
  }

  /**
   * A control message the data plane handed up from the data port (NAT
   * traversal). A Data-Map-Notify (`inIpUdp`: an RTR's LISP data packet
   * whose inner IP/UDP packet carries a Map-Notify to our private RLOC) is
   * dispatched as if that inner packet had reached the control port.
   */
  #dataPortControl(cp: ControlPlane, bytes: Uint8Array, from: Peer, inIpUdp: boolean): void {
    if (this.#abort.signal.aborted) return;
    let message = bytes;
    let source = from;
    if (inIpUdp) {
      try {
        const p = parseIpUdp(bytes);
        message = p.payload;
        source = { address: p.ip.src, port: p.udp.srcPort };
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
        this.#env.counters.inc(METRICS.trDataPortControl, { type: "malformed" });
        return;
      }
    }
    const result = cp.receive(message, source, "data");
    const type = result === "map-notify" || result === "info-reply" || result === "malformed"
      ? result
      : result === "map-register"
      ? undefined
      : "ignored";
    if (type !== undefined) this.#env.counters.inc(METRICS.trDataPortControl, { type });
  }

  #runPreflight(): void {
    const config = this.#env.config;
    const families = new Set(
      this.#spec.locals.kind === "rtr-ifaces"
        ? config.rtrIfaces.map((f) => f.ipVersion === 4 ? "ipv4" as const : "ipv6" as const)
        : this.#locals.mappings.map((m) =>
          m.prefix.family === "ipv6" ? "ipv6" as const : "ipv4" as const
        ),
    );
    const ifaces = new Set<string>();
    for (const l of this.#locals.all()) if (l.iface) ifaces.add(l.iface);
    for (const m of config.databaseMappings) for (const f of m.rlocIfaces) ifaces.add(f.interface);
    for (const f of config.rtrIfaces) ifaces.add(f.iface);
    this.preflight = preflight((p) => this.#platform.readSysctl(p), {
      forwarding: this.#spec.forwarding,
      families,
      rlocIfaces: [...ifaces],
    });
    for (const f of this.preflight) {
      this.#env.log.warn("preflight", {
        key: f.key,
        value: f.value,
        want: f.want,
        fix: f.fix,
        why: f.why,
      });
    }
  }

  /**
   * Where the control socket binds: `control-address`, else the first
   * address of `control-iface`, else (bound to its RLOC: a mobile node) its
   * first RLOC of the first map-resolver's family; else the wildcard.
   */
  #controlAddress(): string | undefined {
    const c = this.#env.config;
    if (c.controlAddress !== undefined) return c.controlAddress;
    if (c.controlIface !== undefined) {
      const host = this.#locals.snapshot();
      const a = host.ifaceAddress(c.controlIface, "ipv4", c.ipv6Scope) ??
        host.ifaceAddress(c.controlIface, "ipv6", c.ipv6Scope);
      if (a !== undefined) return a.ip;
      this.#env.log.warn("control-iface-without-address", { iface: c.controlIface });
    }
    if (this.#spec.bindToRloc) {
      // Bound to the RLOC, Map-Registers and probes escape the /1 routes of the TUN.
      const mr = c.mapResolvers[0];
      const want = mr !== undefined ? familyOf(mr) : "ipv4";
      const ips = this.#locals.all().filter(onHost).map((l) => l.ip!);
      return ips.find((ip) => familyOf(ip) === want) ?? ips[0];
    }
    return undefined;
  }

  #scanDataPlaneCounters(): void {
    const data = this.#parts?.data;
    if (data === undefined) return;
    for (const k of Object.keys(data.counters())) {
      if (this.#dpCounterKeys.has(k)) continue;
      this.#dpCounterKeys.add(k);
      const { metric, labels } = dataplaneSeries(k);
      this.#env.counters.series(metric, () => this.#parts?.data.counters()[k] ?? 0, labels);
    }
  }

  // -------------------------------------------------------------------------
  // Interface changes

  async #routineEvents(): Promise<void> {
    const signal = this.#abort.signal;
    try {
      for await (const e of this.#platform.events(signal)) {
        if (signal.aborted) break;
        this.#netlinkEvent(e);
      }
    } catch (e) {
      if (!signal.aborted) this.#env.log.error("netlink-events-failed", { error: errText(e) });
    }
  }

  #netlinkEvent(e: NetlinkEvent): void {
    const log = this.#env.log;
    if (log.enabled("debug")) {
      const what = e.kind === "link"
        ? `${e.change} link ${e.link.name} up=${e.link.up} running=${e.link.running}`
        : e.kind === "address"
        ? `${e.change} address ${e.address.address} index ${e.address.index}`
        : "overflow";
      log.debug("netlink-event", { what });
    }
    if (this.#eventTimer !== undefined) clearTimeout(this.#eventTimer);
    this.#eventTimer = setTimeout(() => {
      this.#eventTimer = undefined;
      this.#rlocCheck = this.#rlocCheck.then(() => this.#expiredRlocCheck());
    }, this.#env.timing.eventDebounceMs);
  }

  /** Timer: locators are resolved again after netlink events (one run at a time). */
  async #expiredRlocCheck(): Promise<void> {
    const parts = this.#parts;
    if (this.#abort.signal.aborted || parts === undefined) return;
    const log = this.#env.log;
    let resolved;
    try {
      resolved = this.#resolve();
    } catch (e) {
      log.error("rloc-resolution-failed", { error: errText(e) });
      return;
    }
    this.#locals.computeItrRlocs(parts.cp.address);
    const { changed, ownChanged } = resolved;
    const moved = changed.length > 0 || ownChanged;
    // When the locators moved, the routing waits for the Map-Registers (below).
    if (!moved) this.#syncRouting();
    // Routes through a link that just came up are re-added by others a
    // moment later: check the per-RLOC tables again shortly.
    for (const ms of [1_000, 3_000]) {
      const t = setTimeout(() => {
        this.#syncTimers.delete(t);
        this.#syncRouting();
      }, ms);
      this.#syncTimers.add(t);
    }
    if (!moved) return;
    // The control socket first: the Map-Registers and SMRs leave from the new
    // RLOC before the data plane's Workers restart (a publication or an SMR
    // then reaches correspondents while they do), then the data sockets.
    await this.#rebindControl();
    if (this.#abort.signal.aborted) return;
    this.#env.counters.inc(METRICS.trRlocChanges);
    for (const m of changed) {
      log.info("rlocs-changed", {
        prefix: m.text,
        rlocs: m.locators.map((l) => addressToString(l.address)).join(",") || "none",
      });
    }
    if (ownChanged) {
      log.info("rlocs-changed", {
        prefix: "rtr",
        rlocs: this.#locals.own.map((l) => addressToString(l.address)).join(",") || "none",
      });
    }
    parts.registration?.registerNow(changed);
    if (changed.length > 0) parts.smr.send(changed);
    this.#syncRouting();
    await this.#rebindData();
  }

  /** Resolves the local locators again; ELP entries are pushed again if the host's addresses moved. */
  #resolve(): Resolved {
    const resolved = this.#locals.resolve();
    if (resolved.hostMoved) this.#parts?.cache.pushElp(); // our place on an explicit locator path
    return resolved;
  }

  #syncRouting(): void {
    if (!this.#abort.signal.aborted) this.#host.sync(this.#locals.rlocs);
  }

  /**
   * A router bound to its RLOC whose RLOC moved binds again: the control
   * socket (unless `control-address`/`control-iface` fix it) and the data
   * sockets, the new Worker given the whole map-cache again.
   */
  async #rebind(): Promise<void> {
    await this.#rebindControl();
    await this.#rebindData();
  }

  /** The control socket half of {@link #rebind}. */
  async #rebindControl(): Promise<void> {
    const parts = this.#parts;
    if (!this.#spec.bindToRloc || parts === undefined) return;
    const cp = parts.cp;
    const c = this.#env.config;
    const log = this.#env.log;
    if (c.controlAddress === undefined && c.controlIface === undefined) {
      const want = this.#controlAddress();
      if (want !== undefined && want !== cp.address) {
        try {
          await cp.rebind(want);
          log.info("control-rebound", { address: want, port: cp.port });
        } catch (e) {
          log.warn("control-rebind-failed", { address: want, error: errText(e) });
        }
        this.#locals.computeItrRlocs(cp.address);
      }
    }
  }

  /** The data sockets half of {@link #rebind}: the new Workers get the whole map-cache. */
  async #rebindData(): Promise<void> {
    const parts = this.#parts;
    if (!this.#spec.bindToRloc || parts === undefined) return;
    if (await parts.data.rebind()) parts.cache.pushAll();
  }

  // -------------------------------------------------------------------------
  // Runtime edits (the API)

  #addStaticMapping(s: StaticMapCacheEntry): void {
    const cache = this.#parts?.cache;
    if (this.#abort.signal.aborted || cache === undefined) {
      throw new SourceError(503, "the router is stopping");
    }
    const bad = mappingProblem(s, this.#env.config);
    if (bad !== undefined) throw new SourceError(400, bad.reason, bad.field);
    const e = cache.staticEntry(s);
    if (e.locators.length === 0) {
      throw new SourceError(400, "no locator: unknown explicit-locator-path", "rloc-address");
    }
    if (this.#locals.table.get(e.prefix) !== undefined) {
      throw new SourceError(409, `${formatPrefix(e.prefix)} is a local EID prefix (database)`);
    }
    cache.install(e);
    this.#env.log.info("static-mapping-added", {
      prefix: formatPrefix(e.prefix),
      rlocs: e.locators.map((l) => addressToString(l.address)).join(","),
    });
  }

  #removeStaticMapping(p: ConfigPrefix, iid: number): boolean {
    const cache = this.#parts?.cache;
    const prefix = prefixFromConfig(p, iid);
    if (cache?.get(prefix)?.static !== true) return false;
    cache.remove(prefix);
    this.#env.log.info("static-mapping-removed", { prefix: formatPrefix(prefix) });
    return true;
  }

  /** Runs a database edit after any locator check in progress, one at a time. */
  #edit<T>(work: () => Promise<T>): Promise<T> {
    if (this.#abort.signal.aborted || this.#closing !== undefined) {
      return Promise.reject(new SourceError(503, "the router is stopping"));
    }
    const run = this.#rlocCheck.then(work);
    this.#rlocCheck = run.then(() => {}, () => {});
    return run;
  }

  /** After the set of local locators changed: ITR-RLOCs, per-RLOC tables, a rebind. */
  async #locatorsChanged(): Promise<void> {
    const parts = this.#parts!;
    this.#locals.computeItrRlocs(parts.cp.address);
    this.#syncRouting();
    await this.#rebind();
  }

  async #addDatabaseMapping(m: DatabaseMapping): Promise<void> {
    const parts = this.#parts;
    if (this.#abort.signal.aborted || parts === undefined) {
      throw new SourceError(503, "the router is stopping");
    }
    // Every check that can refuse the edit comes before the host or our state is touched.
    const bad = mappingProblem(m, this.#env.config);
    if (bad !== undefined) throw new SourceError(400, bad.reason, bad.field);
    // Then the mode's routing for the prefix: if the host refuses, nothing changed here.
    this.#host.routeEid(m);
    const { mapping, added } = this.#locals.add(m);
    const { changed } = this.#resolve();
    parts.data.setLocal(this.#locals.mappings.map((x) => x.prefix));
    await this.#locatorsChanged();
    if (this.#abort.signal.aborted) return;
    if (added) parts.registration?.add(mapping);
    parts.registration?.registerNow(added ? [mapping, ...changed] : [...changed, mapping]);
    const smrs = changed.filter((x) => x !== mapping || !added);
    if (smrs.length > 0) parts.smr.send(smrs);
    this.#env.log.info(added ? "database-mapping-added" : "database-mapping-replaced", {
      prefix: mapping.text,
      rlocs: mapping.locators.map((l) => addressToString(l.address)).join(",") || "none",
    });
  }

  async #removeDatabaseMapping(p: ConfigPrefix, iid: number): Promise<boolean> {
    const parts = this.#parts;
    const mapping = this.#locals.remove(prefixFromConfig(p, iid));
    if (mapping === undefined || parts === undefined) return false;
    parts.registration?.remove(mapping);
    parts.data.setLocal(this.#locals.mappings.map((x) => x.prefix));
    this.#host.unrouteEid(mapping.config, this.#locals.mappings.map((x) => x.config));
    this.#resolve();
    await this.#locatorsChanged();
    this.#env.log.info("database-mapping-removed", { prefix: mapping.text });
    return true;
  }

  // -------------------------------------------------------------------------
  // Views

  database(): DatabaseInfo[] {
    return databaseInfo(this.#locals);
  }

  mapCache(): MapCacheInfo[] {
    return this.#parts?.cache.info() ?? [];
  }

  registrations(): RegistrationInfo[] {
    return this.#parts?.registration?.info() ?? [];
  }

  probes(): ProbeInfo[] {
    return this.#parts?.prober.info() ?? [];
  }

  hostChanges(): string[] {
    return this.#journal.list();
  }

  #details(): Record<string, string | number | boolean | null> {
    const c = this.#env.config;
    const parts = this.#parts;
    const tuns = this.#host.describe();
    return {
      mode: this.mode,
      "control address": `${parts?.cp.address ?? "*"} port ${this.controlPort}`,
      "data port": c.dataPort,
      encapsulation: c.encapsulation,
      ...(tuns.tun !== undefined ? { tun: tuns.tun } : {}),
      ...(tuns.instanceTuns !== undefined ? { "instance TUNs": tuns.instanceTuns } : {}),
      ...(c.destinationPrefixes.length > 0
        ? { "destination prefixes": c.destinationPrefixes.map(configPrefixText).join(", ") }
        : {}),
      "xTR-ID": this.xtrId.toString(16).padStart(32, "0"),
      "map-resolvers": c.mapResolvers.join(", ") || null,
      "map-cache entries": parts?.cache.size ?? 0,
      ...(this.#spec.locals.kind === "database"
        ? { "database mappings": this.#locals.mappings.length }
        : {}),
      "remote RLOCs probed": parts?.prober.size ?? 0,
      "remote RLOCs down": parts?.prober.down ?? 0,
    };
  }

  statusSource(): StatusSource {
    const source: StatusSource = {
      status: () => ({
        rlocs: rlocStatus(this.#env, this.#locals),
        ...(this.#parts?.registration !== undefined
          ? { mapServers: this.#parts.registration.mapServers() }
          : {}),
        remoteRlocs: this.#parts?.prober.remoteRlocs() ?? [],
        details: this.#details(),
      }),
      mapCache: (query) => this.#parts?.cache.view(query.iid) ?? [],
      database: () => this.#spec.locals.kind === "database" ? databaseView(this.#locals) : [],
      counters: () => {
        this.#scanDataPlaneCounters();
        return this.#env.counters.snapshot();
      },
      addStaticMapping: (entry) => this.#addStaticMapping(entry),
      removeStaticMapping: (p, iid) => this.#removeStaticMapping(p, iid),
      setPeers: (peers) => {
        const parts = this.#parts;
        if (parts === undefined || this.#abort.signal.aborted) {
          throw new SourceError(503, "the router is stopping");
        }
        const reg = parts.registration;
        return applyPeers(this.#env, peers, {
          ...(reg !== undefined ? { mapServersChanged: () => reg.mapServersChanged() } : {}),
          setPetrs: (v4, v6) => parts.data.setPetrs(v4, v6),
        });
      },
    };
    if (this.#spec.locals.kind !== "database") return source;
    return {
      ...source,
      addDatabaseMapping: (m) => this.#edit(() => this.#addDatabaseMapping(m)),
      removeDatabaseMapping: (p, iid) => this.#edit(() => this.#removeDatabaseMapping(p, iid)),
    };
  }

  // -------------------------------------------------------------------------
  // Shutdown

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const log = this.#env.log;
    const parts = this.#parts;
    // Withdraw first, while the control socket and the routes are there.
    if (!this.#abort.signal.aborted) parts?.registration?.withdrawAll();
    this.#abort.abort();
    for (const t of this.#timers) clearInterval(t);
    for (const t of this.#syncTimers) clearTimeout(t);
    this.#syncTimers.clear();
    if (this.#eventTimer !== undefined) clearTimeout(this.#eventTimer);
    parts?.registration?.close();
    parts?.nat?.close();
    await this.#eventsDone;
    await this.#rlocCheck;
    await parts?.data.close();
    const changes = this.#journal.size;
    this.#journal.undoAll();
    if (changes > 0) log.info("host-restored", { changes });
    // Let the withdrawals leave before the socket closes.
    if (parts?.registration?.any === true) await new Promise((r) => setTimeout(r, 20));
    // Awaited: its receive loop has stopped and its sockets are closed when this resolves.
    await parts?.cp.close();
    if (this.#ownsPlatform) this.#platform.close();
  }
}

/**
 * Starts a tunnel router of `spec`: resolves the local locators, runs the
 * preflight, binds the control socket, sets the host up (TUN, rules,
 * routes, per-RLOC tables), starts the data plane and the routines
 * (registration, expiry, probing, netlink events). If any step fails,
 * what was set up is undone and the error thrown.
 */
export async function startTunnelRouter(
  spec: TunnelRouterSpec,
  config: Config,
  deps: RoleDeps,
  options: TunnelRouterOptions = {},
): Promise<TunnelRouterHandle> {
  const tr = new TunnelRouter(spec, config, deps, options);
  try {
    await tr.start();
  } catch (e) {
    await tr.close().catch(() => {});
    throw e;
  }
  return tr;
}
