/**
 * Longest-prefix-match tables keyed by (instance id, EID prefix), for the
 * control plane: map-server sites and registrations, DDT delegations, the
 * map-resolver's referral cache, and the xTR's map-cache.
 *
 * One path-compressed binary trie per (instance id, family). Prefixes are
 * {@link Prefix} values: an instance id, a family (IPv4, IPv6 or MAC), the
 * address bytes with host bits zero, and a length.
 *
 * @module
 */

import {
  type Address,
  inInstance,
  type IPv4Address,
  type IPv6Address,
  type MacAddress,
} from "../wire/address.ts";
import {
  formatPrefix as formatConfigPrefix,
  type Prefix as ConfigPrefix,
} from "../config/schema.ts";
import {
  ipv4FromBytes,
  ipv4ToBytes,
  ipv6FromBytes,
  ipv6ToBytes,
  macFromBytes,
  macToBytes,
} from "../wire/ip_text.ts";

/** Address families an EID prefix can have. */
export type Family = "ipv4" | "ipv6" | "mac";

/** Bits in an address of each family. */
export const FAMILY_BITS: Readonly<Record<Family, number>> = { ipv4: 32, ipv6: 128, mac: 48 };

/** An EID prefix in an instance: the unit of every table here. */
export interface Prefix {
  /** Instance ID (0 when none). */
  readonly iid: number;
  /** Address family. */
  readonly family: Family;
  /** Address bytes (4, 16 or 6), host bits zero. */
  readonly bytes: Uint8Array;
  /** Prefix length in bits. */
  readonly len: number;
}

function bit(b: Uint8Array, i: number): number {
  return (b[i >> 3]! >> (7 - (i & 7))) & 1;
}

/** Number of leading bits `a` and `b` share, at most `max`. */
function commonBits(a: Uint8Array, b: Uint8Array, max: number): number {
  let i = 0;
  const whole = max >> 3;
  while (i < whole && a[i] === b[i]) i++;
  let n = i * 8;
  if (n >= max) return max;
  const x = a[i]! ^ b[i]!;
  if (x === 0) return Math.min(max, n + 8);
  n += Math.clz32(x) - 24;
  return Math.min(n, max);
}

/** Copies `bytes` with every bit from `len` on cleared. */
export function maskBytes(bytes: Uint8Array, len: number): Uint8Array {
  const out = bytes.slice();
  for (let i = 0; i < out.length; i++) {
    const keep = len - i * 8;
    if (keep >= 8) continue;
    out[i] = keep <= 0 ? 0 : out[i]! & (0xff << (8 - keep));
  }
  return out;
}

/**
 * The prefix of an EID address with `maskLen` bits, unwrapping an
 * Instance-ID LCAF. Host bits are cleared. Returns undefined for address
 * kinds that are not EID prefixes (AFI 0, DN, other LCAFs).
 */
export function prefixOf(eid: Address, maskLen: number, iid = 0): Prefix | undefined {
  switch (eid.kind) {
    case "iid":
      return prefixOf(eid.address, maskLen, eid.iid);
    case "ipv4": {
      const b = new Uint8Array(4);
      ipv4ToBytes(eid.ip, b, 0);
      return mk(iid, "ipv4", b, maskLen);
    }
    case "ipv6": {
      const b = new Uint8Array(16);
      ipv6ToBytes(eid.ip, b, 0);
      return mk(iid, "ipv6", b, maskLen);
    }
    case "mac": {
      const b = new Uint8Array(6);
      macToBytes(eid.mac, b, 0);
      return mk(iid, "mac", b, maskLen);
    }
    default:
      return undefined;
  }
}

function mk(iid: number, family: Family, b: Uint8Array, len: number): Prefix | undefined {
  if (!Number.isInteger(len) || len < 0 || len > FAMILY_BITS[family]) return undefined;
  return { iid, family, bytes: maskBytes(b, len), len };
}

/** A host prefix (full length) for an EID address; see {@link prefixOf}. */
export function hostPrefixOf(eid: Address, iid = 0): Prefix | undefined {
  const inner = eid.kind === "iid" ? eid.address : eid;
  const family = inner.kind;
  if (family !== "ipv4" && family !== "ipv6" && family !== "mac") return undefined;
  return prefixOf(eid, FAMILY_BITS[family], iid);
}

/** Parses `"10.0.0.0/8"`, `"2001:db8::/32"` (length optional: a host prefix). */
export function parsePrefix(text: string, iid = 0): Prefix | undefined {
  const slash = text.indexOf("/");
  const addr = slash < 0 ? text : text.slice(0, slash);
  const lenText = slash < 0 ? undefined : text.slice(slash + 1);
  if (lenText !== undefined && !/^\d{1,3}$/.test(lenText)) return undefined;
  const b16 = new Uint8Array(16);
  let family: Family;
  let bytes: Uint8Array;
  if (ipv4ToBytes(addr, b16, 0)) {
    family = "ipv4";
    bytes = b16.slice(0, 4);
  } else if (ipv6ToBytes(addr, b16, 0)) {
    family = "ipv6";
    bytes = b16;
  } else if (macToBytes(addr, b16, 0)) {
    family = "mac";
    bytes = b16.slice(0, 6);
  } else {
    return undefined;
  }
  const len = lenText === undefined ? FAMILY_BITS[family] : Number(lenText);
  return mk(iid, family, bytes, len);
}

/**
 * The prefix of a config `eid-prefix` (already validated, so a bad one is
 * our own bug: a TypeError).
 */
export function prefixFromConfig(p: ConfigPrefix, iid = 0): Prefix {
  const out = parsePrefix(formatConfigPrefix(p), iid);
  if (out === undefined) throw new TypeError(`bad prefix ${formatConfigPrefix(p)} in config`);
  return out;
}

/** The address part of a prefix as a wire {@link Address}. */
export function prefixAddress(p: Prefix): IPv4Address | IPv6Address | MacAddress {
  switch (p.family) {
    case "ipv4":
      return { kind: "ipv4", ip: ipv4FromBytes(p.bytes, 0) };
    case "ipv6":
      return { kind: "ipv6", ip: ipv6FromBytes(p.bytes, 0) };
    case "mac":
      return { kind: "mac", mac: macFromBytes(p.bytes, 0) };
  }
}

/** The EID of a prefix as sent in records: wrapped in an Instance-ID LCAF when iid ≠ 0. */
export function prefixEid(p: Prefix): Address {
  const a = prefixAddress(p);
  return inInstance(p.iid, a);
}

/** `"[iid]addr/len"` (the `[iid]` only when non-zero). */
export function formatPrefix(p: Prefix): string {
  const a = prefixAddress(p);
  const text = a.kind === "mac" ? a.mac : a.ip;
  return `${p.iid !== 0 ? `[${p.iid}]` : ""}${text}/${p.len}`;
}

/** Whether `outer` contains `inner` (same instance and family, shorter or equal, same bits). */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  return outer.iid === inner.iid && outer.family === inner.family && outer.len <= inner.len &&
    commonBits(outer.bytes, inner.bytes, outer.len) === outer.len;
}

/** Whether two prefixes are the same. */
export function prefixEquals(a: Prefix, b: Prefix): boolean {
  return a.len === b.len && prefixContains(a, b);
}

interface Node<T> {
  bytes: Uint8Array;
  len: number;
  has: boolean;
  value: T | undefined;
  child: [Node<T> | undefined, Node<T> | undefined];
}

function newNode<T>(bytes: Uint8Array, len: number): Node<T> {
  return { bytes, len, has: false, value: undefined, child: [undefined, undefined] };
}

/** One entry of a table. */
export interface Entry<T> {
  /** The prefix. */
  readonly prefix: Prefix;
  /** Its value. */
  readonly value: T;
}

/** A path-compressed binary trie for one (instance id, family). */
class Trie<T> {
  root: Node<T> | undefined;
  size = 0;
  readonly iid: number;
  readonly family: Family;

  constructor(iid: number, family: Family) {
    this.iid = iid;
    this.family = family;
  }

  set(bytes: Uint8Array, len: number, value: T): void {
    let parentLink: { node: Node<T> | undefined; set: (n: Node<T>) => void } = {
      node: this.root,
      set: (n) => this.root = n,
    };
    for (;;) {
      const node = parentLink.node;
      if (node === undefined) {
        const n = newNode<T>(bytes, len);
        n.has = true;
        n.value = value;
        parentLink.set(n);
        this.size++;
        return;
      }
      const common = commonBits(bytes, node.bytes, Math.min(len, node.len));
      if (common === node.len && common === len) {
        if (!node.has) this.size++;
        node.has = true;
        node.value = value;
        return;
      }
      if (common === node.len) {
        const b = bit(bytes, node.len);
        parentLink = { node: node.child[b], set: (n) => node.child[b] = n };
        continue;
      }
      // Split: a new node at `common` bits above `node`.
      const split = newNode<T>(maskBytes(bytes, common), common);
      split.child[bit(node.bytes, common)] = node;
      if (common === len) {
        split.has = true;
        split.value = value;
      } else {
        const leaf = newNode<T>(bytes, len);
        leaf.has = true;
        leaf.value = value;
        split.child[bit(bytes, common)] = leaf;
      }
      parentLink.set(split);
      this.size++;
      return;
    }
  }

  find(bytes: Uint8Array, len: number): Node<T> | undefined {
    let node = this.root;
    while (node !== undefined) {
      if (node.len > len || commonBits(bytes, node.bytes, node.len) !== node.len) return undefined;
      if (node.len === len) return node.has ? node : undefined;
      node = node.child[bit(bytes, node.len)];
    }
    return undefined;
  }

  delete(bytes: Uint8Array, len: number): boolean {
    const path: Node<T>[] = [];
    let node = this.root;
    while (node !== undefined) {
      if (node.len > len || commonBits(bytes, node.bytes, node.len) !== node.len) return false;
      path.push(node);
      if (node.len === len) break;
      node = node.child[bit(bytes, node.len)];
    }
    if (node === undefined || !node.has) return false;
    node.has = false;
    node.value = undefined;
    this.size--;
    // Remove or merge now-useless nodes, bottom up.
    for (let i = path.length - 1; i >= 0; i--) {
      const n = path[i]!;
      if (n.has) break;
      const kids = (n.child[0] ? 1 : 0) + (n.child[1] ? 1 : 0);
      if (kids === 2) break;
      const replacement = n.child[0] ?? n.child[1];
      const parent = path[i - 1];
      if (parent === undefined) this.root = replacement;
      else parent.child[bit(n.bytes, parent.len)] = replacement;
    }
    return true;
  }

  /** Deepest entry whose prefix contains bytes/len. */
  longest(bytes: Uint8Array, len: number): Node<T> | undefined {
    let best: Node<T> | undefined;
    let node = this.root;
    while (node !== undefined) {
      if (node.len > len || commonBits(bytes, node.bytes, node.len) !== node.len) break;
      if (node.has) best = node;
      if (node.len === len) break;
      node = node.child[bit(bytes, node.len)];
    }
    return best;
  }

  /** Shortest entry whose prefix contains bytes/len. */
  shortest(bytes: Uint8Array, len: number): Node<T> | undefined {
    let node = this.root;
    while (node !== undefined) {
      if (node.len > len || commonBits(bytes, node.bytes, node.len) !== node.len) return undefined;
      if (node.has) return node;
      if (node.len === len) return undefined;
      node = node.child[bit(bytes, node.len)];
    }
    return undefined;
  }

  /** Every entry inside bytes/len (including an equal one). */
  *within(bytes: Uint8Array, len: number): Generator<Node<T>> {
    let node = this.root;
    while (node !== undefined && node.len < len) {
      if (commonBits(bytes, node.bytes, node.len) !== node.len) return;
      node = node.child[bit(bytes, node.len)];
    }
    if (node === undefined || commonBits(bytes, node.bytes, len) !== len) return;
    yield* walk(node);
  }

  /**
   * Longest number of leading bits `bytes` shares with any stored prefix
   * (capped at that prefix's length), or -1 when the trie is empty.
   */
  maxCommon(bytes: Uint8Array): number {
    let node = this.root;
    if (node === undefined) return -1;
    for (;;) {
      const common = commonBits(bytes, node.bytes, node.len);
      if (common < node.len) return common;
      const next: Node<T> | undefined = node.child[bit(bytes, node.len)];
      if (next === undefined) return node.len;
      node = next;
    }
  }
}

function* walk<T>(n: Node<T>): Generator<Node<T>> {
  if (n.has) yield n;
  if (n.child[0]) yield* walk(n.child[0]);
  if (n.child[1]) yield* walk(n.child[1]);
}

/**
 * A longest-prefix-match table from {@link Prefix} to `T`, across instance
 * ids and families.
 */
export class PrefixTable<T> {
  #tries = new Map<string, Trie<T>>();
  #size = 0;

  #trie(iid: number, family: Family, create: true): Trie<T>;
  #trie(iid: number, family: Family, create: false): Trie<T> | undefined;
  #trie(iid: number, family: Family, create: boolean): Trie<T> | undefined {
    const k = `${iid}/${family}`;
    let t = this.#tries.get(k);
    if (t === undefined && create) {
      t = new Trie<T>(iid, family);
      this.#tries.set(k, t);
    }
    return t;
  }

  #entry(t: Trie<T>, n: Node<T>): Entry<T> {
    return {
      prefix: { iid: t.iid, family: t.family, bytes: n.bytes, len: n.len },
      value: n.value as T,
    };
  }

  /** Number of entries. */
  get size(): number {
    return this.#size;
  }

  /** Adds or replaces the value at exactly `p`. */
  set(p: Prefix, value: T): void {
    const t = this.#trie(p.iid, p.family, true);
    const before = t.size;
    t.set(maskBytes(p.bytes, p.len), p.len, value);
    this.#size += t.size - before;
  }

  /** The value at exactly `p`. */
  get(p: Prefix): T | undefined {
    return this.#trie(p.iid, p.family, false)?.find(p.bytes, p.len)?.value;
  }

  /** Whether `p` itself is in the table. */
  has(p: Prefix): boolean {
    return this.#trie(p.iid, p.family, false)?.find(p.bytes, p.len) !== undefined;
  }

  /** Removes `p`; returns whether it was there. */
  delete(p: Prefix): boolean {
    const t = this.#trie(p.iid, p.family, false);
    if (t === undefined || !t.delete(p.bytes, p.len)) return false;
    this.#size--;
    if (t.size === 0) this.#tries.delete(`${p.iid}/${p.family}`);
    return true;
  }

  /** The most specific entry containing `p` (an address is a full-length prefix). */
  lookup(p: Prefix): Entry<T> | undefined {
    const t = this.#trie(p.iid, p.family, false);
    const n = t?.longest(p.bytes, p.len);
    return n && t ? this.#entry(t, n) : undefined;
  }

  /** The least specific entry containing `p`. */
  covering(p: Prefix): Entry<T> | undefined {
    const t = this.#trie(p.iid, p.family, false);
    const n = t?.shortest(p.bytes, p.len);
    return n && t ? this.#entry(t, n) : undefined;
  }

  /** Every entry equal to or more specific than `p`. */
  *within(p: Prefix): Generator<Entry<T>> {
    const t = this.#trie(p.iid, p.family, false);
    if (t === undefined) return;
    for (const n of t.within(p.bytes, p.len)) yield this.#entry(t, n);
  }

  /** Every entry. */
  *entries(): Generator<Entry<T>> {
    for (const t of this.#tries.values()) {
      if (t.root) { for (const n of walk(t.root)) yield this.#entry(t, n); }
    }
  }

  /**
   * For a prefix `p` not inside any entry, the least specific prefix that
   * contains `p` and overlaps no entry: the "hole" a negative Map-Reply
   * covers (RFC 9301 §8.3). Undefined when `p` overlaps an entry.
   */
  hole(p: Prefix): Prefix | undefined {
    const t = this.#trie(p.iid, p.family, false);
    const common = t?.maxCommon(p.bytes) ?? -1;
    const len = common + 1;
    if (len > p.len) return undefined;
    const candidate = { iid: p.iid, family: p.family, bytes: maskBytes(p.bytes, len), len };
    if (t !== undefined && t.longest(candidate.bytes, len) !== undefined) return undefined;
    return candidate;
  }
}
