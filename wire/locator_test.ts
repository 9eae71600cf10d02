import assert from "node:assert/strict";
import {
  emitLocator,
  locatorLength,
  type LocatorRecord,
  parseLocator,
  readLocator,
  writeLocator,
} from "./locator.ts";
import { NO_ADDRESS } from "./address.ts";
import { Reader, Writer } from "./cursor.ts";
import { WireError } from "./errors.ts";
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
function emitAt(l: LocatorRecord, offset: number): Uint8Array {
  const len = locatorLength(l);
  const buf = new Uint8Array(offset + len + 4).fill(0xa5);
  const out = emitLocator(l, buf, offset);
  assert.equal(out.length, len);
  assert.equal(out.buffer, buf.buffer);
  assert.equal(out.byteOffset, offset);
  for (let i = 0; i < offset; i++) assert.equal(buf[i], 0xa5, `byte ${i} before`);
  for (let i = offset + len; i < buf.length; i++) assert.equal(buf[i], 0xa5, `byte ${i} after`);
  return out;
}

const base: LocatorRecord = {
  priority: 0,
  weight: 0,
  mPriority: 0,
  mWeight: 0,
  local: false,
  probed: false,
  reachable: false,
  address: { kind: "ipv4", ip: "192.0.2.1" },
};

/** Fixtures from the RFC 9301 §5.4 locator layout, written by hand. */
const fixtures: { name: string; bytes: string; locator: LocatorRecord }[] = [
  {
    name: "local reachable IPv4 locator",
    bytes: "01" + // Priority = 1
      "64" + // Weight = 100
      "ff" + // M Priority = 255 (not for multicast)
      "00" + // M Weight = 0
      "00" + "05" + // Unused Flags = 0, L=1 p=0 R=1
      "0001" + // Loc-AFI = 1
      "c0000201", // Locator = 192.0.2.1
    locator: {
      priority: 1,
      weight: 100,
      mPriority: 255,
      mWeight: 0,
      local: true,
      probed: false,
      reachable: true,
      address: { kind: "ipv4", ip: "192.0.2.1" },
    },
  },
  {
    name: "probed IPv6 locator",
    bytes: "00" + // Priority = 0
      "32" + // Weight = 50
      "01" + // M Priority = 1
      "02" + // M Weight = 2
      "00" + "02" + // L=0 p=1 R=0
      "0002" + // Loc-AFI = 2
      "20010db8000000000000000000000001", // 2001:db8::1
    locator: {
      priority: 0,
      weight: 50,
      mPriority: 1,
      mWeight: 2,
      local: false,
      probed: true,
      reachable: false,
      address: { kind: "ipv6", ip: "2001:db8::1" },
    },
  },
  {
    name: "locator whose address is an ELP LCAF",
    bytes: "ff" + // Priority = 255 (do not use)
      "00" + "ff" + "00" + // Weight 0, M Priority 255, M Weight 0
      "00" + "01" + // R=1
      "4003" + // Loc-AFI = 16387 (LCAF)
      "00" + "00" + "0a" + "00" + // Rsvd1, Flags, Type = 10 (ELP), Rsvd2
      "0010" + // Length = 16
      "0001" + "0001" + "c0000201" + // hop 1: S=1, 192.0.2.1
      "0000" + "0001" + "c0000202", // hop 2: 192.0.2.2
    locator: {
      priority: 255,
      weight: 0,
      mPriority: 255,
      mWeight: 0,
      local: false,
      probed: false,
      reachable: true,
      address: {
        kind: "elp",
        hops: [
          {
            lookup: false,
            probe: false,
            strict: true,
            address: { kind: "ipv4", ip: "192.0.2.1" },
          },
          {
            lookup: false,
            probe: false,
            strict: false,
            address: { kind: "ipv4", ip: "192.0.2.2" },
          },
        ],
      },
    },
  },
  {
    name: "locator with AFI 0",
    bytes: "01" + "01" + "01" + "01" + // priorities and weights
      "00" + "00" + // no flags
      "0000", // Loc-AFI = 0
    locator: {
      priority: 1,
      weight: 1,
      mPriority: 1,
      mWeight: 1,
      local: false,
      probed: false,
      reachable: false,
      address: NO_ADDRESS,
    },
  },
];

for (const f of fixtures) {
  Deno.test(`parseLocator() decodes the ${f.name} fixture`, () => {
    assert.deepStrictEqual(parseLocator(hex(f.bytes)), f.locator);
  });

  Deno.test(`emitLocator() writes the ${f.name} fixture byte for byte`, () => {
    const bytes = hex(f.bytes);
    assert.equal(locatorLength(f.locator), bytes.length);
    assert.equal(toHex(emitLocator(f.locator)), toHex(bytes));
    assert.equal(toHex(emitAt(f.locator, 5)), toHex(bytes));
  });

  Deno.test(`parseLocator() rejects the ${f.name} fixture truncated at every byte`, () => {
    const bytes = hex(f.bytes);
    for (let n = 0; n < bytes.length; n++) {
      assert.throws(
        () => parseLocator(bytes.subarray(0, n)),
        (e: unknown) => e instanceof WireError,
        `truncated to ${n} bytes`,
      );
    }
  });

  Deno.test(`parseLocator(emitLocator(x)) equals x for the ${f.name} fixture`, () => {
    assert.deepStrictEqual(parseLocator(emitAt(f.locator, 3)), f.locator);
  });
}

Deno.test("emitLocator() puts L, p and R in the low three bits of the flags and zeroes the rest", () => {
  const cases: [Partial<LocatorRecord>, string][] = [
    [{}, "0000"],
    [{ local: true }, "0004"],
    [{ probed: true }, "0002"],
    [{ reachable: true }, "0001"],
    [{ local: true, probed: true, reachable: true }, "0007"],
  ];
  for (const [flags, wire] of cases) {
    const l = { ...base, ...flags };
    const b = emitLocator(l);
    assert.equal(toHex(b.subarray(4, 6)), wire, JSON.stringify(flags));
    assert.deepStrictEqual(parseLocator(b), l);
  }
});

Deno.test("parseLocator() ignores the unused flag bits", () => {
  const none = parseLocator(hex("00000000" + "fff8" + "0000"));
  assert.deepStrictEqual([none.local, none.probed, none.reachable], [false, false, false]);
  const all = parseLocator(hex("00000000" + "ffff" + "0000"));
  assert.deepStrictEqual([all.local, all.probed, all.reachable], [true, true, true]);
});

Deno.test("emitLocator() writes priority, weight, M priority and M weight in order", () => {
  const b = emitLocator({ ...base, priority: 1, weight: 2, mPriority: 3, mWeight: 4 });
  assert.equal(toHex(b.subarray(0, 4)), "01020304");
});

const bad: { name: string; bytes: string; field: string; offset: number }[] = [
  { name: "an empty buffer", bytes: "", field: "locator", offset: 0 },
  { name: "a record cut in its flags", bytes: "0101010100", field: "locator", offset: 0 },
  {
    name: "a record without Loc-AFI",
    bytes: "010101010000",
    field: "locator.address.afi",
    offset: 6,
  },
  {
    name: "an unknown Loc-AFI",
    bytes: "010101010001" + "0003" + "c0000201",
    field: "locator.address.afi",
    offset: 6,
  },
  {
    name: "a truncated IPv4 locator",
    bytes: "010101010001" + "0001" + "c00002",
    field: "locator.address.ipv4",
    offset: 8,
  },
  {
    name: "an LCAF locator whose length exceeds the data",
    bytes: "010101010001" + "4003" + "00000a00" + "0010" + "0000",
    field: "locator.address.lcaf.length",
    offset: 12,
  },
  {
    name: "trailing bytes",
    bytes: "010101010001" + "0001" + "c0000201" + "00",
    field: "locator",
    offset: 12,
  },
];

for (const c of bad) {
  Deno.test(`parseLocator() rejects ${c.name}`, () => {
    throwsWire(() => parseLocator(hex(c.bytes)), c.field, c.offset);
  });
}

Deno.test("readLocator() names its errors after the field it is given", () => {
  throwsWire(
    () => readLocator(new Reader(hex("010101010001" + "0063")), "map-reply.record[0].locator[2]"),
    "map-reply.record[0].locator[2].address.afi",
    6,
  );
});

Deno.test("readLocator() and writeLocator() compose back to back in one buffer", () => {
  const a = fixtures[0]!.locator;
  const b = fixtures[2]!.locator;
  const buf = new Uint8Array(2 + locatorLength(a) + locatorLength(b)).fill(0xa5);
  const w = new Writer(buf, 2);
  writeLocator(w, a);
  writeLocator(w, b);
  assert.equal(w.pos, buf.length);
  const r = new Reader(buf, 2);
  assert.deepStrictEqual(readLocator(r), a);
  assert.deepStrictEqual(readLocator(r), b);
  assert.equal(r.remaining, 0);
});

Deno.test("emitLocator() throws RangeError for priorities and weights out of range", () => {
  const cases: Partial<LocatorRecord>[] = [
    { priority: 256 },
    { priority: -1 },
    { weight: 1.5 },
    { mPriority: 300 },
    { mWeight: -2 },
  ];
  for (const c of cases) {
    assert.throws(() => emitLocator({ ...base, ...c }), RangeError, JSON.stringify(c));
  }
});

Deno.test("emitLocator() throws TypeError for a locator address it cannot encode", () => {
  assert.throws(
    () => emitLocator({ ...base, address: { kind: "ipv4", ip: "300.0.0.1" } }),
    TypeError,
  );
});

Deno.test("emitLocator() throws RangeError when the buffer is too small", () => {
  assert.throws(() => emitLocator(base, new Uint8Array(11)), RangeError);
  assert.throws(() => emitLocator(base, new Uint8Array(12), 1), RangeError);
});
