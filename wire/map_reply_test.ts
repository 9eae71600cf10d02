import assert from "node:assert/strict";
import { type Address } from "./address.ts";
import { Reader, Writer } from "./cursor.ts";
import { WireError } from "./errors.ts";
import { randomMapReply, Rng } from "../tests/wire_gen.ts";
import {
  ACTION,
  emitMapReply,
  type MapReply,
  mapReplyLength,
  parseMapReply,
  readMapReply,
  writeMapReply,
} from "./map_reply.ts";
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

const v4 = (ip: string): Address => ({ kind: "ipv4", ip });
const v6 = (ip: string): Address => ({ kind: "ipv6", ip });

const base: MapReply = {
  probe: false,
  echoNonce: false,
  security: false,
  nonce: 0n,
  records: [],
};

// ---------------------------------------------------------------------------
// Fixtures, written by hand from the RFC 9301 §5.4 layout
// ---------------------------------------------------------------------------

const POSITIVE_AND_NEGATIVE = hex(
  "20" + // Type=2, P=0 E=0 S=0
    "0000" + // Reserved
    "02" + // Record Count 2
    "0102030405060708" + // Nonce
    // Record 0: positive, two locators
    "000005a0" + // Record TTL 1440
    "02" + // Locator Count 2
    "18" + // EID mask-len 24
    "10" + // ACT=0 (no action), A=1
    "00" + // Reserved
    "0000" + // Rsvd, Map-Version 0
    "0001" + "0a010000" + // EID-Prefix-AFI 1, 10.1.0.0
    "01" + "32" + "ff" + "00" + // Priority 1, Weight 50, M Priority 255, M Weight 0
    "00" + "05" + // Unused Flags, L=1 p=0 R=1
    "0001" + "c0000201" + // Loc-AFI 1, 192.0.2.1
    "02" + "32" + "ff" + "00" + // Priority 2, Weight 50, M Priority 255, M Weight 0
    "00" + "01" + // Unused Flags, L=0 p=0 R=1
    "0002" + "20010db8000000000000000000000010" + // Loc-AFI 2, 2001:db8::10
    // Record 1: negative, natively forward
    "0000000f" + // Record TTL 15
    "00" + // Locator Count 0
    "10" + // EID mask-len 16
    "20" + // ACT=1 (natively forward), A=0
    "00" + // Reserved
    "0000" + // Rsvd, Map-Version 0
    "0001" + "0a090000", // EID-Prefix-AFI 1, 10.9.0.0
);

const PROBE_REPLY_IID = hex(
  "2c" + // Type=2, P=1 E=1 S=0
    "0000" + // Reserved
    "01" + // Record Count 1
    "fedcba9876543210" + // Nonce
    "00000001" + // Record TTL 1
    "01" + // Locator Count 1
    "18" + // EID mask-len 24
    "10" + // ACT=0, A=1
    "00" + // Reserved
    "0123" + // Rsvd 0, Map-Version 0x123
    "4003" + // EID-Prefix-AFI 16387 (LCAF)
    "00" + "00" + "02" + "00" + // Rsvd1, Flags, Type 2 (Instance ID), IID mask-len 0
    "000a" + // Length 10
    "000003e8" + // Instance ID 1000
    "0001" + "0a010000" + // AFI 1, 10.1.0.0
    "01" + "64" + "ff" + "00" + // Priority 1, Weight 100, M Priority 255, M Weight 0
    "00" + "07" + // Unused Flags, L=1 p=1 R=1
    "0001" + "c0000201", // Loc-AFI 1, 192.0.2.1
);

const SECURITY_NO_RECORDS = hex(
  "22" + // Type=2, P=0 E=0 S=1
    "0000" + // Reserved
    "00" + // Record Count 0
    "0000000000000000", // Nonce 0
);

const fixtures: { name: string; bytes: Uint8Array; message: MapReply }[] = [
  {
    name: "a positive record with two locators and a natively-forward negative record",
    bytes: POSITIVE_AND_NEGATIVE,
    message: {
      ...base,
      nonce: 0x0102030405060708n,
      records: [
        {
          ttl: 1440,
          maskLen: 24,
          action: ACTION.NO_ACTION,
          authoritative: true,
          incomplete: false,
          sigCount: 0,
          mapVersion: 0,
          eid: v4("10.1.0.0"),
          locators: [
            {
              priority: 1,
              weight: 50,
              mPriority: 255,
              mWeight: 0,
              local: true,
              probed: false,
              reachable: true,
              address: v4("192.0.2.1"),
            },
            {
              priority: 2,
              weight: 50,
              mPriority: 255,
              mWeight: 0,
              local: false,
              probed: false,
              reachable: true,
              address: v6("2001:db8::10"),
            },
          ],
        },
        {
          ttl: 15,
          maskLen: 16,
          action: ACTION.NATIVELY_FORWARD,
          authoritative: false,
          incomplete: false,
          sigCount: 0,
          mapVersion: 0,
          eid: v4("10.9.0.0"),
          locators: [],
        },
      ],
    },
  },
  {
    name: "an RLOC-probe reply with echo-nonce, an Instance-ID EID and a map-version",
    bytes: PROBE_REPLY_IID,
    message: {
      ...base,
      probe: true,
      echoNonce: true,
      nonce: 0xfedcba9876543210n,
      records: [{
        ttl: 1,
        maskLen: 24,
        action: ACTION.NO_ACTION,
        authoritative: true,
        incomplete: false,
        sigCount: 0,
        mapVersion: 0x123,
        eid: { kind: "iid", iid: 1000, iidMaskLen: 0, address: v4("10.1.0.0") },
        locators: [{
          priority: 1,
          weight: 100,
          mPriority: 255,
          mWeight: 0,
          local: true,
          probed: true,
          reachable: true,
          address: v4("192.0.2.1"),
        }],
      }],
    },
  },
  {
    name: "the S bit with no records",
    bytes: SECURITY_NO_RECORDS,
    message: { ...base, security: true },
  },
];

for (const f of fixtures) {
  Deno.test(`parseMapReply() reads ${f.name}`, () => {
    assert.deepStrictEqual(parseMapReply(f.bytes), f.message);
  });

  Deno.test(`emitMapReply() writes ${f.name} byte for byte`, () => {
    assert.equal(mapReplyLength(f.message), f.bytes.length);
    assert.equal(toHex(emitMapReply(f.message)), toHex(f.bytes));
  });

  Deno.test(`emitMapReply() writes ${f.name} at an offset, leaving the bytes around untouched`, () => {
    const len = f.bytes.length;
    const buf = new Uint8Array(len + 14).fill(0xa5);
    const out = emitMapReply(f.message, buf, 7);
    assert.equal(out.buffer, buf.buffer);
    assert.equal(out.byteOffset, 7);
    assert.equal(toHex(out), toHex(f.bytes));
    assert.ok(buf.subarray(0, 7).every((b) => b === 0xa5), "bytes before were touched");
    assert.ok(buf.subarray(7 + len).every((b) => b === 0xa5), "bytes after were touched");
    assert.deepStrictEqual(parseMapReply(out), f.message);
  });

  Deno.test(`parseMapReply() throws WireError for ${f.name} truncated at every length`, () => {
    for (let n = 0; n < f.bytes.length; n++) {
      assert.throws(() => parseMapReply(f.bytes.slice(0, n)), WireError, `length ${n}`);
    }
  });
}

// ---------------------------------------------------------------------------
// Bit positions and reserved bits
// ---------------------------------------------------------------------------

const flagBits: { flag: "probe" | "echoNonce" | "security"; header: string }[] = [
  { flag: "probe", header: "28000000" }, // bit 4
  { flag: "echoNonce", header: "24000000" }, // bit 5
  { flag: "security", header: "22000000" }, // bit 6
];

for (const { flag, header } of flagBits) {
  Deno.test(`emitMapReply() puts ${flag} in its own bit and parseMapReply() reads it back`, () => {
    const m: MapReply = { ...base, [flag]: true };
    const out = emitMapReply(m);
    assert.equal(toHex(out.subarray(0, 4)), header);
    assert.deepStrictEqual(parseMapReply(out), m);
  });
}

Deno.test("parseMapReply() ignores the reserved header bits and emitMapReply() writes them as zero", () => {
  const noisy = patch(POSITIVE_AND_NEGATIVE, 0, 0x21, 0xff, 0xff);
  const m = parseMapReply(noisy);
  assert.deepStrictEqual(m, fixtures[0]!.message);
  assert.equal(toHex(emitMapReply(m)), toHex(POSITIVE_AND_NEGATIVE));
});

Deno.test("readMapReply() stops after the last record and leaves the reader there", () => {
  const bytes = concat(hex("eeee"), PROBE_REPLY_IID, hex("0102"));
  const r = new Reader(bytes, 2);
  assert.deepStrictEqual(readMapReply(r), fixtures[1]!.message);
  assert.equal(r.pos, 2 + PROBE_REPLY_IID.length);
});

Deno.test("writeMapReply() writes at the writer's position", () => {
  const buf = new Uint8Array(PROBE_REPLY_IID.length + 2).fill(0xa5);
  const w = new Writer(buf, 2);
  writeMapReply(w, fixtures[1]!.message);
  assert.equal(w.pos, buf.length);
  assert.equal(toHex(buf.subarray(2)), toHex(PROBE_REPLY_IID));
  assert.equal(toHex(buf.subarray(0, 2)), "a5a5");
});

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

// Offsets in POSITIVE_AND_NEGATIVE: record 0 at 12 (EID AFI at 22), its
// locator 1 at 40 (Loc-AFI at 46); record 1 at 64 (locator count at 68,
// mask-len at 69, EID AFI at 74). In PROBE_REPLY_IID the LCAF Length is at 28.
const badInputs: { name: string; bytes: Uint8Array; field: string; offset?: number }[] = [
  { name: "no bytes", bytes: new Uint8Array(0), field: "map-reply.header", offset: 0 },
  {
    name: "a header cut inside the nonce",
    bytes: POSITIVE_AND_NEGATIVE.slice(0, 10),
    field: "map-reply.header",
  },
  {
    name: "type 1 (a Map-Request)",
    bytes: patch(POSITIVE_AND_NEGATIVE, 0, 0x10),
    field: "map-reply.type",
    offset: 0,
  },
  {
    name: "a record count larger than the data",
    bytes: patch(POSITIVE_AND_NEGATIVE, 3, 3),
    field: "map-reply.record-count",
    offset: 3,
  },
  {
    name: "a record count larger than the data, ending inside a record",
    bytes: concat(patch(POSITIVE_AND_NEGATIVE, 3, 3), hex("00000001")),
    field: "map-reply.record[2]",
  },
  {
    name: "a locator count larger than the data",
    bytes: patch(POSITIVE_AND_NEGATIVE, 68, 1),
    field: "map-reply.record[1].locator[0]",
  },
  {
    name: "an unknown AFI in a locator",
    bytes: patch(POSITIVE_AND_NEGATIVE, 46, 0x00, 0x03),
    field: "map-reply.record[0].locator[1].address.afi",
    offset: 46,
  },
  {
    name: "an unknown AFI in a record's EID",
    bytes: patch(POSITIVE_AND_NEGATIVE, 74, 0xab, 0xcd),
    field: "map-reply.record[1].eid.afi",
    offset: 74,
  },
  {
    name: "an IPv4 EID mask-len of 33",
    bytes: patch(POSITIVE_AND_NEGATIVE, 69, 33),
    field: "map-reply.record[1].eid-mask-len",
    offset: 69,
  },
  {
    name: "an LCAF length past the end of the data inside the EID",
    bytes: patch(PROBE_REPLY_IID, 28, 0x00, 0xff),
    field: "map-reply.record[0].eid.lcaf.length",
    offset: 28,
  },
  {
    name: "an LCAF length longer than its Instance-ID contents",
    bytes: patch(PROBE_REPLY_IID, 28, 0x00, 0x0c),
    field: "map-reply.record[0].eid.lcaf.length",
    offset: 28,
  },
  {
    name: "a trailing byte",
    bytes: concat(POSITIVE_AND_NEGATIVE, hex("00")),
    field: "map-reply",
    offset: 80,
  },
  {
    name: "trailing bytes after a reply with no records",
    bytes: concat(SECURITY_NO_RECORDS, hex("0001")),
    field: "map-reply",
    offset: 12,
  },
];

for (const b of badInputs) {
  Deno.test(`parseMapReply() rejects ${b.name}`, () => {
    const e = wireError(() => parseMapReply(b.bytes));
    assert.equal(e.field, b.field, e.message);
    if (b.offset !== undefined) assert.equal(e.offset, b.offset, e.message);
  });
}

// ---------------------------------------------------------------------------
// Misuse on emit
// ---------------------------------------------------------------------------

const negative = fixtures[0]!.message.records[1]!;

const misuse: { name: string; message: MapReply; error: typeof RangeError | typeof TypeError }[] = [
  {
    name: "256 records",
    message: { ...base, records: Array.from({ length: 256 }, () => negative) },
    error: RangeError,
  },
  { name: "a negative nonce", message: { ...base, nonce: -5n }, error: RangeError },
  { name: "a nonce of 2^64", message: { ...base, nonce: 1n << 64n }, error: RangeError },
  {
    name: "a record action of 8",
    message: { ...base, records: [{ ...negative, action: 8 }] },
    error: RangeError,
  },
  {
    name: "a locator that is not an address",
    message: {
      ...base,
      records: [{
        ...negative,
        locators: [{ ...fixtures[1]!.message.records[0]!.locators[0]!, address: v4("a.b.c.d") }],
      }],
    },
    error: TypeError,
  },
];

for (const m of misuse) {
  Deno.test(`emitMapReply() throws ${m.error.name} for ${m.name}`, () => {
    assert.throws(() => emitMapReply(m.message), m.error);
  });
}

Deno.test("emitMapReply() throws RangeError when `into` is too small", () => {
  const m = fixtures[0]!.message;
  assert.throws(() => emitMapReply(m, new Uint8Array(79)), RangeError);
  assert.throws(() => emitMapReply(m, new Uint8Array(80), 1), RangeError);
});

// ---------------------------------------------------------------------------
// Random round trips
// ---------------------------------------------------------------------------

Deno.test("1,000 random Map-Replies survive emit, parse and re-emit, also at an offset", () => {
  const g = new Rng(0x4d50);
  for (let i = 0; i < 1000; i++) {
    const m = randomMapReply(g);
    const bytes = emitMapReply(m);
    assert.equal(bytes.length, mapReplyLength(m));
    const back = parseMapReply(bytes);
    assert.deepStrictEqual(back, m, `case ${i}`);
    assert.equal(toHex(emitMapReply(back)), toHex(bytes), `case ${i}`);
    const off = g.int(16);
    const buf = new Uint8Array(bytes.length + off + 5).fill(0xa5);
    const out = emitMapReply(m, buf, off);
    assert.equal(toHex(out), toHex(bytes), `case ${i} at ${off}`);
    assert.ok(buf.subarray(0, off).every((b) => b === 0xa5), `case ${i}: bytes before touched`);
    assert.ok(buf.subarray(off + bytes.length).every((b) => b === 0xa5), `case ${i}: after`);
  }
});

Deno.test("random Map-Replies truncated at a random length throw only WireError", () => {
  const g = new Rng(0x7470);
  for (let i = 0; i < 300; i++) {
    const bytes = emitMapReply(randomMapReply(g));
    const n = g.int(bytes.length);
    assert.throws(() => parseMapReply(bytes.subarray(0, n)), WireError, `case ${i} at ${n}`);
  }
});
