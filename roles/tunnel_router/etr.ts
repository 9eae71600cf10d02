/**
 * The ETR's answers (RFC 9301 §6.1, §8.3): Map-Requests on the control
 * port, plain or forwarded by a map-server in an ECM.
 *
 * Flow: Map-Request → SMR? to smr.ts; else the record for the EID asked:
 * a local EID prefix gets an authoritative Map-Reply with our locators (L
 * bit; on an RLOC-probe, the p bit on the locator the reply leaves from),
 * with no usable locator a drop record with a 1-minute TTL. A router that
 * answers probes for any EID (an rtr, `TunnelRouterSpec.probeAnyEid`)
 * answers them with its own locators.
 *
 * Replies to RLOC-probes and plain requests go back to their sender; a
 * forwarded request's reply goes to its first usable ITR-RLOC, at the
 * ECM's inner source port. Whatever is not answered is counted
 * (`oor_tr_map_requests_dropped_total{reason}`).
 *
 * @module
 */

import { addressToString } from "../../wire/address.ts";
import type { EidRecord } from "../../wire/eid_record.ts";
import type { MapReply } from "../../wire/map_reply.ts";
import type { MapRequest } from "../../wire/map_request.ts";
import { type ControlPlane, formatPeer, type Peer, type Received } from "../../core/control.ts";
import { formatPrefix, prefixOf } from "../../core/prefix.ts";
import type { Env } from "./context.ts";
import type { LocalLocators } from "./locals.ts";
import { METRICS } from "../../core/metrics.ts";

/** TTL of our negative answer for a local prefix with no usable locator, minutes. */
const NO_LOCATOR_TTL = 1;
/** TTL of an rtr's probe answers, minutes. */
export const RTR_PROBE_TTL = 1;

/** Answers Map-Requests and RLOC-probes for the router's EIDs. */
export class Etr {
  readonly #env: Env;
  readonly #cp: ControlPlane;
  readonly #locals: LocalLocators;
  readonly #probeAnyEid: boolean;
  readonly #canSend: (ip: string) => boolean;
  readonly #smr: (r: Received, m: MapRequest) => void;

  /**
   * Registers the Map-Request handler on `cp`. `smr` gets the SMRs;
   * `canSend` says whether the control socket can reach an address.
   */
  constructor(
    env: Env,
    cp: ControlPlane,
    locals: LocalLocators,
    opts: {
      readonly probeAnyEid: boolean;
      readonly canSend: (ip: string) => boolean;
      readonly smr: (r: Received, m: MapRequest) => void;
    },
  ) {
    this.#env = env;
    this.#cp = cp;
    this.#locals = locals;
    this.#probeAnyEid = opts.probeAnyEid;
    this.#canSend = opts.canSend;
    this.#smr = opts.smr;
    cp.on("map-request", (m, r) => this.#mapRequest(r, m));
  }

  #drop(r: Received, reason: string, detail?: string): void {
    this.#env.counters.inc(METRICS.trMapRequestsDropped, { reason });
    this.#env.log.limited(
      `map-request-dropped ${reason} ${r.from.address}`,
      60_000,
      "debug",
      "map-request-dropped",
      { reason, peer: formatPeer(r.from), detail },
    );
  }

  #mapRequest(r: Received, m: MapRequest): void {
    const c = this.#env.counters;
    if (m.smr) {
      c.inc(METRICS.trMapRequestsReceived, { kind: "smr" });
      return this.#smr(r, m);
    }
    c.inc(METRICS.trMapRequestsReceived, { kind: m.probe ? "probe" : "request" });
    const rec = m.records[0];
    if (rec === undefined) return this.#drop(r, "no-record");
    const p = prefixOf(rec.eid, rec.maskLen);
    if (p === undefined) return this.#drop(r, "unsupported-eid", addressToString(rec.eid));
    const probedFrom = m.probe ? this.#cp.address : undefined;
    let record: EidRecord | undefined;
    const local = this.#locals.table.lookup(p)?.value;
    if (local !== undefined) {
      const ttl = local.locators.length > 0 ? local.config.ttl : NO_LOCATOR_TTL;
      record = this.#locals.record(local, ttl, probedFrom);
    } else if (this.#probeAnyEid && m.probe) {
      record = this.#locals.ownRecord(p, RTR_PROBE_TTL, probedFrom);
    }
    if (record === undefined) return this.#drop(r, "not-local", formatPrefix(p));
    const to = this.#replyTo(r, m);
    if (to === undefined) return this.#drop(r, "no-itr-rloc");
    const reply: MapReply = {
      probe: m.probe,
      echoNonce: false,
      security: false,
      nonce: m.nonce,
      records: [record],
    };
    this.#cp.send({ type: "map-reply", msg: reply }, to);
    c.inc(METRICS.trMapRepliesSent, { kind: m.probe ? "probe" : "request" });
  }

  /** Probes and plain requests go back to their sender; forwarded ones to an ITR-RLOC. */
  #replyTo(r: Received, m: MapRequest): Peer | undefined {
    const ecm = r.ecm;
    if (ecm === undefined || m.probe) return r.from;
    for (const a of m.itrRlocs) {
      if ((a.kind === "ipv4" || a.kind === "ipv6") && this.#canSend(a.ip)) {
        return { address: a.ip, port: ecm.inner.srcPort };
      }
    }
    return undefined;
  }
}
