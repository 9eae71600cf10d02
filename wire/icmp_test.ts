import assert from "node:assert/strict";
import { WireError } from "./errors.ts";
import {
  emitIcmpTooBig,
  icmpErrorAllowed,
  type IcmpTooBig,
  icmpTooBigLength,
  ICMPV4_ERROR_MAX_LENGTH,
  ICMPV6_ERROR_MAX_LENGTH,
  parseIcmpTooBig,
  TOO_BIG_HEADROOM_V4,
  TOO_BIG_HEADROOM_V6,
  writeTooBigReply,
} from "./icmp.ts";
import { emitIpUdp } from "./udp.ts";
import { hex, toHex } from "../tests/hex.ts";

function wireError(field: string): (e: unknown) => boolean {
  return (e: unknown) => {
    if (!(e instanceof WireError)) return false;
    assert.equal(e.field, field);
    return true;
  };
}

// Hand-written packets; checksums computed independently (RFC 1071 in
// Python's struct, not by this code).

/** 10.2.0.10 tells 10.1.0.10 its 1500-byte DF packet needs MTU 1400. */
const v4Error = `
  45c0 0044 0000 0000 4001 65e3 0a02000a 0a01000a  # IPv4: TOS 0xc0, length 68, ICMP, checksum
  03 04 12f0 0000 0578                             # type 3 code 4, checksum, unused, MTU 1400
  450005dc 12344000 3f110fc7 0a01000a 0a02000a     # the quoted IPv4 header (DF, UDP)
  9c40 1e61 05c8 0000                              # its UDP header
  0102030405060708090a0b0c                         # 12 bytes of its payload
`;

/** fd00:2::10 tells fd00:1::10 its packet needs MTU 1400. */
const v6Error = `
  60000000 0040 3a 40                              # IPv6: payload 64, ICMPv6, hop limit 64
  fd000002000000000000000000000010                 # src fd00:2::10
  fd000001000000000000000000000010                 # dst fd00:1::10
  02 00 ab65 00000578                              # type 2 code 0, checksum, MTU 1400
  60000000 05ac 11 3f                              # the quoted IPv6 header (UDP)
  fd000001000000000000000000000010
  fd000002000000000000000000000010
  9c40 1e61 05ac 1111                              # its UDP header
  0102030405060708                                 # 8 bytes of its payload
`;

const v4Record: IcmpTooBig = {
  version: 4,
  src: "10.2.0.10",
  dst: "10.1.0.10",
  ttl: 64,
  mtu: 1400,
  quote: hex(v4Error).slice(28),
};

const v6Record: IcmpTooBig = {
  version: 6,
  src: "fd00:2::10",
  dst: "fd00:1::10",
  ttl: 64,
  mtu: 1400,
  quote: hex(v6Error).slice(48),
};

Deno.test("parseIcmpTooBig() decodes a hand-written ICMPv4 fragmentation-needed and ICMPv6 packet-too-big", () => {
  assert.deepEqual(parseIcmpTooBig(hex(v4Error)), { ...v4Record, checksumOk: true });
  assert.deepEqual(parseIcmpTooBig(hex(v6Error)), { ...v6Record, checksumOk: true });
});

Deno.test("emitIcmpTooBig() writes the hand-written packets byte for byte into a 0xa5 buffer at an offset", () => {
  for (const [x, want] of [[v4Record, v4Error], [v6Record, v6Error]] as const) {
    const buf = new Uint8Array(icmpTooBigLength(x) + 7).fill(0xa5);
    const out = emitIcmpTooBig(x, buf, 3);
    assert.equal(toHex(out), toHex(hex(want)));
    assert.equal(out.byteOffset, 3);
    assert.deepEqual([...buf.subarray(0, 3)], [0xa5, 0xa5, 0xa5]);
    assert.deepEqual([...buf.subarray(buf.length - 4)], [0xa5, 0xa5, 0xa5, 0xa5]);
    assert.equal(toHex(emitIcmpTooBig(x)), toHex(hex(want)));
  }
});

Deno.test("emitIcmpTooBig() then parseIcmpTooBig() round-trips random errors", () => {
  let seed = 11;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let i = 0; i < 300; i++) {
    const v4 = rnd(2) === 0;
    const quote = new Uint8Array(rnd(v4 ? 548 : 1232));
    for (let k = 0; k < quote.length; k++) quote[k] = rnd(256);
    const x: IcmpTooBig = v4
      ? {
        version: 4,
        src: `10.${rnd(256)}.${rnd(256)}.${rnd(256)}`,
        dst: `192.0.2.${rnd(256)}`,
        ttl: rnd(256),
        mtu: rnd(0x10000),
        quote,
      }
      : {
        version: 6,
        src: `fd00:${rnd(0x10000).toString(16)}::${rnd(0x10000).toString(16)}`,
        dst: `2001:db8::${rnd(0x10000).toString(16)}`,
        ttl: rnd(256),
        mtu: rnd(0x10000) * 0x10000 + rnd(0x10000),
        quote,
      };
    const bytes = emitIcmpTooBig(x);
    assert.equal(bytes.length, icmpTooBigLength(x));
    assert.deepEqual(parseIcmpTooBig(bytes), { ...x, checksumOk: true }, `case ${i}`);
  }
});

Deno.test("parseIcmpTooBig() reports bad IPv4 header and ICMP checksums in checksumOk", () => {
  const cases: [string, string, number][] = [
    ["IPv4 header", v4Error, 8],
    ["ICMPv4 quote", v4Error, 60],
    ["ICMPv6 MTU", v6Error, 47],
    ["ICMPv6 pseudo-header (source)", v6Error, 20],
  ];
  for (const [what, packet, at] of cases) {
    const b = hex(packet);
    b[at]! ^= 0x01;
    assert.equal(parseIcmpTooBig(b).checksumOk, false, what);
  }
});

Deno.test("parseIcmpTooBig() rejects what is not a too-big error with WireError naming the field", () => {
  const v4 = (edit: (b: Uint8Array) => void) => {
    const b = hex(v4Error);
    edit(b);
    return b;
  };
  const v6 = (edit: (b: Uint8Array) => void) => {
    const b = hex(v6Error);
    edit(b);
    return b;
  };
  const table: [string, Uint8Array, string][] = [
    ["empty", new Uint8Array(0), "ip.version"],
    ["version 5", v4((b) => (b[0] = 0x55)), "ip.version"],
    ["IPv4 carrying UDP", v4((b) => (b[9] = 17)), "ip.protocol"],
    ["IPv6 carrying UDP", v6((b) => (b[6] = 17)), "ip.protocol"],
    ["IPv6 hop-by-hop header", v6((b) => (b[6] = 0)), "ip.protocol"],
    ["IPv4 MF", v4((b) => (b[6] = 0x20)), "ipv4.flags"],
    ["IPv4 total length too long", v4((b) => (b[3] = 0x45)), "ipv4.total-length"],
    ["IPv4 trailing byte", hex(v4Error + "00"), "ipv4.total-length"],
    ["IPv6 payload length too short", v6((b) => (b[5] = 0x3f)), "ipv6.payload-length"],
    ["ICMPv4 echo request", v4((b) => (b[20] = 8)), "icmp.type"],
    ["ICMPv4 port unreachable", v4((b) => (b[21] = 3)), "icmp.type"],
    ["ICMPv6 time exceeded", v6((b) => (b[40] = 3)), "icmp.type"],
    ["ICMPv6 code 1", v6((b) => (b[41] = 1)), "icmp.type"],
    [
      "IPv4 with no room for ICMP",
      hex("45c00016 00000000 40010000 0a02000a 0a01000a 0304"),
      "icmp.header",
    ],
  ];
  for (const [name, bytes, field] of table) {
    assert.throws(() => parseIcmpTooBig(bytes), wireError(field), name);
  }
});

Deno.test("parseIcmpTooBig() throws WireError at every truncated length", () => {
  for (const packet of [v4Error, v6Error]) {
    const full = hex(packet);
    for (let n = 0; n < full.length; n++) {
      assert.throws(() => parseIcmpTooBig(full.subarray(0, n)), WireError, `length ${n}`);
    }
  }
});

Deno.test("emitIcmpTooBig() rejects misuse with RangeError or TypeError", () => {
  assert.throws(() => emitIcmpTooBig({ ...v4Record, mtu: 0x10000 }), RangeError);
  assert.throws(() => emitIcmpTooBig({ ...v6Record, mtu: -1 }), RangeError);
  assert.throws(() => emitIcmpTooBig({ ...v4Record, ttl: 256 }), RangeError);
  assert.throws(() => emitIcmpTooBig({ ...v4Record, src: "fd00::1" }), TypeError);
  assert.throws(() => emitIcmpTooBig({ ...v6Record, dst: "10.0.0.1" }), TypeError);
  assert.throws(() => emitIcmpTooBig(v4Record, new Uint8Array(10)), RangeError);
});

/** A packet of `len` bytes (IP/UDP) at offset `off` of a 0xa5 buffer, with DF for IPv4. */
function packetAt(src: string, dst: string, len: number, off: number): Uint8Array {
  const v4 = !src.includes(":");
  const payload = new Uint8Array(len - (v4 ? 28 : 48));
  for (let k = 0; k < payload.length; k++) payload[k] = k * 7;
  const p = emitIpUdp({ src, dst, srcPort: 40000, dstPort: 7777, payload });
  if (v4) {
    p[6]! |= 0x40; // DF (the header checksum is not looked at here)
  }
  const buf = new Uint8Array(off + len + 16).fill(0xa5);
  buf.set(p, off);
  return buf;
}

Deno.test("writeTooBigReply() answers in place from the destination to the source, quoting what fits", () => {
  const cases = [
    ["10.1.0.10", "10.2.0.10", 1500, 1364, ICMPV4_ERROR_MAX_LENGTH, TOO_BIG_HEADROOM_V4],
    ["10.1.0.10", "10.2.0.10", 100, 68, 128, TOO_BIG_HEADROOM_V4],
    ["fd00:1::10", "fd00:2::10", 1500, 1344, ICMPV6_ERROR_MAX_LENGTH, TOO_BIG_HEADROOM_V6],
    ["fd00:1::10", "fd00:2::10", 200, 70000, 248, TOO_BIG_HEADROOM_V6],
  ] as const;
  for (const [src, dst, len, mtu, replyLen, head] of cases) {
    const off = 64;
    const buf = packetAt(src, dst, len, off);
    const original = buf.slice(off, off + len);
    assert.equal(icmpErrorAllowed(buf, off, len), true);
    const n = writeTooBigReply(buf, off, len, mtu);
    assert.equal(n, replyLen, `${src} ${len}`);
    assert.deepEqual([...buf.subarray(0, off - head)], new Array(off - head).fill(0xa5));
    assert.deepEqual(buf.slice(off, off + len), original, "the packet itself is untouched");
    const got = parseIcmpTooBig(buf.subarray(off - head, off - head + n));
    assert.deepEqual(got, {
      version: src.includes(":") ? 6 : 4,
      src: dst,
      dst: src,
      ttl: 64,
      mtu,
      quote: original.slice(0, n - head),
      checksumOk: true,
    });
  }
});

Deno.test("icmpErrorAllowed() refuses ICMP errors, later fragments and sources nobody answers to", () => {
  const v4 = (edit: (b: Uint8Array) => void, proto = 1, type = 8) => {
    const b = packetAt("10.1.0.10", "10.2.0.10", 100, 0);
    b[9] = proto;
    b[20] = type;
    edit(b);
    return b;
  };
  const v6 = (edit: (b: Uint8Array) => void, type = 128) => {
    const b = packetAt("fd00:1::10", "fd00:2::10", 100, 0);
    b[6] = 58;
    b[40] = type;
    edit(b);
    return b;
  };
  const none = () => {};
  const table: [string, Uint8Array, number, boolean][] = [
    ["IPv4 UDP", v4(none, 17), 100, true],
    ["ICMPv4 echo request", v4(none), 100, true],
    ["ICMPv4 destination unreachable", v4(none, 1, 3), 100, false],
    ["ICMPv4 time exceeded", v4(none, 1, 11), 100, false],
    ["IPv4 first fragment", v4((b) => (b[6] = 0x60), 17), 100, true],
    ["IPv4 later fragment", v4((b) => (b[7] = 0xb9), 17), 100, false],
    ["IPv4 from 0.0.0.0", v4((b) => b.fill(0, 12, 16), 17), 100, false],
    ["IPv4 from multicast", v4((b) => (b[12] = 239), 17), 100, false],
    ["IPv4 from broadcast", v4((b) => b.fill(255, 12, 16), 17), 100, false],
    ["IPv4 shorter than its header", v4(none, 17), 19, false],
    ["IPv4 IHL past the end", v4((b) => (b[0] = 0x4f), 17), 40, false],
    ["ICMPv6 echo request", v6(none), 100, true],
    ["ICMPv6 packet too big", v6(none, 2), 100, false],
    ["ICMPv6 destination unreachable", v6(none, 1), 100, false],
    ["IPv6 from ::", v6((b) => b.fill(0, 8, 24)), 100, false],
    ["IPv6 from multicast", v6((b) => (b[8] = 0xff)), 100, false],
    ["IPv6 shorter than its header", v6(none), 39, false],
    ["version 5", v4((b) => (b[0] = 0x55)), 100, false],
  ];
  for (const [name, bytes, len, want] of table) {
    assert.equal(icmpErrorAllowed(bytes, 0, len), want, name);
  }
});

Deno.test("writeTooBigReply() refuses to write before the start of the buffer (misuse)", () => {
  const b = packetAt("10.1.0.10", "10.2.0.10", 100, 10);
  assert.throws(() => writeTooBigReply(b, 10, 100, 1400), RangeError);
});
