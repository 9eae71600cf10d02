import assert from "node:assert/strict";
import { WireError } from "./errors.ts";
import {
  emitIpUdp,
  emitUdp,
  emitUdpHeader,
  ipUdpLength,
  parseIpUdp,
  parseUdpHeader,
  udpChecksum,
  type UdpHeader,
  udpHeaderLength,
  udpLength,
} from "./udp.ts";
import { ipv4PseudoHeaderSum, ipv6PseudoHeaderSum } from "./ip.ts";
import { ipv4ToBytes, ipv6ToBytes } from "./ip_text.ts";
import { hex } from "../tests/hex.ts";

function wireError(field: string): (e: unknown) => boolean {
  return (e: unknown) => {
    if (!(e instanceof WireError)) return false;
    assert.equal(e.field, field);
    return true;
  };
}

/**
 * Reference UDP checksum written differently from udp.ts: build the whole
 * pseudo-header + datagram (checksum field zeroed) as one byte array and
 * add it up with BigInt, then apply the RFC 768 zero rule.
 */
function slowUdpChecksum(src: string, dst: string, udp: Uint8Array): number {
  const v4 = src.includes(".") && !src.includes(":");
  const pseudo = new Uint8Array(v4 ? 12 : 40);
  if (v4) {
    assert.ok(ipv4ToBytes(src, pseudo, 0) && ipv4ToBytes(dst, pseudo, 4));
    pseudo[9] = 17;
    pseudo[10] = udp.length >> 8;
    pseudo[11] = udp.length & 0xff;
  } else {
    assert.ok(ipv6ToBytes(src, pseudo, 0) && ipv6ToBytes(dst, pseudo, 16));
    pseudo[34] = udp.length >> 8;
    pseudo[35] = udp.length & 0xff;
    pseudo[39] = 17;
  }
  const all = [...pseudo, ...udp];
  all[pseudo.length + 6] = 0;
  all[pseudo.length + 7] = 0;
  if (all.length % 2) all.push(0);
  let sum = 0n;
  for (let i = 0; i < all.length; i += 2) {
    sum += BigInt(all[i]! * 256 + all[i + 1]!);
  }
  while (sum >> 16n) sum = (sum & 0xffffn) + (sum >> 16n);
  const c = Number(~sum & 0xffffn);
  return c === 0 ? 0xffff : c;
}

// Hand-written packets; checksums computed independently (RFC 1071 by hand
// in Python, not by this code).
const udp4Bytes = "10f6" + // source port 4342
  "10f6" + // destination port 4342
  "000d" + // length 13
  "094c" + // checksum
  "4c49535021"; // "LISP!"

const ip4Packet = "45" + // version 4, IHL 5
  "00" + // TOS
  "0021" + // total length 33
  "0000" + // identification 0
  "4000" + // DF
  "40" + // TTL 64
  "11" + // UDP
  "26ca" + // header checksum
  "0a000001" + // 10.0.0.1
  "0a000002" + // 10.0.0.2
  udp4Bytes;

const udp6Bytes = "ee48" + // source port 61000
  "10f6" + // destination port 4342
  "0010" + // length 16
  "251a" + // checksum
  "8000000000000000"; // payload

const ip6Packet = "60000000" + // version 6, traffic class 0, flow label 0
  "0010" + // payload length 16
  "11" + // next header UDP
  "40" + // hop limit 64
  "20010db8000000000000000000000001" + // 2001:db8::1
  "20010db8000000000000000000000002" + // 2001:db8::2
  udp6Bytes;

const spec4 = {
  src: "10.0.0.1",
  dst: "10.0.0.2",
  srcPort: 4342,
  dstPort: 4342,
  payload: hex("4c49535021"),
};
const spec6 = {
  src: "2001:db8::1",
  dst: "2001:db8::2",
  srcPort: 61000,
  dstPort: 4342,
  payload: hex("8000000000000000"),
};

// --- header --------------------------------------------------------------

const header4: UdpHeader = {
  srcPort: 4342,
  dstPort: 4342,
  length: 13,
  checksum: 0x094c,
};

Deno.test("parseUdpHeader() decodes a hand-written header", () => {
  assert.deepEqual(parseUdpHeader(hex(udp4Bytes)), header4);
});

Deno.test("emitUdpHeader() writes the header verbatim into a 0xa5 buffer at an offset", () => {
  const buf = new Uint8Array(12).fill(0xa5);
  const out = emitUdpHeader(header4, buf, 2);
  assert.deepEqual(out, hex(udp4Bytes.slice(0, 16)));
  assert.deepEqual(buf, hex("a5a5 10f610f6000d094c a5a5"));
  assert.deepEqual(emitUdpHeader(header4), hex(udp4Bytes.slice(0, 16)));
  assert.equal(udpHeaderLength(header4), 8);
});

Deno.test("emitUdpHeader() then parseUdpHeader() round-trips", () => {
  const cases: UdpHeader[] = [
    header4,
    { srcPort: 0, dstPort: 0xffff, length: 8, checksum: 0 },
    { srcPort: 0xffff, dstPort: 1, length: 0xffff, checksum: 0xffff },
  ];
  for (const h of cases) {
    assert.deepEqual(parseUdpHeader(emitUdpHeader(h)), h);
    const buf = new Uint8Array(20).fill(0xa5);
    emitUdpHeader(h, buf, 5);
    assert.deepEqual(parseUdpHeader(buf.subarray(5)), h);
  }
});

Deno.test("emitUdpHeader() rejects misuse with RangeError", () => {
  const bad: UdpHeader[] = [
    { ...header4, srcPort: 0x10000 },
    { ...header4, dstPort: -1 },
    { ...header4, length: 7 },
    { ...header4, length: 0x10000 },
    { ...header4, checksum: 0x10000 },
  ];
  for (const h of bad) assert.throws(() => emitUdpHeader(h), RangeError);
});

Deno.test("parseUdpHeader() rejects a length below 8 and truncation", () => {
  assert.throws(
    () => parseUdpHeader(hex("10f6 10f6 0007 0000")),
    wireError("udp.length"),
  );
  const full = hex(udp4Bytes);
  for (let n = 0; n < 8; n++) {
    assert.throws(
      () => parseUdpHeader(full.subarray(0, n)),
      wireError("udp.header"),
      `length ${n}`,
    );
  }
});

// --- checksum ------------------------------------------------------------

Deno.test("udpChecksum() matches the hand-computed checksums and skips the checksum field", () => {
  const u4 = hex(udp4Bytes);
  const a4 = hex("0a000001 0a000002");
  assert.equal(
    udpChecksum(ipv4PseudoHeaderSum(a4, 0, 17, u4.length), u4, 0, u4.length),
    0x094c,
  );
  u4[6] = 0x12; // the field's content does not matter
  assert.equal(
    udpChecksum(ipv4PseudoHeaderSum(a4, 0, 17, u4.length), u4, 0, u4.length),
    0x094c,
  );
  const u6 = hex(udp6Bytes);
  const a6 = hex(ip6Packet.slice(16, 80));
  assert.equal(
    udpChecksum(ipv6PseudoHeaderSum(a6, 0, 17, u6.length), u6, 0, u6.length),
    0x251a,
  );
});

Deno.test("emitUdp() writes header, payload and checksum over IPv4 and IPv6", () => {
  for (const [spec, bytes] of [[spec4, udp4Bytes], [spec6, udp6Bytes]] as const) {
    const want = hex(bytes);
    const buf = new Uint8Array(want.length + 4).fill(0xa5);
    const out = emitUdp(spec, buf, 2);
    assert.deepEqual(out, want);
    assert.deepEqual([buf[0], buf[1], buf.at(-2), buf.at(-1)], [
      0xa5,
      0xa5,
      0xa5,
      0xa5,
    ]);
    assert.deepEqual(emitUdp(spec), want);
    assert.equal(udpLength(spec), want.length);
  }
});

Deno.test("emitUdp() sends a computed zero checksum as 0xffff", () => {
  const pairs = [["10.1.2.3", "10.3.2.1"], ["fe80::1", "ff02::2"]] as const;
  for (const [src, dst] of pairs) {
    // Choose the last two payload bytes so the one's complement sum is 0xffff.
    const payload = new Uint8Array(6);
    payload.set([1, 2, 3, 4]);
    const probe = emitUdp({ src, dst, srcPort: 1, dstPort: 2, payload });
    const c = probe[6]! * 256 + probe[7]!; // ~sum with the last word 0
    payload[4] = c >> 8;
    payload[5] = c & 0xff;
    const out = emitUdp({ src, dst, srcPort: 1, dstPort: 2, payload });
    assert.equal(slowUdpChecksum(src, dst, out), 0xffff);
    assert.deepEqual([out[6], out[7]], [0xff, 0xff]);
  }
});

Deno.test("emitUdp() agrees with a slow reference checksum on random datagrams", () => {
  let seed = 99;
  const rnd = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed >>> 24;
  };
  const addrs = [
    ["192.0.2.1", "198.51.100.77"],
    ["255.255.255.255", "0.0.0.0"],
    ["2001:db8::1", "2001:db8:ffff::abcd"],
    ["::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ] as const;
  for (let n = 0; n < 400; n++) {
    const [src, dst] = addrs[n % addrs.length]!;
    const payload = new Uint8Array(rnd() + (n % 3 === 0 ? 1000 : 0));
    for (let i = 0; i < payload.length; i++) payload[i] = rnd();
    const out = emitUdp({
      src,
      dst,
      srcPort: rnd() * 256 + rnd(),
      dstPort: rnd() * 256 + rnd(),
      payload,
    });
    assert.equal(out[6]! * 256 + out[7]!, slowUdpChecksum(src, dst, out));
  }
});

Deno.test("emitUdp() rejects bad or mixed addresses with TypeError", () => {
  const p = new Uint8Array(1);
  const base = { srcPort: 1, dstPort: 2, payload: p };
  assert.throws(() => emitUdp({ ...base, src: "10.0.0.1", dst: "::1" }), TypeError);
  assert.throws(() => emitUdp({ ...base, src: "::1", dst: "10.0.0.1" }), TypeError);
  assert.throws(() => emitUdp({ ...base, src: "x", dst: "10.0.0.1" }), TypeError);
  assert.throws(
    () => emitUdp({ ...base, src: "1.1.1.1", dst: "1.1.1.1", srcPort: 65536 }),
    RangeError,
  );
  assert.throws(
    () =>
      emitUdp({
        ...base,
        src: "1.1.1.1",
        dst: "1.1.1.1",
        payload: new Uint8Array(65528),
      }),
    RangeError,
  );
});

// --- IP + UDP ------------------------------------------------------------

Deno.test("emitIpUdp() builds the hand-written IPv4 and IPv6 packets at an offset", () => {
  for (const [spec, bytes] of [[spec4, ip4Packet], [spec6, ip6Packet]] as const) {
    const want = hex(bytes);
    const buf = new Uint8Array(want.length + 10).fill(0xa5);
    const out = emitIpUdp(spec, buf, 5);
    assert.deepEqual(out, want);
    assert.equal(out.buffer, buf.buffer);
    assert.deepEqual(buf.subarray(0, 5), hex("a5a5a5a5a5"));
    assert.deepEqual(buf.subarray(5 + want.length), hex("a5a5a5a5a5"));
    assert.deepEqual(emitIpUdp(spec), want);
    assert.equal(ipUdpLength(spec), want.length);
  }
});

Deno.test("emitIpUdp() sets the TTL or hop limit", () => {
  assert.equal(emitIpUdp({ ...spec4, ttl: 1 })[8], 1);
  assert.equal(emitIpUdp({ ...spec6, ttl: 255 })[7], 255);
  assert.throws(() => emitIpUdp({ ...spec4, ttl: 256 }), RangeError);
});

Deno.test("emitIpUdp() rejects mixed families and oversized packets", () => {
  assert.throws(() => emitIpUdp({ ...spec4, dst: "::1" }), TypeError);
  assert.throws(() => emitIpUdp({ ...spec6, src: "1.2.3.4" }), TypeError);
  assert.throws(() => emitIpUdp({ ...spec4, src: "1.2.3.4.5" }), TypeError);
  assert.throws(
    () => emitIpUdp({ ...spec4, payload: new Uint8Array(65535 - 28 + 1) }),
    RangeError,
  );
  // IPv6 counts only the payload length against 65535.
  assert.equal(
    emitIpUdp({ ...spec6, payload: new Uint8Array(65535 - 8) }).length,
    40 + 65535,
  );
  assert.throws(
    () => emitIpUdp({ ...spec4, payload: new Uint8Array(10) }, new Uint8Array(30)),
    RangeError,
  );
});

Deno.test("parseIpUdp() decodes the hand-written IPv4 packet", () => {
  const bytes = hex(ip4Packet);
  const p = parseIpUdp(bytes);
  assert.deepEqual(p.ip, {
    version: 4,
    tos: 0,
    totalLength: 33,
    identification: 0,
    dontFragment: true,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: 64,
    protocol: 17,
    checksum: 0x26ca,
    checksumOk: true,
    src: "10.0.0.1",
    dst: "10.0.0.2",
    options: new Uint8Array(0),
  });
  assert.deepEqual(p.udp, header4);
  assert.deepEqual(p.payload, hex("4c49535021"));
  assert.equal(p.payload.buffer, bytes.buffer); // a view, not a copy
  assert.equal(p.payload.byteOffset, 28);
  assert.equal(p.checksumOk, true);
});

Deno.test("parseIpUdp() decodes the hand-written IPv6 packet", () => {
  const p = parseIpUdp(hex(ip6Packet));
  assert.deepEqual(p.ip, {
    version: 6,
    trafficClass: 0,
    flowLabel: 0,
    payloadLength: 16,
    nextHeader: 17,
    hopLimit: 64,
    src: "2001:db8::1",
    dst: "2001:db8::2",
  });
  assert.deepEqual(p.udp, {
    srcPort: 61000,
    dstPort: 4342,
    length: 16,
    checksum: 0x251a,
  });
  assert.deepEqual(p.payload, hex("8000000000000000"));
  assert.equal(p.checksumOk, true);
});

Deno.test("parseIpUdp() accepts IPv4 options before the UDP header", () => {
  // IHL 6 with a Router Alert option; checksums computed independently.
  const bytes = hex(
    "46000025 00004000 401191c1 0a000001 0a000002 94040000" + udp4Bytes,
  );
  const p = parseIpUdp(bytes);
  assert.deepEqual(p.ip.version === 4 && p.ip.options, hex("94040000"));
  assert.deepEqual(p.payload, hex("4c49535021"));
  assert.equal(p.checksumOk, true);
});

Deno.test("parseIpUdp() reports bad checksums in checksumOk", () => {
  const corrupt = (packet: string, at: number) => {
    const b = hex(packet);
    assert.ok(at < b.length);
    b[at] = b[at]! ^ 0x01;
    return parseIpUdp(b).checksumOk;
  };
  assert.equal(corrupt(ip4Packet, 32), false); // payload byte
  assert.equal(corrupt(ip4Packet, 8), false); // TTL: IPv4 header checksum
  assert.equal(corrupt(ip4Packet, 12), false); // source address: both
  assert.equal(corrupt(ip6Packet, 50), false); // payload byte
  assert.equal(corrupt(ip6Packet, 8), false); // source address (pseudo-header)
  // A zero UDP checksum means "none" over IPv4, and is invalid over IPv6.
  const none4 = hex(ip4Packet);
  none4.fill(0, 26, 28);
  assert.equal(parseIpUdp(none4).checksumOk, true);
  const none6 = hex(ip6Packet);
  none6.fill(0, 46, 48);
  assert.equal(parseIpUdp(none6).checksumOk, false);
});

Deno.test("parseIpUdp() rejects inconsistent packets with WireError naming the field", () => {
  const v4 = (edit: (b: Uint8Array) => void) => {
    const b = hex(ip4Packet);
    edit(b);
    return b;
  };
  const v6 = (edit: (b: Uint8Array) => void) => {
    const b = hex(ip6Packet);
    edit(b);
    return b;
  };
  const table: [string, Uint8Array, string][] = [
    ["version 5", v4((b) => (b[0] = 0x55)), "ip.version"],
    ["version 0", v4((b) => (b[0] = 0x05)), "ip.version"],
    ["empty", new Uint8Array(0), "ip.version"],
    ["IPv4 carrying TCP", v4((b) => (b[9] = 6)), "ip.protocol"],
    ["IPv6 hop-by-hop header", v6((b) => (b[6] = 0)), "ip.protocol"],
    ["IPv6 carrying TCP", v6((b) => (b[6] = 6)), "ip.protocol"],
    ["IPv4 MF", v4((b) => (b[6] = 0x20)), "ipv4.flags"],
    ["IPv4 fragment offset", v4((b) => (b[7] = 1)), "ipv4.flags"],
    ["IPv4 total length too long", v4((b) => (b[3] = 34)), "ipv4.total-length"],
    ["IPv4 total length too short", v4((b) => (b[3] = 32)), "ipv4.total-length"],
    ["IPv4 IHL 4", v4((b) => (b[0] = 0x44)), "ipv4.ihl"],
    ["IPv6 payload length too long", v6((b) => (b[5] = 17)), "ipv6.payload-length"],
    ["IPv6 payload length too short", v6((b) => (b[5] = 15)), "ipv6.payload-length"],
    ["UDP length too long", v4((b) => (b[25] = 14)), "udp.length"],
    ["UDP length too short", v4((b) => (b[25] = 12)), "udp.length"],
    ["UDP length below 8", v6((b) => (b[45] = 7)), "udp.length"],
    ["IPv4 trailing bytes", hex(ip4Packet + "00"), "ipv4.total-length"],
    ["IPv6 trailing bytes", hex(ip6Packet + "00"), "ipv6.payload-length"],
    [
      "IPv4 with no room for UDP",
      hex("45000014 00004000 4011 0000 0a000001 0a000002"),
      "udp.header",
    ],
  ];
  for (const [name, bytes, field] of table) {
    assert.throws(() => parseIpUdp(bytes), wireError(field), name);
  }
});

Deno.test("parseIpUdp() throws WireError at every truncated length", () => {
  for (const packet of [ip4Packet, ip6Packet]) {
    const full = hex(packet);
    for (let n = 0; n < full.length; n++) {
      assert.throws(
        () => parseIpUdp(full.subarray(0, n)),
        WireError,
        `length ${n}`,
      );
    }
  }
});

Deno.test("emitIpUdp() then parseIpUdp() round-trips random packets", () => {
  let seed = 5;
  const rnd = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed >>> 24;
  };
  const addrs = [
    ["10.0.0.1", "192.168.255.254"],
    ["2001:db8::1:0:0:1", "::ffff:1.2.3.4"],
    ["fe80::1", "ff02::1:ff00:1"],
  ] as const;
  for (let n = 0; n < 200; n++) {
    const [src, dst] = addrs[n % addrs.length]!;
    const payload = new Uint8Array(rnd() + (n % 5 === 0 ? 700 : 0));
    for (let i = 0; i < payload.length; i++) payload[i] = rnd();
    const spec = {
      src,
      dst,
      srcPort: rnd() * 256 + rnd(),
      dstPort: 4342,
      ttl: rnd(),
      payload,
    };
    const buf = new Uint8Array(ipUdpLength(spec) + 6).fill(0xa5);
    const out = emitIpUdp(spec, buf, 3);
    const p = parseIpUdp(out);
    assert.equal(p.checksumOk, true);
    assert.equal(p.ip.src, src);
    assert.equal(p.ip.dst, dst);
    assert.equal(p.ip.version === 4 ? p.ip.ttl : p.ip.hopLimit, spec.ttl);
    assert.equal(p.udp.srcPort, spec.srcPort);
    assert.equal(p.udp.dstPort, 4342);
    assert.deepEqual(p.payload, payload);
    const udp = out.subarray(p.ip.version === 4 ? 20 : 40);
    assert.equal(p.udp.checksum, slowUdpChecksum(src, dst, udp));
  }
});
