/**
 * TUN tests that run inside a throwaway network namespace: started by
 * ffi/tun_test.ts, never directly (the guard below refuses).
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertInTestNetns, ip, ipJson, noFdLeak } from "../netns.ts";
import { Tun } from "../../ffi/tun.ts";
import { Netlink } from "../../ffi/netlink.ts";
import { PacketBatch, PollSet, UdpSocket } from "../../ffi/udp.ts";
import { EAGAIN, EINVAL } from "../../ffi/libc.ts";
import { emitIpUdp, ipUdpLength, parseIpUdp } from "../../wire/udp.ts";
import { IP_PROTO_UDP } from "../../wire/ip.ts";

assertInTestNetns();

interface IpLink {
  ifname: string;
  ifindex: number;
  mtu: number;
  flags: string[];
}

function ipLink(name: string): IpLink | undefined {
  try {
    return (ipJson("link", "show", "dev", name) as IpLink[])[0];
  } catch {
    return undefined;
  }
}

/** A TUN with 10.1.0.1/24 and 2001:db8:1::1/64, routes to 10.2/16 and 2001:db8:2::/48 through it. */
async function routedTun(nl: Netlink): Promise<Tun> {
  const tun = Tun.open("lispTun0", { netlink: nl });
  nl.addrAdd(tun.index, "10.1.0.1/24");
  nl.addrAdd(tun.index, "2001:db8:1::1/64", { nodad: true });
  nl.routeAdd({ dst: "10.2.0.0/16", dev: tun.index });
  nl.routeAdd({ dst: "2001:db8:2::/48", dev: tun.index });
  // The IPv6 local route comes from the kernel's DAD work, a moment after the ack.
  await nl.addrWaitUsable("10.1.0.1");
  await nl.addrWaitUsable("2001:db8:1::1");
  return tun;
}

/** Reads packets from the TUN for up to `ms` until `match` accepts one. */
function readUntil(tun: Tun, match: (p: Uint8Array) => boolean, ms = 2000): Uint8Array {
  const buf = new Uint8Array(2048);
  const ps = new PollSet([tun.fd]);
  const end = Date.now() + ms;
  while (Date.now() < end) {
    ps.poll(50);
    for (;;) {
      const n = tun.read(buf);
      if (n < 0) break;
      const p = buf.slice(0, n);
      if (match(p)) return p;
    }
  }
  throw new Error("no matching packet came out of the TUN");
}

/** True for a UDP packet (IPv4 or IPv6 without extension headers) to `port`. */
function isUdpTo(p: Uint8Array, port: number): boolean {
  const v = new DataView(p.buffer, p.byteOffset, p.length);
  const version = p[0]! >> 4;
  if (version === 4) return p[9] === IP_PROTO_UDP && v.getUint16(((p[0]! & 15) * 4) + 2) === port;
  if (version === 6) return p[6] === IP_PROTO_UDP && v.getUint16(42) === port;
  return false;
}

function waitReadable(fd: number, ms = 2000): void {
  const ps = new PollSet([fd]);
  assert.ok(ps.poll(ms) > 0, `fd ${fd} not readable within ${ms} ms`);
}

Deno.test("Tun.open() creates lispTun0 down; netlink brings it up and sets MTU 1440; close() deletes it", () =>
  noFdLeak(() => {
    using nl = Netlink.open();
    const tun = Tun.open("lispTun0", { up: false, mtu: 0, netlink: nl });
    try {
      assert.equal(tun.name, "lispTun0");
      const before = ipLink("lispTun0");
      assert.ok(before !== undefined);
      assert.equal(before.ifindex, tun.index);
      assert.equal(before.mtu, 1500);
      assert.ok(!before.flags.includes("UP"), `flags ${before.flags}`);
      assert.ok(before.flags.includes("NOARP") || before.flags.includes("POINTOPOINT"));

      nl.linkSetUp(tun.index, true);
      nl.linkSetMtu(tun.index, 1440);
      const after = ipLink("lispTun0")!;
      assert.ok(after.flags.includes("UP"), `flags ${after.flags}`);
      assert.equal(after.mtu, 1440);
      const mine = nl.links().find((l) => l.index === tun.index);
      assert.ok(mine !== undefined);
      assert.equal(mine.name, "lispTun0");
      assert.equal(mine.up, true);
      assert.equal(mine.mtu, 1440);
      assert.equal(mine.type, 65534); // ARPHRD_NONE

      nl.linkSetUp(tun.index, false);
      assert.ok(!ipLink("lispTun0")!.flags.includes("UP"));
    } finally {
      tun.close();
    }
    assert.equal(ipLink("lispTun0"), undefined, "lispTun0 still exists after close()");
    assert.equal(tun.fd, -1);
    tun.close(); // idempotent
  }));

Deno.test("Tun.open() defaults to MTU 1440 and up, and a `%d` name is expanded", () =>
  noFdLeak(() => {
    using _tun = Tun.open();
    const l = ipLink("lispTun0")!;
    assert.equal(l.mtu, 1440);
    assert.ok(l.flags.includes("UP"));
    using t2 = Tun.open("oortest%d");
    assert.match(t2.name, /^oortest\d+$/);
    assert.ok(ipLink(t2.name) !== undefined);
  }));

Deno.test("Tun.open() rejects a second open of a busy name and bad names", () =>
  noFdLeak(() => {
    using _tun = Tun.open("lispTun0");
    assert.throws(() => Tun.open("lispTun0"), (e: Error) => {
      assert.equal(e.name, "ErrnoError");
      assert.match(e.message, /^TUNSETIFF lispTun0: .*\(EBUSY\)$/);
      return true;
    });
    assert.throws(() => Tun.open("a-name-longer-than-15"), TypeError);
    assert.throws(() => Tun.open(""), TypeError);
  }));

for (const v of [4, 6] as const) {
  Deno.test(`a UDP datagram routed into the TUN (IPv${v}) is read from its fd with its IP header`, () =>
    noFdLeak(async () => {
      using nl = Netlink.open();
      using tun = await routedTun(nl);
      using s = UdpSocket.open({ family: v === 4 ? "ipv4" : "ipv6" });
      const dst = v === 4 ? "10.2.0.5" : "2001:db8:2::5";
      const payload = new TextEncoder().encode(`hello over IPv${v}`);
      assert.equal(s.sendTo(payload, 0, payload.length, dst, 4000), payload.length);
      const p = readUntil(tun, (x) => isUdpTo(x, 4000));
      const pkt = parseIpUdp(p);
      assert.equal(pkt.ip.version, v);
      assert.equal(pkt.ip.src, v === 4 ? "10.1.0.1" : "2001:db8:1::1");
      assert.equal(pkt.ip.dst, dst);
      assert.equal(pkt.udp.srcPort, s.localAddress().port);
      assert.equal(pkt.udp.dstPort, 4000);
      assert.ok(pkt.checksumOk);
      assert.deepEqual(pkt.payload, payload);
    }));

  Deno.test(`a packet written to the TUN (IPv${v}) reaches a local UDP socket`, () =>
    noFdLeak(async () => {
      using nl = Netlink.open();
      using tun = await routedTun(nl);
      const local = v === 4 ? "10.1.0.1" : "2001:db8:1::1";
      const remote = v === 4 ? "10.2.0.9" : "2001:db8:2::9";
      using s = UdpSocket.open({ address: local, port: 0 });
      const port = s.localAddress().port;
      const payload = new TextEncoder().encode(`into the TUN over IPv${v}`);
      const pkt = emitIpUdp({ src: remote, dst: local, srcPort: 1234, dstPort: port, payload });
      // Written from an offset of a larger buffer, as the data plane does.
      const buf = new Uint8Array(100 + pkt.length).fill(0xa5);
      buf.set(pkt, 100);
      assert.equal(tun.write(buf, 100, pkt.length), pkt.length);
      waitReadable(s.fd);
      const rx = new Uint8Array(2048);
      const n = s.recvFrom(rx);
      assert.equal(n, payload.length);
      assert.deepEqual(rx.subarray(0, n), payload);
      assert.deepEqual(s.from(), {
        family: v === 4 ? "ipv4" : "ipv6",
        address: remote,
        port: 1234,
      });
    }));
}

Deno.test("Tun.readBatch() takes a burst into batch slots; writeBatch() writes slots back", () =>
  noFdLeak(async () => {
    using nl = Netlink.open();
    using tun = await routedTun(nl);
    using s = UdpSocket.open({ family: "ipv4" });
    const batch = new PacketBatch({ slots: 32 });
    const enc = new TextEncoder();
    for (let i = 0; i < 20; i++) {
      const p = enc.encode(`packet ${i}`);
      assert.equal(s.sendTo(p, 0, p.length, "10.2.0.7", 4100), p.length);
    }
    const got: string[] = [];
    const ps = new PollSet([tun.fd]);
    const end = Date.now() + 2000;
    while (got.length < 20 && Date.now() < end) {
      ps.poll(50);
      const n = tun.readBatch(batch);
      assert.equal(batch.count, n);
      for (let i = 0; i < n; i++) {
        assert.equal(batch.offset[i], batch.base(i) + batch.headroom);
        const p = batch.packet(i);
        if (!isUdpTo(p, 4100)) continue;
        got.push(new TextDecoder().decode(parseIpUdp(p).payload));
      }
    }
    assert.equal(tun.errno, EAGAIN);
    assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => `packet ${i}`));

    // The other way: 16 packets built in slots, written in one writeBatch.
    using r = UdpSocket.open({ address: "10.1.0.1" });
    const port = r.localAddress().port;
    for (let i = 0; i < 16; i++) {
      batch.reset(i);
      const spec = {
        src: "10.2.0.9",
        dst: "10.1.0.1",
        srcPort: 2000 + i,
        dstPort: port,
        payload: enc.encode(`slot ${i}`),
      };
      emitIpUdp(spec, batch.bytes, batch.offset[i]!);
      batch.length[i] = ipUdpLength(spec);
    }
    batch.count = 16;
    batch.length[5] = 0; // dropped: writeBatch skips it
    assert.equal(tun.writeBatch(batch), 15);
    assert.equal(tun.writeErrors, 0);
    const rb = new PacketBatch({ slots: 64 });
    let total = 0;
    const seen: string[] = [];
    const ps2 = new PollSet([r.fd]);
    const end2 = Date.now() + 2000;
    while (total < 15 && Date.now() < end2) {
      ps2.poll(50);
      const n = r.recvmmsg(rb);
      for (let i = 0; i < n; i++) {
        seen.push(`${new TextDecoder().decode(rb.packet(i))} from ${rb.peer(i)!.port}`);
      }
      total += Math.max(n, 0);
    }
    const want = Array.from({ length: 16 }, (_, i) => `slot ${i} from ${2000 + i}`);
    assert.deepEqual(seen, want.filter((_, i) => i !== 5));
  }));

Deno.test("Tun.read() and write() return -1 with errno instead of throwing", () =>
  noFdLeak(() => {
    using tun = Tun.open("lispTun0");
    // Drain whatever the kernel sent on link-up (IPv6 router solicitations, MLD reports: they
    // come at random delays, so one may come after the drain; only the read that ends it counts).
    const buf = new Uint8Array(2048);
    let n = 0;
    while ((n = tun.read(buf)) >= 0);
    assert.equal(n, -1);
    assert.equal(tun.errno, EAGAIN);
    // Not an IP packet (version nibble 0): the kernel refuses it.
    assert.equal(tun.write(new Uint8Array(40), 0, 40), -1);
    assert.equal(tun.errno, EINVAL);
    assert.throws(() => tun.write(buf, 2000, 100), RangeError);
  }));

Deno.test("routes into the TUN disappear with it: `ip route` shows none after close()", () =>
  noFdLeak(async () => {
    using nl = Netlink.open();
    const tun = await routedTun(nl);
    assert.ok(ip("route", "show", "10.2.0.0/16").includes("lispTun0"));
    tun.close();
    assert.equal(ip("route", "show", "10.2.0.0/16").trim(), "");
    assert.deepEqual(nl.routes({ family: "ipv4" }).filter((r) => r.dst === "10.2.0.0/16"), []);
  }));
