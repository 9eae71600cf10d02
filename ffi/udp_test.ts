/**
 * UdpSocket over loopback (127.0.0.1 and ::1 only; no privileges needed).
 *
 * @module
 */

import assert from "node:assert/strict";
import { noFdLeak } from "../tests/netns.ts";
import { rootMissing, testNeeding } from "../tests/prereq.ts";
import { PacketBatch, poll, PollSet, UdpSocket } from "./udp.ts";
import { EAGAIN, EINVAL, ErrnoError, F_GETFD, libc, POLLOUT } from "./libc.ts";

const FAMILIES = [
  { family: "ipv4" as const, lo: "127.0.0.1" },
  { family: "ipv6" as const, lo: "::1" },
];

/** Payload of datagram `i`: its own length (13 + 7i bytes) of a pattern from i. */
function payloadOf(i: number): Uint8Array {
  const p = new Uint8Array(13 + 7 * i);
  for (let k = 0; k < p.length; k++) p[k] = (i * 31 + k) & 0xff;
  return p;
}

/**
 * Receives into consecutive slots of `batch` until `want` datagrams came
 * or 2 s passed; returns how many came (`batch.count` is the same).
 */
function receiveAll(s: UdpSocket, batch: PacketBatch, want: number): number {
  const ps = new PollSet([s.fd]);
  const end = Date.now() + 2000;
  let got = 0;
  while (got < want && Date.now() < end) {
    ps.poll(20);
    const n = s.recvmmsg(batch, got, batch.slots - got);
    assert.ok(n >= 0, `recvmmsg failed: errno ${s.errno}`);
    got += n;
    assert.equal(batch.count, got);
  }
  return got;
}

for (const { family, lo } of FAMILIES) {
  Deno.test(`sendmmsg()/recvmmsg() move a batch of 64 datagrams over ${family} loopback with payloads and peers`, () =>
    noFdLeak(() => {
      using rx = UdpSocket.open({ address: lo, recvBuffer: 1 << 20 });
      using tx = UdpSocket.open({ address: lo });
      const rxPort = rx.localAddress().port;
      const txPort = tx.localAddress().port;
      const out = new PacketBatch({ slots: 64 });
      for (let i = 0; i < 64; i++) {
        const p = payloadOf(i);
        out.bytes.set(p, out.offset[i]!);
        out.length[i] = p.length;
        out.setPeer(i, lo, rxPort);
      }
      out.count = 64;
      let sent = 0;
      while (sent < 64) {
        const n = tx.sendmmsg(out, sent);
        assert.ok(n > 0, `sendmmsg returned ${n}, errno ${tx.errno}`);
        sent += n;
      }

      const inb = new PacketBatch({ slots: 64 });
      assert.equal(receiveAll(rx, inb, 64), 64);
      for (let i = 0; i < 64; i++) {
        assert.deepEqual(inb.packet(i), payloadOf(i), `datagram ${i}`);
        assert.equal(inb.offset[i], inb.base(i) + inb.headroom);
        assert.equal(inb.truncated[i], 0);
        assert.equal(inb.peerFamily(i), family === "ipv4" ? 4 : 6);
        assert.equal(inb.peerPort(i), txPort);
        assert.deepEqual(inb.peer(i), { family, address: lo, port: txPort });
        if (family === "ipv4") assert.equal(inb.peerAddr4(i), 0x7f000001);
        else {
          const o = inb.peerAddr6Offset(i);
          assert.deepEqual(
            inb.bytes.subarray(o, o + 16),
            new Uint8Array([...Array(15).fill(0), 1]),
          );
        }
      }
      assert.equal(rx.recvmmsg(inb), 0, "nothing more");
      assert.equal(rx.errno, EAGAIN);
    }));

  Deno.test(`a received ${family} batch is echoed with an 8-byte header prepended in place`, () =>
    noFdLeak(() => {
      using a = UdpSocket.open({ address: lo });
      using b = UdpSocket.open({ address: lo });
      const enc = new TextEncoder();
      for (let i = 0; i < 10; i++) {
        const p = enc.encode(`ping ${i}`);
        assert.equal(a.sendTo(p, 0, p.length, lo, b.localAddress().port), p.length);
      }
      const batch = new PacketBatch({ slots: 16, headroom: 8 });
      assert.equal(receiveAll(b, batch, 10), 10);
      // Echo: prepend a header in each slot; the peer (a's address) stays as received.
      for (let i = 0; i < batch.count; i++) {
        const o = batch.prepend(i, 8);
        batch.view.setUint32(o, 0x08000000, false);
        batch.view.setUint32(o + 4, i, false);
      }
      assert.equal(b.sendmmsg(batch), batch.count);
      const back = new PacketBatch({ slots: 16 });
      const lines: string[] = [];
      assert.equal(receiveAll(a, back, 10), 10);
      for (let i = 0; i < back.count; i++) {
        const p = back.packet(i);
        const v = new DataView(p.buffer, p.byteOffset, p.length);
        lines.push(
          `${v.getUint32(0).toString(16)} ${v.getUint32(4)} ${
            new TextDecoder().decode(p.subarray(8))
          }`,
        );
      }
      assert.deepEqual(lines, Array.from({ length: 10 }, (_, i) => `8000000 ${i} ping ${i}`));
    }));

  Deno.test(`recvFrom()/sendTo() on ${family} return -1 with EAGAIN instead of throwing`, () =>
    noFdLeak(() => {
      using s = UdpSocket.open({ address: lo });
      using t = UdpSocket.open({ address: lo });
      const buf = new Uint8Array(64).fill(0xa5);
      assert.equal(s.recvFrom(buf), -1);
      assert.equal(s.errno, EAGAIN);
      const batch = new PacketBatch({ slots: 4 });
      assert.equal(s.recvmmsg(batch), 0);
      assert.equal(batch.count, 0);
      const msg = new TextEncoder().encode("xhellox");
      assert.equal(t.sendTo(msg, 1, 5, lo, s.localAddress().port), 5);
      assert.notEqual(poll([s.fd], 1000), 0);
      assert.equal(s.recvFrom(buf, 10, 20), 5);
      assert.deepEqual(buf.subarray(10, 15), new TextEncoder().encode("hello"));
      assert.equal(buf[9], 0xa5);
      assert.equal(buf[15], 0xa5);
      assert.equal(s.sendTo(msg, 0, 1, lo, s.localAddress().port), 1); // does not touch from()
      assert.deepEqual(s.from(), { family, address: lo, port: t.localAddress().port });
      assert.equal(s.fromFamily(), family === "ipv4" ? 4 : 6);
      assert.equal(s.fromPort(), t.localAddress().port);
      if (family === "ipv4") assert.equal(s.fromAddr4(), 0x7f000001);
    }));
}

Deno.test("recvmmsg() marks a datagram longer than a slot as truncated", () =>
  noFdLeak(() => {
    using s = UdpSocket.open({ address: "127.0.0.1" });
    using t = UdpSocket.open({ address: "127.0.0.1" });
    const big = new Uint8Array(3000).fill(7);
    assert.equal(t.sendTo(big, 0, big.length, 0x7f000001, s.localAddress().port), 3000);
    const batch = new PacketBatch({ slots: 2, slotSize: 2048, headroom: 64 });
    poll([s.fd], 1000);
    assert.equal(s.recvmmsg(batch), 1);
    assert.equal(batch.truncated[0], 1);
    assert.equal(batch.length[0], batch.capacity);
  }));

Deno.test("sendmmsg() returns -1 with errno when the first datagram cannot be sent, then goes on", () =>
  noFdLeak(() => {
    using s = UdpSocket.open({ address: "127.0.0.1" });
    using t = UdpSocket.open({ address: "127.0.0.1" });
    const batch = new PacketBatch({ slots: 3 });
    for (let i = 0; i < 3; i++) {
      batch.length[i] = 4;
      batch.setPeer(i, "127.0.0.1", i === 0 ? 0 : s.localAddress().port); // port 0: EINVAL
    }
    batch.count = 3;
    assert.equal(t.sendmmsg(batch), -1);
    assert.equal(t.errno, EINVAL);
    assert.equal(t.sendmmsg(batch, 1), 2);
    const rb = new PacketBatch({ slots: 4 });
    assert.equal(receiveAll(s, rb, 2), 2);
  }));

Deno.test("connect() makes sendmmsg() ignore slot peers", () =>
  noFdLeak(() => {
    using s = UdpSocket.open({ address: "127.0.0.1" });
    using t = UdpSocket.open({ address: "127.0.0.1" });
    t.connect("127.0.0.1", s.localAddress().port);
    const batch = new PacketBatch({ slots: 2 });
    batch.length[0] = 3;
    batch.length[1] = 5;
    batch.count = 2;
    assert.equal(t.sendmmsg(batch), 2);
    const rb = new PacketBatch({ slots: 4 });
    const lens: number[] = [];
    assert.equal(receiveAll(s, rb, 2), 2);
    for (let i = 0; i < rb.count; i++) lens.push(rb.length[i]!);
    assert.deepEqual(lens, [3, 5]);
  }));

Deno.test("UdpSocket.open() failures are ErrnoError; bad text is TypeError", () =>
  noFdLeak(() => {
    using s = UdpSocket.open({ address: "127.0.0.1" });
    const port = s.localAddress().port;
    assert.throws(() => UdpSocket.open({ address: "127.0.0.1", port }), (e: unknown) => {
      assert.ok(e instanceof ErrnoError);
      assert.equal(e.code, "EADDRINUSE");
      assert.equal(e.message, `bind 127.0.0.1:${port}: Address already in use (EADDRINUSE)`);
      return true;
    });
    assert.throws(() => UdpSocket.open({ family: "ipv4", address: "::1" }), TypeError);
    assert.throws(() => UdpSocket.open({ address: "127.0.0.1", port: 70000 }), RangeError);
    assert.throws(() => s.sendTo(new Uint8Array(1), 0, 1, "nope", 1), TypeError);
  }));

Deno.test("receive and send buffer sizes are applied", () =>
  noFdLeak(() => {
    using s = UdpSocket.open({ address: "127.0.0.1", recvBuffer: 1 << 20, sendBuffer: 1 << 19 });
    // The kernel reports twice the size asked (bookkeeping), capped by rmem_max unless forced.
    assert.ok(s.recvBufferSize() >= 1 << 20 || Deno.uid() !== 0, `rcvbuf ${s.recvBufferSize()}`);
    assert.ok(s.sendBufferSize() >= 1 << 19 || Deno.uid() !== 0, `sndbuf ${s.sendBufferSize()}`);
    assert.equal(s.setRecvBuffer(1 << 16), 1 << 17);
  }));

Deno.test("PollSet and poll() tell which socket is readable", () =>
  noFdLeak(() => {
    using a = UdpSocket.open({ address: "127.0.0.1" });
    using b = UdpSocket.open({ address: "127.0.0.1" });
    const ps = new PollSet([a.fd, b.fd]);
    assert.equal(ps.poll(0), 0);
    assert.equal(poll([a.fd, b.fd], 0), 0);
    a.sendTo(new Uint8Array(1), 0, 1, "127.0.0.1", b.localAddress().port);
    assert.equal(ps.poll(1000), 1);
    assert.equal(ps.readable(0), false);
    assert.equal(ps.readable(1), true);
    assert.equal(poll([a.fd, b.fd], 1000), 0b10);
    ps.set(1, -1);
    assert.equal(ps.poll(0), 0, "a slot with fd -1 is ignored");
    ps.setEvents(0, POLLOUT);
    assert.equal(ps.poll(0), 1);
    assert.equal(ps.revents(0), POLLOUT);
    assert.equal(ps.fd(0), a.fd);
  }));

Deno.test("close() is idempotent and [Symbol.dispose] closes", () => {
  const s = UdpSocket.open();
  const fd = s.fd;
  assert.ok(fd >= 0);
  s[Symbol.dispose]();
  assert.equal(s.fd, -1);
  s.close();
  assert.equal(libc().fcntl(fd, F_GETFD, 0), -1, "fd closed");
});

testNeeding(rootMissing(), {
  name: "openRawIpv4() sends whole IPv4/UDP packets from the port their header says",
  fn: () =>
    noFdLeak(() => {
      using s = UdpSocket.open({ address: "127.0.0.1" });
      using raw = UdpSocket.openRawIpv4();
      const port = s.localAddress().port;
      const batch = new PacketBatch({ slots: 2 });
      for (let i = 0; i < 2; i++) {
        // IPv4 (source, id, checksum left to the kernel) + UDP 4342 -> port + 4 bytes.
        const p = new Uint8Array(32);
        const v = new DataView(p.buffer);
        p[0] = 0x45;
        v.setUint16(2, 32);
        p[8] = 64;
        p[9] = 17;
        p.set([127, 0, 0, 1], 16);
        v.setUint16(20, 4342);
        v.setUint16(22, port);
        v.setUint16(24, 12);
        v.setUint32(28, 0xc0ffee00 + i);
        batch.bytes.set(p, batch.offset[i]!);
        batch.length[i] = p.length;
        batch.setPeer(i, "127.0.0.1", 0);
      }
      batch.count = 2;
      assert.equal(raw.sendmmsg(batch), 2);
      const back = new PacketBatch({ slots: 4 });
      assert.equal(receiveAll(s, back, 2), 2);
      for (let i = 0; i < 2; i++) {
        assert.deepEqual(back.peer(i), { family: "ipv4", address: "127.0.0.1", port: 4342 });
        const q = back.packet(i);
        assert.equal(new DataView(q.buffer, q.byteOffset).getUint32(0), 0xc0ffee00 + i);
      }
    }),
});

// ---------------------------------------------------------------------------
// UDP offloads (loopback keeps a GSO send whole up to a socket with UDP GRO).

/** Why the UDP offload tests cannot run here, or undefined (UDP_SEGMENT and UDP_GRO known). */
function udpOffloadsMissing(): string | undefined {
  using s = UdpSocket.open({ address: "127.0.0.1" });
  if (!s.gsoAvailable()) return "the kernel has no UDP GSO (UDP_SEGMENT, Linux 4.18)";
  try {
    s.enableGro();
  } catch (e) {
    return `the kernel has no UDP GRO (UDP_GRO, Linux 5.0): ${(e as Error).message}`;
  }
  return undefined;
}
const UDP_OFFLOADS = udpOffloadsMissing();

/** Fills slot `i` of `b` with `len` bytes of a pattern from `seed` and peer `lo`:`port`. */
function fillSlot(b: PacketBatch, i: number, len: number, seed: number, lo: string, port: number) {
  for (let k = 0; k < len; k++) b.bytes[b.offset[i]! + k] = (seed * 7 + k) & 0xff;
  b.length[i] = len;
  b.setPeer(i, lo, port);
}

for (const { family, lo } of FAMILIES) {
  testNeeding(UDP_OFFLOADS, {
    name:
      `sendGso() sends runs of equal slots to one ${family} peer as GSO sends; a plain receiver gets every datagram`,
    fn: () =>
      noFdLeak(() => {
        using rx = UdpSocket.open({ address: lo, recvBuffer: 1 << 20 });
        using rx2 = UdpSocket.open({ address: lo, recvBuffer: 1 << 20 });
        using tx = UdpSocket.open({ address: lo });
        const p1 = rx.localAddress().port;
        const p2 = rx2.localAddress().port;
        const out = new PacketBatch({ slots: 16 });
        // Runs: [0..4] 1000 bytes to rx with a shorter last; [5] to rx2; [6..8] 500 to rx;
        // [9] longer than 8: a new run; [10] alone.
        const plan: [number, number][] = [
          [1000, p1],
          [1000, p1],
          [1000, p1],
          [1000, p1],
          [333, p1],
          [1000, p2],
          [500, p1],
          [500, p1],
          [500, p1],
          [800, p1],
          [20, p2],
        ];
        plan.forEach(([len, port], i) => fillSlot(out, i, len, i, lo, port));
        out.count = plan.length;
        assert.equal(tx.sendGso(out), plan.length);
        assert.deepEqual([...out.gsoRun.subarray(0, 5)], [5, 1, 3, 1, 1]);
        const a = new PacketBatch({ slots: 16 });
        const b = new PacketBatch({ slots: 16 });
        assert.equal(receiveAll(rx, a, 9), 9);
        assert.equal(receiveAll(rx2, b, 2), 2);
        const want = (i: number) => {
          const q = new Uint8Array(plan[i]![0]);
          for (let k = 0; k < q.length; k++) q[k] = (i * 7 + k) & 0xff;
          return q;
        };
        [0, 1, 2, 3, 4, 6, 7, 8, 9].forEach((i, k) => {
          assert.deepEqual(a.packet(k), want(i), `slot ${i}`);
          assert.equal(a.gsoSize[k], 0);
          assert.equal(a.peerPort(k), tx.localAddress().port);
        });
        assert.deepEqual(b.packet(0), want(5));
        assert.deepEqual(b.packet(1), want(10));
      }),
  });

  testNeeding(UDP_OFFLOADS, {
    name: `a ${family} socket with UDP GRO receives a GSO send as one slot with its segment size`,
    fn: () =>
      noFdLeak(() => {
        using rx = UdpSocket.open({ address: lo, recvBuffer: 1 << 20 });
        using tx = UdpSocket.open({ address: lo });
        assert.equal(rx.groEnabled(), false);
        rx.enableGro();
        assert.equal(rx.groEnabled(), true);
        const port = rx.localAddress().port;
        const out = new PacketBatch({ slots: 64, slotSize: 2048 });
        for (let i = 0; i < 40; i++) fillSlot(out, i, i === 39 ? 77 : 1200, i, lo, port);
        fillSlot(out, 40, 100, 40, lo, port); // alone: a plain datagram
        out.count = 41;
        assert.equal(tx.sendGso(out, 0, 40), 40);
        assert.equal(tx.sendGso(out, 40, 1), 1);
        const inb = new PacketBatch({ slots: 4, slotSize: 65536 + 512 });
        assert.equal(receiveAll(rx, inb, 2), 2);
        assert.equal(inb.length[0], 39 * 1200 + 77);
        assert.equal(inb.gsoSize[0], 1200);
        assert.equal(inb.truncated[0], 0);
        const got = inb.packet(0);
        for (let i = 0; i < 40; i++) {
          const len = i === 39 ? 77 : 1200;
          for (let k = 0; k < len; k += 97) {
            assert.equal(got[i * 1200 + k], (i * 7 + k) & 0xff, `segment ${i} byte ${k}`);
          }
        }
        assert.equal(inb.length[1], 100);
        assert.equal(inb.gsoSize[1], 0, "a lone datagram has no segment size");
      }),
  });
}

testNeeding(UDP_OFFLOADS, {
  name: "sendGso() returns -1 with the failed run's size when the kernel refuses it",
  fn: () =>
    noFdLeak(() => {
      using rx = UdpSocket.open({ address: "127.0.0.1" });
      using tx = UdpSocket.open({ address: "127.0.0.1" });
      const out = new PacketBatch({ slots: 8, slotSize: 2048 });
      // Port 0 is refused (EINVAL) for the whole run of 3.
      for (let i = 0; i < 3; i++) fillSlot(out, i, 100, i, "127.0.0.1", 0);
      fillSlot(out, 3, 100, 3, "127.0.0.1", rx.localAddress().port);
      out.count = 4;
      assert.equal(tx.sendGso(out), -1);
      assert.equal(tx.errno, EINVAL);
      assert.equal(tx.gsoFailedRun, 3);
      assert.equal(tx.sendGso(out, 3), 1);
      const b = new PacketBatch({ slots: 4 });
      assert.equal(receiveAll(rx, b, 1), 1);
    }),
});
