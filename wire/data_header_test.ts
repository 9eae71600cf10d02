import assert from "node:assert/strict";
import {
  emitLispDataHeader,
  LISP_CONTROL_PORT,
  LISP_DATA_PORT,
  LISP_FLAG_E,
  LISP_FLAG_I,
  LISP_FLAG_L,
  LISP_FLAG_N,
  LISP_FLAG_V,
  type LispDataHeader,
  lispDataHeaderLength,
  lispFlags,
  lispIidLsb,
  lispInstanceId,
  lispLocatorStatusBits,
  lispMapVersions,
  lispNonce,
  newLispDataHeader,
  parseLispDataHeader,
  readLispDataHeaderInto,
  VXLAN_GPE_PORT,
  writeLispDataHeader,
} from "./data_header.ts";
import { WireError } from "./errors.ts";
import { hex } from "../tests/hex.ts";

const base: LispDataHeader = {
  n: false,
  l: false,
  e: false,
  v: false,
  i: false,
  flagsReserved: 0,
  nonce: 0,
  sourceMapVersion: 0,
  destMapVersion: 0,
  instanceId: 0,
  lsb: 0,
};

/** Fixtures from the RFC 9300 §5.3 layout, written by hand. */
const fixtures: { name: string; bytes: string; header: LispDataHeader }[] = [
  {
    name: "nonce and 32 locator-status-bits",
    bytes: "c0" + // N=1 L=1 E=0 V=0 I=0 R=0 KK=00
      "123456" + // nonce
      "00000003", // locator-status-bits: locators 0 and 1 up
    header: { ...base, n: true, l: true, nonce: 0x123456, lsb: 3 },
  },
  {
    name: "instance id with 8 locator-status-bits",
    bytes: "48" + // N=0 L=1 E=0 V=0 I=1
      "000000" + // no nonce, no versions
      "00abcd" + // instance id 0x00abcd
      "01", // LSBs
    header: { ...base, l: true, i: true, instanceId: 0xabcd, lsb: 1 },
  },
  {
    name: "map versions",
    bytes: "10" + // V=1
      "123abc" + // source map version 0x123, dest map version 0xabc
      "ffffffff", // 32 LSBs (L=0: kept as received)
    header: {
      ...base,
      v: true,
      sourceMapVersion: 0x123,
      destMapVersion: 0xabc,
      lsb: 0xffffffff,
    },
  },
  {
    name: "echo-nonce request with instance id and key id bits",
    bytes: "aa" + // N=1 L=0 E=1 V=0 I=1 R=0 KK=10
      "fffffe" + // nonce
      "ffffff" + // instance id 2^24-1
      "00", // LSBs
    header: {
      ...base,
      n: true,
      e: true,
      i: true,
      flagsReserved: 2,
      nonce: 0xfffffe,
      instanceId: 0xffffff,
    },
  },
];

Deno.test("parseLispDataHeader() decodes hand-written RFC 9300 fixtures", () => {
  for (const f of fixtures) {
    assert.deepEqual(parseLispDataHeader(hex(f.bytes)), f.header, f.name);
  }
});

Deno.test("parseLispDataHeader() reads only the first 8 bytes", () => {
  const h = parseLispDataHeader(hex("c0123456 00000003 4500 0054"));
  assert.equal(h.nonce, 0x123456);
});

Deno.test("parseLispDataHeader() treats the field as a nonce when N and V are both set", () => {
  const h = parseLispDataHeader(hex("90 123abc 00000000"));
  assert.deepEqual(h, { ...base, n: true, v: true, nonce: 0x123abc });
});

Deno.test("parseLispDataHeader() ignores the 24-bit field when neither N nor V is set", () => {
  const h = parseLispDataHeader(hex("00 ffffff 00000000"));
  assert.deepEqual(h, base);
});

Deno.test("emitLispDataHeader() writes the fixtures into a 0xa5 buffer at an offset", () => {
  for (const f of fixtures) {
    const buf = new Uint8Array(13).fill(0xa5);
    const out = emitLispDataHeader(f.header, buf, 3);
    assert.deepEqual(out, hex(f.bytes), f.name);
    assert.equal(out.buffer, buf.buffer);
    assert.deepEqual(buf.subarray(0, 3), hex("a5a5a5"));
    assert.deepEqual(buf.subarray(11), hex("a5a5"));
    assert.deepEqual(emitLispDataHeader(f.header), hex(f.bytes), f.name);
    assert.equal(lispDataHeaderLength(f.header), 8);
  }
});

Deno.test("emitLispDataHeader() then parseLispDataHeader() round-trips", () => {
  const cases: LispDataHeader[] = [
    base,
    ...fixtures.map((f) => f.header),
    { ...base, l: true, lsb: 0x80000001 },
    { ...base, v: true, i: true, sourceMapVersion: 0xfff, instanceId: 7 },
    { ...base, e: true, flagsReserved: 7 },
  ];
  for (const h of cases) {
    assert.deepEqual(parseLispDataHeader(emitLispDataHeader(h)), h);
    const buf = new Uint8Array(20).fill(0xa5);
    emitLispDataHeader(h, buf, 5);
    assert.deepEqual(parseLispDataHeader(buf.subarray(5)), h);
  }
});

Deno.test("emitLispDataHeader() rejects misuse with RangeError", () => {
  const bad: LispDataHeader[] = [
    { ...base, n: true, v: true },
    { ...base, n: true, nonce: 0x1000000 },
    { ...base, v: true, sourceMapVersion: 0x1000 },
    { ...base, v: true, destMapVersion: -1 },
    { ...base, i: true, instanceId: 0x1000000 },
    { ...base, i: true, lsb: 0x100 },
    { ...base, lsb: 2 ** 32 },
    { ...base, flagsReserved: 8 },
  ];
  for (const h of bad) {
    assert.throws(() => emitLispDataHeader(h), RangeError, JSON.stringify(h));
  }
  assert.throws(
    () => emitLispDataHeader(base, new Uint8Array(10), 3),
    RangeError,
  );
});

Deno.test("parseLispDataHeader() throws WireError at every truncated length", () => {
  const full = hex(fixtures[0]!.bytes);
  for (let n = 0; n < full.length; n++) {
    assert.throws(
      () => parseLispDataHeader(full.subarray(0, n)),
      (e: unknown) =>
        e instanceof WireError && e.field === "lisp-data.header" &&
        e.offset === 0,
      `length ${n}`,
    );
  }
});

Deno.test("readLispDataHeaderInto() decodes into a reused object and refuses short input", () => {
  const out = newLispDataHeader();
  for (const f of fixtures) {
    const buf = new Uint8Array(12).fill(0xa5);
    buf.set(hex(f.bytes), 2);
    assert.equal(readLispDataHeaderInto(buf, 2, out), true);
    assert.deepEqual(out, f.header, f.name);
  }
  const before = { ...out };
  assert.equal(readLispDataHeaderInto(new Uint8Array(9), 2, out), false);
  assert.equal(readLispDataHeaderInto(new Uint8Array(9), -1, out), false);
  assert.deepEqual(out, before);
});

Deno.test("data path accessors read the fixture fields", () => {
  const a = hex("ff c0 123456 00000003");
  assert.equal(lispFlags(a, 1), LISP_FLAG_N | LISP_FLAG_L);
  assert.equal(lispNonce(a, 1), 0x123456);
  assert.equal(lispInstanceId(a, 1), 0); // I not set
  assert.equal(lispLocatorStatusBits(a, 1), 3);
  const b = hex("48 000000 00abcd 01");
  assert.equal(lispInstanceId(b, 0), 0xabcd);
  assert.equal(lispLocatorStatusBits(b, 0), 1);
  const c = hex("08 000000 ffffff ff");
  assert.equal(lispInstanceId(c, 0), 0xffffff);
  assert.equal(lispLocatorStatusBits(c, 0), 0xff);
  const d = hex("40 000000 ffffffff");
  assert.equal(lispLocatorStatusBits(d, 0), 0xffffffff);
});

Deno.test("writeLispDataHeader() writes the raw fields into a packet buffer", () => {
  const buf = new Uint8Array(12).fill(0xa5);
  writeLispDataHeader(
    buf,
    2,
    LISP_FLAG_N | LISP_FLAG_E | LISP_FLAG_I | LISP_FLAG_L,
    0xabcdef,
    lispIidLsb(0x123456, 0x81),
  );
  assert.deepEqual(buf, hex("a5a5 e8 abcdef 123456 81 a5a5"));
  writeLispDataHeader(buf, 2, LISP_FLAG_V, lispMapVersions(1, 0xffe), 0);
  assert.deepEqual(buf, hex("a5a5 10 001ffe 00000000 a5a5"));
});

Deno.test("port constants match the IANA assignments", () => {
  assert.deepEqual([LISP_DATA_PORT, LISP_CONTROL_PORT, VXLAN_GPE_PORT], [
    4341,
    4342,
    4790,
  ]);
});
