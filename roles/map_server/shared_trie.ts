/**
 * A longest-prefix-match table over (instance id, IPv4/IPv6 prefix) that
 * lives in one growable buffer, so that the map-server's answering Workers
 * read the registered prefixes while its main thread changes them: one
 * writer, any number of readers, no locks on the read side.
 *
 * The structure and its answers are those of core/prefix.ts's
 * `PrefixTable` (a path-compressed binary trie per instance id and family;
 * `longest` and `maxCommon`, from which the negative Map-Reply's "hole"
 * comes), kept in `Int32Array` words instead of objects. Each prefix holds
 * a 31-bit value the caller chooses (roles/map_server/answers.ts: the
 * offset of its answer; the Workers' site index: the site's number).
 *
 * Consistency (a sequence lock): the writer makes the sequence word odd
 * before it changes anything and even again after ({@link beginWrite},
 * {@link endWrite}). A reader takes the sequence ({@link beginRead}: -1
 * while a change is under way), does its lookups and copies, then checks
 * that the sequence has not moved ({@link validate}); when it has, what it
 * read may be torn and it reads again. Every index read is bounds-checked
 * and every walk bounded, so a torn read can return garbage (thrown away)
 * but never throw or loop. A change is visible to every reader from the
 * moment `endWrite()` returns.
 *
 * Memory: a growable `SharedArrayBuffer` (or a resizable ArrayBuffer when
 * nothing is shared); the readers' views track its length, so growing
 * needs no message. Deleted nodes go to a free list and are reused.
 *
 * Nothing allocates per lookup: the address goes in {@link SharedTrie.key}.
 *
 * @module
 */

/** Int32 words of the header. */
const HEADER_WORDS = 16;
const H_SEQ = 0;
const H_TOP = 1;
const H_FREE = 2;
const H_SIZE = 3;
const H_ROOTS = 4;
/** Set when the writer could not make a change (the table is full): readers must not trust it. */
const H_BROKEN = 5;
/** Root slots: twice the (instance id, family) pairs a table can hold. */
export const ROOT_SLOTS = 65536;
/** Int32 words per root slot: used, iid, family, node. */
const ROOT_WORDS = 4;
const ROOT_BASE = HEADER_WORDS;
/** Int32 words per node: len, child 0, child 1, value, address (4 words). */
const NODE_WORDS = 8;
const N_LEN = 0;
const N_C0 = 1;
const N_C1 = 2;
const N_VALUE = 3;
const N_ADDR = 4;
const NODE_BASE = ROOT_BASE + ROOT_SLOTS * ROOT_WORDS;
/** Nodes in a fresh table. */
const INITIAL_NODES = 1024;
/** Largest table, bytes (reserved address space, not memory). */
const MAX_BYTES = 1 << 30;
/** Longest walk: 128 bits, one node per bit at most, plus the root. */
const MAX_STEPS = 130;
/** Value of a node that holds no prefix. */
export const NO_VALUE = -1;

/** Family codes: 4 (IPv4, 32 bits) and 6 (IPv6, 128 bits). */
export type TrieFamily = 4 | 6;

function familyBits(f: TrieFamily): number {
  return f === 4 ? 32 : 128;
}

/** Bit `i` (0 = most significant) of the 4-word address `w`. */
function bitOf(w: Int32Array, base: number, i: number): number {
  return (w[base + (i >>> 5)]! >>> (31 - (i & 31))) & 1;
}

/** Leading bits two 4-word addresses share, at most `max`. */
function common(a: Int32Array, ab: number, b: Int32Array, bb: number, max: number): number {
  let n = 0;
  for (let i = 0; i < 4 && n < max; i++) {
    const x = a[ab + i]! ^ b[bb + i]!;
    if (x !== 0) return Math.min(max, n + Math.clz32(x));
    n += 32;
  }
  return Math.min(max, n);
}

/** What {@link SharedTrie.lookup} found. */
export interface TrieMatch {
  /** Value of the most specific prefix containing the key ({@link NO_VALUE}: none). */
  value: number;
  /** Its length. */
  len: number;
  /**
   * Most leading bits the key shares with any prefix of the table, each
   * counted up to that prefix's length (-1 for an empty table): the "hole"
   * around a key no prefix contains is the key cut to `common + 1` bits.
   */
  common: number;
}

/** The table (see the module notes). */
export class SharedTrie {
  /** The memory: hand it to another thread's `new SharedTrie(memory)`. */
  readonly memory: SharedArrayBuffer | ArrayBuffer;
  /** The address a lookup or change is about: 4 words, IPv4 in word 0, host bits zero. */
  readonly key = new Int32Array(4);
  /** The result of the last {@link lookup}. */
  readonly match: TrieMatch = { value: NO_VALUE, len: 0, common: -1 };
  readonly #w: Int32Array;
  readonly #path = new Int32Array(MAX_STEPS + 1);

  /**
   * A view of `memory` (another table's, to read it), or a fresh table:
   * in a growable SharedArrayBuffer when `shared` (default), else in a
   * resizable ArrayBuffer.
   */
  constructor(memory?: SharedArrayBuffer | ArrayBuffer, shared = true) {
    if (memory === undefined) {
      const bytes = (NODE_BASE + INITIAL_NODES * NODE_WORDS) * 4;
      memory = shared
        ? new SharedArrayBuffer(bytes, { maxByteLength: MAX_BYTES })
        : new ArrayBuffer(bytes, { maxByteLength: MAX_BYTES });
      const w = new Int32Array(memory);
      w[H_TOP] = 1; // node 0 is "none"
    }
    this.memory = memory;
    this.#w = new Int32Array(memory);
  }

  /** Number of prefixes. */
  get size(): number {
    return Atomics.load(this.#w, H_SIZE);
  }

  /** Whether {@link disable} was called: the table no longer says what the writer holds. */
  get broken(): boolean {
    return Atomics.load(this.#w, H_BROKEN) !== 0;
  }

  /**
   * Marks the table as no longer matching what the writer holds (a change
   * it could not make): every reader checks {@link broken} and looks
   * elsewhere from then on.
   */
  disable(): void {
    Atomics.store(this.#w, H_BROKEN, 1);
  }

  // -------------------------------------------------------------------------
  // Readers

  /** Starts a read: the sequence to {@link validate} against, or -1 while a change is under way. */
  beginRead(): number {
    const s = Atomics.load(this.#w, H_SEQ);
    return (s & 1) === 0 ? s : -1;
  }

  /** Whether nothing changed since {@link beginRead} returned `seq`. */
  validate(seq: number): boolean {
    return seq >= 0 && Atomics.load(this.#w, H_SEQ) === seq;
  }

  /** The root node of (iid, family), 0 when there is none (or -1 when unreadable). */
  #root(iid: number, family: number): number {
    const w = this.#w;
    let s = hashRoot(iid, family);
    for (let p = 0; p < ROOT_SLOTS; p++) {
      const o = ROOT_BASE + s * ROOT_WORDS;
      if (w[o] === 0) return 0;
      if (w[o + 1] === iid && w[o + 2] === family) return w[o + 3]!;
      s = (s + 1) & (ROOT_SLOTS - 1);
    }
    return 0;
  }

  /**
   * Looks up {@link key}/`len` in (iid, family): fills {@link match} (the
   * most specific prefix containing it, and the longest common prefix with
   * any). Returns false when the read hit a change under way (torn
   * indices): read again after {@link validate}.
   */
  lookup(iid: number, family: TrieFamily, len: number): boolean {
    const m = this.match;
    m.value = NO_VALUE;
    m.len = 0;
    m.common = -1;
    const w = this.#w;
    const k = this.key;
    let node = this.#root(iid | 0, family);
    const limit = w.length;
    for (let steps = 0; node !== 0; steps++) {
      const o = NODE_BASE + node * NODE_WORDS;
      if (node < 0 || o + NODE_WORDS > limit || steps > MAX_STEPS) return false;
      const nlen = w[o + N_LEN]!;
      if (nlen < 0 || nlen > 128) return false;
      const c = common(k, 0, w, o + N_ADDR, nlen);
      if (c < nlen) {
        m.common = c;
        return true;
      }
      if (nlen > len) {
        m.common = len;
        return true;
      }
      const v = w[o + N_VALUE]!;
      if (v !== NO_VALUE) {
        m.value = v;
        m.len = nlen;
      }
      if (nlen === len) {
        m.common = nlen;
        return true;
      }
      const next = w[o + (bitOf(k, 0, nlen) === 0 ? N_C0 : N_C1)]!;
      if (next === 0) {
        m.common = nlen;
        return true;
      }
      node = next;
    }
    return true;
  }

  // -------------------------------------------------------------------------
  // The writer

  /** Starts a change (the sequence goes odd). Only one thread writes. */
  beginWrite(): void {
    Atomics.add(this.#w, H_SEQ, 1);
  }

  /** Ends a change (the sequence goes even): readers see it from now on. */
  endWrite(): void {
    Atomics.add(this.#w, H_SEQ, 1);
  }

  /** The value at exactly {@link key}/`len` in (iid, family), or {@link NO_VALUE}. */
  get(iid: number, family: TrieFamily, len: number): number {
    const w = this.#w;
    const k = this.key;
    let node = this.#root(iid | 0, family);
    while (node !== 0) {
      const o = NODE_BASE + node * NODE_WORDS;
      const nlen = w[o + N_LEN]!;
      if (nlen > len || common(k, 0, w, o + N_ADDR, nlen) !== nlen) return NO_VALUE;
      if (nlen === len) return w[o + N_VALUE]!;
      node = w[o + (bitOf(k, 0, nlen) === 0 ? N_C0 : N_C1)]!;
    }
    return NO_VALUE;
  }

  /** Sets {@link key}/`len` in (iid, family) to `value` (≥ 0). Call between beginWrite and endWrite. */
  set(iid: number, family: TrieFamily, len: number, value: number): void {
    if (!(Number.isInteger(value) && value >= 0 && value <= 0x7fffffff)) {
      throw new RangeError(`trie value must be a 31-bit integer: ${value}`);
    }
    if (!(Number.isInteger(len) && len >= 0 && len <= familyBits(family))) {
      throw new RangeError(`prefix length ${len} is not valid for IPv${family}`);
    }
    this.#maskKey(len);
    const slot = this.#rootSlot(iid | 0, family);
    const w = this.#w;
    let parent = -1; // the root link
    let dir = 0;
    let node = w[ROOT_BASE + slot * ROOT_WORDS + 3]!;
    for (;;) {
      if (node === 0) {
        const n = this.#alloc(len, value);
        this.#link(slot, parent, dir, n);
        w[H_SIZE]!++;
        return;
      }
      const o = NODE_BASE + node * NODE_WORDS;
      const nlen = w[o + N_LEN]!;
      const c = common(this.key, 0, w, o + N_ADDR, Math.min(len, nlen));
      if (c === nlen && c === len) {
        if (w[o + N_VALUE] === NO_VALUE) w[H_SIZE]!++;
        w[o + N_VALUE] = value;
        return;
      }
      if (c === nlen) {
        parent = node;
        dir = bitOf(this.key, 0, nlen);
        node = w[o + (dir === 0 ? N_C0 : N_C1)]!;
        continue;
      }
      // Split: a node of `c` bits above `node`.
      const split = this.#alloc(c, NO_VALUE);
      const so = NODE_BASE + split * NODE_WORDS;
      for (let i = 0; i < 4; i++) w[so + N_ADDR + i] = this.key[i]!;
      maskWords(w, so + N_ADDR, c);
      w[so + (bitOf(w, o + N_ADDR, c) === 0 ? N_C0 : N_C1)] = node;
      if (c === len) {
        w[so + N_VALUE] = value;
      } else {
        const leaf = this.#alloc(len, value);
        w[so + (bitOf(this.key, 0, c) === 0 ? N_C0 : N_C1)] = leaf;
      }
      this.#link(slot, parent, dir, split);
      w[H_SIZE]!++;
      return;
    }
  }

  /** Removes {@link key}/`len` from (iid, family); whether it was there. Between beginWrite and endWrite. */
  delete(iid: number, family: TrieFamily, len: number): boolean {
    this.#maskKey(len);
    const w = this.#w;
    const path = this.#path;
    const k = this.key;
    const slotIndex = this.#findRootSlot(iid | 0, family);
    if (slotIndex < 0) return false;
    let node = w[ROOT_BASE + slotIndex * ROOT_WORDS + 3]!;
    let depth = 0;
    while (node !== 0) {
      const o = NODE_BASE + node * NODE_WORDS;
      const nlen = w[o + N_LEN]!;
      if (nlen > len || common(k, 0, w, o + N_ADDR, nlen) !== nlen) return false;
      path[depth++] = node;
      if (nlen === len) break;
      node = w[o + (bitOf(k, 0, nlen) === 0 ? N_C0 : N_C1)]!;
    }
    if (node === 0) return false;
    const no = NODE_BASE + node * NODE_WORDS;
    if (w[no + N_VALUE] === NO_VALUE) return false;
    w[no + N_VALUE] = NO_VALUE;
    w[H_SIZE]!--;
    // Remove or merge the nodes left useless, bottom up (as core/prefix.ts does).
    for (let i = depth - 1; i >= 0; i--) {
      const n = path[i]!;
      const o = NODE_BASE + n * NODE_WORDS;
      if (w[o + N_VALUE] !== NO_VALUE) break;
      const c0 = w[o + N_C0]!;
      const c1 = w[o + N_C1]!;
      if (c0 !== 0 && c1 !== 0) break;
      const replacement = c0 !== 0 ? c0 : c1;
      if (i === 0) {
        w[ROOT_BASE + slotIndex * ROOT_WORDS + 3] = replacement;
      } else {
        const p = path[i - 1]!;
        const po = NODE_BASE + p * NODE_WORDS;
        const b = bitOf(w, o + N_ADDR, w[po + N_LEN]!);
        w[po + (b === 0 ? N_C0 : N_C1)] = replacement;
      }
      this.#free(n);
    }
    return true;
  }

  /** Clears the host bits of {@link key} past `len`. */
  #maskKey(len: number): void {
    maskWords(this.key, 0, len);
  }

  #link(slot: number, parent: number, dir: number, n: number): void {
    const w = this.#w;
    if (parent < 0) w[ROOT_BASE + slot * ROOT_WORDS + 3] = n;
    else w[NODE_BASE + parent * NODE_WORDS + (dir === 0 ? N_C0 : N_C1)] = n;
  }

  #findRootSlot(iid: number, family: number): number {
    const w = this.#w;
    let s = hashRoot(iid, family);
    for (let p = 0; p < ROOT_SLOTS; p++) {
      const o = ROOT_BASE + s * ROOT_WORDS;
      if (w[o] === 0) return -1;
      if (w[o + 1] === iid && w[o + 2] === family) return s;
      s = (s + 1) & (ROOT_SLOTS - 1);
    }
    return -1;
  }

  #rootSlot(iid: number, family: number): number {
    const found = this.#findRootSlot(iid, family);
    if (found >= 0) return found;
    const w = this.#w;
    if (w[H_ROOTS]! >= ROOT_SLOTS / 2) {
      throw new RangeError(`more than ${ROOT_SLOTS / 2} instance ids and families`);
    }
    let s = hashRoot(iid, family);
    while (w[ROOT_BASE + s * ROOT_WORDS] !== 0) s = (s + 1) & (ROOT_SLOTS - 1);
    const o = ROOT_BASE + s * ROOT_WORDS;
    w[o + 1] = iid;
    w[o + 2] = family;
    w[o + 3] = 0;
    w[o] = 1;
    w[H_ROOTS]!++;
    return s;
  }

  /** A node with {@link key} (masked to `len`) and `value`, no children. */
  #alloc(len: number, value: number): number {
    const w = this.#w;
    let n = w[H_FREE]!;
    if (n !== 0) {
      w[H_FREE] = w[NODE_BASE + n * NODE_WORDS + N_C0]!;
    } else {
      n = w[H_TOP]!;
      const need = (NODE_BASE + (n + 1) * NODE_WORDS) * 4;
      if (need > this.memory.byteLength) this.#grow(need);
      w[H_TOP] = n + 1;
    }
    const o = NODE_BASE + n * NODE_WORDS;
    w[o + N_LEN] = len;
    w[o + N_C0] = 0;
    w[o + N_C1] = 0;
    w[o + N_VALUE] = value;
    for (let i = 0; i < 4; i++) w[o + N_ADDR + i] = this.key[i]!;
    maskWords(w, o + N_ADDR, len);
    return n;
  }

  #free(n: number): void {
    const w = this.#w;
    const o = NODE_BASE + n * NODE_WORDS;
    w[o + N_LEN] = -1;
    w[o + N_VALUE] = NO_VALUE;
    w[o + N_C1] = 0;
    w[o + N_C0] = w[H_FREE]!;
    w[H_FREE] = n;
  }

  #grow(need: number): void {
    const m = this.memory as { grow?: (n: number) => void; resize?: (n: number) => void };
    let size = this.memory.byteLength;
    while (size < need) size *= 2;
    if (size > MAX_BYTES) throw new RangeError("the prefix table is full");
    if (m.grow !== undefined) m.grow(size);
    else m.resize!(size);
  }
}

/** Clears the bits of the 4-word address at `w[base]` from bit `len` on. */
function maskWords(w: Int32Array, base: number, len: number): void {
  for (let i = 0; i < 4; i++) {
    const keep = len - i * 32;
    if (keep >= 32) continue;
    w[base + i] = keep <= 0 ? 0 : w[base + i]! & (~0 << (32 - keep));
  }
}

function hashRoot(iid: number, family: number): number {
  let h = Math.imul(iid ^ (family << 24), 0x9e3779b1);
  h ^= h >>> 15;
  return h & (ROOT_SLOTS - 1);
}

/** Puts the 4 (IPv4) or 16 (IPv6) address bytes at `b[off]` into `key` (big-endian words). */
export function keyFromBytes(
  key: Int32Array,
  family: TrieFamily,
  b: Uint8Array,
  off: number,
): void {
  const words = family === 4 ? 1 : 4;
  for (let i = 0; i < 4; i++) {
    if (i >= words) {
      key[i] = 0;
      continue;
    }
    const p = off + i * 4;
    key[i] = (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  }
}
