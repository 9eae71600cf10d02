/**
 * The data plane's map-cache: entries with kind, action, locators, TTL
 * expiry and static entries over an {@link LpmTable} (lpm.ts), a per-entry
 * 256-slot locator selection table ({@link selectLocator}) and a per-flow
 * hash ({@link flowHash}), so that one flow always takes one locator.
 *
 * Pure TypeScript: no Deno APIs, so it runs in a Worker or a browser.
 *
 * @module
 */

import type { Family, Prefix } from "../core/prefix.ts";
import { ipv4FromBytes, ipv4ToBytes, ipv6FromBytes, ipv6ToBytes } from "../wire/ip_text.ts";
import {
  IPV4_DST_OFFSET,
  IPV4_HEADER_MIN_LENGTH,
  IPV4_SRC_OFFSET,
  ipv4HeaderBytes,
  ipv4IsFragment,
  ipv4Protocol,
  IPV6_EXT_DEST_OPTS,
  IPV6_EXT_HOP_BY_HOP,
  IPV6_EXT_ROUTING,
  IPV6_HEADER_LENGTH,
  IPV6_SRC_OFFSET,
  ipv6ExtensionLength,
  ipv6NextHeader,
  ipVersion,
} from "../wire/ip.ts";
import { LpmTable, mix32 } from "./lpm.ts";

export { LpmTable } from "./lpm.ts";

// ---------------------------------------------------------------------------
// Locator selection and flow hash
// ---------------------------------------------------------------------------

/** One locator (RLOC) of a map-cache entry. */
export interface Locator {
  /** Canonical address text ("192.0.2.1", "2001:db8::1"). */
  readonly address: string;
  /** Address family of the RLOC. */
  readonly family: "ipv4" | "ipv6";
  /** Address bytes (4 or 16), shared between entries: never modify. */
  readonly bytes: Uint8Array;
  /** Unicast priority: lower is preferred, 255 means "do not use". */
  readonly priority: number;
  /** Unicast weight among up locators of the same priority. */
  readonly weight: number;
  /** Reachable: false after failed RLOC probes or an R bit of 0. */
  readonly up: boolean;
  /** UDP destination port of packets to it; 0: the data plane's port (NAT traversal sets it). */
  readonly port: number;
  /** Down for a strict hop of its explicit locator path (packets dropped as `dropped:elp-strict`). */
  readonly elpStrict: boolean;
}

/** Locator as given to {@link MapCache.set}. */
export interface LocatorInit {
  /** IPv4 or IPv6 address text. */
  readonly address: string;
  /** Priority 0..255 (255: not used for unicast). */
  readonly priority: number;
  /** Weight 0..255. */
  readonly weight: number;
  /** Whether the locator starts up (default true). */
  readonly up?: boolean;
  /** UDP destination port (default 0: the data plane's port). */
  readonly port?: number;
  /** Down for a strict hop of its explicit locator path (default false; implies down). */
  readonly elpStrict?: boolean;
}

const EMPTY_SELECTION = new Uint8Array(256);
const selections = new Map<string, Uint8Array>();
/** Cap on each intern map (selection tables, RLOCs, locators): when full it starts over. */
const MAX_INTERNED = 1 << 16;

/**
 * The 256-slot table of an entry: slot → locator index, over the up
 * locators of the best (lowest) priority below 255, in proportion to their
 * weights (all equal when every weight there is 0). Tables are interned:
 * entries with the same pattern share one.
 */
function buildSelection(locs: readonly Locator[]): { table: Uint8Array; usable: number } {
  let best = 255;
  for (const l of locs) if (l.up && l.priority < best) best = l.priority;
  if (best === 255) return { table: EMPTY_SELECTION, usable: 0 };
  const idx: number[] = [];
  const w: number[] = [];
  let total = 0;
  for (let i = 0; i < locs.length; i++) {
    const l = locs[i]!;
    if (l.up && l.priority === best) total += l.weight;
  }
  for (let i = 0; i < locs.length; i++) {
    const l = locs[i]!;
    if (!l.up || l.priority !== best) continue;
    if (total > 0 && l.weight === 0) continue;
    idx.push(i);
    w.push(total > 0 ? l.weight : 1);
  }
  if (total === 0) total = idx.length;
  let key = "";
  for (let j = 0; j < idx.length; j++) key += `${idx[j]}:${w[j]},`;
  let table = selections.get(key);
  if (table === undefined) {
    table = new Uint8Array(256);
    // Slot i takes the locator whose cumulative weight range holds the
    // slot's midpoint (2i+1)/512 of the total.
    let j = 0;
    let end = w[0]!;
    for (let i = 0; i < 256; i++) {
      const x = (2 * i + 1) * total;
      while (end * 512 <= x) end += w[++j]!;
      table[i] = idx[j]!;
    }
    if (selections.size >= MAX_INTERNED) selections.clear();
    selections.set(key, table);
  }
  let usable = 0;
  for (let j = 0; j < idx.length; j++) if (table.includes(idx[j]!)) usable++;
  return { table, usable };
}

/**
 * The locator index that carries the flow with hash `flowHash` (from
 * {@link flowHash}), or -1 when the entry has no usable locator (none up,
 * or all at priority 255). Allocation-free: one table read.
 */
export function selectLocator(entry: MapCacheEntry, flowHash: number): number {
  return entry.usable === 0 ? -1 : entry.selection[flowHash & 255]!;
}

function mixIn(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function rd32(b: Uint8Array, i: number): number {
  return (b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!;
}

/** IP protocols whose first 4 payload bytes are source and destination ports. */
function hasPorts(proto: number): boolean {
  return proto === 6 || proto === 17 || proto === 132 || proto === 136 || proto === 33;
}

/**
 * A 30-bit hash of the flow of the IPv4 or IPv6 packet at
 * `bytes[off, off+len)`: source, destination, protocol and, when present,
 * the transport ports (TCP, UDP, SCTP, UDP-Lite, DCCP; not in fragments, so
 * every packet of a flow hashes alike; IPv6 hop-by-hop, routing and
 * destination-options headers are skipped). Returns 0 for anything that is
 * not a whole IP header. Never throws, never allocates.
 */
export function flowHash(bytes: Uint8Array, off: number, len: number): number {
  if (len < IPV4_HEADER_MIN_LENGTH || off < 0 || off + len > bytes.length) return 0;
  const ver = ipVersion(bytes, off);
  let h = 0x2f0b3e1d;
  let proto: number;
  let ports = 0;
  if (ver === 4) {
    const ihl = ipv4HeaderBytes(bytes, off);
    if (ihl < IPV4_HEADER_MIN_LENGTH || ihl > len) return 0;
    h = mixIn(h, rd32(bytes, off + IPV4_SRC_OFFSET));
    h = mixIn(h, rd32(bytes, off + IPV4_DST_OFFSET));
    proto = ipv4Protocol(bytes, off);
    if (!ipv4IsFragment(bytes, off) && hasPorts(proto) && len >= ihl + 4) {
      ports = rd32(bytes, off + ihl);
    }
  } else if (ver === 6) {
    if (len < IPV6_HEADER_LENGTH) return 0;
    for (let i = IPV6_SRC_OFFSET; i < IPV6_HEADER_LENGTH; i += 4) {
      h = mixIn(h, rd32(bytes, off + i));
    }
    proto = ipv6NextHeader(bytes, off);
    let p = IPV6_HEADER_LENGTH;
    for (
      let n = 0;
      n < 8 &&
      (proto === IPV6_EXT_HOP_BY_HOP || proto === IPV6_EXT_ROUTING || proto === IPV6_EXT_DEST_OPTS);
      n++
    ) {
      if (p + 8 > len) break;
      const next = bytes[off + p]!;
      p += ipv6ExtensionLength(bytes, off + p);
      proto = next;
    }
    if (hasPorts(proto) && p + 4 <= len) ports = rd32(bytes, off + p);
  } else {
    return 0;
  }
  h = mixIn(h, proto);
  h = mixIn(h, ports);
  return mix32(h) & 0x3fffffff;
}

// ---------------------------------------------------------------------------
// MapCache
// ---------------------------------------------------------------------------

/** Whether an entry maps to locators (positive) or says there are none (negative Map-Reply). */
export type MapCacheKind = "positive" | "negative";

/** One map-cache entry. Objects are stable: updates of the same prefix change them in place. */
export interface MapCacheEntry {
  /** Entry id: what {@link LpmTable} maps the prefix to; reused after a delete. */
  readonly id: number;
  /** The EID prefix (host bits zero). */
  readonly prefix: Prefix;
  /** Positive (has locators) or negative (a Map-Reply with no locators). */
  readonly kind: MapCacheKind;
  /** ACT from the Map-Reply (wire `ACTION`: 0 no-action, 1 natively-forward, 2 send-map-request, 3..5 drop). */
  readonly action: number;
  /** Locators, in record order (a frozen array, shared between entries with the same locators). */
  readonly locators: readonly Locator[];
  /** When the entry expires (ms, same clock as {@link MapCache.expire}); Infinity when never. */
  readonly expiresAt: number;
  /** From `[[static-map-cache]]`: never expires. */
  readonly static: boolean;
  /** Precomputed selection: flow hash & 255 → locator index (see {@link selectLocator}); shared between entries, never modify. */
  readonly selection: Uint8Array;
  /** Number of locators that carry traffic (0: none usable). */
  readonly usable: number;
}

/** What {@link MapCache.set} stores for a prefix. */
export interface MapCacheEntryInit {
  /** Positive or negative mapping. */
  readonly kind: MapCacheKind;
  /** ACT (default 0, no-action). */
  readonly action?: number;
  /** Locators (at most 255; none for a negative entry). */
  readonly locators?: readonly LocatorInit[];
  /** Expiry time in ms; required unless static (Infinity: never). */
  readonly expiresAt?: number;
  /** A static entry never expires (its `expiresAt` is Infinity). */
  readonly static?: boolean;
}

/** Bytes per slab that entry prefixes are copied into (a slab is freed when all its entries are). */
const SLAB_BYTES = 1 << 16;
const NO_LOCATORS: readonly Locator[] = Object.freeze([]);

interface Rloc {
  address: string;
  family: "ipv4" | "ipv6";
  bytes: Uint8Array;
}

interface MutableEntry {
  id: number;
  prefix: Prefix;
  kind: MapCacheKind;
  action: number;
  locators: readonly Locator[];
  expiresAt: number;
  static: boolean;
  selection: Uint8Array;
  usable: number;
  heapIndex: number;
}

/**
 * The map-cache: an {@link LpmTable} over entry ids, the entries, and a
 * min-heap of expiry times.
 */
export class MapCache {
  readonly #lpm = new LpmTable();
  readonly #byId: (MutableEntry | undefined)[] = [];
  readonly #freeIds: number[] = [];
  readonly #heap: MutableEntry[] = [];
  readonly #rlocs = new Map<string, Rloc>();
  readonly #internedLocators = new Map<string, Locator>();
  readonly #internedSets = new Map<string, readonly Locator[]>();
  #slab = new Uint8Array(SLAB_BYTES);
  #slabUsed = 0;
  #size = 0;

  /** Number of entries. */
  get size(): number {
    return this.#size;
  }

  /** The lookup structure: id-level lookups (ids for {@link byId}) and memory figures. */
  get table(): LpmTable {
    return this.#lpm;
  }

  /**
   * Adds or replaces the entry at exactly `prefix`. An existing entry keeps
   * its object and id. Throws RangeError/TypeError on bad input (locator
   * address, priority or weight out of range, a negative entry with
   * locators, no `expiresAt` for a dynamic entry). It replaces a static
   * entry as well: callers that must keep static entries from
   * `[[static-map-cache]]` check `get(prefix)?.static` first.
   */
  set(prefix: Prefix, init: MapCacheEntryInit): MapCacheEntry {
    const locators = this.#locators(init);
    const isStatic = init.static === true;
    let expiresAt = Infinity;
    if (!isStatic) {
      if (typeof init.expiresAt !== "number" || Number.isNaN(init.expiresAt)) {
        throw new TypeError("a dynamic map-cache entry needs expiresAt");
      }
      expiresAt = init.expiresAt;
    }
    const action = init.action ?? 0;
    if (!Number.isInteger(action) || action < 0 || action > 7) {
      throw new RangeError(`action ${action} out of range`);
    }
    const { table, usable } = buildSelection(locators);
    const existing = this.#lpm.get(prefix);
    let e = existing === -1 ? undefined : this.#byId[existing];
    if (e === undefined) {
      const id = this.#freeIds.pop() ?? this.#byId.length;
      e = {
        id,
        prefix: {
          iid: prefix.iid,
          family: prefix.family,
          bytes: this.#copyBytes(
            prefix.bytes,
            prefix.family === "ipv4" ? 4 : prefix.family === "ipv6" ? 16 : 6,
            prefix.len,
          ),
          len: prefix.len,
        },
        kind: init.kind,
        action,
        locators,
        expiresAt,
        static: isStatic,
        selection: table,
        usable,
        heapIndex: -1,
      };
      this.#lpm.set(e.prefix, id);
      this.#byId[id] = e;
      this.#size++;
    } else {
      e.kind = init.kind;
      e.action = action;
      e.locators = locators;
      e.expiresAt = expiresAt;
      e.static = isStatic;
      e.selection = table;
      e.usable = usable;
    }
    this.#schedule(e);
    return e;
  }

  #locators(init: MapCacheEntryInit): readonly Locator[] {
    const list = init.locators ?? [];
    if (init.kind === "negative" && list.length > 0) {
      throw new TypeError("a negative map-cache entry has no locators");
    }
    if (list.length > 255) throw new RangeError("at most 255 locators");
    const out: Locator[] = [];
    for (const l of list) {
      if (!isByte(l.priority)) throw new RangeError(`priority ${l.priority} out of range`);
      if (!isByte(l.weight)) throw new RangeError(`weight ${l.weight} out of range`);
      const port = l.port ?? 0;
      if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
        throw new RangeError(`port ${port} out of range`);
      }
      const strict = l.elpStrict === true;
      out.push(
        this.#locator(
          this.#rloc(l.address),
          l.priority,
          l.weight,
          !strict && (l.up ?? true),
          port,
          strict,
        ),
      );
    }
    return this.#locatorSet(out);
  }

  /** An interned locator: entries naming the same RLOC with the same policy share it. */
  #locator(
    r: Rloc,
    priority: number,
    weight: number,
    up: boolean,
    port: number,
    elpStrict = false,
  ): Locator {
    const key = `${r.address}/${priority}/${weight}/${up ? 1 : 0}/${port}/${elpStrict ? 1 : 0}`;
    let l = this.#internedLocators.get(key);
    if (l === undefined) {
      l = {
        address: r.address,
        family: r.family,
        bytes: r.bytes,
        priority,
        weight,
        up,
        port,
        elpStrict,
      };
      if (this.#internedLocators.size >= MAX_INTERNED) this.#internedLocators.clear();
      this.#internedLocators.set(key, l);
    }
    return l;
  }

  /** An interned locator list (entries of one site usually share theirs). */
  #locatorSet(list: Locator[]): readonly Locator[] {
    if (list.length === 0) return NO_LOCATORS;
    let key = "";
    for (const l of list) {
      key += `${l.address}/${l.priority}/${l.weight}/${l.up ? 1 : 0}/${l.port}/${
        l.elpStrict ? 1 : 0
      },`;
    }
    let set = this.#internedSets.get(key);
    if (set === undefined) {
      set = Object.freeze(list);
      if (this.#internedSets.size >= MAX_INTERNED) this.#internedSets.clear();
      this.#internedSets.set(key, set);
    }
    return set;
  }

  /** A copy of the first `n` bytes of `b`, masked to `len` bits, carved from a shared slab. */
  #copyBytes(b: Uint8Array, n: number, len: number): Uint8Array {
    if (this.#slabUsed + n > this.#slab.length) {
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#slabUsed = 0;
    }
    const out = this.#slab.subarray(this.#slabUsed, this.#slabUsed + n);
    this.#slabUsed += n;
    for (let i = 0; i < n; i++) {
      const keep = len - i * 8;
      out[i] = keep >= 8 ? b[i]! : keep <= 0 ? 0 : b[i]! & (0xff << (8 - keep));
    }
    return out;
  }

  /** Interned canonical text and bytes of an RLOC address. */
  #rloc(address: string): Rloc {
    let r = this.#rlocs.get(address);
    if (r !== undefined) return r;
    const b16 = new Uint8Array(16);
    if (ipv4ToBytes(address, b16, 0)) {
      const bytes = b16.slice(0, 4);
      r = { address: ipv4FromBytes(bytes, 0), family: "ipv4", bytes };
    } else if (ipv6ToBytes(address, b16, 0)) {
      r = { address: ipv6FromBytes(b16, 0), family: "ipv6", bytes: b16 };
    } else {
      throw new TypeError(`locator address ${JSON.stringify(address)} is not IPv4 or IPv6`);
    }
    if (this.#rlocs.size >= MAX_INTERNED) this.#rlocs.clear();
    this.#rlocs.set(address, r);
    this.#rlocs.set(r.address, r);
    return r;
  }

  /** The entry at exactly `prefix`. */
  get(prefix: Prefix): MapCacheEntry | undefined {
    const id = this.#lpm.get(prefix);
    return id === -1 ? undefined : this.#byId[id];
  }

  /** The entry with id `id` (as returned by {@link LpmTable} lookups). */
  byId(id: number): MapCacheEntry | undefined {
    return this.#byId[id];
  }

  /** Removes the entry at exactly `prefix`; returns it, or undefined when absent. */
  delete(prefix: Prefix): MapCacheEntry | undefined {
    const id = this.#lpm.delete(prefix);
    if (id === -1) return undefined;
    const e = this.#byId[id]!;
    this.#drop(e);
    return e;
  }

  #drop(e: MutableEntry): void {
    if (e.heapIndex !== -1) this.#heapRemove(e.heapIndex);
    this.#byId[e.id] = undefined;
    this.#freeIds.push(e.id);
    this.#size--;
  }

  /**
   * The most specific entry in `iid` containing the address of `family` at
   * `bytes[off, ...)` (4, 16 or 6 bytes), or undefined. Allocation-free.
   */
  lookup(iid: number, family: Family, bytes: Uint8Array, off: number): MapCacheEntry | undefined {
    const id = this.#lpm.lookup(iid, family, bytes, off);
    return id === -1 ? undefined : this.#byId[id];
  }

  /** {@link lookup} for an IPv4 address at `bytes[off, off+4)`. */
  lookupV4(iid: number, bytes: Uint8Array, off: number): MapCacheEntry | undefined {
    const id = this.#lpm.lookupV4(iid, bytes, off);
    return id === -1 ? undefined : this.#byId[id];
  }

  /** {@link lookup} for an IPv6 address at `bytes[off, off+16)`. */
  lookupV6(iid: number, bytes: Uint8Array, off: number): MapCacheEntry | undefined {
    const id = this.#lpm.lookupV6(iid, bytes, off);
    return id === -1 ? undefined : this.#byId[id];
  }

  /** {@link lookup} for a MAC address at `bytes[off, off+6)` (exact match). */
  lookupMac(iid: number, bytes: Uint8Array, off: number): MapCacheEntry | undefined {
    const id = this.#lpm.lookupMac(iid, bytes, off);
    return id === -1 ? undefined : this.#byId[id];
  }

  /** Every entry (order unspecified). */
  *entries(): Generator<MapCacheEntry> {
    for (const e of this.#byId) if (e !== undefined) yield e;
  }

  /** Removes every non-static entry with `expiresAt <= now` and returns them. */
  expire(now: number): MapCacheEntry[] {
    const out: MapCacheEntry[] = [];
    const heap = this.#heap;
    while (heap.length > 0 && heap[0]!.expiresAt <= now) {
      const e = heap[0]!;
      this.#lpm.delete(e.prefix);
      this.#drop(e);
      out.push(e);
    }
    return out;
  }

  /** The earliest `expiresAt` of a dynamic entry (Infinity when none): when to call {@link expire}. */
  nextExpiry(): number {
    return this.#heap[0]?.expiresAt ?? Infinity;
  }

  /**
   * Marks locator `index` of `entry` up or down and recomputes the entry's
   * selection; returns whether anything changed.
   */
  setLocatorUp(entry: MapCacheEntry, index: number, up: boolean): boolean {
    const e = this.#byId[entry.id];
    if (e !== entry || e === undefined) return false;
    const l = e.locators[index];
    // A strict explicit-locator-path hop keeps it down: probing its address does not lift that.
    if (l === undefined || l.up === up || l.elpStrict) return false;
    const list = e.locators.slice();
    list[index] = this.#locator(l, l.priority, l.weight, up, l.port, l.elpStrict);
    const locators = this.#locatorSet(list);
    e.locators = locators;
    const { table, usable } = buildSelection(locators);
    e.selection = table;
    e.usable = usable;
    return true;
  }

  /**
   * Marks every locator with address `address` up or down, in every entry
   * (RLOC probing); returns the number of entries changed. O(entries).
   */
  setRlocUp(address: string, up: boolean): number {
    const b = this.#rloc(address).bytes;
    let changed = 0;
    for (const e of this.#byId) {
      if (e === undefined) continue;
      let hit = false;
      for (let i = 0; i < e.locators.length; i++) {
        const l = e.locators[i]!;
        if (
          l.bytes.length === b.length && l.up !== up && sameBytes(l.bytes, b) &&
          this.setLocatorUp(e, i, up)
        ) {
          hit = true;
        }
      }
      if (hit) changed++;
    }
    return changed;
  }

  #schedule(e: MutableEntry): void {
    const dynamic = !e.static && e.expiresAt !== Infinity;
    if (!dynamic) {
      if (e.heapIndex !== -1) this.#heapRemove(e.heapIndex);
      return;
    }
    if (e.heapIndex === -1) {
      e.heapIndex = this.#heap.length;
      this.#heap.push(e);
    }
    this.#siftUp(e.heapIndex);
    this.#siftDown(e.heapIndex);
  }

  #heapRemove(i: number): void {
    const heap = this.#heap;
    const e = heap[i]!;
    const last = heap.pop()!;
    e.heapIndex = -1;
    if (last === e) return;
    heap[i] = last;
    last.heapIndex = i;
    this.#siftUp(i);
    this.#siftDown(last.heapIndex);
  }

  #siftUp(i: number): void {
    const heap = this.#heap;
    const e = heap[i]!;
    while (i > 0) {
      const pi = (i - 1) >> 1;
      const p = heap[pi]!;
      if (p.expiresAt <= e.expiresAt) break;
      heap[i] = p;
      p.heapIndex = i;
      i = pi;
    }
    heap[i] = e;
    e.heapIndex = i;
  }

  #siftDown(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const e = heap[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && heap[c + 1]!.expiresAt < heap[c]!.expiresAt) c++;
      const ch = heap[c]!;
      if (ch.expiresAt >= e.expiresAt) break;
      heap[i] = ch;
      ch.heapIndex = i;
      i = c;
    }
    heap[i] = e;
    e.heapIndex = i;
  }
}

/** The init that recreates `entry` (to ship an entry to another MapCache, e.g. in a Worker). */
export function entryInit(entry: MapCacheEntry): MapCacheEntryInit {
  const locators = entry.locators.map((l) => ({
    address: l.address,
    priority: l.priority,
    weight: l.weight,
    up: l.up,
    ...(l.port !== 0 ? { port: l.port } : {}),
  }));
  return entry.static
    ? { kind: entry.kind, action: entry.action, locators, static: true }
    : { kind: entry.kind, action: entry.action, locators, expiresAt: entry.expiresAt };
}

function isByte(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 255;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
