/**
 * Longest-prefix match over (instance id, EID prefix) to a small integer
 * (an entry id), built for the data-plane Worker, where it runs on every
 * packet: {@link LpmTable}.
 *
 * IPv4 and IPv6 use a multibit trie with stride 8 whose nodes are
 * compressed (Luleå/Poptrie style): a 256-bit bitmap marks where a run of
 * equal slot values starts, and only the runs are stored. Leaf pushing
 * makes every slot hold either a child node or the final answer, so a
 * lookup reads one 64-byte node header and one run word per address byte
 * and stops at the first leaf. Everything lives in a few `Int32Array`
 * pools; a lookup allocates nothing. MAC EIDs (exact match only) use an
 * open-addressing hash table.
 *
 * Pure TypeScript: no Deno APIs, so it runs in a Worker or a browser.
 *
 * @module
 */

import type { Family, Prefix } from "../core/prefix.ts";

// ---------------------------------------------------------------------------
// Compressed stride-8 trie
// ---------------------------------------------------------------------------

/** Int32 words per node header: exactly one 64-byte cache line. */
const NODE_WORDS = 16;
/** Words 0..7: bitmap, bit s set when slot s starts a new run. */
const H_BITMAP = 0;
/** Words 8..9: runs before each bitmap word, one byte each (word w in byte w & 3). */
const H_CUM = 8;
/** Word 10: offset of the node's runs in the run pool. */
const H_BASE = 10;
/** Word 11: number of runs (0 for a free node). */
const H_RUNS = 11;
/** Word 12: the entry pushed down from the ancestors (-1 none). */
const H_INHERITED = 12;
/** Word 13: parent node (0 for a root); the free-list link of a free node. */
const H_PARENT = 13;
/** Word 14: head of the node's own prefix list (-1 none). */
const H_LIST = 14;
/** Word 15: parent slot (bits 0..7), depth (8..15), child count (16..24). */
const H_META = 15;

/** Largest entry id: ids and node ids stay small integers (V8 Smis). */
export const MAX_ENTRY_ID = 0x3fffffff;

/** Marks a freshly allocated child whose inherited entry is not yet set. */
const UNSET = -2;

/**
 * One stride-8 trie per address family, with one root per instance id.
 *
 * A slot value `v` in a run is a child node id when `v > 0`, otherwise a
 * leaf holding entry `-v - 1` (so 0 means "no entry"). Each node also keeps
 * the list of prefixes that end inside it (controlled prefix expansion), so
 * that a delete can repaint the slots from the prefixes that remain.
 */
class StrideTrie {
  /** Address bytes (4 or 16): the deepest node has depth `bytes - 1`. */
  readonly #bytes: number;
  #H: Int32Array;
  #nodeTop = 1; // node 0 is reserved: a slot value of 0 is "no entry"
  #nodeFree = 0;
  #nodes = 0;
  #R: Int32Array;
  #runTop = 0;
  #runFreeWords = 0;
  readonly #runFree = new Int32Array(257).fill(-1);
  #pKey: Int32Array;
  #pEnt: Int32Array;
  #pNext: Int32Array;
  #pTop = 0;
  #pFree = -1;
  readonly #roots = new Map<number, number>();
  #lastIid = -1;
  #lastRoot = 0;
  #size = 0;
  // Scratch for rebuilds (never used across the recursive step).
  readonly #child = new Int32Array(256);
  readonly #leaf = new Int32Array(256);
  readonly #len = new Int8Array(256);
  readonly #out = new Int32Array(256);

  constructor(bytes: number) {
    this.#bytes = bytes;
    this.#H = new Int32Array(64 * NODE_WORDS);
    this.#R = new Int32Array(1024);
    this.#pKey = new Int32Array(64);
    this.#pEnt = new Int32Array(64);
    this.#pNext = new Int32Array(64);
  }

  get size(): number {
    return this.#size;
  }

  /** Root node of `iid`, 0 when it has no prefixes. */
  #root(iid: number): number {
    const r = this.#roots.get(iid) ?? 0;
    this.#lastIid = iid;
    this.#lastRoot = r;
    return r;
  }

  /** Longest match for the address at `b[off, off+bytes)`: an entry id or -1. */
  lookup(iid: number, b: Uint8Array, off: number): number {
    let n = iid === this.#lastIid ? this.#lastRoot : this.#root(iid);
    if (n === 0) return -1;
    const H = this.#H;
    const R = this.#R;
    const end = off + this.#bytes;
    for (let i = off; i < end; i++) {
      const s = b[i]!;
      const h = n << 4;
      const w = s >>> 5;
      // Runs up to and including slot s: popcount of the bitmap word's low bits.
      let x = H[h + w]! << (31 - (s & 31));
      x = (x - ((x >>> 1) & 0x55555555)) | 0;
      x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
      x = (x + (x >>> 4)) & 0x0f0f0f0f;
      const before = (H[h + H_CUM + (w >>> 2)]! >>> ((w & 3) << 3)) & 0xff;
      const v = R[H[h + H_BASE]! + before + (Math.imul(x, 0x01010101) >>> 24) - 1]!;
      if (v <= 0) return -v - 1;
      n = v;
    }
    return -1;
  }

  /** The run value of slot `s` of node `n` (control path). */
  #valueAt(n: number, s: number): number {
    const H = this.#H;
    const h = n << 4;
    const w = s >>> 5;
    const before = (H[h + H_CUM + (w >>> 2)]! >>> ((w & 3) << 3)) & 0xff;
    return this.#R[H[h + H_BASE]! + before + popcount(H[h + w]! << (31 - (s & 31))) - 1]!;
  }

  /** Walks to the node at `depth` on the path of `b`; 0 when missing. */
  #walk(iid: number, b: Uint8Array, depth: number): number {
    let n = this.#roots.get(iid) ?? 0;
    for (let d = 0; d < depth && n !== 0; d++) {
      const v = this.#valueAt(n, b[d]!);
      n = v > 0 ? v : 0;
    }
    return n;
  }

  /** Position (depth, list key) of a prefix of `len` bits. */
  #key(b: Uint8Array, len: number): number {
    const depth = len === 0 ? 0 : (len - 1) >>> 3;
    const l = len - depth * 8;
    const v = l === 0 ? 0 : b[depth]! >>> (8 - l);
    return v | (l << 8);
  }

  #find(n: number, key: number): number {
    for (let p = this.#H[(n << 4) + H_LIST]!; p !== -1; p = this.#pNext[p]!) {
      if (this.#pKey[p] === key) return p;
    }
    return -1;
  }

  /** The entry at exactly (iid, b/len), or -1. */
  get(iid: number, b: Uint8Array, len: number): number {
    const n = this.#walk(iid, b, len === 0 ? 0 : (len - 1) >>> 3);
    if (n === 0) return -1;
    const p = this.#find(n, this.#key(b, len));
    return p === -1 ? -1 : this.#pEnt[p]!;
  }

  /** Sets (iid, b/len) to entry `ent`; returns the previous entry or -1. */
  set(iid: number, b: Uint8Array, len: number, ent: number): number {
    const depth = len === 0 ? 0 : (len - 1) >>> 3;
    let n = this.#roots.get(iid) ?? 0;
    if (n === 0) {
      n = this.#allocNode(0, 0, 0);
      this.#H[(n << 4) + H_INHERITED] = -1;
      this.#roots.set(iid, n);
      if (iid === this.#lastIid) this.#lastRoot = n;
      this.#rebuild(n, -1, 0);
    }
    for (let d = 0; d < depth; d++) {
      const s = b[d]!;
      let c = this.#valueAt(n, s);
      if (c <= 0) {
        c = this.#allocNode(n, s, d + 1);
        this.#rebuild(n, s, c);
      }
      n = c;
    }
    const key = this.#key(b, len);
    const h = n << 4;
    let p = this.#find(n, key);
    if (p !== -1) {
      const old = this.#pEnt[p]!;
      if (old !== ent) {
        this.#pEnt[p] = ent;
        this.#rebuild(n, -1, 0);
      }
      return old;
    }
    p = this.#allocPrefix();
    this.#pKey[p] = key;
    this.#pEnt[p] = ent;
    this.#pNext[p] = this.#H[h + H_LIST]!;
    this.#H[h + H_LIST] = p;
    this.#size++;
    this.#rebuild(n, -1, 0);
    return -1;
  }

  /** Removes (iid, b/len); returns its entry or -1 when absent. */
  delete(iid: number, b: Uint8Array, len: number): number {
    let n = this.#walk(iid, b, len === 0 ? 0 : (len - 1) >>> 3);
    if (n === 0) return -1;
    const key = this.#key(b, len);
    const H = this.#H;
    let prev = -1;
    let p = H[(n << 4) + H_LIST]!;
    while (p !== -1 && this.#pKey[p] !== key) {
      prev = p;
      p = this.#pNext[p]!;
    }
    if (p === -1) return -1;
    const old = this.#pEnt[p]!;
    if (prev === -1) H[(n << 4) + H_LIST] = this.#pNext[p]!;
    else this.#pNext[prev] = this.#pNext[p]!;
    this.#pNext[p] = this.#pFree;
    this.#pFree = p;
    this.#size--;
    // Prune nodes left with no prefixes and no children, bottom up;
    // `gone` is the slot of `n` whose child was just freed (-1 none).
    let gone = -1;
    for (;;) {
      const h = n << 4;
      const H2 = this.#H;
      const children = (H2[h + H_META]! >>> 16) - (gone === -1 ? 0 : 1);
      if (H2[h + H_LIST] !== -1 || children !== 0) {
        this.#rebuild(n, gone, 0);
        break;
      }
      const parent = H2[h + H_PARENT]!;
      gone = H2[h + H_META]! & 0xff;
      this.#freeNode(n);
      if (parent === 0) {
        this.#roots.delete(iid);
        if (iid === this.#lastIid) this.#lastRoot = 0;
        break;
      }
      n = parent;
    }
    return old;
  }

  /**
   * Recomputes node `n`'s runs from its prefixes, its inherited entry and
   * its children (slot `os` is set to child `ov`, or cleared when `ov` is
   * 0), then pushes the new leaf values down to children that need them.
   */
  #rebuild(n: number, os: number, ov: number): void {
    const child = this.#child;
    const leaf = this.#leaf;
    const len = this.#len;
    const out = this.#out;
    const h = n << 4;
    // Children from the current runs.
    const runs = this.#H[h + H_RUNS]!;
    if (runs === 0) child.fill(0);
    else {
      const H = this.#H;
      const R = this.#R;
      const base = H[h + H_BASE]!;
      let r = -1;
      for (let s = 0; s < 256; s++) {
        if ((H[h + (s >>> 5)]! >>> (s & 31)) & 1) r++;
        const v = R[base + r]!;
        child[s] = v > 0 ? v : 0;
      }
    }
    if (os >= 0) child[os] = ov;
    // Paint the node's own prefixes over the inherited entry.
    leaf.fill(this.#H[h + H_INHERITED]!);
    len.fill(-1);
    for (let p = this.#H[h + H_LIST]!; p !== -1; p = this.#pNext[p]!) {
      const key = this.#pKey[p]!;
      const l = key >>> 8;
      const a = (key & 0xff) << (8 - l);
      const e = a + (1 << (8 - l));
      const ent = this.#pEnt[p]!;
      for (let s = a; s < e; s++) {
        if (l > len[s]!) {
          len[s] = l;
          leaf[s] = ent;
        }
      }
    }
    let pending: number[] | undefined;
    let children = 0;
    for (let s = 0; s < 256; s++) {
      const c = child[s]!;
      if (c !== 0) {
        children++;
        if (this.#H[(c << 4) + H_INHERITED] !== leaf[s]) (pending ??= []).push(c, leaf[s]!);
        out[s] = c;
      } else {
        out[s] = -leaf[s]! - 1;
      }
    }
    // Compress into runs.
    let k = 1;
    for (let s = 1; s < 256; s++) if (out[s] !== out[s - 1]) k++;
    let base = this.#H[h + H_BASE]!;
    if (runs !== k) {
      if (runs !== 0) this.#freeRuns(base, runs);
      this.#H[h + H_RUNS] = 0; // not live while the pool may be compacted
      base = this.#allocRuns(k);
    }
    const H = this.#H;
    const R = this.#R;
    let r = -1;
    let cumLo = 0;
    let cumHi = 0;
    for (let w = 0; w < 8; w++) {
      const before = r + 1;
      if (w < 4) cumLo |= before << (w * 8);
      else cumHi |= before << ((w - 4) * 8);
      let bm = 0;
      for (let i = 0; i < 32; i++) {
        const s = w * 32 + i;
        if (s === 0 || out[s] !== out[s - 1]) {
          r++;
          R[base + r] = out[s]!;
          bm |= 1 << i;
        }
      }
      H[h + H_BITMAP + w] = bm;
    }
    H[h + H_CUM] = cumLo;
    H[h + H_CUM + 1] = cumHi;
    H[h + H_BASE] = base;
    H[h + H_RUNS] = k;
    H[h + H_META] = (H[h + H_META]! & 0xffff) | (children << 16);
    if (pending !== undefined) {
      for (let i = 0; i < pending.length; i += 2) {
        const c = pending[i]!;
        this.#H[(c << 4) + H_INHERITED] = pending[i + 1]!;
        this.#rebuild(c, -1, 0);
      }
    }
  }

  #allocNode(parent: number, slot: number, depth: number): number {
    let n = this.#nodeFree;
    if (n !== 0) this.#nodeFree = this.#H[(n << 4) + H_PARENT]!;
    else {
      if ((this.#nodeTop + 1) * NODE_WORDS > this.#H.length) {
        const H = new Int32Array(this.#H.length * 2);
        H.set(this.#H);
        this.#H = H;
      }
      n = this.#nodeTop++;
    }
    const h = n << 4;
    this.#H.fill(0, h, h + NODE_WORDS);
    this.#H[h + H_INHERITED] = UNSET;
    this.#H[h + H_PARENT] = parent;
    this.#H[h + H_LIST] = -1;
    this.#H[h + H_META] = slot | (depth << 8);
    this.#nodes++;
    return n;
  }

  #freeNode(n: number): void {
    const h = n << 4;
    const runs = this.#H[h + H_RUNS]!;
    if (runs !== 0) this.#freeRuns(this.#H[h + H_BASE]!, runs);
    this.#H[h + H_RUNS] = 0;
    this.#H[h + H_PARENT] = this.#nodeFree;
    this.#nodeFree = n;
    this.#nodes--;
  }

  #allocPrefix(): number {
    let p = this.#pFree;
    if (p !== -1) {
      this.#pFree = this.#pNext[p]!;
      return p;
    }
    if (this.#pTop === this.#pKey.length) {
      const cap = this.#pKey.length * 2;
      this.#pKey = grow(this.#pKey, cap);
      this.#pEnt = grow(this.#pEnt, cap);
      this.#pNext = grow(this.#pNext, cap);
    }
    p = this.#pTop++;
    return p;
  }

  #allocRuns(k: number): number {
    const f = this.#runFree[k]!;
    if (f !== -1) {
      this.#runFree[k] = this.#R[f]!;
      this.#runFreeWords -= k;
      return f;
    }
    if (this.#runTop + k > this.#R.length) {
      const used = this.#runTop - this.#runFreeWords;
      if (this.#runFreeWords > this.#R.length >>> 2) {
        this.#compact(Math.max(this.#R.length, 2 * (used + k)));
      }
      if (this.#runTop + k > this.#R.length) this.#R = grow(this.#R, 2 * (this.#runTop + k));
    }
    const b = this.#runTop;
    this.#runTop += k;
    return b;
  }

  #freeRuns(base: number, k: number): void {
    this.#R[base] = this.#runFree[k]!;
    this.#runFree[k] = base;
    this.#runFreeWords += k;
  }

  /** Copies the runs of every live node into a fresh pool, dropping free blocks. */
  #compact(capacity: number): void {
    const H = this.#H;
    const old = this.#R;
    const R = new Int32Array(capacity);
    let top = 0;
    for (let n = 1; n < this.#nodeTop; n++) {
      const h = n << 4;
      const k = H[h + H_RUNS]!;
      if (k === 0) continue;
      const base = H[h + H_BASE]!;
      R.set(old.subarray(base, base + k), top);
      H[h + H_BASE] = top;
      top += k;
    }
    this.#R = R;
    this.#runTop = top;
    this.#runFreeWords = 0;
    this.#runFree.fill(-1);
  }

  /** Bytes held by the pools (capacity) and the part in use. */
  memory(): { allocated: number; used: number; nodes: number } {
    const allocated = this.#H.byteLength + this.#R.byteLength + this.#pKey.byteLength * 3 +
      this.#runFree.byteLength + 256 * 13;
    const used = this.#nodes * NODE_WORDS * 4 + (this.#runTop - this.#runFreeWords) * 4 +
      this.#size * 12;
    return { allocated, used, nodes: this.#nodes };
  }
}

function popcount(x: number): number {
  x = (x - ((x >>> 1) & 0x55555555)) | 0;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

function grow(a: Int32Array, cap: number): Int32Array {
  const b = new Int32Array(cap);
  b.set(a);
  return b;
}

// ---------------------------------------------------------------------------
// MAC exact match
// ---------------------------------------------------------------------------

/** A 32-bit finalizer (murmur3 fmix32). */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Open addressing with linear probing over (iid, 48-bit MAC), backward-shift deletes. */
class MacTable {
  #mask = 15;
  #iid = new Int32Array(16);
  #hi = new Int32Array(16);
  #lo = new Int32Array(16);
  #val = new Int32Array(16).fill(-1);
  #size = 0;

  get size(): number {
    return this.#size;
  }

  #slot(iid: number, hi: number, lo: number): number {
    return mix32(Math.imul(iid, 0x9e3779b1) ^ Math.imul(hi, 0x85ebca77) ^ lo) & this.#mask;
  }

  /** Entry of the MAC at `b[off, off+6)` in `iid`, or -1. */
  lookup(iid: number, b: Uint8Array, off: number): number {
    const hi = (b[off]! << 8) | b[off + 1]!;
    const lo = (b[off + 2]! << 24) | (b[off + 3]! << 16) | (b[off + 4]! << 8) | b[off + 5]!;
    iid |= 0;
    const val = this.#val;
    const mask = this.#mask;
    for (let i = this.#slot(iid, hi, lo);; i = (i + 1) & mask) {
      const v = val[i]!;
      if (v === -1) return -1;
      if (this.#lo[i] === lo && this.#hi[i] === hi && this.#iid[i] === iid) return v;
    }
  }

  set(iid: number, b: Uint8Array, ent: number): number {
    if ((this.#size + 1) * 2 > this.#mask + 1) this.#resize((this.#mask + 1) * 2);
    const hi = (b[0]! << 8) | b[1]!;
    const lo = (b[2]! << 24) | (b[3]! << 16) | (b[4]! << 8) | b[5]!;
    iid |= 0;
    for (let i = this.#slot(iid, hi, lo);; i = (i + 1) & this.#mask) {
      const v = this.#val[i]!;
      if (v === -1) {
        this.#iid[i] = iid;
        this.#hi[i] = hi;
        this.#lo[i] = lo;
        this.#val[i] = ent;
        this.#size++;
        return -1;
      }
      if (this.#lo[i] === lo && this.#hi[i] === hi && this.#iid[i] === iid) {
        this.#val[i] = ent;
        return v;
      }
    }
  }

  delete(iid: number, b: Uint8Array): number {
    const hi = (b[0]! << 8) | b[1]!;
    const lo = (b[2]! << 24) | (b[3]! << 16) | (b[4]! << 8) | b[5]!;
    iid |= 0;
    const mask = this.#mask;
    let i = this.#slot(iid, hi, lo);
    for (;; i = (i + 1) & mask) {
      if (this.#val[i] === -1) return -1;
      if (this.#lo[i] === lo && this.#hi[i] === hi && this.#iid[i] === iid) break;
    }
    const old = this.#val[i]!;
    this.#size--;
    // Backward-shift: move later members of the cluster into the hole.
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (this.#val[j] === -1) break;
      const home = this.#slot(this.#iid[j]!, this.#hi[j]!, this.#lo[j]!);
      // Move j to i unless its home lies cyclically in (i, j].
      if (((j - home) & mask) >= ((j - i) & mask)) {
        this.#iid[i] = this.#iid[j]!;
        this.#hi[i] = this.#hi[j]!;
        this.#lo[i] = this.#lo[j]!;
        this.#val[i] = this.#val[j]!;
        i = j;
      }
    }
    this.#val[i] = -1;
    return old;
  }

  #resize(cap: number): void {
    const iid = this.#iid;
    const hi = this.#hi;
    const lo = this.#lo;
    const val = this.#val;
    this.#mask = cap - 1;
    this.#iid = new Int32Array(cap);
    this.#hi = new Int32Array(cap);
    this.#lo = new Int32Array(cap);
    this.#val = new Int32Array(cap).fill(-1);
    for (let i = 0; i < val.length; i++) {
      if (val[i] === -1) continue;
      let j = this.#slot(iid[i]!, hi[i]!, lo[i]!);
      while (this.#val[j] !== -1) j = (j + 1) & this.#mask;
      this.#iid[j] = iid[i]!;
      this.#hi[j] = hi[i]!;
      this.#lo[j] = lo[i]!;
      this.#val[j] = val[i]!;
    }
  }

  memory(): number {
    return (this.#mask + 1) * 16;
  }
}

// ---------------------------------------------------------------------------
// LpmTable
// ---------------------------------------------------------------------------

/** Bytes of the structures of an {@link LpmTable}. */
export interface LpmMemory {
  /** Bytes of every typed array, at capacity. */
  readonly allocated: number;
  /** Bytes in use: live nodes, live runs, prefix records, hash slots. */
  readonly used: number;
  /** Live trie nodes (IPv4 + IPv6). */
  readonly nodes: number;
}

function checkPrefix(p: Prefix): void {
  const bits = p.family === "ipv4" ? 32 : p.family === "ipv6" ? 128 : 48;
  if (!Number.isInteger(p.len) || p.len < 0 || p.len > bits) {
    throw new RangeError(`prefix length ${p.len} out of range for ${p.family}`);
  }
  if (p.bytes.length < bits / 8) throw new RangeError(`prefix needs ${bits / 8} address bytes`);
  if (p.family === "mac" && p.len !== 48) {
    throw new RangeError(`MAC EIDs are matched exactly: length must be 48 (got ${p.len})`);
  }
  if (!Number.isInteger(p.iid) || p.iid < 0 || p.iid > 0xffffffff) {
    throw new RangeError(`instance id ${p.iid} out of range`);
  }
}

/**
 * Longest-prefix match from (instance id, EID prefix) to an entry id, for
 * IPv4 and IPv6; exact match for MAC (only /48 prefixes).
 *
 * Lookups read the destination straight from a packet buffer and allocate
 * nothing. Updates (set/delete) cost O(256) per touched trie node; a change
 * to a prefix that covers many more-specific ones also repaints the nodes
 * below it.
 */
export class LpmTable {
  readonly #v4 = new StrideTrie(4);
  readonly #v6 = new StrideTrie(16);
  readonly #mac = new MacTable();

  /** Number of prefixes. */
  get size(): number {
    return this.#v4.size + this.#v6.size + this.#mac.size;
  }

  /**
   * Maps prefix `p` to entry id `id` (0..{@link MAX_ENTRY_ID}); returns the
   * id it had before, or -1. Host bits of `p.bytes` are ignored.
   */
  set(p: Prefix, id: number): number {
    checkPrefix(p);
    if (!Number.isInteger(id) || id < 0 || id > MAX_ENTRY_ID) {
      throw new RangeError(`entry id ${id} out of range`);
    }
    switch (p.family) {
      case "ipv4":
        return this.#v4.set(p.iid, p.bytes, p.len, id);
      case "ipv6":
        return this.#v6.set(p.iid, p.bytes, p.len, id);
      case "mac":
        return this.#mac.set(p.iid, p.bytes, id);
    }
  }

  /** Removes prefix `p`; returns its entry id, or -1 when it was not there. */
  delete(p: Prefix): number {
    checkPrefix(p);
    switch (p.family) {
      case "ipv4":
        return this.#v4.delete(p.iid, p.bytes, p.len);
      case "ipv6":
        return this.#v6.delete(p.iid, p.bytes, p.len);
      case "mac":
        return this.#mac.delete(p.iid, p.bytes);
    }
  }

  /** Entry id at exactly prefix `p`, or -1. */
  get(p: Prefix): number {
    checkPrefix(p);
    switch (p.family) {
      case "ipv4":
        return this.#v4.get(p.iid, p.bytes, p.len);
      case "ipv6":
        return this.#v6.get(p.iid, p.bytes, p.len);
      case "mac":
        return this.#mac.lookup(p.iid, p.bytes, 0);
    }
  }

  /** Entry id of the longest prefix in `iid` containing the IPv4 address at `bytes[off, off+4)`, or -1. */
  lookupV4(iid: number, bytes: Uint8Array, off: number): number {
    return this.#v4.lookup(iid, bytes, off);
  }

  /** Entry id of the longest prefix in `iid` containing the IPv6 address at `bytes[off, off+16)`, or -1. */
  lookupV6(iid: number, bytes: Uint8Array, off: number): number {
    return this.#v6.lookup(iid, bytes, off);
  }

  /** Entry id of the MAC address at `bytes[off, off+6)` in `iid`, or -1. */
  lookupMac(iid: number, bytes: Uint8Array, off: number): number {
    return this.#mac.lookup(iid, bytes, off);
  }

  /** {@link lookupV4}, {@link lookupV6} or {@link lookupMac} by family. */
  lookup(iid: number, family: Family, bytes: Uint8Array, off: number): number {
    return family === "ipv4"
      ? this.#v4.lookup(iid, bytes, off)
      : family === "ipv6"
      ? this.#v6.lookup(iid, bytes, off)
      : this.#mac.lookup(iid, bytes, off);
  }

  /** Memory held by the table's typed arrays. */
  memory(): LpmMemory {
    const a = this.#v4.memory();
    const b = this.#v6.memory();
    const m = this.#mac.memory();
    return {
      allocated: a.allocated + b.allocated + m,
      used: a.used + b.used + this.#mac.size * 16,
      nodes: a.nodes + b.nodes,
    };
  }
}
