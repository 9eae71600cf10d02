/**
 * Registration of the local database with the map-servers (RFC 9301 §5.6,
 * §8.2; like OOR, one mapping per message).
 *
 * Flow: for every mapping and every `[[map-server]]` with a key, a
 * {@link RegState}; its timer sends a Map-Register (M bit, the I bit with
 * the xTR-ID of this run and site-ID 0, the P bit from `proxy-reply`, the
 * m bit for a mobile node, the HMAC of `key-type`/`key`) → the Map-Notify
 * ({@link Registration}'s `map-notify` handler, on the control port or,
 * from an RTR, on the data port) counts when its nonce is one we sent (up
 * to a minute ago) and its authentication is right under that
 * map-server's key. Refreshed every 60 s once notified; until then
 * retried after 1 s, doubling up to 60 s.
 *
 * When a mapping's locators change it is registered again at once; a
 * mapping left with no locator is withdrawn (record TTL 0); shutdown
 * withdraws every mapping. Behind a NAT (nat.ts) the Map-Registers go
 * through the RTRs instead, and registration waits for the first
 * Info-Reply to know which way.
 *
 * State per map-server ({@link registrationState}, the gauge
 * `oor_tr_map_server_registration_state` and the status page): registered
 * when every mapping is acknowledged; failing when a Map-Register has had
 * no valid Map-Notify for {@link FAILING_AFTER_RETRIES} retry periods (10 s
 * by default), a refresh included; registering before either. Each
 * Map-Register that got no valid Map-Notify before the next one went, and
 * each Map-Notify that failed authentication, counts in
 * `oor_tr_map_register_failures_total{map_server, reason}`. A map-server
 * that becomes failing is logged (`registration-failing`, with the likely
 * cause) once and then every 5 minutes while it lasts, and
 * `registration-recovered` when it ends (registration_alarm.ts).
 *
 * @module
 */

import { addressToString } from "../../wire/address.ts";
import { authStatus, HmacKey } from "../../wire/auth.ts";
import type { EidRecord } from "../../wire/eid_record.ts";
import type { MapNotify } from "../../wire/map_notify.ts";
import { emitSignedMapRegister, type MapRegister } from "../../wire/map_register.ts";
import type { MapServer } from "../../config/mod.ts";
import { type ControlPlane, formatPeer, type Peer, type Received } from "../../core/control.ts";
import type { MapServerStatus, RegistrationState } from "../../core/status.ts";
import { type Env, errText, type RegistrationInfo } from "./context.ts";
import type { LocalLocators, LocalMapping } from "./locals.ts";
import { METRICS } from "../../core/metrics.ts";
import { type ProbeResult, RegistrationAlarm } from "./registration_alarm.ts";

/** Map-Register nonces remembered for their Map-Notify. */
export const REGISTER_NONCE_MS = 60_000;
/** Retry periods (`registerRetryMs`) a Map-Register may go unanswered before the state is failing. */
export const FAILING_AFTER_RETRIES = 10;
/** The states of {@link registrationState}, best first. */
export const REGISTRATION_STATES: readonly RegistrationState[] = [
  "registered",
  "registering",
  "failing",
];

/** The registration of one mapping with one map-server. */
export interface RegState {
  readonly ms: MapServer;
  readonly key: HmacKey;
  readonly mapping: LocalMapping;
  readonly peer: Peer;
  notified: boolean;
  attempts: number;
  sent: number;
  lastNotifyAt: number | null;
  /** Last Map-Register (or withdrawal) sent, ms since the epoch. */
  lastSentAt: number | null;
  /** A withdrawal (TTL 0) was sent and nothing registered since. */
  withdrawn: boolean;
  /** The last Map-Register sent has had no valid Map-Notify yet. */
  awaiting: boolean;
  /** The first Map-Register sent since the last valid Map-Notify, ms since the epoch; null: none. */
  unansweredSince: number | null;
  /** Map-Registers sent since the last valid Map-Notify. */
  unanswered: number;
  /** Map-Notifies that failed authentication since the last valid one. */
  authFailures: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * The state of one registration at `now` (see the module notes): failing
 * once a Map-Register has waited `FAILING_AFTER_RETRIES × retryMs` for a
 * valid Map-Notify, else registered when notified, else registering.
 */
export function registrationState(
  s: Pick<RegState, "notified" | "unansweredSince">,
  now: number,
  retryMs: number,
): RegistrationState {
  if (s.unansweredSince !== null && now - s.unansweredSince >= FAILING_AFTER_RETRIES * retryMs) {
    return "failing";
  }
  return s.notified ? "registered" : "registering";
}

/** How registration goes through a NAT (nat.ts), when the router does NAT traversal. */
export interface NatRegistrar {
  /** Whether registration waits for the first Info-Reply (or for Info-Requests to fail). */
  waiting(): boolean;
  /** Whether the router is behind a NAT now. */
  behind(): boolean;
  /** Asks the map-servers again now (the RTR or the NAT may be gone). */
  rediscover(): void;
  /**
   * Sends `reg` (unsigned: signed there, with `s`'s key) through the RTRs;
   * returns the nonces it went with, or undefined when it cannot be sent now.
   */
  send(s: RegState, reg: MapRegister, withdraw: boolean): bigint[] | undefined;
  /** Fields for the `registered` log line (the RTRs and the global RLOC). */
  describe(): Record<string, string>;
}

/** The registrations of the database with every map-server (see the module notes). */
export class Registration {
  readonly #env: Env;
  readonly #cp: ControlPlane;
  readonly #locals: LocalLocators;
  readonly #xtrId: bigint;
  readonly #siteId: bigint;
  readonly #mobileNode: boolean;
  readonly #publication: ((r: Received, m: MapNotify) => boolean) | undefined;
  readonly #states: RegState[] = [];
  readonly #nonces = new Map<bigint, { state: RegState; at: number }>();
  /** Failures (no valid Map-Notify) per map-server address, since start. */
  readonly #failures = new Map<string, number>();
  #nat: NatRegistrar | undefined;
  readonly #alarm: RegistrationAlarm;
  #started = false;

  /**
   * Registers the `map-notify` handler on `cp`. `probe`: how a failing
   * map-server is checked locally (registration_alarm.ts; null: not at all).
   */
  constructor(
    env: Env,
    cp: ControlPlane,
    locals: LocalLocators,
    opts: {
      readonly xtrId: bigint;
      readonly siteId: bigint;
      readonly mobileNode: boolean;
      readonly probe?: ((address: string, port: number) => Promise<ProbeResult>) | null;
      /** Sees a Map-Notify no Map-Register of ours waits for: true when it took it (subscription.ts). */
      readonly publication?: (r: Received, m: MapNotify) => boolean;
    },
  ) {
    this.#env = env;
    this.#cp = cp;
    this.#locals = locals;
    this.#xtrId = opts.xtrId;
    this.#siteId = opts.siteId;
    this.#mobileNode = opts.mobileNode;
    this.#publication = opts.publication;
    this.#alarm = new RegistrationAlarm({
      log: env.log,
      now: env.now,
      signal: env.signal,
      ...(opts.probe !== undefined ? { probe: opts.probe } : {}),
    });
    cp.on("map-notify", (m, r) => this.#mapNotify(r, m));
    env.counters.gauge(METRICS.trRegistered, () => this.#states.filter((s) => s.notified).length);
    env.counters.family(METRICS.trMapServerState, () => this.#stateSeries());
  }

  /** Sends the Map-Registers through `nat` from now on (NAT traversal). */
  useNat(nat: NatRegistrar): void {
    this.#nat = nat;
  }

  /** Starts registering every mapping of the database. */
  start(): void {
    for (const ms of this.#env.config.mapServers) {
      if (ms.key === undefined) {
        this.#env.log.error("map-server-without-key", { mapServer: ms.address });
      }
    }
    this.#started = true;
    for (const m of this.#locals.mappings) this.add(m);
    for (const s of this.#states) this.#expired(s);
  }

  /** Registration state of `mapping` with every map-server that has a key (not started). */
  add(mapping: LocalMapping): RegState[] {
    const added: RegState[] = [];
    for (const ms of this.#env.config.mapServers) {
      const s = this.#state(mapping, ms);
      if (s !== undefined) added.push(s);
    }
    return added;
  }

  /** A new registration of `mapping` with `ms` (not started); none when `ms` has no key. */
  #state(mapping: LocalMapping, ms: MapServer): RegState | undefined {
    if (ms.key === undefined) return undefined;
    const s: RegState = {
      ms,
      key: new HmacKey(ms.keyType, ms.key),
      mapping,
      peer: { address: ms.address, port: this.#env.peerPort(ms.address) },
      notified: false,
      attempts: 0,
      sent: 0,
      lastNotifyAt: null,
      lastSentAt: null,
      withdrawn: false,
      awaiting: false,
      unansweredSince: null,
      unanswered: 0,
      authFailures: 0,
      timer: undefined,
    };
    this.#states.push(s);
    return s;
  }

  /**
   * After `env.config.mapServers` was replaced (a reload, runner/reload.ts):
   * the registrations with a map-server no longer there, or whose key,
   * key-type, proxy-reply or merge changed, are withdrawn and forgotten;
   * every mapping registers at once with each new or changed one. The ones
   * left as they were go on untouched. Returns what changed, one line per
   * map-server (`"192.0.2.2 added"`).
   */
  mapServersChanged(): string[] {
    const sig = (ms: MapServer) =>
      JSON.stringify([ms.address, ms.keyType, ms.key, ms.proxyReply, ms.merge]);
    const next = new Map(this.#env.config.mapServers.map((ms) => [sig(ms), ms] as const));
    const before = new Map<string, MapServer>();
    for (let i = this.#states.length - 1; i >= 0; i--) {
      const s = this.#states[i]!;
      const k = sig(s.ms);
      before.set(k, s.ms);
      const kept = next.get(k);
      if (kept !== undefined) {
        (s as { ms: MapServer }).ms = kept; // the same map-server, as the new config has it
        continue;
      }
      this.#withdraw(s);
      this.#states.splice(i, 1);
      for (const [n, v] of this.#nonces) if (v.state === s) this.#nonces.delete(n);
    }
    const changes: string[] = [];
    const addresses = (m: Map<string, MapServer>) => new Set([...m.values()].map((x) => x.address));
    const oldAddresses = addresses(before);
    for (const [k, ms] of before) {
      if (next.has(k)) continue;
      // A map-server replaced at the same address keeps its failure: its recovery is logged.
      if ([...next.values()].some((x) => x.address === ms.address)) continue;
      this.#alarm.forget(ms.address);
      changes.push(`${ms.address} removed`);
    }
    for (const [k, ms] of next) {
      if (before.has(k)) continue;
      if (ms.key === undefined) {
        this.#env.log.error("map-server-without-key", { mapServer: ms.address });
        continue;
      }
      changes.push(`${ms.address} ${oldAddresses.has(ms.address) ? "changed" : "added"}`);
      for (const m of this.#locals.mappings) {
        const s = this.#state(m, ms);
        if (s !== undefined && this.#started) this.#expired(s);
      }
    }
    return changes;
  }

  /** Withdraws `mapping` from every map-server and forgets it. */
  remove(mapping: LocalMapping): void {
    for (let i = this.#states.length - 1; i >= 0; i--) {
      const s = this.#states[i]!;
      if (s.mapping !== mapping) continue;
      this.#withdraw(s);
      this.#states.splice(i, 1);
    }
    for (const [n, v] of this.#nonces) if (v.state.mapping === mapping) this.#nonces.delete(n);
  }

  /** Registers `mappings` again at once (their locators changed). */
  registerNow(mappings: readonly LocalMapping[]): void {
    for (const s of this.#states) if (mappings.includes(s.mapping)) this.#now(s);
  }

  /** Registers every mapping again at once (the way to the map-servers changed). */
  registerAll(): void {
    for (const s of this.#states) this.#now(s);
  }

  /** Registers at once what is neither notified nor waiting for a timer. */
  registerStalled(): void {
    for (const s of this.#states) if (s.timer === undefined && !s.notified) this.#now(s);
  }

  #now(s: RegState): void {
    if (s.timer !== undefined) clearTimeout(s.timer);
    s.notified = false;
    s.attempts = 0;
    this.#expired(s);
  }

  /** Timer: sends (or, with no locator, withdraws) a mapping's Map-Register and schedules the next. */
  #expired(s: RegState): void {
    s.timer = undefined;
    if (this.#env.signal.aborted) return;
    const nat = this.#nat;
    if (nat?.waiting()) return; // registered once the first Info-Reply (or its failure) says how
    if (nat?.behind() && !s.notified && s.attempts >= 2) nat.rediscover(); // RTR or NAT gone?
    if (s.mapping.locators.length === 0) {
      if (!s.withdrawn && s.sent > 0) this.#send(s, true);
      this.#env.log.limited(
        `no-locators ${s.mapping.text}`,
        60_000,
        "warn",
        "mapping-without-locators",
        { prefix: s.mapping.text },
      );
      return; // registered again when a locator appears
    }
    this.#send(s, false);
    this.#schedule(s);
    this.#checkAlarm(s.ms);
  }

  #schedule(s: RegState): void {
    if (s.timer !== undefined) clearTimeout(s.timer);
    const t = this.#env.timing;
    const delay = s.notified
      ? t.registerIntervalMs
      : Math.min(t.registerIntervalMs, t.registerRetryMs * 2 ** Math.min(s.attempts, 20));
    if (!s.notified) s.attempts++;
    s.timer = setTimeout(() => this.#expired(s), delay);
  }

  /**
   * The Map-Register of `s` with `record` (unsigned). The xTR-ID goes with
   * it only through an RTR or where `merge` asks for it: OOR 1.3.0's
   * map-server takes any Map-Register with the I bit for one an RTR relayed.
   */
  #message(
    s: RegState,
    record: EidRecord,
    withdraw: boolean,
    nonce: bigint,
    viaRtr: boolean,
  ): MapRegister {
    const common = {
      proxyReply: s.ms.proxyReply,
      securityCapable: false,
      rtr: false,
      eidNotify: false,
      useTtlForTimeout: false,
      mergeRequest: false,
      mobileNode: this.#mobileNode,
      wantMapNotify: !withdraw,
      nonce,
      keyId: s.key.keyId,
      authData: new Uint8Array(0),
      records: [record],
    };
    return viaRtr || s.ms.merge
      ? { ...common, xtrIdPresent: true, xtrId: this.#xtrId, siteId: this.#siteId }
      : { ...common, xtrIdPresent: false };
  }

  #send(s: RegState, withdraw: boolean): void {
    const record = this.#locals.record(s.mapping, withdraw ? 0 : s.mapping.config.ttl);
    const nat = this.#nat;
    const reg = this.#message(s, record, withdraw, this.#env.nonce(), nat?.behind() === true);
    const now = this.#env.now();
    let nonces: bigint[] | undefined;
    if (nat?.behind()) {
      nonces = nat.send(s, reg, withdraw);
      if (nonces === undefined) return;
    } else {
      this.#cp.send(emitSignedMapRegister(reg, s.key), s.peer);
      nonces = [reg.nonce];
    }
    if (s.awaiting && now - (s.lastSentAt ?? now) >= this.#env.timing.registerRetryMs) {
      this.#failed(s, "no-map-notify");
    }
    s.awaiting = !withdraw;
    s.unansweredSince = withdraw ? null : s.unansweredSince ?? now;
    if (!withdraw) s.unanswered++;
    s.sent++;
    s.lastSentAt = now;
    this.#env.counters.inc(METRICS.trMapRegistersSent, {
      kind: withdraw ? "withdraw" : "register",
    });
    s.withdrawn = withdraw;
    if (withdraw) {
      this.#env.log.info("registration-withdrawn", {
        prefix: s.mapping.text,
        mapServer: s.ms.address,
        ...(nat?.behind() ? { via: nat.describe().via } : {}),
      });
    } else {
      for (const n of nonces) this.#nonces.set(n, { state: s, at: now });
    }
    for (const [n, v] of this.#nonces) {
      if (now - v.at < REGISTER_NONCE_MS) break;
      this.#nonces.delete(n);
    }
  }

  /** Stops the timer of `s` and withdraws it if it was registered. */
  #withdraw(s: RegState): void {
    if (s.timer !== undefined) clearTimeout(s.timer);
    s.timer = undefined;
    if (s.sent === 0 || s.withdrawn || s.mapping.locators.length === 0) return;
    try {
      this.#send(s, true);
    } catch (e) {
      this.#env.log.warn("withdraw-failed", { mapServer: s.ms.address, error: errText(e) });
    }
  }

  /** Withdraws every mapping (shutdown, while the control socket and the routes are there). */
  withdrawAll(): void {
    for (const s of this.#states) this.#withdraw(s);
  }

  /** Whether anything was registered (shutdown waits for the withdrawals to leave). */
  get any(): boolean {
    return this.#states.length > 0;
  }

  /** Stops every timer. */
  close(): void {
    for (const s of this.#states) if (s.timer !== undefined) clearTimeout(s.timer);
  }

  #mapNotify(r: Received, m: MapNotify): void {
    const { counters: c, log } = this.#env;
    const pending = this.#nonces.get(m.nonce);
    if (pending === undefined) {
      if (this.#publication?.(r, m) === true) return;
      c.inc(METRICS.trMapNotifies, { result: "unmatched" });
      log.limited(
        `map-notify-unmatched ${r.from.address}`,
        60_000,
        "debug",
        "map-notify-unmatched",
        { peer: formatPeer(r.from), nonce: m.nonce },
      );
      return;
    }
    const s = pending.state;
    // An OOR 1.3.0 RTR passes a Map-Notify on with its R bit still set and
    // the MS-RTR part cut down to a zero Key ID and length: the map-server
    // signed what comes before those 4 bytes.
    const signed = m.rtrAuthPresent && m.rtrKeyId === 0 && m.rtrAuthData?.length === 0
      ? r.bytes.subarray(0, r.bytes.length - 4)
      : r.bytes;
    if (m.keyId !== s.key.keyId || authStatus(signed, s.key) !== "ok") {
      c.inc(METRICS.trMapNotifies, { result: "auth" });
      s.authFailures++;
      this.#failed(s, "auth");
      log.limited(
        `map-notify-auth ${r.from.address}`,
        60_000,
        "warn",
        "map-notify-rejected",
        { peer: formatPeer(r.from), reason: "authentication", mapServer: s.ms.address },
      );
      return;
    }
    this.#nonces.delete(m.nonce);
    c.inc(METRICS.trMapNotifies, { result: "ok" });
    const first = !s.notified;
    s.notified = true;
    s.attempts = 0;
    s.awaiting = false;
    s.unansweredSince = null;
    s.unanswered = 0;
    s.authFailures = 0;
    s.lastNotifyAt = this.#env.now();
    this.#checkAlarm(s.ms);
    if (first) {
      log.info("registered", {
        prefix: s.mapping.text,
        mapServer: s.ms.address,
        rlocs: s.mapping.locators.map((l) => addressToString(l.address)).join(","),
        ...(this.#nat?.behind() ? this.#nat.describe() : {}),
      });
      this.#schedule(s); // from quick retries to the refresh period
    }
  }

  /** Counts a Map-Register of `s` that got no valid Map-Notify. */
  #failed(s: RegState, reason: "no-map-notify" | "auth"): void {
    const ms = s.ms.address;
    this.#failures.set(ms, (this.#failures.get(ms) ?? 0) + 1);
    this.#env.counters.inc(METRICS.trMapRegisterFailures, { map_server: ms, reason });
  }

  /** Tells the alarm how the registrations with `ms` stand (registration_alarm.ts). */
  #checkAlarm(ms: MapServer): void {
    const now = this.#env.now();
    const failing = this.#msState(ms, now) === "failing";
    let since = now;
    let mapRegisters = 0;
    let authFailures = 0;
    let port = 0;
    const prefixes: string[] = [];
    for (const s of this.#states) {
      if (s.ms !== ms) continue;
      port = s.peer.port;
      if (s.unansweredSince !== null) since = Math.min(since, s.unansweredSince);
      mapRegisters += s.unanswered;
      authFailures += s.authFailures;
      if (!s.notified) prefixes.push(s.mapping.text);
    }
    this.#alarm.update(ms.address, {
      failing,
      since,
      mapRegisters,
      prefixes,
      port,
      facts: { keyType: ms.keyType, authFailures, viaRtr: this.#nat?.behind() === true },
    });
  }

  /** The state with `ms`: the worst of its registrations; undefined when none registers with it. */
  #msState(ms: MapServer, now: number): RegistrationState | undefined {
    let worst = -1;
    for (const s of this.#states) {
      if (s.ms !== ms) continue;
      const st = registrationState(s, now, this.#env.timing.registerRetryMs);
      worst = Math.max(worst, REGISTRATION_STATES.indexOf(st));
    }
    return worst < 0 ? undefined : REGISTRATION_STATES[worst];
  }

  /** The series of the state gauge: 1 for each map-server's state, 0 for its other states. */
  *#stateSeries(): Iterable<readonly [{ map_server: string; state: string }, number]> {
    const now = this.#env.now();
    for (const ms of this.#env.config.mapServers) {
      const st = this.#msState(ms, now);
      if (st === undefined) continue;
      for (const x of REGISTRATION_STATES) {
        yield [{ map_server: ms.address, state: x }, x === st ? 1 : 0];
      }
    }
  }

  // -------------------------------------------------------------------------
  // Views

  /** Registration state per mapping and map-server. */
  info(): RegistrationInfo[] {
    return this.#states.map((s) => ({
      mapServer: s.ms.address,
      prefix: s.mapping.text,
      notified: s.notified,
      sent: s.sent,
      lastNotifyAt: s.lastNotifyAt,
    }));
  }

  /** The API's view of each map-server. */
  mapServers(): MapServerStatus[] {
    const latest = (a: number | null, b: number | null) =>
      a === null ? b : b === null ? a : Math.max(a, b);
    return this.#env.config.mapServers.map((ms) => {
      let lastMapNotify: number | null = null;
      let lastMapRegister: number | null = null;
      let regs = 0;
      let notified = 0;
      for (const s of this.#states) {
        if (s.ms !== ms) continue;
        regs++;
        if (s.notified) notified++;
        lastMapNotify = latest(lastMapNotify, s.lastNotifyAt);
        lastMapRegister = latest(lastMapRegister, s.lastSentAt);
      }
      const state = this.#msState(ms, this.#env.now());
      const failure = state === "failing" ? this.#alarm.failure(ms.address) : undefined;
      return {
        address: ms.address,
        lastMapNotify,
        lastMapRegister,
        registered: regs > 0 && notified === regs,
        ...(state !== undefined ? { state } : {}),
        failures: this.#failures.get(ms.address) ?? 0,
        ...(failure !== undefined ? { failingSince: failure.since, cause: failure.cause } : {}),
      };
    });
  }
}
