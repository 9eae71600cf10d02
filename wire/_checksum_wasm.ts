/**
 * The one's complement sum in WebAssembly SIMD, for ChecksumBuffer
 * (checksum.ts) over memory that lives in a `WebAssembly.Memory` (the data
 * plane's batches do). About ten times the speed of the 32-bit JS loop:
 * the profile of a TCP stream through the ITR and the ETR showed the JS
 * sums as the largest part of their JavaScript time (see README,
 * "Offloads").
 *
 * The module is assembled here, byte by byte (no tool chain), from this
 * function:
 *
 * ```wat
 * (func (export "sum") (param $p i32) (param $n i32) (result i32)
 *   ;; $n even, at most 2 MiB. The sum, not folded, of the little-endian
 *   ;; 16-bit words at [$p, $p + $n): below 2^23.
 *   ;; 64 bytes a round into four i32x4 accumulators, each lane adding two
 *   ;; words (i32x4.extadd_pairwise_i16x8_u: at most 131070 a round, so no
 *   ;; lane overflows within 32768 rounds); then the words left one by one;
 *   ;; then each lane folded to (high 16 + low 16) and all of them added.
 * )
 * (func (export "copysum") (param $d i32) (param $s i32) (param $n i32) (result i32)
 *   ;; The same sum of [$s, $s + $n), and those bytes copied to [$d, $d + $n)
 *   ;; in the same pass (each 16 bytes loaded once, stored, added): the
 *   ;; ITR's segment copy and its checksum in one read of the payload.
 *   ;; The two ranges must not overlap.
 * )
 * ```
 *
 * Pure like the rest of wire/: WebAssembly is a web API; without it (or
 * without SIMD) {@link checksumWasm} returns undefined and the JS sum is
 * used.
 *
 * @module
 */

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(v: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];

// Opcodes (WebAssembly core 2.0; SIMD under the 0xfd prefix).
const SIMD = 0xfd;
const get = (i: number) => [0x20, i];
const set = (i: number) => [0x21, i];
const i32Const = (v: number) => [0x41, ...sleb(v)];
const I32_ADD = 0x6a;
const I32_AND = 0x71;
const I32_GE_U = 0x4f;
const I32_LOAD16_U = [0x2f, 0x00, 0x00]; // align 1, offset 0
const BLOCK = [0x02, 0x40];
const LOOP = [0x03, 0x40];
const END = 0x0b;
const BR = 0x0c;
const BR_IF = 0x0d;
const v128Load = (offset: number) => [SIMD, 0x00, 0x00, ...uleb(offset)]; // align 1
const v128Store = (offset: number) => [SIMD, 0x0b, 0x00, ...uleb(offset)]; // align 1
const tee = (i: number) => [0x22, i];
const I32_STORE16 = [0x3b, 0x00, 0x00]; // align 1, offset 0
const EXTADD_U16 = [SIMD, 0x7f]; // i32x4.extadd_pairwise_i16x8_u
const I32X4_ADD = [SIMD, 0xae, 0x01];
const I32X4_SHR_U = [SIMD, 0xad, 0x01];
const V128_AND = [SIMD, 0x4e];
const extractLane = (k: number) => [SIMD, 0x1b, k];
const V128_LOW16 = [SIMD, 0x0c, ...[0, 1, 2, 3].flatMap(() => [0xff, 0xff, 0, 0])];

// Locals: 0 $p, 1 $n (params); 2 $end, 3 $end64, 4 $s (i32); 5..8 accumulators, 9 total (v128).
const P = 0;
const N = 1;
const END_AT = 2;
const END64 = 3;
const S = 4;
const TOTAL = 9;

/** acc += extadd(load(p + offset)). */
const accumulate = (acc: number, offset: number) => [
  ...get(acc),
  ...get(P),
  ...v128Load(offset),
  ...EXTADD_U16,
  ...I32X4_ADD,
  ...set(acc),
];

/** (acc >> 16) + (acc & 0xffff), lane by lane: each lane below 2^17. */
const fold = (acc: number) => [
  ...get(acc),
  ...i32Const(16),
  ...I32X4_SHR_U,
  ...get(acc),
  ...V128_LOW16,
  ...V128_AND,
  ...I32X4_ADD,
];

// deno-fmt-ignore
const BODY = [
  2, 3, 0x7f, 5, 0x7b, // locals: 3 × i32, 5 × v128
  ...get(P), ...get(N), I32_ADD, ...set(END_AT),
  ...get(P), ...get(N), ...i32Const(-64), I32_AND, I32_ADD, ...set(END64),
  ...BLOCK, ...LOOP, // 64 bytes a round
  ...get(P), ...get(END64), I32_GE_U, BR_IF, 1,
  ...accumulate(5, 0), ...accumulate(6, 16), ...accumulate(7, 32), ...accumulate(8, 48),
  ...get(P), ...i32Const(64), I32_ADD, ...set(P),
  BR, 0, END, END,
  ...BLOCK, ...LOOP, // the words left
  ...get(P), ...get(END_AT), I32_GE_U, BR_IF, 1,
  ...get(S), ...get(P), ...I32_LOAD16_U, I32_ADD, ...set(S),
  ...get(P), ...i32Const(2), I32_ADD, ...set(P),
  BR, 0, END, END,
  ...fold(5), ...fold(6), ...I32X4_ADD, ...fold(7), ...I32X4_ADD, ...fold(8), ...I32X4_ADD,
  ...set(TOTAL),
  ...get(S),
  ...[0, 1, 2, 3].flatMap((k) => [...get(TOTAL), ...extractLane(k), I32_ADD]),
  END,
];

// copysum's locals: 0 $d, 1 $s, 2 $n (params); 3 $end, 4 $end64, 5 $acc, 6 $w (i32);
// 7..10 accumulators, 11 total, 12 the 16 bytes in hand (v128).
const CD = 0;
const CS = 1;
const CN = 2;
const C_END = 3;
const C_END64 = 4;
const C_ACC = 5;
const C_W = 6;
const C_TOTAL = 11;
const C_V = 12;

/** Copies 16 bytes from $s + offset to $d + offset and adds them into acc. */
const copyAccumulate = (acc: number, offset: number) => [
  ...get(CD),
  ...get(CS),
  ...v128Load(offset),
  ...tee(C_V),
  ...v128Store(offset),
  ...get(acc),
  ...get(C_V),
  ...EXTADD_U16,
  ...I32X4_ADD,
  ...set(acc),
];

// deno-fmt-ignore
const COPY_BODY = [
  2, 4, 0x7f, 6, 0x7b, // locals: 4 × i32, 6 × v128
  ...get(CS), ...get(CN), I32_ADD, ...set(C_END),
  ...get(CS), ...get(CN), ...i32Const(-64), I32_AND, I32_ADD, ...set(C_END64),
  ...BLOCK, ...LOOP, // 64 bytes a round
  ...get(CS), ...get(C_END64), I32_GE_U, BR_IF, 1,
  ...copyAccumulate(7, 0), ...copyAccumulate(8, 16), ...copyAccumulate(9, 32),
  ...copyAccumulate(10, 48),
  ...get(CS), ...i32Const(64), I32_ADD, ...set(CS),
  ...get(CD), ...i32Const(64), I32_ADD, ...set(CD),
  BR, 0, END, END,
  ...BLOCK, ...LOOP, // the words left
  ...get(CS), ...get(C_END), I32_GE_U, BR_IF, 1,
  ...get(CD), ...get(CS), ...I32_LOAD16_U, ...tee(C_W), ...I32_STORE16,
  ...get(C_ACC), ...get(C_W), I32_ADD, ...set(C_ACC),
  ...get(CS), ...i32Const(2), I32_ADD, ...set(CS),
  ...get(CD), ...i32Const(2), I32_ADD, ...set(CD),
  BR, 0, END, END,
  ...fold(7), ...fold(8), ...I32X4_ADD, ...fold(9), ...I32X4_ADD, ...fold(10), ...I32X4_ADD,
  ...set(C_TOTAL),
  ...get(C_ACC),
  ...[0, 1, 2, 3].flatMap((k) => [...get(C_TOTAL), ...extractLane(k), I32_ADD]),
  END,
];

// deno-fmt-ignore
const WASM = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
  ...section(1, [
    2,
    0x60, 2, 0x7f, 0x7f, 1, 0x7f, // type 0: (i32, i32) -> i32
    0x60, 3, 0x7f, 0x7f, 0x7f, 1, 0x7f, // type 1: (i32, i32, i32) -> i32
  ]),
  ...section(2, [1, 1, 0x6d, 3, 0x6d, 0x65, 0x6d, 0x02, 0x00, 0x01]), // import "m" "mem": memory, 1 page
  ...section(3, [2, 0, 1]), // function 0 has type 0, function 1 type 1
  ...section(7, [
    2,
    3, 0x73, 0x75, 0x6d, 0x00, 0, // export "sum": function 0
    7, 0x63, 0x6f, 0x70, 0x79, 0x73, 0x75, 0x6d, 0x00, 1, // export "copysum": function 1
  ]),
  ...section(10, [2, ...uleb(BODY.length), ...BODY, ...uleb(COPY_BODY.length), ...COPY_BODY]),
]);

/** Most bytes one call sums (no accumulator lane overflows below this). */
export const WASM_SUM_MAX = 1 << 21;

let compiled: WebAssembly.Module | null | undefined;

/** The WebAssembly functions over one memory (see the module notes). */
export interface ChecksumWasm {
  /** The unfolded sum of the little-endian 16-bit words at `[p, p + n)` (n even, at most {@link WASM_SUM_MAX}). */
  readonly sum: (p: number, n: number) => number;
  /** The same sum of `[s, s + n)`, those bytes copied to `[d, d + n)` (not overlapping). */
  readonly copySum: (d: number, s: number, n: number) => number;
}

/**
 * The SIMD sums over `memory`. Undefined when this runtime has no
 * WebAssembly SIMD.
 */
export function checksumWasm(memory: WebAssembly.Memory): ChecksumWasm | undefined {
  if (compiled === undefined) {
    try {
      compiled = typeof WebAssembly === "object" && WebAssembly.validate(WASM)
        ? new WebAssembly.Module(WASM)
        : null;
    } catch {
      compiled = null;
    }
  }
  if (compiled === null) return undefined;
  const instance = new WebAssembly.Instance(compiled, { m: { mem: memory } });
  return {
    sum: instance.exports.sum as (p: number, n: number) => number,
    copySum: instance.exports.copysum as (d: number, s: number, n: number) => number,
  };
}
