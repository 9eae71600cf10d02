/**
 * The reuse-port program that spreads received datagrams over the
 * data-plane Workers, run by a classic BPF interpreter written here, against
 * the reference function; and what the spread does to flows.
 *
 * @module
 */

import assert from "node:assert/strict";
import { flowSpreadFilter, flowSpreadIndex } from "./spread.ts";

/**
 * A classic BPF interpreter for what the kernel runs on a reuse-port group
 * (the subset of opcodes a socket filter may use; a load past the end ends
 * the program with 0, as the kernel does). Independent of spread.ts's
 * reference function.
 */
function runCbpf(prog: Uint8Array, p: Uint8Array): number {
  const v = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  const mem = new Uint32Array(16);
  let a = 0;
  let x = 0;
  const ld = (o: number, size: number): number | undefined => {
    if (o < 0 || o + size > p.length) return undefined;
    let r = 0;
    for (let i = 0; i < size; i++) r = (r * 256) + p[o + i]!;
    return r >>> 0;
  };
  for (let pc = 0, steps = 0; pc < prog.length / 8 && steps < 4096; pc++, steps++) {
    const op = v.getUint16(pc * 8, le);
    const jt = prog[pc * 8 + 2]!;
    const jf = prog[pc * 8 + 3]!;
    const k = v.getUint32(pc * 8 + 4, le);
    let r: number | undefined;
    switch (op) {
      case 0x20:
        r = ld(k, 4);
        if (r === undefined) return 0;
        a = r;
        break;
      case 0x28:
        r = ld(k, 2);
        if (r === undefined) return 0;
        a = r;
        break;
      case 0x30:
        r = ld(k, 1);
        if (r === undefined) return 0;
        a = r;
        break;
      case 0x40:
        r = ld(x + k, 4);
        if (r === undefined) return 0;
        a = r;
        break;
      case 0xb1:
        r = ld(k, 1);
        if (r === undefined) return 0;
        x = 4 * (r & 0xf);
        break;
      case 0x02:
        mem[k] = a;
        break;
      case 0x60:
        a = mem[k]!;
        break;
      case 0x61:
        x = mem[k]!;
        break;
      case 0x07:
        x = a;
        break;
      case 0x74:
        a = a >>> k;
        break;
      case 0x54:
        a = (a & k) >>> 0;
        break;
      case 0xac:
        a = (a ^ x) >>> 0;
        break;
      case 0x24:
        a = Math.imul(a, k) >>> 0;
        break;
      case 0x94:
        a = a % k;
        break;
      case 0x05:
        pc += k;
        break;
      case 0x15:
        pc += a === k ? jt : jf;
        break;
      case 0x45:
        pc += (a & k) !== 0 ? jt : jf;
        break;
      case 0x16:
        return a;
      case 0x06:
        return k;
      default:
        throw new Error(`opcode 0x${op.toString(16)} not interpreted`);
    }
  }
  throw new Error("the program ran off its end");
}

/** The UDP payload of a LISP data packet carrying an IPv4 or IPv6 TCP/UDP packet. */
function lispPacket(
  family: 4 | 6,
  src: number[],
  dst: number[],
  proto: number,
  sport: number,
  dport: number,
  frag = 0,
): Uint8Array {
  const ip = family === 4 ? 20 : 40;
  const p = new Uint8Array(8 + ip + 20);
  p[0] = 0x88; // N and I bits
  const o = 8;
  if (family === 4) {
    p[o] = 0x45;
    p[o + 6] = frag >> 8;
    p[o + 7] = frag & 0xff;
    p[o + 9] = proto;
    p.set(src, o + 12);
    p.set(dst, o + 16);
  } else {
    p[o] = 0x60;
    p[o + 6] = proto;
    p.set(src, o + 8);
    p.set(dst, o + 24);
  }
  p[o + ip] = sport >> 8;
  p[o + ip + 1] = sport & 0xff;
  p[o + ip + 2] = dport >> 8;
  p[o + ip + 3] = dport & 0xff;
  return p;
}

function rand(n: number): number[] {
  return Array.from({ length: n }, () => Math.floor(Math.random() * 256));
}

Deno.test("flowSpreadFilter() computes what flowSpreadIndex() says, on random IPv4 and IPv6 flows", () => {
  for (const n of [1, 2, 3, 4, 7, 16]) {
    const prog = flowSpreadFilter(n);
    for (let i = 0; i < 500; i++) {
      const family = i % 2 === 0 ? 4 : 6;
      const len = family === 4 ? 4 : 16;
      const proto = [6, 17, 1, 47][i % 4]!;
      const frag = family === 4 && i % 5 === 0 ? (i % 3 === 0 ? 0x2000 : 0x0010) : 0;
      const p = lispPacket(
        family,
        rand(len),
        rand(len),
        proto,
        Math.floor(Math.random() * 65536),
        Math.floor(Math.random() * 65536),
        frag,
      );
      const want = flowSpreadIndex(p, n);
      assert(want >= 0 && want < n, `index ${want} of ${n}`);
      assert.equal(runCbpf(prog, p), want);
    }
  }
});

Deno.test("flowSpreadIndex() gives both directions of a flow one Worker, and spreads flows over all", () => {
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const [s, d] = [rand(4), rand(4)];
    const [sp, dp] = [1024 + i, 5201];
    const there = flowSpreadIndex(lispPacket(4, s, d, 6, sp, dp), 4);
    assert.equal(flowSpreadIndex(lispPacket(4, d, s, 6, dp, sp), 4), there);
    seen.add(there);
  }
  assert.equal(seen.size, 4);
  // Four iperf3 streams between two hosts (one address pair, ports in a row) use both of two Workers.
  const workers = new Set(
    [40001, 40002, 40003, 40004].map((sp) =>
      flowSpreadIndex(lispPacket(4, [10, 0, 1, 2], [10, 0, 2, 2], 6, sp, 5201), 2)
    ),
  );
  assert.equal(workers.size, 2);
});

Deno.test("flowSpreadFilter() leaves a datagram without an inner IP packet to the kernel's hash", () => {
  const info = new Uint8Array(40);
  info[0] = 0x70; // an Info-Request/Reply on the data port
  info[8] = 0x12;
  assert.equal(runCbpf(flowSpreadFilter(2), info), 0xffffffff);
  assert.equal(flowSpreadIndex(info, 2), -1);
  // Shorter than the fields it reads: the kernel ends the program with 0.
  assert.equal(
    runCbpf(flowSpreadFilter(2), lispPacket(4, rand(4), rand(4), 6, 1, 2).subarray(0, 30)),
    0,
  );
});

Deno.test("flowSpreadFilter() refuses a worker count outside 1..65535", () => {
  assert.throws(() => flowSpreadFilter(0), RangeError);
  assert.throws(() => flowSpreadFilter(1.5), RangeError);
  assert.throws(() => flowSpreadFilter(65536), RangeError);
});
