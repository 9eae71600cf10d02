/**
 * The internet checksum (RFC 1071) at data-path speed: {@link ChecksumBuffer}
 * sums a range of a buffer 32 bits at a time through a `Uint32Array` over the
 * same memory, which V8 runs several times faster than the byte loop of
 * `onesComplementSum` (ip.ts). The result is the same 16-bit one's
 * complement sum, bit for bit: a sum of 32-bit words folds to the sum of its
 * 16-bit halves (2^16 ≡ 1 modulo 2^16 - 1), and the end-around-carry fold
 * keeps 0 only for an all-zero range, as RFC 1071's does.
 *
 * Words are big-endian counted from `start` (a byte at an even distance
 * from `start` is a high byte), whatever the host's byte order and
 * whatever the alignment of `start`: the aligned middle of the range is
 * summed in the host's order and swapped when that order and `start`'s
 * parity call for it (RFC 1071 §2(B): the sum is byte-order independent up
 * to a swap).
 *
 * Over memory that lives in a `WebAssembly.Memory` (give it to the
 * constructor), ranges of 64 bytes and more are summed by a WebAssembly
 * SIMD function (_checksum_wasm.ts), about ten times faster again; the
 * result is the same.
 *
 * Pure: no allocation per call, no exceptions for any in-bounds range.
 *
 * @module
 */

import { checksumWasm, WASM_SUM_MAX } from "./_checksum_wasm.ts";

/** Ranges at least this long go to the WebAssembly sum when there is one. */
const WASM_MIN = 64;
/** Ranges shorter than this are summed 16 bits at a time. */
const SHORT = 64;

/** True on little-endian hosts (the order a `Uint32Array` reads in). */
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Folds a non-negative sum (below 2^53) to 16 bits with end-around carry:
 * 0 only when `s` is 0.
 */
export function foldSum(s: number): number {
  // Two rounds of 32-bit shifts fold any sum below 2^32 (the usual case,
  // small enough for V8 to inline); only larger ones need division.
  return s <= 0xffff_ffff ? fold32(s) : foldLarge(s);
}

function fold32(s: number): number {
  s = (s & 0xffff) + (s >>> 16);
  return (s & 0xffff) + (s >>> 16);
}

function foldLarge(s: number): number {
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

/**
 * The unfolded sum of the big-endian 16-bit words of `bytes[at, at + len)`
 * (`len` even) but the words at the offsets `a`, `b`, `c` and `d`
 * (relative to `at`; -1 for none): those fields taken as 0. For the part
 * of a header that a run of packets shares, summed once, each packet's
 * own fields then added by arithmetic.
 */
export function wordSumExcept(
  bytes: Uint8Array,
  at: number,
  len: number,
  a: number,
  b: number,
  c: number,
  d: number,
): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) {
    if (i === a || i === b || i === c || i === d) continue;
    s += (bytes[at + i]! << 8) | bytes[at + i + 1]!;
  }
  return s;
}

/** The two bytes of a 16-bit sum swapped (the sum of the same bytes read at odd offsets). */
export function swapSum(s: number): number {
  return ((s & 0xff) << 8) | (s >>> 8);
}

/** The one's complement sum of two 16-bit sums. */
export function addSums(a: number, b: number): number {
  const s = a + b;
  return s > 0xffff ? s - 0xffff : s;
}

/**
 * A buffer whose ranges can be summed fast (see the module notes). Build it
 * once per buffer, outside the data path.
 */
export class ChecksumBuffer {
  /** The bytes summed. */
  readonly bytes: Uint8Array;
  /** The same memory as 32-bit words: word k is bytes[4k, 4k+4). */
  readonly #words: Uint32Array;
  /** The WebAssembly sum over the memory `bytes` lives in, and where `bytes` starts there. */
  readonly #wasm: ((p: number, n: number) => number) | undefined;
  readonly #wasmCopy: ((d: number, s: number, n: number) => number) | undefined;
  readonly #base: number;

  /**
   * Sums ranges of `bytes`; RangeError unless its byteOffset is a multiple
   * of 4. When `bytes` lies in `memory` (a `WebAssembly.Memory` that is
   * never grown), long ranges are summed in WebAssembly SIMD.
   */
  constructor(bytes: Uint8Array, memory?: WebAssembly.Memory) {
    if (bytes.byteOffset % 4 !== 0) {
      throw new RangeError(`ChecksumBuffer: byteOffset ${bytes.byteOffset} is not 32-bit aligned`);
    }
    this.bytes = bytes;
    this.#words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
    this.#base = bytes.byteOffset;
    const wasm = memory !== undefined && memory.buffer === bytes.buffer
      ? checksumWasm(memory)
      : undefined;
    this.#wasm = wasm?.sum;
    this.#wasmCopy = wasm?.copySum;
  }

  /** Whether long ranges are summed in WebAssembly. */
  get usesWasm(): boolean {
    return this.#wasm !== undefined;
  }

  /**
   * Copies `bytes[src, src + n)` to `bytes[dst, dst + n)` (the two ranges
   * must not overlap) and returns what {@link sum}`(src, src + n, initial)`
   * would: over WebAssembly memory in one pass (each byte read once), else
   * a copy then a sum.
   */
  copySum(dst: number, src: number, n: number, initial = 0): number {
    const wasm = this.#wasmCopy;
    if (wasm === undefined || n < WASM_MIN || n > WASM_SUM_MAX) {
      this.bytes.copyWithin(dst, src, src + n);
      return this.sum(src, src + n, initial);
    }
    const even = n & ~1;
    let s = initial + swapSum(foldSum(wasm(this.#base + dst, this.#base + src, even)));
    if (even !== n) {
      const last = this.bytes[src + n - 1]!;
      this.bytes[dst + n - 1] = last;
      s += last << 8;
    }
    return foldSum(s);
  }

  /**
   * The one's complement sum (RFC 1071) of `bytes[start, end)` as big-endian
   * 16-bit words counted from `start` (an odd last byte is padded with
   * zero), added to `initial` (a previous sum, e.g. a pseudo-header's) and
   * folded to 16 bits. Not complemented. The range must lie in the buffer.
   */
  sum(start: number, end: number, initial = 0): number {
    const b = this.bytes;
    let s = initial;
    let i = start;
    if (end - start < SHORT) {
      // Headers (20 to 60 bytes, pseudo-headers): straight 16-bit words beat the set-up below.
      const last = end - 1;
      for (; i < last; i += 2) s += (b[i]! << 8) | b[i + 1]!;
      if (i < end) s += b[i]! << 8;
      return foldSum(s);
    }
    const wasm = this.#wasm;
    if (wasm !== undefined && end - start >= WASM_MIN) {
      // Little-endian words from start: the byte at an even distance is low; swap to big-endian.
      const even = (end - start) & ~1;
      let m = 0;
      for (let k = 0; k < even; k += WASM_SUM_MAX) {
        m += wasm(this.#base + start + k, even - k < WASM_SUM_MAX ? even - k : WASM_SUM_MAX);
      }
      s += swapSum(foldSum(m));
      if (even !== end - start) s += b[end - 1]! << 8;
      return foldSum(s);
    }
    // Head: single bytes up to a 32-bit boundary.
    while (i < end && (i & 3) !== 0) {
      s += ((i - start) & 1) === 0 ? b[i]! << 8 : b[i]!;
      i++;
    }
    const words = (end - i) >>> 2;
    if (words > 0) {
      const w = this.#words;
      let k = i >>> 2;
      const stop = k + words;
      let a = 0;
      let c = 0;
      for (; k + 3 < stop; k += 4) {
        a += w[k]! + w[k + 1]!;
        c += w[k + 2]! + w[k + 3]!;
      }
      for (; k < stop; k++) a += w[k]!;
      let m = foldSum(a + c);
      // The host's order makes the byte at an aligned (even) address low (LE)
      // or high (BE); it must be high exactly when it is at an even distance from start.
      const evenIsHigh = ((i - start) & 1) === 0;
      if (evenIsHigh === HOST_LE) m = swapSum(m);
      s += m;
      i += words << 2;
    }
    // Tail.
    for (; i < end; i++) s += ((i - start) & 1) === 0 ? b[i]! << 8 : b[i]!;
    return foldSum(s);
  }
}
