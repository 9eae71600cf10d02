/**
 * Coalescer: which inner packets become one TUN write, and what that write
 * holds, byte for byte, against packets built by hand (tests/inner_packets.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketBatch } from "../ffi/batch.ts";
import { Coalescer, TUN_MERGE_TCP, TUN_MERGE_UDP, TUN_VNET } from "./coalesce.ts";
import { Segmenter } from "./segment.ts";
import { parseVirtioNetHeader } from "../wire/virtio_net.ts";
import {
  be16,
  checksumOk,
  type Flow,
  naiveSum,
  pseudoSum,
  readIovecs,
  tcpSegment,
  udpDatagram,
} from "../tests/inner_packets.ts";

interface Write {
  tun: number;
  bytes: Uint8Array;
}

/** Puts `packets` into consecutive slots, adds them (TUN `tun` each, or 0) and flushes. */
function run(
  packets: readonly Uint8Array[],
  modes: readonly number[] = [TUN_VNET | TUN_MERGE_TCP | TUN_MERGE_UDP],
  tuns?: readonly number[],
): { writes: Write[]; c: Coalescer } {
  const b = new PacketBatch({ slots: 128, slotSize: 2048, headroom: 64 });
  const c = new Coalescer(b, 128 * 64);
  modes.forEach((m, t) => c.setMode(t, m));
  c.begin();
  packets.forEach((p, i) => {
    b.bytes.set(p, b.offset[i]!);
    c.add(tuns?.[i] ?? 0, b.offset[i]!, p.length);
  });
  const writes: Write[] = [];
  c.flush((tun, iov, count) => writes.push({ tun, bytes: readIovecs(iov, count) }));
  return { writes, c };
}

const A4: Flow = { v6: false, sport: 40000 };
const B4: Flow = { v6: false, sport: 40001 };
const A6: Flow = { v6: true, sport: 40000 };

/** A train of `n` full segments of `mss` from `seq` (ids from `id`), the last `lastLen` long. */
function train(
  f: Flow,
  n: number,
  mss: number,
  seq: number,
  id = 100,
  lastLen = mss,
  lastFlags = 0x10,
) {
  return Array.from({ length: n }, (_, j) =>
    tcpSegment(f, {
      seq: (seq + j * mss) >>> 0,
      payload: j === n - 1 ? lastLen : mss,
      id: id + j,
      flags: j === n - 1 ? lastFlags : 0x10,
    }));
}

/** Checks a merged write against the single segment that stands for the whole train. */
function assertMerged(w: Write, f: Flow, seq: number, payload: number, mss: number, flags = 0x10) {
  const h = parseVirtioNetHeader(w.bytes);
  const iphl = f.v6 ? 40 : 20;
  assert.equal(h.flags, 1, "NEEDS_CSUM");
  assert.equal(h.gsoType, f.v6 ? 4 : 1);
  assert.equal(h.gsoSize, mss);
  assert.equal(h.hdrLen, iphl + 32);
  assert.equal(h.csumStart, iphl);
  assert.equal(h.csumOffset, 16);
  const merged = w.bytes.slice(10);
  const whole = tcpSegment(f, { seq, payload, id: 100, flags });
  assert.equal(merged.length, whole.length);
  // Every byte as the one big segment has it, but the TCP checksum: there, the pseudo-header sum.
  const at = iphl + 16;
  assert.deepEqual(merged.subarray(0, at), whole.subarray(0, at));
  assert.deepEqual(merged.subarray(at + 2), whole.subarray(at + 2));
  assert.equal(be16(merged, at), pseudoSum(merged, 6, merged.length - iphl));
  // The kernel finishing it (skb_checksum_help) gives a valid packet.
  const c = ~naiveSum(merged, iphl, merged.length) & 0xffff;
  merged[at] = c >>> 8;
  merged[at + 1] = c & 0xff;
  assert.ok(checksumOk(merged));
}

for (const f of [A4, A6]) {
  const fam = f.v6 ? "IPv6" : "IPv4";
  Deno.test(`Coalescer merges in-order TCP/${fam} segments of one flow into one GSO write`, () => {
    const { writes, c } = run(train(f, 5, 1000, 0xfffff000, 100, 400, 0x18));
    assert.equal(writes.length, 1);
    assertMerged(writes[0]!, f, 0xfffff000, 4400, 1000, 0x18);
    assert.equal(c.merged, 4);
    assert.equal(c.gsoWrites, 1);
  });
}

Deno.test("Coalescer writes a lone segment behind a zero virtio-net header, unchanged", () => {
  const p = tcpSegment(A4, { seq: 1, payload: 100 });
  const { writes } = run([p]);
  assert.equal(writes.length, 1);
  assert.deepEqual(writes[0]!.bytes, new Uint8Array([...new Uint8Array(10), ...p]));
});

Deno.test("Coalescer keeps order: interleaved flows merge apart, each write where its first packet was", () => {
  const a = train(A4, 3, 500, 1000, 10);
  const b = train(B4, 3, 500, 7000, 50);
  const icmp = Uint8Array.from([
    0x45,
    0,
    0,
    28,
    0,
    0,
    0,
    0,
    64,
    1,
    0,
    0,
    10,
    1,
    0,
    10,
    10,
    2,
    0,
    10,
    8,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
  ]);
  const { writes } = run([a[0]!, b[0]!, a[1]!, b[1]!, a[2]!, b[2]!, icmp]);
  assert.equal(writes.length, 3);
  assert.equal(be16(writes[0]!.bytes, 10 + 20), 40000, "flow A first");
  assert.equal(be16(writes[0]!.bytes, 10 + 2), 20 + 32 + 1500);
  assert.equal(be16(writes[1]!.bytes, 10 + 20), 40001);
  assert.equal(be16(writes[1]!.bytes, 10 + 2), 20 + 32 + 1500);
  assert.deepEqual(writes[2]!.bytes.subarray(10), icmp);
});

Deno.test("Coalescer does not merge across a gap, a reordering or a change of ack, window or options", () => {
  const s = (seq: number, extra: Partial<Parameters<typeof tcpSegment>[1]> = {}) =>
    tcpSegment(A4, { seq, payload: 100, id: 100 + (seq - 1000) / 100, ...extra });
  const cases: [string, Uint8Array[], number][] = [
    ["a gap in the sequence", [s(1000), s(1200)], 2],
    ["reordered", [s(1100), s(1000)], 2],
    ["another ack", [s(1000), s(1100, { ack: 5 })], 2],
    ["another window", [s(1000), s(1100, { window: 9 })], 2],
    ["other options", [s(1000), s(1100, { options: new Uint8Array(12).fill(1) })], 2],
    ["options that differ in their last byte", [
      s(1000, { options: Uint8Array.from([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]) }),
      s(1100, { options: Uint8Array.from([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 3]) }),
    ], 2],
    ["another port", [
      s(1000),
      tcpSegment({ ...A4, dport: 5202 }, { seq: 1100, payload: 100, id: 101 }),
    ], 2],
    ["an IPv4 id that does not go up by one", [s(1000), s(1100, { id: 500 })], 2],
    ["after PSH", [s(1000, { flags: 0x18 }), s(1100)], 2],
    ["after a short segment", [
      s(1000, { payload: 50 }),
      tcpSegment(A4, { seq: 1050, payload: 100, id: 101 }),
    ], 2],
    ["a larger segment", [s(1000), s(1100, { payload: 150 })], 2],
    ["SYN, FIN, RST, URG, CWR", [s(1000), s(1100, { flags: 0x11 })], 2],
    ["none of those: merged", [s(1000), s(1100), s(1200)], 1],
  ];
  for (const [name, pkts, n] of cases) assert.equal(run(pkts).writes.length, n, name);
});

Deno.test("Coalescer writes a segment with a bad checksum alone and ends the merge it would join", () => {
  const t = train(A4, 4, 300, 5000, 10);
  const bad = tcpSegment(A4, { seq: 5600, payload: 300, id: 12, badChecksum: true });
  const { writes, c } = run([t[0]!, t[1]!, bad, t[3]!]);
  assert.equal(writes.length, 3);
  assert.equal(be16(writes[0]!.bytes, 10 + 2), 20 + 32 + 600, "the first two merged");
  assert.deepEqual(writes[1]!.bytes.subarray(10), bad, "the bad one as it came");
  assert.equal(c.badChecksums, 1);
  // A bad first segment: nothing joins it.
  const bad0 = tcpSegment(A4, { seq: 5000, payload: 300, id: 10, badChecksum: true });
  assert.equal(run([bad0, t[1]!]).writes.length, 2);
});

Deno.test("Coalescer checks every joining packet: one corrupted anywhere is written alone (plain and WebAssembly batches)", () => {
  // A joining packet's checksums are checked from sums of the first
  // packet's shared header part plus its own fields and payload: any
  // corrupted byte among those must still be caught.
  const mutations: [string, (p: Uint8Array, iphl: number, tcp: boolean) => void][] = [
    ["a payload byte", (p) => void (p[p.length - 3]! ^= 0x40)],
    ["the TCP/UDP checksum", (p, iphl, tcp) => void (p[iphl + (tcp ? 17 : 7)]! ^= 0x01)],
  ];
  for (const wasm of [false, true]) {
    for (const f of [A4, A6]) {
      for (const tcp of [true, false]) {
        const iphl = f.v6 ? 40 : 20;
        const pkts = tcp
          ? train(f, 4, 600, 9000, 50)
          : [0, 1, 2, 3].map((j) => udpDatagram(f, 600, j, 3000 + j));
        const cases = [...mutations];
        if (!f.v6) {
          cases.push(["the IPv4 header checksum", (p) => void (p[11]! ^= 0x10)]);
        }
        for (const [what, mutate] of cases) {
          const b = new PacketBatch({ slots: 16, slotSize: 2048, headroom: 64, wasm });
          const c = new Coalescer(b, 16 * 64);
          c.setMode(0, TUN_VNET | TUN_MERGE_TCP | TUN_MERGE_UDP);
          c.begin();
          pkts.forEach((p, i) => {
            const q = p.slice();
            if (i === 2) mutate(q, iphl, tcp);
            b.bytes.set(q, b.offset[i]!);
            c.add(0, b.offset[i]!, q.length);
          });
          const writes: Uint8Array[] = [];
          c.flush((_tun, iov, count) => writes.push(readIovecs(iov, count)));
          const name = `${wasm ? "wasm" : "plain"} ${f.v6 ? "IPv6" : "IPv4"} ${
            tcp ? "TCP" : "UDP"
          }: ${what}`;
          assert.equal(c.badChecksums, 1, name);
          assert.equal(writes.length, 3, `${name}: the first two merged, the bad one, the last`);
          assert.equal(writes[1]!.length, 10 + pkts[2]!.length, `${name}: the bad one alone`);
        }
      }
    }
  }
});

Deno.test("Coalescer ends a flow's merge at a packet of that flow that cannot join (a pure ACK)", () => {
  const t = train(A4, 3, 300, 5000, 10);
  const ack = tcpSegment(A4, { seq: 5300, payload: 0, id: 11 });
  const { writes } = run([t[0]!, ack, t[1]!, t[2]!]);
  assert.equal(writes.length, 3, "A then the ACK then A's next two merged: order kept");
  assert.deepEqual(writes[1]!.bytes.subarray(10), ack);
});

Deno.test("Coalescer stops at 64 segments and at 65,535 bytes", () => {
  const many = train(A4, 70, 100, 0, 0);
  const w = run(many).writes;
  assert.equal(w.length, 2);
  assert.equal(be16(w[0]!.bytes, 10 + 2), 20 + 32 + 64 * 100);
  const big = train(A4, 50, 1400, 0, 0); // 70,000 bytes of payload
  const wb = run(big).writes;
  assert.equal(wb.length, 2);
  assert.ok(be16(wb[0]!.bytes, 10 + 2) <= 65535);
  assert.equal((be16(wb[0]!.bytes, 10 + 2) - 52) % 1400, 0);
});

Deno.test("Coalescer merges UDP datagrams only where USO was granted", () => {
  const d = [0, 1, 2].map((j) => udpDatagram(A4, j < 2 ? 1200 : 700, j, 2000 + j));
  const { writes } = run(d);
  assert.equal(writes.length, 1);
  const h = parseVirtioNetHeader(writes[0]!.bytes);
  assert.equal(h.gsoType, 5);
  assert.equal(h.gsoSize, 1200);
  assert.equal(h.csumOffset, 6);
  const merged = writes[0]!.bytes.slice(10);
  assert.equal(be16(merged, 20 + 4), 8 + 3100, "UDP length");
  assert.deepEqual(merged.subarray(28, 28 + 1200), d[0]!.subarray(28));
  assert.deepEqual(merged.subarray(28 + 2400), d[2]!.subarray(28));
  assert.equal(be16(merged, 26), pseudoSum(merged, 17, merged.length - 20));
  assert.equal(run(d, [TUN_VNET | TUN_MERGE_TCP]).writes.length, 3, "no USO: one write each");
});

Deno.test("Coalescer without a virtio-net header writes plain packets; with one but no TSO, zero headers", () => {
  const t = train(A4, 3, 300, 0, 0);
  const plain = run(t, [0]).writes;
  assert.equal(plain.length, 3);
  assert.deepEqual(plain[1]!.bytes, t[1]);
  const vnet = run(t, [TUN_VNET]).writes;
  assert.equal(vnet.length, 3);
  assert.deepEqual(vnet[2]!.bytes, new Uint8Array([...new Uint8Array(10), ...t[2]!]));
});

Deno.test("Coalescer keeps the packets of two TUNs apart", () => {
  const t = train(A4, 4, 300, 0, 0);
  const m = TUN_VNET | TUN_MERGE_TCP;
  const { writes } = run(t, [m, m], [0, 1, 0, 1]);
  assert.deepEqual(writes.map((w) => w.tun), [0, 1, 0, 1]);
});

for (const f of [A4, A6]) {
  Deno.test(
    `Segmenter cuts what Coalescer merged back into the very same TCP/${
      f.v6 ? "IPv6" : "IPv4"
    } segments`,
    () => {
      const t = train(f, 7, 1448, 0xffffff00, 0xfffe, 1000, 0x18);
      const { writes } = run(t);
      assert.equal(writes.length, 1);
      const h = parseVirtioNetHeader(writes[0]!.bytes);
      const merged = writes[0]!.bytes.subarray(10);
      const b = new PacketBatch({ slots: 16, slotSize: 2048, headroom: 64, spill: 70_000 });
      b.bytes.set(merged, b.spillOffset);
      const seg = new Segmenter(b);
      assert.equal(seg.plan(b.spillOffset, merged.length, h.gsoType, h.gsoSize, h.csumStart), 7);
      seg.split(b.spillOffset, h.gsoSize, h.csumStart, 0);
      for (let j = 0; j < 7; j++) assert.deepEqual(b.packet(j), t[j], `segment ${j}`);
    },
  );
}
