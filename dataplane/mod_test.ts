/**
 * Tests of the data-plane Worker through its main-thread handle (mod.ts),
 * on loopback sockets: no privileges needed.
 */

import assert from "node:assert/strict";
import { DataPlane } from "./mod.ts";
import { parsePrefix, type Prefix } from "../core/prefix.ts";
import { PollSet, UdpSocket } from "../ffi/udp.ts";
import { emitIpUdp } from "../wire/udp.ts";
import { parseLispDataHeader } from "../wire/data_header.ts";
import type { DataLocator } from "./api.ts";

function prefix(text: string, iid = 0): Prefix {
  const p = parsePrefix(text, iid);
  if (p === undefined) throw new Error(`bad prefix ${text}`);
  return p;
}

function loc(address: string, priority = 1, weight = 100, up = true): DataLocator {
  return { address, priority, weight, up };
}

Deno.test("DataPlane.start() rejects settings the worker refuses", async () => {
  await assert.rejects(
    DataPlane.start({
      mode: "rtr",
      encapsulation: "LISP",
      tunFd: -1,
      udp4Fd: -1,
      udp6Fd: -1,
      batch: 64,
      pollMs: 10,
    }, { onMiss() {} }),
    /no data socket/,
  );
  await assert.rejects(
    DataPlane.start({
      mode: "xtr",
      encapsulation: "LISP",
      tunFd: -1,
      udp4Fd: 0,
      udp6Fd: -1,
      batch: 64,
      pollMs: 10,
    }, { onMiss() {} }),
    /needs a TUN/,
  );
});

Deno.test("DataPlane (rtr on 127.77.0.0/16): re-encapsulates, reports misses and peers, applies changes, stops", async () => {
  // All on loopback: a sender, the rtr's data socket, and the next hop on the LISP data port.
  using rtrSock = UdpSocket.open({ address: "127.77.0.3" });
  using next = UdpSocket.open({ address: "127.77.0.2", port: 4341 });
  using sender = UdpSocket.open({ address: "127.77.0.1" });
  const misses: string[] = [];
  const peers: string[] = [];
  const dp = await DataPlane.start({
    mode: "rtr",
    encapsulation: "LISP",
    tunFd: -1,
    udp4Fd: rtrSock.fd,
    udp6Fd: -1,
    batch: 16,
    pollMs: 5,
  }, {
    onMiss: (iid, dst, src) => misses.push(`${iid} ${dst} ${src}`),
    onPeer: (rloc, iid, src) => peers.push(`${rloc} ${iid} ${src}`),
  });
  try {
    dp.setMapping({
      prefix: prefix("10.2.0.0/24", 7),
      action: "encapsulate",
      locators: [loc("127.77.0.2")],
    });
    await dp.readCounters();
    const port = rtrSock.localAddress().port;
    const send = (dst: string) => {
      const inner = emitIpUdp({
        src: "10.1.0.1",
        dst,
        srcPort: 5,
        dstPort: 6,
        payload: new Uint8Array(4),
      });
      const pkt = new Uint8Array(8 + inner.length);
      pkt.set([0x88, 0, 0, 1, 0, 0, 7, 0]);
      pkt.set(inner, 8);
      assert.equal(sender.sendTo(pkt, 0, pkt.length, "127.77.0.3", port), pkt.length);
    };
    const settle = async (name: string, want: number) => {
      let c = await dp.readCounters();
      for (let i = 0; i < 100 && c[name]! < want; i++) {
        await new Promise((r) => setTimeout(r, 10));
        c = await dp.readCounters();
      }
      return c;
    };
    send("10.2.0.9");
    const buf = new Uint8Array(2048);
    assert.ok(new PollSet([next.fd]).poll(2000) > 0, "the re-encapsulated packet arrives");
    const n = next.recvFrom(buf);
    assert.equal(n, 8 + 20 + 8 + 4);
    const h = parseLispDataHeader(buf.slice(0, 8));
    assert.equal(h.instanceId, 7);
    assert.equal(h.n, true);
    assert.equal(next.from()?.address, "127.77.0.3");
    send("10.3.0.9"); // no mapping
    send("10.3.0.9");
    let c = await settle("udp-received", 3);
    assert.equal(c["decapsulated"], 3);
    assert.equal(c["encapsulated"], 1);
    assert.equal(c["sent"], 1);
    assert.equal(c["dropped:miss"], 2);
    assert.deepEqual(misses, ["7 10.3.0.9 10.1.0.1"]);
    assert.deepEqual(peers, ["127.77.0.1 7 10.1.0.1"]);
    // A change is in effect once readCounters() resolves.
    dp.deleteMapping(prefix("10.2.0.0/24", 7));
    await dp.readCounters();
    send("10.2.0.9");
    c = await settle("dropped:miss", 3);
    assert.equal(c["dropped:miss"], 3);
    assert.deepEqual(dp.counters(), c, "counters() keeps the latest report");
  } finally {
    await dp.stop();
  }
  assert.equal(dp.stopped, true);
  await dp.stop(); // idempotent
});
