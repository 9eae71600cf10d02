/**
 * Unit tests of the data plane's packet logic (engine.ts): encapsulation,
 * decapsulation, lookups, locator selection, drops and events, on batches
 * in memory.
 */

import assert from "node:assert/strict";
import { Engine, HEADROOM, SLOT_SIZE, slotSizeFor } from "./engine.ts";
import type { DataLocator, FromWorker } from "./api.ts";
import { parsePrefix, type Prefix } from "../core/prefix.ts";
import { MAX_SLOT_SIZE, PacketBatch } from "../ffi/batch.ts";
import { parseIcmpTooBig } from "../wire/icmp.ts";
import { emitIpUdp } from "../wire/udp.ts";
import { parseLispDataHeader } from "../wire/data_header.ts";
import { parseVxlanGpeHeader } from "../wire/vxlan_gpe.ts";

function prefix(text: string, iid = 0): Prefix {
  const p = parsePrefix(text, iid);
  if (p === undefined) throw new Error(`bad prefix ${text}`);
  return p;
}

function loc(address: string, priority = 1, weight = 100, up = true): DataLocator {
  return { address, priority, weight, up };
}

function engine(
  mode: "xtr" | "rtr" = "xtr",
  encapsulation: "LISP" | "VXLAN-GPE" = "LISP",
): { e: Engine; posted: FromWorker[] } {
  const posted: FromWorker[] = [];
  const e = new Engine({ mode, encapsulation, slots: 8, post: (m) => posted.push(m), seed: 7 });
  e.setLocal([prefix("10.1.0.0/24", 5), prefix("fd00:1::/64", 5)]);
  return { e, posted };
}

function newBatch(): PacketBatch {
  return new PacketBatch({ slots: 8, slotSize: SLOT_SIZE, headroom: HEADROOM });
}

/** Puts an IP/UDP packet into slot `i` (at the receive position, like a TUN read). */
function put(b: PacketBatch, i: number, src: string, dst: string, srcPort = 1000): void {
  b.reset(i);
  const p = emitIpUdp({ src, dst, srcPort, dstPort: 9, payload: new Uint8Array(20).fill(i) });
  b.bytes.set(p, b.offset[i]!);
  b.length[i] = p.length;
  b.count = Math.max(b.count, i + 1);
}

/** Puts an encapsulated datagram (header + inner packet) from `peer` into slot `i`. */
function putEncapsulated(
  b: PacketBatch,
  i: number,
  header: number[],
  src: string,
  dst: string,
  peer: string,
): void {
  b.reset(i);
  const inner = emitIpUdp({ src, dst, srcPort: 1000, dstPort: 9, payload: new Uint8Array(20) });
  b.bytes.set(header, b.offset[i]!);
  b.bytes.set(inner, b.offset[i]! + 8);
  b.length[i] = 8 + inner.length;
  b.setPeer(i, peer, 4341);
  b.count = Math.max(b.count, i + 1);
}

Deno.test("Engine.fromTun() encapsulates with a LISP header (N, I, iid) to the RLOC on port 4341", () => {
  const { e } = engine();
  e.setMapping({
    prefix: prefix("10.2.0.0/24", 5),
    action: "encapsulate",
    locators: [loc("100.64.0.2")],
  });
  const b = newBatch();
  put(b, 0, "10.1.0.1", "10.2.0.1");
  const innerLen = b.length[0]!;
  e.fromTun(b);
  assert.equal(e.n4, 1);
  assert.equal(e.n6, 0);
  assert.equal(b.length[0], innerLen + 8);
  const h = parseLispDataHeader(b.packet(0).slice(0, 8));
  assert.equal(h.n, true);
  assert.equal(h.i, true);
  assert.equal(h.l, false);
  assert.equal(h.instanceId, 5);
  assert.equal(h.lsb, 0);
  assert.deepEqual(b.peer(0), { family: "ipv4", address: "100.64.0.2", port: 4341 });
  assert.equal(b.packet(0)[8]! >> 4, 4, "the inner IPv4 packet follows");
  assert.equal(e.snapshot()["encapsulated"], 1);
});

Deno.test("Engine.fromTun() encapsulates IPv6 in VXLAN-GPE (I, P, next protocol IPv6, VNI) to an IPv6 RLOC on 4790", () => {
  const { e } = engine("xtr", "VXLAN-GPE");
  e.setMapping({
    prefix: prefix("fd00:2::/64", 5),
    action: "encapsulate",
    locators: [loc("2001:db8:64::2")],
  });
  e.setMapping({
    prefix: prefix("10.2.0.0/24", 5),
    action: "encapsulate",
    locators: [loc("100.64.0.2")],
  });
  const b = newBatch();
  put(b, 0, "fd00:1::1", "fd00:2::1");
  put(b, 1, "10.1.0.1", "10.2.0.1");
  put(b, 2, "fd00:1::1", "fd00:2::2");
  e.fromTun(b);
  // IPv4 RLOCs first, then IPv6.
  assert.equal(e.n4, 1);
  assert.equal(e.n6, 2);
  assert.deepEqual(b.peer(0), { family: "ipv4", address: "100.64.0.2", port: 4790 });
  assert.deepEqual(b.peer(1), { family: "ipv6", address: "2001:db8:64::2", port: 4790 });
  const v4 = parseVxlanGpeHeader(b.packet(0).slice(0, 8));
  assert.deepEqual(v4, {
    version: 0,
    i: true,
    p: true,
    b: false,
    o: false,
    nextProtocol: 1,
    vni: 5,
  });
  const v6 = parseVxlanGpeHeader(b.packet(1).slice(0, 8));
  assert.deepEqual(v6, {
    version: 0,
    i: true,
    p: true,
    b: false,
    o: false,
    nextProtocol: 2,
    vni: 5,
  });
  assert.equal(b.packet(2)[8]! >> 4, 6);
});

Deno.test("Engine.fromTun() drops and counts a source that is not a local EID", () => {
  const { e } = engine();
  e.setMapping({
    prefix: prefix("10.2.0.0/24", 5),
    action: "encapsulate",
    locators: [loc("100.64.0.2")],
  });
  const b = newBatch();
  put(b, 0, "100.64.0.1", "10.2.0.1");
  e.fromTun(b);
  assert.equal(e.n4 + e.n6, 0);
  assert.equal(e.snapshot()["dropped:not-local-source"], 1);
});

Deno.test("Engine.fromTun() posts a miss at most once per (iid, destination) per second", () => {
  const { e, posted } = engine();
  const b = newBatch();
  e.now = 10_000;
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 8; i++) put(b, i, "10.1.0.1", i < 6 ? "10.7.0.1" : "10.7.0.2");
    e.fromTun(b);
    e.now += 400;
  }
  // t = 10000: both destinations; t = 10400: nothing; t = 10800: nothing (< 1 s).
  assert.deepEqual(posted, [
    { op: "miss", iid: 5, dst: "10.7.0.1", src: "10.1.0.1" },
    { op: "miss", iid: 5, dst: "10.7.0.2", src: "10.1.0.1" },
  ]);
  e.now = 11_000;
  put(b, 0, "10.1.0.1", "10.7.0.1");
  b.count = 1;
  e.fromTun(b);
  assert.equal(posted.length, 3);
  assert.equal(e.snapshot()["dropped:miss"], 25);
  // The same destination in another instance is another miss.
  e.setLocal([prefix("10.1.0.0/24", 6)]);
  put(b, 0, "10.1.0.1", "10.7.0.1");
  e.fromTun(b);
  assert.deepEqual(posted[3], { op: "miss", iid: 6, dst: "10.7.0.1", src: "10.1.0.1" });
});

Deno.test("Engine.fromTun() sends native-forward entries to a proxy-ETR by inner family, else drops them", () => {
  const { e, posted } = engine();
  e.setMapping({ prefix: prefix("0.0.0.0/0", 5), action: "native-forward", locators: [] });
  e.setMapping({ prefix: prefix("::/0", 5), action: "native-forward", locators: [] });
  e.setMapping({ prefix: prefix("10.66.0.0/16", 5), action: "drop", locators: [] });
  e.setMapping({ prefix: prefix("10.77.0.0/16", 5), action: "send-map-request", locators: [] });
  const b = newBatch();
  put(b, 0, "10.1.0.1", "198.51.100.1");
  put(b, 1, "fd00:1::1", "2001:db8:99::1");
  put(b, 2, "10.1.0.1", "10.66.0.1");
  put(b, 3, "10.1.0.1", "10.77.0.1");
  e.fromTun(b);
  assert.equal(e.n4 + e.n6, 0);
  let c = e.snapshot();
  assert.equal(c["dropped:no-petr"], 2);
  assert.equal(c["dropped:drop"], 1);
  assert.equal(c["dropped:miss"], 1);
  assert.deepEqual(posted, [{ op: "miss", iid: 5, dst: "10.77.0.1", src: "10.1.0.1" }]);
  e.setPetrs([loc("100.70.0.1")], [loc("2001:db8:70::1")]);
  put(b, 0, "10.1.0.1", "198.51.100.1");
  put(b, 1, "fd00:1::1", "2001:db8:99::1");
  b.count = 2;
  e.fromTun(b);
  assert.equal(e.n4, 1);
  assert.equal(e.n6, 1);
  assert.equal(b.peer(0)?.address, "100.70.0.1");
  assert.equal(b.peer(1)?.address, "2001:db8:70::1");
  c = e.snapshot();
  assert.equal(c["encapsulated"], 2);
});

Deno.test("Engine locator selection honours priority; a locator-down message moves flows to the next", () => {
  const { e } = engine();
  e.setMapping({
    prefix: prefix("10.2.0.0/24", 5),
    action: "encapsulate",
    locators: [loc("100.64.1.2", 2), loc("100.64.0.2", 1), loc("100.64.2.2", 255)],
  });
  const b = newBatch();
  const send = () => {
    for (let i = 0; i < 8; i++) put(b, i, "10.1.0.1", "10.2.0.1", 1000 + i * 7919);
    e.fromTun(b);
    const seen = new Set<string>();
    for (let i = 0; i < e.n4; i++) seen.add(b.peer(i)!.address);
    return [...seen].sort();
  };
  assert.deepEqual(send(), ["100.64.0.2"]);
  e.control({ op: "locator", address: "100.64.0.2", up: false });
  assert.deepEqual(send(), ["100.64.1.2"]);
  e.control({ op: "locator", address: "100.64.1.2", up: false });
  assert.deepEqual(send(), [], "priority 255 never carries traffic");
  assert.equal(e.snapshot()["dropped:no-locator"], 8);
  e.control({ op: "locator", address: "100.64.0.2", up: true });
  assert.deepEqual(send(), ["100.64.0.2"]);
});

Deno.test("Engine selection spreads flows by weight and keeps one flow on one RLOC", () => {
  const { e } = engine();
  e.setMapping({
    prefix: prefix("10.2.0.0/24", 5),
    action: "encapsulate",
    locators: [loc("100.64.0.2", 1, 50), loc("100.64.1.2", 1, 50)],
  });
  const b = newBatch();
  const count = new Map<string, number>();
  for (let round = 0; round < 64; round++) {
    for (let i = 0; i < 8; i++) put(b, i, "10.1.0.1", "10.2.0.1", 2000 + round * 8 + i);
    e.fromTun(b);
    for (let i = 0; i < 8; i++) {
      const a = b.peer(i)!.address;
      count.set(a, (count.get(a) ?? 0) + 1);
    }
  }
  assert.equal(count.size, 2);
  for (const n of count.values()) assert.ok(n > 150 && n < 362, `share ${n} of 512`);
  // One flow: the same RLOC every time.
  const flow = new Set<string>();
  for (let round = 0; round < 8; round++) {
    put(b, 0, "10.1.0.1", "10.2.0.1", 4242);
    b.count = 1;
    e.fromTun(b);
    flow.add(b.peer(0)!.address);
  }
  assert.equal(flow.size, 1);
});

Deno.test("Engine.fromUdp() decapsulates LISP for local EIDs of the header's iid and drops the rest", () => {
  const { e, posted } = engine();
  const b = newBatch();
  const lisp = (iid: number) => [0x88, 1, 2, 3, iid >> 16, (iid >> 8) & 255, iid & 255, 0];
  putEncapsulated(b, 0, lisp(5), "10.2.0.1", "10.1.0.1", "100.64.0.2");
  putEncapsulated(b, 1, lisp(6), "10.2.0.1", "10.1.0.1", "100.64.0.2"); // wrong instance
  putEncapsulated(b, 2, lisp(5), "10.2.0.1", "10.9.0.1", "100.64.0.2"); // not local
  putEncapsulated(b, 3, lisp(5), "10.2.0.1", "10.1.0.1", "100.64.0.2");
  b.length[3] = 8 + 19; // too short for a header and an IPv4 header
  putEncapsulated(b, 4, lisp(5), "fd00:2::1", "fd00:1::1", "2001:db8:64::2");
  e.now = 1000;
  e.fromUdp(b);
  assert.equal(b.length[0], 48, "header stripped: 20 + 8 + 20 bytes left");
  assert.equal(b.bytes[b.offset[0]!]! >> 4, 4);
  assert.equal(b.length[1], 0);
  assert.equal(b.length[2], 0);
  assert.equal(b.length[4], 68);
  const c = e.snapshot();
  assert.equal(c["decapsulated"], 4);
  assert.equal(c["dropped:not-local-destination"], 2);
  assert.equal(c["dropped:bad-header"], 1);
  assert.deepEqual(posted.filter((m) => m.op === "peer"), [
    { op: "peer", rloc: "100.64.0.2", iid: 5, srcEid: "10.2.0.1" },
    { op: "peer", rloc: "100.64.0.2", iid: 6, srcEid: "10.2.0.1" },
    { op: "peer", rloc: "2001:db8:64::2", iid: 5, srcEid: "fd00:2::1" },
  ]);
  // Again within 10 s: no new peer events; after 10 s: again.
  putEncapsulated(b, 0, lisp(5), "10.2.0.1", "10.1.0.1", "100.64.0.2");
  b.count = 1;
  e.now = 5000;
  e.fromUdp(b);
  assert.equal(posted.length, 3);
  putEncapsulated(b, 0, lisp(5), "10.2.0.1", "10.1.0.1", "100.64.0.2");
  e.now = 11_001;
  e.fromUdp(b);
  assert.equal(posted.length, 4);
  // The same triple back to back (the segments of a GRO batch): one event per 10 s still.
  for (const [now, want] of [[11_002, 4], [21_000, 4], [21_001, 5], [21_002, 5]] as const) {
    putEncapsulated(b, 0, lisp(5), "10.2.0.1", "10.1.0.1", "100.64.0.2");
    e.now = now;
    e.fromUdp(b);
    assert.equal(posted.length, want, `at ${now}`);
  }
  // Another source in between, then the first again within its 10 s: nothing new for it.
  putEncapsulated(b, 0, lisp(5), "10.2.0.9", "10.1.0.1", "100.64.0.2");
  e.now = 21_003;
  e.fromUdp(b);
  assert.equal(posted.length, 6);
  putEncapsulated(b, 0, lisp(5), "10.2.0.1", "10.1.0.1", "100.64.0.2");
  e.fromUdp(b);
  assert.equal(posted.length, 6);
});

Deno.test("Engine.fromUdp() checks VXLAN-GPE version and next protocol and takes the iid from the VNI", () => {
  const { e } = engine("xtr", "VXLAN-GPE");
  const b = newBatch();
  putEncapsulated(b, 0, [0x0c, 0, 0, 1, 0, 0, 5, 0], "10.2.0.1", "10.1.0.1", "100.64.0.2");
  putEncapsulated(b, 1, [0x0c, 0, 0, 3, 0, 0, 5, 0], "10.2.0.1", "10.1.0.1", "100.64.0.2"); // Ethernet
  putEncapsulated(b, 2, [0x2c, 0, 0, 1, 0, 0, 5, 0], "10.2.0.1", "10.1.0.1", "100.64.0.2"); // version 2
  putEncapsulated(b, 3, [0x0c, 0, 0, 2, 0, 0, 5, 0], "10.2.0.1", "10.1.0.1", "100.64.0.2"); // says IPv6
  putEncapsulated(b, 4, [0x04, 0, 0, 1, 0, 0, 5, 0], "10.2.0.1", "10.1.0.1", "100.64.0.2"); // no I: iid 0
  e.fromUdp(b);
  assert.deepEqual([...b.length.subarray(0, 5)], [48, 0, 0, 0, 0]);
  const c = e.snapshot();
  assert.equal(c["dropped:bad-header"], 2);
  assert.equal(c["dropped:bad-inner"], 1);
  assert.equal(c["dropped:not-local-destination"], 1);
});

Deno.test("Engine in rtr mode re-encapsulates to the next RLOC, never back to the sender", () => {
  const { e } = engine("rtr");
  e.setMapping({
    prefix: prefix("10.2.0.0/24", 5),
    action: "encapsulate",
    locators: [loc("100.66.0.2")],
  });
  e.setMapping({
    prefix: prefix("10.3.0.0/24", 5),
    action: "encapsulate",
    locators: [loc("100.65.0.1", 1), loc("100.66.0.9", 2)],
  });
  e.setMapping({
    prefix: prefix("10.4.0.0/24", 5),
    action: "encapsulate",
    locators: [loc("100.65.0.1")],
  });
  const b = newBatch();
  const lisp = [0x88, 1, 2, 3, 0, 0, 5, 0];
  putEncapsulated(b, 0, lisp, "10.1.0.1", "10.2.0.1", "100.65.0.1");
  putEncapsulated(b, 1, lisp, "10.1.0.1", "10.3.0.1", "100.65.0.1"); // best is the sender
  putEncapsulated(b, 2, lisp, "10.1.0.1", "10.4.0.1", "100.65.0.1"); // only the sender
  putEncapsulated(b, 3, lisp, "10.1.0.1", "10.5.0.1", "100.65.0.1"); // miss
  e.fromUdp(b);
  assert.equal(e.n4, 2);
  assert.deepEqual(b.peer(0), { family: "ipv4", address: "100.66.0.2", port: 4341 });
  assert.deepEqual(b.peer(1), { family: "ipv4", address: "100.66.0.9", port: 4341 });
  const h = parseLispDataHeader(b.packet(0).slice(0, 8));
  assert.equal(h.instanceId, 5);
  const c = e.snapshot();
  assert.equal(c["dropped:loop"], 1);
  assert.equal(c["dropped:miss"], 1);
  assert.equal(c["decapsulated"], 4);
  assert.equal(c["encapsulated"], 2);
});

Deno.test("Engine.control() counts a bad mapping instead of throwing", () => {
  const { e } = engine();
  e.control({
    op: "set",
    mapping: { prefix: prefix("10.2.0.0/24"), action: "encapsulate", locators: [loc("nope")] },
  });
  assert.equal(e.snapshot()["control-errors"], 1);
});

Deno.test("Engine never throws on 40,000 random and mutated packets, in every mode and encapsulation", () => {
  let seed = 12345;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const valid = [
    emitIpUdp({
      src: "10.1.0.1",
      dst: "10.2.0.1",
      srcPort: 1,
      dstPort: 2,
      payload: new Uint8Array(30),
    }),
    emitIpUdp({
      src: "fd00:1::1",
      dst: "fd00:2::1",
      srcPort: 1,
      dstPort: 2,
      payload: new Uint8Array(9),
    }),
  ];
  for (const mode of ["xtr", "rtr"] as const) {
    for (const enc of ["LISP", "VXLAN-GPE"] as const) {
      const { e } = engine(mode, enc);
      e.setMapping({
        prefix: prefix("10.2.0.0/16", 5),
        action: "encapsulate",
        locators: [loc("100.64.0.2"), loc("2001:db8::2")],
      });
      e.setMapping({
        prefix: prefix("10.2.0.0/16"),
        action: "encapsulate",
        locators: [loc("100.64.0.2")],
      });
      e.setMapping({
        prefix: prefix("fd00::/16", 5),
        action: "encapsulate",
        locators: [loc("2001:db8::2")],
      });
      e.setMapping({ prefix: prefix("0.0.0.0/0", 5), action: "native-forward", locators: [] });
      e.setPetrs([loc("100.70.0.1")], []);
      const b = newBatch();
      let packets = 0;
      for (let round = 0; round < 1250; round++) {
        const tun = round % 2 === 0;
        for (let i = 0; i < 8; i++) {
          b.reset(i);
          const o = b.offset[i]!;
          let len: number;
          if (rand(3) === 0) {
            len = rand(120);
            for (let k = 0; k < len; k++) b.bytes[o + k] = rand(256);
          } else {
            // A packet as the TUN gives it, or as a data socket does (header first).
            const head = tun
              ? []
              : rand(2) === 0
              ? [0x88, 0, 0, 1, 0, 0, 5, 0]
              : [0x0c, 0, 0, 1, 0, 0, 5, 0];
            const inner = valid[rand(2)]!;
            b.bytes.set(head, o);
            b.bytes.set(inner, o + head.length);
            len = head.length + inner.length;
            for (let k = rand(4); k > 0; k--) b.bytes[o + rand(len)] = rand(256);
            len = Math.max(0, len - rand(3) * rand(40));
          }
          b.length[i] = len;
          b.setPeer(i, rand(2) === 0 ? "100.64.0.2" : "2001:db8::2", 4341);
        }
        b.count = 8;
        packets += 8;
        e.now = round * 10;
        if (tun) e.fromTun(b);
        else e.fromUdp(b);
        assert.ok(e.n4 + e.n6 <= 8);
      }
      const c = e.snapshot();
      assert.equal(c["internal-errors"], 0);
      assert.ok(c["encapsulated"]! > 0, `${mode} ${enc}: something was encapsulated`);
      assert.ok(c["decapsulated"]! > 0, `${mode} ${enc}: something was decapsulated`);
      assert.equal(packets, 10_000);
    }
  }
});

Deno.test("Engine accounts for every packet read from the TUN: encapsulated or dropped with a reason", () => {
  const { e } = engine();
  e.setMapping({
    prefix: prefix("10.2.0.0/16", 5),
    action: "encapsulate",
    locators: [loc("100.64.0.2")],
  });
  e.setMapping({ prefix: prefix("10.3.0.0/16", 5), action: "drop", locators: [] });
  const b = newBatch();
  const dsts = ["10.2.0.1", "10.3.0.1", "10.4.0.1"];
  const srcs = ["10.1.0.1", "10.9.0.1"];
  for (let round = 0; round < 30; round++) {
    for (let i = 0; i < 8; i++) put(b, i, srcs[(round + i) % 2]!, dsts[(round * 8 + i) % 3]!);
    if (round % 5 === 0) b.length[3] = 10; // not even an IP header
    e.fromTun(b);
  }
  const c = e.snapshot();
  let dropped = 0;
  for (const [k, v] of Object.entries(c)) if (k.startsWith("dropped:")) dropped += v;
  assert.equal(c["encapsulated"]! + dropped, 240);
  assert.ok(c["dropped:not-local-source"]! > 0 && c["dropped:drop"]! > 0 && c["dropped:miss"]! > 0);
  assert.equal(c["dropped:bad-inner"], 6);
});

Deno.test("Engine keeps two instance TUNs with the same prefix apart, both ways", () => {
  const posted: FromWorker[] = [];
  const e = new Engine({
    mode: "xtr",
    encapsulation: "LISP",
    slots: 8,
    post: (m) => posted.push(m),
    seed: 7,
    instanceIids: [1, 2],
  });
  e.setLocal([prefix("10.0.0.0/24", 1), prefix("10.0.0.0/24", 2)]);
  e.setMapping({
    prefix: prefix("10.0.1.0/24", 1),
    action: "encapsulate",
    locators: [loc("100.64.0.1")],
  });
  e.setMapping({
    prefix: prefix("10.0.1.0/24", 2),
    action: "encapsulate",
    locators: [loc("100.64.0.2")],
  });
  // ITR: what TUN k reads is in its iid, and goes to that iid's locator.
  for (const [tun, rloc] of [[1, "100.64.0.1"], [2, "100.64.0.2"]] as const) {
    const b = newBatch();
    put(b, 0, "10.0.0.10", "10.0.1.10");
    e.fromTun(b, tun);
    assert.equal(e.n4, 1, `TUN ${tun} encapsulated`);
    assert.equal(parseLispDataHeader(b.packet(0).slice(0, 8)).instanceId, tun);
    assert.equal(b.peer(0)?.address, rloc);
  }
  // The main TUN has no local prefix of these iids: dropped, not mixed.
  const m = newBatch();
  put(m, 0, "10.0.0.10", "10.0.1.10");
  e.fromTun(m, 0);
  assert.equal(e.n4, 0);
  assert.equal(e.snapshot()["dropped:not-local-source"], 1);
  // ETR: the header's iid picks the TUN to write to.
  const b = newBatch();
  const lisp = (iid: number) => [0x88, 0, 0, 1, 0, 0, iid, 0];
  putEncapsulated(b, 0, lisp(2), "10.0.1.10", "10.0.0.10", "100.64.0.2");
  putEncapsulated(b, 1, lisp(1), "10.0.1.10", "10.0.0.10", "100.64.0.1");
  putEncapsulated(b, 2, lisp(3), "10.0.1.10", "10.0.0.10", "100.64.0.1");
  e.fromUdp(b);
  assert.deepEqual([b.length[0]! > 0, b.length[1]! > 0, b.length[2]], [true, true, 0]);
  assert.deepEqual([e.tunTag[0], e.tunTag[1]], [2, 1]);
});

Deno.test("Engine in rtr mode with natSourcePort sends to an xTR behind a NAT as a whole IPv4/UDP packet from that port", () => {
  const posted: FromWorker[] = [];
  const e = new Engine({
    mode: "rtr",
    encapsulation: "LISP",
    slots: 8,
    post: (m) => posted.push(m),
    seed: 7,
    natSourcePort: 4342,
  });
  e.setMapping({
    prefix: prefix("10.1.0.0/24", 5),
    action: "encapsulate",
    locators: [{ ...loc("100.64.4.3"), port: 20077 }],
  });
  e.setMapping({
    prefix: prefix("10.2.0.0/24", 5),
    action: "encapsulate",
    locators: [loc("100.66.0.2")],
  });
  const b = newBatch();
  const lisp = [0x88, 1, 2, 3, 0, 0, 5, 0];
  putEncapsulated(b, 0, lisp, "10.2.0.1", "10.1.0.1", "100.66.0.2"); // to the NAT'd xTR
  putEncapsulated(b, 1, lisp, "10.1.0.1", "10.2.0.1", "100.64.4.3"); // plain
  e.fromUdp(b);
  assert.equal(e.n4, 1);
  assert.equal(e.n6, 0);
  assert.equal(e.nNat, 1);
  assert.deepEqual(b.peer(0), { family: "ipv4", address: "100.66.0.2", port: 4341 });
  const p = b.packet(1);
  const v = new DataView(p.buffer, p.byteOffset, p.length);
  assert.equal(p[0], 0x45, "IPv4, 20-byte header");
  assert.equal(v.getUint16(2), p.length, "total length");
  assert.equal(p[9], 17, "UDP");
  assert.deepEqual([...p.subarray(12, 16)], [0, 0, 0, 0], "source left to the kernel");
  assert.deepEqual([...p.subarray(16, 20)], [100, 64, 4, 3]);
  assert.equal(v.getUint16(20), 4342, "from the control port");
  assert.equal(v.getUint16(22), 20077, "to the NAT's port");
  assert.equal(v.getUint16(24), p.length - 20, "UDP length");
  assert.equal(parseLispDataHeader(p.slice(28, 36)).instanceId, 5);
  assert.equal(p[36], 0x45, "the inner packet follows");
  assert.equal(b.peer(1)?.address, "100.64.4.3");
});

Deno.test("Engine.fromUdp() hands a Data-Map-Notify (LISP iid 0xFFFFFF) to the control plane as its inner IP/UDP packet", () => {
  const { e, posted } = engine("xtr");
  const b = newBatch();
  putEncapsulated(
    b,
    0,
    [0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0],
    "100.64.3.2",
    "192.168.1.2",
    "100.64.3.2",
  );
  e.fromUdp(b);
  assert.equal(b.length[0], 0, "nothing for the TUN");
  const control = posted.filter((m) => m.op === "control");
  assert.equal(control.length, 1);
  const m = control[0] as Extract<FromWorker, { op: "control" }>;
  assert.equal(m.inIpUdp, true);
  assert.equal(m.address, "100.64.3.2");
  assert.equal(m.bytes[0], 0x45, "starts at the inner IPv4 header");
});

// ---------------------------------------------------------------------------
// Path MTU (RFC 9300 §7.1) and buffer sizes.

/** Puts an IP/UDP packet of `len` bytes into slot `i` (like a TUN read); IPv4 with DF if `df`. */
function putSized(
  b: PacketBatch,
  i: number,
  src: string,
  dst: string,
  len: number,
  df = true,
): Uint8Array {
  b.reset(i);
  const v6 = src.includes(":");
  const payload = new Uint8Array(len - (v6 ? 48 : 28));
  for (let k = 0; k < payload.length; k++) payload[k] = (k * 13 + i) & 0xff;
  const p = emitIpUdp({
    src,
    dst,
    srcPort: 40000 + i,
    dstPort: 7777,
    payload,
    ...(v6 ? {} : { dontFragment: df }),
  });
  b.bytes.set(p, b.offset[i]!);
  b.length[i] = p.length;
  b.count = Math.max(b.count, i + 1);
  return p;
}

/** An xtr engine with `pathMtu` and mappings to an IPv4 RLOC (site 2) and an IPv6 RLOC (site 3). */
function mtuEngine(pathMtu: { ipv4: number; ipv6: number }): Engine {
  const e = new Engine({
    mode: "xtr",
    encapsulation: "LISP",
    slots: 8,
    post: () => {},
    seed: 7,
    pathMtu,
  });
  e.setLocal([prefix("10.1.0.0/24", 5), prefix("fd00:1::/64", 5)]);
  for (const p of ["10.2.0.0/24", "fd00:2::/64"]) {
    e.setMapping({ prefix: prefix(p, 5), action: "encapsulate", locators: [loc("100.64.0.2")] });
  }
  for (const p of ["10.3.0.0/24", "fd00:3::/64"]) {
    e.setMapping({
      prefix: prefix(p, 5),
      action: "encapsulate",
      locators: [loc("2001:db8:64::2")],
    });
  }
  return e;
}

/** The ICMP errors of the last fromTun(), parsed. */
function icmpErrors(e: Engine, b: PacketBatch) {
  const start = e.n4 + e.n6 + e.nNat;
  const out = [];
  for (let i = start; i < start + e.nIcmp; i++) out.push(parseIcmpTooBig(b.packet(i)));
  return out;
}

Deno.test("Engine.fromTun() answers an IPv4 packet with DF too big for the path with ICMP fragmentation needed, MTU = path MTU - 36", () => {
  const e = mtuEngine({ ipv4: 1400, ipv6: 1500 });
  const b = newBatch();
  const big = putSized(b, 0, "10.1.0.10", "10.2.0.10", 1365);
  putSized(b, 1, "10.1.0.10", "10.2.0.10", 1364); // exactly fits: 1364 + 36 = 1400
  e.fromTun(b);
  assert.equal(e.n4, 1);
  assert.equal(e.nIcmp, 1);
  assert.equal(b.length[0], 1364 + 8, "the one that fits is encapsulated");
  const [icmp] = icmpErrors(e, b);
  assert.deepEqual(icmp, {
    version: 4,
    src: "10.2.0.10",
    dst: "10.1.0.10",
    ttl: 64,
    mtu: 1364,
    quote: big.slice(0, 576 - 28),
    checksumOk: true,
  });
  const c = e.snapshot();
  assert.equal(c["icmp-too-big"], 1);
  assert.equal(c["dropped:too-big"], 1);
  assert.equal(c["encapsulated"], 1);
});

Deno.test("Engine.fromTun() answers IPv6 with packet too big: MTU = path MTU - 56 toward an IPv6 RLOC, - 36 toward IPv4", () => {
  const e = mtuEngine({ ipv4: 1400, ipv6: 1400 });
  const b = newBatch();
  const to6 = putSized(b, 0, "fd00:1::10", "fd00:3::10", 1345);
  const to4 = putSized(b, 1, "fd00:1::10", "fd00:2::10", 1365);
  putSized(b, 2, "fd00:1::10", "fd00:3::10", 1344);
  putSized(b, 3, "fd00:1::10", "fd00:2::10", 1364);
  e.fromTun(b);
  assert.equal(e.n4 + e.n6, 2);
  const got = icmpErrors(e, b).sort((x, y) => x.mtu - y.mtu);
  assert.deepEqual(got.map((x) => [x.version, x.src, x.dst, x.mtu, x.checksumOk]), [
    [6, "fd00:3::10", "fd00:1::10", 1344, true],
    [6, "fd00:2::10", "fd00:1::10", 1364, true],
  ]);
  assert.deepEqual(got[0]!.quote, to6.slice(0, 1280 - 48), "as much as fits in 1280 bytes");
  assert.deepEqual(got[1]!.quote, to4.slice(0, 1280 - 48));
});

Deno.test("Engine.fromTun() never asks an IPv6 source below 1280: it sends a 1280-byte packet the path cannot carry whole", () => {
  const e = mtuEngine({ ipv4: 1300, ipv6: 1300 });
  const b = newBatch();
  putSized(b, 0, "fd00:1::10", "fd00:3::10", 1280);
  putSized(b, 1, "fd00:1::10", "fd00:3::10", 1281);
  e.fromTun(b);
  assert.equal(e.n6, 1, "1280 bytes: encapsulated (the kernel fragments the outer packet)");
  assert.deepEqual(icmpErrors(e, b).map((x) => x.mtu), [1280]);
});

Deno.test("Engine.fromTun() encapsulates an IPv4 packet without DF that is too big, and counts it (the outer packet is fragmented)", () => {
  const e = mtuEngine({ ipv4: 1400, ipv6: 1400 });
  const b = newBatch();
  putSized(b, 0, "10.1.0.10", "10.2.0.10", 1500, false);
  e.fromTun(b);
  assert.equal(e.n4, 1);
  assert.equal(e.nIcmp, 0);
  assert.equal(b.length[0], 1508);
  const c = e.snapshot();
  assert.equal(c["too-big-fragmented"], 1);
  assert.equal(c["dropped:too-big"], 0);
});

Deno.test("Engine.fromTun() writes at most 100 ICMP too-big errors a second and never answers an ICMP error", () => {
  const e = mtuEngine({ ipv4: 1400, ipv6: 1400 });
  const b = newBatch();
  e.now = 5_000;
  let icmp = 0;
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 8; i++) putSized(b, i, "10.1.0.10", "10.2.0.10", 1500);
    e.fromTun(b);
    icmp += e.nIcmp;
  }
  assert.equal(icmp, 100);
  e.now = 6_000;
  for (let i = 0; i < 8; i++) putSized(b, i, "10.1.0.10", "10.2.0.10", 1500);
  e.fromTun(b);
  assert.equal(e.nIcmp, 8, "a new second, a new budget");
  // An ICMP error (destination unreachable) with DF, too big: dropped without an answer.
  const p = putSized(b, 0, "10.1.0.10", "10.2.0.10", 1500);
  b.count = 1;
  b.bytes[b.offset[0]! + 9] = 1;
  b.bytes[b.offset[0]! + 20] = 3;
  assert.equal(p.length, 1500);
  e.fromTun(b);
  assert.equal(e.nIcmp, 0);
  const c = e.snapshot();
  assert.equal(c["icmp-too-big"], 108);
  assert.equal(c["dropped:too-big"], 169);
});

Deno.test("Engine without a path MTU sends whatever fits its buffers", () => {
  const { e } = engine();
  e.setMapping({
    prefix: prefix("10.2.0.0/24", 5),
    action: "encapsulate",
    locators: [loc("100.64.0.2")],
  });
  const b = newBatch();
  putSized(b, 0, "10.1.0.10", "10.2.0.10", 4000);
  e.fromTun(b);
  assert.equal(e.n4, 1);
  assert.equal(e.nIcmp, 0);
});

Deno.test("Engine with a small path MTU never throws on random packets, and every ICMP error it writes parses back", () => {
  const e = mtuEngine({ ipv4: 200, ipv6: 1300 });
  const b = newBatch();
  let seed = 99;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const srcs = ["10.1.0.10", "fd00:1::10"];
  let answered = 0;
  for (let round = 0; round < 2000; round++) {
    e.now = round * 20;
    for (let i = 0; i < 8; i++) {
      const v6 = rnd(2) === 1;
      const dst = v6 ? ["fd00:2::1", "fd00:3::1"][rnd(2)]! : ["10.2.0.1", "10.3.0.1"][rnd(2)]!;
      const p = putSized(b, i, srcs[v6 ? 1 : 0]!, dst, (v6 ? 48 : 28) + rnd(1400), rnd(2) === 0);
      // Mutate a few header bytes now and then.
      for (let k = rnd(4); k < 3; k++) {
        b.bytes[b.offset[i]! + rnd(Math.min(p.length, 48))] = rnd(256);
      }
    }
    e.fromTun(b);
    const start = e.n4 + e.n6 + e.nNat;
    for (let i = start; i < start + e.nIcmp; i++) {
      const x = parseIcmpTooBig(b.packet(i));
      assert.ok(x.checksumOk);
      answered++;
    }
  }
  assert.equal(e.snapshot()["internal-errors"], 0);
  assert.ok(answered > 100, `${answered} ICMP errors`);
});

Deno.test("slotSizeFor() sizes batch slots from the TUN MTU: at least 4096, room for the MTU, the LISP header and headroom", () => {
  for (const mtu of [0, 576, 1440, 1500, 4000, 9000, 16384, 65535]) {
    const size = slotSizeFor(mtu);
    assert.equal(size % 8, 0);
    assert.ok(size >= SLOT_SIZE);
    assert.ok(size - HEADROOM > mtu + 8, `mtu ${mtu}: capacity ${size - HEADROOM}`);
    assert.ok(size <= MAX_SLOT_SIZE, `mtu ${mtu}: ${size}`);
    const b = new PacketBatch({ slots: 2, slotSize: size, headroom: HEADROOM });
    assert.ok(b.capacity > mtu);
  }
  assert.equal(slotSizeFor(1440), 4096);
  assert.equal(slotSizeFor(9000), 9080);
});

Deno.test("Engine.fromTun() encapsulates a 9000-byte packet in slots sized for tun-mtu 9000", () => {
  const e = new Engine({ mode: "xtr", encapsulation: "LISP", slots: 2, post: () => {}, seed: 7 });
  e.setLocal([prefix("10.1.0.0/24", 5)]);
  e.setMapping({
    prefix: prefix("10.2.0.0/24", 5),
    action: "encapsulate",
    locators: [loc("100.64.0.2")],
  });
  const b = new PacketBatch({ slots: 2, slotSize: slotSizeFor(9000), headroom: HEADROOM });
  putSized(b, 0, "10.1.0.10", "10.2.0.10", 9000);
  e.fromTun(b);
  assert.equal(e.n4, 1);
  assert.equal(b.length[0], 9008);
  assert.equal(e.snapshot()["dropped:too-big"], 0);
});

Deno.test("Engine.fromTun() groups by outer family keeping each group's order (segments stay in sequence)", () => {
  const { e } = engine();
  e.setMapping({
    prefix: prefix("10.2.0.0/24", 5),
    action: "encapsulate",
    locators: [loc("100.64.0.2")],
  });
  e.setMapping({
    prefix: prefix("10.3.0.0/24", 5),
    action: "encapsulate",
    locators: [loc("2001:db8::2")],
  });
  const b = newBatch();
  // Slots: v6 a, v6 b, v4 c, miss, v6 d, v4 e, v6 f, v4 g (source ports say which).
  const plan: [string, number][] = [
    ["10.3.0.1", 1],
    ["10.3.0.1", 2],
    ["10.2.0.1", 3],
    ["10.9.0.1", 4],
    ["10.3.0.1", 5],
    ["10.2.0.1", 6],
    ["10.3.0.1", 7],
    ["10.2.0.1", 8],
  ];
  plan.forEach(([dst, port], i) => put(b, i, "10.1.0.1", dst, port));
  e.fromTun(b);
  assert.equal(e.n4, 3);
  assert.equal(e.n6, 4);
  // The inner UDP source port sits after the 8-byte header and the 20-byte IPv4 header.
  const ports = Array.from({ length: 7 }, (_, i) => {
    const p = b.packet(i);
    return (p[28]! << 8) | p[29]!;
  });
  assert.deepEqual(ports, [3, 6, 8, 1, 2, 5, 7]);
});

Deno.test("Engine.fromTun() sends the later segments of a super-packet where the first went, without a lookup", () => {
  const { e } = engine();
  e.setMapping({
    prefix: prefix("10.2.0.0/24", 5),
    action: "encapsulate",
    locators: [loc("100.64.0.2")],
  });
  e.setMapping({
    prefix: prefix("10.3.0.0/24", 5),
    action: "encapsulate",
    locators: [loc("100.64.0.3")],
  });
  const b = newBatch();
  put(b, 0, "10.1.0.1", "10.2.0.1");
  put(b, 1, "10.1.0.1", "10.2.0.1");
  put(b, 2, "10.1.0.1", "10.3.0.1"); // looked up, it would go to 100.64.0.3
  put(b, 3, "10.1.0.1", "10.3.0.1"); // not a follower: looked up
  const follows = Uint8Array.from([1, 1, 1, 0, 0, 0, 0, 0]); // slot 0 has no slot before it
  e.fromTun(b, 0, follows);
  assert.equal(e.n4, 4);
  assert.deepEqual(
    [0, 1, 2, 3].map((i) => b.peer(i)?.address),
    ["100.64.0.2", "100.64.0.2", "100.64.0.2", "100.64.0.3"],
  );
  assert.equal(e.snapshot()["encapsulated"], 4);
  // A follower of a dropped packet takes the whole path (and is dropped the same way).
  put(b, 0, "10.1.0.1", "10.9.0.1"); // a miss
  put(b, 1, "10.1.0.1", "10.9.0.1");
  b.count = 2;
  e.fromTun(b, 0, follows);
  assert.equal(e.n4, 0);
  assert.equal(e.snapshot()["dropped:miss"], 2);
});

Deno.test("Engine.fromTun() answers a too-big super-packet with one ICMP error, not one per segment", () => {
  const e = mtuEngine({ ipv4: 1400, ipv6: 1400 });
  const b = newBatch();
  e.now = 5_000;
  for (let i = 0; i < 4; i++) putSized(b, i, "10.1.0.10", "10.2.0.10", 1500);
  e.fromTun(b, 0, Uint8Array.from([0, 1, 1, 1, 0, 0, 0, 0]));
  assert.equal(e.nIcmp, 1);
  assert.equal(e.snapshot()["dropped:too-big"], 4);
  for (let i = 0; i < 4; i++) putSized(b, i, "10.1.0.10", "10.2.0.10", 1500);
  e.fromTun(b);
  assert.equal(e.nIcmp, 4, "without follows, one each (within the rate limit)");
});
