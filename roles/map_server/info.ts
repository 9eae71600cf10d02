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
import { formatPeer, type Received } from "../../core/control.ts";
import { METRICS } from "../../core/metrics.ts";
import { formatPrefix, prefixOf } from "../../core/prefix.ts";
import type { MsContext } from "./context.ts";
import { LOG_INTERVAL_MS } from "./registrar.ts";

/** Answers Info-Requests (see the module notes). */
export class InfoResponder {
  readonly #c: MsContext;

  /** Registers the `info-request` handler on the control plane. */
  constructor(ctx: MsContext) {
    this.#c = ctx;
    this.#c.cp.on("info-request", (m, r) => this.#infoRequest(r, m));
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
    const c = this.#c.deps.counters;
    const drop = (reason: string, detail: string) => {
      c.inc(METRICS.msInfoRequests, { result: reason });
      this.#c.deps.logger.limited(
        `info-request-rejected ${r.from.address}`,
        LOG_INTERVAL_MS,
        "warn",
        "info-request-rejected",
        { reason, peer: formatPeer(r.from), detail },
      );
    };
    const p = prefixOf(m.eid, m.maskLen);
    const site = p !== undefined ? this.#c.sites.table.lookup(p)?.value : undefined;
    if (p === undefined || site === undefined) {
      return drop("no-site", `EID ${addressToString(m.eid)} is in no lisp-site`);
    }
    if (m.keyId !== site.key.keyId) return drop("key-id", `key id ${m.keyId}`);
    const status = authStatus(r.bytes, site.key);
    if (status !== "ok") return drop("auth", `${status} for site ${site.text}`);
    // The private RLOC of the xTR, once an RTR has relayed its registration
    // (the ECM's inner source); AFI 0 before that: the request has none.
    const regs = this.#c.store.lookup(p, this.#c.deps.now(), this.#c.expired);
    const priv = regs?.registrations.find((x) => x.natPrivate !== undefined)?.natPrivate;
    const reply: InfoReply = {
      reply: true,
      nonce: m.nonce,
      keyId: site.key.keyId,
      authData: new Uint8Array(site.key.digestLength),
      ttl: this.#c.sites.advertisedTtl,
      maskLen: m.maskLen,
      eid: m.eid,
      nat: {
        kind: "nat",
        msPort: this.#c.cp.port,
        etrPort: r.from.port,
        globalEtr: ipAddress(r.from.address),
        ms: this.#c.sites.self !== undefined ? ipAddress(this.#c.sites.self) : { kind: "none" },
        privateEtr: priv !== undefined ? ipAddress(priv) : { kind: "none" },
        rtrs: this.#c.sites.advertised,
      },
    };
    const bytes = emitInfo(reply);
    signAuthenticated(bytes, site.key);
    this.#c.cp.send(bytes, r.from);
    c.inc(METRICS.msInfoRequests, { result: "answered" });
    this.#c.deps.logger.limited(
      `info-reply ${r.from.address}:${r.from.port}`,
      LOG_INTERVAL_MS,
      "info",
      "info-reply-sent",
      {
        peer: formatPeer(r.from),
        eid: formatPrefix(p),
        rtrs: this.#c.sites.advertised.map((a) => a.ip).join(",") || "none",
      },
    );
  }
}
