/**
 * The Map-Server's registration store: what ETRs registered (and what the
 * config registered statically), keyed by EID prefix and, within one
 * prefix, by who registered it.
 *
 * - Several ETRs of one site may register the same prefix (RFC 9301 §8.2,
 *   RFC 8378 for the merge semantics). Each keeps its own
 *   {@link Registration}: keyed by xTR-ID when the Map-Register carried one
 *   (I bit, RFC 9301 §5.6), else by the source address of the
 *   Map-Register. A refresh from the same key replaces that entry only.
 * - {@link RegistrationStore.lookup} returns the live registrations of the
 *   most specific registered prefix covering a request; the Map-Server
 *   merges their locators into one answer.
 * - A static registration (`[[ms-static-registered-site]]`) never expires.
 *   When ETRs have also registered the prefix, their registrations are
 *   answered instead of the static one (it comes back if they expire).
 * - Each site's registrations are counted ({@link RegistrationStore.siteCount}),
 *   for the registrar to hold a site to its `max-registrations`; expired
 *   ones count until they are dropped.
 * - Expiry is lazy (a lookup drops what has expired on its way) and
 *   {@link RegistrationStore.sweep} removes the rest; the Map-Server runs
 *   it from a timer. Time is always passed in, never read here.
 * - Whoever keeps a copy of it (the answer table the map-server's Workers
 *   read, answers.ts) hears of every prefix whose registrations changed,
 *   right after the change ({@link RegistrationStore.onChange}).
 *
 * @module
 */

import type { LocatorRecord } from "../../wire/locator.ts";
import type { Peer } from "../../core/control.ts";
import { formatPrefix, type Prefix, PrefixTable } from "../../core/prefix.ts";

/** Key of the static registration of a prefix. */
export const STATIC_KEY = "static";

/** One registration of one prefix by one ETR (or by the config). */
export interface Registration {
  /** The registered EID prefix (instance id included). */
  readonly prefix: Prefix;
  /** Who registered it: {@link registrationKey}, or {@link STATIC_KEY}. */
  readonly key: string;
  /** True for `[[ms-static-registered-site]]` entries. */
  readonly static: boolean;
  /** xTR-ID of the Map-Register (I bit). */
  readonly xtrId?: bigint;
  /** site-ID of the Map-Register (I bit). */
  readonly siteId?: bigint;
  /** Source address and port of the last Map-Register (absent for static entries). */
  readonly from?: Peer;
  /** The locators registered (RLOCs), as they came in the record. */
  readonly locators: readonly LocatorRecord[];
  /** Record TTL in minutes, as registered: the TTL of Map-Replies built from it. */
  readonly ttl: number;
  /** Record action, as registered (used when the locator set is empty). */
  readonly action: number;
  /** Map-Version Number of the record (RFC 9302). */
  readonly mapVersion: number;
  /** P bit of the Map-Register: answer Map-Requests for it here. */
  readonly proxyReply: boolean;
  /** The lisp-site prefix it was accepted under (absent for static entries). */
  readonly site?: Prefix;
  /** When it was first registered (ms since the epoch). */
  readonly firstSeen: number;
  /** When the last Map-Register refreshed it. */
  readonly lastSeen: number;
  /** When it expires without a refresh; `Infinity` for static entries. */
  readonly expiresAt: number;
  /**
   * For a registration an RTR relayed (an xTR behind a NAT): the xTR's
   * private RLOC, the inner source address of the ECM it sent.
   */
  readonly natPrivate?: string;
}

/** The key of a prefix's one registration without an xTR-ID, when they replace each other. */
export const NO_XTR_ID_KEY = "no-xtr-id";

/**
 * The key that keeps apart the registrations of several ETRs for one
 * prefix: the xTR-ID when there is one. Without one, the registering
 * address when `bySource` (the site's `merge`, or the Map-Register's merge
 * request), else one key for all: the last Map-Register replaces the
 * previous one, wherever it came from (an ETR that moved, as OOR's
 * map-server does).
 */
export function registrationKey(xtrId: bigint | undefined, from: Peer, bySource = true): string {
  if (xtrId !== undefined) return `xtr-id:${xtrId.toString(16)}`;
  return bySource ? `rloc:${from.address}` : NO_XTR_ID_KEY;
}

/** The registrations of one prefix, by key, as the store holds them ({@link RegistrationStore.holder}). */
export type RegistrationHolder = ReadonlyMap<string, Registration>;

/** The live registrations of one prefix, as a lookup returns them. */
export interface RegisteredPrefix {
  /** The registered prefix. */
  readonly prefix: Prefix;
  /**
   * Its live registrations, most recently refreshed first: the ETRs' when
   * there are any, else the static one.
   */
  readonly registrations: readonly Registration[];
}

/** Registrations by prefix and key, with expiry. */
export class RegistrationStore {
  readonly #table = new PrefixTable<Map<string, Registration>>();
  /** The same maps, for walks over every registration without the trie's recursion. */
  readonly #holders = new Set<Map<string, Registration>>();
  /** No registration expires before this (a lower bound: refreshes only push expiries out). */
  #nextExpiry = Infinity;
  /** Registrations per site, by the site prefix's text. */
  readonly #perSite = new Map<string, number>();
  #dynamic = 0;
  #static = 0;
  #version = 0;
  #refreshes = 0;
  /** Called with each prefix whose registrations changed (put, removed, expired), after the change. */
  onChange: ((prefix: Prefix) => void) | undefined;
  /**
   * Called with each registration {@link RegistrationStore.refresh} moved
   * (only its times changed), after the move.
   */
  onRefresh: ((r: Registration) => void) | undefined;

  /** Bumped by every change (a put, a removal, an expiry): saved.ts writes when it moved. */
  get version(): number {
    return this.#version;
  }

  /**
   * Bumped by every {@link RegistrationStore.refresh} (only times moved):
   * saved.ts writes when it or {@link version} moved.
   */
  get refreshes(): number {
    return this.#refreshes;
  }

  /** Counts `r` in (`+1`) or out of (`-1`) its site and the totals. */
  #count(r: Registration, d: 1 | -1): void {
    this.#version++;
    if (r.static) this.#static += d;
    else this.#dynamic += d;
    if (r.site === undefined) return;
    const k = formatPrefix(r.site);
    const n = (this.#perSite.get(k) ?? 0) + d;
    if (n > 0) this.#perSite.set(k, n);
    else this.#perSite.delete(k);
  }

  /** Number of registrations (live or not yet swept) accepted under the site of prefix `site`. */
  siteCount(site: Prefix): number {
    return this.#perSite.get(formatPrefix(site)) ?? 0;
  }

  /** The registrations of exactly `prefix`, expired ones included. */
  at(prefix: Prefix): Iterable<Registration> {
    return this.#table.get(prefix)?.values() ?? [];
  }

  /** Number of registrations made by Map-Registers (live or not yet swept). */
  get dynamicCount(): number {
    return this.#dynamic;
  }

  /** Number of static registrations. */
  get staticCount(): number {
    return this.#static;
  }

  /**
   * Adds or replaces the registration of `r.prefix` under `r.key`. Returns
   * the one it replaced, if any.
   */
  put(r: Registration): Registration | undefined {
    let regs = this.#table.get(r.prefix);
    if (regs === undefined) {
      regs = new Map();
      this.#table.set(r.prefix, regs);
      this.#holders.add(regs);
    }
    if (r.expiresAt < this.#nextExpiry) this.#nextExpiry = r.expiresAt;
    const old = regs.get(r.key);
    if (old !== undefined) this.#count(old, -1);
    this.#count(r, 1);
    regs.set(r.key, r);
    this.onChange?.(r.prefix);
    return old;
  }

  /**
   * Where `r` is held (its prefix's registrations), for
   * {@link RegistrationStore.refresh}; undefined when the store does not
   * hold `r` itself.
   */
  holder(r: Registration): RegistrationHolder | undefined {
    const regs = this.#table.get(r.prefix);
    return regs?.get(r.key) === r ? regs : undefined;
  }

  /**
   * A refresh that changes nothing but the times: `r`, still held in
   * `holder` ({@link RegistrationStore.holder}), the only registration of
   * its prefix, and live at `now`, gets `lastSeen = now` and `expiresAt` in
   * place. No {@link onChange} (the prefix's answer is the same), and
   * {@link version} stays; {@link onRefresh} hears of it. False, and
   * nothing changed, when `r` is not such a registration: the caller
   * applies it as a change.
   */
  refresh(r: Registration, holder: RegistrationHolder, now: number, expiresAt: number): boolean {
    // A holder emptied is never used again (put makes a new one), and every
    // removal or replacement of `r` takes it out of its holder.
    if (holder.size !== 1 || holder.get(r.key) !== r || r.expiresAt <= now) return false;
    // The store owns the objects it holds: their times move in place.
    const w = r as { -readonly [K in "lastSeen" | "expiresAt"]: number };
    w.lastSeen = now;
    w.expiresAt = expiresAt;
    // Earlier than before only if the clock went back: the sweep's bound stays a lower bound.
    if (expiresAt < this.#nextExpiry) this.#nextExpiry = expiresAt;
    this.#refreshes++;
    this.onRefresh?.(r);
    return true;
  }

  /** The registration of `prefix` under `key`, expired or not. */
  get(prefix: Prefix, key: string): Registration | undefined {
    return this.#table.get(prefix)?.get(key);
  }

  /** Removes the registration of `prefix` under `key`; returns it if it was there. */
  remove(prefix: Prefix, key: string): Registration | undefined {
    const regs = this.#table.get(prefix);
    const r = regs?.get(key);
    if (regs === undefined || r === undefined) return undefined;
    regs.delete(key);
    this.#count(r, -1);
    if (regs.size === 0) this.#drop(prefix, regs);
    this.onChange?.(prefix);
    return r;
  }

  /**
   * The most specific registered prefix that contains `p` and still has a
   * live registration at `now`. Registrations found expired on the way are
   * removed and passed to `onExpired`.
   */
  lookup(
    p: Prefix,
    now: number,
    onExpired?: (r: Registration) => void,
  ): RegisteredPrefix | undefined {
    for (;;) {
      const e = this.#table.lookup(p);
      if (e === undefined) return undefined;
      const live = this.#live(e.prefix, e.value, now, onExpired);
      if (live.length > 0) return { prefix: e.prefix, registrations: live };
      // Every registration of that prefix expired: it is gone; look again.
    }
  }

  /**
   * For a prefix no registration contains, the least specific prefix that
   * contains `p` and overlaps no registered prefix; undefined when a
   * registered prefix lies inside `p`. (Expired registrations not yet swept
   * still count: the answer can only be more specific than needed.)
   */
  hole(p: Prefix): Prefix | undefined {
    return this.#table.hole(p);
  }

  /**
   * Removes every registration expired at `now`; returns them. A walk over
   * them all, unless none can have expired yet.
   */
  sweep(now: number): Registration[] {
    const gone: Registration[] = [];
    if (now < this.#nextExpiry) return gone;
    const emptied: [Prefix, Map<string, Registration>][] = [];
    const changed: Prefix[] = [];
    let next = Infinity;
    for (const regs of this.#holders) {
      let prefix: Prefix | undefined;
      for (const r of regs.values()) {
        if (r.expiresAt <= now) {
          regs.delete(r.key);
          this.#count(r, -1);
          gone.push(r);
          prefix = r.prefix;
        } else if (r.expiresAt < next) next = r.expiresAt;
      }
      if (prefix === undefined) continue;
      changed.push(prefix);
      if (regs.size === 0) emptied.push([prefix, regs]);
    }
    this.#nextExpiry = next;
    for (const [p, regs] of emptied) this.#drop(p, regs);
    if (this.onChange !== undefined) { for (const p of changed) this.onChange(p); }
    return gone;
  }

  /** Every registration (expired ones included until swept). */
  *all(): Generator<Registration> {
    for (const regs of this.#holders) yield* regs.values();
  }

  /** Forgets the emptied registrations of `prefix`. */
  #drop(prefix: Prefix, regs: Map<string, Registration>): void {
    this.#table.delete(prefix);
    this.#holders.delete(regs);
  }

  #live(
    prefix: Prefix,
    regs: Map<string, Registration>,
    now: number,
    onExpired: ((r: Registration) => void) | undefined,
  ): Registration[] {
    const dynamic: Registration[] = [];
    let stat: Registration | undefined;
    let expired = false;
    for (const r of regs.values()) {
      if (r.expiresAt <= now) {
        regs.delete(r.key);
        this.#count(r, -1);
        onExpired?.(r);
        expired = true;
      } else if (r.static) {
        stat = r;
      } else {
        dynamic.push(r);
      }
    }
    if (regs.size === 0) this.#drop(prefix, regs);
    if (expired) this.onChange?.(prefix);
    return liveOrder(dynamic, stat);
  }
}

/**
 * The registrations a lookup answers with, in answer order: the ETRs'
 * (most recently refreshed first) when there are any, else the static one.
 */
export function liveOrder(dynamic: Registration[], stat: Registration | undefined): Registration[] {
  if (dynamic.length === 0) return stat !== undefined ? [stat] : [];
  if (dynamic.length > 1) dynamic.sort((a, b) => b.lastSeen - a.lastSeen);
  return dynamic;
}
