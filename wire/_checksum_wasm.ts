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

/**
 * The body of `sum` (`copy` false; params $s, $n) or of `copysum` (`copy`
 * true; params $d, $s, $n): the same loops, copysum also storing what it
 * loads at $d. Locals after the params: $end, $end64, $acc (and copysum's
 * $w, the word in hand) as i32; four accumulators, the total (and
 * copysum's 16 bytes in hand) as v128.
 */
function sumBody(copy: boolean): number[] {
  const o = copy ? 1 : 0;
  const D = 0;
  const S = o;
  const N = o + 1;
  const END_AT = o + 2;
  const END64 = o + 3;
  const ACC = o + 4;
  const W = o + 5;
  const ACC0 = 5 + 2 * o;
  const TOTAL = ACC0 + 4;
  const V = ACC0 + 5;
  /** acc += extadd(load($s + offset)), copysum storing the load at $d + offset. */
  const step = (acc: number, offset: number) => [
    ...(copy
      ? [
        ...get(D),
        ...get(S),
        ...v128Load(offset),
        ...tee(V),
        ...v128Store(offset),
        ...get(acc),
        ...get(V),
      ]
      : [...get(acc), ...get(S), ...v128Load(offset)]),
    ...EXTADD_U16,
    ...I32X4_ADD,
    ...set(acc),
  ];
  const advance = (n: number) => [
    ...get(S),
    ...i32Const(n),
    I32_ADD,
    ...set(S),
    ...(copy ? [...get(D), ...i32Const(n), I32_ADD, ...set(D)] : []),
  ];
  // deno-fmt-ignore
  return [
    2, 3 + o, 0x7f, 5 + o, 0x7b, // locals: i32s, v128s
    ...get(S), ...get(N), I32_ADD, ...set(END_AT),
    ...get(S), ...get(N), ...i32Const(-64), I32_AND, I32_ADD, ...set(END64),
    ...BLOCK, ...LOOP, // 64 bytes a round
    ...get(S), ...get(END64), I32_GE_U, BR_IF, 1,
    ...step(ACC0, 0), ...step(ACC0 + 1, 16), ...step(ACC0 + 2, 32), ...step(ACC0 + 3, 48),
    ...advance(64),
    BR, 0, END, END,
    ...BLOCK, ...LOOP, // the words left
    ...get(S), ...get(END_AT), I32_GE_U, BR_IF, 1,
    ...(copy
      ? [...get(D), ...get(S), ...I32_LOAD16_U, ...tee(W), ...I32_STORE16,
        ...get(ACC), ...get(W), I32_ADD, ...set(ACC)]
      : [...get(ACC), ...get(S), ...I32_LOAD16_U, I32_ADD, ...set(ACC)]),
    ...advance(2),
    BR, 0, END, END,
    ...fold(ACC0), ...fold(ACC0 + 1), ...I32X4_ADD, ...fold(ACC0 + 2), ...I32X4_ADD,
    ...fold(ACC0 + 3), ...I32X4_ADD,
    ...set(TOTAL),
    ...get(ACC),
    ...[0, 1, 2, 3].flatMap((k) => [...get(TOTAL), ...extractLane(k), I32_ADD]),
    END,
  ];
}

const BODY = sumBody(false);
const COPY_BODY = sumBody(true);

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
