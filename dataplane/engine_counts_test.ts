/**
 * Unit tests of what the engine counts besides packets (engine.ts): bytes
 * next to the packet counters, the map-cache size, and the packets and
 * bytes of each map-cache entry with their report to the control plane.
 */

import assert from "node:assert/strict";
import { C_SENT_BYTES, Engine, HEADROOM, SLOT_SIZE } from "./engine.ts";
import type { DataLocator, EntryCounts, FromWorker } from "./api.ts";
import { parsePrefix, type Prefix } from "../core/prefix.ts";
import { PacketBatch } from "../ffi/batch.ts";
import { emitIpUdp } from "../wire/udp.ts";

function prefix(text: string, iid = 0): Prefix {
  const p = parsePrefix(text, iid);
  if (p === undefined) throw new Error(`bad prefix ${text}`);
  return p;
}

function loc(address: string): DataLocator {
  return { address, priority: 1, weight: 100, up: true };
}

function engine(mode: "xtr" | "rtr" = "xtr"): Engine {
  const e = new Engine({ mode, encapsulation: "LISP", slots: 8, post: () => {}, seed: 7 });
  e.setLocal([prefix("10.1.0.0/24", 5)]);
  return e;
}

/** A batch of `n` IPv4/UDP packets from 10.1.0.1 to `dst` with `payload` bytes each. */
function batch(dst: string, n: number, payload = 20): PacketBatch {
  const b = new PacketBatch({ slots: 8, slotSize: SLOT_SIZE, headroom: HEADROOM });
  for (let i = 0; i < n; i++) {
    b.reset(i);
    const p = emitIpUdp({
      src: "10.1.0.1",
      dst,
      srcPort: 1000 + i,
      dstPort: 9,
      payload: new Uint8Array(payload),
    });
    b.bytes.set(p, b.offset[i]!);
    b.length[i] = p.length;
  }
  b.count = n;
  return b;
}

function set(e: Engine, p: string): void {
  e.setMapping({ prefix: prefix(p, 5), action: "encapsulate", locators: [loc("100.64.0.2")] });
}

function report(e: Engine): EntryCounts | undefined {
  const m: FromWorker = e.countersMessage();
  assert.equal(m.op, "counters");
  return m.op === "counters" ? m.entries : undefined;
}

/** The report as `prefix -> [packets, bytes]`. */
function byPrefix(r: EntryCounts | undefined): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (let i = 0; i < (r?.prefixes.length ?? 0); i++) {
    out.set(r!.prefixes[i]!, [r!.packets[i]!, r!.bytes[i]!]);
  }
  return out;
}

Deno.test("Engine counts the bytes of the inner packets it encapsulates and decapsulates", () => {
  const itr = engine();
  set(itr, "10.2.0.0/24");
  const b = batch("10.2.0.1", 3, 100); // 20 + 8 + 100 = 128 bytes each
  itr.fromTun(b);
  let c = itr.snapshot();
  assert.equal(c["encapsulated"], 3);
  assert.equal(c["encapsulated-bytes"], 3 * 128);
  // The same datagrams (LISP header + inner) decapsulated by an ETR of 10.2.0.0/24.
  const etr = new Engine({ mode: "xtr", encapsulation: "LISP", slots: 8, post: () => {} });
  etr.setLocal([prefix("10.2.0.0/24", 5)]);
  for (let i = 0; i < 3; i++) b.setPeer(i, "100.64.0.1", 4341);
  etr.fromUdp(b);
  c = etr.snapshot();
  assert.equal(c["decapsulated"], 3);
  assert.equal(c["decapsulated-bytes"], 3 * 128);
});

Deno.test("Engine.addBytes() adds the lengths of a range of slots (the I/O loop's byte counters)", () => {
  const e = engine();
  const b = batch("10.2.0.1", 4, 10); // 38 bytes each
  b.length[2] = 1000;
  e.addBytes(C_SENT_BYTES, b, 1, 2);
  assert.equal(e.snapshot()["sent-bytes"], 38 + 1000);
});

Deno.test("Engine reports the size of its map-cache with its counters", () => {
  const e = engine();
  assert.equal(e.snapshot()["map-cache-entries"], 0);
  set(e, "10.2.0.0/24");
  set(e, "10.3.0.0/24");
  set(e, "10.2.0.0/24"); // replaced, not added
  assert.equal(e.snapshot()["map-cache-entries"], 2);
  e.control({ op: "delete", prefix: prefix("10.3.0.0/24", 5) });
  assert.equal(e.snapshot()["map-cache-entries"], 1);
});

Deno.test("Engine counts packets and bytes per map-cache entry and reports only the entries that changed", () => {
  const e = engine();
  set(e, "10.2.0.0/24");
  set(e, "10.3.0.0/24");
  set(e, "10.4.0.0/24");
  assert.equal(report(e), undefined, "nothing counted, nothing to report");
  e.fromTun(batch("10.2.0.7", 3, 20)); // 48 bytes each
  e.fromTun(batch("10.3.0.7", 1, 100)); // 128 bytes
  assert.deepEqual(
    byPrefix(report(e)),
    new Map([["[5]10.2.0.0/24", [3, 144]], ["[5]10.3.0.0/24", [1, 128]]]),
  );
  assert.equal(report(e), undefined, "reported once");
  e.fromTun(batch("10.2.0.7", 2, 20));
  assert.deepEqual(byPrefix(report(e)), new Map([["[5]10.2.0.0/24", [5, 240]]]), "totals");
  // A miss and a drop count for no entry.
  e.fromTun(batch("10.9.0.1", 2));
  assert.equal(report(e), undefined);
});

Deno.test("Engine keeps an entry's counts when it is replaced and starts again when it is deleted", () => {
  const e = engine();
  set(e, "10.2.0.0/24");
  e.fromTun(batch("10.2.0.7", 2, 20));
  report(e);
  set(e, "10.2.0.0/24"); // a refresh: the same entry
  e.fromTun(batch("10.2.0.7", 1, 20));
  assert.deepEqual(byPrefix(report(e)), new Map([["[5]10.2.0.0/24", [3, 144]]]));
  e.control({ op: "delete", prefix: prefix("10.2.0.0/24", 5) });
  let r = report(e);
  assert.deepEqual(r?.gone, ["[5]10.2.0.0/24"]);
  assert.deepEqual(r?.prefixes, []);
  // Another prefix takes the freed id: its counts start from zero.
  set(e, "10.5.0.0/24");
  e.fromTun(batch("10.5.0.7", 1, 20));
  r = report(e);
  assert.deepEqual(byPrefix(r), new Map([["[5]10.5.0.0/24", [1, 48]]]));
  assert.deepEqual(r?.gone, []);
});

Deno.test("Engine's per-entry counters grow past their first 64 entries", () => {
  const e = engine();
  for (let k = 0; k < 200; k++) set(e, `10.${2 + (k >> 8)}.${k & 255}.0/24`);
  e.fromTun(batch("10.2.199.9", 2, 20));
  e.fromTun(batch("10.2.0.9", 1, 20));
  assert.deepEqual(
    byPrefix(report(e)),
    new Map([["[5]10.2.199.0/24", [2, 96]], ["[5]10.2.0.0/24", [1, 48]]]),
  );
});

Deno.test("Engine (rtr) counts what it re-encapsulates against the entry it used", () => {
  const e = new Engine({ mode: "rtr", encapsulation: "LISP", slots: 8, post: () => {} });
  e.setMapping({
    prefix: prefix("10.2.0.0/24", 5),
    action: "encapsulate",
    locators: [loc("100.64.0.9")],
  });
  const b = new PacketBatch({ slots: 8, slotSize: SLOT_SIZE, headroom: HEADROOM });
  b.reset(0);
  const inner = emitIpUdp({
    src: "10.1.0.1",
    dst: "10.2.0.5",
    srcPort: 1,
    dstPort: 9,
    payload: new Uint8Array(20),
  });
  // LISP header: N and I bits, iid 5.
  b.bytes.set([0x88, 0, 0, 1, 0, 0, 5, 0], b.offset[0]!);
  b.bytes.set(inner, b.offset[0]! + 8);
  b.length[0] = 8 + inner.length;
  b.setPeer(0, "100.64.0.1", 4341);
  b.count = 1;
  e.fromUdp(b);
  assert.equal(e.n4, 1);
  assert.deepEqual(byPrefix(report(e)), new Map([["[5]10.2.0.0/24", [1, 48]]]));
});
