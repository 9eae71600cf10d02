import assert from "node:assert/strict";
import { WireError } from "./errors.ts";
import { randomEcm, Rng } from "../tests/wire_gen.ts";
import { type Ecm, ecmForRtr, ecmLength, ecmRtrRelayed, emitEcm, parseEcm } from "./ecm.ts";
import { hex } from "../tests/hex.ts";

// --- Fixtures (hand-written from RFC 9301 §5.8, RFC 791, RFC 8200, RFC 768;
// checksums computed by hand, independently of ip.ts/udp.ts) ----------------

/** A Map-Request (RFC 9301 §5.2) for 10.0.0.2/32, the ECM payload. */
const MAP_REQUEST_HEX = `
  10 00 00 01               # Type=1, no flags, IRC=0, Record Count=1
  01 02 03 04 05 06 07 08   # Nonce
  00 01 0a 00 00 01         # Source-EID-AFI=1, 10.0.0.1
  00 01 c0 00 02 01         # ITR-RLOC-AFI=1, 192.0.2.1
  00 20 00 01 0a 00 00 02   # Reserved, EID mask-len=32, EID-prefix-AFI=1, 10.0.0.2
`;
const MAP_REQUEST = hex(MAP_REQUEST_HEX);

const ECM_V4_HEX = `
  88 00 00 00               # Type=8, S=1, D=0, E=0, M=0; R=0, N=0, Reserved
  45 00 00 3c               # IPv4: version 4, IHL 5, TOS 0, total length 60
  00 00 40 00               #       identification 0, DF, fragment offset 0
  40 11 6e ae               #       TTL 64, protocol 17 (UDP), header checksum
  c0 00 02 01               #       source 192.0.2.1
  0a 00 00 02               #       destination 10.0.0.2
  ee 48 10 f6               # UDP: source port 61000, destination port 4342
  00 28 3e 1f               #      length 40, checksum
  ${MAP_REQUEST_HEX}
`;
const ECM_V4: Ecm = {
  security: true,
  ddtOriginated: false,
  forRtr: false,
  rtrRelayed: false,
  toEtr: false,
  toMs: false,
  inner: {
    src: "192.0.2.1",
    dst: "10.0.0.2",
    srcPort: 61000,
    dstPort: 4342,
    ttl: 64,
    tos: 0,
    identification: 0,
    dontFragment: true,
    zeroUdpChecksum: false,
  },
  payload: MAP_REQUEST,
  checksumOk: true,
};

const ECM_V6_HEX = `
  84 00 00 00               # Type=8, S=0, D=1, E=0, M=0; R=0, N=0, Reserved
  60 00 00 00               # IPv6: version 6, traffic class 0, flow label 0
  00 28 11 40               #       payload length 40, next header 17 (UDP), hop limit 64
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01   # source 2001:db8::1
  20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 02   # destination 2001:db8:1::2
  ee 49 10 f6               # UDP: source port 61001, destination port 4342
  00 28 ae ab               #      length 40, checksum
  ${MAP_REQUEST_HEX}
`;
const ECM_V6: Ecm = {
  security: false,
  ddtOriginated: true,
  forRtr: false,
  rtrRelayed: false,
  toEtr: false,
  toMs: false,
  inner: {
    src: "2001:db8::1",
    dst: "2001:db8:1::2",
    srcPort: 61001,
    dstPort: 4342,
    ttl: 64,
    tos: 0,
    flowLabel: 0,
  },
  payload: MAP_REQUEST,
  checksumOk: true,
};

const FIXTURES: [string, string, Ecm][] = [
  ["a Map-Request over IPv4 with the S bit", ECM_V4_HEX, ECM_V4],
  ["a Map-Request over IPv6 with the D bit", ECM_V6_HEX, ECM_V6],
];

for (const [what, h, msg] of FIXTURES) {
  Deno.test(`parseEcm() reads ${what}`, () => {
    assert.deepEqual(parseEcm(hex(h)), msg);
  });
  Deno.test(`emitEcm() writes ${what}`, () => {
    const want = hex(h);
    assert.equal(ecmLength(msg), want.length);
    assert.deepEqual(emitEcm(msg), want);
    const buf = new Uint8Array(want.length + 6).fill(0xa5);
    const out = emitEcm(msg, buf, 2);
    assert.deepEqual(out, want);
    assert.equal(out.buffer, buf.buffer);
    assert.deepEqual(buf.subarray(0, 2), hex("a5a5"));
    assert.deepEqual(buf.subarray(2 + want.length), hex("a5a5a5a5"));
  });
  Deno.test(`parseEcm() rejects every truncation of ${what}`, () => {
    const full = hex(h);
    for (let n = 0; n < full.length; n++) {
      assert.throws(() => parseEcm(full.subarray(0, n)), WireError, `length ${n}`);
    }
  });
}

Deno.test("emitEcm() sets E and M at 0x02 and 0x01 of byte 0, R and N at 0x40 and 0x20 of byte 1", () => {
  const rn: Ecm = { ...ECM_V4, security: false, forRtr: true, rtrRelayed: true };
  const out = emitEcm(rn);
  assert.deepEqual([out[0], out[1]], [0x80, 0x60]);
  assert.deepEqual(out.subarray(2), hex(ECM_V4_HEX).subarray(2));
  assert.deepEqual(parseEcm(out), rn);
  const em: Ecm = { ...ECM_V4, security: false, toEtr: true, toMs: true };
  assert.deepEqual([emitEcm(em)[0], emitEcm(em)[1]], [0x83, 0x00]);
  assert.deepEqual(parseEcm(emitEcm(em)), em);
  const all = emitEcm({ ...rn, toEtr: true, toMs: true, security: true, ddtOriginated: true });
  assert.deepEqual([all[0], all[1]], [0x8f, 0x60]);
});

Deno.test("ecmForRtr() and ecmRtrRelayed() take R and N, or E and M where earlier drafts put them", () => {
  assert.equal(ecmForRtr(ECM_V4), false);
  assert.equal(ecmForRtr({ ...ECM_V4, forRtr: true }), true);
  assert.equal(ecmForRtr({ ...ECM_V4, toEtr: true }), true);
  assert.equal(ecmForRtr({ ...ECM_V4, toMs: true }), false);
  assert.equal(ecmRtrRelayed(ECM_V4), false);
  assert.equal(ecmRtrRelayed({ ...ECM_V4, rtrRelayed: true }), true);
  assert.equal(ecmRtrRelayed({ ...ECM_V4, toMs: true }), true);
  assert.equal(ecmRtrRelayed({ ...ECM_V4, toEtr: true }), false);
  // OOR 1.3.0's ECM'd Map-Register through an RTR: 80 40 00 00.
  assert.equal(
    ecmForRtr(parseEcm(hex("80400000" + ECM_V4_HEX.replace(/^\s*88 00 00 00[^\n]*\n/, "")))),
    true,
  );
});

Deno.test("emitEcm() writes back an inner IPv4 header with DF clear, an identification, a TOS and a zero UDP checksum", () => {
  const b = hex(ECM_V4_HEX);
  b[5] = 0xb8; // TOS: DSCP EF
  b[8] = 0x12; // identification 0x1234
  b[9] = 0x34;
  b[10] = 0x00; // DF clear
  // The IPv4 header checksum again (RFC 1071), by hand.
  b[14] = 0;
  b[15] = 0;
  let sum = 0;
  for (let i = 4; i < 24; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  b[14] = (~sum >>> 8) & 0xff;
  b[15] = ~sum & 0xff;
  b[30] = 0; // no UDP checksum
  b[31] = 0;
  const m = parseEcm(b);
  assert.deepEqual(m.inner, {
    ...ECM_V4.inner,
    tos: 0xb8,
    identification: 0x1234,
    dontFragment: false,
    zeroUdpChecksum: true,
  });
  assert.equal(m.checksumOk, true);
  assert.deepEqual(emitEcm(m), b);
});

Deno.test("parseEcm() ignores reserved bits and keeps the payload as a copy", () => {
  const b = hex(ECM_V4_HEX);
  b[1] = 0x9f;
  b[2] = 0xff;
  b[3] = 0xff;
  const m = parseEcm(b);
  assert.deepEqual(m, ECM_V4);
  b[b.length - 1] = 0;
  assert.equal(m.payload[m.payload.length - 1], 0x02);
});

Deno.test("parseEcm() accepts a zero IPv4 UDP checksum as in OOR's ECMs", () => {
  const b = hex(ECM_V4_HEX);
  b[30] = 0;
  b[31] = 0;
  assert.deepEqual(parseEcm(b), { ...ECM_V4, inner: { ...ECM_V4.inner, zeroUdpChecksum: true } });
});

Deno.test("parseEcm() reports wrong inner checksums in checksumOk, not as errors", () => {
  const udp = hex(ECM_V4_HEX);
  udp[31] = udp[31]! ^ 1; // UDP checksum
  assert.deepEqual(parseEcm(udp), { ...ECM_V4, checksumOk: false });
  const ip = hex(ECM_V4_HEX);
  ip[15] = ip[15]! ^ 1; // IPv4 header checksum
  assert.deepEqual(parseEcm(ip), { ...ECM_V4, checksumOk: false });
  const v6zero = hex(ECM_V6_HEX);
  v6zero[50] = 0; // a zero UDP checksum is invalid over IPv6
  v6zero[51] = 0;
  assert.deepEqual(parseEcm(v6zero), { ...ECM_V6, checksumOk: false });
});

Deno.test("parseEcm() rejects bad inputs with the field and offset at fault", () => {
  const edit = (h: string, at: number, ...v: number[]) => {
    const b = hex(h);
    b.set(v, at);
    return b;
  };
  const cases: [string, Uint8Array, string, number][] = [
    ["an empty buffer", new Uint8Array(0), "ecm.header", 0],
    ["a short header", hex("880000"), "ecm.header", 0],
    ["another message type", edit(ECM_V4_HEX, 0, 0x18), "ecm.type", 0],
    ["no inner packet", hex("88000000"), "ecm.ip.version", 4],
    ["an inner IP version 5", edit(ECM_V4_HEX, 4, 0x55), "ecm.ip.version", 4],
    ["an inner IPv4 protocol that is not UDP", edit(ECM_V4_HEX, 13, 6), "ecm.ip.protocol", 13],
    ["an inner IPv6 next header that is not UDP", edit(ECM_V6_HEX, 10, 6), "ecm.ip.protocol", 10],
    [
      "an inner IPv4 total length above the data",
      edit(ECM_V4_HEX, 6, 0x00, 0x3d),
      "ecm.ipv4.total-length",
      6,
    ],
    [
      "an inner IPv4 total length below the data",
      edit(ECM_V4_HEX, 6, 0x00, 0x3b),
      "ecm.ipv4.total-length",
      6,
    ],
    [
      "an inner IPv6 payload length that differs from the data",
      edit(ECM_V6_HEX, 8, 0x00, 0x29),
      "ecm.ipv6.payload-length",
      8,
    ],
    [
      "an inner UDP length that differs from the IP payload",
      edit(ECM_V4_HEX, 28, 0x00, 0x27),
      "ecm.udp.length",
      28,
    ],
    ["an inner IPv4 fragment", edit(ECM_V4_HEX, 10, 0x20, 0x00), "ecm.ipv4.flags", 10],
    ["bytes after the inner packet", hex(ECM_V4_HEX + "00"), "ecm.ipv4.total-length", 6],
  ];
  for (const [what, bytes, field, offset] of cases) {
    try {
      parseEcm(bytes);
      assert.fail(`accepted ${what}`);
    } catch (e) {
      assert.ok(e instanceof WireError, `${what}: ${e}`);
      assert.equal(e.field, field, what);
      assert.equal(e.offset, offset, what);
    }
  }
});

Deno.test("emitEcm() rejects bad inner fields", () => {
  const bad: [Ecm, ErrorConstructor][] = [
    [{ ...ECM_V4, inner: { ...ECM_V4.inner, dst: "2001:db8::2" } }, TypeError],
    [{ ...ECM_V4, inner: { ...ECM_V4.inner, src: "not an address" } }, TypeError],
    [{ ...ECM_V4, inner: { ...ECM_V4.inner, srcPort: 65536 } }, RangeError],
    [{ ...ECM_V4, inner: { ...ECM_V4.inner, ttl: 256 } }, RangeError],
    [{ ...ECM_V4, payload: new Uint8Array(65536) }, RangeError],
  ];
  for (const [m, E] of bad) assert.throws(() => emitEcm(m), E);
  assert.throws(() => emitEcm(ECM_V4, new Uint8Array(ecmLength(ECM_V4)), 1), RangeError);
});

// --- Random round trips -----------------------------------------------------

Deno.test("emitEcm() and parseEcm() round-trip 1,000 random messages", () => {
  const rng = new Rng(0x65636d);
  for (let i = 0; i < 1000; i++) {
    const m = randomEcm(rng);
    const bytes = emitEcm(m);
    assert.equal(bytes.length, ecmLength(m));
    assert.deepEqual(parseEcm(bytes), m, `case ${i}`);
    const off = i % 7;
    const buf = new Uint8Array(bytes.length + off + 2).fill(0xa5);
    assert.deepEqual(emitEcm(m, buf, off), bytes, `case ${i} at offset ${off}`);
    assert.deepEqual(buf.subarray(off + bytes.length), hex("a5a5"));
  }
});

Deno.test("parseEcm() copies the payload out of a Node Buffer instead of viewing it", async () => {
  const { Buffer } = await import("node:buffer");
  const bytes = emitEcm({
    security: false,
    ddtOriginated: false,
    forRtr: false,
    rtrRelayed: false,
    inner: { src: "192.0.2.1", dst: "10.0.0.1", srcPort: 1000, dstPort: 4342, ttl: 64 },
    payload: Uint8Array.of(0x10, 0, 0, 0),
  });
  const buf = Buffer.from(bytes);
  const ecm = parseEcm(buf);
  buf.fill(0xee);
  assert.deepEqual([...ecm.payload], [0x10, 0, 0, 0]);
});
