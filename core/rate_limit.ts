/**
 * Per-source token buckets for the control plane (`control-rate-limit`),
 * in memory that several threads may share: the map-server's answering
 * Workers and its main thread take tokens from the same bucket of a
 * source, wherever the kernel delivered its datagrams.
 *
 * A source may send `rate` requests a second, in bursts of up to twice
 * that: its bucket holds at most `2 × rate` tokens, starts full, refills at
 * `rate` a second, and each request takes one.
 *
 * Buckets live in a fixed table of {@link RATE_LIMIT_SLOTS} slots, found by
 * a hash of the source address (an IPv4 address as its 32 bits, an IPv6
 * address as two 32-bit hashes of its bytes) and up to 4 probes. When all 4
 * are taken by other sources, the one refilled longest ago is given to the
 * new source (whose bucket starts full): a sender of many addresses can
 * evict buckets, never empty another's. Each slot has a lock word taken with
 * `Atomics.compareExchange` around its few reads and writes, so threads
 * never lose or double a token. Time is passed in; nothing here allocates.
 *
 * @module
 */

import { ipv4ToBytes, ipv6ToBytes, isIPv4 } from "../wire/ip_text.ts";

/** Slots in a table (a power of two). */
export const RATE_LIMIT_SLOTS = 65_536;
/** Int32 words per slot: lock, key, key tag, unused. */
const WORDS = 4;
/** Float64 words per slot: tokens, last refill (ms). */
const FWORDS = 2;
/** Probes before a slot is taken over. */
const PROBES = 4;

/** Bytes of memory a table needs (for a SharedArrayBuffer). */
export const RATE_LIMIT_BYTES = RATE_LIMIT_SLOTS * (WORDS * 4 + FWORDS * 8);

const scratch = new Uint8Array(16);

/** Per-source token buckets (see the module notes). */
export class RateLimiter {
  /** Requests a second per source (above 0). */
  readonly rate: number;
  /** The memory of the table: pass it to another thread's `new RateLimiter(rate, memory)`. */
  readonly memory: SharedArrayBuffer | ArrayBuffer;
  readonly #i: Int32Array;
  readonly #f: Float64Array;
  readonly #mask = RATE_LIMIT_SLOTS - 1;

  /**
   * A limiter of `rate` requests a second, over `memory` (another
   * limiter's, to share its buckets) or a fresh SharedArrayBuffer.
   */
  constructor(rate: number, memory?: SharedArrayBuffer | ArrayBuffer) {
    if (!(rate > 0)) throw new RangeError(`rate must be above 0: ${rate}`);
    this.rate = rate;
    this.memory = memory ?? new SharedArrayBuffer(RATE_LIMIT_BYTES);
    if (this.memory.byteLength < RATE_LIMIT_BYTES) {
      throw new RangeError(`rate limiter memory must be ${RATE_LIMIT_BYTES} bytes`);
    }
    const fBytes = RATE_LIMIT_SLOTS * FWORDS * 8;
    this.#f = new Float64Array(this.memory, 0, RATE_LIMIT_SLOTS * FWORDS);
    this.#i = new Int32Array(this.memory, fBytes, RATE_LIMIT_SLOTS * WORDS);
  }

  /** Takes a token for the IPv4 source `addr` (a u32) at `now`; false when it has none. */
  allow4(addr: number, now: number): boolean {
    return this.#take(addr | 0, 4, now);
  }

  /** Takes a token for the IPv6 source in `b[off, off+16)` at `now`; false when it has none. */
  allow6(b: Uint8Array, off: number, now: number): boolean {
    let h1 = 0x811c9dc5 | 0;
    let h2 = 0x01000193 | 0;
    for (let i = 0; i < 16; i++) {
      const x = b[off + i]!;
      h1 = Math.imul(h1 ^ x, 0x01000193);
      h2 = Math.imul(h2 + x, 0x5bd1e995) ^ (h2 >>> 15);
    }
    // Tag 6 in the low bits keeps IPv6 keys apart from IPv4's (tag 4).
    return this.#take(h1, (h2 & ~0xf) | 6, now);
  }

  /** Takes a token for a source given as address text; false when it has none. */
  allow(address: string, now: number): boolean {
    if (isIPv4(address)) {
      ipv4ToBytes(address, scratch, 0);
      const a = ((scratch[0]! << 24) | (scratch[1]! << 16) | (scratch[2]! << 8) | scratch[3]!) |
        0;
      return this.#take(a, 4, now);
    }
    if (ipv6ToBytes(address, scratch, 0)) return this.allow6(scratch, 0, now);
    // Not an address (never from a socket): one shared bucket.
    return this.#take(0, 1, now);
  }

  #take(key: number, tag: number, now: number): boolean {
    const ia = this.#i;
    const fa = this.#f;
    const cap = this.rate * 2;
    let h = Math.imul(key ^ tag, 0x9e3779b1);
    h ^= h >>> 16;
    const start = h & this.#mask;
    let slot = -1;
    let oldest = -1;
    let oldestAt = Infinity;
    for (let p = 0; p < PROBES; p++) {
      const s = (start + p) & this.#mask;
      const w = s * WORDS;
      const t = Atomics.load(ia, w + 2);
      if (t === 0 || (t === tag && Atomics.load(ia, w + 1) === key)) {
        slot = s;
        break;
      }
      const at = fa[s * FWORDS + 1]!;
      if (at < oldestAt) {
        oldestAt = at;
        oldest = s;
      }
    }
    const s = slot >= 0 ? slot : oldest;
    const w = s * WORDS;
    const f = s * FWORDS;
    while (Atomics.compareExchange(ia, w, 0, 1) !== 0) {
      // Another thread holds this slot for a few instructions.
    }
    let allowed: boolean;
    try {
      if (ia[w + 2] !== tag || ia[w + 1] !== key) {
        // Empty, or taken over from a source not heard from in a while.
        ia[w + 1] = key;
        Atomics.store(ia, w + 2, tag);
        fa[f] = cap;
        fa[f + 1] = now;
      }
      let tokens = fa[f]! + (now - fa[f + 1]!) * this.rate / 1000;
      if (tokens > cap) tokens = cap;
      fa[f + 1] = now;
      allowed = tokens >= 1;
      fa[f] = allowed ? tokens - 1 : tokens;
    } finally {
      Atomics.store(ia, w, 0);
    }
    return allowed;
  }
}
