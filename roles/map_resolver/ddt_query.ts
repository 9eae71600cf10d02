/**
 * The DDT map-resolver's queries (roles/mr.ts, RFC 8111 §7.3): one
 * referral set asked in turn, one RLOC at a time, until one answers with
 * a decisive referral; and which RLOCs are suspect (timed out lately: asked
 * last).
 *
 * A query carries a nonce of our own (a DDT Map-Request of the resolver's:
 * messages.ts `ddtMapRequest`), or, to the DDT Map-Servers of an
 * MS-REFERRAL, the ITR's own request with the D bit (`ddtForwardedEcm`,
 * RFC 8111 §7.3.1), which the map-server answers itself. Either way only
 * a Map-Referral from the RLOC asked, with the query's nonce, counts
 * (core/control.ts `request` with `from`); what that brings on the ITR's
 * nonce is for the caller to trust less (roles/mr.ts).
 *
 * @module
 */

import { type ControlPlane, formatPeer, NoReplyError, type Peer } from "../../core/control.ts";
import type { Counters } from "../../core/counters.ts";
import type { ForwardGuard } from "../../core/forward_guard.ts";
import type { Logger } from "../../core/log.ts";
import { METRICS } from "../../core/metrics.ts";
import { formatPrefix, type Prefix } from "../../core/prefix.ts";
import { type EidRecord, REFERRAL_ACTION } from "../../wire/eid_record.ts";
import type { MapReferral } from "../../wire/map_referral.ts";
import { ddtForwardedEcm, ddtMapRequest, type ItrRequest, randomNonce } from "./messages.ts";

/** An ITR's request being resolved, as the queries need it. */
export interface QueriedRequest extends ItrRequest {
  readonly eid: Prefix;
  /** `eid` as text (the forward guard's key). */
  readonly eidText: string;
  /** The ITR's datagram as it came. */
  readonly datagram: Uint8Array | undefined;
}

/** What asking a referral set brought. */
export type Answer =
  | {
    readonly kind: "referral";
    readonly record: EidRecord;
    readonly rloc: string;
    /** It answered the ITR's own request (its nonce). */
    readonly itr: boolean;
  }
  | { readonly kind: "no-answer" }
  | { readonly kind: "aborted" }
  | { readonly kind: "busy" };

/** What the queries need from the resolver. */
export interface DdtQueryOptions {
  readonly control: ControlPlane;
  readonly counters: Counters;
  readonly logger: Logger;
  readonly guard: ForwardGuard;
  readonly now: () => number;
  /** Milliseconds to wait for each Map-Referral. */
  readonly timeoutMs: number;
  /** Milliseconds an RLOC that timed out is asked after the others. */
  readonly suspectMs: number;
  /** Set when the resolver closes. */
  readonly signal: AbortSignal;
  /** The DDT nodes' control port. */
  readonly port: () => number;
  /** Times each set is gone through (`map-request-retries` + 1). */
  readonly cycles: () => number;
  /** Whether the cached path (ddt_fast_path.ts) waits on this nonce. */
  readonly waiting: (nonce: bigint) => boolean;
  /** A request not passed on (the forward guard): counted and logged. */
  readonly drop: (reason: string, r: { readonly from: Peer }) => void;
}

/** What a DDT Map-Request waits for. */
const MAP_REFERRAL: readonly ["map-referral"] = ["map-referral"];

/** The queries of one resolver (see the module notes). */
export class DdtQueries {
  readonly #o: DdtQueryOptions;
  /** RLOC -> until when it is asked last. */
  readonly #suspect = new Map<string, number>();
  /** Per RLOC: whether it is ourselves, worked out once a second. */
  readonly #self = new Map<string, boolean>();
  #selfAt = 0;

  /** Queries over `options`. */
  constructor(options: DdtQueryOptions) {
    this.#o = options;
  }

  /** `rloc` did not answer: asked last for a while. */
  timedOut(rloc: string): void {
    this.#suspect.set(rloc, this.#o.now() + this.#o.suspectMs);
  }

  /** Forgets suspicions that ended. */
  sweep(now: number): void {
    for (const [a, until] of this.#suspect) if (until <= now) this.#suspect.delete(a);
  }

  /** The RLOC of `rlocs` to ask first: not suspect and not ourselves (else suspect), or none. */
  first(rlocs: readonly string[]): string | undefined {
    const now = this.#o.now();
    if (now - this.#selfAt > 1000) {
      this.#self.clear();
      this.#selfAt = now;
    }
    let suspect: string | undefined;
    for (const rloc of rlocs) {
      let self = this.#self.get(rloc);
      if (self === undefined) {
        self = this.#o.guard.own.isSelf({ address: rloc, port: this.#o.port() });
        this.#self.set(rloc, self);
      }
      if (self) continue;
      if ((this.#suspect.get(rloc) ?? 0) <= now) return rloc;
      suspect ??= rloc;
    }
    return suspect;
  }

  /**
   * Asks the RLOCs of `rlocs` in turn until one answers with a decisive
   * referral (with the ITR's own request when `itr`). MS-NOT-REGISTERED
   * and NOT-AUTHORITATIVE are not decisive while RLOCs that have not
   * answered remain (RFC 8111 §7.3.2); the last one is returned when none
   * is left.
   */
  async set(o: QueriedRequest, rlocs: readonly string[], itr: boolean): Promise<Answer> {
    const now = this.#o.now();
    const order = rlocs.length < 2
      ? rlocs
      : [...rlocs].sort((a, b) =>
        Number((this.#suspect.get(a) ?? 0) > now) - Number((this.#suspect.get(b) ?? 0) > now)
      );
    let answered: Set<string> | undefined; // made when an RLOC answers and another is tried
    let soft: Answer | undefined;
    const cycles = this.#o.cycles();
    for (let cycle = 0; cycle < cycles && (answered?.size ?? 0) < order.length; cycle++) {
      for (const rloc of order) {
        if (answered?.has(rloc)) continue;
        const referral = await this.one(o, rloc, itr);
        if (referral === "aborted" || referral === "busy") return { kind: referral };
        if (referral === "refused") {
          (answered ??= new Set()).add(rloc);
          continue;
        }
        if (referral === undefined) {
          this.timedOut(rloc);
          continue;
        }
        this.#suspect.delete(rloc);
        const record = referral.records[0]?.record;
        if (record === undefined) {
          this.#o.counters.inc(METRICS.mrDropped, { reason: "empty-referral" });
          (answered ??= new Set()).add(rloc);
          continue;
        }
        if (
          record.action === REFERRAL_ACTION.MS_NOT_REGISTERED ||
          record.action === REFERRAL_ACTION.NOT_AUTHORITATIVE
        ) {
          (answered ??= new Set()).add(rloc);
          soft = { kind: "referral", record, rloc, itr };
          continue;
        }
        return { kind: "referral", record, rloc, itr };
      }
    }
    return soft ?? { kind: "no-answer" };
  }

  /**
   * One DDT Map-Request to one RLOC: with a nonce of its own, or (`itr`) the
   * ITR's own request with the D bit. Undefined on timeout; "refused" when
   * the forward guard refuses the ITR's request to it; "busy" when the
   * ITR's nonce is another request's.
   */
  async one(
    o: QueriedRequest,
    rloc: string,
    itr: boolean,
  ): Promise<MapReferral | undefined | "aborted" | "busy" | "refused"> {
    const x = this.#o;
    const to: Peer = { address: rloc, port: x.port() };
    const c = x.counters;
    let nonce: bigint;
    let bytes: Uint8Array;
    if (itr) {
      nonce = o.request.nonce;
      if (x.waiting(nonce)) return "busy";
      // Keyed per RLOC too: the next RLOC of the set may be asked at once.
      const ttl = x.guard.check(to, o.ecm.inner.ttl, nonce, `${o.eidText} ${rloc}`);
      if (typeof ttl === "string") {
        x.drop(ttl, o);
        return "refused";
      }
      bytes = ddtForwardedEcm(o.ecm, ttl, o.datagram);
    } else {
      nonce = randomNonce();
      const self = x.guard.own.sourceToward(rloc);
      bytes = ddtMapRequest(o, nonce, rloc, self, x.control.port);
    }
    try {
      const r = await x.control.request(
        nonce,
        () => {
          c.inc(METRICS.mrDdtRequestsSent);
          if (itr) c.inc(METRICS.mrForwarded);
          x.control.send(bytes, to);
        },
        () => `DDT Map-Request for ${formatPrefix(o.eid)} to ${formatPeer(to)}`,
        {
          retries: 0,
          timeoutMs: x.timeoutMs,
          expect: MAP_REFERRAL,
          // No signal: closing fails every request at once (ControlPlane.close),
          // and an abort listener per query cost more than the query.
          // Only the node asked may answer, and only with the query's nonce.
          from: rloc,
        },
      );
      return r.message.type === "map-referral" ? r.message.msg : undefined;
    } catch (e) {
      if (x.signal.aborted) return "aborted";
      if (e instanceof RangeError) {
        // The ITR's nonce is another request's; ours (64 random bits): all but impossible.
        if (itr) return "busy";
        c.inc(METRICS.mrDropped, { reason: "nonce-busy" });
        return "aborted";
      }
      if (e instanceof NoReplyError) {
        c.inc(METRICS.mrReferralTimeouts);
        x.logger.limited(
          `mr-timeout ${rloc}`,
          60_000,
          "warn",
          "mr-ddt-node-timeout",
          { node: formatPeer(to), eid: o.eidText },
        );
        return undefined;
      }
      throw e;
    }
  }
}
