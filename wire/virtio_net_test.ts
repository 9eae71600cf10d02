import assert from "node:assert/strict";
import {
  emitVirtioNetHeader,
  parseVirtioNetHeader,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VIRTIO_NET_HDR_LENGTH,
  type VirtioNetHeader,
  virtioNetHeaderLength,
  vnetCsumOffset,
  vnetCsumStart,
  vnetFlags,
  vnetGsoSize,
  vnetGsoType,
  writeVirtioNetHeader,
} from "./virtio_net.ts";
import { WireError } from "./errors.ts";
import { hex } from "../tests/hex.ts";

/** Hand-written from include/uapi/linux/virtio_net.h, little-endian fields. */
const fixtures: { name: string; bytes: string; header: VirtioNetHeader }[] = [
  {
    name: "a TSO super-packet read from a TUN (IPv4, 1448-byte segments)",
    bytes: "01" + // NEEDS_CSUM
      "01" + // GSO_TCPV4
      "4200" + // hdr_len 66
      "a805" + // gso_size 1448
      "1400" + // csum_start 20
      "1000", // csum_offset 16
    header: {
      flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
      gsoType: VIRTIO_NET_HDR_GSO_TCPV4,
      hdrLen: 66,
      gsoSize: 1448,
      csumStart: 20,
      csumOffset: 16,
    },
  },
  {
    name: "USO with the ECN bit and every field wide",
    bytes: "02 85 ffff 0100 2800 0600",
    header: {
      flags: 2,
      gsoType: VIRTIO_NET_HDR_GSO_UDP_L4 | VIRTIO_NET_HDR_GSO_ECN,
      hdrLen: 0xffff,
      gsoSize: 1,
      csumStart: 40,
      csumOffset: 6,
    },
  },
];

Deno.test("parseVirtioNetHeader() decodes hand-written fixtures", () => {
  for (const f of fixtures) {
    assert.deepEqual(parseVirtioNetHeader(hex(f.bytes)), f.header, f.name);
    // The same header from a big-endian device.
    const be = hex(f.bytes);
    for (const o of [2, 4, 6, 8]) [be[o], be[o + 1]] = [be[o + 1]!, be[o]!];
    assert.deepEqual(parseVirtioNetHeader(be, false), f.header, `${f.name}, big-endian`);
  }
});

Deno.test("emitVirtioNetHeader() writes the fixtures into a 0xa5 buffer at an offset", () => {
  for (const f of fixtures) {
    const buf = new Uint8Array(15).fill(0xa5);
    const out = emitVirtioNetHeader(f.header, buf, 3);
    assert.deepEqual(out, hex(f.bytes), f.name);
    assert.deepEqual(buf.subarray(0, 3), hex("a5a5a5"));
    assert.deepEqual(buf.subarray(13), hex("a5a5"));
    assert.deepEqual(emitVirtioNetHeader(f.header), hex(f.bytes));
    assert.equal(virtioNetHeaderLength(f.header), VIRTIO_NET_HDR_LENGTH);
  }
});

Deno.test("emitVirtioNetHeader() then parseVirtioNetHeader() round-trips in both byte orders", () => {
  for (const f of fixtures) {
    for (const le of [true, false]) {
      assert.deepEqual(
        parseVirtioNetHeader(emitVirtioNetHeader(f.header, undefined, 0, le), le),
        f.header,
      );
    }
  }
});

Deno.test("parseVirtioNetHeader() throws WireError at every truncated length", () => {
  const full = hex(fixtures[0]!.bytes);
  for (let n = 0; n < full.length; n++) {
    assert.throws(
      () => parseVirtioNetHeader(full.subarray(0, n)),
      (e: unknown) => e instanceof WireError && e.field === "virtio-net.header" && e.offset === 0,
    );
  }
});

Deno.test("emitVirtioNetHeader() rejects out-of-range fields with RangeError", () => {
  const h = fixtures[0]!.header;
  for (const bad of [{ ...h, flags: 256 }, { ...h, gsoSize: 65536 }, { ...h, csumStart: -1 }]) {
    assert.throws(() => emitVirtioNetHeader(bad), RangeError);
  }
  assert.throws(() => emitVirtioNetHeader(h, new Uint8Array(12), 3), RangeError);
});

Deno.test("data path accessors and writeVirtioNetHeader() work in place", () => {
  const buf = new Uint8Array(16).fill(0xa5);
  writeVirtioNetHeader(buf, 4, 1, 4, 60, 1440, 40, 16);
  assert.equal(vnetFlags(buf, 4), 1);
  assert.equal(vnetGsoType(buf, 4), 4);
  assert.equal(vnetGsoSize(buf, 4), 1440);
  assert.equal(vnetCsumStart(buf, 4), 40);
  assert.equal(vnetCsumOffset(buf, 4), 16);
  assert.deepEqual(buf.subarray(0, 4), hex("a5a5a5a5"));
  assert.deepEqual(buf.subarray(14), hex("a5a5"));
  writeVirtioNetHeader(buf, 4, 0, 0, 0, 0x1234, 0, 0, false);
  assert.equal(vnetGsoSize(buf, 4, false), 0x1234);
  assert.deepEqual(buf.subarray(8, 10), hex("1234"));
});
