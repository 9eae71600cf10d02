/**
 * The DDT map-resolver's referral cache (roles/mr.ts, RFC 8111 §7.3): what
 * DDT nodes and map-servers referred it to, by prefix, each entry until
 * its TTL runs out. A referral with the I bit or a TTL of 0 is not cached
 * (§6.4); an MS-NOT-REGISTERED is kept {@link NOT_REGISTERED_TTL} minutes,
 * whatever TTL it came with. Lookups drop the expired entries they meet;
 * {@link ReferralCache.sweep} drops the rest.
 *
 * @module
 */

import { type Prefix, PrefixTable } from "../../core/prefix.ts";
import { type EidRecord, REFERRAL_ACTION } from "../../wire/eid_record.ts";

/** TTL of the negative Map-Reply after MS-NOT-REGISTERED, minutes (RFC 8111 §7.3.2); cached as long. */
export const NOT_REGISTERED_TTL = 1;

/** One entry of the referral cache. */
export interface ReferralCacheEntry {
  /** The referral's EID prefix (with its instance ID). */
  readonly prefix: Prefix;
  /** The referral action (RFC 8111 §6.4): node/ms referral, or a negative one. */
  readonly action: number;
  /** Addresses of the referred DDT nodes or Map-Servers (empty for negative entries). */
  readonly rlocs: readonly string[];
  /** TTL the referral came with, minutes. */
  readonly ttl: number;
  /** When the entry expires, in the role's clock (ms). */
  readonly expiresAt: number;
}

/** The referral cache (see the module notes). */
export class ReferralCache {
  readonly #table = new PrefixTable<ReferralCacheEntry>();
  readonly #now: () => number;

  /** An empty cache on the role's clock `now` (ms). */
  constructor(now: () => number) {
    this.#now = now;
  }

  /** Number of entries, expired ones not yet swept included. */
  get size(): number {
    return this.#table.size;
  }

  /** The most specific unexpired entry containing `eid`. */
  lookup(eid: Prefix): ReferralCacheEntry | undefined {
    const now = this.#now();
    for (;;) {
      const e = this.#table.lookup(eid);
      if (e === undefined) return undefined;
      if (e.value.expiresAt > now) return e.value;
      this.#table.delete(e.prefix);
    }
  }

  /** Caches `record`, a referral for `prefix` to `rlocs` (none for a negative one). */
  add(prefix: Prefix, record: EidRecord, rlocs: readonly string[]): void {
    if (record.incomplete || record.ttl === 0) return; // RFC 8111 §6.4: I bit, do not cache
    const ttl = record.action === REFERRAL_ACTION.MS_NOT_REGISTERED
      ? NOT_REGISTERED_TTL
      : record.ttl;
    this.#table.set(prefix, {
      prefix,
      action: record.action,
      rlocs,
      ttl,
      expiresAt: this.#now() + ttl * 60_000,
    });
  }

  /** Forgets the entry for `prefix` (a stale referral). */
  delete(prefix: Prefix): void {
    this.#table.delete(prefix);
  }

  /** Drops every expired entry. */
  sweep(): void {
    const now = this.#now();
    const dead: Prefix[] = [];
    for (const e of this.#table.entries()) if (e.value.expiresAt <= now) dead.push(e.prefix);
    for (const p of dead) this.#table.delete(p);
  }

  /** The unexpired entries. */
  entries(): ReferralCacheEntry[] {
    const now = this.#now();
    return [...this.#table.entries()].map((e) => e.value).filter((v) => v.expiresAt > now);
  }
}
