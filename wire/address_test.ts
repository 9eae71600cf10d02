import assert from "node:assert/strict";
import {
  addressLength,
  addressToString,
  AFI,
  afiOf,
  emitAddress,
  ipAddress,
  LCAF_TYPE,
  maxMaskLen,
  NO_ADDRESS,
  parseAddress,
  readAddress,
  writeAddress,
} from "./address.ts";
import type { Address, ElpHop } from "./address.ts";
import { Reader, Writer } from "./cursor.ts";
import { WireError } from "./errors.ts";
import { prng, randomAddress, Rng } from "../tests/wire_gen.ts";
import { hex } from "../tests/hex.ts";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Asserts that `fn` throws a WireError for `field` (and at `offset`, when given). */
function throwsWire(fn: () => unknown, field: string, offset?: number): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof WireError, `expected WireError, got ${e}`);
    assert.equal(e.field, field);
    if (offset !== undefined) assert.equal(e.offset, offset, `offset of ${field}`);
    return true;
  });
}

/** Asserts that `fn` either returns or throws a WireError, never anything else. */
function onlyWireErrors(fn: () => unknown, what: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof WireError, `${what}: expected WireError, got ${e}`);
  }
}

/** Emits into a 0xa5-filled buffer at `offset` and checks the bytes around it are untouched. */
function emitAt(a: Address, offset: number, slack = 5): Uint8Array {
  const len = addressLength(a);
  const buf = new Uint8Array(offset + len + slack).fill(0xa5);
  const out = emitAddress(a, buf, offset);
  assert.equal(out.length, len);
  assert.equal(out.buffer, buf.buffer, "emits into the given buffer");
  assert.equal(out.byteOffset, offset);
  for (let i = 0; i < offset; i++) assert.equal(buf[i], 0xa5, `byte ${i} before`);
  for (let i = offset + len; i < buf.length; i++) assert.equal(buf[i], 0xa5, `byte ${i} after`);
  return out;
}

const v4 = (ip: string): Address => ({ kind: "ipv4", ip });
const v6 = (ip: string): Address => ({ kind: "ipv6", ip });

// ---------------------------------------------------------------------------
// Fixtures: hand-written from the RFC 8060 diagrams (and IANA AFNs)
// ---------------------------------------------------------------------------

const IPV6_DB8_1 = "20010db8000000000000000000000001"; // 2001:db8::1
const IPV6_DB8_2 = "20010db8000000000000000000000002"; // 2001:db8::2
const IPV6_DB8_3 = "20010db8000000000000000000000003"; // 2001:db8::3
const IPV6_DB8_4 = "20010db8000000000000000000000004"; // 2001:db8::4

const fixtures: { name: string; bytes: string; address: Address }[] = [
  {
    name: "AFI 0 (no address)",
    bytes: "0000", // AFI = 0, no address bytes
    address: { kind: "none" },
  },
  {
    name: "IPv4",
    bytes: "0001" + // AFI = 1 (IPv4)
      "c0000201", // 192.0.2.1
    address: v4("192.0.2.1"),
  },
  {
    name: "IPv6",
    bytes: "0002" + // AFI = 2 (IPv6)
      IPV6_DB8_1, // 2001:db8::1
    address: v6("2001:db8::1"),
  },
  {
    name: "MAC",
    bytes: "4005" + // AFI = 16389 (48-bit MAC)
      "001122aabbcc", // 00:11:22:aa:bb:cc
    address: { kind: "mac", mac: "00:11:22:aa:bb:cc" },
  },
  {
    name: "distinguished name",
    bytes: "0011" + // AFI = 17 (distinguished name)
      "7874722d31" + // "xtr-1"
      "00", // NUL terminator
    address: { kind: "dn", name: "xtr-1" },
  },
  {
    name: "empty distinguished name",
    bytes: "0011" + // AFI = 17
      "00", // NUL only
    address: { kind: "dn", name: "" },
  },
  {
    name: "LCAF type 1 AFI list (IPv4, IPv6, DN)",
    bytes: "4003" + // AFI = 16387 (LCAF)
      "00" + // Rsvd1
      "00" + // Flags
      "01" + // Type = 1 (AFI List)
      "00" + // Rsvd2
      "0020" + // Length = 6 + 18 + 8 = 32
      "0001" + "c0000201" + // AFI = 1, 192.0.2.1
      "0002" + IPV6_DB8_1 + // AFI = 2, 2001:db8::1
      "0011" + "7274722d61" + "00", // AFI = 17, "rtr-a", NUL
    address: {
      kind: "afi-list",
      list: [v4("192.0.2.1"), v6("2001:db8::1"), { kind: "dn", name: "rtr-a" }],
    },
  },
  {
    name: "LCAF type 2 Instance ID",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "02" + // Type = 2 (Instance ID)
      "00" + // IID mask-len = 0
      "000a" + // Length = 4 + 6
      "00000007" + // Instance ID = 7
      "0001" + "0a010000", // AFI = 1, 10.1.0.0
    address: { kind: "iid", iid: 7, iidMaskLen: 0, address: v4("10.1.0.0") },
  },
  {
    name: "LCAF type 2 Instance ID range (IID mask-len 16, AFI 0)",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "02" + // Type = 2
      "10" + // IID mask-len = 16
      "0006" + // Length = 4 + 2
      "00ab0000" + // Instance ID = 0x00ab0000
      "0000", // AFI = 0 (no address)
    address: { kind: "iid", iid: 0xab0000, iidMaskLen: 16, address: NO_ADDRESS },
  },
  {
    name: "LCAF type 2 Instance ID with all 32 bits and IPv6",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "02" + // Type = 2
      "00" + // IID mask-len = 0
      "0016" + // Length = 4 + 18
      "ffffffff" + // Instance ID = 0xffffffff
      "0002" + IPV6_DB8_1, // AFI = 2, 2001:db8::1
    address: { kind: "iid", iid: 0xffffffff, iidMaskLen: 0, address: v6("2001:db8::1") },
  },
  {
    name: "LCAF type 3 AS number",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "03" + // Type = 3 (AS Number)
      "00" + // Rsvd2
      "000a" + // Length = 4 + 6
      "0000fc00" + // AS Number = 64512
      "0001" + "c6336400", // AFI = 1, 198.51.100.0
    address: { kind: "as", asn: 64512, address: v4("198.51.100.0") },
  },
  {
    name: "LCAF type 4 application data",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "04" + // Type = 4 (Application Data)
      "00" + // Rsvd2
      "0012" + // Length = 12 + 6
      "0abcde" + // IP TOS, IPv6 TC, or Flow Label (24 bits) = 0x0abcde
      "11" + // Protocol = 17 (UDP)
      "03e8" + "07d0" + // Local Port lower 1000, upper 2000
      "0035" + "0036" + // Remote Port lower 53, upper 54
      "0001" + "c000020a", // AFI = 1, 192.0.2.10
    address: {
      kind: "app-data",
      tos: 0x0abcde,
      protocol: 17,
      localPortLow: 1000,
      localPortHigh: 2000,
      remotePortLow: 53,
      remotePortHigh: 54,
      address: v4("192.0.2.10"),
    },
  },
  {
    name: "LCAF type 5 geo-coordinates (north, west, below sea level)",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "05" + // Type = 5 (Geo Coordinates)
      "00" + // Rsvd2
      "0012" + // Length = 12 + 6
      "8029" + // N=1, Latitude Degrees = 41
      "17" + "0a" + // Minutes = 23, Seconds = 10
      "0002" + // E=0 (west), Longitude Degrees = 2
      "09" + "2d" + // Minutes = 9, Seconds = 45
      "fffffff4" + // Altitude = -12 (two's complement)
      "0001" + "c0000201", // AFI = 1, 192.0.2.1
    address: {
      kind: "geo",
      north: true,
      latDegrees: 41,
      latMinutes: 23,
      latSeconds: 10,
      east: false,
      lonDegrees: 2,
      lonMinutes: 9,
      lonSeconds: 45,
      altitude: -12,
      address: v4("192.0.2.1"),
    },
  },
  {
    name: "LCAF type 5 geo-coordinates (south, east, no altitude)",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "05" + // Type = 5
      "00" + // Rsvd2
      "000e" + // Length = 12 + 2
      "0021" + // N=0 (south), Latitude Degrees = 33
      "3b" + "00" + // Minutes = 59, Seconds = 0
      "8097" + // E=1, Longitude Degrees = 151
      "0c" + "3b" + // Minutes = 12, Seconds = 59
      "7fffffff" + // Altitude = 0x7fffffff ("no altitude")
      "0000", // AFI = 0
    address: {
      kind: "geo",
      north: false,
      latDegrees: 33,
      latMinutes: 59,
      latSeconds: 0,
      east: true,
      lonDegrees: 151,
      lonMinutes: 12,
      lonSeconds: 59,
      altitude: 0x7fffffff,
      address: NO_ADDRESS,
    },
  },
  {
    name: "LCAF type 7 NAT traversal with two RTRs",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "07" + // Type = 7 (NAT-Traversal)
      "00" + // Rsvd2
      "002e" + // Length = 4 + 6 + 6 + 6 + 6 + 18 = 46
      "10f6" + // MS UDP Port Number = 4342
      "ee48" + // ETR UDP Port Number = 61000
      "0001" + "cb007105" + // Global ETR RLOC = 203.0.113.5
      "0001" + "c0000232" + // MS RLOC = 192.0.2.50
      "0001" + "0a000002" + // Private ETR RLOC = 10.0.0.2
      "0001" + "c6336401" + // RTR RLOC 1 = 198.51.100.1
      "0002" + IPV6_DB8_2, // RTR RLOC 2 = 2001:db8::2
    address: {
      kind: "nat",
      msPort: 4342,
      etrPort: 61000,
      globalEtr: v4("203.0.113.5"),
      ms: v4("192.0.2.50"),
      privateEtr: v4("10.0.0.2"),
      rtrs: [v4("198.51.100.1"), v6("2001:db8::2")],
    },
  },
  {
    name: "LCAF type 7 NAT traversal without RTRs",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "07" + // Type = 7
      "00" + // Rsvd2
      "0016" + // Length = 4 + 6 + 6 + 6 = 22
      "10f6" + // MS UDP Port = 4342
      "10f6" + // ETR UDP Port = 4342
      "0001" + "cb007105" + // Global ETR RLOC = 203.0.113.5
      "0001" + "c0000232" + // MS RLOC = 192.0.2.50
      "0001" + "cb007105", // Private ETR RLOC = 203.0.113.5 (no NAT)
    address: {
      kind: "nat",
      msPort: 4342,
      etrPort: 4342,
      globalEtr: v4("203.0.113.5"),
      ms: v4("192.0.2.50"),
      privateEtr: v4("203.0.113.5"),
      rtrs: [],
    },
  },
  {
    name: "LCAF type 8 nonce locator",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "08" + // Type = 8 (Nonce Locator)
      "00" + // Rsvd2
      "000a" + // Length = 4 + 6
      "00" + // Reserved
      "abcdef" + // Nonce (24 bits)
      "0001" + "c0000201", // AFI = 1, 192.0.2.1
    address: { kind: "nonce", nonce: 0xabcdef, address: v4("192.0.2.1") },
  },
  {
    name: "LCAF type 9 multicast info with R and J",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "09" + // Type = 9 (Multicast Info)
      "05" + // Rsvd2 (5 bits) = 0, R=1, L=0, J=1
      "0014" + // Length = 8 + 6 + 6
      "00000005" + // Instance-ID = 5
      "0000" + // Reserved
      "18" + // Source MaskLen = 24
      "20" + // Group MaskLen = 32
      "0001" + "0a010100" + // AFI = 1, source 10.1.1.0
      "0001" + "e9fc0001", // AFI = 1, group 233.252.0.1
    address: {
      kind: "mcast",
      iid: 5,
      r: true,
      l: false,
      j: true,
      sourceMaskLen: 24,
      groupMaskLen: 32,
      source: v4("10.1.1.0"),
      group: v4("233.252.0.1"),
    },
  },
  {
    name: "LCAF type 9 multicast info with L only, (*,G)",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "09" + // Type = 9
      "02" + // R=0, L=1, J=0
      "001c" + // Length = 8 + 2 + 18 = 28
      "00000000" + // Instance-ID = 0
      "0000" + // Reserved
      "00" + // Source MaskLen = 0
      "80" + // Group MaskLen = 128
      "0000" + // AFI = 0, any source
      "0002" + "ff0e0000000000000000000000000001", // AFI = 2, group ff0e::1
    address: {
      kind: "mcast",
      iid: 0,
      r: false,
      l: true,
      j: false,
      sourceMaskLen: 0,
      groupMaskLen: 128,
      source: NO_ADDRESS,
      group: v6("ff0e::1"),
    },
  },
  {
    name: "LCAF type 10 explicit locator path, one flag per hop",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "0a" + // Type = 10 (ELP)
      "00" + // Rsvd2
      "0024" + // Length = (2 + 6) + (2 + 6) + (2 + 18) = 36
      "0004" + // Rsvd3 = 0, L=1, P=0, S=0
      "0001" + "c0000201" + // AFI = 1, Reencap Hop 1 = 192.0.2.1
      "0002" + // L=0, P=1, S=0
      "0001" + "c0000202" + // AFI = 1, Reencap Hop 2 = 192.0.2.2
      "0001" + // L=0, P=0, S=1
      "0002" + IPV6_DB8_3, // AFI = 2, Reencap Hop 3 = 2001:db8::3
    address: {
      kind: "elp",
      hops: [
        { lookup: true, probe: false, strict: false, address: v4("192.0.2.1") },
        { lookup: false, probe: true, strict: false, address: v4("192.0.2.2") },
        { lookup: false, probe: false, strict: true, address: v6("2001:db8::3") },
      ],
    },
  },
  {
    name: "LCAF type 12 source/dest key",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "0c" + // Type = 12 (Source/Dest Key)
      "00" + // Rsvd2
      "0010" + // Length = 4 + 6 + 6
      "0000" + // Reserved
      "08" + // Source-ML = 8
      "18" + // Dest-ML = 24
      "0001" + "0a000000" + // AFI = 1, Source-Prefix 10.0.0.0
      "0001" + "c0000200", // AFI = 1, Destination-Prefix 192.0.2.0
    address: {
      kind: "src-dst",
      sourceMaskLen: 8,
      destMaskLen: 24,
      source: v4("10.0.0.0"),
      dest: v4("192.0.2.0"),
    },
  },
  {
    name: "LCAF type 13 replication list",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "0d" + // Type = 13 (Replication List Entry)
      "00" + // Rsvd2
      "0020" + // Length = (4 + 6) + (4 + 18) = 32
      "0000" + "00" + // Rsvd3, Rsvd4
      "00" + // Level Value = 0
      "0001" + "c0000201" + // AFI = 1, RTR/ETR #1 = 192.0.2.1
      "0000" + "00" + // Rsvd3, Rsvd4
      "01" + // Level Value = 1
      "0002" + IPV6_DB8_4, // AFI = 2, RTR/ETR #2 = 2001:db8::4
    address: {
      kind: "rle",
      entries: [
        { level: 0, address: v4("192.0.2.1") },
        { level: 1, address: v6("2001:db8::4") },
      ],
    },
  },
  {
    name: "LCAF type 14 JSON text without address (AFI 0)",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "0e" + // Type = 14 (JSON Data Model)
      "00" + // Rsvd2 = 0, B=0 (text)
      "000b" + // Length = 2 + 7 + 2
      "0007" + // JSON length = 7
      "7b2261223a317d" + // {"a":1}
      "0000", // AFI = 0, no address
    address: { kind: "json", binary: false, json: '{"a":1}', address: NO_ADDRESS },
  },
  {
    name: "LCAF type 14 JSON text with address",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "0e" + // Type = 14
      "00" + // B=0
      "000f" + // Length = 2 + 7 + 6
      "0007" + // JSON length = 7
      "7b2261223a317d" + // {"a":1}
      "0001" + "c0000201", // AFI = 1, 192.0.2.1
    address: { kind: "json", binary: false, json: '{"a":1}', address: v4("192.0.2.1") },
  },
  {
    name: "LCAF type 14 JSON binary with address",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "0e" + // Type = 14
      "01" + // Rsvd2 = 0, B=1 (binary)
      "000b" + // Length = 2 + 3 + 6
      "0003" + // JSON length = 3
      "a16161" + // binary JSON bytes
      "0001" + "c0000209", // AFI = 1, 192.0.2.9
    address: {
      kind: "json",
      binary: true,
      json: "",
      data: hex("a16161"),
      address: v4("192.0.2.9"),
    },
  },
  {
    name: "LCAF type 14 JSON binary without address",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "0e" + // Type = 14
      "01" + // B=1
      "0007" + // Length = 2 + 3 + 2
      "0003" + // JSON length = 3
      "010203" + // binary JSON bytes
      "0000", // AFI = 0
    address: { kind: "json", binary: true, json: "", data: hex("010203"), address: NO_ADDRESS },
  },
  {
    name: "LCAF type 15 key/value pair",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "0f" + // Type = 15 (Key/Value Address Pair)
      "00" + // Rsvd2
      "000e" + // Length = 8 + 6
      "0011" + "636f6c6f72" + "00" + // AFI = 17, key "color", NUL
      "0001" + "c0000201", // AFI = 1, value 192.0.2.1
    address: {
      kind: "kv",
      key: { kind: "dn", name: "color" },
      value: v4("192.0.2.1"),
    },
  },
  {
    name: "LCAF of unknown type 200 with rsvd1, flags and rsvd2 kept",
    bytes: "4003" + // AFI = 16387
      "12" + // Rsvd1 = 0x12
      "34" + // Flags = 0x34
      "c8" + // Type = 200
      "56" + // Rsvd2 = 0x56
      "0004" + // Length = 4
      "deadbeef", // body
    address: {
      kind: "lcaf",
      type: 200,
      rsvd1: 0x12,
      flags: 0x34,
      rsvd2: 0x56,
      body: hex("deadbeef"),
    },
  },
  {
    name: "LCAF type 11 security key kept as raw bytes",
    bytes: "4003" + // AFI = 16387
      "00" + // Rsvd1
      "80" + // Flags = 0x80
      "0b" + // Type = 11 (Security Key)
      "00" + // Rsvd2
      "000e" + // Length = 14
      "01" + "00" + "0009" + // Key Count 1, Rsvd3, Key Algorithm/Rsvd4/R
      "0002" + "abcd" + // Key Length 2, Key Material
      "0001" + "c0000201", // AFI = 1, Locator Address 192.0.2.1
    address: {
      kind: "lcaf",
      type: 11,
      rsvd1: 0,
      flags: 0x80,
      rsvd2: 0,
      body: hex("010000090002abcd0001c0000201"),
    },
  },
  {
    name: "LCAF type 0 null body kept as raw",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "00" + // Type = 0 (Null Body)
      "00" + // Rsvd2
      "0000", // Length = 0
    address: { kind: "lcaf", type: 0, rsvd1: 0, flags: 0, rsvd2: 0, body: new Uint8Array(0) },
  },
  {
    name: "nested: Instance ID containing a source/dest key",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "02" + // Type = 2 (Instance ID)
      "00" + // IID mask-len
      "001c" + // Length = 4 + 24
      "00000009" + // Instance ID = 9
      "4003" + // AFI = 16387 (inner LCAF)
      "00" + "00" + // Rsvd1, Flags
      "0c" + // Type = 12 (Source/Dest Key)
      "00" + // Rsvd2
      "0010" + // Length = 16
      "0000" + "08" + "18" + // Reserved, Source-ML 8, Dest-ML 24
      "0001" + "0a000000" + // source 10.0.0.0
      "0001" + "c0000200", // dest 192.0.2.0
    address: {
      kind: "iid",
      iid: 9,
      iidMaskLen: 0,
      address: {
        kind: "src-dst",
        sourceMaskLen: 8,
        destMaskLen: 24,
        source: v4("10.0.0.0"),
        dest: v4("192.0.2.0"),
      },
    },
  },
  {
    name: "nested: ELP hop whose address is an Instance ID",
    bytes: "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "0a" + // Type = 10 (ELP)
      "00" + // Rsvd2
      "001c" + // Length = (2 + 18) + (2 + 6) = 28
      "0005" + // hop 1: L=1, P=0, S=1
      "4003" + // AFI = 16387
      "00" + "00" + // Rsvd1, Flags
      "02" + "00" + // Type = 2, IID mask-len 0
      "000a" + // Length = 10
      "00000003" + // Instance ID = 3
      "0001" + "c0000201" + // 192.0.2.1
      "0000" + // hop 2: no flags
      "0001" + "c0000202", // 192.0.2.2
    address: {
      kind: "elp",
      hops: [
        {
          lookup: true,
          probe: false,
          strict: true,
          address: { kind: "iid", iid: 3, iidMaskLen: 0, address: v4("192.0.2.1") },
        },
        { lookup: false, probe: false, strict: false, address: v4("192.0.2.2") },
      ],
    },
  },
];

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

for (const f of fixtures) {
  Deno.test(`parseAddress() decodes the ${f.name} fixture`, () => {
    assert.deepStrictEqual(parseAddress(hex(f.bytes)), f.address);
  });

  Deno.test(`emitAddress() writes the ${f.name} fixture byte for byte`, () => {
    const bytes = hex(f.bytes);
    assert.equal(addressLength(f.address), bytes.length);
    assert.equal(toHex(emitAddress(f.address)), toHex(bytes));
    assert.equal(toHex(emitAt(f.address, 7)), toHex(bytes));
  });

  Deno.test(`parseAddress() rejects the ${f.name} fixture truncated at every byte`, () => {
    const bytes = hex(f.bytes);
    for (let n = 0; n < bytes.length; n++) {
      assert.throws(
        () => parseAddress(bytes.subarray(0, n)),
        (e: unknown) => e instanceof WireError,
        `truncated to ${n} bytes`,
      );
    }
  });
}

Deno.test("the fixtures cover every AFI and every modelled LCAF type", () => {
  const afis = new Set<number>();
  const lcafTypes = new Set<number>();
  const visit = (a: Address): void => {
    afis.add(afiOf(a));
    const b = emitAddress(a);
    if (afiOf(a) === AFI.LCAF) lcafTypes.add(b[4]!);
  };
  for (const f of fixtures) visit(f.address);
  for (const afi of [AFI.NONE, AFI.IPV4, AFI.IPV6, AFI.MAC, AFI.DN, AFI.LCAF]) {
    assert.ok(afis.has(afi), `AFI ${afi}`);
  }
  for (
    const t of [
      LCAF_TYPE.AFI_LIST,
      LCAF_TYPE.INSTANCE_ID,
      LCAF_TYPE.AS_NUMBER,
      LCAF_TYPE.APPLICATION_DATA,
      LCAF_TYPE.GEO,
      LCAF_TYPE.NAT_TRAVERSAL,
      LCAF_TYPE.NONCE_LOCATOR,
      LCAF_TYPE.MULTICAST_INFO,
      LCAF_TYPE.ELP,
      LCAF_TYPE.SECURITY_KEY,
      LCAF_TYPE.SOURCE_DEST_KEY,
      LCAF_TYPE.RLE,
      LCAF_TYPE.JSON,
      LCAF_TYPE.KEY_VALUE,
      200,
    ]
  ) {
    assert.ok(lcafTypes.has(t), `LCAF type ${t}`);
  }
});

// ---------------------------------------------------------------------------
// Bit positions
// ---------------------------------------------------------------------------

Deno.test("emitAddress() puts the multicast-info R, L and J bits in the low bits of Rsvd2", () => {
  const base = {
    kind: "mcast" as const,
    iid: 0,
    r: false,
    l: false,
    j: false,
    sourceMaskLen: 0,
    groupMaskLen: 0,
    source: NO_ADDRESS,
    group: NO_ADDRESS,
  };
  const cases: [Partial<typeof base>, number][] = [
    [{}, 0x00],
    [{ r: true }, 0x04],
    [{ l: true }, 0x02],
    [{ j: true }, 0x01],
    [{ r: true, l: true, j: true }, 0x07],
  ];
  for (const [flags, rsvd2] of cases) {
    const a = { ...base, ...flags };
    const b = emitAddress(a);
    assert.equal(b[5], rsvd2, JSON.stringify(flags));
    assert.equal(b[2], 0, "Rsvd1");
    assert.equal(b[3], 0, "Flags");
    assert.deepStrictEqual(parseAddress(b), a);
  }
});

Deno.test("parseAddress() ignores the reserved high bits of the multicast-info Rsvd2", () => {
  const a = parseAddress(hex(
    "4003" + "0000" + "09" + "f8" + // Type 9, Rsvd2 = 0xf8 (reserved bits only)
      "000c" + "00000001" + "ffff" + "0000" + // IID 1, Reserved = 0xffff, masks 0
      "0000" + "0000", // AFI 0, AFI 0
  ));
  assert.equal(a.kind, "mcast");
  if (a.kind === "mcast") assert.deepStrictEqual([a.r, a.l, a.j], [false, false, false]);
});

Deno.test("emitAddress() puts each ELP hop's L, P and S bits in the low bits of Rsvd3", () => {
  const cases: [Partial<ElpHop>, string][] = [
    [{}, "0000"],
    [{ lookup: true }, "0004"],
    [{ probe: true }, "0002"],
    [{ strict: true }, "0001"],
    [{ lookup: true, probe: true, strict: true }, "0007"],
  ];
  for (const [flags, rsvd3] of cases) {
    const hop: ElpHop = {
      lookup: false,
      probe: false,
      strict: false,
      address: v4("192.0.2.1"),
      ...flags,
    };
    const a: Address = { kind: "elp", hops: [hop] };
    const b = emitAddress(a);
    assert.equal(toHex(b.subarray(8, 10)), rsvd3, JSON.stringify(flags));
    assert.deepStrictEqual(parseAddress(b), a);
  }
});

Deno.test("parseAddress() ignores the reserved bits of an ELP hop's Rsvd3", () => {
  const a = parseAddress(hex(
    "4003" + "0000" + "0a" + "00" + "0008" + // ELP, Length 8
      "fff8" + "0001" + "c0000201", // Rsvd3 all ones, L=P=S=0
  ));
  assert.deepStrictEqual(a, {
    kind: "elp",
    hops: [{ lookup: false, probe: false, strict: false, address: v4("192.0.2.1") }],
  });
});

Deno.test("emitAddress() sets the JSON B bit in the low bit of Rsvd2 only when binary", () => {
  const text = emitAddress({ kind: "json", binary: false, json: "{}", address: NO_ADDRESS });
  const bin = emitAddress({
    kind: "json",
    binary: true,
    json: "",
    data: hex("00"),
    address: NO_ADDRESS,
  });
  assert.equal(text[5], 0x00);
  assert.equal(bin[5], 0x01);
});

Deno.test("emitAddress() sends the IID mask-len in Rsvd2 of the Instance ID LCAF", () => {
  const b = emitAddress({ kind: "iid", iid: 0x01000000, iidMaskLen: 8, address: NO_ADDRESS });
  assert.equal(toHex(b), "4003" + "0000" + "02" + "08" + "0006" + "01000000" + "0000");
});

Deno.test("emitAddress() writes the geo N and E bits as the top bit of the degrees", () => {
  const b = emitAddress({
    kind: "geo",
    north: true,
    latDegrees: 0x7fff,
    latMinutes: 0,
    latSeconds: 0,
    east: true,
    lonDegrees: 0,
    lonMinutes: 0,
    lonSeconds: 0,
    altitude: -1,
    address: NO_ADDRESS,
  });
  assert.equal(toHex(b.subarray(8, 20)), "ffff0000" + "80000000" + "ffffffff");
});

// ---------------------------------------------------------------------------
// Lenient parse, unknown LCAFs
// ---------------------------------------------------------------------------

Deno.test("parseAddress() rejects a JSON LCAF whose body ends before the AFI field", () => {
  const bytes = hex(
    "4003" + "0000" + "0e" + "00" + // JSON, B=0
      "0004" + // Length = 2 + 2 (no AFI field)
      "0002" + "7b7d", // JSON length 2, "{}"
  );
  // Accepting it would re-encode 2 bytes longer than parsed (RFC 8060 always
  // has the AFI, 0 for no address): an AFI list of many such LCAFs then
  // parsed but could not be emitted.
  assert.throws(
    () => parseAddress(bytes),
    (e) => e instanceof WireError && e.field === "address.lcaf.json.address.afi",
  );
});

Deno.test("parseAddress() decodes UTF-8 JSON text and emitAddress() encodes it back", () => {
  const a: Address = { kind: "json", binary: false, json: '{"é":"€"}', address: NO_ADDRESS };
  const b = emitAddress(a);
  // {"é":"€"} is 7 ASCII bytes + 2 (é) + 3 (€) = 12 bytes.
  assert.equal(toHex(b.subarray(8, 10)), "000c");
  assert.deepStrictEqual(parseAddress(b), a);
});

// Regression (fuzz_test.ts / _testing.ts generators): TextDecoder dropped a
// leading byte-order mark, so this text did not survive emit -> parse.
Deno.test("parseAddress() keeps a leading U+FEFF in JSON LCAF text, so it round-trips", () => {
  const bytes = hex(
    "4003" + "0000" + "0e" + "00" + // JSON, B=0
      "0009" + // Length = 2 + 5 + 2
      "0005" + "efbbbf7b7d" + // JSON length 5: U+FEFF then "{}"
      "0000", // AFI 0
  );
  const a = parseAddress(bytes);
  assert.deepStrictEqual(a, { kind: "json", binary: false, json: "\ufeff{}", address: NO_ADDRESS });
  assert.equal(toHex(emitAddress(a)), toHex(bytes));
});

// Regression (fuzz_test.ts): invalid UTF-8 used to decode lossily to U+FFFD
// (3 bytes each), so emit wrote other bytes, and with enough of them threw
// a RangeError (LCAF over 65535 bytes) for a message parse had accepted.
Deno.test("parseAddress() rejects JSON LCAF text that is not valid UTF-8 with WireError", () => {
  throwsWire(
    () =>
      parseAddress(hex(
        "4003" + "0000" + "0e" + "00" + // JSON, B=0
          "0006" + // Length = 2 + 2 + 2
          "0002" + "c328" + // JSON length 2: 0xc3 starts a 2-byte sequence, 0x28 does not continue it
          "0000", // AFI 0
      )),
    "address.lcaf.json.data",
    10,
  );
  const n = 22_000; // 22,000 bytes 0xff would become 66,000 bytes of U+FFFD
  const big = new Uint8Array(8 + 2 + n + 2);
  big.set([0x40, 0x03, 0, 0, LCAF_TYPE.JSON, 0, (n + 4) >> 8, (n + 4) & 0xff, n >> 8, n & 0xff]);
  big.fill(0xff, 10, 10 + n);
  throwsWire(() => parseAddress(big), "address.lcaf.json.data", 10);
  // The same bytes with the B bit (binary JSON) are kept as they are.
  big[5] = 0x01;
  const a = parseAddress(big);
  assert.ok(a.kind === "json" && a.binary && a.data?.length === n);
  assert.equal(toHex(emitAddress(a)), toHex(big));
});

Deno.test("parseAddress() keeps an unknown LCAF's body as a copy, not a view of the input", () => {
  const bytes = hex("4003" + "000000" + "63" + "0002" + "abcd"); // type 99 ... rsvd2 0x63
  const a = parseAddress(bytes);
  assert.equal(a.kind, "lcaf");
  bytes[8] = 0;
  if (a.kind === "lcaf") {
    assert.equal(a.type, 0);
    assert.equal(a.rsvd2, 0x63);
    assert.equal(toHex(a.body), "abcd");
  }
});

Deno.test("an unknown LCAF inside an Instance ID round-trips", () => {
  const a: Address = {
    kind: "iid",
    iid: 1,
    iidMaskLen: 0,
    address: { kind: "lcaf", type: 250, rsvd1: 1, flags: 2, rsvd2: 3, body: hex("0102") },
  };
  const b = emitAddress(a);
  assert.equal(toHex(b.subarray(12)), "4003" + "01" + "02" + "fa" + "03" + "0002" + "0102");
  assert.deepStrictEqual(parseAddress(b), a);
});

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

/** Builds N Instance-ID LCAFs nested around an IPv4 address. */
function nestedIids(n: number): Uint8Array {
  let inner = hex("0001" + "c0000201");
  for (let i = 0; i < n; i++) {
    const out = new Uint8Array(12 + inner.length);
    out.set(hex("4003" + "0000" + "02" + "00"), 0);
    new DataView(out.buffer).setUint16(6, 4 + inner.length);
    out.set(hex("00000001"), 8);
    out.set(inner, 12);
    inner = out;
  }
  return inner;
}

const bad: { name: string; bytes: string | Uint8Array; field: string; offset: number }[] = [
  { name: "an empty buffer", bytes: "", field: "address.afi", offset: 0 },
  { name: "a one-byte AFI", bytes: "00", field: "address.afi", offset: 0 },
  { name: "unknown AFI 3", bytes: "0003" + "01020304", field: "address.afi", offset: 0 },
  { name: "unknown AFI 99", bytes: "0063", field: "address.afi", offset: 0 },
  {
    name: "unknown AFI 99 inside an Instance ID",
    bytes: "4003" + "0000" + "02" + "00" + "0006" + "00000001" + "0063",
    field: "address.lcaf.iid.address.afi",
    offset: 12,
  },
  {
    name: "unknown AFI 3 as the second item of an AFI list",
    bytes: "4003" + "0000" + "01" + "00" + "0008" + "0001" + "c0000201" + "0003",
    field: "address.lcaf.afi-list[1].afi",
    offset: 14,
  },
  {
    name: "unknown AFI 3 as an ELP hop",
    bytes: "4003" + "0000" + "0a" + "00" + "0004" + "0000" + "0003",
    field: "address.lcaf.elp.hop[0].address.afi",
    offset: 10,
  },
  {
    name: "a truncated IPv4 address",
    bytes: "0001" + "c00002",
    field: "address.ipv4",
    offset: 2,
  },
  {
    name: "a truncated IPv6 address",
    bytes: "0002" + "20010db8",
    field: "address.ipv6",
    offset: 2,
  },
  { name: "a truncated MAC address", bytes: "4005" + "0011", field: "address.mac", offset: 2 },
  {
    name: "a distinguished name without NUL",
    bytes: "0011" + "616263",
    field: "address.dn",
    offset: 2,
  },
  {
    name: "a distinguished name whose NUL lies past the LCAF length",
    bytes: "4003" + "0000" + "02" + "00" + "0007" + "00000001" + "0011" + "61" + // Length 7
      "00", // the NUL, one byte past the LCAF
    field: "address.lcaf.iid.address.dn",
    offset: 14,
  },
  {
    name: "an LCAF header cut after Rsvd1",
    bytes: "4003" + "00",
    field: "address.lcaf.flags",
    offset: 3,
  },
  {
    name: "an LCAF header without its Length",
    bytes: "4003" + "0000" + "02" + "00",
    field: "address.lcaf.length",
    offset: 6,
  },
  {
    name: "an LCAF length larger than the data",
    bytes: "4003" + "0000" + "02" + "00" + "0020" + "00000001" + "0001" + "c0000201",
    field: "address.lcaf.length",
    offset: 6,
  },
  {
    name: "an LCAF length larger than its enclosing LCAF",
    bytes: "4003" + "0000" + "02" + "00" + "000e" + "00000001" + // outer IID, length 14
      "4003" + "0000" + "03" + "00" + "000a" + // inner AS, length 10 > 6 left in outer
      "00000001" + "0000", // (4 + 2 bytes)
    field: "address.lcaf.iid.address.lcaf.length",
    offset: 18,
  },
  {
    name: "an LCAF length shorter than its contents",
    bytes: "4003" + "0000" + "02" + "00" + "0008" + "00000001" + "0001" + "c0000201",
    field: "address.lcaf.iid.address.ipv4",
    offset: 14,
  },
  {
    name: "an LCAF length that cuts the second address of a source/dest key",
    bytes: "4003" + "0000" + "0c" + "00" + "000a" + "00000818" + "0001" + "0a000000" +
      "0001" + "c0000200",
    field: "address.lcaf.src-dst.dest.afi",
    offset: 18,
  },
  {
    name: "an LCAF length longer than its contents",
    bytes: "4003" + "0000" + "02" + "00" + "000c" + "00000001" + "0001" + "c0000201" + "0000",
    field: "address.lcaf.length",
    offset: 6,
  },
  {
    name: "a key/value LCAF with bytes after the value",
    bytes: "4003" + "0000" + "0f" + "00" + "0006" + "0000" + "0000" + "ffff",
    field: "address.lcaf.length",
    offset: 6,
  },
  {
    name: "an Instance ID LCAF too short for the Instance ID",
    bytes: "4003" + "0000" + "02" + "00" + "0002" + "0000",
    field: "address.lcaf.iid",
    offset: 8,
  },
  {
    name: "a JSON length larger than the LCAF body",
    bytes: "4003" + "0000" + "0e" + "00" + "0006" + "0008" + "7b7d" + "0000",
    field: "address.lcaf.json.data",
    offset: 10,
  },
  {
    name: "a NAT LCAF without the private ETR RLOC",
    bytes: "4003" + "0000" + "07" + "00" + "0008" + "10f6" + "10f6" + "0000" + "0000",
    field: "address.lcaf.nat.private-etr.afi",
    offset: 16,
  },
  {
    name: "an RLE entry cut in its reserved bytes",
    bytes: "4003" + "0000" + "0d" + "00" + "0002" + "0000",
    field: "address.lcaf.rle.entry[0].reserved",
    offset: 8,
  },
  {
    name: "an ELP hop cut in its flags",
    bytes: "4003" + "0000" + "0a" + "00" + "0001" + "00",
    field: "address.lcaf.elp.hop[0].flags",
    offset: 8,
  },
  {
    name: "trailing bytes after the address",
    bytes: "0001" + "c0000201" + "ff",
    field: "address",
    offset: 6,
  },
  {
    name: "Instance IDs nested 9 deep",
    bytes: nestedIids(9),
    field: "address" + ".lcaf.iid.address".repeat(8) + ".lcaf",
    offset: 8 * 12,
  },
];

for (const c of bad) {
  Deno.test(`parseAddress() rejects ${c.name}`, () => {
    const bytes = typeof c.bytes === "string" ? hex(c.bytes) : c.bytes;
    throwsWire(() => parseAddress(bytes), c.field, c.offset);
  });
}

Deno.test("parseAddress() accepts Instance IDs nested 8 deep", () => {
  let a = parseAddress(nestedIids(8));
  for (let i = 0; i < 8; i++) {
    assert.equal(a.kind, "iid");
    if (a.kind === "iid") a = a.address;
  }
  assert.deepStrictEqual(a, v4("192.0.2.1"));
});

Deno.test("readAddress() names its errors after the field it is given", () => {
  throwsWire(
    () => readAddress(new Reader(hex("0003")), "map-request.source-eid"),
    "map-request.source-eid.afi",
    0,
  );
});

Deno.test("parseAddress() throws only WireError for any body length under a fixed-up LCAF header", () => {
  for (const f of fixtures) {
    const full = hex(f.bytes);
    if (afiOf(f.address) !== AFI.LCAF) continue;
    const bodyLen = full.length - 8;
    for (let n = 0; n < bodyLen; n++) {
      const b = full.slice(0, 8 + n);
      new DataView(b.buffer).setUint16(6, n);
      onlyWireErrors(() => parseAddress(b), `${f.name} body cut to ${n}`);
    }
  }
});

Deno.test("parseAddress() throws only WireError on 20,000 mutated fixtures", () => {
  const rand = prng(0x5eed);
  for (let i = 0; i < 20_000; i++) {
    const f = fixtures[Math.floor(rand() * fixtures.length)]!;
    const b = hex(f.bytes);
    const flips = 1 + Math.floor(rand() * 3);
    for (let k = 0; k < flips; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    const cut = rand() < 0.3 ? Math.floor(rand() * (b.length + 1)) : b.length;
    onlyWireErrors(() => parseAddress(b.subarray(0, cut)), `${f.name} #${i}`);
  }
});

Deno.test("parseAddress() throws only WireError on 20,000 random LCAF-shaped buffers", () => {
  const rand = prng(42);
  for (let i = 0; i < 20_000; i++) {
    const n = Math.floor(rand() * 40);
    const b = new Uint8Array(8 + n);
    for (let k = 0; k < b.length; k++) b[k] = Math.floor(rand() * 256);
    b[0] = 0x40;
    b[1] = 0x03;
    b[4] = Math.floor(rand() * 17); // types 0..16
    new DataView(b.buffer).setUint16(6, rand() < 0.8 ? n : Math.floor(rand() * 65536));
    onlyWireErrors(() => parseAddress(b), `random #${i}`);
  }
});

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

for (const f of fixtures) {
  Deno.test(`parseAddress(emitAddress(x)) equals x for the ${f.name} fixture`, () => {
    assert.deepStrictEqual(parseAddress(emitAddress(f.address)), f.address);
    assert.deepStrictEqual(parseAddress(emitAt(f.address, 3)), f.address);
  });
}

Deno.test("parseAddress(emitAddress(x)) equals x for 2,000 random nested addresses", () => {
  const rng = new Rng(2024);
  for (let i = 0; i < 2_000; i++) {
    const a = randomAddress(rng, 4);
    const offset = rng.int(9);
    const b = emitAt(a, offset);
    assert.equal(b.length, addressLength(a), `length #${i}`);
    assert.deepStrictEqual(parseAddress(b), a, `#${i} ${toHex(b)}`);
  }
});

Deno.test("readAddress() and writeAddress() compose inside a larger buffer", () => {
  const a: Address = { kind: "iid", iid: 5, iidMaskLen: 0, address: v4("10.0.0.0") };
  const b = v6("2001:db8::1");
  const buf = new Uint8Array(1 + addressLength(a) + addressLength(b)).fill(0xa5);
  const w = new Writer(buf, 1);
  writeAddress(w, a);
  writeAddress(w, b);
  assert.equal(w.pos, buf.length);
  const r = new Reader(buf, 1);
  assert.deepStrictEqual(readAddress(r), a);
  assert.deepStrictEqual(readAddress(r), b);
  assert.equal(r.remaining, 0);
});

Deno.test("emitAddress() without a buffer returns a buffer of exactly addressLength() bytes", () => {
  for (const f of fixtures) {
    const b = emitAddress(f.address);
    assert.equal(b.byteOffset, 0);
    assert.equal(b.buffer.byteLength, addressLength(f.address));
  }
});

// ---------------------------------------------------------------------------
// Emit misuse
// ---------------------------------------------------------------------------

Deno.test("emitAddress() throws TypeError for address text it cannot encode", () => {
  const cases: Address[] = [
    v4("10.0.0.256"),
    v4("1.2.3"),
    v4("01.2.3.4"),
    v4("2001:db8::1"),
    v6("2001:db8::g"),
    v6("10.0.0.1"),
    { kind: "mac", mac: "00:11:22:33:44" },
    { kind: "iid", iid: 1, iidMaskLen: 0, address: v4("bad") },
  ];
  for (const a of cases) assert.throws(() => emitAddress(a), TypeError, JSON.stringify(a));
});

Deno.test("emitAddress() throws RangeError for values out of range", () => {
  const geo = {
    kind: "geo" as const,
    north: true,
    latDegrees: 0,
    latMinutes: 0,
    latSeconds: 0,
    east: true,
    lonDegrees: 0,
    lonMinutes: 0,
    lonSeconds: 0,
    altitude: 0,
    address: NO_ADDRESS,
  };
  const app = {
    kind: "app-data" as const,
    tos: 0,
    protocol: 0,
    localPortLow: 0,
    localPortHigh: 0,
    remotePortLow: 0,
    remotePortHigh: 0,
    address: NO_ADDRESS,
  };
  const raw = { kind: "lcaf" as const, type: 200, rsvd1: 0, flags: 0, rsvd2: 0, body: hex("") };
  const cases: Address[] = [
    { kind: "iid", iid: -1, iidMaskLen: 0, address: NO_ADDRESS },
    { kind: "iid", iid: 2 ** 32, iidMaskLen: 0, address: NO_ADDRESS },
    { kind: "iid", iid: 1.5, iidMaskLen: 0, address: NO_ADDRESS },
    { kind: "iid", iid: 1, iidMaskLen: 256, address: NO_ADDRESS },
    { kind: "as", asn: 2 ** 32, address: NO_ADDRESS },
    { kind: "nonce", nonce: 2 ** 24, address: NO_ADDRESS },
    { ...geo, latDegrees: 0x8000 },
    { ...geo, lonMinutes: 256 },
    { ...geo, altitude: 2 ** 31 },
    { ...geo, altitude: -(2 ** 31) - 1 },
    { ...app, tos: 2 ** 24 },
    { ...app, localPortHigh: 65536 },
    { ...app, remotePortLow: -1 },
    {
      kind: "nat",
      msPort: 65536,
      etrPort: 0,
      globalEtr: NO_ADDRESS,
      ms: NO_ADDRESS,
      privateEtr: NO_ADDRESS,
      rtrs: [],
    },
    {
      kind: "mcast",
      iid: 0,
      r: false,
      l: false,
      j: false,
      sourceMaskLen: 256,
      groupMaskLen: 0,
      source: NO_ADDRESS,
      group: NO_ADDRESS,
    },
    {
      kind: "src-dst",
      sourceMaskLen: 0,
      destMaskLen: 300,
      source: NO_ADDRESS,
      dest: NO_ADDRESS,
    },
    { kind: "rle", entries: [{ level: 256, address: NO_ADDRESS }] },
    { ...raw, type: 256 },
    { ...raw, rsvd1: 256 },
    { ...raw, flags: -1 },
    { ...raw, rsvd2: 0x100 },
    { ...raw, body: new Uint8Array(65536) },
    { kind: "dn", name: "a\u0000b" },
    { kind: "dn", name: "\u20ac" },
    {
      kind: "json",
      binary: true,
      json: "",
      data: new Uint8Array(65536),
      address: NO_ADDRESS,
    },
  ];
  for (const a of cases) {
    assert.throws(() => emitAddress(a), RangeError, `${a.kind} ${JSON.stringify(a).slice(0, 80)}`);
  }
});

Deno.test("emitAddress() throws RangeError when the buffer is too small or the offset is bad", () => {
  const a = v4("192.0.2.1");
  assert.throws(() => emitAddress(a, new Uint8Array(5)), RangeError);
  assert.throws(() => emitAddress(a, new Uint8Array(10), 5), RangeError);
  assert.throws(() => emitAddress(a, new Uint8Array(10), -1), RangeError);
  assert.throws(() => emitAddress(a, new Uint8Array(10), 1.5), RangeError);
  assert.equal(toHex(emitAddress(a, new Uint8Array(10), 4)), "0001c0000201");
});

// ---------------------------------------------------------------------------
// Helpers: ipAddress, afiOf, maxMaskLen, addressToString
// ---------------------------------------------------------------------------

Deno.test("ipAddress() builds IPv4 and normalises IPv6 to RFC 5952 text", () => {
  assert.deepStrictEqual(ipAddress("10.0.0.1"), v4("10.0.0.1"));
  assert.deepStrictEqual(ipAddress("2001:DB8:0:0:0:0:0:1"), v6("2001:db8::1"));
  assert.deepStrictEqual(
    ipAddress("2001:0db8:0000:0000:0001:0000:0000:0001"),
    v6("2001:db8::1:0:0:1"),
  );
  assert.deepStrictEqual(ipAddress("::FFFF:192.0.2.1"), v6("::ffff:192.0.2.1"));
  assert.deepStrictEqual(ipAddress("::"), v6("::"));
  assert.deepStrictEqual(ipAddress("fe80:0:0:0:0:0:0:0"), v6("fe80::"));
});

Deno.test("ipAddress() throws TypeError for text that is not an IP address", () => {
  for (
    const t of ["", "nope", "01.2.3.4", "1.2.3.4.5", "2001:db8::1::2", "[::1]", "fe80::1%eth0"]
  ) {
    assert.throws(() => ipAddress(t), TypeError, t);
  }
});

Deno.test("afiOf() gives the AFI an address is carried under", () => {
  assert.equal(afiOf(NO_ADDRESS), 0);
  assert.equal(afiOf(v4("10.0.0.1")), 1);
  assert.equal(afiOf(v6("::1")), 2);
  assert.equal(afiOf({ kind: "dn", name: "x" }), 17);
  assert.equal(afiOf({ kind: "mac", mac: "00:00:00:00:00:00" }), 16389);
  assert.equal(afiOf({ kind: "iid", iid: 1, iidMaskLen: 0, address: NO_ADDRESS }), 16387);
  assert.equal(
    afiOf({ kind: "lcaf", type: 9, rsvd1: 0, flags: 0, rsvd2: 0, body: hex("") }),
    16387,
  );
});

Deno.test("maxMaskLen() gives the prefix length bound of each family", () => {
  assert.equal(maxMaskLen(v4("10.0.0.0")), 32);
  assert.equal(maxMaskLen(v6("::")), 128);
  assert.equal(maxMaskLen({ kind: "mac", mac: "00:00:00:00:00:00" }), 48);
  assert.equal(maxMaskLen({ kind: "iid", iid: 1, iidMaskLen: 0, address: v6("::") }), 128);
  assert.equal(maxMaskLen(NO_ADDRESS), 0);
  assert.equal(maxMaskLen({ kind: "dn", name: "x" }), 0);
});

Deno.test("addressToString() gives short text for logs", () => {
  const cases: [Address, string][] = [
    [NO_ADDRESS, "-"],
    [v4("10.0.0.1"), "10.0.0.1"],
    [v6("2001:db8::1"), "2001:db8::1"],
    [{ kind: "mac", mac: "00:11:22:33:44:55" }, "00:11:22:33:44:55"],
    [{ kind: "dn", name: "xtr-1" }, "dn:xtr-1"],
    [{ kind: "iid", iid: 5, iidMaskLen: 0, address: v4("10.0.0.0") }, "[5]10.0.0.0"],
    [{ kind: "as", asn: 64512, address: v4("10.0.0.0") }, "as64512:10.0.0.0"],
    [{ kind: "afi-list", list: [v4("10.0.0.1"), v6("::1")] }, "{10.0.0.1,::1}"],
    [
      {
        kind: "src-dst",
        sourceMaskLen: 8,
        destMaskLen: 24,
        source: v4("10.0.0.0"),
        dest: v4("192.0.2.0"),
      },
      "(10.0.0.0/8,192.0.2.0/24)",
    ],
    [
      fixtures.find((f) => f.name.includes("one flag per hop"))!.address,
      "elp{192.0.2.1,192.0.2.2,2001:db8::3}",
    ],
    [
      fixtures.find((f) => f.name === "LCAF type 13 replication list")!.address,
      "rle{192.0.2.1,2001:db8::4}",
    ],
    [
      fixtures.find((f) => f.name.includes("NAT traversal with two RTRs"))!.address,
      "nat{203.0.113.5:61000}",
    ],
    [{ kind: "nonce", nonce: 1, address: v4("192.0.2.1") }, "192.0.2.1"],
    [
      fixtures.find((f) => f.name.includes("multicast info with R and J"))!.address,
      "[5](10.1.1.0,233.252.0.1)",
    ],
    [{ kind: "json", binary: false, json: "{}", address: v4("192.0.2.1") }, "json:192.0.2.1"],
    [{ kind: "kv", key: { kind: "dn", name: "k" }, value: v4("192.0.2.1") }, "dn:k=192.0.2.1"],
    [{ kind: "lcaf", type: 200, rsvd1: 0, flags: 0, rsvd2: 0, body: hex("") }, "lcaf200"],
  ];
  for (const [a, s] of cases) assert.equal(addressToString(a), s);
  assert.match(
    addressToString(fixtures.find((f) => f.name.startsWith("LCAF type 5"))!.address),
    /^geo:/,
  );
  assert.match(
    addressToString(fixtures.find((f) => f.name.startsWith("LCAF type 4"))!.address),
    /^app:/,
  );
});
