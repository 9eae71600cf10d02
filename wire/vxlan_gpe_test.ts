import assert from "node:assert/strict";
import { WireError } from "./errors.ts";
import {
  emitVxlanGpeHeader,
  newVxlanGpeHeader,
  parseVxlanGpeHeader,
  readVxlanGpeHeaderInto,
  VXLAN_GPE_FLAG_B,
  VXLAN_GPE_FLAG_I,
  VXLAN_GPE_FLAG_O,
  VXLAN_GPE_FLAG_P,
  VXLAN_GPE_NP_ETHERNET,
  VXLAN_GPE_NP_IPV4,
  VXLAN_GPE_NP_IPV6,
  VXLAN_GPE_NP_NSH,
  vxlanGpeFlags,
  type VxlanGpeHeader,
  vxlanGpeHeaderLength,
  vxlanGpeNextProtocol,
  vxlanGpeVersion,
  vxlanGpeVni,
  writeVxlanGpeHeader,
} from "./vxlan_gpe.ts";
import { hex } from "../tests/hex.ts";

const base: VxlanGpeHeader = {
  version: 0,
  i: false,
  p: false,
  b: false,
  o: false,
  nextProtocol: 0,
  vni: 0,
};

/** Fixtures from the draft-ietf-nvo3-vxlan-gpe §3.3 layout, written by hand. */
const fixtures: { name: string; bytes: string; header: VxlanGpeHeader }[] = [
  {
    name: "IPv4 payload in VNI 0x123456",
    bytes: "0c" + // R=0 R=0 Ver=00 I=1 P=1 B=0 O=0
      "0000" + // reserved
      "01" + // next protocol: IPv4
      "123456" + // VNI
      "00", // reserved
    header: { ...base, i: true, p: true, nextProtocol: 1, vni: 0x123456 },
  },
  {
    name: "Ethernet BUM OAM in VNI 1",
    bytes: "0f" + // I=1 P=1 B=1 O=1
      "0000" + // reserved
      "03" + // next protocol: Ethernet
      "000001" + // VNI
      "00", // reserved
    header: {
      ...base,
      i: true,
      p: true,
      b: true,
      o: true,
      nextProtocol: 3,
      vni: 1,
    },
  },
  {
    name: "version 2 with an unknown next protocol",
    bytes: "24" + // Ver=10 I=0 P=1
      "0000" + // reserved
      "fe" + // next protocol 254 (unassigned, kept)
      "ffffff" + // VNI (I=0: kept as received)
      "00", // reserved
    header: { ...base, version: 2, p: true, nextProtocol: 0xfe, vni: 0xffffff },
  },
];

Deno.test("parseVxlanGpeHeader() decodes hand-written fixtures", () => {
  for (const f of fixtures) {
    assert.deepEqual(parseVxlanGpeHeader(hex(f.bytes)), f.header, f.name);
  }
});

Deno.test("parseVxlanGpeHeader() ignores reserved bits", () => {
  const h = parseVxlanGpeHeader(hex("cc ffff 02 abcdef ff"));
  assert.deepEqual(h, {
    ...base,
    i: true,
    p: true,
    nextProtocol: 2,
    vni: 0xabcdef,
  });
});

Deno.test("emitVxlanGpeHeader() writes the fixtures into a 0xa5 buffer at an offset", () => {
  for (const f of fixtures) {
    const buf = new Uint8Array(12).fill(0xa5);
    const out = emitVxlanGpeHeader(f.header, buf, 2);
    assert.deepEqual(out, hex(f.bytes), f.name);
    assert.equal(out.buffer, buf.buffer);
    assert.deepEqual(buf.subarray(0, 2), hex("a5a5"));
    assert.deepEqual(buf.subarray(10), hex("a5a5"));
    assert.deepEqual(emitVxlanGpeHeader(f.header), hex(f.bytes));
    assert.equal(vxlanGpeHeaderLength(f.header), 8);
  }
});

Deno.test("emitVxlanGpeHeader() then parseVxlanGpeHeader() round-trips", () => {
  const cases: VxlanGpeHeader[] = [
    base,
    ...fixtures.map((f) => f.header),
    { ...base, version: 3, o: true, nextProtocol: 4 },
    { ...base, b: true, nextProtocol: 255, vni: 0x800000 },
  ];
  for (const h of cases) {
    assert.deepEqual(parseVxlanGpeHeader(emitVxlanGpeHeader(h)), h);
    const buf = new Uint8Array(20).fill(0xa5);
    emitVxlanGpeHeader(h, buf, 7);
    assert.deepEqual(parseVxlanGpeHeader(buf.subarray(7)), h);
  }
});

Deno.test("emitVxlanGpeHeader() rejects out-of-range fields with RangeError", () => {
  const bad: VxlanGpeHeader[] = [
    { ...base, version: 4 },
    { ...base, nextProtocol: 256 },
    { ...base, vni: 0x1000000 },
    { ...base, vni: -1 },
    { ...base, vni: 1.5 },
  ];
  for (const h of bad) {
    assert.throws(() => emitVxlanGpeHeader(h), RangeError, JSON.stringify(h));
  }
  assert.throws(
    () => emitVxlanGpeHeader(base, new Uint8Array(8), 1),
    RangeError,
  );
});

Deno.test("parseVxlanGpeHeader() throws WireError at every truncated length", () => {
  const full = hex(fixtures[0]!.bytes);
  for (let n = 0; n < full.length; n++) {
    assert.throws(
      () => parseVxlanGpeHeader(full.subarray(0, n)),
      (e: unknown) => e instanceof WireError && e.field === "vxlan-gpe.header",
      `length ${n}`,
    );
  }
});

Deno.test("readVxlanGpeHeaderInto() decodes into a reused object and refuses short input", () => {
  const out = newVxlanGpeHeader();
  for (const f of fixtures) {
    const buf = new Uint8Array(11).fill(0xa5);
    buf.set(hex(f.bytes), 3);
    assert.equal(readVxlanGpeHeaderInto(buf, 3, out), true);
    assert.deepEqual(out, f.header, f.name);
  }
  const before = { ...out };
  assert.equal(readVxlanGpeHeaderInto(new Uint8Array(10), 3, out), false);
  assert.deepEqual(out, before);
});

Deno.test("data path accessors and writeVxlanGpeHeader() agree with the layout", () => {
  const buf = new Uint8Array(12).fill(0xa5);
  writeVxlanGpeHeader(
    buf,
    2,
    (1 << 4) | VXLAN_GPE_FLAG_I | VXLAN_GPE_FLAG_P | VXLAN_GPE_FLAG_O,
    VXLAN_GPE_NP_IPV6,
    0xfedcba,
  );
  assert.deepEqual(buf, hex("a5a5 1d 0000 02 fedcba 00 a5a5"));
  assert.equal(vxlanGpeFlags(buf, 2) & VXLAN_GPE_FLAG_B, 0);
  assert.equal(vxlanGpeVersion(buf, 2), 1);
  assert.equal(vxlanGpeNextProtocol(buf, 2), 2);
  assert.equal(vxlanGpeVni(buf, 2), 0xfedcba);
  assert.deepEqual(
    [VXLAN_GPE_NP_IPV4, VXLAN_GPE_NP_IPV6, VXLAN_GPE_NP_ETHERNET, VXLAN_GPE_NP_NSH],
    [1, 2, 3, 4],
  );
});
