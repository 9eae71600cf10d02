/**
 * TUN offload tests that run inside a throwaway network namespace: started
 * by tun_offload_test.ts, never directly (the guard below refuses).
 *
 * The kernel is the other end: a local TCP socket whose peer we play
 * through the TUN (SYN-ACK written by hand) hands us TSO super-packets; a
 * UDP GSO send hands us a USO one; and what the Coalescer merges, written
 * back, must reach local sockets byte for byte.
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertInTestNetns, noFdLeak } from "../netns.ts";
import { Tun } from "../../ffi/tun.ts";
import { Netlink } from "../../ffi/netlink.ts";
import { PacketBatch, PollSet, UdpSocket } from "../../ffi/udp.ts";
import {
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  TUN_F_TSO_ECN,
  TUN_F_USO4,
  TUN_F_USO6,
} from "../../ffi/libc.ts";
import { Segmenter } from "../../dataplane/segment.ts";
import { Coalescer, TUN_MERGE_TCP, TUN_MERGE_UDP, TUN_VNET } from "../../dataplane/coalesce.ts";
import { parseVirtioNetHeader } from "../../wire/virtio_net.ts";
import {
  be16,
  be32,
  checksumOk,
  type Flow,
  patternByte,
  tcpSegment,
  udpDatagram,
} from "../inner_packets.ts";

assertInTestNetns();

const ALL = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_USO4 | TUN_F_USO6;
/** The host's side: the TUN's address. The far side (us, through the TUN): 10.1.0.10. */
const LOCAL = "10.2.0.10";
const REMOTE = "10.1.0.10";

/** A TUN with a virtio-net header, 10.2.0.10/24, 10.1.0.0/24 routed into it, offloads on. */
async function offloadTun(nl: Netlink, wanted = ALL): Promise<Tun> {
  const tun = Tun.open("otun0", { netlink: nl, vnetHdr: true, mtu: 1500 });
  nl.addrAdd(tun.index, `${LOCAL}/24`);
  nl.routeAdd({ dst: "10.1.0.0/24", dev: tun.index });
  await nl.addrWaitUsable(LOCAL);
  tun.setOffloads(wanted);
  return tun;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads packets (behind their virtio-net header) until `match` takes one, for up to 3 s. */
async function readUntil(
  tun: Tun,
  batch: PacketBatch,
  match: (len: number) => boolean,
): Promise<number> {
  const ps = new PollSet([tun.fd]);
  const end = Date.now() + 3000;
  while (Date.now() < end) {
    ps.poll(0);
    for (;;) {
      const n = tun.readSlot(batch, 0);
      if (n < 0) break;
      if (match(n)) return n;
    }
    await sleep(5); // let Deno's own I/O (the TCP socket) run
  }
  throw new Error("no matching packet came out of the TUN");
}

/** The packet of the last readSlot, whole (slot, then the spill area), as a copy. */
function whole(batch: PacketBatch, n: number): Uint8Array {
  const cap = batch.capacity;
  const out = new Uint8Array(n);
  out.set(batch.bytes.subarray(batch.offset[0]!, batch.offset[0]! + Math.min(n, cap)));
  if (n > cap) out.set(batch.bytes.subarray(batch.spillOffset + cap, batch.spillOffset + n), cap);
  return out;
}

Deno.test("Tun.open({vnetHdr}) is seen by fromFd(); setOffloads() takes checksum, TSO and USO", () =>
  noFdLeak(async () => {
    using nl = Netlink.open();
    using tun = await offloadTun(nl);
    assert.equal(tun.vnetHdr, true);
    assert.equal(Tun.fromFd(tun.fd).vnetHdr, true);
    assert.equal(
      tun.offloads & (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6),
      TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
    );
    assert.equal(tun.setOffloads(0), 0);
    using plain = Tun.open("ptun0", { netlink: nl });
    assert.equal(Tun.fromFd(plain.fd).vnetHdr, false);
    assert.throws(() => plain.setOffloads(TUN_F_CSUM), TypeError);
  }));

Deno.test("a local TCP sender's TSO super-packet is read whole and split into valid segments", () =>
  noFdLeak(async () => {
    using nl = Netlink.open();
    using tun = await offloadTun(nl);
    const batch = new PacketBatch({ slots: 64, slotSize: 4096, headroom: 64, spill: 72_000 });
    const connecting = Deno.connect({ hostname: REMOTE, port: 80 });
    // SYN.
    let n = await readUntil(tun, batch, () => {
      const p = batch.packet(0);
      return p[9] === 6 && (p[33]! & 0x02) !== 0;
    });
    const syn = whole(batch, n);
    const cport = be16(syn, 20);
    const isn = be32(syn, 24);
    // SYN-ACK: MSS 1400, window scale 7, from REMOTE:80.
    const server: Flow = { v6: false, sport: 80, dport: cport };
    const synAck = tcpSegment(server, {
      seq: 5000,
      ack: (isn + 1) >>> 0,
      payload: 0,
      flags: 0x12,
      window: 65535,
      options: Uint8Array.from([2, 4, 0x05, 0x78, 1, 3, 3, 7]),
    });
    assert.equal(tun.write(synAck, 0, synAck.length), synAck.length);
    const conn = await connecting;
    try {
      const data = new Uint8Array(200_000);
      for (let k = 0; k < data.length; k++) data[k] = patternByte(7, k);
      const writing = conn.write(data);
      // The first flight: a GSO super-packet (initial window ten segments).
      n = await readUntil(tun, batch, (len) => len > batch.capacity);
      const h = parseVirtioNetHeader(tun.vnet);
      assert.equal(h.gsoType & 0x7f, 1, "GSO_TCPV4");
      assert.equal(h.flags & 1, 1, "NEEDS_CSUM");
      assert.equal(h.gsoSize, 1400);
      const copy = whole(batch, n);
      batch.bytes.set(copy, batch.spillOffset);
      const seg = new Segmenter(batch);
      const k = seg.plan(batch.spillOffset, n, h.gsoType, h.gsoSize, h.csumStart);
      assert.ok(k >= 2, `segments: ${k}`);
      seg.split(batch.spillOffset, h.gsoSize, h.csumStart, 0);
      const seq0 = (isn + 1) >>> 0;
      let at = be32(batch.packet(0), 24) - seq0;
      for (let j = 0; j < k; j++) {
        const q = batch.packet(j);
        assert.ok(checksumOk(q), `segment ${j}: checksums`);
        assert.equal(be32(q, 24), (seq0 + at) >>> 0, `segment ${j}: sequence`);
        const pay = q.subarray(40);
        assert.deepEqual(pay, data.subarray(at, at + pay.length), `segment ${j}: payload`);
        at += pay.length;
      }
      void writing.catch(() => {});
    } finally {
      conn.close();
    }
  }));

Deno.test("merged TCP segments written to the TUN reach a local socket byte for byte", () =>
  noFdLeak(async () => {
    using nl = Netlink.open();
    using tun = await offloadTun(nl);
    const batch = new PacketBatch({ slots: 64, slotSize: 4096, headroom: 64 });
    const connecting = Deno.connect({ hostname: REMOTE, port: 81 });
    const n = await readUntil(tun, batch, () => (batch.packet(0)[33]! & 0x02) !== 0);
    const syn = whole(batch, n);
    const cport = be16(syn, 20);
    const ack = (be32(syn, 24) + 1) >>> 0;
    const server: Flow = { v6: false, sport: 81, dport: cport };
    const opts = Uint8Array.from([2, 4, 0x05, 0x78, 1, 3, 3, 7]);
    const synAck = tcpSegment(server, {
      seq: 9999,
      ack,
      payload: 0,
      flags: 0x12,
      window: 65535,
      options: opts,
    });
    tun.write(synAck, 0, synAck.length);
    const conn = await connecting;
    try {
      // Twenty segments of 1000 bytes from seq 10000: merged into one GSO write.
      const segs = Array.from({ length: 20 }, (_, j) =>
        tcpSegment(server, {
          seq: 10000 + j * 1000,
          ack,
          payload: 1000,
          id: 300 + j,
          window: 65535,
          options: new Uint8Array(0),
          flags: j === 19 ? 0x18 : 0x10,
        }));
      const c = new Coalescer(batch, 64);
      c.setMode(0, TUN_VNET | TUN_MERGE_TCP);
      c.begin();
      segs.forEach((s, i) => {
        batch.bytes.set(s, batch.offset[i]!);
        c.add(0, batch.offset[i]!, s.length);
      });
      const written: number[] = [];
      c.flush((_t, iov, count) => written.push(tun.writeIovecs(iov, count)));
      assert.deepEqual(written, [10 + 40 + 20_000], "one write, taken whole");
      const got = new Uint8Array(20_000);
      let have = 0;
      while (have < got.length) {
        const r = await conn.read(got.subarray(have));
        if (r === null) break;
        have += r;
      }
      assert.equal(have, 20_000);
      for (let k = 0; k < have; k++) {
        if (got[k] !== patternByte(10000, k)) assert.fail(`byte ${k} differs`);
      }
    } finally {
      conn.close();
    }
  }));

Deno.test("a UDP GSO send comes out as one USO super-packet; merged datagrams go back in as many", () =>
  noFdLeak(async () => {
    using nl = Netlink.open();
    using tun = await offloadTun(nl);
    if ((tun.offloads & TUN_F_USO4) === 0) {
      console.log("  (the kernel refused USO: skipping the UDP half)");
      return;
    }
    using s = UdpSocket.open({ address: LOCAL });
    const out = new PacketBatch({ slots: 16, slotSize: 2048 });
    for (let i = 0; i < 10; i++) {
      for (let k = 0; k < 1000; k++) out.bytes[out.offset[i]! + k] = patternByte(i, k);
      out.length[i] = 1000;
      out.setPeer(i, REMOTE, 9000);
    }
    out.count = 10;
    assert.equal(s.sendGso(out), 10);
    const batch = new PacketBatch({ slots: 16, slotSize: 4096, headroom: 64, spill: 72_000 });
    const n = await readUntil(tun, batch, (len) => len > 1000);
    const h = parseVirtioNetHeader(tun.vnet);
    assert.equal(h.gsoType, 5, "GSO_UDP_L4");
    assert.equal(h.gsoSize, 1000);
    const copy = whole(batch, n);
    batch.bytes.set(copy, batch.spillOffset);
    const seg = new Segmenter(batch);
    assert.equal(seg.plan(batch.spillOffset, n, h.gsoType, h.gsoSize, h.csumStart), 10);
    seg.split(batch.spillOffset, h.gsoSize, h.csumStart, 0);
    for (let i = 0; i < 10; i++) {
      const q = batch.packet(i);
      assert.ok(checksumOk(q), `datagram ${i}`);
      for (let k = 0; k < 1000; k++) if (q[28 + k] !== patternByte(i, k)) assert.fail(`${i}:${k}`);
    }
    // The other way: three datagrams merged into one USO write reach a socket as three.
    using r = UdpSocket.open({ address: LOCAL });
    const flow: Flow = { v6: false, sport: 7000, dport: r.localAddress().port };
    const d = [0, 1, 2].map((j) => udpDatagram(flow, j < 2 ? 900 : 300, 40 + j, 500 + j));
    const c = new Coalescer(batch, 64);
    c.setMode(0, TUN_VNET | TUN_MERGE_UDP);
    c.begin();
    d.forEach((p, i) => {
      batch.bytes.set(p, batch.offset[i]!);
      c.add(0, batch.offset[i]!, p.length);
    });
    const written: number[] = [];
    c.flush((_t, iov, count) => written.push(tun.writeIovecs(iov, count)));
    assert.deepEqual(written, [10 + 28 + 2100]);
    const rx = new PacketBatch({ slots: 8 });
    const ps = new PollSet([r.fd]);
    let got = 0;
    const end = Date.now() + 2000;
    while (got < 3 && Date.now() < end) {
      ps.poll(50);
      const k = r.recvmmsg(rx, got, 8 - got);
      if (k > 0) got += k;
    }
    assert.equal(got, 3);
    for (let j = 0; j < 3; j++) assert.deepEqual(rx.packet(j), d[j]!.subarray(28), `datagram ${j}`);
  }));
