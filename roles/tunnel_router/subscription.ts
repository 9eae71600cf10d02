/**
 * Publish/subscribe, the ITR side (RFC 9437), with `subscribe = true`.
 *
 * - Every Map-Request resolution.ts sends subscribes: the N bit on its
 *   record, the I bit with this router's xTR-ID and Site-ID
 *   ({@link Subscriber.requestFields}).
 * - A map-server that supports it answers as usual and then sends a
 *   Map-Notify with the mapping, and another on every change of it (a
 *   publication). One is taken when it carries the I bit with our xTR-ID
 *   and verifies under the key of a `[[map-server]]` entry (the one whose
 *   address sent it first, then the others: our site key, which the
 *   map-server signs publications with). Its records go into the map-cache
 *   at once ({@link MapCache.install}, which pushes them to every
 *   data-plane Worker through datapath.ts); a record with TTL 0 removes the
 *   entry (the mapping was withdrawn: the next packet asks again). Static
 *   entries and an rtr's NAT entries are never replaced.
 * - Each publication is acknowledged with a Map-Notify-Ack of the same
 *   contents, signed with the same key (RFC 9301 §5.7), also when it is a
 *   resend of one already applied (same nonce as the last one applied for
 *   that prefix: acknowledged, not applied again).
 * - Fallback: a map-server without publish/subscribe (OOR 1.3.0's ignores
 *   the N and I bits and answers the Map-Request as any other) never
 *   publishes; the map-cache then follows SMRs and TTLs as without
 *   `subscribe`. Nothing needs switching off.
 *
 * Counters: `oor_tr_publications_total{result="applied"|"duplicate"|"auth"|"not-ours"}`.
 *
 * @module
 */

import { addressToString } from "../../wire/address.ts";
import { authStatus, HmacKey } from "../../wire/auth.ts";
import { emitSignedMapNotify, type MapNotify } from "../../wire/map_notify.ts";
import { type ControlPlane, formatPeer, type Received } from "../../core/control.ts";
import { formatPrefix, prefixOf } from "../../core/prefix.ts";
import { METRICS } from "../../core/metrics.ts";
import { type Env, TTL_FOREVER } from "./context.ts";
import type { MapCache } from "./map_cache.ts";

/** Log interval of rejected publications, per source. */
const LOG_INTERVAL_MS = 60_000;
/** Prefixes whose last applied nonce is remembered, at most. */
const MAX_NONCES = 100_000;

/** The ITR side of publish/subscribe (see the module notes). */
export class Subscriber {
  readonly #env: Env;
  readonly #cp: ControlPlane;
  readonly #cache: MapCache;
  readonly #xtrId: bigint;
  readonly #siteId: bigint;
  /** Map-server address → its prepared key. */
  readonly #keys: { readonly address: string; readonly key: HmacKey }[];
  /** The nonce of the last publication applied, by prefix. */
  readonly #applied = new Map<string, bigint>();

  constructor(
    env: Env,
    cp: ControlPlane,
    cache: MapCache,
    opts: { readonly xtrId: bigint; readonly siteId: bigint },
  ) {
    this.#env = env;
    this.#cp = cp;
    this.#cache = cache;
    this.#xtrId = opts.xtrId;
    this.#siteId = opts.siteId;
    this.#keys = env.config.mapServers.flatMap((ms) =>
      ms.key !== undefined ? [{ address: ms.address, key: new HmacKey(ms.keyType, ms.key) }] : []
    );
  }

  /** Whether Map-Requests subscribe (`subscribe = true`). */
  get enabled(): boolean {
    return this.#env.config.subscribe;
  }

  /** What a subscribing Map-Request carries: the xTR-ID and Site-ID (I bit). */
  requestFields(): { readonly xtrId: bigint; readonly siteId: bigint } {
    return { xtrId: this.#xtrId, siteId: this.#siteId };
  }

  /**
   * A Map-Notify that answered no Map-Register of ours: true when it is a
   * publication for us (then handled here), false otherwise.
   */
  publication(r: Received, m: MapNotify): boolean {
    if (m.ack || !m.xtrIdPresent || m.rtrAuthPresent) return false;
    const { counters: c, log } = this.#env;
    if (m.xtrId !== this.#xtrId) {
      c.inc(METRICS.trPublications, { result: "not-ours" });
      return false;
    }
    const key = this.#keyFor(r, m);
    if (key === undefined) {
      c.inc(METRICS.trPublications, { result: "auth" });
      log.limited(
        `publication-rejected ${r.from.address}`,
        LOG_INTERVAL_MS,
        "warn",
        "publication-rejected",
        { peer: formatPeer(r.from), reason: "authentication: no [[map-server]] key verifies it" },
      );
      return true;
    }
    const now = this.#env.now();
    for (const rec of m.records) {
      const p = prefixOf(rec.eid, rec.maskLen);
      if (p === undefined) continue;
      const text = formatPrefix(p);
      if (this.#applied.get(text) === m.nonce) {
        c.inc(METRICS.trPublications, { result: "duplicate" });
        continue;
      }
      this.#applied.delete(text);
      this.#applied.set(text, m.nonce);
      if (this.#applied.size > MAX_NONCES) this.#applied.delete(this.#applied.keys().next().value!);
      const old = this.#cache.get(p);
      if (old?.static || old?.natPort !== undefined) continue;
      c.inc(METRICS.trPublications, { result: "applied" });
      const rlocs = rec.locators.map((l) => addressToString(l.address)).join(",");
      if (rec.ttl === 0) {
        this.#cache.remove(p);
      } else {
        this.#cache.install({
          prefix: p,
          static: false,
          action: rec.locators.length > 0 ? "encapsulate" : "native-forward",
          locators: rec.locators,
          ttl: rec.ttl,
          expiresAt: rec.ttl === TTL_FOREVER ? Infinity : now + rec.ttl * 60_000,
          from: formatPeer(r.from),
          origin: "map-notify",
        });
      }
      // One line per publication, at most one a second per prefix (the map-server decides how many).
      log.limited(`publication-applied ${text}`, 1_000, "info", "publication-applied", {
        prefix: text,
        rlocs: rlocs || "none",
        ttl: rec.ttl,
        from: formatPeer(r.from),
        nonce: m.nonce,
      });
    }
    this.#cp.send(emitSignedMapNotify({ ...m, ack: true }, key), r.from, "map-notify-ack");
    return true;
  }

  /** The key of a `[[map-server]]` entry that verifies `m`: the sender's first. */
  #keyFor(r: Received, m: MapNotify): HmacKey | undefined {
    const from = r.from.address;
    const ordered = [
      ...this.#keys.filter((k) => k.address === from),
      ...this.#keys.filter((k) => k.address !== from),
    ];
    for (const { key } of ordered) {
      if (key.keyId === m.keyId && authStatus(r.bytes, key) === "ok") return key;
    }
    return undefined;
  }
}
