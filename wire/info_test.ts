import assert from "node:assert/strict";
import { WireError } from "./errors.ts";
import { randomInfo, Rng } from "../tests/wire_gen.ts";
import type { NatTraversalAddress } from "./address.ts";
import { signAuthenticated, verifyAuthenticated } from "./auth.ts";
import {
  emitInfo,
  type Info,
  infoLength,
  type InfoReply,
  type InfoRequest,
  parseInfo,
} from "./info.ts";
import { hex } from "../tests/hex.ts";

// --- Fixtures (hand-written from draft-ermagan-lisp-nat-traversal) ----------

const REQUEST_HEX = `
  70 00 00 00               # Type=7, R=0 (Info-Request), Reserved
  11 22 33 44 55 66 77 88   # Nonce
  00 01                     # Key ID = 1 (HMAC-SHA-1-96)
  00 14                     # Authentication Data Length = 20
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   # Authentication Data (zero, unsigned)
  00 00 00 00               # TTL = 0
  00                        # Reserved
  18                        # EID mask-len = 24
  00 01 c0 a8 01 00         # EID-prefix-AFI=1, 192.168.1.0
  00 00                     # AFI = 0, nothing follows
`;
const REQUEST: InfoRequest = {
  reply: false,
  nonce: 0x1122334455667788n,
  keyId: 1,
  authData: new Uint8Array(20),
  ttl: 0,
  maskLen: 24,
  eid: { kind: "ipv4", ip: "192.168.1.0" },
  address: { kind: "none" },
};

const REPLY_HEX = `
  78 00 00 00               # Type=7, R=1 (Info-Reply), Reserved
  11 22 33 44 55 66 77 88   # Nonce
  00 00                     # Key ID = 0
  00 00                     # Authentication Data Length = 0
  00 00 05 a0               # TTL = 1440 minutes
  00                        # Reserved
  18                        # EID mask-len = 24
  00 01 c0 a8 01 00         # EID-prefix-AFI=1, 192.168.1.0
  40 03                     # AFI = 16387 (LCAF)
  00 00 07 00               # Rsvd1, Flags, Type=7 NAT-Traversal, Rsvd2
  00 2e                     # Length = 46
  10 f6                     # MS UDP Port = 4342
  c3 50                     # ETR UDP Port = 50000
  00 01 cb 00 71 05         # Global ETR RLOC: AFI=1, 203.0.113.5
  00 01 c6 33 64 01         # MS RLOC: AFI=1, 198.51.100.1
  00 01 0a 00 00 02         # Private ETR RLOC: AFI=1, 10.0.0.2
  00 01 c6 33 64 0a         # RTR RLOC 1: AFI=1, 198.51.100.10
  00 02 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 0a   # RTR RLOC 2: AFI=2, 2001:db8::a
`;
const NAT: NatTraversalAddress = {
  kind: "nat",
  msPort: 4342,
  etrPort: 50000,
  globalEtr: { kind: "ipv4", ip: "203.0.113.5" },
  ms: { kind: "ipv4", ip: "198.51.100.1" },
  privateEtr: { kind: "ipv4", ip: "10.0.0.2" },
  rtrs: [{ kind: "ipv4", ip: "198.51.100.10" }, { kind: "ipv6", ip: "2001:db8::a" }],
};
const REPLY: InfoReply = {
  reply: true,
  nonce: 0x1122334455667788n,
  keyId: 0,
  authData: new Uint8Array(0),
  ttl: 1440,
  maskLen: 24,
  eid: { kind: "ipv4", ip: "192.168.1.0" },
  nat: NAT,
};

const FIXTURES: [string, string, Info][] = [
  ["an Info-Request", REQUEST_HEX, REQUEST],
  ["an Info-Reply with two RTRs", REPLY_HEX, REPLY],
];

for (const [what, h, msg] of FIXTURES) {
  Deno.test(`parseInfo() reads ${what}`, () => {
    assert.deepEqual(parseInfo(hex(h)), msg);
  });
  Deno.test(`emitInfo() writes ${what}`, () => {
    const want = hex(h);
    assert.equal(infoLength(msg), want.length);
    assert.deepEqual(emitInfo(msg), want);
    const buf = new Uint8Array(want.length + 9).fill(0xa5);
    const out = emitInfo(msg, buf, 5);
    assert.deepEqual(out, want);
    assert.equal(out.buffer, buf.buffer);
    assert.deepEqual(buf.subarray(0, 5), hex("a5a5a5a5a5"));
    assert.deepEqual(buf.subarray(5 + want.length), hex("a5a5a5a5"));
  });
  Deno.test(`parseInfo() rejects every truncation of ${what}`, () => {
    const full = hex(h);
    for (let n = 0; n < full.length; n++) {
      assert.throws(() => parseInfo(full.subarray(0, n)), WireError, `length ${n}`);
    }
  });
}

Deno.test("parseInfo() ignores reserved bits", () => {
  const b = hex(REPLY_HEX);
  b[0] = 0x7f; // Type=7, R=1, three reserved bits set
  b[1] = 0xff;
  b[2] = 0xff;
  b[3] = 0xff;
  b[20] = 0xff; // Reserved byte before EID mask-len
  assert.deepEqual(parseInfo(b), REPLY);
});

Deno.test("parseInfo() keeps a request's non-zero trailing AFI so it round-trips", () => {
  const m: InfoRequest = { ...REQUEST, address: { kind: "dn", name: "xtr1" } };
  const bytes = emitInfo(m);
  assert.deepEqual(bytes.subarray(bytes.length - 7), hex("0011 78747231 00"));
  assert.deepEqual(parseInfo(bytes), m);
});

Deno.test("emitInfo() leaves the auth field at byte 16 for auth.ts to sign", () => {
  const key = "secret";
  const bytes = emitInfo(REQUEST);
  signAuthenticated(bytes, key);
  assert.equal(verifyAuthenticated(bytes, key), true);
  const parsed = parseInfo(bytes);
  assert.deepEqual(parsed.authData, bytes.subarray(16, 36));
  assert.notDeepEqual(parsed.authData, new Uint8Array(20));
  assert.deepEqual({ ...parsed, authData: REQUEST.authData }, REQUEST);
});

Deno.test("emitInfo() rejects values that do not fit", () => {
  const cases: [Info, ErrorConstructor][] = [
    [{ ...REQUEST, nonce: -1n }, RangeError],
    [{ ...REQUEST, nonce: 1n << 64n }, RangeError],
    [{ ...REQUEST, keyId: 0x10000 }, RangeError],
    [{ ...REQUEST, ttl: -1 }, RangeError],
    [{ ...REQUEST, maskLen: 256 }, RangeError],
    [{ ...REQUEST, authData: new Uint8Array(0x10000) }, RangeError],
    [
      { ...REPLY, nat: { kind: "ipv4", ip: "10.0.0.1" } as unknown as NatTraversalAddress },
      TypeError,
    ],
  ];
  for (const [m, E] of cases) assert.throws(() => emitInfo(m), E);
  assert.throws(() => emitInfo(REPLY, new Uint8Array(infoLength(REPLY) - 1)), RangeError);
});

Deno.test("parseInfo() rejects bad inputs with the field at fault", () => {
  const edit = (h: string, at: number, ...v: number[]) => {
    const b = hex(h);
    b.set(v, at);
    return b;
  };
  const replyWith = (tail: string) => hex(REPLY_HEX.slice(0, REPLY_HEX.indexOf("40 03")) + tail);
  const cases: [string, Uint8Array, string][] = [
    ["an empty buffer", new Uint8Array(0), "info.header"],
    ["a short header", hex("70000000 1122334455667788 0001"), "info.header"],
    ["another message type", edit(REQUEST_HEX, 0, 0x60), "info.type"],
    ["an auth length beyond the data", edit(REQUEST_HEX, 14, 0x01, 0x00), "info.auth-data"],
    ["an IPv4 EID mask-len above 32", edit(REQUEST_HEX, 41, 33), "info.eid-mask-len"],
    ["an unknown EID AFI", edit(REQUEST_HEX, 42, 0x00, 0x63), "info.eid.afi"],
    ["a reply ending in AFI 0", replyWith("00 00"), "info.nat"],
    ["a reply ending in an IPv4 address", replyWith("00 01 0a 00 00 01"), "info.nat"],
    [
      "a reply whose NAT LCAF length runs past the data",
      edit(REPLY_HEX, 35, 0x2f),
      "info.nat.lcaf.length",
    ],
    ["a request with trailing bytes", hex(REQUEST_HEX + "00"), "info"],
    ["a reply with trailing bytes", hex(REPLY_HEX + "0000"), "info"],
  ];
  for (const [what, bytes, field] of cases) {
    try {
      parseInfo(bytes);
      assert.fail(`accepted ${what}`);
    } catch (e) {
      assert.ok(e instanceof WireError, `${what}: ${e}`);
      assert.equal(e.field, field, what);
    }
  }
});

// --- Random round trips -----------------------------------------------------

Deno.test("emitInfo() and parseInfo() round-trip 1,000 random messages", () => {
  const rng = new Rng(0x696e666f);
  for (let i = 0; i < 1000; i++) {
    const m = randomInfo(rng);
    const bytes = emitInfo(m);
    assert.equal(bytes.length, infoLength(m));
    assert.deepEqual(parseInfo(bytes), m, `case ${i}`);
    const off = i % 11;
    const buf = new Uint8Array(bytes.length + off + 3).fill(0xa5);
    assert.deepEqual(emitInfo(m, buf, off), bytes, `case ${i} at offset ${off}`);
    assert.deepEqual(buf.subarray(off + bytes.length), hex("a5a5a5"));
  }
});
