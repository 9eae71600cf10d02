import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { HmacKey, KEY_ID_HMAC_SHA1_96, signAuthenticated, verifyAuthenticated } from "./auth.ts";
import type { EidRecord } from "./eid_record.ts";
import { WireError } from "./errors.ts";
import { randomMapNotify, Rng } from "../tests/wire_gen.ts";
import {
  emitMapNotify,
  emitSignedMapNotify,
  MAP_NOTIFY_ACK_TYPE,
  MAP_NOTIFY_TYPE,
  type MapNotify,
  mapNotifyLength,
  parseMapNotify,
} from "./map_notify.ts";
import { emitMapRegister, parseMapRegister } from "./map_register.ts";
import { hex } from "../tests/hex.ts";

function seq(from: number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);
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

function withByte(bytes: Uint8Array, at: number, v: number): Uint8Array {
  const b = bytes.slice();
  b[at] = v;
  return b;
}

/** The record of the Map-Register fixture in map_register_test.ts, echoed back. */
const RECORD_HEX = "000005a0" + // record TTL 1440 minutes
  "02" + // locator count 2
  "18" + // EID mask-len 24
  "10" + // ACT=0, A=1
  "00" + // reserved
  "002a" + // Rsvd=0, map-version 42
  "0001" + "c0000200" + // EID-Prefix-AFI 1, 192.0.2.0
  "01" + "64" + "ff" + "00" + // priority 1, weight 100, M priority 255, M weight 0
  "0005" + // unused flags, L=1 p=0 R=1
  "0001" + "cb007101" + // Loc-AFI 1, 203.0.113.1
  "02" + "32" + "ff" + "00" + // priority 2, weight 50, M priority 255, M weight 0
  "0001" + // unused flags, R=1
  "0001" + "c6336402"; // Loc-AFI 1, 198.51.100.2

const RECORD: EidRecord = {
  ttl: 1440,
  maskLen: 24,
  action: 0,
  authoritative: true,
  incomplete: false,
  sigCount: 0,
  mapVersion: 42,
  eid: { kind: "ipv4", ip: "192.0.2.0" },
  locators: [
    {
      priority: 1,
      weight: 100,
      mPriority: 255,
      mWeight: 0,
      local: true,
      probed: false,
      reachable: true,
      address: { kind: "ipv4", ip: "203.0.113.1" },
    },
    {
      priority: 2,
      weight: 50,
      mPriority: 255,
      mWeight: 0,
      local: false,
      probed: false,
      reachable: true,
      address: { kind: "ipv4", ip: "198.51.100.2" },
    },
  ],
};

const AUTH32 = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

// ---------------------------------------------------------------------------
// Fixtures, written by hand from RFC 9301 §5.7 (the Map-Register layout of
// §5.6) and the NAT traversal draft for the I and R bits.

/** The Map-Notify a Map-Server returns for the Map-Register fixture (same nonce, key, record). */
const NOTIFY = {
  name: "Map-Notify mirroring a Map-Register, key id 2",
  bytes: hex(
    "40" + // Type=4, I=0 R=0
      "0000" + // reserved
      "01" + // record count 1
      "0123456789abcdef" + // nonce (the Map-Register's)
      "0002" + // key id 2 (HMAC-SHA-256-128)
      "0020" + // authentication data length 32
      AUTH32 + // authentication data
      RECORD_HEX,
  ),
  msg: {
    ack: false,
    xtrIdPresent: false,
    rtrAuthPresent: false,
    nonce: 0x0123456789abcdefn,
    keyId: 2,
    authData: seq(0xa0, 32),
    records: [RECORD],
  } satisfies MapNotify as MapNotify,
};

/** I and R bits: xTR-ID, site-ID and MS-RTR authentication after the records. */
const NOTIFY_XTR_RTR = {
  name: "Map-Notify with I and R bits, key id 1, Instance-ID EID",
  bytes: hex(
    "4c" + // Type=4, I=1 R=1
      "0000" + // reserved
      "01" + // record count 1
      "00000000deadbeef" + // nonce
      "0001" + // key id 1 (HMAC-SHA-1-96)
      "0014" + // authentication data length 20
      "0102030405060708090a0b0c0d0e0f1011121314" + // authentication data
      "0000003c" + // record TTL 60 minutes
      "00" + // locator count 0
      "20" + // EID mask-len 32
      "00" + // ACT=0, A=0
      "00" + // reserved
      "0001" + // Rsvd=0, map-version 1
      "4003" + // EID-Prefix-AFI 16387 (LCAF)
      "00" + "00" + "02" + "00" + // Rsvd1, Flags, Type 2 (Instance ID), IID mask-len 0
      "000a" + // LCAF length 10
      "00ffffff" + // Instance ID 0xffffff
      "0001" + "0a000001" + // AFI 1, 10.0.0.1
      "0123456789abcdef0123456789abcdef" + // xTR-ID
      "0000000000000007" + // site-ID 7
      "0002" + // MS-RTR key id 2
      "0004" + // MS-RTR authentication data length 4
      "cafebabe", // MS-RTR authentication data
  ),
  msg: {
    ack: false,
    xtrIdPresent: true,
    rtrAuthPresent: true,
    nonce: 0xdeadbeefn,
    keyId: 1,
    authData: seq(1, 20),
    records: [{
      ttl: 60,
      maskLen: 32,
      action: 0,
      authoritative: false,
      incomplete: false,
      sigCount: 0,
      mapVersion: 1,
      eid: { kind: "iid", iid: 0xffffff, iidMaskLen: 0, address: { kind: "ipv4", ip: "10.0.0.1" } },
      locators: [],
    }],
    xtrId: 0x0123456789abcdef0123456789abcdefn,
    siteId: 7n,
    rtrKeyId: 2,
    rtrAuthData: hex("cafebabe"),
  } satisfies MapNotify as MapNotify,
};

/** The Map-Notify-Ack an xTR returns for the Map-Notify fixture. */
const ACK = {
  name: "Map-Notify-Ack, key id 2",
  bytes: hex(
    "50" + // Type=5 (Map-Notify-Ack), I=0 R=0
      "0000" + // reserved
      "01" + // record count 1
      "0123456789abcdef" + // nonce (the Map-Notify's)
      "0002" + // key id 2
      "0020" + // authentication data length 32
      AUTH32 + // authentication data
      RECORD_HEX,
  ),
  msg: { ...NOTIFY.msg, ack: true } satisfies MapNotify as MapNotify,
};

/** A Map-Notify-Ack with the I bit and no records. */
const ACK_XTR = {
  name: "Map-Notify-Ack with the I bit, no records, key id 0",
  bytes: hex(
    "58" + // Type=5, I=1 R=0
      "0000" + // reserved
      "00" + // record count 0
      "0000000000000000" + // nonce 0
      "0000" + // key id 0 (none)
      "0000" + // authentication data length 0
      "ffffffffffffffffffffffffffffffff" + // xTR-ID 2^128-1
      "ffffffffffffffff", // site-ID 2^64-1
  ),
  msg: {
    ack: true,
    xtrIdPresent: true,
    rtrAuthPresent: false,
    nonce: 0n,
    keyId: 0,
    authData: new Uint8Array(0),
    records: [],
    xtrId: (1n << 128n) - 1n,
    siteId: (1n << 64n) - 1n,
  } satisfies MapNotify as MapNotify,
};

const FIXTURES = [NOTIFY, NOTIFY_XTR_RTR, ACK, ACK_XTR];

// ---------------------------------------------------------------------------
// Fixtures

Deno.test("MAP_NOTIFY_TYPE is 4 and MAP_NOTIFY_ACK_TYPE is 5", () => {
  assert.equal(MAP_NOTIFY_TYPE, 4);
  assert.equal(MAP_NOTIFY_ACK_TYPE, 5);
});

for (const f of FIXTURES) {
  Deno.test(`parseMapNotify() reads the fixture: ${f.name}`, () => {
    assert.deepStrictEqual(parseMapNotify(f.bytes), f.msg);
  });

  Deno.test(`emitMapNotify() writes the fixture bytes: ${f.name}`, () => {
    assert.deepStrictEqual(emitMapNotify(f.msg), f.bytes);
    assert.equal(mapNotifyLength(f.msg), f.bytes.length);
  });

  Deno.test(`emitMapNotify() at an offset leaves the bytes around untouched: ${f.name}`, () => {
    const buf = new Uint8Array(f.bytes.length + 10).fill(0xa5);
    const out = emitMapNotify(f.msg, buf, 5);
    assert.equal(out.buffer, buf.buffer);
    assert.equal(out.byteOffset, 5);
    assert.deepStrictEqual(out, f.bytes);
    assert.deepStrictEqual(buf.subarray(0, 5), new Uint8Array(5).fill(0xa5));
    assert.deepStrictEqual(buf.subarray(5 + f.bytes.length), new Uint8Array(5).fill(0xa5));
    assert.deepStrictEqual(parseMapNotify(out), f.msg);
  });

  Deno.test(`parseMapNotify() throws WireError at every truncated length: ${f.name}`, () => {
    for (let n = 0; n < f.bytes.length; n++) {
      assert.throws(() => parseMapNotify(f.bytes.slice(0, n)), WireError, `length ${n}`);
    }
  });
}

Deno.test("a Map-Notify differs from the Map-Register it answers only in the first 3 bytes", () => {
  const register = parseMapRegister(concat(hex("30000101"), NOTIFY.bytes.subarray(4)));
  assert.equal(register.wantMapNotify, true);
  const notify: MapNotify = {
    ack: false,
    xtrIdPresent: false,
    rtrAuthPresent: false,
    nonce: register.nonce,
    keyId: register.keyId,
    authData: register.authData,
    records: register.records,
  };
  const a = emitMapRegister(register);
  const b = emitMapNotify(notify);
  assert.deepStrictEqual(b, NOTIFY.bytes);
  assert.deepStrictEqual(a.subarray(3), b.subarray(3));
});

Deno.test("parseMapNotify() reads the I and R bits at their own positions", () => {
  const i = parseMapNotify(withByte(ACK_XTR.bytes, 0, 0x48));
  assert.equal(i.ack, false);
  assert.equal(i.xtrIdPresent, true);
  assert.equal(i.rtrAuthPresent, false);
  const r = parseMapNotify(
    concat(withByte(ACK_XTR.bytes.subarray(0, 16), 0, 0x44), hex("00010000")),
  );
  assert.equal(r.xtrIdPresent, false);
  assert.equal(r.rtrAuthPresent, true);
  assert.equal(r.rtrKeyId, 1);
  assert.deepStrictEqual(r.rtrAuthData, new Uint8Array(0));
});

Deno.test("parseMapNotify() ignores reserved bits", () => {
  const bytes = NOTIFY.bytes.slice();
  bytes[0] = 0x43; // Type=4 with the two low reserved bits set
  bytes[1] = 0xff;
  bytes[2] = 0xff;
  assert.deepStrictEqual(parseMapNotify(bytes), NOTIFY.msg);
});

Deno.test("parseMapNotify() copies authentication data out of the input", () => {
  const bytes = NOTIFY_XTR_RTR.bytes.slice();
  const m = parseMapNotify(bytes);
  bytes.fill(0);
  assert.deepStrictEqual(m.authData, seq(1, 20));
  assert.deepStrictEqual(m.rtrAuthData, hex("cafebabe"));
});

Deno.test("parsed authentication data stays intact across many parses", () => {
  const kept: MapNotify[] = [];
  const bytes = NOTIFY.bytes.slice();
  for (let i = 0; i < 1000; i++) {
    bytes[16] = i & 0xff;
    kept.push(parseMapNotify(bytes));
  }
  for (const [i, m] of kept.entries()) {
    assert.equal(m.authData.length, 32);
    assert.equal(m.authData[0], i & 0xff, `message ${i}`);
    assert.deepStrictEqual(m.authData.subarray(1), seq(0xa1, 31), `message ${i}`);
  }
});

// ---------------------------------------------------------------------------
// Bad input

const N = NOTIFY.bytes;
const X = NOTIFY_XTR_RTR.bytes;

const BAD: { name: string; bytes: Uint8Array; field: string; offset?: number }[] = [
  { name: "an empty buffer", bytes: new Uint8Array(0), field: "map-notify.type" },
  {
    name: "a Map-Register (type 3)",
    bytes: withByte(N, 0, 0x30),
    field: "map-notify.type",
    offset: 0,
  },
  { name: "a Map-Referral (type 6)", bytes: withByte(N, 0, 0x60), field: "map-notify.type" },
  { name: "2 bytes", bytes: N.slice(0, 2), field: "map-notify.flags" },
  { name: "a nonce cut short", bytes: N.slice(0, 5), field: "map-notify.nonce" },
  { name: "13 bytes", bytes: N.slice(0, 13), field: "map-notify.key-id" },
  {
    name: "an authentication data length larger than the data",
    bytes: withByte(N, 14, 0x01),
    field: "map-notify.auth-data-length",
    offset: 14,
  },
  {
    name: "a record count larger than the data",
    bytes: withByte(N, 3, 2),
    field: "map-notify.record-count",
    offset: 3,
  },
  {
    name: "a record count of 1 with no record",
    bytes: withByte(ACK_XTR.bytes.subarray(0, 16), 3, 1),
    field: "map-notify.record-count",
    offset: 3,
  },
  {
    name: "a truncated locator",
    bytes: N.slice(0, N.length - 1),
    field: "map-notify.record[0].locator[1].address.ipv4",
  },
  {
    name: "the I bit without xTR-ID and site-ID",
    bytes: withByte(N, 0, 0x48),
    field: "map-notify.xtr-id",
  },
  {
    name: "the I bit with only the xTR-ID",
    bytes: ACK_XTR.bytes.slice(0, -8),
    field: "map-notify.xtr-id",
  },
  {
    name: "the R bit without MS-RTR authentication",
    bytes: withByte(N, 0, 0x44),
    field: "map-notify.rtr-key-id",
  },
  {
    name: "the R bit with an MS-RTR key id only",
    bytes: concat(withByte(N, 0, 0x44), hex("0002")),
    field: "map-notify.rtr-auth-data-length",
  },
  {
    name: "an MS-RTR authentication data length larger than the data",
    bytes: withByte(X, X.length - 5, 0x05),
    field: "map-notify.rtr-auth-data-length",
    offset: X.length - 6,
  },
  {
    name: "a trailing byte",
    bytes: concat(N, hex("00")),
    field: "map-notify",
  },
  {
    name: "a trailing byte after the MS-RTR authentication data",
    bytes: concat(X, hex("00")),
    field: "map-notify",
  },
];

for (const c of BAD) {
  Deno.test(`parseMapNotify() rejects ${c.name}`, () => {
    assert.throws(
      () => parseMapNotify(c.bytes),
      (e: unknown) => {
        assert.ok(e instanceof WireError, `not a WireError: ${e}`);
        assert.equal(e.field, c.field);
        if (c.offset !== undefined) assert.equal(e.offset, c.offset);
        return true;
      },
    );
  });
}

Deno.test("emitMapNotify() rejects flags that disagree with the optional fields with TypeError", () => {
  const x = NOTIFY_XTR_RTR.msg;
  const { xtrId: _x, ...noXtr } = x;
  const { rtrAuthData: _r, ...noRtrData } = x;
  const { rtrKeyId: _k, ...noRtrKey } = x;
  assert.throws(() => emitMapNotify(noXtr), TypeError);
  assert.throws(() => emitMapNotify(noRtrData), TypeError);
  assert.throws(() => emitMapNotify(noRtrKey), TypeError);
  assert.throws(() => emitMapNotify({ ...x, xtrIdPresent: false }), TypeError);
  assert.throws(() => emitMapNotify({ ...x, rtrAuthPresent: false }), TypeError);
});

Deno.test("emitMapNotify() rejects values out of range with RangeError", () => {
  const m = NOTIFY.msg;
  const x = NOTIFY_XTR_RTR.msg;
  const cases: [string, MapNotify][] = [
    ["negative nonce", { ...m, nonce: -1n }],
    ["65-bit nonce", { ...m, nonce: 1n << 64n }],
    ["key id 65536", { ...m, keyId: 0x10000 }],
    ["65536 auth bytes", { ...m, authData: new Uint8Array(0x10000) }],
    ["256 records", { ...m, records: new Array(256).fill(RECORD) }],
    ["129-bit xTR-ID", { ...x, xtrId: 1n << 128n }],
    ["65-bit site-ID", { ...x, siteId: 1n << 64n }],
    ["MS-RTR key id 65536", { ...x, rtrKeyId: 0x10000 }],
    ["65536 MS-RTR auth bytes", { ...x, rtrAuthData: new Uint8Array(0x10000) }],
  ];
  for (const [name, bad] of cases) {
    assert.throws(() => emitMapNotify(bad), RangeError, name);
  }
});

Deno.test("emitMapNotify() rejects a target buffer too small with RangeError", () => {
  const len = mapNotifyLength(NOTIFY.msg);
  assert.throws(() => emitMapNotify(NOTIFY.msg, new Uint8Array(len - 1)), RangeError);
});

// ---------------------------------------------------------------------------
// Random round trips

Deno.test("emitMapNotify() then parseMapNotify() round-trips 1,000 random messages", () => {
  const seen = { ack: 0, xtr: 0, rtr: 0 };
  const rng = new Rng(0x5eed_4);
  const msgs = Array.from({ length: 1000 }, () => randomMapNotify(rng));
  for (const [i, m] of msgs.entries()) {
    const bytes = emitMapNotify(m);
    assert.equal(bytes.length, mapNotifyLength(m), `message ${i}`);
    assert.deepStrictEqual(parseMapNotify(bytes), m, `message ${i}`);
    const buf = new Uint8Array(bytes.length + 9).fill(0xa5);
    assert.deepStrictEqual(emitMapNotify(m, buf, 4), bytes, `message ${i} at offset 4`);
    assert.equal(buf[3], 0xa5);
    assert.equal(buf[4 + bytes.length], 0xa5);
    if (m.ack) seen.ack++;
    if (m.xtrIdPresent) seen.xtr++;
    if (m.rtrAuthPresent) seen.rtr++;
  }
  for (const [k, v] of Object.entries(seen)) assert.ok(v > 400 && v < 600, `${k}: ${v} of 1000`);
});

// ---------------------------------------------------------------------------
// Authentication (auth.ts)

const KEY = "ms-site-key";

function nodeMac(hash: "sha1" | "sha256", bytes: Uint8Array, authLength: number): Uint8Array {
  const zeroed = bytes.slice();
  zeroed.fill(0, 16, 16 + authLength);
  return new Uint8Array(createHmac(hash, KEY).update(zeroed).digest());
}

Deno.test("an emitted Map-Notify signed with signAuthenticated() verifies", () => {
  const bytes = emitMapNotify({ ...NOTIFY.msg, authData: new Uint8Array(32) });
  signAuthenticated(bytes, KEY);
  assert.ok(verifyAuthenticated(bytes, KEY));
  assert.ok(!verifyAuthenticated(bytes, "wrong"));
  assert.deepStrictEqual(parseMapNotify(bytes).authData, nodeMac("sha256", bytes, 32));
});

Deno.test("emitSignedMapNotify() signs a Map-Notify-Ack with key id 2 (32 bytes)", () => {
  const bytes = emitSignedMapNotify(ACK.msg, KEY);
  const m = parseMapNotify(bytes);
  assert.equal(m.ack, true);
  assert.equal(m.authData.length, 32);
  assert.deepStrictEqual(m.authData, nodeMac("sha256", bytes, 32));
  assert.ok(verifyAuthenticated(bytes, KEY));
});

Deno.test("emitSignedMapNotify() with key id 1 covers the xTR-ID and MS-RTR fields", () => {
  const key = new HmacKey(KEY_ID_HMAC_SHA1_96, KEY);
  const bytes = emitSignedMapNotify(NOTIFY_XTR_RTR.msg, key);
  assert.equal(bytes.length, X.length);
  assert.deepStrictEqual(parseMapNotify(bytes).authData, nodeMac("sha1", bytes, 20));
  assert.ok(verifyAuthenticated(bytes, key));
  bytes[bytes.length - 1]! ^= 1; // flip a bit of the MS-RTR authentication data
  assert.ok(!verifyAuthenticated(bytes, key));
});

Deno.test("emitSignedMapNotify() signs in place at an offset", () => {
  const len = N.length;
  const buf = new Uint8Array(len + 10).fill(0xa5);
  const out = emitSignedMapNotify(NOTIFY.msg, KEY, buf, 5);
  assert.equal(out.byteOffset, 5);
  assert.ok(verifyAuthenticated(out, KEY));
  assert.deepStrictEqual(buf.subarray(0, 5), new Uint8Array(5).fill(0xa5));
  assert.deepStrictEqual(buf.subarray(5 + len), new Uint8Array(5).fill(0xa5));
});

Deno.test("emitSignedMapNotify() rejects key id 0 and unknown key ids", () => {
  assert.throws(() => emitSignedMapNotify(ACK_XTR.msg, KEY), RangeError);
  assert.throws(() => emitSignedMapNotify({ ...NOTIFY.msg, keyId: 9 }, KEY), RangeError);
});
