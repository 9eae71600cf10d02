/**
 * PacketBatch layout, headroom and peers (no I/O).
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketBatch } from "./batch.ts";
import { addressOf, HOST_LE } from "./libc.ts";

Deno.test("PacketBatch carves slots from one buffer with headroom before each packet", () => {
  const b = new PacketBatch({ slots: 4, slotSize: 2048, headroom: 64 });
  assert.equal(b.capacity, 1984);
  assert.equal(b.bytes.byteOffset, 0);
  // 4 slots + 4 × (32 sockaddr + 16 iovec + 64 mmsghdr + 32 control + 64 GSO mmsghdr).
  assert.equal(b.bytes.byteLength, 4 * 2048 + 4 * 208);
  for (let i = 0; i < 4; i++) {
    assert.equal(b.base(i), i * 2048);
    assert.equal(b.offset[i], i * 2048 + 64);
    assert.equal(b.length[i], 0);
  }
  assert.equal(b.count, 0);
});

Deno.test("PacketBatch links each mmsghdr to its sockaddr and iovec", () => {
  const b = new PacketBatch({ slots: 2, slotSize: 256, headroom: 16 });
  const base = addressOf(b.bytes);
  const v = b.view;
  const sa = 2 * 256;
  const iov = sa + 2 * 32;
  const mh = iov + 2 * 16;
  for (let i = 0; i < 2; i++) {
    const m = mh + i * 64;
    assert.equal(Number(v.getBigUint64(m, HOST_LE)), base + sa + i * 32, "msg_name");
    assert.equal(Number(v.getBigUint64(m + 16, HOST_LE)), base + iov + i * 16, "msg_iov");
    assert.equal(v.getBigUint64(m + 24, HOST_LE), 1n, "msg_iovlen");
    assert.equal(Number(Deno.UnsafePointer.value(b.mmsgPointer(i))), base + m);
    assert.equal(Number(Deno.UnsafePointer.value(b.iovPointer(i))), base + iov + i * 16);
  }
  b.prepareRead(1);
  assert.equal(Number(v.getBigUint64(iov + 16, HOST_LE)), base + 256 + 16, "iov_base");
  assert.equal(v.getBigUint64(iov + 24, HOST_LE), 240n, "iov_len = capacity");
  b.offset[0] = 10;
  b.length[0] = 33;
  b.setPeer(0, "10.0.0.1", 4341);
  b.prepareSend(0, 1, true);
  assert.equal(Number(v.getBigUint64(iov, HOST_LE)), base + 10);
  assert.equal(v.getBigUint64(iov + 8, HOST_LE), 33n);
  assert.equal(v.getUint32(mh + 8, HOST_LE), 16, "msg_namelen of a sockaddr_in");
  b.prepareSend(0, 1, false);
  assert.equal(v.getUint32(mh + 8, HOST_LE), 0, "no name on a connected socket");
});

Deno.test("prepend() grows a packet into the headroom; strip() drops a header", () => {
  const b = new PacketBatch({ slots: 2, slotSize: 128, headroom: 8 });
  b.length[1] = 20;
  assert.equal(b.prepend(1, 8), 128);
  assert.equal(b.offset[1], 128);
  assert.equal(b.length[1], 28);
  assert.throws(() => b.prepend(1, 1), RangeError);
  b.strip(1, 8);
  assert.equal(b.offset[1], 136);
  assert.equal(b.length[1], 20);
  assert.throws(() => b.strip(1, 21), RangeError);
  b.reset(1);
  assert.equal(b.offset[1], 136);
  assert.equal(b.length[1], 0);
});

Deno.test("peers are kept as the kernel's sockaddrs: IPv4 as u32, IPv6 as bytes", () => {
  const b = new PacketBatch({ slots: 3 });
  b.setPeer4(0, 0xc0000201, 4341);
  assert.equal(b.peerFamily(0), 4);
  assert.equal(b.peerAddr4(0), 0xc0000201);
  assert.equal(b.peerPort(0), 4341);
  assert.deepEqual(b.peer(0), { family: "ipv4", address: "192.0.2.1", port: 4341 });
  const six = new Uint8Array([0xa5, 0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 0x42, 0xa5]);
  b.setPeer6(1, six, 1, 4790);
  assert.equal(b.peerFamily(1), 6);
  const o = b.peerAddr6Offset(1);
  assert.deepEqual(b.bytes.subarray(o, o + 16), six.subarray(1, 17));
  assert.deepEqual(b.peer(1), { family: "ipv6", address: "2001:db8::42", port: 4790 });
  assert.equal(b.peerFamily(2), 0);
  assert.equal(b.peer(2), undefined);
  b.copyPeer(1, 2);
  assert.deepEqual(b.peer(2), b.peer(1));
  b.setPeer(2, "10.1.2.3", 1);
  assert.deepEqual(b.peer(2), { family: "ipv4", address: "10.1.2.3", port: 1 });
  assert.throws(() => b.setPeer(2, "nope", 1), TypeError);
});

Deno.test("swap() exchanges packets and peers of two slots", () => {
  const b = new PacketBatch({ slots: 2 });
  b.length[0] = 5;
  b.length[1] = 9;
  b.truncated[1] = 1;
  b.setPeer(0, "10.0.0.1", 1);
  b.setPeer(1, "2001:db8::1", 2);
  b.swap(0, 1);
  assert.deepEqual([b.offset[0], b.offset[1]], [b.base(1) + 64, b.base(0) + 64]);
  assert.deepEqual([b.length[0], b.length[1]], [9, 5]);
  assert.deepEqual([b.truncated[0], b.truncated[1]], [1, 0]);
  assert.deepEqual(b.peer(0), { family: "ipv6", address: "2001:db8::1", port: 2 });
  assert.deepEqual(b.peer(1), { family: "ipv4", address: "10.0.0.1", port: 1 });
});

Deno.test("compact() moves the slots still to send to the front, in order", () => {
  const b = new PacketBatch({ slots: 6 });
  const lengths = [4, 0, 5, 0, 0, 6];
  for (let i = 0; i < 6; i++) {
    b.length[i] = lengths[i]!;
    b.setPeer4(i, i, 1000 + i);
  }
  b.count = 6;
  assert.equal(b.compact(), 3);
  assert.equal(b.count, 3);
  assert.deepEqual([...b.length.subarray(0, 3)], [4, 5, 6]);
  assert.deepEqual([0, 1, 2].map((i) => b.peerPort(i)), [1000, 1002, 1005]);
  assert.deepEqual(
    [0, 1, 2].map((i) => b.offset[i]! - b.headroom),
    [0, 2, 5].map((i) => b.base(i)),
  );
});

Deno.test("PacketBatch rejects impossible sizes", () => {
  assert.throws(() => new PacketBatch({ slots: 0 }), RangeError);
  assert.throws(() => new PacketBatch({ slots: 2000 }), RangeError);
  assert.throws(() => new PacketBatch({ slotSize: 100 }), RangeError);
  assert.throws(() => new PacketBatch({ slotSize: 128, headroom: 100 }), RangeError);
});

Deno.test("PacketBatch({wasm}) lives in a WebAssembly.Memory, same layout, and works with FFI addresses", () => {
  const b = new PacketBatch({ slots: 4, slotSize: 2048, headroom: 64, wasm: true });
  assert.ok(b.memory instanceof WebAssembly.Memory);
  assert.equal(b.bytes.buffer, b.memory.buffer);
  assert.equal(b.bytes.byteLength, 4 * 2048 + 4 * 208);
  assert.equal(b.address, addressOf(b.bytes));
  assert.equal(new PacketBatch({ slots: 1 }).memory, undefined);
});

Deno.test("prepareGso() with gsoByKey ends a run where the slots' key (their flow) changes", () => {
  const b = new PacketBatch({ slots: 6, slotSize: 256, headroom: 16 });
  for (let i = 0; i < 6; i++) {
    b.length[i] = 100;
    b.setPeer4(i, 0x0a000001, 4341);
  }
  b.runKey.set([7, 7, 9, 9, 9, 7]);
  assert.equal(b.prepareGso(0, 6, true, 64, 65000), 1, "without gsoByKey: one run");
  assert.deepEqual([...b.gsoRun.subarray(0, 1)], [6]);
  b.gsoByKey = true;
  assert.equal(b.prepareGso(0, 6, true, 64, 65000), 3);
  assert.deepEqual([...b.gsoRun.subarray(0, 3)], [2, 3, 1]);
});
