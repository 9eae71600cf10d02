/**
 * NAT traversal, the RTR side: relaying the registrations of xTRs behind
 * a NAT, and learning where to send their traffic.
 *
 * Flow: an xTR's Map-Register arrives ECM'd with the R bit (from its NAT
 * binding) → relayed to its map-server (the inner destination, which must
 * be an `[[rtr-ms-node]]`) in an ECM with the N bit, the inner header
 * kept; the outer source (the xTR's translated address and port) is kept
 * by nonce → the map-server's Map-Notify carries MS-RTR authentication
 * under the `[[rtr-ms-node]]` key, which is checked → each record becomes
 * a map-cache entry towards the xTR's translated address and port, and
 * the Map-Notify, without its MS-RTR part, goes on to the xTR in an ECM
 * as a "Data-Map-Notify" (a LISP data packet of instance 0xFFFFFF whose
 * inner IP/UDP packet runs from the map-server to the xTR's private RLOC),
 * from the control port to that address and port: back through the NAT
 * binding its Map-Register opened. This is OOR 1.3.0's format; its xTR, and
 * ours, take it.
 *
 * @module
 */

import { ipAddress } from "../../wire/address.ts";
import { HmacKey } from "../../wire/auth.ts";
import { emitDataMapNotify } from "../../wire/data_header.ts";
import { type Ecm, ecmForRtr, emitEcm } from "../../wire/ecm.ts";
import { canonicalIp } from "../../wire/ip_text.ts";
import type { MapNotify } from "../../wire/map_notify.ts";
import { emitIpUdp } from "../../wire/udp.ts";
import { locatorRecord } from "../../wire/locator.ts";
import { type ControlPlane, formatPeer, type Peer, type Received } from "../../core/control.ts";
import { msRtrAuthOk, RTR_NAT_ENTRY_MS, withoutMsRtr } from "../../core/nat_auth.ts";
import { formatPrefix, prefixOf } from "../../core/prefix.ts";
import type { Env } from "./context.ts";
import type { CacheEntry, MapCache } from "./map_cache.ts";
import { REGISTER_NONCE_MS } from "./registration.ts";
import { METRICS } from "../../core/metrics.ts";

/** Map-Registers an RTR remembers for their Map-Notify. */
const MAX_RELAYS = 4096;

/** A Map-Register relayed to a map-server, waiting for its Map-Notify. */
interface Relay {
  /** The xTR's translated address and port (outer source of its ECM). */
  readonly xtr: Peer;
  /** The inner header of the xTR's ECM. */
  readonly inner: Ecm["inner"];
  /** Map-server address (canonical). */
  readonly ms: string;
  readonly at: number;
}

/** The RTR's relay of NATed xTRs' registrations (see the module notes). */
export class RtrRelay {
  readonly #env: Env;
  readonly #cp: ControlPlane;
  readonly #cache: MapCache;
  /** `[[rtr-ms-node]]` keys by canonical map-server address. */
  readonly #keys = new Map<string, HmacKey>();
  /** Relayed Map-Registers by nonce. */
  readonly #relays = new Map<bigint, Relay>();

  /** Registers the `map-register` and `map-notify` handlers on `cp`. */
  constructor(env: Env, cp: ControlPlane, cache: MapCache) {
    this.#env = env;
    this.#cp = cp;
    this.#cache = cache;
    for (const n of env.config.rtrMsNodes) {
      const ip = canonicalIp(n.address);
      if (ip !== undefined) this.#keys.set(ip, new HmacKey(n.keyType, n.key));
    }
    cp.on("map-register", (_m, r) => {
      if (r.ecm !== undefined && ecmForRtr(r.ecm)) this.#relayRegister(r.from, r.ecm);
      else env.counters.inc(METRICS.trRtrRelays, { result: "not-for-rtr" });
    });
    cp.on("map-notify", (m, r) => this.#mapNotify(r, m));
  }

  /** Relays an xTR's ECM'd Map-Register to its map-server. */
  #relayRegister(from: Peer, ecm: Ecm): void {
    const c = this.#env.counters;
    const ms = canonicalIp(ecm.inner.dst);
    if (ms === undefined || !this.#keys.has(ms)) {
      c.inc(METRICS.trRtrRelays, { result: "unknown-map-server" });
      this.#env.log.limited(
        `rtr-relay-refused ${from.address}`,
        60_000,
        "warn",
        "rtr-relay-refused",
        {
          peer: formatPeer(from),
          mapServer: ecm.inner.dst,
          reason: "no [[rtr-ms-node]]",
        },
      );
      return;
    }
    const nonce = ecm.payload.length >= 12
      ? new DataView(ecm.payload.buffer, ecm.payload.byteOffset + 4, 8).getBigUint64(0, false)
      : 0n;
    const now = this.#env.now();
    if (this.#relays.size >= MAX_RELAYS) {
      const oldest = this.#relays.keys().next();
      if (!oldest.done) this.#relays.delete(oldest.value);
    }
    this.#relays.delete(nonce);
    this.#relays.set(nonce, { xtr: from, inner: ecm.inner, ms, at: now });
    for (const [n, v] of this.#relays) {
      if (now - v.at < REGISTER_NONCE_MS) break;
      this.#relays.delete(n);
    }
    this.#cp.send(
      emitEcm({ ...ecm, security: false, forRtr: false, rtrRelayed: true }),
      { address: ms, port: this.#env.peerPort(ms) },
    );
    c.inc(METRICS.trRtrRelays, { result: "map-register" });
    if (this.#env.log.enabled("debug")) {
      this.#env.log.debug("rtr-map-register-relayed", {
        xtr: formatPeer(from),
        private: ecm.inner.src,
        mapServer: ms,
      });
    }
  }

  /** The Map-Notify answering a relayed Map-Register (see the module notes). */
  #mapNotify(r: Received, m: MapNotify): void {
    const { counters: c, log } = this.#env;
    const relay = this.#relays.get(m.nonce);
    const key = relay !== undefined ? this.#keys.get(relay.ms) : undefined;
    const fromMs = relay !== undefined && canonicalIp(r.from.address) === relay.ms;
    if (relay === undefined || key === undefined || !fromMs || !msRtrAuthOk(r.bytes, m, key)) {
      const result = relay === undefined ? "unmatched" : "auth";
      c.inc(METRICS.trRtrRelays, { result: `map-notify-${result}` });
      log.limited(
        `rtr-map-notify-rejected ${r.from.address}`,
        60_000,
        "warn",
        "rtr-map-notify-rejected",
        {
          peer: formatPeer(r.from),
          reason: result,
        },
      );
      return;
    }
    this.#relays.delete(m.nonce);
    const now = this.#env.now();
    const xtrIp = canonicalIp(relay.xtr.address);
    for (const rec of m.records) {
      const p = prefixOf(rec.eid, rec.maskLen);
      if (p === undefined || xtrIp === undefined) continue;
      const old = this.#cache.get(p);
      if (old?.static) continue;
      if (rec.ttl === 0) {
        this.#cache.remove(p);
        continue;
      }
      const entry: CacheEntry = {
        prefix: p,
        static: false,
        action: "encapsulate",
        locators: [locatorRecord(ipAddress(xtrIp))],
        ttl: rec.ttl,
        expiresAt: now + RTR_NAT_ENTRY_MS,
        from: formatPeer(relay.xtr),
        natPort: relay.xtr.port,
      };
      const changed = old?.natPort !== relay.xtr.port || old.from !== entry.from;
      this.#cache.install(entry);
      if (changed) {
        log.info("rtr-nat-xtr-registered", {
          prefix: formatPrefix(p),
          xtr: formatPeer(relay.xtr),
          private: relay.inner.src,
          mapServer: relay.ms,
        });
      }
    }
    const inner = relay.inner;
    const packet = emitIpUdp({
      src: inner.dst,
      dst: inner.src,
      srcPort: inner.dstPort,
      dstPort: inner.srcPort,
      payload: withoutMsRtr(m),
    });
    this.#cp.send(emitDataMapNotify(packet), relay.xtr, "data-map-notify");
    c.inc(METRICS.trRtrRelays, { result: "map-notify" });
  }
}
