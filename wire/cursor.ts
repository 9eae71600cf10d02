/**
 * Bounded big-endian reader and writer shared by every codec in `wire/`.
 *
 * A `Reader` checks each read against its end once; past that check no read
 * can go out of bounds. A `Writer` writes into a buffer sized in advance by
 * the message's `xLength()` function.
 *
 * @module
 */

import { WireError } from "./errors.ts";

/** Sequential big-endian reader over `bytes[pos, end)`; every read is bounds-checked. */
export class Reader {
  /** The whole buffer (offsets in errors are relative to its start). */
  readonly bytes: Uint8Array;
  /** Next byte to read. */
  pos: number;
  /** One past the last readable byte. */
  end: number;
  #view: DataView | undefined;

  /**
   * Reads `bytes[start, end)`; `end` defaults to the buffer's length. A
   * subclass such as Node's `Buffer` (whose `slice` is a view) is read
   * through a plain `Uint8Array`, so {@link copy} always copies.
   */
  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    this.bytes = bytes.constructor === Uint8Array
      ? bytes
      : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
    this.end = end;
  }

  /** A view over the same memory as `bytes`, made on first use. */
  get view(): DataView {
    return this.#view ??= new DataView(
      this.bytes.buffer,
      this.bytes.byteOffset,
      this.bytes.byteLength,
    );
  }

  /** Bytes left before `end`. */
  get remaining(): number {
    return this.end - this.pos;
  }

  /** Throws a `WireError` for `field` unless `n` more bytes are available. */
  need(n: number, field: string): void {
    if (this.pos + n > this.end) {
      throw new WireError(
        field,
        this.pos,
        `needs ${n} byte${n === 1 ? "" : "s"}, ${this.end - this.pos} left`,
      );
    }
  }

  /** Reads an unsigned 8-bit value. */
  u8(field: string): number {
    this.need(1, field);
    return this.bytes[this.pos++]!;
  }

  /** Reads a big-endian unsigned 16-bit value. */
  u16(field: string): number {
    this.need(2, field);
    const b = this.bytes;
    const p = this.pos;
    this.pos = p + 2;
    return (b[p]! << 8) | b[p + 1]!;
  }

  /** Reads a big-endian unsigned 24-bit value. */
  u24(field: string): number {
    this.need(3, field);
    const b = this.bytes;
    const p = this.pos;
    this.pos = p + 3;
    return (b[p]! << 16) | (b[p + 1]! << 8) | b[p + 2]!;
  }

  /** Reads a big-endian unsigned 32-bit value. */
  u32(field: string): number {
    this.need(4, field);
    const b = this.bytes;
    const p = this.pos;
    this.pos = p + 4;
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }

  /** Reads a big-endian unsigned 64-bit value. */
  u64(field: string): bigint {
    this.need(8, field);
    const v = this.view.getBigUint64(this.pos, false);
    this.pos += 8;
    return v;
  }

  /** Reads a big-endian unsigned 128-bit value. */
  u128(field: string): bigint {
    this.need(16, field);
    const hi = this.view.getBigUint64(this.pos, false);
    const lo = this.view.getBigUint64(this.pos + 8, false);
    this.pos += 16;
    return (hi << 64n) | lo;
  }

  /** Copies `n` bytes out (see {@link copyBytes}: the copy does not alias the input). */
  copy(n: number, field: string): Uint8Array {
    this.need(n, field);
    const out = copyBytes(this.bytes, this.pos, n);
    this.pos += n;
    return out;
  }

  /** Skips `n` bytes. */
  skip(n: number, field: string): void {
    this.need(n, field);
    this.pos += n;
  }

  /** Throws a `WireError` for `field` at the current position. */
  fail(field: string, reason: string, offset: number = this.pos): never {
    throw new WireError(field, offset, reason);
  }
}

/** Sequential big-endian writer; the buffer is sized by the caller. */
export class Writer {
  /** The buffer being written. */
  readonly bytes: Uint8Array;
  /** Next byte to write. */
  pos: number;
  #view: DataView | undefined;

  /** Writes into `bytes` from `start`. */
  constructor(bytes: Uint8Array, start = 0) {
    this.bytes = bytes;
    this.pos = start;
  }

  /** A view over the same memory as `bytes`, made on first use. */
  get view(): DataView {
    return this.#view ??= new DataView(
      this.bytes.buffer,
      this.bytes.byteOffset,
      this.bytes.byteLength,
    );
  }

  /** Writes an 8-bit value. */
  u8(v: number): void {
    this.bytes[this.pos++] = v;
  }

  /** Writes a big-endian 16-bit value. */
  u16(v: number): void {
    const b = this.bytes;
    const p = this.pos;
    b[p] = v >>> 8;
    b[p + 1] = v;
    this.pos = p + 2;
  }

  /** Writes a big-endian 24-bit value. */
  u24(v: number): void {
    const b = this.bytes;
    const p = this.pos;
    b[p] = v >>> 16;
    b[p + 1] = v >>> 8;
    b[p + 2] = v;
    this.pos = p + 3;
  }

  /** Writes a big-endian 32-bit value. */
  u32(v: number): void {
    const b = this.bytes;
    const p = this.pos;
    b[p] = v >>> 24;
    b[p + 1] = v >>> 16;
    b[p + 2] = v >>> 8;
    b[p + 3] = v;
    this.pos = p + 4;
  }

  /** Writes a big-endian 64-bit value. */
  u64(v: bigint): void {
    if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`${v} does not fit in 64 bits`);
    this.view.setBigUint64(this.pos, v, false);
    this.pos += 8;
  }

  /** Writes a big-endian 128-bit value. */
  u128(v: bigint): void {
    if (v < 0n || v >> 128n !== 0n) throw new RangeError(`${v} does not fit in 128 bits`);
    const x = v;
    this.view.setBigUint64(this.pos, x >> 64n, false);
    this.view.setBigUint64(this.pos + 8, BigInt.asUintN(64, x), false);
    this.pos += 16;
  }

  /** Writes raw bytes. */
  raw(src: Uint8Array): void {
    this.bytes.set(src, this.pos);
    this.pos += src.length;
  }

  /** Writes `n` zero bytes. */
  zeros(n: number): void {
    this.bytes.fill(0, this.pos, this.pos + n);
    this.pos += n;
  }
}

/**
 * Returns the buffer an `emitX()` function writes into: `into` (checked to
 * be large enough from `offset`) or a new buffer of `length` bytes.
 */
export function target(
  length: number,
  into: Uint8Array | undefined,
  offset: number,
  what: string,
): Writer {
  if (into === undefined) {
    if (offset !== 0) throw new RangeError(`${what}: an offset needs a buffer to write into`);
    return new Writer(new Uint8Array(length), 0);
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + length > into.length) {
    throw new RangeError(
      `${what}: needs ${length} bytes at offset ${offset}, buffer has ${into.length}`,
    );
  }
  return new Writer(into, offset);
}

/** Throws a `RangeError` unless `v` is an integer in [0, max]. */
export function checkUint(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new RangeError(`${what}: ${v} is not an integer in 0..${max}`);
  }
}

/** Size of the slab small copies are carved from. */
const SLAB_SIZE = 8192;
/** Copies up to this size come from the slab. */
const SLAB_MAX_COPY = SLAB_SIZE >>> 3;
let slab = new Uint8Array(SLAB_SIZE);
let slabUsed = 0;

/**
 * Copies `src[at, at+n)` into an array that does not alias `src`. Small
 * copies are views on a shared 8 KiB slab (as Node's Buffer pool does):
 * allocating a fresh ArrayBuffer per parsed field costs more than the rest
 * of a parse. So two parsed messages' byte fields may share one
 * `ArrayBuffer`, but never memory with the input.
 */
export function copyBytes(src: Uint8Array, at: number, n: number): Uint8Array {
  if (n > SLAB_MAX_COPY) return Uint8Array.prototype.slice.call(src, at, at + n);
  if (slabUsed + n > SLAB_SIZE) {
    slab = new Uint8Array(SLAB_SIZE);
    slabUsed = 0;
  }
  const out = new Uint8Array(slab.buffer, slabUsed, n);
  slabUsed += n;
  out.set(src.subarray(at, at + n));
  return out;
}
