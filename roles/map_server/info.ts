/**
 * Info-Requests on the map-server (NAT traversal): an Info-Request for an
 * EID inside a site, authenticated with the site's key, gets an
 * Info-Reply saying where the request came from (the xTR's global RLOC and
 * port) and which RTRs to use.
 *
 * @module
 */

import { addressToString, ipAddress } from "../../wire/address.ts";
import { authStatus, signAuthenticated } from "../../wire/auth.ts";
import { emitInfo, type InfoReply, type InfoRequest } from "../../wire/info.ts";
import { type ControlPlane, formatPeer, type Received } from "../../core/control.ts";
import { formatPrefix, prefixOf } from "../../core/prefix.ts";
import type { RoleDeps } from "../../core/role.ts";
import type { Registration, RegistrationStore } from "./registrations.ts";
import { LOG_INTERVAL_MS } from "./registrar.ts";
import type { Sites } from "./sites.ts";
import { METRICS } from "../../core/metrics.ts";

/** Answers Info-Requests (see the module notes). */
export class InfoResponder {
  readonly #deps: RoleDeps;
  readonly #cp: ControlPlane;
  readonly #sites: Sites;
  readonly #store: RegistrationStore;
  readonly #expired: (r: Registration) => void;

  /** Registers the `info-request` handler on `cp`. */
  constructor(
    deps: RoleDeps,
    cp: ControlPlane,
    sites: Sites,
    store: RegistrationStore,
    expired: (r: Registration) => void,
  ) {
    this.#deps = deps;
    this.#cp = cp;
    this.#sites = sites;
    this.#store = store;
    this.#expired = expired;
    cp.on("info-request", (m, r) => this.#infoRequest(r, m));
  }

  /**
   * Answers an Info-Request for an EID inside a site, authenticated with
   * the site's key: an Info-Reply with the same nonce, signed with that
   * key, whose NAT-Traversal LCAF carries the source address and port the
   * request came from (the xTR's global RLOC and port), this map-server's
   * address and port, the private RLOC of the xTR once an RTR has relayed
   * its registration (AFI 0 before: the request cannot carry it), and
   * the RTRs of `ms-advertised-rtrs-set`, with that set's TTL.
   */
  #infoRequest(r: Received, m: InfoRequest): void {
    const c = this.#deps.counters;
    const drop = (reason: string, detail: string) => {
      c.inc(METRICS.msInfoRequests, { result: reason });
      this.#deps.logger.limited(
        `info-request-rejected ${r.from.address}`,
        LOG_INTERVAL_MS,
        "warn",
        "info-request-rejected",
        { reason, peer: formatPeer(r.from), detail },
      );
    };
    const p = prefixOf(m.eid, m.maskLen);
    const site = p !== undefined ? this.#sites.table.lookup(p)?.value : undefined;
    if (p === undefined || site === undefined) {
      return drop("no-site", `EID ${addressToString(m.eid)} is in no lisp-site`);
    }
    if (m.keyId !== site.key.keyId) return drop("key-id", `key id ${m.keyId}`);
    const status = authStatus(r.bytes, site.key);
    if (status !== "ok") return drop("auth", `${status} for site ${site.text}`);
    // The private RLOC of the xTR, once an RTR has relayed its registration
    // (the ECM's inner source); AFI 0 before that: the request has none.
    const regs = this.#store.lookup(p, this.#deps.now(), this.#expired);
    const priv = regs?.registrations.find((x) => x.natPrivate !== undefined)?.natPrivate;
    const reply: InfoReply = {
      reply: true,
      nonce: m.nonce,
      keyId: site.key.keyId,
      authData: new Uint8Array(site.key.digestLength),
      ttl: this.#sites.advertisedTtl,
      maskLen: m.maskLen,
      eid: m.eid,
      nat: {
        kind: "nat",
        msPort: this.#cp.port,
        etrPort: r.from.port,
        globalEtr: ipAddress(r.from.address),
        ms: this.#sites.self !== undefined ? ipAddress(this.#sites.self) : { kind: "none" },
        privateEtr: priv !== undefined ? ipAddress(priv) : { kind: "none" },
        rtrs: this.#sites.advertised,
      },
    };
    const bytes = emitInfo(reply);
    signAuthenticated(bytes, site.key);
    this.#cp.send(bytes, r.from);
    c.inc(METRICS.msInfoRequests, { result: "answered" });
    this.#deps.logger.limited(
      `info-reply ${r.from.address}:${r.from.port}`,
      LOG_INTERVAL_MS,
      "info",
      "info-reply-sent",
      {
        peer: formatPeer(r.from),
        eid: formatPrefix(p),
        rtrs: this.#sites.advertised.map((a) => a.ip).join(",") || "none",
      },
    );
  }
}
