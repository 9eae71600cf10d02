/**
 * Solicit-Map-Requests (RFC 9301 §6.6.2), both ways.
 *
 * Sending: when local locators change, an SMR (Map-Request with the S
 * bit, source EID the changed prefix, record the remote EID) goes to every
 * remote RLOC we have talked to: the peers the data plane saw traffic from
 * ({@link Smr.peer}, at most 4,096, oldest forgotten first) and the
 * locators of the map-cache; at most 1,024 targets per changed mapping.
 * Behind a NAT none are sent: peers reach us only through the RTRs, which
 * learn of the change from our new registration (and OOR 1.3.0's RTR drops
 * an xTR's NAT entry when that xTR sends it an SMR).
 *
 * Receiving: an SMR whose source EID we have cached (not statically)
 * triggers an SMR-invoked Map-Request (s bit) through the map-resolvers
 * (resolution.ts, with its one-per-second limit); others are ignored and
 * counted.
 *
 * @module
 */

import {
  addressToString,
  ipAddress,
  type IPv4Address,
  type IPv6Address,
} from "../../wire/address.ts";
import { canonicalIp } from "../../wire/ip_text.ts";
import { emitMapRequest, type MapRequest } from "../../wire/map_request.ts";
import { type ControlPlane, formatPeer, type Received } from "../../core/control.ts";
import {
  formatPrefix,
  hostPrefixOf,
  parsePrefix,
  type Prefix,
  prefixAddress,
  prefixEid,
} from "../../core/prefix.ts";
import type { Env } from "./context.ts";
import type { LocalLocators, LocalMapping } from "./locals.ts";
import { locatorIp, type MapCache } from "./map_cache.ts";
import { type Resolver, sourceEidOf } from "./resolution.ts";
import { METRICS } from "../../core/metrics.ts";

/** Remote RLOCs remembered from decapsulated traffic. */
const MAX_PEERS = 4096;
/** SMR targets per change. */
const MAX_SMR_TARGETS = 1024;

/** Sends SMRs when our locators change, and acts on those we receive. */
export class Smr {
  readonly #env: Env;
  readonly #cp: ControlPlane;
  readonly #locals: LocalLocators;
  readonly #cache: MapCache;
  readonly #resolver: Resolver;
  readonly #behindNat: () => boolean;
  readonly #peers = new Map<string, { iid: number; srcEid: string }>();

  constructor(
    env: Env,
    cp: ControlPlane,
    locals: LocalLocators,
    cache: MapCache,
    resolver: Resolver,
    behindNat: () => boolean,
  ) {
    this.#env = env;
    this.#cp = cp;
    this.#locals = locals;
    this.#cache = cache;
    this.#resolver = resolver;
    this.#behindNat = behindNat;
  }

  /** The data plane decapsulated traffic from `rloc` for source EID `srcEid` in `iid`. */
  peer(rloc: string, iid: number, srcEid: string): void {
    const ip = canonicalIp(rloc);
    if (ip === undefined) return;
    if (this.#peers.has(ip)) this.#peers.delete(ip);
    else if (this.#peers.size >= MAX_PEERS) {
      const oldest = this.#peers.keys().next();
      if (!oldest.done) this.#peers.delete(oldest.value);
    }
    this.#peers.set(ip, { iid, srcEid });
  }

  /** Sends SMRs for the changed mappings to every remote RLOC we have talked to. */
  send(changed: readonly LocalMapping[]): void {
    if (this.#behindNat()) return;
    const targets = new Map<string, Prefix>();
    for (const [ip, peer] of this.#peers) {
      const p = parsePrefix(peer.srcEid, peer.iid);
      if (p !== undefined) targets.set(ip, p);
    }
    const here = this.#locals.hostIps;
    for (const e of this.#cache.entries()) {
      for (const l of e.locators) {
        const ip = locatorIp(l.address, here);
        if (ip !== undefined && !targets.has(ip)) targets.set(ip, e.prefix);
      }
    }
    const itrRlocs = this.#locals.itrRlocs;
    let sent = 0;
    for (const [ip, remote] of targets) {
      if (this.#locals.ownIps.has(ip) || !this.#resolver.canSend(ip)) continue;
      if (sent >= MAX_SMR_TARGETS * changed.length) {
        this.#env.log.warn("smr-targets-truncated", { max: MAX_SMR_TARGETS });
        break;
      }
      for (const m of changed) {
        const src = prefixAddress(m.prefix) as IPv4Address | IPv6Address;
        const bytes = emitMapRequest({
          authoritative: false,
          probe: false,
          smr: true,
          pitr: false,
          smrInvoked: false,
          localXtr: false,
          dontMapReply: false,
          nonce: this.#env.nonce(),
          sourceEid: sourceEidOf(src, m.prefix.iid),
          itrRlocs: itrRlocs.length > 0 ? itrRlocs : [ipAddress(ip)],
          records: [{ maskLen: remote.len, eid: prefixEid(remote) }],
        });
        this.#cp.send(bytes, { address: ip, port: this.#env.peerPort(ip) });
        this.#env.counters.inc(METRICS.trSmrsSent);
        sent++;
      }
    }
    if (sent > 0) this.#env.log.info("smrs-sent", { count: sent });
  }

  /** An SMR: a fresh Map-Request for its source EID, when we have it cached. */
  received(r: Received, m: MapRequest): void {
    const c = this.#env.counters;
    const p = hostPrefixOf(m.sourceEid);
    const entry = p !== undefined ? this.#cache.lookup(p) : undefined;
    if (p === undefined || entry === undefined || entry.value.static) {
      c.inc(METRICS.trSmrsReceived, { result: "ignored" });
      this.#env.log.limited(`smr-ignored ${r.from.address}`, 60_000, "debug", "smr-ignored", {
        peer: formatPeer(r.from),
        eid: addressToString(m.sourceEid),
      });
      return;
    }
    c.inc(METRICS.trSmrsReceived, { result: "requested" });
    this.#env.log.info("smr-received", {
      peer: formatPeer(r.from),
      eid: formatPrefix(p),
      cached: formatPrefix(entry.prefix),
    });
    this.#resolver.resolve(p, undefined, true);
  }
}
