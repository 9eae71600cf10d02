/**
 * Segmenter: super-packets split into segments, and partial checksums
 * finished, byte for byte against packets built here by hand with an
 * independent checksum.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketBatch } from "../ffi/batch.ts";
import { Segmenter } from "./segment.ts";

// ---------------------------------------------------------------------------
// Independent helpers: RFC 1071 one word at a time, and packet builders.

function naiveSum(b: Uint8Array, start: number, end: number, initial = 0): number {
  let s = initial;
  for (let i = start; i < end; i += 2) {
    s += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
    s = (s & 0xffff) + (s >>> 16);
  }
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

const be16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;
const be32 = (b: Uint8Array, o: number) =>
  ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
function put16(b: Uint8Array, o: number, v: number) {
  b[o] = v >>> 8;
  b[o + 1] = v & 0xff;
}
function put32(b: Uint8Array, o: number, v: number) {
  put16(b, o, v >>> 16);
  put16(b, o + 2, v & 0xffff);
}

/** The pseudo-header sum of the packet `p` (IPv4 or IPv6) for `proto` and `l4len`. */
function pseudo(p: Uint8Array, proto: number, l4len: number): number {
  const v4 = p[0]! >>> 4 === 4;
  return v4 ? naiveSum(p, 12, 20, proto + l4len) : naiveSum(p, 8, 40, proto + l4len);
}

/** Whether the TCP/UDP checksum of packet `p` (transport header at `l4`) is right. */
function l4ChecksumOk(p: Uint8Array, l4: number, proto: number): boolean {
  return naiveSum(p, l4, p.length, pseudo(p, proto, p.length - l4)) === 0xffff;
}

interface Spec {
  v6: boolean;
  tcp: boolean;
  payload: number;
  /** TCP options bytes (a multiple of 4). */
  options?: number;
  flags?: number;
  seq?: number;
  id?: number;
}

/** A super-packet as a TUN hands it over: lengths of the whole, checksum field = pseudo sum. */
function superPacket(s: Spec): { pkt: Uint8Array; iphl: number; l4len: number } {
  const iphl = s.v6 ? 40 : 20;
  const l4h = s.tcp ? 20 + (s.options ?? 0) : 8;
  const len = iphl + l4h + s.payload;
  const p = new Uint8Array(len);
  const proto = s.tcp ? 6 : 17;
  if (s.v6) {
    p[0] = 0x60;
    p[1] = 0x0a; // traffic class bits
    put16(p, 4, len - 40);
    p[6] = proto;
    p[7] = 63;
    p.set([0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10], 8);
    p.set([0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10], 24);
  } else {
    p[0] = 0x45;
    p[1] = 0x02;
    put16(p, 2, len);
    put16(p, 4, s.id ?? 0xfffe);
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = proto;
    p.set([10, 1, 0, 10], 12);
    p.set([10, 2, 0, 10], 16);
    put16(p, 10, ~naiveSum(p, 0, 20) & 0xffff);
  }
  const l4 = iphl;
  put16(p, l4, 50000);
  put16(p, l4 + 2, 5201);
  if (s.tcp) {
    put32(p, l4 + 4, s.seq ?? 0xfffff000);
    put32(p, l4 + 8, 0x01020304);
    p[l4 + 12] = (l4h >>> 2) << 4;
    p[l4 + 13] = s.flags ?? 0x18;
    put16(p, l4 + 14, 502);
    for (let k = 20; k < l4h; k++) p[l4 + k] = k === 20 ? 1 : 0x30 + k; // NOP then data
  } else {
    put16(p, l4 + 4, len - iphl);
  }
  for (let k = iphl + l4h; k < len; k++) p[k] = (k * 131 + 17) & 0xff;
  const l4len = len - iphl;
  const at = l4 + (s.tcp ? 16 : 6);
  put16(p, at, pseudo(p, proto, l4len)); // partial: the pseudo-header sum, as NEEDS_CSUM has it
  return { pkt: p, iphl, l4len };
}

/** A batch with its spill area holding `pkt`; returns it and where the packet is. */
function loaded(pkt: Uint8Array, slots = 64): { b: PacketBatch; from: number } {
  const b = new PacketBatch({ slots, slotSize: 2048, headroom: 64, spill: 70_000 });
  b.bytes.set(pkt, b.spillOffset);
  return { b, from: b.spillOffset };
}

const GSO_TCPV4 = 1;
const GSO_TCPV6 = 4;
const GSO_UDP_L4 = 5;

// ---------------------------------------------------------------------------

for (const v6 of [false, true]) {
  const fam = v6 ? "IPv6" : "IPv4";
  Deno.test(`Segmenter.split() cuts a TCP/${fam} super-packet into whole, valid segments`, () => {
    const { pkt, iphl } = superPacket({
      v6,
      tcp: true,
      payload: 10_000,
      options: 12,
      flags: 0x80 | 0x10 | 0x08 | 0x01, // CWR ACK PSH FIN
      seq: 0xffffe000, // wraps within the packet
      id: 0xfffd, // wraps too
    });
    const gso = 1448;
    const { b, from } = loaded(pkt);
    const seg = new Segmenter(b);
    const k = seg.plan(from, pkt.length, v6 ? GSO_TCPV6 : GSO_TCPV4, gso, iphl);
    assert.equal(k, 7);
    assert.equal(seg.split(from, gso, iphl, 3), 7);
    const hdrs = iphl + 32;
    for (let j = 0; j < k; j++) {
      const s = 3 + j;
      assert.equal(b.offset[s], s * 2048 + 64, "the slot's own region");
      const q = b.packet(s);
      const plen = j < 6 ? gso : 10_000 - 6 * gso;
      assert.equal(q.length, hdrs + plen, `segment ${j} length`);
      if (v6) {
        assert.equal(be16(q, 4), q.length - 40, "payload length");
        assert.deepEqual(q.subarray(0, 4), pkt.subarray(0, 4));
        assert.deepEqual(q.subarray(6, 40), pkt.subarray(6, 40));
      } else {
        assert.equal(be16(q, 2), q.length, "total length");
        assert.equal(be16(q, 4), (0xfffd + j) & 0xffff, "identification +1 a segment");
        assert.equal(naiveSum(q, 0, 20), 0xffff, "header checksum");
        assert.deepEqual(q.subarray(6, 10), pkt.subarray(6, 10), "flags, TTL, protocol");
        assert.deepEqual(q.subarray(12, 20), pkt.subarray(12, 20), "addresses");
      }
      const l4 = iphl;
      assert.equal(be32(q, l4 + 4), (0xffffe000 + j * gso) % 2 ** 32, "sequence number");
      assert.deepEqual(q.subarray(l4 + 8, l4 + 13), pkt.subarray(l4 + 8, l4 + 13), "ack, offset");
      const flags = q[l4 + 13]!;
      const want: number = 0x10 | (j === 0 ? 0x80 : 0) | (j === k - 1 ? 0x08 | 0x01 : 0);
      assert.equal(flags, want, `flags of segment ${j}`);
      assert.deepEqual(q.subarray(l4 + 14, l4 + 16), pkt.subarray(l4 + 14, l4 + 16), "window");
      assert.deepEqual(q.subarray(l4 + 18, hdrs), pkt.subarray(l4 + 18, hdrs), "urgent, options");
      const src = hdrs + j * gso;
      assert.deepEqual(q.subarray(hdrs), pkt.subarray(src, src + plen), "payload");
      assert.ok(l4ChecksumOk(q, l4, 6), `TCP checksum of segment ${j}`);
      // The value itself, recomputed independently.
      const copy = q.slice();
      put16(copy, l4 + 16, 0);
      const want16 = ~naiveSum(copy, l4, copy.length, pseudo(copy, 6, copy.length - l4)) & 0xffff;
      assert.equal(be16(q, l4 + 16), want16);
    }
  });

  Deno.test(`Segmenter.split() cuts a UDP/${fam} super-packet (USO) into datagrams`, () => {
    const { pkt, iphl } = superPacket({ v6, tcp: false, payload: 4000 });
    const gso = 1400;
    const { b, from } = loaded(pkt);
    const seg = new Segmenter(b);
    assert.equal(seg.plan(from, pkt.length, GSO_UDP_L4, gso, iphl), 3);
    assert.equal(seg.split(from, gso, iphl, 0), 3);
    for (let j = 0; j < 3; j++) {
      const q = b.packet(j);
      const plen = j < 2 ? gso : 1200;
      assert.equal(q.length, iphl + 8 + plen);
      assert.equal(be16(q, iphl + 4), 8 + plen, "UDP length");
      assert.deepEqual(q.subarray(iphl, iphl + 4), pkt.subarray(iphl, iphl + 4), "ports");
      assert.deepEqual(
        q.subarray(iphl + 8),
        pkt.subarray(iphl + 8 + j * gso, iphl + 8 + j * gso + plen),
      );
      assert.ok(l4ChecksumOk(q, iphl, 17), `UDP checksum of datagram ${j}`);
      assert.notEqual(be16(q, iphl + 6), 0);
      if (!v6) assert.equal(naiveSum(q, 0, 20), 0xffff);
    }
  });
}

Deno.test("Segmenter.split() writes a UDP checksum that sums to 0 as 0xffff", () => {
  const { pkt, iphl } = superPacket({ v6: false, tcp: false, payload: 200 });
  // Make the second datagram's sum come out 0xffff (checksum 0) through its last two bytes.
  const gso = 100;
  const second = new Uint8Array(iphl + 8 + 100);
  second.set(pkt.subarray(0, iphl + 8));
  put16(second, 2, second.length);
  put16(second, iphl + 4, 108);
  put16(second, iphl + 6, 0);
  second.set(pkt.subarray(iphl + 108, iphl + 208), iphl + 8);
  put16(second, second.length - 2, 0);
  const rest = naiveSum(second, iphl, second.length, pseudo(second, 17, 108));
  const fix = 0xffff - rest; // makes the sum 0xffff
  pkt[pkt.length - 2] = fix >>> 8;
  pkt[pkt.length - 1] = fix & 0xff;
  const { b, from } = loaded(pkt);
  const seg = new Segmenter(b);
  assert.equal(seg.plan(from, pkt.length, GSO_UDP_L4, gso, iphl), 2);
  seg.split(from, gso, iphl, 0);
  const q = b.packet(1);
  assert.equal(be16(q, iphl + 6), 0xffff);
  assert.ok(l4ChecksumOk(q, iphl, 17));
});

for (const tcp of [true, false]) {
  Deno.test(`Segmenter.complete() finishes a partial ${tcp ? "TCP" : "UDP"} checksum in place`, () => {
    for (const v6 of [false, true]) {
      const { pkt, iphl } = superPacket({ v6, tcp, payload: 333 });
      const b = new PacketBatch({ slots: 2, slotSize: 2048, headroom: 64 });
      b.bytes.set(pkt, b.offset[1]!);
      b.length[1] = pkt.length;
      const seg = new Segmenter(b);
      assert.equal(seg.complete(1, iphl, tcp ? 16 : 6), true);
      const q = b.packet(1);
      assert.ok(l4ChecksumOk(q, iphl, tcp ? 6 : 17));
      assert.deepEqual(
        q.subarray(0, iphl + (tcp ? 16 : 6)),
        pkt.subarray(0, iphl + (tcp ? 16 : 6)),
      );
      assert.equal(seg.complete(1, iphl, 400), false, "a field past the end");
      assert.equal(seg.complete(1, 4, 16), false, "a start inside the IP header");
    }
  });
}

Deno.test("Segmenter.plan() refuses what it cannot split", () => {
  const tcp4 = superPacket({ v6: false, tcp: true, payload: 3000 }).pkt;
  const tcp6 = superPacket({ v6: true, tcp: true, payload: 3000 }).pkt;
  const udp4 = superPacket({ v6: false, tcp: false, payload: 3000 }).pkt;
  const edit = (p: Uint8Array, f: (q: Uint8Array) => void) => {
    const q = p.slice();
    f(q);
    return q;
  };
  const cases: [string, Uint8Array, number, number, number][] = [
    ["UFO (gso_type 3)", udp4, 3, 1000, 20],
    ["no GSO type", tcp4, 0, 1000, 20],
    ["TCPV6 on an IPv4 packet", tcp4, GSO_TCPV6, 1000, 20],
    ["TCPV4 on an IPv6 packet", tcp6, GSO_TCPV4, 1000, 40],
    ["csum_start not the IPv4 header length", tcp4, GSO_TCPV4, 1000, 24],
    ["IPv6 with an extension header", tcp6, GSO_TCPV6, 1000, 48],
    ["a fragment", edit(tcp4, (q) => (q[7] = 1)), GSO_TCPV4, 1000, 20],
    ["UDP_L4 on TCP", tcp4, GSO_UDP_L4, 1000, 20],
    ["TCP type on UDP", udp4, GSO_TCPV4, 1000, 20],
    ["a TCP data offset below 5", edit(tcp4, (q) => (q[32] = 0x40)), GSO_TCPV4, 1000, 20],
    ["gso_size 0", tcp4, GSO_TCPV4, 0, 20],
    ["a segment bigger than a slot", tcp4, GSO_TCPV4, 2000, 20],
    ["not IP", edit(tcp4, (q) => (q[0] = 0x55)), GSO_TCPV4, 1000, 20],
  ];
  for (const [name, pkt, type, gso, start] of cases) {
    const { b, from } = loaded(pkt);
    assert.equal(new Segmenter(b).plan(from, pkt.length, type, gso, start), -1, name);
  }
  const headersOnly = superPacket({ v6: false, tcp: true, payload: 0 }).pkt;
  const { b, from } = loaded(headersOnly);
  assert.equal(
    new Segmenter(b).plan(from, headersOnly.length, GSO_TCPV4, 1000, 20),
    -1,
    "no payload",
  );
  assert.equal(new Segmenter(b).plan(from, 10, GSO_TCPV4, 1000, 20), -1, "shorter than a header");
});

Deno.test("Segmenter.split() with the ECN bit in the GSO type keeps CWR on the first segment only", () => {
  const { pkt, iphl } = superPacket({ v6: false, tcp: true, payload: 3000, flags: 0x90 });
  const { b, from } = loaded(pkt);
  const seg = new Segmenter(b);
  assert.equal(seg.plan(from, pkt.length, GSO_TCPV4 | 0x80, 1000, iphl), 3);
  seg.split(from, 1000, iphl, 0);
  assert.deepEqual([0, 1, 2].map((j) => b.packet(j)[iphl + 13]), [0x90, 0x10, 0x10]);
});

Deno.test("Segmenter.split() in parts gives the same segments as in one go", () => {
  const { pkt, iphl } = superPacket({ v6: false, tcp: true, payload: 9000, options: 12 });
  const whole = loaded(pkt);
  const one = new Segmenter(whole.b);
  assert.equal(one.plan(whole.from, pkt.length, GSO_TCPV4, 1000, iphl), 9);
  one.split(whole.from, 1000, iphl, 0);
  const parts = loaded(pkt, 4);
  const seg = new Segmenter(parts.b);
  assert.equal(seg.plan(parts.from, pkt.length, GSO_TCPV4, 1000, iphl), 9);
  for (const [first, count] of [[0, 4], [4, 4], [8, 1]] as const) {
    assert.equal(seg.split(parts.from, 1000, iphl, 0, first, count), count);
    for (let j = 0; j < count; j++) {
      assert.deepEqual(parts.b.packet(j), whole.b.packet(first + j), `segment ${first + j}`);
    }
  }
});

Deno.test("Segmenter over a WebAssembly batch (SIMD sums) cuts the very same segments", () => {
  for (const v6 of [false, true]) {
    const { pkt, iphl } = superPacket({ v6, tcp: true, payload: 20_001, options: 12 });
    const plain = loaded(pkt);
    const a = new Segmenter(plain.b);
    const k = a.plan(plain.from, pkt.length, v6 ? GSO_TCPV6 : GSO_TCPV4, 1448, iphl);
    a.split(plain.from, 1448, iphl, 0);
    const w = new PacketBatch({
      slots: 64,
      slotSize: 2048,
      headroom: 64,
      spill: 70_000,
      wasm: true,
    });
    w.bytes.set(pkt, w.spillOffset);
    const b = new Segmenter(w);
    assert.equal(b.plan(w.spillOffset, pkt.length, v6 ? GSO_TCPV6 : GSO_TCPV4, 1448, iphl), k);
    b.split(w.spillOffset, 1448, iphl, 0);
    for (let j = 0; j < k; j++) assert.deepEqual(w.packet(j), plain.b.packet(j), `segment ${j}`);
  }
});
