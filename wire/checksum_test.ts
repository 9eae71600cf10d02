import assert from "node:assert/strict";
import { addSums, ChecksumBuffer, foldSum, swapSum } from "./checksum.ts";

/** RFC 1071 by the book, one 16-bit word at a time: the independent reference. */
function naiveSum(b: Uint8Array, start: number, end: number, initial = 0): number {
  let s = initial;
  for (let i = start; i < end; i += 2) {
    s += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
    s = (s & 0xffff) + (s >>> 16);
  }
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** A deterministic generator (xorshift32). */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

for (const wasm of [false, true]) {
  Deno.test(`ChecksumBuffer.sum() equals the RFC 1071 word-by-word sum on random ranges${wasm ? " (WebAssembly)" : ""}`, () => {
    const next = rng(0x5eed);
    const memory = new WebAssembly.Memory({ initial: 2 });
    const ab = wasm ? memory.buffer : new ArrayBuffer(70_000 + 16);
    const all = new Uint8Array(ab);
    for (let i = 0; i < all.length; i++) all[i] = next() & 0xff;
    for (const byteOffset of [0, 4, 8, 12]) {
      const bytes = new Uint8Array(ab, byteOffset, 70_000);
      const c = new ChecksumBuffer(bytes, wasm ? memory : undefined);
      assert.equal(c.usesWasm, wasm);
      for (let t = 0; t < 400; t++) {
        const start = next() % 2000;
        const len = t < 50 ? t : next() % 66_000;
        const end = Math.min(bytes.length, start + len);
        const initial = t % 3 === 0 ? 0 : next() % 0x20000;
        assert.equal(
          c.sum(start, end, initial),
          naiveSum(bytes, start, end, initial),
          `offset ${byteOffset}, [${start}, ${end}), initial ${initial}`,
        );
      }
    }
  });
}

for (const wasm of [false, true]) {
  Deno.test(`ChecksumBuffer.copySum() copies the range and returns its sum${wasm ? " (WebAssembly, one pass)" : ""}`, () => {
    const next = rng(0xc0b1);
    const memory = new WebAssembly.Memory({ initial: 2 });
    const ab = wasm ? memory.buffer : new ArrayBuffer(2 * 65_536);
    const bytes = new Uint8Array(ab, 4, 120_000);
    const c = new ChecksumBuffer(bytes, wasm ? memory : undefined);
    for (let t = 0; t < 300; t++) {
      for (let i = 0; i < 4000; i++) bytes[i] = next() & 0xff;
      const src = next() % 2000;
      const n = t < 80 ? t : next() % 2000; // short ones (JS) and long ones (WebAssembly)
      const dst = 60_000 + (next() % 1000);
      const initial = t % 2 === 0 ? 0 : next() % 0x20000;
      bytes.fill(0xa5, dst - 8, dst + n + 8);
      const want = naiveSum(bytes, src, src + n, initial);
      assert.equal(c.copySum(dst, src, n, initial), want, `[${src}, +${n}) -> ${dst}`);
      assert.deepEqual(bytes.subarray(dst, dst + n), bytes.subarray(src, src + n));
      // Nothing written outside the destination.
      assert.ok(bytes.subarray(dst - 8, dst).every((x) => x === 0xa5));
      assert.ok(bytes.subarray(dst + n, dst + n + 8).every((x) => x === 0xa5));
    }
  });
}

Deno.test("foldSum() folds sums below and above 2^32 to the same 16-bit value as the slow fold", () => {
  const slow = (s: number) => {
    while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
    return s;
  };
  for (
    const s of [
      0,
      1,
      0xffff,
      0x10000,
      0x1fffe,
      0xffff_ffff,
      0x1_0000_0000,
      2 ** 40 + 12345,
      7_654_321,
    ]
  ) {
    assert.equal(foldSum(s), slow(s), String(s));
  }
  const next = rng(99);
  for (let i = 0; i < 10_000; i++) {
    const s = next() + (i % 2 === 0 ? 0 : next() * 4096);
    assert.equal(foldSum(s), slow(s), String(s));
  }
});

Deno.test("ChecksumBuffer.sum() gives 0 only for an all-zero range, 0xffff for all ones", () => {
  const bytes = new Uint8Array(256);
  const c = new ChecksumBuffer(bytes);
  assert.equal(c.sum(0, 256), 0);
  assert.equal(c.sum(3, 3), 0);
  bytes.fill(0xff);
  assert.equal(c.sum(1, 201), 0xffff);
  assert.equal(c.sum(1, 200), 0xff00); // an odd last byte is padded with zero
  assert.equal(c.sum(0, 256), 0xffff);
});

Deno.test("ChecksumBuffer.sum() over a packet with its checksum in place is 0xffff", () => {
  // An IPv4 header (RFC 1071 §3 style check): checksum written, then verified.
  const hdr = Uint8Array.from([
    0x45,
    0x00,
    0x00,
    0x73,
    0x00,
    0x00,
    0x40,
    0x00,
    0x40,
    0x11,
    0x00,
    0x00,
    0xc0,
    0xa8,
    0x00,
    0x01,
    0xc0,
    0xa8,
    0x00,
    0xc7,
  ]);
  const buf = new Uint8Array(32);
  buf.set(hdr, 5); // odd, unaligned start
  const c = new ChecksumBuffer(buf);
  const sum = c.sum(5, 25);
  const csum = ~sum & 0xffff;
  assert.equal(csum, 0xb861); // the well-known example header's checksum
  buf[15] = csum >>> 8;
  buf[16] = csum & 0xff;
  assert.equal(c.sum(5, 25), 0xffff);
});

Deno.test("new ChecksumBuffer() refuses a view that is not 32-bit aligned", () => {
  assert.throws(() => new ChecksumBuffer(new Uint8Array(new ArrayBuffer(16), 2, 8)), RangeError);
});

Deno.test("foldSum(), swapSum() and addSums() keep one's complement arithmetic", () => {
  assert.equal(foldSum(0), 0);
  assert.equal(foldSum(0xffff), 0xffff);
  assert.equal(foldSum(0x10000), 1);
  assert.equal(foldSum(0x1fffe), 0xffff);
  assert.equal(foldSum(2 ** 40 + 5), foldSum((2 ** 40) % 0xffff + 5));
  assert.equal(swapSum(0x1234), 0x3412);
  assert.equal(addSums(0xffff, 1), 1);
  assert.equal(addSums(0x8000, 0x8000), 1);
  assert.equal(addSums(0, 0), 0);
});

Deno.test("ChecksumBuffer over WebAssembly memory gives 0 only for zeros, 0xffff for all ones", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const bytes = new Uint8Array(memory.buffer, 0, 4096);
  const c = new ChecksumBuffer(bytes, memory);
  assert.equal(c.sum(0, 4096), 0);
  bytes.fill(0xff);
  assert.equal(c.sum(1, 1001), 0xffff);
  assert.equal(c.sum(1, 1000), 0xff00);
  // A memory the bytes are not in is ignored.
  assert.equal(new ChecksumBuffer(new Uint8Array(64), memory).usesWasm, false);
});
