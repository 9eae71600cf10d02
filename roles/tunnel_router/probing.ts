/**
 * RLOC probing (RFC 9301 §7.1, `[rloc-probing]`).
 *
 * Flow: every `rloc-probe-interval` seconds ({@link Prober.expiredRound})
 * each distinct locator of the map-cache gets a Map-Request with the P
 * bit at its control port, retransmitted `rloc-probe-retries` times
 * `rloc-probe-retries-interval` apart. No reply to any of them marks the
 * RLOC down in every entry of the data plane; a reply marks it up again.
 * A map-cache entry installed with a locator that is down has it probed
 * at once ({@link Prober.used}). Entries of xTRs behind a NAT are not
 * probed: their control port cannot be reached.
 *
 * Of an explicit locator path only the hops with the P bit ahead of this
 * host are probed (elp.ts), never the others; a probed hop that is down
 * makes the path's locator down. Every round, and after every change of
 * a probed RLOC, the map-cache gives the Worker the explicit-locator-path
 * entries whose next hop or state changed ({@link MapCache.pushElp}).
 *
 * @module
 */

import { ipAddress } from "../../wire/address.ts";
import { NO_ADDRESS } from "../../wire/address.ts";
import { isIPv4 } from "../../wire/ip_text.ts";
import { emitMapRequest } from "../../wire/map_request.ts";
import { type ControlPlane, NoReplyError, type Peer } from "../../core/control.ts";
import { type Prefix, prefixEid } from "../../core/prefix.ts";
import type { RemoteRlocStatus } from "../../core/status.ts";
import { type Env, errText, type ProbeInfo } from "./context.ts";
import type { LocalLocators } from "./locals.ts";
import { locatorIp, type MapCache } from "./map_cache.ts";
import { METRICS } from "../../core/metrics.ts";

interface ProbeState {
  readonly address: string;
  eid: Prefix;
  up: boolean;
  inFlight: boolean;
  sent: number;
  answered: number;
  rttMs: number | null;
  /** Last answer, ms since the epoch (env.now). */
  lastAnswerAt: number | null;
}

/** Probes the map-cache's locators and tells the data plane which are down. */
export class Prober {
  readonly #env: Env;
  readonly #cp: ControlPlane;
  readonly #locals: LocalLocators;
  readonly #cache: MapCache;
  readonly #setLocator: (address: string, up: boolean) => void;
  readonly #canSend: (ip: string) => boolean;
  readonly #probes = new Map<string, ProbeState>();

  constructor(
    env: Env,
    cp: ControlPlane,
    locals: LocalLocators,
    cache: MapCache,
    opts: {
      readonly setLocator: (address: string, up: boolean) => void;
      readonly canSend: (ip: string) => boolean;
    },
  ) {
    this.#env = env;
    this.#cp = cp;
    this.#locals = locals;
    this.#cache = cache;
    this.#setLocator = opts.setLocator;
    this.#canSend = opts.canSend;
    env.counters.gauge(METRICS.trLocatorsDown, () => this.down);
    env.counters.family(METRICS.trProbeRtt, () => this.#rtts());
  }

  /** Whether probing has not marked `ip` down. */
  isUp(ip: string): boolean {
    return this.#probes.get(ip)?.up !== false;
  }

  /** RLOCs probed now. */
  get size(): number {
    return this.#probes.size;
  }

  /** RLOCs marked down. */
  get down(): number {
    let n = 0;
    for (const p of this.#probes.values()) if (!p.up) n++;
    return n;
  }

  /** A map-cache entry uses `ip`: probe it now if it is marked down (it may be back). */
  used(ip: string): void {
    const p = this.#probes.get(ip);
    if (p !== undefined && !p.up && !p.inFlight) this.#probe(p);
  }

  /** Timer: probes every distinct locator of the map-cache. */
  expiredRound(): void {
    if (this.#env.signal.aborted) return;
    const wanted = new Map<string, Prefix>();
    const here = this.#locals.hostIps;
    for (const e of this.#cache.entries()) {
      if (e.natPort !== undefined) continue; // behind a NAT: its control port is not reachable
      for (const l of e.locators) {
        if (l.address.kind === "elp") {
          for (const ip of this.#cache.elpProbeTargets(l.address, here)) {
            if (!wanted.has(ip) && this.#canSend(ip)) wanted.set(ip, e.prefix);
          }
          continue;
        }
        const ip = locatorIp(l.address, here);
        if (ip !== undefined && !wanted.has(ip) && this.#canSend(ip)) wanted.set(ip, e.prefix);
      }
    }
    // Routes and L hops' mappings may have changed since the last round.
    this.#cache.pushElp();
    for (const [ip, p] of this.#probes) {
      if (!wanted.has(ip) && !p.inFlight) this.#probes.delete(ip);
    }
    for (const [ip, eid] of wanted) {
      let p = this.#probes.get(ip);
      if (p === undefined) {
        p = {
          address: ip,
          eid,
          up: true,
          inFlight: false,
          sent: 0,
          answered: 0,
          rttMs: null,
          lastAnswerAt: null,
        };
        this.#probes.set(ip, p);
      }
      p.eid = eid;
      if (!p.inFlight) this.#probe(p);
    }
  }

  #probe(p: ProbeState): void {
    if (this.#env.signal.aborted) return;
    const { counters: c, config } = this.#env;
    const cp = this.#cp;
    const nonce = this.#env.nonce();
    const itrRlocs = this.#locals.itrRlocs;
    const own = itrRlocs.filter((a) => isIPv4(a.ip) === isIPv4(p.address));
    const bytes = emitMapRequest({
      authoritative: false,
      probe: true,
      smr: false,
      pitr: false,
      smrInvoked: false,
      localXtr: false,
      dontMapReply: false,
      nonce,
      sourceEid: NO_ADDRESS,
      itrRlocs: own.length > 0 ? own : itrRlocs.length > 0 ? itrRlocs : [ipAddress(p.address)],
      records: [{ maskLen: p.eid.len, eid: prefixEid(p.eid) }],
    });
    const to: Peer = { address: p.address, port: this.#env.peerPort(p.address) };
    let sentAt = 0;
    p.inFlight = true;
    cp.request(
      nonce,
      () => {
        sentAt = performance.now();
        cp.send(bytes, to);
        p.sent++;
        c.inc(METRICS.trProbesSent);
      },
      `RLOC-probe ${p.address}`,
      {
        retries: config.rlocProbing.retries,
        timeoutMs: this.#env.timing.probeRetryMs,
        expect: ["map-reply"],
        signal: this.#env.signal,
      },
    ).then(
      () => {
        p.answered++;
        p.rttMs = Math.round((performance.now() - sentAt) * 10) / 10;
        p.lastAnswerAt = this.#env.now();
        c.inc(METRICS.trProbesAnswered);
        this.#setState(p, true);
      },
      (e) => {
        if (this.#env.signal.aborted) return;
        if (!(e instanceof NoReplyError)) {
          this.#env.log.warn("probe-failed", { rloc: p.address, error: errText(e) });
          return;
        }
        c.inc(METRICS.trProbeTimeouts);
        this.#setState(p, false);
      },
    ).finally(() => p.inFlight = false);
  }

  #setState(p: ProbeState, up: boolean): void {
    if (p.up === up || this.#env.signal.aborted) return;
    p.up = up;
    this.#setLocator(p.address, up);
    this.#cache.pushElp(); // after it: a path's state is the Worker's last word
    this.#env.counters.inc(METRICS.trLocatorChanges, { state: up ? "up" : "down" });
    this.#env.log.info(up ? "locator-up" : "locator-down", {
      rloc: p.address,
      retries: this.#env.config.rlocProbing.retries,
    });
  }

  /** The RTT gauge's series: the last round trip to each RLOC answered so far, seconds. */
  *#rtts(): Iterable<readonly [{ rloc: string }, number]> {
    for (const p of this.#probes.values()) {
      if (p.rttMs !== null) yield [{ rloc: p.address }, p.rttMs / 1000];
    }
  }

  /** The status page's view of the remote RLOCs probed. */
  remoteRlocs(): RemoteRlocStatus[] {
    return [...this.#probes.values()].map((p) => ({
      address: p.address,
      state: p.up ? "up" : "down",
      rttMs: p.rttMs,
      sent: p.sent,
      answered: p.answered,
      lastAnswer: p.lastAnswerAt,
    }));
  }

  /** Probe state per remote RLOC. */
  info(): ProbeInfo[] {
    return [...this.#probes.values()].map((p) => ({
      address: p.address,
      up: p.up,
      sent: p.sent,
      answered: p.answered,
      rttMs: p.rttMs,
    }));
  }
}
