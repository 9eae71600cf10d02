/**
 * Several data-plane Workers, at the kernel's end, inside a throwaway
 * network namespace: started by tun_queues_test.ts, never directly (the
 * guard below refuses).
 *
 * - A multi-queue TUN (Tun.openQueue): each flow the kernel routes into it
 *   comes out of one queue, flows use several queues, and a flow written
 *   back on a queue comes out of that queue from then on.
 * - A reuse-port group with dataplane/spread.ts's program: the kernel gives
 *   each LISP datagram to the socket flowSpreadIndex() names for its inner
 *   flow, both directions of a flow to the same one.
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertInTestNetns, ip, noFdLeak } from "../netns.ts";
import { Tun } from "../../ffi/tun.ts";
import { Netlink } from "../../ffi/netlink.ts";
import { PollSet, UdpSocket } from "../../ffi/udp.ts";
import { ErrnoError } from "../../ffi/libc.ts";
import { flowSpreadFilter, flowSpreadIndex } from "../../dataplane/spread.ts";

assertInTestNetns();

/** Reads every packet waiting on any of `qs` for `ms`: per queue, the UDP source ports seen. */
function drainQueues(qs: readonly Tun[], ms: number): number[][] {
  const seen: number[][] = qs.map(() => []);
  const buf = new Uint8Array(2048);
  const ps = new PollSet(qs.map((q) => q.fd));
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (ps.poll(20) <= 0) continue;
    qs.forEach((q, i) => {
      for (;;) {
        const n = q.read(buf);
        if (n < 0) break;
        if (n >= 28 && buf[0] === 0x45 && buf[9] === 17) seen[i]!.push((buf[20]! << 8) | buf[21]!);
      }
    });
  }
  return seen;
}

Deno.test("a multi-queue TUN hands each flow to one queue, flows to several, and follows a flow written back", () =>
  noFdLeak(async () => {
    using nl = Netlink.open();
    const tun = Tun.open("lispTunQ", { netlink: nl, vnetHdr: true, multiQueue: true });
    const q1 = Tun.openQueue(tun.fd);
    const q2 = Tun.openQueue(tun.fd);
    try {
      assert.equal(q1.name, "lispTunQ");
      assert.ok(q1.vnetHdr, "the queue keeps the virtio-net header");
      nl.addrAdd(tun.index, "10.1.0.1/24");
      nl.routeAdd({ dst: "10.2.0.0/16", dev: tun.index });
      await nl.addrWaitUsable("10.1.0.1");
      const qs = [tun, q1, q2];
      const socks = Array.from({ length: 16 }, () => UdpSocket.open({ address: "10.1.0.1" }));
      const payload = new Uint8Array(100);
      try {
        for (let round = 0; round < 5; round++) {
          for (const s of socks) s.sendTo(payload, 0, payload.length, "10.2.0.2", 5000);
        }
        const seen = drainQueues(qs, 300);
        const queueOf = new Map<number, Set<number>>();
        seen.forEach((ports, q) => {
          for (const p of ports) queueOf.set(p, (queueOf.get(p) ?? new Set()).add(q));
        });
        assert.equal(queueOf.size, 16, "every flow came out");
        for (const [port, set] of queueOf) assert.equal(set.size, 1, `flow ${port} on one queue`);
        assert.ok(seen.filter((p) => p.length > 0).length >= 2, "flows on more than one queue");
        // Answer one flow through another queue: its next packets come out of that one.
        const s = socks[0]!;
        const port = s.localAddress().port;
        const first = [...queueOf.get(port)!][0]!;
        const other = (first + 1) % 3;
        const reply = new Uint8Array(28 + 10);
        reply.set([
          0x45,
          0,
          0,
          reply.length,
          0,
          0,
          0x40,
          0,
          64,
          17,
          0,
          0,
          10,
          2,
          0,
          2,
          10,
          1,
          0,
          1,
        ]);
        reply.set([5000 >> 8, 5000 & 255, port >> 8, port & 255, 0, 18, 0, 0], 20);
        let sum = 0;
        for (let i = 0; i < 20; i += 2) sum += (reply[i]! << 8) | reply[i + 1]!;
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
        reply[10] = (~sum >> 8) & 255;
        reply[11] = ~sum & 255;
        assert.equal(qs[other]!.write(reply, 0, reply.length), reply.length);
        s.sendTo(payload, 0, payload.length, "10.2.0.2", 5000);
        const after = drainQueues(qs, 200);
        assert.deepEqual(after.map((p) => p.includes(port)), [0, 1, 2].map((q) => q === other));
      } finally {
        for (const x of socks) x.close();
      }
    } finally {
      q2.close();
      q1.close();
      tun.close();
    }
    assert.equal(ip("-o", "link", "show").includes("lispTunQ"), false, "gone with its last queue");
  }));

Deno.test("Tun.openQueue() refuses a TUN opened without multiQueue", () =>
  noFdLeak(() => {
    using tun = Tun.open("lispTunS", { up: false });
    assert.throws(() => Tun.openQueue(tun.fd), (e) => e instanceof ErrnoError);
  }));

/** A LISP data datagram carrying an IPv4 UDP packet from src:sp to dst:dp. */
function lispUdp(src: number[], dst: number[], sp: number, dp: number): Uint8Array {
  const b = new Uint8Array(8 + 20 + 8 + 4);
  b[0] = 0x88;
  b.set([0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0, ...src, ...dst], 8);
  b.set([sp >> 8, sp & 255, dp >> 8, dp & 255, 0, 12, 0, 0], 28);
  return b;
}

Deno.test("the kernel gives each LISP datagram to the socket flowSpreadFilter() picks, both directions alike", () =>
  noFdLeak(() => {
    ip("link", "set", "lo", "up");
    const n = 3;
    const probe = UdpSocket.open({ address: "127.0.0.1", port: 0 });
    const port = probe.localAddress().port;
    probe.close();
    const group = Array.from(
      { length: n },
      () => UdpSocket.open({ address: "127.0.0.1", port, reusePort: true }),
    );
    const tx = UdpSocket.open({ address: "127.0.0.1", port: 0 });
    try {
      group[0]!.attachReusePortFilter(flowSpreadFilter(n));
      const sent: Uint8Array[] = [];
      for (let i = 0; i < 60; i++) {
        const a = [10, 1, 0, 1 + (i % 5)];
        const b = [10, 2, 0, 9];
        // One direction, then the other, of the same flow.
        sent.push(lispUdp(a, b, 20000 + i, 5201), lispUdp(b, a, 5201, 20000 + i));
      }
      for (const d of sent) assert.equal(tx.sendTo(d, 0, d.length, "127.0.0.1", port), d.length);
      const buf = new Uint8Array(256);
      const got = new Map<string, number>();
      for (let k = 0; k < n; k++) {
        for (;;) {
          const len = group[k]!.recvFrom(buf);
          if (len < 0) break;
          got.set(Array.from(buf.subarray(0, len)).join(","), k);
        }
      }
      assert.equal(got.size, sent.length, "every datagram arrived");
      const used = new Set<number>();
      for (let i = 0; i < sent.length; i += 2) {
        const there = got.get(sent[i]!.join(","));
        assert.equal(there, flowSpreadIndex(sent[i]!, n), `flow ${i / 2}`);
        assert.equal(got.get(sent[i + 1]!.join(",")), there, `flow ${i / 2}, the other way`);
        used.add(there!);
      }
      assert.equal(used.size, n, "the flows use every socket");
    } finally {
      for (const s of group) s.close();
      tx.close();
    }
  }));
