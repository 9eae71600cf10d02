import assert from "node:assert/strict";
import {
  ACTION,
  type EidRecord,
  eidRecordLength,
  emitEidRecord,
  parseEidRecord,
  readEidRecord,
  REFERRAL_ACTION,
  writeEidRecord,
} from "./eid_record.ts";
import { type Address, NO_ADDRESS } from "./address.ts";
import type { LocatorRecord } from "./locator.ts";
import { Reader, Writer } from "./cursor.ts";
import { WireError } from "./errors.ts";
import { prng, randomEidRecord, Rng } from "../tests/wire_gen.ts";
import { hex } from "../tests/hex.ts";

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function throwsWire(fn: () => unknown, field: string, offset?: number): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof WireError, `expected WireError, got ${e}`);
    assert.equal(e.field, field);
    if (offset !== undefined) assert.equal(e.offset, offset, `offset of ${field}`);
    return true;
  });
}

/** Emits into a 0xa5-filled buffer at `offset` and checks the bytes around it are untouched. */
function emitAt(rec: EidRecord, offset: number): Uint8Array {
  const len = eidRecordLength(rec);
  const buf = new Uint8Array(offset + len + 4).fill(0xa5);
  const out = emitEidRecord(rec, buf, offset);
  assert.equal(out.length, len);
  assert.equal(out.buffer, buf.buffer);
  assert.equal(out.byteOffset, offset);
  for (let i = 0; i < offset; i++) assert.equal(buf[i], 0xa5, `byte ${i} before`);
  for (let i = offset + len; i < buf.length; i++) assert.equal(buf[i], 0xa5, `byte ${i} after`);
  return out;
}

const v4 = (ip: string): Address => ({ kind: "ipv4", ip });
const v6 = (ip: string): Address => ({ kind: "ipv6", ip });

const loc = (over: Partial<LocatorRecord>): LocatorRecord => ({
  priority: 0,
  weight: 0,
  mPriority: 0,
  mWeight: 0,
  local: false,
  probed: false,
  reachable: false,
  address: v4("192.0.2.1"),
  ...over,
});

const base: EidRecord = {
  ttl: 0,
  maskLen: 0,
  action: 0,
  authoritative: false,
  incomplete: false,
  sigCount: 0,
  mapVersion: 0,
  eid: NO_ADDRESS,
  locators: [],
};

/**
 * Fixtures from the RFC 9301 §5.4 record layout (and RFC 8111 §6.4 for the
 * Map-Referral I bit and SigCnt), written by hand.
 */
const fixtures: { name: string; bytes: string; record: EidRecord }[] = [
  {
    name: "Map-Reply record with two locators",
    bytes: "000005a0" + // Record TTL = 1440 minutes
      "02" + // Locator Count = 2
      "18" + // EID mask-len = 24
      "10" + "00" + // ACT = 0, A = 1, Reserved
      "0123" + // Rsvd = 0, Map-Version Number = 0x123
      "0001" + "c6336400" + // EID-Prefix-AFI = 1, 198.51.100.0
      "01" + "64" + "ff" + "00" + // Priority 1, Weight 100, M Priority 255, M Weight 0
      "0005" + // L=1, p=0, R=1
      "0001" + "c0000201" + // Loc-AFI = 1, 192.0.2.1
      "02" + "32" + "ff" + "00" + // Priority 2, Weight 50, M Priority 255, M Weight 0
      "0001" + // R=1
      "0002" + "20010db8000000000000000000000002", // Loc-AFI = 2, 2001:db8::2
    record: {
      ttl: 1440,
      maskLen: 24,
      action: ACTION.NO_ACTION,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0x123,
      eid: v4("198.51.100.0"),
      locators: [
        loc({ priority: 1, weight: 100, mPriority: 255, local: true, reachable: true }),
        loc({
          priority: 2,
          weight: 50,
          mPriority: 255,
          reachable: true,
          address: v6("2001:db8::2"),
        }),
      ],
    },
  },
  {
    name: "negative Map-Reply record (Drop/No-Reason)",
    bytes: "0000000f" + // Record TTL = 15
      "00" + // Locator Count = 0
      "08" + // EID mask-len = 8
      "60" + "00" + // ACT = 3 (Drop/No-Reason), A = 0
      "0000" + // Map-Version Number = 0
      "0001" + "0a000000", // 10.0.0.0
    record: {
      ...base,
      ttl: 15,
      maskLen: 8,
      action: ACTION.DROP_NO_REASON,
      eid: v4("10.0.0.0"),
    },
  },
  {
    name: "Map-Referral record with I bit and SigCnt",
    bytes: "ffffffff" + // Record TTL = 0xffffffff
      "01" + // Referral Count = 1
      "10" + // EID mask-len = 16
      "58" + "00" + // ACT = 2 (MS-ACK), A = 1, I = 1
      "3abc" + // SigCnt = 3, Map Version Number = 0xabc
      "4003" + "0000" + "02" + "00" + "000a" + // EID-AFI = LCAF, Instance ID, length 10
      "00000001" + "0001" + "0a000000" + // IID 1, 10.0.0.0
      "00" + "00" + "00" + "00" + // Priority, Weight, M Priority, M Weight
      "0000" + // no flags
      "0001" + "c0000203", // 192.0.2.3
    record: {
      ttl: 0xffffffff,
      maskLen: 16,
      action: REFERRAL_ACTION.MS_ACK,
      authoritative: true,
      incomplete: true,
      sigCount: 3,
      mapVersion: 0xabc,
      eid: { kind: "iid", iid: 1, iidMaskLen: 0, address: v4("10.0.0.0") },
      locators: [loc({ address: v4("192.0.2.3") })],
    },
  },
  {
    name: "IPv6 EID record (Natively-Forward)",
    bytes: "0000003c" + // Record TTL = 60
      "00" + // Locator Count = 0
      "30" + // EID mask-len = 48
      "20" + "00" + // ACT = 1 (Natively-Forward)
      "0fff" + // Map-Version Number = 0xfff
      "0002" + "20010db8000100000000000000000000", // 2001:db8:1::
    record: {
      ...base,
      ttl: 60,
      maskLen: 48,
      action: ACTION.NATIVELY_FORWARD,
      mapVersion: 0xfff,
      eid: v6("2001:db8:1::"),
    },
  },
  {
    name: "MAC EID in an Instance ID, /48",
    bytes: "00000001" + // Record TTL = 1
      "00" + // Locator Count = 0
      "30" + // EID mask-len = 48
      "a0" + "00" + // ACT = 5 (Drop/Auth-Failure)
      "0000" + // Map-Version Number = 0
      "4003" + "0000" + "02" + "00" + "000c" + // Instance ID LCAF, length 12
      "00000010" + // IID 16
      "4005" + "0011223344aa", // MAC 00:11:22:33:44:aa
    record: {
      ...base,
      ttl: 1,
      maskLen: 48,
      action: ACTION.DROP_AUTH_FAILURE,
      eid: {
        kind: "iid",
        iid: 16,
        iidMaskLen: 0,
        address: { kind: "mac", mac: "00:11:22:33:44:aa" },
      },
    },
  },
  {
    name: "AFI 0 EID",
    bytes: "00000000" + // TTL = 0
      "00" + "00" + // Locator Count = 0, mask-len 0
      "00" + "00" + // ACT 0, A 0
      "0000" + // Map-Version 0
      "0000", // AFI = 0
    record: base,
  },
];

for (const f of fixtures) {
  Deno.test(`parseEidRecord() decodes the ${f.name} fixture`, () => {
    assert.deepStrictEqual(parseEidRecord(hex(f.bytes)), f.record);
  });

  Deno.test(`emitEidRecord() writes the ${f.name} fixture byte for byte`, () => {
    const bytes = hex(f.bytes);
    assert.equal(eidRecordLength(f.record), bytes.length);
    assert.equal(toHex(emitEidRecord(f.record)), toHex(bytes));
    assert.equal(toHex(emitAt(f.record, 9)), toHex(bytes));
  });

  Deno.test(`parseEidRecord() rejects the ${f.name} fixture truncated at every byte`, () => {
    const bytes = hex(f.bytes);
    for (let n = 0; n < bytes.length; n++) {
      assert.throws(
        () => parseEidRecord(bytes.subarray(0, n)),
        (e: unknown) => e instanceof WireError,
        `truncated to ${n} bytes`,
      );
    }
  });
}

// ---------------------------------------------------------------------------
// Bit positions
// ---------------------------------------------------------------------------

Deno.test("emitEidRecord() puts ACT in the top three bits of byte 6", () => {
  for (let action = 0; action < 8; action++) {
    const b = emitEidRecord({ ...base, action });
    assert.equal(b[6], action << 5, `action ${action}`);
    assert.equal(b[7], 0);
    assert.equal(parseEidRecord(b).action, action);
  }
});

Deno.test("emitEidRecord() puts A at 0x10 and I at 0x08 of byte 6", () => {
  assert.equal(emitEidRecord({ ...base, authoritative: true })[6], 0x10);
  assert.equal(emitEidRecord({ ...base, incomplete: true })[6], 0x08);
  const both = emitEidRecord({ ...base, action: 7, authoritative: true, incomplete: true });
  assert.equal(both[6], 0xf8, "the low three reserved bits stay zero");
});

Deno.test("emitEidRecord() puts SigCnt in the top four bits and the map version in the low twelve", () => {
  const cases: [number, number, string][] = [
    [0, 0, "0000"],
    [1, 0, "1000"],
    [15, 0, "f000"],
    [0, 1, "0001"],
    [0, 0xfff, "0fff"],
    [0xa, 0x5b6, "a5b6"],
  ];
  for (const [sigCount, mapVersion, wire] of cases) {
    const rec = { ...base, sigCount, mapVersion };
    const b = emitEidRecord(rec);
    assert.equal(toHex(b.subarray(8, 10)), wire);
    assert.deepStrictEqual(parseEidRecord(b), rec);
  }
});

Deno.test("emitEidRecord() writes the TTL, locator count and mask-len at bytes 0..5", () => {
  const b = emitEidRecord({
    ...base,
    ttl: 0x01020304,
    maskLen: 32,
    eid: v4("10.0.0.1"),
    locators: [loc({}), loc({}), loc({})],
  });
  assert.equal(toHex(b.subarray(0, 6)), "01020304" + "03" + "20");
});

Deno.test("parseEidRecord() ignores the reserved bits after A and I", () => {
  const rec = parseEidRecord(hex("00000000" + "00" + "00" + "07" + "ff" + "0000" + "0000"));
  assert.deepStrictEqual(rec, base);
});

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

const bad: { name: string; bytes: string; field: string; offset: number }[] = [
  { name: "an empty buffer", bytes: "", field: "record", offset: 0 },
  {
    name: "a record cut before the map version",
    bytes: "00000001" + "00" + "18" + "0000",
    field: "record",
    offset: 0,
  },
  {
    name: "a record without its EID-AFI",
    bytes: "00000001" + "00" + "18" + "0000" + "0000",
    field: "record.eid.afi",
    offset: 10,
  },
  {
    name: "an unknown EID-AFI",
    bytes: "00000001" + "00" + "18" + "0000" + "0000" + "0063" + "00000000",
    field: "record.eid.afi",
    offset: 10,
  },
  {
    name: "an IPv4 mask-len above 32",
    bytes: "00000001" + "00" + "21" + "0000" + "0000" + "0001" + "0a000000",
    field: "record.eid-mask-len",
    offset: 5,
  },
  {
    name: "an IPv6 mask-len above 128",
    bytes: "00000001" + "00" + "81" + "0000" + "0000" + "0002" +
      "20010db8000000000000000000000000",
    field: "record.eid-mask-len",
    offset: 5,
  },
  {
    name: "a MAC mask-len above 48",
    bytes: "00000001" + "00" + "31" + "0000" + "0000" + "4005" + "001122334455",
    field: "record.eid-mask-len",
    offset: 5,
  },
  {
    name: "an IPv4 mask-len above 32 inside an Instance ID",
    bytes: "00000001" + "00" + "ff" + "0000" + "0000" +
      "4003" + "0000" + "0200" + "000a" + "00000001" + "0001" + "0a000000",
    field: "record.eid-mask-len",
    offset: 5,
  },
  {
    name: "a locator count larger than the data",
    bytes: "00000001" + "02" + "18" + "0000" + "0000" + "0001" + "0a000000" +
      "01010101" + "0000" + "0001" + "c0000201",
    field: "record.locator[1]",
    offset: 28,
  },
  {
    name: "a locator with an unknown AFI",
    bytes: "00000001" + "01" + "18" + "0000" + "0000" + "0001" + "0a000000" +
      "01010101" + "0000" + "0007" + "c0000201",
    field: "record.locator[0].address.afi",
    offset: 22,
  },
  {
    name: "trailing bytes after the locators",
    bytes: "00000001" + "00" + "18" + "0000" + "0000" + "0001" + "0a000000" + "00",
    field: "record",
    offset: 16,
  },
];

for (const c of bad) {
  Deno.test(`parseEidRecord() rejects ${c.name}`, () => {
    throwsWire(() => parseEidRecord(hex(c.bytes)), c.field, c.offset);
  });
}

Deno.test("parseEidRecord() accepts mask-len 32 for IPv4, 128 for IPv6 and 48 for MAC", () => {
  assert.equal(
    parseEidRecord(hex("00000001" + "00" + "20" + "00000000" + "0001" + "0a000001")).maskLen,
    32,
  );
  assert.equal(
    parseEidRecord(
      hex("00000001" + "00" + "80" + "00000000" + "0002" + "20010db8000000000000000000000001"),
    ).maskLen,
    128,
  );
  assert.equal(
    parseEidRecord(hex("00000001" + "00" + "30" + "00000000" + "4005" + "001122334455")).maskLen,
    48,
  );
});

Deno.test("parseEidRecord() does not bound the mask-len of EIDs without a fixed length", () => {
  // AFI 0 and a source/dest key carry their prefix lengths elsewhere.
  assert.equal(parseEidRecord(hex("00000001" + "00" + "ff" + "00000000" + "0000")).maskLen, 255);
  const srcDst = "4003" + "0000" + "0c00" + "0010" + "00000818" + "0001" + "0a000000" +
    "0001" + "c0000200";
  assert.equal(parseEidRecord(hex("00000001" + "00" + "40" + "00000000" + srcDst)).maskLen, 64);
});

Deno.test("readEidRecord() names its errors after the field it is given", () => {
  throwsWire(
    () =>
      readEidRecord(
        new Reader(hex("00000001" + "00" + "21" + "0000" + "0000" + "0001" + "0a000000")),
        "map-register.record[3]",
      ),
    "map-register.record[3].eid-mask-len",
    5,
  );
});

// ---------------------------------------------------------------------------
// Emit misuse
// ---------------------------------------------------------------------------

Deno.test("emitEidRecord() throws RangeError for fields out of range", () => {
  const cases: Partial<EidRecord>[] = [
    { ttl: -1 },
    { ttl: 2 ** 32 },
    { ttl: 1.5 },
    { maskLen: 256 },
    { action: 8 },
    { sigCount: 16 },
    { mapVersion: 0x1000 },
    { locators: Array.from({ length: 256 }, () => loc({})) },
  ];
  for (const c of cases) {
    assert.throws(
      () => emitEidRecord({ ...base, ...c }),
      RangeError,
      JSON.stringify(c).slice(0, 60),
    );
  }
});

Deno.test("emitEidRecord() accepts 255 locators, the most the count can carry", () => {
  const rec = { ...base, locators: Array.from({ length: 255 }, () => loc({})) };
  const b = emitEidRecord(rec);
  assert.equal(b[4], 255);
  assert.equal(parseEidRecord(b).locators.length, 255);
});

Deno.test("emitEidRecord() throws RangeError when the buffer is too small", () => {
  const rec = fixtures[0]!.record;
  const len = eidRecordLength(rec);
  assert.throws(() => emitEidRecord(rec, new Uint8Array(len - 1)), RangeError);
  assert.throws(() => emitEidRecord(rec, new Uint8Array(len), 1), RangeError);
});

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

for (const f of fixtures) {
  Deno.test(`parseEidRecord(emitEidRecord(x)) equals x for the ${f.name} fixture`, () => {
    assert.deepStrictEqual(parseEidRecord(emitAt(f.record, 1)), f.record);
  });
}

Deno.test("parseEidRecord(emitEidRecord(x)) equals x for 1,000 random records", () => {
  const rng = new Rng(0xe1d);
  for (let i = 0; i < 1_000; i++) {
    const rec = randomEidRecord(rng);
    const b = emitAt(rec, rng.int(8));
    assert.equal(b.length, eidRecordLength(rec));
    assert.deepStrictEqual(parseEidRecord(b), rec, `#${i} ${toHex(b)}`);
  }
});

Deno.test("readEidRecord() and writeEidRecord() compose back to back in one buffer", () => {
  const a = fixtures[0]!.record;
  const b = fixtures[2]!.record;
  const buf = new Uint8Array(3 + eidRecordLength(a) + eidRecordLength(b)).fill(0xa5);
  const w = new Writer(buf, 3);
  writeEidRecord(w, a);
  writeEidRecord(w, b);
  assert.equal(w.pos, buf.length);
  const r = new Reader(buf, 3);
  assert.deepStrictEqual(readEidRecord(r), a);
  assert.deepStrictEqual(readEidRecord(r), b);
  assert.equal(r.remaining, 0);
});

Deno.test("parseEidRecord() throws only WireError on 20,000 mutated fixtures", () => {
  const rand = prng(7);
  for (let i = 0; i < 20_000; i++) {
    const f = fixtures[Math.floor(rand() * fixtures.length)]!;
    const b = hex(f.bytes);
    const flips = 1 + Math.floor(rand() * 3);
    for (let k = 0; k < flips; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    try {
      parseEidRecord(b);
    } catch (e) {
      assert.ok(e instanceof WireError, `${f.name} #${i}: ${e}`);
    }
  }
});
