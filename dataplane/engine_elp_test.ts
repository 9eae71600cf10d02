/**
 * Unit tests of what the data plane does with locators of explicit locator
 * paths (roles/tunnel_router/elp.ts decides, the Worker obeys): a locator
 * down for a strict hop drops its packets as `dropped:elp-strict` and
 * stays down whatever probing says of its address.
 */

import assert from "node:assert/strict";
import { Engine, HEADROOM, SLOT_SIZE } from "./engine.ts";
import { MapCache } from "./fib.ts";
import { parsePrefix, type Prefix } from "../core/prefix.ts";
import { PacketBatch } from "../ffi/batch.ts";
import { emitIpUdp } from "../wire/udp.ts";

function prefix(text: string): Prefix {
  return parsePrefix(text, 0)!;
}

function setup(): { e: Engine; b: PacketBatch } {
  const e = new Engine({ mode: "xtr", encapsulation: "LISP", slots: 8, post: () => {}, seed: 7 });
  e.setLocal([prefix("10.1.0.0/24")]);
  return { e, b: new PacketBatch({ slots: 8, slotSize: SLOT_SIZE, headroom: HEADROOM }) };
}

/** Sends 8 flows from the TUN; returns the RLOCs they went to. */
function send(e: Engine, b: PacketBatch): string[] {
  for (let i = 0; i < 8; i++) {
    b.reset(i);
    const p = emitIpUdp({
      src: "10.1.0.1",
      dst: "10.2.0.1",
      srcPort: 1000 + i * 7919,
      dstPort: 9,
      payload: new Uint8Array(20),
    });
    b.bytes.set(p, b.offset[i]!);
    b.length[i] = p.length;
  }
  b.count = 8;
  e.fromTun(b);
  const seen = new Set<string>();
  for (let i = 0; i < e.n4; i++) seen.add(b.peer(i)!.address);
  return [...seen].sort();
}

Deno.test("Engine drops a packet whose only locator is down for a strict ELP hop as dropped:elp-strict", () => {
  const { e, b } = setup();
  e.setMapping({
    prefix: prefix("10.2.0.0/24"),
    action: "encapsulate",
    locators: [{ address: "100.64.5.2", priority: 1, weight: 100, up: false, elpStrict: true }],
  });
  assert.deepEqual(send(e, b), [], "nothing is sent past the strict hop");
  const c = e.snapshot();
  assert.equal(c["dropped:elp-strict"], 8);
  assert.equal(c["dropped:no-locator"] ?? 0, 0);
  assert.equal(c["encapsulated"] ?? 0, 0);
});

Deno.test("Engine: a locator down for a strict ELP hop stays down when its address is probed up", () => {
  const { e, b } = setup();
  e.setMapping({
    prefix: prefix("10.2.0.0/24"),
    action: "encapsulate",
    locators: [
      { address: "100.64.5.2", priority: 1, weight: 100, up: true, elpStrict: true },
      { address: "100.64.2.2", priority: 2, weight: 100, up: true },
    ],
  });
  assert.deepEqual(send(e, b), ["100.64.2.2"], "elpStrict implies down: the other locator");
  e.control({ op: "locator", address: "100.64.5.2", up: true });
  assert.deepEqual(send(e, b), ["100.64.2.2"], "still down");
  e.control({ op: "locator", address: "100.64.2.2", up: false });
  assert.deepEqual(send(e, b), []);
  assert.equal(e.snapshot()["dropped:elp-strict"], 8, "no other usable locator: strict drop");
  // A plain down locator counts as no-locator, as before.
  e.setMapping({
    prefix: prefix("10.2.0.0/24"),
    action: "encapsulate",
    locators: [{ address: "100.64.5.2", priority: 1, weight: 100, up: false }],
  });
  send(e, b);
  assert.equal(e.snapshot()["dropped:no-locator"], 8);
});

Deno.test("fib MapCache keeps elpStrict per locator and never shares it with a plain locator", () => {
  const mc = new MapCache();
  const a = mc.set(prefix("10.2.0.0/24"), {
    kind: "positive",
    static: true,
    locators: [{ address: "100.64.5.2", priority: 1, weight: 100, up: false, elpStrict: true }],
  });
  const b = mc.set(prefix("10.3.0.0/24"), {
    kind: "positive",
    static: true,
    locators: [{ address: "100.64.5.2", priority: 1, weight: 100, up: false }],
  });
  assert.equal(a.locators[0]!.elpStrict, true);
  assert.equal(b.locators[0]!.elpStrict, false);
  assert.equal(a.usable, 0);
  assert.equal(mc.setRlocUp("100.64.5.2", true), 1, "only the plain locator comes up");
  assert.equal(a.locators[0]!.up, false);
  assert.equal(b.locators[0]!.up, true);
});
