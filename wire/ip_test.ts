import assert from "node:assert/strict";
import { WireError } from "./errors.ts";
import {
  emitIPv4Header,
  emitIPv6Header,
  internetChecksum,
  IP_PROTO_UDP,
  type IPv4Header,
  type IPv4HeaderFields,
  ipv4HeaderLength,
  ipv4PseudoHeaderSum,
  type IPv6Header,
  ipv6HeaderLength,
  ipv6PseudoHeaderSum,
  ipVersion,
  onesComplementSum,
  parseIPv4Header,
  parseIPv6Header,
} from "./ip.ts";

function hex(s: string): Uint8Array {
  const t = s.replace(/\s+/g, "");
  const out = new Uint8Array(t.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(t.slice(i * 2, i * 2 + 2), 16);
  }
  return out;
}

/** RFC 1071 the slow way: sum even and odd bytes apart (§2(B) byte order independence). */
function slowChecksum(b: Uint8Array, initial = 0): number {
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < b.length; i++) {
    if (i % 2 === 0) hi += b[i]!;
    else lo += b[i]!;
  }
  let sum = BigInt(hi) * 256n + BigInt(lo) + BigInt(initial);
  while (sum > 0xffffn) sum = (sum & 0xffffn) + (sum >> 16n);
  return Number(~sum & 0xffffn);
}

function wireError(field: string): (e: unknown) => boolean {
  return (e: unknown) => {
    if (!(e instanceof WireError)) return false;
    assert.equal(e.field, field);
    return true;
  };
}

// --- checksum ------------------------------------------------------------

Deno.test("internetChecksum() matches the RFC 1071 §3 example", () => {
  // Words 0001 f203 f4f5 f6f7 sum to 2ddf0, folded ddf2; checksum 220d.
  const b = hex("0001 f203 f4f5 f6f7");
  assert.equal(onesComplementSum(b, 0, 8), 0xddf2);
  assert.equal(internetChecksum(b, 0, 8), 0x220d);
  // Over the data plus the checksum the result is 0.
  assert.equal(internetChecksum(hex("0001 f203 f4f5 f6f7 220d"), 0, 10), 0);
});

Deno.test("internetChecksum() pads an odd last byte and honours start, end and initial", () => {
  const b = hex("ff 0001 f203 f4f5 f6f7 11 ff");
  assert.equal(internetChecksum(b, 1, 10), slowChecksum(b.subarray(1, 10)));
  assert.equal(
    internetChecksum(b, 1, 10, 0x1234),
    slowChecksum(b.subarray(1, 10), 0x1234),
  );
  assert.equal(internetChecksum(b, 3, 3), 0xffff);
});

Deno.test("internetChecksum() agrees with a slow reference on random data", () => {
  let seed = 7;
  const rnd = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed >>> 24;
  };
  for (let n = 0; n < 300; n++) {
    const len = n < 100 ? n : rnd() * 40;
    const b = new Uint8Array(len);
    for (let i = 0; i < len; i++) b[i] = n % 7 === 0 ? 0xff : rnd();
    const initial = rnd() * 256 + rnd();
    assert.equal(internetChecksum(b, 0, len, initial), slowChecksum(b, initial));
  }
});

Deno.test("pseudo-header sums equal the sum of a hand-built pseudo-header", () => {
  // IPv4 (RFC 768): src, dst, zero, protocol, UDP length.
  const v4 = hex("c0a80001 c0a800c7 00 11 005f");
  const hdr4 = hex("4500 0073 0000 4000 4011 b861 c0a80001 c0a800c7");
  assert.equal(
    ipv4PseudoHeaderSum(hdr4, 12, IP_PROTO_UDP, 0x5f),
    onesComplementSum(v4, 0, v4.length),
  );
  // IPv6 (RFC 8200 §8.1): src, dst, 32-bit length, 3 zero bytes, next header.
  const v6 = hex(
    "20010db8000000000000000000000001 fe80000000000000000000000000abcd" +
      "00012345 000000 11",
  );
  assert.equal(
    ipv6PseudoHeaderSum(v6, 0, IP_PROTO_UDP, 0x12345),
    onesComplementSum(v6, 0, v6.length),
  );
});

// --- IPv4 ----------------------------------------------------------------

const classic = "45" + // version 4, IHL 5
  "00" + // TOS
  "0073" + // total length 115
  "0000" + // identification
  "4000" + // flags DF, fragment offset 0
  "40" + // TTL 64
  "11" + // protocol UDP
  "b861" + // header checksum
  "c0a80001" + // 192.168.0.1
  "c0a800c7"; // 192.168.0.199

const classicHeader: IPv4Header = {
  version: 4,
  tos: 0,
  totalLength: 0x73,
  identification: 0,
  dontFragment: true,
  moreFragments: false,
  fragmentOffset: 0,
  ttl: 64,
  protocol: 17,
  checksum: 0xb861,
  checksumOk: true,
  src: "192.168.0.1",
  dst: "192.168.0.199",
  options: new Uint8Array(0),
};

const withOptions = "46" + // version 4, IHL 6
  "00" + // TOS
  "001c" + // total length 28
  "abcd" + // identification
  "2005" + // flags MF, fragment offset 5
  "01" + // TTL 1
  "02" + // protocol IGMP
  "6f07" + // header checksum
  "0a000001" + // 10.0.0.1
  "e0000001" + // 224.0.0.1
  "94040000"; // option: Router Alert (RFC 2113)

const withOptionsHeader: IPv4Header = {
  version: 4,
  tos: 0,
  totalLength: 28,
  identification: 0xabcd,
  dontFragment: false,
  moreFragments: true,
  fragmentOffset: 5,
  ttl: 1,
  protocol: 2,
  checksum: 0x6f07,
  checksumOk: true,
  src: "10.0.0.1",
  dst: "224.0.0.1",
  options: hex("94040000"),
};

Deno.test("parseIPv4Header() decodes the classic header with checksum 0xb861", () => {
  assert.deepEqual(parseIPv4Header(hex(classic)), classicHeader);
  // The payload after the header is not read.
  assert.deepEqual(parseIPv4Header(hex(classic + "0102")), classicHeader);
});

Deno.test("parseIPv4Header() decodes options, MF and the fragment offset", () => {
  assert.deepEqual(parseIPv4Header(hex(withOptions)), withOptionsHeader);
});

Deno.test("parseIPv4Header() reports a bad checksum without throwing", () => {
  const bad = hex(classic.replace("b861", "b862"));
  const h = parseIPv4Header(bad);
  assert.equal(h.checksumOk, false);
  assert.equal(h.checksum, 0xb862);
});

Deno.test("parseIPv4Header() ignores the reserved flag bit", () => {
  // Flags 0xc000: reserved + DF; checksum adjusted by hand (b861 - 8000).
  const h = parseIPv4Header(
    hex(classic.replace("4000", "c000").replace("b861", "3861")),
  );
  assert.deepEqual(h, { ...classicHeader, checksum: 0x3861 });
});

Deno.test("emitIPv4Header() computes the checksum into a 0xa5 buffer at an offset", () => {
  for (const [bytes, h] of [[classic, classicHeader], [withOptions, withOptionsHeader]] as const) {
    const buf = new Uint8Array(70).fill(0xa5);
    const want = hex(bytes);
    // A stale checksum in the record is ignored.
    const stale: IPv4Header = { ...h, checksum: 0x1111, checksumOk: false };
    const out = emitIPv4Header(stale, buf, 3);
    assert.deepEqual(out, want);
    assert.equal(out.buffer, buf.buffer);
    assert.equal(buf[2], 0xa5);
    assert.equal(buf[3 + want.length], 0xa5);
    assert.deepEqual(emitIPv4Header(h), want);
    assert.equal(ipv4HeaderLength(h), want.length);
  }
});

Deno.test("emitIPv4Header() then parseIPv4Header() round-trips", () => {
  const cases: IPv4HeaderFields[] = [
    classicHeader,
    withOptionsHeader,
    {
      ...classicHeader,
      tos: 0xb8,
      totalLength: 0xffff,
      identification: 0xffff,
      fragmentOffset: 0x1fff,
      ttl: 255,
      protocol: 255,
      src: "255.255.255.255",
      dst: "0.0.0.0",
      options: hex("01010101 00000000 ffffffff"),
    },
  ];
  for (const x of cases) {
    const parsed = parseIPv4Header(emitIPv4Header(x));
    assert.equal(parsed.checksumOk, true);
    const { checksum: _c, checksumOk: _o, ...fields } = parsed;
    const { checksum: _c2, checksumOk: _o2, ...want } = x as IPv4Header;
    assert.deepEqual(fields, want);
    const buf = new Uint8Array(80).fill(0xa5);
    emitIPv4Header(x, buf, 9);
    assert.deepEqual(parseIPv4Header(buf.subarray(9)), parsed);
  }
});

Deno.test("emitIPv4Header() rejects misuse with RangeError or TypeError", () => {
  const rangeBad: IPv4HeaderFields[] = [
    { ...classicHeader, options: new Uint8Array(3) },
    { ...classicHeader, options: new Uint8Array(44) },
    { ...classicHeader, totalLength: 19 },
    { ...classicHeader, totalLength: 0x10000 },
    { ...classicHeader, ttl: 256 },
    { ...classicHeader, fragmentOffset: 0x2000 },
    { ...classicHeader, tos: -1 },
  ];
  for (const x of rangeBad) assert.throws(() => emitIPv4Header(x), RangeError);
  assert.throws(
    () => emitIPv4Header({ ...classicHeader, src: "::1" }),
    TypeError,
  );
  assert.throws(
    () => emitIPv4Header({ ...classicHeader, dst: "1.2.3" }),
    TypeError,
  );
});

Deno.test("parseIPv4Header() rejects bad headers with WireError naming the field", () => {
  const table: [string, string, string][] = [
    ["version 6", "65000073 00004000 4011b861 c0a80001 c0a800c7", "ipv4.version"],
    ["IHL 4", "44000073 00004000 4011b861 c0a80001 c0a800c7", "ipv4.ihl"],
    [
      "IHL 6 without the option bytes",
      "46000073 00004000 4011b861 c0a80001 c0a800c7",
      "ipv4.options",
    ],
    ["total length 19", "45000013 00004000 4011b861 c0a80001 c0a800c7", "ipv4.total-length"],
    [
      "total length 20 below IHL 6",
      "46000014 00004000 4011b861 c0a80001 c0a800c7 94040000",
      "ipv4.total-length",
    ],
  ];
  for (const [name, bytes, field] of table) {
    assert.throws(() => parseIPv4Header(hex(bytes)), wireError(field), name);
  }
});

Deno.test("parseIPv4Header() throws WireError at every truncated length", () => {
  for (const fixture of [classic, withOptions]) {
    const full = hex(fixture);
    for (let n = 0; n < full.length; n++) {
      assert.throws(
        () => parseIPv4Header(full.subarray(0, n)),
        WireError,
        `length ${n}`,
      );
    }
  }
});

// --- IPv6 ----------------------------------------------------------------

const v6fixture = "6ab12345" + // version 6, traffic class 0xab, flow label 0x12345
  "0010" + // payload length 16
  "11" + // next header UDP
  "40" + // hop limit 64
  "20010db8000000000000000000000001" + // 2001:db8::1
  "fe8000000000000000000000abcd00ef"; // fe80::abcd:ef

const v6header: IPv6Header = {
  version: 6,
  trafficClass: 0xab,
  flowLabel: 0x12345,
  payloadLength: 16,
  nextHeader: 17,
  hopLimit: 64,
  src: "2001:db8::1",
  dst: "fe80::abcd:ef",
};

Deno.test("parseIPv6Header() decodes a hand-written RFC 8200 header", () => {
  assert.deepEqual(parseIPv6Header(hex(v6fixture)), v6header);
  assert.deepEqual(parseIPv6Header(hex(v6fixture + "abcd")), v6header);
});

Deno.test("emitIPv6Header() writes the fixture into a 0xa5 buffer at an offset", () => {
  const buf = new Uint8Array(45).fill(0xa5);
  const out = emitIPv6Header(v6header, buf, 4);
  assert.deepEqual(out, hex(v6fixture));
  assert.equal(out.buffer, buf.buffer);
  assert.equal(buf[3], 0xa5);
  assert.equal(buf[44], 0xa5);
  assert.deepEqual(emitIPv6Header(v6header), hex(v6fixture));
  assert.equal(ipv6HeaderLength(v6header), 40);
});

Deno.test("emitIPv6Header() then parseIPv6Header() round-trips", () => {
  const cases: IPv6Header[] = [
    v6header,
    {
      ...v6header,
      trafficClass: 0xff,
      flowLabel: 0xfffff,
      payloadLength: 0xffff,
      nextHeader: 0,
      hopLimit: 255,
      src: "::",
      dst: "::ffff:1.2.3.4",
    },
  ];
  for (const x of cases) {
    assert.deepEqual(parseIPv6Header(emitIPv6Header(x)), x);
    const buf = new Uint8Array(50).fill(0xa5);
    emitIPv6Header(x, buf, 10);
    assert.deepEqual(parseIPv6Header(buf.subarray(10)), x);
  }
});

Deno.test("emitIPv6Header() rejects misuse with RangeError or TypeError", () => {
  const rangeBad: IPv6Header[] = [
    { ...v6header, trafficClass: 256 },
    { ...v6header, flowLabel: 0x100000 },
    { ...v6header, payloadLength: 0x10000 },
    { ...v6header, hopLimit: -1 },
  ];
  for (const x of rangeBad) assert.throws(() => emitIPv6Header(x), RangeError);
  assert.throws(
    () => emitIPv6Header({ ...v6header, src: "1.2.3.4" }),
    TypeError,
  );
  assert.throws(
    () => emitIPv6Header({ ...v6header, dst: "1::2::3" }),
    TypeError,
  );
});

Deno.test("parseIPv6Header() rejects a version other than 6", () => {
  for (const first of ["4ab12345", "0ab12345", "fab12345"]) {
    assert.throws(
      () => parseIPv6Header(hex(first + v6fixture.slice(8))),
      wireError("ipv6.version"),
    );
  }
});

Deno.test("parseIPv6Header() throws WireError at every truncated length", () => {
  const full = hex(v6fixture);
  for (let n = 0; n < full.length; n++) {
    assert.throws(
      () => parseIPv6Header(full.subarray(0, n)),
      wireError("ipv6.header"),
      `length ${n}`,
    );
  }
});

Deno.test("ipVersion() reads the version nibble", () => {
  assert.equal(ipVersion(hex("ff" + classic), 1), 4);
  assert.equal(ipVersion(hex(v6fixture), 0), 6);
});
