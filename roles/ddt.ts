/**
 * The `ddt` role: a LISP-DDT node (RFC 8111 §7.1). From its
 * `[[ddt-auth-site]]` and `[[ddt-deleg-site]]` tables it answers DDT
 * Map-Requests (ECMs, usually with the D bit, from a DDT Map-Resolver) with
 * Map-Referrals:
 *
 * | case (RFC 8111 §7.1.1, §7.1.2)               | action            | prefix              | TTL  | A | I |
 * | -------------------------------------------- | ----------------- | ------------------- | ---- | - | - |
 * | most specific delegation, CHILD_DDT_NODE     | NODE-REFERRAL     | delegated prefix    | 1440 | 1 | 0 |
 * | most specific delegation, MAP_SERVER_DDT_NODE| MS-REFERRAL       | delegated prefix    | 1440 | 1 | 0 |
 * | inside an auth-site, in no delegation        | DELEGATION-HOLE   | least-specific hole | 15   | 1 | 0 |
 * | outside every auth-site                      | NOT-AUTHORITATIVE | the requested EID   | 0    | 0 | 1 |
 *
 * TTLs and the I bit follow the table of RFC 8111 §6.4 ("Incomplete").
 * The Ref entries of a referral are the delegation's `deleg-nodes`, in
 * file order (priority 1, weight 100). No DDT signatures are attached
 * (RFC 8111 §8 security is not implemented), so every record has SigCnt 0.
 *
 * The referral goes back to the source of the ECM, the outer IP source
 * and UDP source port, which is the DDT client (the DDT Map-Resolver). The
 * inner header of a DDT Map-Request keeps the ITR's addresses and port so
 * that a DDT Map-Server can forward it and the ETR answer the ITR
 * directly (RFC 8111 §7.2), so the inner source is not where the referral
 * belongs. OOR's `lisp_ddt_node.c` does the same (`send_msg(..., ext_uc)`).
 *
 * Instance IDs: every table is keyed by (iid, prefix); a request for an
 * EID in instance 7 only matches sites configured with `iid = 7`, and the
 * referral's EID carries the same Instance-ID LCAF.
 *
 * @module
 */

import {
  type Config,
  type DdtDelegSite,
  formatPrefix as formatConfigPrefix,
} from "../config/mod.ts";
import { ControlPlane, formatPeer, type Received } from "../core/control.ts";
import { batchedTransport } from "./control_io/socket.ts";
import {
  FAMILY_BITS,
  formatPrefix,
  prefixEid,
  prefixFromConfig,
  prefixOf,
  PrefixTable,
} from "../core/prefix.ts";
import type { RoleDeps, RoleHandle, RoleStart } from "../core/role.ts";
import type { StatusSource } from "../core/status.ts";
import { ipAddress } from "../wire/address.ts";
import { type EidRecord, REFERRAL_ACTION } from "../wire/eid_record.ts";
import { type LocatorRecord, locatorRecord } from "../wire/locator.ts";
import type { MapReferralRecord } from "../wire/map_referral.ts";
import type { MapRequest, MapRequestRecord } from "../wire/map_request.ts";
import { METRICS } from "../core/metrics.ts";

/** TTL of NODE-REFERRAL and MS-REFERRAL records, minutes (RFC 8111 §6.4). */
export const REFERRAL_TTL = 1440;
/** TTL of DELEGATION-HOLE records, minutes (RFC 8111 §6.4, §7.3.2). */
export const DELEGATION_HOLE_TTL = 15;
/** TTL of NOT-AUTHORITATIVE records: 0, never cached (RFC 8111 §6.4). */
export const NOT_AUTHORITATIVE_TTL = 0;

/** Names of the referral actions, for counters and logs. */
export const REFERRAL_ACTION_NAMES: Readonly<Record<number, string>> = {
  [REFERRAL_ACTION.NODE_REFERRAL]: "node-referral",
  [REFERRAL_ACTION.MS_REFERRAL]: "ms-referral",
  [REFERRAL_ACTION.MS_ACK]: "ms-ack",
  [REFERRAL_ACTION.MS_NOT_REGISTERED]: "ms-not-registered",
  [REFERRAL_ACTION.DELEGATION_HOLE]: "delegation-hole",
  [REFERRAL_ACTION.NOT_AUTHORITATIVE]: "not-authoritative",
};

/** The name of a referral action (`action-N` for unknown ones). */
export function referralActionName(action: number): string {
  return REFERRAL_ACTION_NAMES[action] ?? `action-${action}`;
}

/** A configured delegation, ready to answer with. */
interface Delegation {
  readonly action: number;
  readonly nodes: readonly string[];
  readonly refs: readonly LocatorRecord[];
}

/** A running DDT node. */
export interface DdtHandle extends RoleHandle {
  /** The control transport (its `port` is the bound UDP port). */
  readonly control: ControlPlane;
  /** Answers one requested EID prefix as the node would (for tests and the API). */
  referralFor(eid: MapRequestRecord): MapReferralRecord;
  /** What the HTTP API shows: the configured authority and delegations, counters. */
  statusSource(): StatusSource;
}

/** The tables a DDT node answers from. */
export class DdtTables {
  readonly #auth = new PrefixTable<true>();
  readonly #deleg = new PrefixTable<Delegation>();
  /** The `[[ddt-deleg-site]]`s in force, by `iid/prefix`, in the order given. */
  readonly delegSites = new Map<string, DdtDelegSite>();

  /** Builds the tables from a config's `[[ddt-auth-site]]` and `[[ddt-deleg-site]]`. */
  constructor(config: Pick<Config, "ddtAuthSites" | "ddtDelegSites">) {
    for (const a of config.ddtAuthSites) {
      this.#auth.set(prefixFromConfig(a.eidPrefix, a.iid), true);
    }
    for (const d of config.ddtDelegSites) this.setDelegation(d);
  }

  /** Adds or replaces a delegation (a runtime edit, or the config's at start). */
  setDelegation(d: DdtDelegSite): void {
    const p = prefixFromConfig(d.eidPrefix, d.iid);
    this.#deleg.set(p, delegation(d));
    this.delegSites.delete(formatPrefix(p));
    this.delegSites.set(formatPrefix(p), d);
  }

  /** Removes the delegation of exactly that prefix; false if there was none. */
  removeDelegation(eidPrefix: DdtDelegSite["eidPrefix"], iid: number): boolean {
    const p = prefixFromConfig(eidPrefix, iid);
    this.delegSites.delete(formatPrefix(p));
    return this.#deleg.delete(p);
  }

  /**
   * The referral record answering a request for `req` (RFC 8111 §7.1):
   * the most specific delegation covering it, else a delegation hole inside
   * an auth-site, else not-authoritative.
   */
  referral(req: MapRequestRecord): EidRecord {
    const p = prefixOf(req.eid, req.maskLen);
    if (p === undefined) return notAuthoritative(req);
    const d = this.#deleg.lookup(p);
    if (d !== undefined) {
      // RFC 8111 §7.1.1: a delegation may also be a hint outside our
      // authority; only referrals under an auth-site carry the A bit.
      return {
        ttl: REFERRAL_TTL,
        maskLen: d.prefix.len,
        action: d.value.action,
        authoritative: this.#auth.lookup(d.prefix) !== undefined,
        incomplete: false,
        sigCount: 0,
        mapVersion: 0,
        eid: prefixEid(d.prefix),
        locators: d.value.refs,
      };
    }
    const auth = this.#auth.covering(p);
    if (auth === undefined) return notAuthoritative(req);
    let hole = this.#deleg.hole(p);
    if (hole === undefined) {
      // The requested prefix is wider than a delegation it overlaps: answer
      // for its first address, as an ITR asking for a host would be.
      // (For a full-length prefix the hole is always defined: a host that
      // overlaps a delegation is inside it.)
      const bits = FAMILY_BITS[p.family];
      return this.referral({ eid: prefixEid({ ...p, len: bits }), maskLen: bits });
    }
    // RFC 8111 §7.1.2: the least-specific prefix that matches no delegation,
    // bounded by our authority (a hole wider than the auth-site contains it,
    // and then the auth-site itself overlaps no delegation).
    if (hole.len < auth.prefix.len) hole = auth.prefix;
    return {
      ttl: DELEGATION_HOLE_TTL,
      maskLen: hole.len,
      action: REFERRAL_ACTION.DELEGATION_HOLE,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: prefixEid(hole),
      locators: [],
    };
  }
}

/** RFC 8111 §6.4: NOT-AUTHORITATIVE returns the requested EID with TTL 0 and the I bit. */
function notAuthoritative(req: MapRequestRecord): EidRecord {
  return {
    ttl: NOT_AUTHORITATIVE_TTL,
    maskLen: req.maskLen,
    action: REFERRAL_ACTION.NOT_AUTHORITATIVE,
    authoritative: false,
    incomplete: true,
    sigCount: 0,
    mapVersion: 0,
    eid: req.eid,
    locators: [],
  };
}

/** Ref entries for a list of node addresses (RFC 8111 §6.4, locator-record format). */
export function referralLocators(nodes: readonly string[]): LocatorRecord[] {
  return nodes.map((a) => locatorRecord(ipAddress(a)));
}

function delegation(d: DdtDelegSite): Delegation {
  return {
    action: d.delegationType === "MAP_SERVER_DDT_NODE"
      ? REFERRAL_ACTION.MS_REFERRAL
      : REFERRAL_ACTION.NODE_REFERRAL,
    nodes: d.delegNodes,
    refs: referralLocators(d.delegNodes),
  };
}

/** Starts a DDT node on the config's control address and port. */
export const startDdt: RoleStart<DdtHandle> = async (config: Config, deps: RoleDeps) => {
  const { logger, counters } = deps;
  const tables = new DdtTables(config);
  const control = await ControlPlane.open({
    logger,
    counters,
    port: config.controlPort,
    rateLimit: config.controlRateLimit,
    now: deps.now,
    transport: batchedTransport,
    ...(config.controlAddress !== undefined ? { address: config.controlAddress } : {}),
  });

  const answer = (req: MapRequest, r: Received): void => {
    counters.inc(METRICS.ddtRequests, {
      kind: r.ecm === undefined ? "plain" : r.ecm.ddtOriginated ? "ddt" : "ecm",
    });
    if (req.probe || req.smr) {
      // RLOC-probes and SMRs are for xTRs; a DDT node has no mapping to give.
      counters.inc(METRICS.ddtDropped, { reason: req.probe ? "probe" : "smr" });
      return;
    }
    if (req.records.length === 0) {
      counters.inc(METRICS.ddtDropped, { reason: "no-record" });
      return;
    }
    const records: MapReferralRecord[] = [];
    for (const rec of req.records) {
      const record = tables.referral(rec);
      records.push({ record, signatures: [] });
      const action = referralActionName(record.action);
      counters.inc(METRICS.ddtReferrals, { action });
      if (logger.enabled("debug")) {
        logger.debug("ddt-referral", {
          peer: formatPeer(r.from),
          nonce: req.nonce,
          eid: describeRecord(rec.eid, rec.maskLen),
          action,
          prefix: describeRecord(record.eid, record.maskLen),
          ttl: record.ttl,
        });
      }
    }
    control.send({ type: "map-referral", msg: { nonce: req.nonce, records } }, r.from);
  };
  control.on("map-request", answer);

  logger.info("ddt-node-ready", {
    port: control.port,
    address: config.controlAddress,
    "auth-sites": config.ddtAuthSites.length,
    "deleg-sites": config.ddtDelegSites.length,
  });

  return {
    control,
    referralFor: (eid) => ({ record: tables.referral(eid), signatures: [] }),
    statusSource: () => ({
      status: () => ({
        details: {
          "control address": `${config.controlAddress ?? "*"} port ${control.port}`,
          "auth sites": config.ddtAuthSites.length,
          "deleg sites": tables.delegSites.size,
        },
      }),
      referrals: () => [
        ...config.ddtAuthSites.map((a) => ({
          eidPrefix: formatConfigPrefix(a.eidPrefix),
          iid: a.iid,
          action: "authoritative",
          rlocs: [],
          expiresAt: null,
          origin: "auth-site" as const,
        })),
        ...[...tables.delegSites.values()].map((d) => ({
          eidPrefix: formatConfigPrefix(d.eidPrefix),
          iid: d.iid,
          action: d.delegationType === "MAP_SERVER_DDT_NODE" ? "ms-referral" : "node-referral",
          rlocs: d.delegNodes,
          ttl: REFERRAL_TTL,
          expiresAt: null,
          origin: "deleg-site" as const,
        })),
      ],
      counters: () => counters.snapshot(),
      addDelegSite: (d) => {
        tables.setDelegation(d);
        logger.info("deleg-site-added", {
          prefix: formatPrefix(prefixFromConfig(d.eidPrefix, d.iid)),
        });
      },
      removeDelegSite: (p, iid) => {
        const ok = tables.removeDelegation(p, iid);
        if (ok) {
          logger.info("deleg-site-removed", { prefix: formatPrefix(prefixFromConfig(p, iid)) });
        }
        return ok;
      },
    }),
    close() {
      return control.close();
    },
  };
};

/** `[iid]addr/len` of a record's EID, for logs. */
export function describeRecord(
  eid: MapRequestRecord["eid"],
  maskLen: number,
): string {
  const p = prefixOf(eid, maskLen);
  if (p !== undefined) return formatPrefix(p);
  return `${eid.kind}/${maskLen}`;
}
