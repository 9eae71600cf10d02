import assert from "node:assert/strict";
import {
  canonicalIp,
  ipv4FromBytes,
  ipv4ToBytes,
  ipv6FromBytes,
  ipv6ToBytes,
  isIPv4,
  isIPv6,
  macFromBytes,
  macToBytes,
} from "./ip_text.ts";
import { hex } from "../tests/hex.ts";

Deno.test("ipv4ToBytes() writes the four octets at the offset", () => {
  const out = new Uint8Array(8).fill(0xa5);
  assert.equal(ipv4ToBytes("192.168.0.199", out, 2), true);
  assert.deepEqual(out, hex("a5a5 c0a800c7 a5a5"));
  assert.equal(ipv4ToBytes("0.0.0.0", out, 0), true);
  assert.deepEqual(out.subarray(0, 4), hex("00000000"));
  assert.equal(ipv4ToBytes("255.255.255.255", out, 4), true);
  assert.deepEqual(out.subarray(4), hex("ffffffff"));
});

Deno.test("ipv4ToBytes() rejects anything but a strict dotted quad", () => {
  const bad = [
    "",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "1.2.3.256",
    "01.2.3.4",
    "1.2.3.00",
    "1.2.3.04",
    "1..2.3",
    ".1.2.3",
    "1.2.3.",
    "1.2.3.4 ",
    " 1.2.3.4",
    "+1.2.3.4",
    "-1.2.3.4",
    "1.2.3.a",
    "0x1.2.3.4",
    "1000.2.3.4",
    "1.2.3.4/24",
    "::1",
    "１.2.3.4", // fullwidth digit
  ];
  const out = new Uint8Array(4);
  for (const s of bad) {
    assert.equal(ipv4ToBytes(s, out, 0), false, JSON.stringify(s));
    assert.equal(isIPv4(s), false, JSON.stringify(s));
  }
  assert.equal(isIPv4("10.0.0.1"), true);
  assert.equal(isIPv4("100.200.0.10"), true);
});

Deno.test("ipv4FromBytes() formats the octets at the offset", () => {
  assert.equal(ipv4FromBytes(hex("ff c0a80001"), 1), "192.168.0.1");
  assert.equal(ipv4FromBytes(hex("00000000"), 0), "0.0.0.0");
  assert.equal(ipv4FromBytes(hex("0a00ff09"), 0), "10.0.255.9");
});

Deno.test("ipv4ToBytes() and ipv4FromBytes() agree on every value of each octet", () => {
  const b = new Uint8Array(4);
  for (let v = 0; v < 256; v++) {
    const s = `${v}.${255 - v}.${v >> 1}.${v & 7}`;
    assert.equal(ipv4ToBytes(s, b, 0), true, s);
    assert.deepEqual([...b], [v, 255 - v, v >> 1, v & 7]);
    assert.equal(ipv4FromBytes(b, 0), s);
  }
});

Deno.test("ipv6ToBytes() parses full, compressed and mixed forms", () => {
  const cases: [string, string][] = [
    ["2001:db8:0:0:1:0:0:1", "20010db8 00000000 00010000 00000001"],
    ["2001:0db8::0001", "20010db8 00000000 00000000 00000001"],
    ["2001:DB8::1", "20010db8 00000000 00000000 00000001"],
    ["::", "00000000 00000000 00000000 00000000"],
    ["::1", "00000000 00000000 00000000 00000001"],
    ["1::", "00010000 00000000 00000000 00000000"],
    ["1:2:3:4:5:6:7::", "00010002 00030004 00050006 00070000"],
    ["::2:3:4:5:6:7:8", "00000002 00030004 00050006 00070008"],
    ["1:2:3:4:5:6:7:8", "00010002 00030004 00050006 00070008"],
    ["fe80::a:b", "fe800000 00000000 00000000 000a000b"],
    ["::ffff:1.2.3.4", "00000000 00000000 0000ffff 01020304"],
    ["::1.2.3.4", "00000000 00000000 00000000 01020304"],
    ["64:ff9b::192.0.2.33", "0064ff9b 00000000 00000000 c0000221"],
    ["1:2:3:4:5:6:1.2.3.4", "00010002 00030004 00050006 01020304"],
    ["ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "ff".repeat(16)],
  ];
  for (const [text, bytes] of cases) {
    const out = new Uint8Array(20).fill(0xa5);
    assert.equal(ipv6ToBytes(text, out, 2), true, text);
    assert.deepEqual(out.subarray(2, 18), hex(bytes), text);
    assert.deepEqual([out[0], out[1], out[18], out[19]], [
      0xa5,
      0xa5,
      0xa5,
      0xa5,
    ]);
    assert.equal(isIPv6(text), true, text);
  }
});

Deno.test("ipv6ToBytes() rejects malformed text", () => {
  const bad = [
    "",
    ":",
    ":::",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "1::2::3",
    ":1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:",
    "1:2:3:4:5:6:7:8::",
    "::1:2:3:4:5:6:7:8",
    "1:::2",
    "12345::",
    "g::",
    "::ffff:1.2.3",
    "::ffff:256.1.1.1",
    "::ffff:01.2.3.4",
    "::1.2.3.4:5",
    "1:2:3:4:5:6:7:1.2.3.4",
    "1:2:3:4:5:6:7::1.2.3.4",
    "1.2.3.4",
    "fe80::1%eth0",
    "[::1]",
    "::1/128",
    " ::1",
    "::1 ",
    "::a.2.3.4",
  ];
  const out = new Uint8Array(16);
  for (const s of bad) {
    assert.equal(ipv6ToBytes(s, out, 0), false, JSON.stringify(s));
    assert.equal(isIPv6(s), false, JSON.stringify(s));
  }
});

Deno.test("ipv6FromBytes() produces the RFC 5952 canonical form", () => {
  const cases: [string, string][] = [
    // §4.2.1: the longest run is compressed.
    ["20010db8 00000000 00010000 00000001", "2001:db8::1:0:0:1"],
    // §4.1: leading zeros dropped.
    ["20010db8 00000000 00000000 00000001", "2001:db8::1"],
    ["00000000 00000000 00000000 00000000", "::"],
    ["00000000 00000000 00000000 00000001", "::1"],
    ["00010000 00000000 00000000 00000000", "1::"],
    // §4.2.2: a single zero group is not compressed.
    ["20010db8 00000001 00010001 00010001", "2001:db8:0:1:1:1:1:1"],
    ["00010002 00030004 00050006 00070000", "1:2:3:4:5:6:7:0"],
    ["00000001 00020003 00040005 00060007", "0:1:2:3:4:5:6:7"],
    // §4.2.3: the first of equal runs is compressed.
    ["20010db8 00000000 00010000 00000001", "2001:db8::1:0:0:1"],
    ["20010000 00000001 00000000 00010001", "2001::1:0:0:1:1"],
    ["20010db8 00000001 00000000 00000001", "2001:db8:0:1::1"],
    ["00000000 00010000 00000001 00000000", "::1:0:0:1:0:0"],
    // §4.3: lowercase.
    ["20010DB8 00000000 0000ABCD 00EF0000", "2001:db8::abcd:ef:0"],
    ["fe800000 00000000 02000aff fe0b0c0d", "fe80::200:aff:fe0b:c0d"],
    ["ffffffff ffffffff ffffffff ffffffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
    // §5: IPv4-mapped addresses in mixed notation.
    ["00000000 00000000 0000ffff 01020304", "::ffff:1.2.3.4"],
    // Not mapped (IPv4-compatible is deprecated, NAT64 not special-cased).
    ["00000000 00000000 00000000 01020304", "::102:304"],
    ["0064ff9b 00000000 00000000 c0000221", "64:ff9b::c000:221"],
    ["00000000 00000000 0001ffff 01020304", "::1:ffff:102:304"],
  ];
  for (const [bytes, text] of cases) {
    const b = new Uint8Array(19).fill(0xa5);
    b.set(hex(bytes), 3);
    assert.equal(ipv6FromBytes(b, 3), text, bytes);
  }
});

/** RFC 5952 written the slow, obvious way, to check the fast one against. */
function slowCanonical(b: Uint8Array): string {
  const groups: string[] = [];
  for (let g = 0; g < 8; g++) {
    groups.push(((b[g * 2]! << 8) | b[g * 2 + 1]!).toString(16));
  }
  for (let len = 8; len >= 2; len--) {
    for (let start = 0; start + len <= 8; start++) {
      if (groups.slice(start, start + len).every((x) => x === "0")) {
        return groups.slice(0, start).join(":") + "::" +
          groups.slice(start + len).join(":");
      }
    }
  }
  return groups.join(":");
}

Deno.test("ipv6FromBytes() and ipv6ToBytes() round-trip random addresses with zero runs", () => {
  let seed = 12345;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed >>> 16;
  };
  const b = new Uint8Array(16);
  const back = new Uint8Array(16);
  for (let n = 0; n < 5000; n++) {
    for (let g = 0; g < 8; g++) {
      const v = rnd() % 3 === 0 ? 0 : rnd() & (rnd() % 2 ? 0xffff : 0xff);
      b[g * 2] = v >> 8;
      b[g * 2 + 1] = v & 0xff;
    }
    const text = ipv6FromBytes(b, 0);
    assert.equal(ipv6ToBytes(text, back, 0), true, text);
    assert.deepEqual(back, b, text);
    assert.equal(text, slowCanonical(b), text);
  }
});

Deno.test("macToBytes() accepts colon and dash forms, any case", () => {
  const out = new Uint8Array(8).fill(0xa5);
  assert.equal(macToBytes("aa:bb:cc:dd:ee:ff", out, 1), true);
  assert.deepEqual(out, hex("a5 aabbccddeeff a5"));
  assert.equal(macToBytes("00-1B-2c-3D-4e-5F", out, 0), true);
  assert.deepEqual(out.subarray(0, 6), hex("001b2c3d4e5f"));
});

Deno.test("macToBytes() rejects malformed text", () => {
  const bad = [
    "",
    "aa:bb:cc:dd:ee",
    "aa:bb:cc:dd:ee:ff:00",
    "aa:bb:cc:dd:ee:f",
    "aa:bb-cc:dd:ee:ff",
    "aa.bb.cc.dd.ee.ff",
    "aabb.ccdd.eeff",
    "aa:bb:cc:dd:ee:fg",
    "a:bb:cc:dd:ee:fff",
    " aa:bb:cc:dd:ee:f",
  ];
  const out = new Uint8Array(6);
  for (const s of bad) {
    assert.equal(macToBytes(s, out, 0), false, JSON.stringify(s));
  }
});

Deno.test("macFromBytes() formats lowercase with colons", () => {
  assert.equal(macFromBytes(hex("ff 001B2C3D4E5F"), 1), "00:1b:2c:3d:4e:5f");
  assert.equal(macFromBytes(hex("000000000000"), 0), "00:00:00:00:00:00");
});

Deno.test("canonicalIp() gives one text per address: dotted quads as is, IPv6 in RFC 5952 form", () => {
  assert.equal(canonicalIp("192.0.2.1"), "192.0.2.1");
  assert.equal(canonicalIp("2001:DB8:0:0::1"), "2001:db8::1");
  assert.equal(canonicalIp("2001:db8::1"), "2001:db8::1");
  assert.equal(canonicalIp("::ffff:192.0.2.1"), canonicalIp("::ffff:c000:201"));
  for (const bad of ["", "10.1.2", "010.1.2.3", "2001:db8::/32", "fe80::1%eth0", "host"]) {
    assert.equal(canonicalIp(bad), undefined, bad);
  }
});
