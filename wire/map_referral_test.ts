import assert from "node:assert/strict";
import { WireError } from "./errors.ts";
import { randomMapReferral, Rng } from "../tests/wire_gen.ts";
import type { EidRecord } from "./eid_record.ts";
import type { LocatorRecord } from "./locator.ts";
import {
  emitMapReferral,
  type MapReferral,
  mapReferralLength,
  parseMapReferral,
  REFERRAL_ACTION,
  type ReferralSignature,
} from "./map_referral.ts";
import { hex } from "../tests/hex.ts";

function throwsWire(fn: () => unknown, field: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof WireError, `expected WireError, got ${e}`);
    assert.equal(e.field, field);
    return true;
  });
}

function rec(p: Partial<EidRecord> & Pick<EidRecord, "eid" | "maskLen">): EidRecord {
  return {
    ttl: 1440,
    action: REFERRAL_ACTION.NODE_REFERRAL,
    authoritative: true,
    incomplete: false,
    sigCount: 0,
    mapVersion: 0,
    locators: [],
    ...p,
  };
}

function ref(ip: string, priority = 1, weight = 50): LocatorRecord {
  return {
    priority,
    weight,
    mPriority: 255,
    mWeight: 0,
    local: false,
    probed: false,
    reachable: true,
    address: ip.includes(":") ? { kind: "ipv6", ip } : { kind: "ipv4", ip },
  };
}

// --- Fixtures (hand-written from RFC 8111 §6.4 / §6.4.1) --------------------

const NODE_REFERRAL_HEX = `
  60 00 00 01               # Type=6, Reserved, Record Count=1
  01 02 03 04 05 06 07 08   # Nonce
  00 00 05 a0               # Record TTL = 1440
  02                        # Referral Count = 2
  10                        # EID mask-len = 16
  10 00                     # ACT=0 NODE-REFERRAL, A=1, I=0, Reserved
  00 00                     # SigCnt=0, Map-Version=0
  00 01 0a 01 00 00         # EID-AFI=1, 10.1.0.0
  01 32 ff 00               # Ref 1: Priority=1, Weight=50, M Priority=255, M Weight=0
  00 01                     #        Unused flags, R=1
  00 01 c0 00 02 01         #        AFI=1, 192.0.2.1
  02 32 ff 00               # Ref 2: Priority=2, Weight=50, M Priority=255, M Weight=0
  00 01                     #        Unused flags, R=1
  00 02 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01   # AFI=2, 2001:db8::1
`;
const NODE_REFERRAL: MapReferral = {
  nonce: 0x0102030405060708n,
  records: [{
    record: rec({
      eid: { kind: "ipv4", ip: "10.1.0.0" },
      maskLen: 16,
      locators: [ref("192.0.2.1", 1), ref("2001:db8::1", 2)],
    }),
    signatures: [],
  }],
};

const MS_ACK_HEX = `
  60 00 00 01               # Type=6, Reserved, Record Count=1
  ff ff ff ff ff ff ff fe   # Nonce
  00 00 00 0f               # Record TTL = 15
  00                        # Referral Count = 0
  08                        # EID mask-len = 8
  58 00                     # ACT=2 MS-ACK, A=1, I=1 (incomplete), Reserved
  00 07                     # SigCnt=0, Map-Version=7
  40 03 00 00 02 00 00 0a   # EID-AFI=16387 LCAF: Rsvd1, Flags, Type=2 IID, IID mask-len 0, Length=10
  00 00 00 05               #   Instance ID = 5
  00 01 0a 00 00 00         #   AFI=1, 10.0.0.0
`;
const MS_ACK: MapReferral = {
  nonce: 0xfffffffffffffffen,
  records: [{
    record: rec({
      ttl: 15,
      action: REFERRAL_ACTION.MS_ACK,
      incomplete: true,
      mapVersion: 7,
      maskLen: 8,
      eid: { kind: "iid", iid: 5, iidMaskLen: 0, address: { kind: "ipv4", ip: "10.0.0.0" } },
    }),
    signatures: [],
  }],
};

const DELEGATION_HOLE_HEX = `
  60 00 00 01               # Type=6, Reserved, Record Count=1
  00 00 00 00 00 00 00 2a   # Nonce = 42
  00 00 00 0f               # Record TTL = 15
  00                        # Referral Count = 0
  20                        # EID mask-len = 32
  90 00                     # ACT=4 DELEGATION-HOLE, A=1, I=0
  00 00                     # SigCnt=0, Map-Version=0
  00 02 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 00   # AFI=2, 2001:db8::
`;
const DELEGATION_HOLE: MapReferral = {
  nonce: 42n,
  records: [{
    record: rec({
      ttl: 15,
      action: REFERRAL_ACTION.DELEGATION_HOLE,
      maskLen: 32,
      eid: { kind: "ipv6", ip: "2001:db8::" },
    }),
    signatures: [],
  }],
};

const SIGNED_HEX = `
  60 00 00 01               # Type=6, Reserved, Record Count=1
  00 00 00 00 00 00 00 01   # Nonce = 1
  00 00 05 a0               # Record TTL = 1440
  01                        # Referral Count = 1
  10                        # EID mask-len = 16
  30 00                     # ACT=1 MS-REFERRAL, A=1, I=0
  10 05                     # SigCnt=1, Map-Version=5
  00 01 0a 02 00 00         # EID-AFI=1, 10.2.0.0
  01 64 ff 00 00 01         # Ref: Priority=1, Weight=100, M Priority=255, M Weight=0, R=1
  00 01 c6 33 64 07         #      AFI=1, 198.51.100.7
  00 00 05 a0               # Sig: Original Record TTL = 1440
  65 00 00 00               #      Signature Expiration
  64 00 00 00               #      Signature Inception
  12 34                     #      Key Tag
  00 08                     #      Sig Length = 8
  01 00 00 00               #      Sig-Algorithm=1, Reserved, Reserved
  de ad be ef 01 02 03 04   #      Signature
`;
const SIGNATURE: ReferralSignature = {
  originalTtl: 1440,
  expiration: 0x65000000,
  inception: 0x64000000,
  keyTag: 0x1234,
  algorithm: 1,
  signature: hex("deadbeef01020304"),
};
const SIGNED: MapReferral = {
  nonce: 1n,
  records: [{
    record: rec({
      action: REFERRAL_ACTION.MS_REFERRAL,
      sigCount: 1,
      mapVersion: 5,
      maskLen: 16,
      eid: { kind: "ipv4", ip: "10.2.0.0" },
      locators: [ref("198.51.100.7", 1, 100)],
    }),
    signatures: [SIGNATURE],
  }],
};

const FIXTURES: [string, string, MapReferral][] = [
  ["a NODE-REFERRAL with two refs", NODE_REFERRAL_HEX, NODE_REFERRAL],
  ["an MS-ACK with the incomplete bit", MS_ACK_HEX, MS_ACK],
  ["a DELEGATION-HOLE with no refs", DELEGATION_HOLE_HEX, DELEGATION_HOLE],
  ["an MS-REFERRAL with one signature", SIGNED_HEX, SIGNED],
];

for (const [what, h, msg] of FIXTURES) {
  Deno.test(`parseMapReferral() reads ${what}`, () => {
    assert.deepEqual(parseMapReferral(hex(h)), msg);
  });
  Deno.test(`emitMapReferral() writes ${what}`, () => {
    const want = hex(h);
    assert.equal(mapReferralLength(msg), want.length);
    assert.deepEqual(emitMapReferral(msg), want);
    const buf = new Uint8Array(want.length + 7).fill(0xa5);
    const out = emitMapReferral(msg, buf, 3);
    assert.deepEqual(out, want);
    assert.equal(out.buffer, buf.buffer);
    assert.deepEqual(buf.subarray(0, 3), hex("a5a5a5"));
    assert.deepEqual(buf.subarray(3 + want.length), hex("a5a5a5a5"));
  });
  Deno.test(`parseMapReferral() rejects every truncation of ${what}`, () => {
    const full = hex(h);
    for (let n = 0; n < full.length; n++) {
      assert.throws(() => parseMapReferral(full.subarray(0, n)), WireError, `length ${n}`);
    }
  });
}

Deno.test("parseMapReferral() ignores reserved bits", () => {
  const b = hex(NODE_REFERRAL_HEX);
  b[0] = 0x6f;
  b[1] = 0xff;
  b[2] = 0xff;
  b[19] = 0xff; // record reserved bits after ACT|A|I
  assert.deepEqual(parseMapReferral(b), NODE_REFERRAL);
});

Deno.test("emitMapReferral() takes SigCnt from the signature list, not record.sigCount", () => {
  const m: MapReferral = {
    nonce: 1n,
    records: [{ record: { ...SIGNED.records[0]!.record, sigCount: 9 }, signatures: [SIGNATURE] }],
  };
  assert.deepEqual(emitMapReferral(m), hex(SIGNED_HEX));
});

Deno.test("emitMapReferral() rejects values that do not fit (RangeError)", () => {
  const base = SIGNED.records[0]!;
  const cases: MapReferral[] = [
    { nonce: -1n, records: [] },
    { nonce: 1n << 64n, records: [] },
    { nonce: 1n, records: new Array(256).fill(base) },
    { nonce: 1n, records: [{ record: base.record, signatures: new Array(16).fill(SIGNATURE) }] },
    {
      nonce: 1n,
      records: [{ record: base.record, signatures: [{ ...SIGNATURE, keyTag: 0x10000 }] }],
    },
    {
      nonce: 1n,
      records: [{ record: base.record, signatures: [{ ...SIGNATURE, algorithm: 256 }] }],
    },
    {
      nonce: 1n,
      records: [{
        record: base.record,
        signatures: [{ ...SIGNATURE, signature: new Uint8Array(0x10000) }],
      }],
    },
  ];
  for (const m of cases) assert.throws(() => emitMapReferral(m), RangeError);
});

Deno.test("emitMapReferral() rejects a buffer too small at the offset (RangeError)", () => {
  const len = mapReferralLength(SIGNED);
  assert.throws(() => emitMapReferral(SIGNED, new Uint8Array(len), 1), RangeError);
});

Deno.test("parseMapReferral() rejects bad inputs with the field at fault", () => {
  const edit = (h: string, at: number, ...v: number[]) => {
    const b = hex(h);
    b.set(v, at);
    return b;
  };
  const cases: [string, Uint8Array, string][] = [
    ["a short header", hex("60000001 0102"), "map-referral.header"],
    ["another message type", edit(NODE_REFERRAL_HEX, 0, 0x20), "map-referral.type"],
    [
      "a record count far larger than the data",
      edit(NODE_REFERRAL_HEX, 3, 0xff),
      "map-referral.record-count",
    ],
    [
      "a record count one larger than the records present",
      edit(DELEGATION_HOLE_HEX, 3, 2),
      "map-referral.record-count",
    ],
    [
      "a referral count larger than the refs present",
      edit(NODE_REFERRAL_HEX, 16, 3),
      "map-referral.record[0].locator[2]",
    ],
    [
      "a SigCnt larger than the signatures present",
      edit(SIGNED_HEX, 20, 0x20),
      "map-referral.record[0].sig-count",
    ],
    [
      "a Sig Length larger than the data",
      edit(SIGNED_HEX, 54, 0x00, 0x09),
      "map-referral.record[0].signature[0].signature",
    ],
    [
      "an IPv4 EID mask-len above 32",
      edit(NODE_REFERRAL_HEX, 17, 33),
      "map-referral.record[0].eid-mask-len",
    ],
    [
      "an unknown ref AFI",
      edit(NODE_REFERRAL_HEX, 34, 0x00, 0x09),
      "map-referral.record[0].locator[0].address.afi",
    ],
    ["trailing bytes", hex(NODE_REFERRAL_HEX + "00"), "map-referral"],
  ];
  for (const [what, bytes, field] of cases) {
    try {
      parseMapReferral(bytes);
      assert.fail(`accepted ${what}`);
    } catch (e) {
      assert.ok(e instanceof WireError, `${what}: ${e}`);
      assert.equal(e.field, field, what);
    }
  }
  throwsWire(() => parseMapReferral(new Uint8Array(0)), "map-referral.header");
});

// --- Random round trips -----------------------------------------------------

Deno.test("emitMapReferral() and parseMapReferral() round-trip 1,000 random messages", () => {
  const rng = new Rng(0x6d6170);
  for (let i = 0; i < 1000; i++) {
    const m = randomMapReferral(rng);
    const bytes = emitMapReferral(m);
    assert.equal(bytes.length, mapReferralLength(m));
    assert.deepEqual(parseMapReferral(bytes), m, `case ${i}`);
    const off = i % 13;
    const buf = new Uint8Array(bytes.length + off + 5).fill(0xa5);
    assert.deepEqual(emitMapReferral(m, buf, off), bytes, `case ${i} at offset ${off}`);
    assert.deepEqual(buf.subarray(off + bytes.length), hex("a5a5a5a5a5"));
  }
});
