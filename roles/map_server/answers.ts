/**
 * The map-server's registrations as its answering Workers read them: for
 * every prefix of the registration store, what a Map-Request for an EID
 * under it gets, in shared memory (roles/map_server/serving.ts).
 *
 * The main thread owns the registrations (registrations.ts) and is the one
 * writer: whenever the store changes a prefix it calls {@link
 * AnswerTable.publish} with the prefix's answer, before anything else
 * (a Map-Notify) goes out. The table is a {@link SharedTrie} of the
 * registered prefixes, whose value is the offset of the prefix's answer in
 * a second growable buffer:
 *
 * ```
 * [0, 4)    capacity of the block (bytes, a power of two from 64)
 * [4]       kind: 1 proxy reply (the record follows), 2 not answered by a Worker
 * [8, 16)   valid until (ms since the epoch, float64): the first expiry
 *           among the registrations the answer merges
 * [16, 18)  record length
 * [24, ...) the EID record of the proxy Map-Reply (merged locators)
 * ```
 *
 * A Worker reads under the trie's sequence lock (see shared_trie.ts): the
 * lookup, the kind, the expiry and the copy of the record into its reply
 * happen between `beginRead()` and `validate()`, and are redone if the
 * writer moved in between. An answer past its expiry, or of kind 2 (the
 * Map-Request is forwarded to an ETR, or needs the main thread), is not
 * given by a Worker: the Map-Request goes to the main thread, whose
 * registration store expires what it must and answers.
 *
 * @module
 */

import { keyFromBytes, NO_VALUE, SharedTrie, type TrieFamily } from "./shared_trie.ts";

/** The answer is a proxy Map-Reply with the stored record. */
export const ANSWER_PROXY = 1;
/** The Map-Request needs the main thread (forward to an ETR). */
export const ANSWER_MAIN = 2;

const B_CAPACITY = 0;
const B_KIND = 4;
const B_VALID_UNTIL = 8;
const B_RECORD_LENGTH = 16;
const B_RECORD = 24;
/** Smallest block, bytes. */
const MIN_BLOCK = 64;
/** Size classes: 64 B .. 128 KiB. */
const CLASSES = 12;
/** Heap header: top (u32), free list heads per class (u32 each). */
const HEAP_HEADER = 64;
const INITIAL_HEAP = 1 << 16;
const MAX_HEAP = 1 << 30;

function classOf(bytes: number): number {
  let c = 0;
  while ((MIN_BLOCK << c) < bytes) c++;
  return c;
}

/** The memories of a table, to open it in another thread. */
export interface AnswerMemory {
  readonly trie: SharedArrayBuffer | ArrayBuffer;
  readonly heap: SharedArrayBuffer | ArrayBuffer;
}

/** What {@link AnswerTable.read} found: no registered prefix contains the EID (see `holeLen`). */
export const FOUND_NONE = 0;
/** A proxy reply, whose record was copied. */
export const FOUND_PROXY = 1;
/** A registered prefix whose answer the main thread gives (or one past its expiry). */
export const FOUND_MAIN = 2;
/** The writer kept changing the table: leave it to the main thread. */
export const FOUND_BUSY = 3;

/** The answer table (see the module notes). */
export class AnswerTable {
  /** The registered prefixes. */
  readonly trie: SharedTrie;
  readonly #heap: SharedArrayBuffer | ArrayBuffer;
  readonly #b: Uint8Array;
  readonly #v: DataView;
  readonly #h: Uint32Array;
  /** Of the last {@link read} that found none: the prefix length of the hole around the EID (-1: none). */
  holeLen = -1;
  /** Of the last {@link read}: the length of the record copied. */
  recordLength = 0;
  /** Of the last {@link read} that found a prefix: its length. */
  foundLen = 0;

  /** Opens `memory` (another thread's table), or makes a new shared one. */
  constructor(memory?: AnswerMemory) {
    this.trie = new SharedTrie(memory?.trie);
    this.#heap = memory?.heap ?? new SharedArrayBuffer(INITIAL_HEAP, { maxByteLength: MAX_HEAP });
    this.#b = new Uint8Array(this.#heap);
    this.#v = new DataView(this.#heap);
    this.#h = new Uint32Array(this.#heap, 0, HEAP_HEADER / 4);
    if (memory === undefined) this.#h[0] = HEAP_HEADER;
  }

  /** The memories, for another thread's `new AnswerTable(memory)`. */
  get memory(): AnswerMemory {
    return { trie: this.trie.memory, heap: this.#heap };
  }

  // -------------------------------------------------------------------------
  // Reading (any thread)

  /**
   * Looks up the host EID whose address the caller put in `trie.key` in
   * (iid, family); for a proxy answer valid at `now`, copies its record to
   * `out[at, ...)` (at most `room` bytes). Allocates nothing.
   */
  read(
    iid: number,
    family: TrieFamily,
    now: number,
    out: Uint8Array,
    at: number,
    room: number,
  ): number {
    const t = this.trie;
    if (t.broken) return FOUND_BUSY;
    const bits = family === 4 ? 32 : 128;
    for (let attempt = 0; attempt < 64; attempt++) {
      const seq = t.beginRead();
      if (seq < 0) continue;
      if (!t.lookup(iid, family, bits)) continue;
      const m = t.match;
      let found: number;
      if (m.value === NO_VALUE) {
        this.holeLen = m.common + 1 <= bits ? m.common + 1 : -1;
        found = FOUND_NONE;
      } else {
        this.foundLen = m.len;
        const o = m.value;
        const b = this.#b;
        if (o < HEAP_HEADER || o + B_RECORD > b.length) continue;
        const kind = b[o + B_KIND];
        const len = this.#v.getUint16(o + B_RECORD_LENGTH, false);
        const cap = this.#v.getUint32(o + B_CAPACITY, false);
        if (
          kind !== ANSWER_PROXY || now >= this.#v.getFloat64(o + B_VALID_UNTIL, false) ||
          len > room || B_RECORD + len > cap || o + cap > b.length
        ) {
          found = FOUND_MAIN;
        } else {
          const src = o + B_RECORD;
          for (let i = 0; i < len; i++) out[at + i] = b[src + i]!;
          this.recordLength = len;
          found = FOUND_PROXY;
        }
      }
      if (t.validate(seq)) return found;
    }
    return FOUND_BUSY;
  }

  // -------------------------------------------------------------------------
  // Writing (the main thread only)

  /**
   * Publishes the answer for the prefix (iid, family, the address bytes at
   * `addr[off]`, `len`): a proxy reply with `record` (the EID record bytes)
   * valid until `validUntil`, or `ANSWER_MAIN`; `undefined` removes the
   * prefix. Readers see it when this returns.
   */
  publish(
    iid: number,
    family: TrieFamily,
    addr: Uint8Array,
    off: number,
    len: number,
    answer: { kind: number; record?: Uint8Array; validUntil: number } | undefined,
  ): void {
    const t = this.trie;
    keyFromBytes(t.key, family, addr, off);
    const old = t.get(iid, family, len);
    const needed = B_RECORD + (answer?.record?.length ?? 0);
    // Allocate (and grow the heap) before the change starts: readers never see a half-grown heap.
    let block = old;
    if (answer !== undefined && (old === NO_VALUE || this.#capacity(old) < needed)) {
      block = this.#alloc(needed);
    }
    t.beginWrite();
    try {
      if (answer === undefined) {
        if (old !== NO_VALUE) {
          keyFromBytes(t.key, family, addr, off);
          t.delete(iid, family, len);
          this.#free(old);
        }
        return;
      }
      const b = this.#b;
      const v = this.#v;
      const rec = answer.record;
      b[block + B_KIND] = answer.kind;
      v.setFloat64(block + B_VALID_UNTIL, answer.validUntil, false);
      v.setUint16(block + B_RECORD_LENGTH, rec?.length ?? 0, false);
      if (rec !== undefined) b.set(rec, block + B_RECORD);
      if (block !== old) {
        keyFromBytes(t.key, family, addr, off);
        t.set(iid, family, len, block);
        if (old !== NO_VALUE) this.#free(old);
      }
    } finally {
      t.endWrite();
    }
  }

  /**
   * Moves the expiry of the proxy answer of the prefix (as for
   * {@link publish}) to `validUntil`, nothing else: a refresh that changed
   * only the registration's expiry. False when the prefix has no proxy
   * answer here (then nothing changed).
   */
  extend(
    iid: number,
    family: TrieFamily,
    addr: Uint8Array,
    off: number,
    len: number,
    validUntil: number,
  ): boolean {
    const t = this.trie;
    keyFromBytes(t.key, family, addr, off);
    const block = t.get(iid, family, len);
    if (block === NO_VALUE || this.#b[block + B_KIND] !== ANSWER_PROXY) return false;
    t.beginWrite();
    try {
      this.#v.setFloat64(block + B_VALID_UNTIL, validUntil, false);
    } finally {
      t.endWrite();
    }
    return true;
  }

  #capacity(block: number): number {
    return this.#v.getUint32(block + B_CAPACITY, false);
  }

  #alloc(bytes: number): number {
    const c = classOf(bytes);
    if (c >= CLASSES) throw new RangeError(`an answer of ${bytes} bytes is too large`);
    const h = this.#h;
    const free = h[1 + c]!;
    if (free !== 0) {
      h[1 + c] = this.#v.getUint32(free + B_RECORD, false);
      return free;
    }
    const size = MIN_BLOCK << c;
    const top = h[0]!;
    if (top + size > this.#heap.byteLength) {
      let n = this.#heap.byteLength;
      while (n < top + size) n *= 2;
      if (n > MAX_HEAP) throw new RangeError("the answer heap is full");
      const m = this.#heap as { grow?: (n: number) => void };
      m.grow!(n);
    }
    h[0] = top + size;
    this.#v.setUint32(top + B_CAPACITY, size, false);
    return top;
  }

  #free(block: number): void {
    const c = classOf(this.#capacity(block));
    const h = this.#h;
    this.#b[block + B_KIND] = 0;
    this.#v.setUint32(block + B_RECORD, h[1 + c]!, false);
    h[1 + c] = block;
  }
}
