import assert from "node:assert/strict";
import { type Address, NO_ADDRESS } from "./address.ts";
import { Reader, Writer } from "./cursor.ts";
import { ACTION } from "./eid_record.ts";
import { WireError } from "./errors.ts";
import { randomMapRequest, Rng } from "../tests/wire_gen.ts";
import {
  emitMapRequest,
  type MapRequest,
  mapRequestLength,
  parseMapRequest,
  readMapRequest,
  writeMapRequest,
} from "./map_request.ts";
import { hex } from "../tests/hex.ts";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** A copy of `b` with `values` written from byte `at`. */
function patch(b: Uint8Array, at: number, ...values: number[]): Uint8Array {
  const out = b.slice();
  out.set(values, at);
  return out;
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

function wireError(fn: () => unknown): WireError {
  try {
    fn();
  } catch (e) {
    if (e instanceof WireError) return e;
    throw e;
  }
  return assert.fail("no WireError thrown");
}

function throwsWire(fn: () => unknown, field: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof WireError, `expected WireError, got ${e}`);
    assert.equal(e.field, field, e.message);
    return true;
  });
}

const v4 = (ip: string): Address => ({ kind: "ipv4", ip });
const v6 = (ip: string): Address => ({ kind: "ipv6", ip });

/** A Map-Request with every flag clear, for spreading. */
const base: MapRequest = {
  authoritative: false,
  probe: false,
  smr: false,
  pitr: false,
  smrInvoked: false,
  localXtr: false,
  dontMapReply: false,
  nonce: 0n,
  sourceEid: NO_ADDRESS,
  itrRlocs: [v4("192.0.2.1")],
  records: [],
};

// ---------------------------------------------------------------------------
// Fixtures, written by hand from the RFC 9301 §5.2 layout
// ---------------------------------------------------------------------------

const IPV4_ONE_RECORD = hex(
  "10" + // Type=1, A=0 M=0 P=0 S=0
    "00" + // p=0 s=0, R R, Rsvd
    "00" + // Rsvd, L=0 D=0, IRC=0 (one ITR-RLOC)
    "01" + // Record Count 1
    "0123456789abcdef" + // Nonce
    "0001" + "0a000001" + // Source-EID-AFI 1, 10.0.0.1
    "0001" + "c6336401" + // ITR-RLOC-AFI 1, 198.51.100.1
    "00" + // Rec: Reserved
    "18" + // EID mask-len 24
    "0001" + "0a020000", // EID-Prefix-AFI 1, 10.2.0.0
);

const SMR = hex(
  "11" + // Type=1, A=0 M=0 P=0 S=1 (SMR)
    "00" + // p=0 s=0
    "20" + // L=0 D=1 (no Map-Reply wanted), IRC=0
    "01" + // Record Count 1
    "1122334455667788" + // Nonce
    "0001" + "0a010001" + // Source-EID-AFI 1, 10.1.0.1
    "0001" + "c0000201" + // ITR-RLOC-AFI 1, 192.0.2.1
    "00" + "20" + // Reserved, EID mask-len 32
    "0001" + "0a020005", // EID-Prefix-AFI 1, 10.2.0.5
);

const PROBE_WITH_MAP_REPLY = hex(
  "16" + // Type=1, A=0 M=1 P=1 S=0
    "00" + // p=0 s=0
    "00" + // L=0 D=0, IRC=0
    "01" + // Record Count 1
    "fedcba9876543210" + // Nonce
    "0000" + // Source-EID-AFI 0 (no source EID)
    "0001" + "c0000201" + // ITR-RLOC-AFI 1, 192.0.2.1
    "00" + "18" + "0001" + "0a020000" + // Rec: Reserved, mask-len 24, AFI 1, 10.2.0.0
    // Map-Reply record (RFC 9301 §5.4):
    "000005a0" + // Record TTL 1440
    "01" + // Locator Count 1
    "18" + // EID mask-len 24
    "10" + // ACT=0 (no action), A=1
    "00" + // Reserved
    "0000" + // Rsvd, Map-Version 0
    "0001" + "0a010000" + // EID-Prefix-AFI 1, 10.1.0.0
    "01" + "64" + "ff" + "00" + // Priority 1, Weight 100, M Priority 255, M Weight 0
    "00" + "05" + // Unused Flags, L=1 p=0 R=1
    "0001" + "c0000201", // Loc-AFI 1, 192.0.2.1
);

const IPV6_TWO_ITR_RLOCS = hex(
  "10" + // Type=1, no flags
    "40" + // p=0 s=1 (SMR-invoked)
    "01" + // L=0 D=0, IRC=1 (two ITR-RLOCs)
    "01" + // Record Count 1
    "0000000000000001" + // Nonce
    "0002" + "20010db8000100000000000000000001" + // Source-EID-AFI 2, 2001:db8:1::1
    "0001" + "cb007105" + // ITR-RLOC-AFI 1, 203.0.113.5
    "0002" + "20010db8ffff00000000000000000005" + // ITR-RLOC-AFI 2, 2001:db8:ffff::5
    "00" + "30" + // Reserved, EID mask-len 48
    "0002" + "20010db8000200000000000000000000", // EID-Prefix-AFI 2, 2001:db8:2::
);

const INSTANCE_ID = hex(
  "10" + "00" + "00" + "01" + // Type=1, no flags, IRC=0, Record Count 1
    "0a0b0c0d0e0f1011" + // Nonce
    // Source EID: Instance-ID LCAF (RFC 8060 §4.1)
    "4003" + // Source-EID-AFI 16387 (LCAF)
    "00" + "00" + // Rsvd1, Flags
    "02" + // Type 2 (Instance ID)
    "00" + // IID mask-len 0
    "000a" + // Length 10
    "000003e8" + // Instance ID 1000
    "0001" + "0a000001" + // AFI 1, 10.0.0.1
    "0001" + "c0000201" + // ITR-RLOC-AFI 1, 192.0.2.1
    "00" + "18" + // Rec: Reserved, EID mask-len 24
    "4003" + "00" + "00" + "02" + "00" + "000a" + // EID-Prefix-AFI LCAF, type 2, length 10
    "000003e8" + // Instance ID 1000
    "0001" + "0a020000", // AFI 1, 10.2.0.0
);

const EVERY_FLAG = hex(
  "1b" + // Type=1, A=1 M=0 P=1 S=1
    "c0" + // p=1 s=1, R=0 R=0, Rsvd 0
    "60" + // Rsvd 0, L=1 D=1, IRC=0
    "01" + // Record Count 1
    "ffffffffffffffff" + // Nonce (all ones)
    "0000" + // Source-EID-AFI 0
    "0001" + "c0000201" + // ITR-RLOC-AFI 1, 192.0.2.1
    "00" + "10" + "0001" + "0a020000", // Rec: mask-len 16, AFI 1, 10.2.0.0
);

const fixtures: { name: string; bytes: Uint8Array; message: MapRequest }[] = [
  {
    name: "an IPv4 Map-Request with one ITR-RLOC and one record",
    bytes: IPV4_ONE_RECORD,
    message: {
      ...base,
      nonce: 0x0123456789abcdefn,
      sourceEid: v4("10.0.0.1"),
      itrRlocs: [v4("198.51.100.1")],
      records: [{ maskLen: 24, eid: v4("10.2.0.0") }],
    },
  },
  {
    name: "a Solicit-Map-Request with the D bit",
    bytes: SMR,
    message: {
      ...base,
      smr: true,
      dontMapReply: true,
      nonce: 0x1122334455667788n,
      sourceEid: v4("10.1.0.1"),
      records: [{ maskLen: 32, eid: v4("10.2.0.5") }],
    },
  },
  {
    name: "an RLOC-probe carrying a Map-Reply record",
    bytes: PROBE_WITH_MAP_REPLY,
    message: {
      ...base,
      probe: true,
      nonce: 0xfedcba9876543210n,
      records: [{ maskLen: 24, eid: v4("10.2.0.0") }],
      mapReply: {
        ttl: 1440,
        maskLen: 24,
        action: ACTION.NO_ACTION,
        authoritative: true,
        incomplete: false,
        sigCount: 0,
        mapVersion: 0,
        eid: v4("10.1.0.0"),
        locators: [{
          priority: 1,
          weight: 100,
          mPriority: 255,
          mWeight: 0,
          local: true,
          probed: false,
          reachable: true,
          address: v4("192.0.2.1"),
        }],
      },
    },
  },
  {
    name: "an IPv6 source EID with two ITR-RLOCs, one IPv6",
    bytes: IPV6_TWO_ITR_RLOCS,
    message: {
      ...base,
      smrInvoked: true,
      nonce: 1n,
      sourceEid: v6("2001:db8:1::1"),
      itrRlocs: [v4("203.0.113.5"), v6("2001:db8:ffff::5")],
      records: [{ maskLen: 48, eid: v6("2001:db8:2::") }],
    },
  },
  {
    name: "Instance-ID LCAF source EID and EID prefix",
    bytes: INSTANCE_ID,
    message: {
      ...base,
      nonce: 0x0a0b0c0d0e0f1011n,
      sourceEid: { kind: "iid", iid: 1000, iidMaskLen: 0, address: v4("10.0.0.1") },
      records: [{
        maskLen: 24,
        eid: { kind: "iid", iid: 1000, iidMaskLen: 0, address: v4("10.2.0.0") },
      }],
    },
  },
  {
    name: "every header flag but M",
    bytes: EVERY_FLAG,
    message: {
      authoritative: true,
      probe: true,
      smr: true,
      pitr: true,
      smrInvoked: true,
      localXtr: true,
      dontMapReply: true,
      nonce: 0xffffffffffffffffn,
      sourceEid: NO_ADDRESS,
      itrRlocs: [v4("192.0.2.1")],
      records: [{ maskLen: 16, eid: v4("10.2.0.0") }],
    },
  },
];

for (const f of fixtures) {
  Deno.test(`parseMapRequest() reads ${f.name}`, () => {
    assert.deepStrictEqual(parseMapRequest(f.bytes), f.message);
  });

  Deno.test(`emitMapRequest() writes ${f.name} byte for byte`, () => {
    assert.equal(mapRequestLength(f.message), f.bytes.length);
    assert.equal(toHex(emitMapRequest(f.message)), toHex(f.bytes));
  });

  Deno.test(`emitMapRequest() writes ${f.name} at an offset, leaving the bytes around untouched`, () => {
    const len = f.bytes.length;
    const buf = new Uint8Array(len + 14).fill(0xa5);
    const out = emitMapRequest(f.message, buf, 7);
    assert.equal(out.buffer, buf.buffer);
    assert.equal(out.byteOffset, 7);
    assert.equal(out.length, len);
    assert.equal(toHex(out), toHex(f.bytes));
    assert.ok(buf.subarray(0, 7).every((b) => b === 0xa5), "bytes before were touched");
    assert.ok(buf.subarray(7 + len).every((b) => b === 0xa5), "bytes after were touched");
    assert.deepStrictEqual(parseMapRequest(out), f.message);
  });

  Deno.test(`parseMapRequest() throws WireError for ${f.name} truncated at every length`, () => {
    for (let n = 0; n < f.bytes.length; n++) {
      assert.throws(() => parseMapRequest(f.bytes.slice(0, n)), WireError, `length ${n}`);
    }
  });
}

// ---------------------------------------------------------------------------
// Bit positions, one flag at a time (RFC 9301 §5.2 figure)
// ---------------------------------------------------------------------------

const flagBits: { flag: keyof MapRequest; header: string }[] = [
  { flag: "authoritative", header: "18000000" }, // bit 4
  { flag: "probe", header: "12000000" }, // bit 6
  { flag: "smr", header: "11000000" }, // bit 7
  { flag: "pitr", header: "10800000" }, // bit 8
  { flag: "smrInvoked", header: "10400000" }, // bit 9
  { flag: "localXtr", header: "10004000" }, // bit 17
  { flag: "dontMapReply", header: "10002000" }, // bit 18
];

for (const { flag, header } of flagBits) {
  Deno.test(`emitMapRequest() puts ${flag} in its own bit and parseMapRequest() reads it back`, () => {
    const m = { ...base, [flag]: true } as MapRequest;
    const out = emitMapRequest(m);
    assert.equal(toHex(out.subarray(0, 4)), header);
    assert.deepStrictEqual(parseMapRequest(out), m);
  });
}

Deno.test("emitMapRequest() sets the M bit exactly when a Map-Reply record is present", () => {
  const withRecord = emitMapRequest(fixtures[2]!.message);
  assert.equal(withRecord[0]! & 0x04, 0x04);
  const without = emitMapRequest(fixtures[0]!.message);
  assert.equal(without[0]! & 0x04, 0);
});

Deno.test("emitMapRequest() encodes IRC as the ITR-RLOC count minus one", () => {
  for (const n of [1, 2, 31, 32]) {
    const m = { ...base, itrRlocs: Array.from({ length: n }, () => v4("192.0.2.1")) };
    const out = emitMapRequest(m);
    assert.equal(out[2]! & 0x1f, n - 1);
    assert.equal(parseMapRequest(out).itrRlocs.length, n);
  }
});

Deno.test("parseMapRequest() ignores reserved bits and emitMapRequest() writes them as zero", () => {
  // Set R (bit 10), Rsvd (bits 12..16) and the record's Reserved byte but N.
  const noisy = patch(IPV4_ONE_RECORD, 1, 0x2f, 0x80);
  noisy[24] = 0x7f;
  const m = parseMapRequest(noisy);
  assert.deepStrictEqual(m, fixtures[0]!.message);
  assert.equal(toHex(emitMapRequest(m)), toHex(IPV4_ONE_RECORD));
});

// ---------------------------------------------------------------------------
// Publish/subscribe (RFC 9437 §4): the I bit with xTR-ID and Site-ID, the N bit
// ---------------------------------------------------------------------------

/** IPV4_ONE_RECORD subscribing: I bit, N on its record, xTR-ID and Site-ID after it. */
const SUBSCRIBE = hex(
  "10" + // Type=1, A=0 M=0 P=0 S=0
    "10" + // p=0 s=0, R, I=1, Rsvd
    "00" + // Rsvd, L=0 D=0, IRC=0 (one ITR-RLOC)
    "01" + // Record Count 1
    "0123456789abcdef" + // Nonce
    "0001" + "0a000001" + // Source-EID-AFI 1, 10.0.0.1
    "0001" + "c6336401" + // ITR-RLOC-AFI 1, 198.51.100.1
    "80" + // Rec: N=1, Reserved
    "18" + // EID mask-len 24
    "0001" + "0a020000" + // EID-Prefix-AFI 1, 10.2.0.0
    "000102030405060708090a0b0c0d0e0f" + // xTR-ID
    "1122334455667788", // Site-ID
);

const SUBSCRIBE_MESSAGE: MapRequest = {
  ...base,
  nonce: 0x0123456789abcdefn,
  sourceEid: v4("10.0.0.1"),
  itrRlocs: [v4("198.51.100.1")],
  records: [{ maskLen: 24, eid: v4("10.2.0.0"), notify: true }],
  xtrId: 0x000102030405060708090a0b0c0d0e0fn,
  siteId: 0x1122334455667788n,
};

Deno.test("parseMapRequest() reads a subscription: the N bit, the I bit, xTR-ID and Site-ID", () => {
  assert.deepStrictEqual(parseMapRequest(SUBSCRIBE), SUBSCRIBE_MESSAGE);
});

Deno.test("emitMapRequest() writes a subscription byte for byte", () => {
  assert.equal(toHex(emitMapRequest(SUBSCRIBE_MESSAGE)), toHex(SUBSCRIBE));
  assert.equal(mapRequestLength(SUBSCRIBE_MESSAGE), SUBSCRIBE.length);
});

Deno.test("parseMapRequest() reads the xTR-ID after the Map-Reply record when M is set", () => {
  const m: MapRequest = {
    ...fixtures[2]!.message,
    xtrId: 5n,
    siteId: 6n,
  };
  const bytes = emitMapRequest(m);
  assert.deepStrictEqual(parseMapRequest(bytes), m);
  assert.equal(
    toHex(bytes.subarray(bytes.length - 24)),
    "00".repeat(15) + "05" + "00".repeat(7) + "06",
  );
});

Deno.test("parseMapRequest() throws WireError for an I bit without the xTR-ID and Site-ID", () => {
  for (let cut = 1; cut <= 24; cut++) {
    const short = SUBSCRIBE.subarray(0, SUBSCRIBE.length - cut);
    throwsWire(() => parseMapRequest(short), "map-request.xtr-id");
  }
});

Deno.test("emitMapRequest() refuses an xTR-ID without a Site-ID and values out of range", () => {
  assert.throws(() => emitMapRequest({ ...base, xtrId: 1n }), TypeError);
  assert.throws(() => emitMapRequest({ ...base, siteId: 1n }), TypeError);
  assert.throws(() => emitMapRequest({ ...base, xtrId: 1n << 128n, siteId: 0n }), RangeError);
  assert.throws(() => emitMapRequest({ ...base, xtrId: 0n, siteId: 1n << 64n }), RangeError);
});

Deno.test("emitMapRequest() without xtrId, siteId and notify writes neither I nor N", () => {
  const out = emitMapRequest(fixtures[0]!.message);
  assert.equal(out[1]! & 0x10, 0);
  assert.equal(out[24]! & 0x80, 0);
});

Deno.test("parseMapRequest() accepts zero records", () => {
  const bytes = hex(
    "10" + "00" + "00" + "00" + // Type=1, IRC=0, Record Count 0
      "0000000000000007" + // Nonce
      "0000" + // Source-EID-AFI 0
      "0001" + "c0000201", // ITR-RLOC-AFI 1, 192.0.2.1
  );
  assert.deepStrictEqual(parseMapRequest(bytes), { ...base, nonce: 7n });
  assert.equal(toHex(emitMapRequest({ ...base, nonce: 7n })), toHex(bytes));
});

Deno.test("readMapRequest() stops after the message and leaves the reader there", () => {
  const bytes = concat(hex("ee"), PROBE_WITH_MAP_REPLY, hex("c0ffee"));
  const r = new Reader(bytes, 1);
  assert.deepStrictEqual(readMapRequest(r), fixtures[2]!.message);
  assert.equal(r.pos, 1 + PROBE_WITH_MAP_REPLY.length);
});

Deno.test("writeMapRequest() writes at the writer's position", () => {
  const buf = new Uint8Array(IPV4_ONE_RECORD.length + 3).fill(0xa5);
  const w = new Writer(buf, 3);
  writeMapRequest(w, fixtures[0]!.message);
  assert.equal(w.pos, buf.length);
  assert.equal(toHex(buf.subarray(3)), toHex(IPV4_ONE_RECORD));
  assert.equal(toHex(buf.subarray(0, 3)), "a5a5a5");
});

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

const badInputs: { name: string; bytes: Uint8Array; field: string }[] = [
  { name: "no bytes", bytes: new Uint8Array(0), field: "map-request.header" },
  {
    name: "a header cut inside the nonce",
    bytes: IPV4_ONE_RECORD.slice(0, 11),
    field: "map-request.header",
  },
  {
    name: "type 2 (a Map-Reply)",
    bytes: patch(IPV4_ONE_RECORD, 0, 0x20),
    field: "map-request.type",
  },
  { name: "type 0", bytes: patch(IPV4_ONE_RECORD, 0, 0x00), field: "map-request.type" },
  {
    name: "a record count larger than the data",
    bytes: patch(IPV4_ONE_RECORD, 3, 2),
    field: "map-request.record-count",
  },
  {
    name: "a record count larger than the data, ending inside a record",
    bytes: concat(patch(IPV4_ONE_RECORD, 3, 2), hex("00")),
    field: "map-request.record[1]",
  },
  {
    name: "a record count larger than the data, ending inside a record's EID",
    bytes: concat(patch(IPV4_ONE_RECORD, 3, 2), hex("00 18 00 01 0a")),
    field: "map-request.record[1].eid.ipv4",
  },
  {
    name: "an IRC larger than the ITR-RLOCs present",
    // IRC=1 (two ITR-RLOCs), no records, data ends after the first ITR-RLOC
    bytes: patch(IPV4_ONE_RECORD.slice(0, 24), 2, 0x01, 0x00),
    field: "map-request.irc",
  },
  {
    name: "an IRC of 31 where the record's bytes are read as a second ITR-RLOC",
    // the record's "00 18" reads as AFI 24, which has no known length
    bytes: patch(IPV4_ONE_RECORD, 2, 0x1f),
    field: "map-request.itr-rloc[1].afi",
  },
  {
    name: "an unknown AFI in a record",
    bytes: patch(IPV4_ONE_RECORD, 26, 0x00, 0x99),
    field: "map-request.record[0].eid.afi",
  },
  {
    name: "an unknown Source-EID-AFI",
    bytes: patch(IPV4_ONE_RECORD, 12, 0x00, 0x03),
    field: "map-request.source-eid.afi",
  },
  {
    name: "an unknown ITR-RLOC-AFI",
    bytes: patch(IPV4_ONE_RECORD, 18, 0x12, 0x34),
    field: "map-request.itr-rloc[0].afi",
  },
  {
    name: "an IPv4 EID mask-len of 33",
    bytes: patch(IPV4_ONE_RECORD, 25, 33),
    field: "map-request.record[0].eid-mask-len",
  },
  {
    name: "an Instance-ID EID mask-len longer than its IPv4 address",
    bytes: patch(INSTANCE_ID, 37, 33),
    field: "map-request.record[0].eid-mask-len",
  },
  {
    name: "an LCAF length past the end of the data inside the EID",
    bytes: patch(INSTANCE_ID, 44, 0x00, 0x0b),
    field: "map-request.record[0].eid.lcaf.length",
  },
  {
    name: "an LCAF length shorter than its Instance-ID contents",
    bytes: patch(INSTANCE_ID, 44, 0x00, 0x09),
    field: "map-request.record[0].eid.lcaf.iid.address.ipv4",
  },
  {
    name: "an LCAF length longer than its Instance-ID contents",
    bytes: concat(patch(INSTANCE_ID, 44, 0x00, 0x0c), hex("0000")),
    field: "map-request.record[0].eid.lcaf.length",
  },
  {
    name: "an LCAF length mismatch in the source EID",
    bytes: patch(INSTANCE_ID, 18, 0x00, 0x0c),
    field: "map-request.source-eid.lcaf.length",
  },
  {
    name: "the M bit with no Map-Reply record",
    bytes: patch(IPV4_ONE_RECORD, 0, 0x14),
    field: "map-request.map-reply",
  },
  {
    name: "a Map-Reply record announcing more locators than present",
    bytes: patch(PROBE_WITH_MAP_REPLY, 32, 2),
    field: "map-request.map-reply.locator[1]",
  },
  {
    name: "a trailing byte",
    bytes: concat(IPV4_ONE_RECORD, hex("00")),
    field: "map-request",
  },
  {
    name: "trailing bytes after the Map-Reply record",
    bytes: concat(PROBE_WITH_MAP_REPLY, hex("0000")),
    field: "map-request",
  },
];

for (const b of badInputs) {
  Deno.test(`parseMapRequest() rejects ${b.name}`, () => {
    throwsWire(() => parseMapRequest(b.bytes), b.field);
  });
}

Deno.test("parseMapRequest() reports the offset of a wrong type and of a bad record AFI", () => {
  assert.equal(wireError(() => parseMapRequest(patch(IPV4_ONE_RECORD, 0, 0x20))).offset, 0);
  assert.equal(wireError(() => parseMapRequest(patch(IPV4_ONE_RECORD, 26, 0x00, 0x99))).offset, 26);
  assert.equal(wireError(() => parseMapRequest(patch(IPV4_ONE_RECORD, 3, 2))).offset, 3);
});

// ---------------------------------------------------------------------------
// Misuse on emit
// ---------------------------------------------------------------------------

const misuse: { name: string; message: MapRequest }[] = [
  { name: "no ITR-RLOC", message: { ...base, itrRlocs: [] } },
  {
    name: "33 ITR-RLOCs",
    message: { ...base, itrRlocs: Array.from({ length: 33 }, () => v4("192.0.2.1")) },
  },
  {
    name: "256 records",
    message: {
      ...base,
      records: Array.from({ length: 256 }, () => ({ maskLen: 8, eid: v4("10.0.0.0") })),
    },
  },
  { name: "a negative nonce", message: { ...base, nonce: -1n } },
  { name: "a nonce of 2^64", message: { ...base, nonce: 1n << 64n } },
  {
    name: "an IPv4 mask-len of 33",
    message: { ...base, records: [{ maskLen: 33, eid: v4("10.0.0.0") }] },
  },
  { name: "a mask-len of 256", message: { ...base, records: [{ maskLen: 256, eid: NO_ADDRESS }] } },
  {
    name: "a fractional mask-len",
    message: { ...base, records: [{ maskLen: 1.5, eid: NO_ADDRESS }] },
  },
];

for (const m of misuse) {
  Deno.test(`emitMapRequest() throws RangeError for ${m.name}`, () => {
    assert.throws(() => emitMapRequest(m.message), RangeError);
  });
}

Deno.test("emitMapRequest() throws RangeError when `into` is too small", () => {
  const m = fixtures[0]!.message;
  assert.throws(() => emitMapRequest(m, new Uint8Array(31)), RangeError);
  assert.throws(() => emitMapRequest(m, new Uint8Array(40), 9), RangeError);
});

Deno.test("emitMapRequest() throws TypeError for an ITR-RLOC that is not an address", () => {
  assert.throws(() => emitMapRequest({ ...base, itrRlocs: [v4("300.0.0.1")] }), TypeError);
});

// ---------------------------------------------------------------------------
// Random round trips
// ---------------------------------------------------------------------------

Deno.test("1,000 random Map-Requests survive emit, parse and re-emit, also at an offset", () => {
  const g = new Rng(0x4d52);
  for (let i = 0; i < 1000; i++) {
    const m = randomMapRequest(g);
    const bytes = emitMapRequest(m);
    assert.equal(bytes.length, mapRequestLength(m));
    const back = parseMapRequest(bytes);
    assert.deepStrictEqual(back, m, `case ${i}`);
    assert.equal(toHex(emitMapRequest(back)), toHex(bytes), `case ${i}`);
    const off = g.int(16);
    const buf = new Uint8Array(bytes.length + off + 5).fill(0xa5);
    const out = emitMapRequest(m, buf, off);
    assert.equal(toHex(out), toHex(bytes), `case ${i} at ${off}`);
    assert.ok(buf.subarray(0, off).every((b) => b === 0xa5), `case ${i}: bytes before touched`);
    assert.ok(buf.subarray(off + bytes.length).every((b) => b === 0xa5), `case ${i}: after`);
  }
});

Deno.test("random Map-Requests truncated at a random length throw only WireError", () => {
  const g = new Rng(0x7472);
  for (let i = 0; i < 300; i++) {
    const bytes = emitMapRequest(randomMapRequest(g));
    const n = g.int(bytes.length);
    assert.throws(() => parseMapRequest(bytes.subarray(0, n)), WireError, `case ${i} at ${n}`);
  }
});
