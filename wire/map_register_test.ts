import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import {
  HmacKey,
  KEY_ID_HMAC_SHA1_96,
  KEY_ID_HMAC_SHA256_128,
  signAuthenticated,
  verifyAuthenticated,
} from "./auth.ts";
import { WireError } from "./errors.ts";
import { randomMapRegister, Rng } from "../tests/wire_gen.ts";
import type { LocatorRecord } from "./locator.ts";
import {
  emitMapRegister,
  emitSignedMapRegister,
  MAP_REGISTER_TYPE,
  type MapRegister,
  mapRegisterLength,
  parseMapRegister,
} from "./map_register.ts";
import { hex } from "../tests/hex.ts";

function seq(from: number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);
}

const NO_FLAGS = {
  proxyReply: false,
  securityCapable: false,
  xtrIdPresent: false,
  rtr: false,
  eidNotify: false,
  useTtlForTimeout: false,
  mergeRequest: false,
  mobileNode: false,
  wantMapNotify: false,
} as const;

function loc(
  priority: number,
  weight: number,
  ip: string,
  flags: Partial<Pick<LocatorRecord, "local" | "probed" | "reachable">> = {},
): LocatorRecord {
  return {
    priority,
    weight,
    mPriority: 255,
    mWeight: 0,
    local: false,
    probed: false,
    reachable: true,
    ...flags,
    address: ip.includes(":") ? { kind: "ipv6", ip } : { kind: "ipv4", ip },
  };
}

// ---------------------------------------------------------------------------
// Fixtures, written by hand from RFC 9301 §5.6 / §5.4 (and the NAT traversal
// draft for the R bit), not produced by our emitter.

/** M bit, key ID 2 with 32 bytes of authentication data, one IPv4 record, two IPv4 locators. */
const REGISTER_M = {
  name: "M bit, key id 2, one IPv4 record with two IPv4 locators",
  bytes: hex(
    "30" + // Type=3, P=0 S=0 I=0 R=0
      "00" + // reserved
      "01" + // reserved, E=0 T=0 a=0 m=0 M=1
      "01" + // record count 1
      "0123456789abcdef" + // nonce
      "0002" + // key id 2 (HMAC-SHA-256-128)
      "0020" + // authentication data length 32
      "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf" + // auth data
      "000005a0" + // record TTL 1440 minutes
      "02" + // locator count 2
      "18" + // EID mask-len 24
      "10" + // ACT=0 (no action), A=1, reserved
      "00" + // reserved
      "002a" + // Rsvd=0, map-version 42
      "0001" + // EID-Prefix-AFI 1 (IPv4)
      "c0000200" + // EID-Prefix 192.0.2.0
      "01" + "64" + "ff" + "00" + // priority 1, weight 100, M priority 255, M weight 0
      "0005" + // unused flags, L=1 p=0 R=1
      "0001" + "cb007101" + // Loc-AFI 1, 203.0.113.1
      "02" + "32" + "ff" + "00" + // priority 2, weight 50, M priority 255, M weight 0
      "0001" + // unused flags, L=0 p=0 R=1
      "0001" + "c6336402", // Loc-AFI 1, 198.51.100.2
  ),
  msg: {
    ...NO_FLAGS,
    wantMapNotify: true,
    nonce: 0x0123456789abcdefn,
    keyId: 2,
    authData: seq(0xa0, 32),
    records: [{
      ttl: 1440,
      maskLen: 24,
      action: 0,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 42,
      eid: { kind: "ipv4", ip: "192.0.2.0" },
      locators: [
        loc(1, 100, "203.0.113.1", { local: true }),
        loc(2, 50, "198.51.100.2"),
      ],
    }],
  } satisfies MapRegister as MapRegister,
};

/** I bit with xTR-ID and site-ID, an Instance-ID LCAF EID, an IPv6 locator. */
const REGISTER_XTR_ID = {
  name: "I bit with xTR-ID and site-ID, Instance-ID EID, P T M bits",
  bytes: hex(
    "3a" + // Type=3, P=1 S=0 I=1 R=0
      "00" + // reserved
      "09" + // reserved, E=0 T=1 a=0 m=0 M=1
      "01" + // record count 1
      "fedcba9876543210" + // nonce
      "0002" + // key id 2
      "0020" + // authentication data length 32
      "0000000000000000000000000000000000000000000000000000000000000000" + // auth data (unsigned)
      "0000003c" + // record TTL 60 minutes
      "01" + // locator count 1
      "10" + // EID mask-len 16
      "00" + // ACT=0, A=0
      "00" + // reserved
      "0000" + // Rsvd=0, map-version 0
      "4003" + // EID-Prefix-AFI 16387 (LCAF)
      "00" + "00" + "02" + "00" + // Rsvd1, Flags, Type 2 (Instance ID), IID mask-len 0
      "000a" + // LCAF length 10
      "00000007" + // Instance ID 7
      "0001" + "0a010000" + // AFI 1, 10.1.0.0
      "01" + "64" + "01" + "64" + // priority 1, weight 100, M priority 1, M weight 100
      "0007" + // unused flags, L=1 p=1 R=1
      "0002" + "20010db8000000000000000000000001" + // Loc-AFI 2, 2001:db8::1
      "00112233445566778899aabbccddeeff" + // xTR-ID
      "000000000000002a", // site-ID 42
  ),
  msg: {
    ...NO_FLAGS,
    proxyReply: true,
    xtrIdPresent: true,
    useTtlForTimeout: true,
    wantMapNotify: true,
    nonce: 0xfedcba9876543210n,
    keyId: 2,
    authData: new Uint8Array(32),
    records: [{
      ttl: 60,
      maskLen: 16,
      action: 0,
      authoritative: false,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: { kind: "iid", iid: 7, iidMaskLen: 0, address: { kind: "ipv4", ip: "10.1.0.0" } },
      locators: [{
        priority: 1,
        weight: 100,
        mPriority: 1,
        mWeight: 100,
        local: true,
        probed: true,
        reachable: true,
        address: { kind: "ipv6", ip: "2001:db8::1" },
      }],
    }],
    xtrId: 0x00112233445566778899aabbccddeeffn,
    siteId: 42n,
  } satisfies MapRegister as MapRegister,
};

/** Key ID 1 with 20 bytes; S and R bits; E, a and m bits; an IPv6 EID. */
const REGISTER_SHA1 = {
  name: "key id 1 with 20 auth bytes, S R E a m bits, IPv6 EID",
  bytes: hex(
    "35" + // Type=3, P=0 S=1 I=0 R=1
      "00" + // reserved
      "16" + // reserved, E=1 T=0 a=1 m=1 M=0
      "01" + // record count 1
      "0000000000000001" + // nonce 1
      "0001" + // key id 1 (HMAC-SHA-1-96)
      "0014" + // authentication data length 20
      "0102030405060708090a0b0c0d0e0f1011121314" + // auth data
      "00000000" + // record TTL 0
      "01" + // locator count 1
      "30" + // EID mask-len 48
      "a0" + // ACT=5 (drop/auth-failure), A=0
      "00" + // reserved
      "0fff" + // Rsvd=0, map-version 4095
      "0002" + // EID-Prefix-AFI 2 (IPv6)
      "20010db8000100000000000000000000" + // EID-Prefix 2001:db8:1::
      "ff" + "00" + "ff" + "00" + // priority 255 (unusable), weight 0, M priority 255, M weight 0
      "0000" + // unused flags, L=0 p=0 R=0
      "0001" + "c0000201", // Loc-AFI 1, 192.0.2.1
  ),
  msg: {
    ...NO_FLAGS,
    securityCapable: true,
    rtr: true,
    eidNotify: true,
    mergeRequest: true,
    mobileNode: true,
    nonce: 1n,
    keyId: 1,
    authData: seq(1, 20),
    records: [{
      ttl: 0,
      maskLen: 48,
      action: 5,
      authoritative: false,
      incomplete: false,
      sigCount: 0,
      mapVersion: 4095,
      eid: { kind: "ipv6", ip: "2001:db8:1::" },
      locators: [{ ...loc(255, 0, "192.0.2.1"), reachable: false }],
    }],
  } satisfies MapRegister as MapRegister,
};

/** No records, no authentication (key ID 0): the smallest Map-Register. */
const REGISTER_EMPTY = {
  name: "no records, key id 0",
  bytes: hex(
    "30" + "00" + "00" + // Type=3, no flags
      "00" + // record count 0
      "ffffffffffffffff" + // nonce 2^64-1
      "0000" + // key id 0 (none)
      "0000", // authentication data length 0
  ),
  msg: {
    ...NO_FLAGS,
    nonce: 0xffffffffffffffffn,
    keyId: 0,
    authData: new Uint8Array(0),
    records: [],
  } satisfies MapRegister as MapRegister,
};

const FIXTURES = [REGISTER_M, REGISTER_XTR_ID, REGISTER_SHA1, REGISTER_EMPTY];

// ---------------------------------------------------------------------------
// Fixtures

Deno.test("MAP_REGISTER_TYPE is 3", () => {
  assert.equal(MAP_REGISTER_TYPE, 3);
});

for (const f of FIXTURES) {
  Deno.test(`parseMapRegister() reads the fixture: ${f.name}`, () => {
    assert.deepStrictEqual(parseMapRegister(f.bytes), f.msg);
  });

  Deno.test(`emitMapRegister() writes the fixture bytes: ${f.name}`, () => {
    assert.deepStrictEqual(emitMapRegister(f.msg), f.bytes);
    assert.equal(mapRegisterLength(f.msg), f.bytes.length);
  });

  Deno.test(`emitMapRegister() at an offset leaves the bytes around untouched: ${f.name}`, () => {
    const buf = new Uint8Array(f.bytes.length + 10).fill(0xa5);
    const out = emitMapRegister(f.msg, buf, 5);
    assert.equal(out.buffer, buf.buffer);
    assert.equal(out.byteOffset, 5);
    assert.deepStrictEqual(out, f.bytes);
    assert.deepStrictEqual(buf.subarray(0, 5), new Uint8Array(5).fill(0xa5));
    assert.deepStrictEqual(buf.subarray(5 + f.bytes.length), new Uint8Array(5).fill(0xa5));
    assert.deepStrictEqual(parseMapRegister(out), f.msg);
  });

  Deno.test(`parseMapRegister() throws WireError at every truncated length: ${f.name}`, () => {
    for (let n = 0; n < f.bytes.length; n++) {
      assert.throws(() => parseMapRegister(f.bytes.slice(0, n)), WireError, `length ${n}`);
    }
  });
}

Deno.test("parseMapRegister() reads a message in the middle of a larger buffer", () => {
  const buf = new Uint8Array(REGISTER_M.bytes.length + 7).fill(0xee);
  buf.set(REGISTER_M.bytes, 3);
  const view = buf.subarray(3, 3 + REGISTER_M.bytes.length);
  assert.deepStrictEqual(parseMapRegister(view), REGISTER_M.msg);
});

Deno.test("parseMapRegister() copies the authentication data out of the input", () => {
  const bytes = REGISTER_M.bytes.slice();
  const m = parseMapRegister(bytes);
  bytes.fill(0, 16, 48);
  assert.deepStrictEqual(m.authData, seq(0xa0, 32));
});

Deno.test("parseMapRegister() ignores reserved bits", () => {
  const bytes = REGISTER_M.bytes.slice();
  bytes[1] = 0xff; // all reserved
  bytes[2] = bytes[2]! | 0xe0; // reserved bits 16..18
  assert.deepStrictEqual(parseMapRegister(bytes), REGISTER_M.msg);
});

Deno.test("parseMapRegister() reads each flag bit at its own position", () => {
  const cases: [number, number, keyof typeof NO_FLAGS][] = [
    [0, 0x08, "proxyReply"],
    [0, 0x04, "securityCapable"],
    [0, 0x01, "rtr"],
    [2, 0x10, "eidNotify"],
    [2, 0x08, "useTtlForTimeout"],
    [2, 0x04, "mergeRequest"],
    [2, 0x02, "mobileNode"],
    [2, 0x01, "wantMapNotify"],
  ];
  for (const [byte, mask, name] of cases) {
    const bytes = REGISTER_EMPTY.bytes.slice();
    bytes[byte] = bytes[byte]! | mask;
    const m = parseMapRegister(bytes);
    for (const k of Object.keys(NO_FLAGS) as (keyof typeof NO_FLAGS)[]) {
      assert.equal(m[k], k === name, `${name}: ${k}`);
    }
    assert.deepStrictEqual(emitMapRegister(m), bytes, name);
  }
});

Deno.test("parseMapRegister() honours the authentication data length whatever the key id", () => {
  const bytes = hex(
    "30000000" + "0000000000000007" +
      "0007" + // key id 7 (unknown, kept)
      "0003" + // 3 bytes of authentication data
      "aabbcc",
  );
  const m = parseMapRegister(bytes);
  assert.equal(m.keyId, 7);
  assert.deepStrictEqual(m.authData, hex("aabbcc"));
  assert.deepStrictEqual(emitMapRegister(m), bytes);
});

// ---------------------------------------------------------------------------
// Bad input

function withByte(bytes: Uint8Array, at: number, v: number): Uint8Array {
  const b = bytes.slice();
  b[at] = v;
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const M = REGISTER_M.bytes;
const RECORD_AT = 48; // first record byte in REGISTER_M

const BAD: { name: string; bytes: Uint8Array; field: string; offset?: number }[] = [
  { name: "an empty buffer", bytes: new Uint8Array(0), field: "map-register.type" },
  {
    name: "a Map-Notify (type 4)",
    bytes: withByte(M, 0, 0x40),
    field: "map-register.type",
    offset: 0,
  },
  { name: "type 0", bytes: withByte(M, 0, 0x00), field: "map-register.type" },
  { name: "3 bytes", bytes: M.slice(0, 3), field: "map-register.record-count" },
  { name: "a nonce cut short", bytes: M.slice(0, 11), field: "map-register.nonce" },
  { name: "no key id", bytes: M.slice(0, 12), field: "map-register.key-id" },
  { name: "15 bytes", bytes: M.slice(0, 15), field: "map-register.auth-data-length" },
  {
    name: "an authentication data length larger than the data",
    bytes: withByte(withByte(M, 14, 0xff), 15, 0xff),
    field: "map-register.auth-data-length",
    offset: 14,
  },
  {
    name: "an authentication data length one past the data",
    bytes: M.slice(0, 47),
    field: "map-register.auth-data-length",
    offset: 14,
  },
  {
    name: "a record count larger than the data (2 for 1)",
    bytes: withByte(M, 3, 2),
    field: "map-register.record-count",
    offset: 3,
  },
  {
    name: "a record count of 255 with one record",
    bytes: withByte(M, 3, 255),
    field: "map-register.record-count",
    offset: 3,
  },
  {
    name: "a record count of 1 with no record",
    bytes: withByte(REGISTER_EMPTY.bytes, 3, 1),
    field: "map-register.record-count",
    offset: 3,
  },
  {
    name: "a locator count larger than the data",
    bytes: withByte(M, RECORD_AT + 4, 3),
    field: "map-register.record[0].locator[2]",
  },
  {
    name: "an IPv4 EID mask-len of 33",
    bytes: withByte(M, RECORD_AT + 5, 33),
    field: "map-register.record[0].eid-mask-len",
  },
  {
    name: "an unknown EID AFI",
    bytes: withByte(M, RECORD_AT + 11, 0x09),
    field: "map-register.record[0].eid.afi",
  },
  {
    name: "the I bit without xTR-ID and site-ID",
    bytes: withByte(M, 0, 0x32),
    field: "map-register.xtr-id",
  },
  {
    name: "the I bit with 23 of the 24 xTR-ID and site-ID bytes",
    bytes: REGISTER_XTR_ID.bytes.slice(0, -1),
    field: "map-register.xtr-id",
  },
  {
    name: "the I bit with only the xTR-ID",
    bytes: REGISTER_XTR_ID.bytes.slice(0, -8),
    field: "map-register.xtr-id",
  },
  {
    name: "a trailing byte with the I bit clear",
    bytes: concat(M, hex("00")),
    field: "map-register",
  },
  {
    name: "an xTR-ID and site-ID with the I bit clear",
    bytes: concat(M, hex("00112233445566778899aabbccddeeff000000000000002a")),
    field: "map-register",
  },
  {
    name: "a trailing byte after the site-ID",
    bytes: concat(REGISTER_XTR_ID.bytes, hex("00")),
    field: "map-register",
  },
];

for (const c of BAD) {
  Deno.test(`parseMapRegister() rejects ${c.name}`, () => {
    assert.throws(
      () => parseMapRegister(c.bytes),
      (e: unknown) => {
        assert.ok(e instanceof WireError, `not a WireError: ${e}`);
        assert.equal(e.field, c.field);
        if (c.offset !== undefined) assert.equal(e.offset, c.offset);
        return true;
      },
    );
  });
}

Deno.test("emitMapRegister() rejects an I bit without xTR-ID or site-ID with TypeError", () => {
  const { xtrId: _x, ...noXtr } = REGISTER_XTR_ID.msg;
  const { siteId: _s, ...noSite } = REGISTER_XTR_ID.msg;
  assert.throws(() => emitMapRegister(noXtr), TypeError);
  assert.throws(() => emitMapRegister(noSite), TypeError);
});

Deno.test("emitMapRegister() rejects an xTR-ID or site-ID with the I bit clear with TypeError", () => {
  assert.throws(() => emitMapRegister({ ...REGISTER_M.msg, xtrId: 1n, siteId: 2n }), TypeError);
  assert.throws(() => emitMapRegister({ ...REGISTER_M.msg, siteId: 2n }), TypeError);
});

Deno.test("emitMapRegister() rejects values out of range with RangeError", () => {
  const m = REGISTER_M.msg;
  const x = REGISTER_XTR_ID.msg;
  const cases: [string, MapRegister][] = [
    ["negative nonce", { ...m, nonce: -1n }],
    ["65-bit nonce", { ...m, nonce: 1n << 64n }],
    ["key id 65536", { ...m, keyId: 0x10000 }],
    ["key id -1", { ...m, keyId: -1 }],
    ["fractional key id", { ...m, keyId: 1.5 }],
    ["65536 auth bytes", { ...m, authData: new Uint8Array(0x10000) }],
    ["256 records", { ...m, records: new Array(256).fill(m.records[0]) }],
    ["129-bit xTR-ID", { ...x, xtrId: 1n << 128n }],
    ["negative xTR-ID", { ...x, xtrId: -1n }],
    ["65-bit site-ID", { ...x, siteId: 1n << 64n }],
  ];
  for (const [name, bad] of cases) {
    assert.throws(() => emitMapRegister(bad), RangeError, name);
  }
});

Deno.test("emitMapRegister() rejects a target buffer too small with RangeError", () => {
  const len = mapRegisterLength(REGISTER_M.msg);
  assert.throws(() => emitMapRegister(REGISTER_M.msg, new Uint8Array(len - 1)), RangeError);
  assert.throws(() => emitMapRegister(REGISTER_M.msg, new Uint8Array(len), 1), RangeError);
});

// ---------------------------------------------------------------------------
// Random round trips

Deno.test("emitMapRegister() then parseMapRegister() round-trips 1,000 random messages", () => {
  const rng = new Rng(0x5eed_3);
  const msgs = Array.from({ length: 1000 }, () => randomMapRegister(rng));
  let withXtr = 0;
  for (const [i, m] of msgs.entries()) {
    const bytes = emitMapRegister(m);
    assert.equal(bytes.length, mapRegisterLength(m), `message ${i}`);
    assert.deepStrictEqual(parseMapRegister(bytes), m, `message ${i}`);
    const buf = new Uint8Array(bytes.length + 9).fill(0xa5);
    assert.deepStrictEqual(emitMapRegister(m, buf, 4), bytes, `message ${i} at offset 4`);
    assert.equal(buf[3], 0xa5);
    assert.equal(buf[4 + bytes.length], 0xa5);
    if (m.xtrIdPresent) withXtr++;
  }
  assert.ok(withXtr > 400 && withXtr < 600, `${withXtr} of 1000 with an xTR-ID`);
});

// ---------------------------------------------------------------------------
// Authentication (auth.ts)

const KEY = "my-site-password";

/** HMAC of `bytes` with the authentication field read as zero, by node:crypto. */
function nodeMac(hash: "sha1" | "sha256", bytes: Uint8Array, authLength: number): Uint8Array {
  const zeroed = bytes.slice();
  zeroed.fill(0, 16, 16 + authLength);
  return new Uint8Array(createHmac(hash, KEY).update(zeroed).digest());
}

Deno.test("an emitted Map-Register signed with signAuthenticated() verifies", () => {
  const unsigned: MapRegister = { ...REGISTER_M.msg, authData: new Uint8Array(32) };
  const bytes = emitMapRegister(unsigned);
  signAuthenticated(bytes, KEY);
  assert.ok(verifyAuthenticated(bytes, KEY));
  assert.ok(!verifyAuthenticated(bytes, "another-password"));
  const m = parseMapRegister(bytes);
  assert.deepStrictEqual(m.authData, nodeMac("sha256", bytes, 32));
  assert.deepStrictEqual({ ...m, authData: unsigned.authData }, unsigned);
});

Deno.test("a Map-Register signed with key id 2 parses with 32 authentication bytes", () => {
  const bytes = emitSignedMapRegister(REGISTER_XTR_ID.msg, KEY);
  const m = parseMapRegister(bytes);
  assert.equal(m.keyId, KEY_ID_HMAC_SHA256_128);
  assert.equal(m.authData.length, 32);
  assert.deepStrictEqual(m.authData, nodeMac("sha256", bytes, 32));
  assert.ok(verifyAuthenticated(bytes, KEY));
  assert.equal(m.xtrId, REGISTER_XTR_ID.msg.xtrId);
});

Deno.test("emitSignedMapRegister() with key id 1 writes the 20-byte HMAC-SHA-1", () => {
  const bytes = emitSignedMapRegister(REGISTER_SHA1.msg, new HmacKey(KEY_ID_HMAC_SHA1_96, KEY));
  assert.equal(bytes.length, REGISTER_SHA1.bytes.length);
  assert.deepStrictEqual(bytes.subarray(0, 16), REGISTER_SHA1.bytes.subarray(0, 16));
  assert.deepStrictEqual(bytes.subarray(36), REGISTER_SHA1.bytes.subarray(36));
  assert.deepStrictEqual(parseMapRegister(bytes).authData, nodeMac("sha1", bytes, 20));
  assert.ok(verifyAuthenticated(bytes, KEY));
});

Deno.test("emitSignedMapRegister() sizes the field from the key id, not from authData", () => {
  const m: MapRegister = { ...REGISTER_M.msg, authData: new Uint8Array(3) };
  const bytes = emitSignedMapRegister(m, KEY);
  assert.equal(bytes.length, REGISTER_M.bytes.length);
  assert.ok(verifyAuthenticated(bytes, KEY));
});

Deno.test("emitSignedMapRegister() signs in place at an offset, leaving the bytes around", () => {
  const len = REGISTER_M.bytes.length;
  const buf = new Uint8Array(len + 10).fill(0xa5);
  const out = emitSignedMapRegister(REGISTER_M.msg, KEY, buf, 5);
  assert.equal(out.byteOffset, 5);
  assert.ok(verifyAuthenticated(out, KEY));
  assert.deepStrictEqual(out, emitSignedMapRegister(REGISTER_M.msg, KEY));
  assert.deepStrictEqual(buf.subarray(0, 5), new Uint8Array(5).fill(0xa5));
  assert.deepStrictEqual(buf.subarray(5 + len), new Uint8Array(5).fill(0xa5));
});

Deno.test("emitSignedMapRegister() rejects key id 0, unknown key ids and a mismatched key", () => {
  assert.throws(() => emitSignedMapRegister(REGISTER_EMPTY.msg, KEY), RangeError);
  assert.throws(() => emitSignedMapRegister({ ...REGISTER_M.msg, keyId: 3 }, KEY), RangeError);
  assert.throws(
    () => emitSignedMapRegister(REGISTER_M.msg, new HmacKey(KEY_ID_HMAC_SHA1_96, KEY)),
    RangeError,
  );
});
