import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import {
  AUTH_DATA_OFFSET,
  authDataLength,
  authKeyId,
  authStatus,
  constantTimeEqual,
  hmac,
  HmacKey,
  KEY_ID_HMAC_SHA1_96,
  KEY_ID_HMAC_SHA256_128,
  KEY_ID_NONE,
  sha1,
  sha256,
  signAuthenticated,
  verifyAuthenticated,
} from "./auth.ts";
import { hex, toHex } from "../tests/hex.ts";

function fill(byte: number, n: number): Uint8Array {
  return new Uint8Array(n).fill(byte);
}

/** Deterministic xorshift32 bytes, so failures reproduce. */
function prng(seed: number): (n: number) => Uint8Array {
  let x = seed | 0 || 1;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x;
    }
    return out;
  };
}

function nodeHmac(
  alg: "sha1" | "sha256",
  key: Uint8Array,
  data: Uint8Array,
): string {
  return createHmac(alg, key).update(data).digest("hex");
}

// ---------------------------------------------------------------------------
// Fixtures

const KEY = "it-is-a-secret";

/**
 * A Map-Register (RFC 9301 §5.6) with one EID record and two locators,
 * 100 bytes. The authentication field holds 0xa5 so an unsigned field shows.
 */
const MAP_REGISTER = hex(`
  30 00 00 01                 # type 3, P/S/I 0, flags 0 (M off), record count 1
  01 02 03 04 05 06 07 08     # nonce
  00 02                       # key id 2 (HMAC-SHA-256)
  00 20                       # authentication data length 32
  a5a5a5a5 a5a5a5a5 a5a5a5a5 a5a5a5a5
  a5a5a5a5 a5a5a5a5 a5a5a5a5 a5a5a5a5  # authentication data (to be signed)
  00 00 05 a0                 # record TTL 1440 minutes
  02                          # locator count 2
  18                          # EID mask length 24
  10 00                       # ACT 0, A 1, reserved
  00 00                       # reserved, map-version 0
  00 01                       # EID AFI 1 (IPv4)
  c0 00 02 00                 # EID 192.0.2.0
  01 64 ff 00                 # priority 1, weight 100, m-priority 255, m-weight 0
  00 05                       # flags L and R
  00 01                       # locator AFI 1
  cb 00 71 01                 # locator 203.0.113.1
  02 64 ff 00                 # priority 2, weight 100, m-priority 255, m-weight 0
  00 01                       # flags R
  00 02                       # locator AFI 2 (IPv6)
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01  # locator 2001:db8::1
`);

/** The same Map-Register with key id 1 (HMAC-SHA-1) and a 20-byte field. */
const MAP_REGISTER_SHA1 = hex(`
  30 00 00 01
  01 02 03 04 05 06 07 08
  00 01                       # key id 1 (HMAC-SHA-1)
  00 14                       # authentication data length 20
  a5a5a5a5 a5a5a5a5 a5a5a5a5 a5a5a5a5 a5a5a5a5
  00 00 05 a0 01 18 10 00 00 00 00 01 c0 00 02 00
  01 64 ff 00 00 05 00 01 cb 00 71 01
`);

/**
 * An Info-Request (NAT traversal draft): type 7, R 0, nonce, key id 2,
 * auth length 32, TTL, reserved, EID mask length, EID prefix, AFI 0.
 */
const INFO_REQUEST = hex(`
  70 00 00 00                 # type 7, R 0, reserved
  a1 a2 a3 a4 a5 a6 a7 a8     # nonce
  00 02 00 20                 # key id 2, auth length 32
  00000000 00000000 00000000 00000000
  00000000 00000000 00000000 00000000
  00 00 00 01                 # TTL 1 minute
  00 18 00 01 c0 00 02 00     # reserved, EID mask length 24, AFI 1, 192.0.2.0
  00 00                       # AFI 0
`);

function expectedMac(alg: "sha1" | "sha256", message: Uint8Array): string {
  const zeroed = message.slice();
  zeroed.fill(
    0,
    AUTH_DATA_OFFSET,
    AUTH_DATA_OFFSET + (alg === "sha1" ? 20 : 32),
  );
  return nodeHmac(alg, new TextEncoder().encode(KEY), zeroed);
}

function signed(message: Uint8Array): Uint8Array {
  const m = message.slice();
  signAuthenticated(m, KEY);
  return m;
}

// ---------------------------------------------------------------------------
// SHA-1 and SHA-256

const MSG_448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

Deno.test("sha1() matches the FIPS 180 examples", () => {
  assert.equal(toHex(sha1("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
  assert.equal(toHex(sha1("")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  assert.equal(toHex(sha1(MSG_448)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  assert.equal(
    toHex(sha1(fill(0x61, 1_000_000))),
    "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
  );
});

Deno.test("sha256() matches the FIPS 180 examples", () => {
  assert.equal(
    toHex(sha256("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    toHex(sha256("")),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(
    toHex(sha256(MSG_448)),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
  assert.equal(
    toHex(sha256(fill(0x61, 1_000_000))),
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
  );
});

Deno.test("sha1() and sha256() agree with node:crypto at every length 0..300", () => {
  const rand = prng(1);
  for (let n = 0; n <= 300; n++) {
    const data = rand(n);
    assert.equal(
      toHex(sha1(data)),
      createHash("sha1").update(data).digest("hex"),
      `sha1 n=${n}`,
    );
    assert.equal(
      toHex(sha256(data)),
      createHash("sha256").update(data).digest("hex"),
      `sha256 n=${n}`,
    );
  }
});

Deno.test("sha256() hashes a subarray, not its whole backing buffer", () => {
  const big = prng(2)(200);
  const part = big.subarray(37, 150);
  assert.equal(
    toHex(sha256(part)),
    createHash("sha256").update(part).digest("hex"),
  );
});

// ---------------------------------------------------------------------------
// HMAC

const KEY_0102 = Uint8Array.from({ length: 25 }, (_, i) => i + 1);

/** RFC 2202 §3: the seven HMAC-SHA-1 test cases. */
const RFC2202: [string, Uint8Array | string, Uint8Array | string, string][] = [
  ["1", fill(0x0b, 20), "Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"],
  [
    "2",
    "Jefe",
    "what do ya want for nothing?",
    "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
  ],
  [
    "3",
    fill(0xaa, 20),
    fill(0xdd, 50),
    "125d7342b9ac11cd91a39af48aa17b4f63f175d3",
  ],
  ["4", KEY_0102, fill(0xcd, 50), "4c9007f4026250c6bc8414f9bf50c86c2d7235da"],
  [
    "5",
    fill(0x0c, 20),
    "Test With Truncation",
    "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04",
  ],
  [
    "6",
    fill(0xaa, 80),
    "Test Using Larger Than Block-Size Key - Hash Key First",
    "aa4ae5e15272d00e95705637ce8a3b55ed402112",
  ],
  [
    "7",
    fill(0xaa, 80),
    "Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
    "e8e99d0f45237d786d6bbaa7965c7808bbff1a91",
  ],
];

/** RFC 4231 §4: test cases 1–7 (case 5 gives only the first 128 bits). */
const RFC4231: [string, Uint8Array | string, Uint8Array | string, string][] = [
  [
    "1",
    fill(0x0b, 20),
    "Hi There",
    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
  ],
  [
    "2",
    "Jefe",
    "what do ya want for nothing?",
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  ],
  [
    "3",
    fill(0xaa, 20),
    fill(0xdd, 50),
    "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
  ],
  [
    "4",
    KEY_0102,
    fill(0xcd, 50),
    "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
  ],
  [
    "5",
    fill(0x0c, 20),
    "Test With Truncation",
    "a3b6167473100ee06e0c796c2955552b",
  ],
  [
    "6",
    fill(0xaa, 131),
    "Test Using Larger Than Block-Size Key - Hash Key First",
    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
  ],
  [
    "7",
    fill(0xaa, 131),
    "This is a test using a larger than block-size key and a larger than " +
    "block-size data. The key needs to be hashed before being used by the " +
    "HMAC algorithm.",
    "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
  ],
];

for (const [name, key, data, want] of RFC2202) {
  Deno.test(`hmac("sha1") matches RFC 2202 test case ${name}`, () => {
    assert.equal(toHex(hmac("sha1", key, data)), want);
    assert.equal(toHex(hmac(KEY_ID_HMAC_SHA1_96, key, data)), want);
  });
}

for (const [name, key, data, want] of RFC4231) {
  Deno.test(`hmac("sha256") matches RFC 4231 test case ${name}`, () => {
    const got = toHex(hmac("sha256", key, data));
    assert.equal(got.length, 64);
    assert.equal(got.slice(0, want.length), want);
    assert.equal(toHex(hmac(KEY_ID_HMAC_SHA256_128, key, data)), got);
  });
}

Deno.test("hmac() agrees with node:crypto on random keys and data of many lengths", () => {
  const rand = prng(3);
  for (const alg of ["sha1", "sha256"] as const) {
    for (const keyLen of [0, 1, 20, 32, 63, 64, 65, 100, 131, 200]) {
      for (
        const dataLen of [0, 1, 55, 56, 63, 64, 65, 100, 119, 120, 128, 257]
      ) {
        const key = rand(keyLen);
        const data = rand(dataLen);
        assert.equal(
          toHex(hmac(alg, key, data)),
          nodeHmac(alg, key, data),
          `${alg} key=${keyLen} data=${dataLen}`,
        );
      }
    }
  }
});

Deno.test("HmacKey gives the same MAC on every use", () => {
  const key = new HmacKey(KEY_ID_HMAC_SHA256_128, "k");
  const data = prng(4)(150);
  const first = toHex(key.mac(data));
  hmac("sha1", "other", "interleaved use of the shared scratch");
  assert.equal(toHex(key.mac(data)), first);
  assert.equal(first, nodeHmac("sha256", new TextEncoder().encode("k"), data));
});

Deno.test("HmacKey takes a string key as its UTF-8 bytes", () => {
  const s = "clé-ß-🔑";
  assert.equal(
    toHex(hmac("sha256", s, "x")),
    nodeHmac(
      "sha256",
      new TextEncoder().encode(s),
      new TextEncoder().encode("x"),
    ),
  );
});

Deno.test("HmacKey describes its key id, hash and digest length", () => {
  const k1 = new HmacKey("sha1", "k");
  assert.deepEqual([k1.keyId, k1.hash, k1.digestLength], [1, "sha1", 20]);
  const k2 = new HmacKey(KEY_ID_HMAC_SHA256_128, "k");
  assert.deepEqual([k2.keyId, k2.hash, k2.digestLength], [2, "sha256", 32]);
});

Deno.test("HmacKey rejects key id none and unknown key ids with RangeError", () => {
  for (const id of [KEY_ID_NONE, 3, 0x0102, -1, "md5"]) {
    assert.throws(() => new HmacKey(id as number, "k"), RangeError, String(id));
  }
});

Deno.test("HmacKey.macInto() reads the zero range as zero and leaves the data alone", () => {
  const key = new HmacKey("sha256", "k");
  const data = prng(5)(140);
  const before = data.slice();
  const out = new Uint8Array(40).fill(0xa5);
  key.macInto(data, out, 4, 60, 130); // the range spans a block boundary
  assert.deepEqual(data, before);
  const zeroed = data.slice().fill(0, 60, 130);
  assert.equal(
    toHex(out.subarray(4, 36)),
    nodeHmac("sha256", new TextEncoder().encode("k"), zeroed),
  );
  assert.deepEqual(out.subarray(0, 4), fill(0xa5, 4));
  assert.deepEqual(out.subarray(36), fill(0xa5, 4));
  assert.throws(() => key.macInto(data, new Uint8Array(31)), RangeError);
});

Deno.test("constantTimeEqual() compares whole contents and lengths", () => {
  assert.equal(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)), true);
  assert.equal(constantTimeEqual(hex("0001ff"), hex("0001ff")), true);
  assert.equal(constantTimeEqual(hex("0001ff"), hex("0001fe")), false);
  assert.equal(constantTimeEqual(hex("00aa"), hex("00bb")), false);
  assert.equal(constantTimeEqual(hex("0001"), hex("000100")), false);
});

// ---------------------------------------------------------------------------
// LISP authentication

Deno.test("authDataLength() gives the full digest length per key id", () => {
  assert.equal(authDataLength(KEY_ID_NONE), 0);
  assert.equal(authDataLength(KEY_ID_HMAC_SHA1_96), 20);
  assert.equal(authDataLength(KEY_ID_HMAC_SHA256_128), 32);
  assert.equal(authDataLength(3), undefined);
});

Deno.test("authKeyId() reads bytes 12-13, or -1 when the header is short", () => {
  assert.equal(MAP_REGISTER.length, 100);
  assert.equal(authKeyId(MAP_REGISTER), 2);
  assert.equal(authKeyId(MAP_REGISTER_SHA1), 1);
  assert.equal(authKeyId(MAP_REGISTER.subarray(0, 15)), -1);
});

Deno.test("signAuthenticated() writes HMAC-SHA-256 of the message with a zeroed field", () => {
  const m = MAP_REGISTER.slice();
  signAuthenticated(m, KEY);
  assert.equal(toHex(m.subarray(16, 48)), expectedMac("sha256", MAP_REGISTER));
  assert.deepEqual(m.subarray(0, 16), MAP_REGISTER.subarray(0, 16));
  assert.deepEqual(m.subarray(48), MAP_REGISTER.subarray(48));
});

Deno.test("signAuthenticated() writes HMAC-SHA-1 for key id 1", () => {
  const m = MAP_REGISTER_SHA1.slice();
  signAuthenticated(m, new TextEncoder().encode(KEY));
  assert.equal(toHex(m.subarray(16, 36)), expectedMac("sha1", MAP_REGISTER_SHA1));
  assert.deepEqual(m.subarray(36), MAP_REGISTER_SHA1.subarray(36));
});

Deno.test("signAuthenticated() gives the same bytes with a raw or a prepared key", () => {
  const a = MAP_REGISTER.slice();
  const b = MAP_REGISTER.slice();
  signAuthenticated(a, KEY);
  signAuthenticated(b, new HmacKey(KEY_ID_HMAC_SHA256_128, KEY));
  assert.deepEqual(a, b);
});

Deno.test("signAuthenticated() signs a message in the middle of a larger buffer", () => {
  const buf = new Uint8Array(300).fill(0xa5);
  buf.set(MAP_REGISTER, 50);
  const m = buf.subarray(50, 150);
  signAuthenticated(m, KEY);
  assert.equal(toHex(m.subarray(16, 48)), expectedMac("sha256", MAP_REGISTER));
  assert.deepEqual(buf.subarray(0, 50), fill(0xa5, 50));
  assert.deepEqual(buf.subarray(150), fill(0xa5, 150));
});

Deno.test("signAuthenticated() rejects what it cannot sign with RangeError", () => {
  const withHeader = (keyId: number, len: number) => {
    const m = MAP_REGISTER.slice();
    m[12] = keyId >> 8;
    m[13] = keyId;
    m[14] = len >> 8;
    m[15] = len;
    return m;
  };
  const cases: [string, Uint8Array, Uint8Array | string | HmacKey][] = [
    ["key id none", withHeader(0, 0), KEY],
    ["unknown key id 3", withHeader(3, 32), KEY],
    ["key id 2 with length 20", withHeader(2, 20), KEY],
    ["key id 1 with length 32", withHeader(1, 32), KEY],
    ["key id 2 with length 0", withHeader(2, 0), KEY],
    ["shorter than the header", MAP_REGISTER.slice(0, 15), KEY],
    ["shorter than the auth data", MAP_REGISTER.slice(0, 47), KEY],
    [
      "prepared key for another key id",
      MAP_REGISTER.slice(),
      new HmacKey("sha1", KEY),
    ],
  ];
  for (const [name, m, key] of cases) {
    const before = m.slice();
    assert.throws(() => signAuthenticated(m, key), RangeError, name);
    assert.deepEqual(m, before, `${name}: message untouched`);
  }
});

Deno.test("verifyAuthenticated() accepts what signAuthenticated() signed", () => {
  assert.equal(verifyAuthenticated(signed(MAP_REGISTER), KEY), true);
  assert.equal(
    verifyAuthenticated(signed(MAP_REGISTER), new HmacKey(2, KEY)),
    true,
  );
  assert.equal(verifyAuthenticated(signed(MAP_REGISTER_SHA1), KEY), true);
  assert.equal(
    verifyAuthenticated(signed(MAP_REGISTER_SHA1), new HmacKey(1, KEY)),
    true,
  );
  assert.equal(verifyAuthenticated(signed(INFO_REQUEST), KEY), true);
  assert.equal(authStatus(signed(MAP_REGISTER), KEY), "ok");
});

Deno.test("verifyAuthenticated() accepts a MAC computed independently by node:crypto", () => {
  const m = MAP_REGISTER.slice();
  m.set(hex(expectedMac("sha256", MAP_REGISTER)), 16);
  assert.equal(verifyAuthenticated(m, KEY), true);
});

Deno.test("verifyAuthenticated() fails after flipping any single bit of the message", () => {
  const key = new HmacKey(KEY_ID_HMAC_SHA256_128, KEY);
  for (const base of [signed(MAP_REGISTER), signed(INFO_REQUEST)]) {
    for (let bit = 0; bit < base.length * 8; bit++) {
      const m = base.slice();
      m[bit >> 3]! ^= 0x80 >> (bit & 7);
      assert.equal(verifyAuthenticated(m, key), false, `bit ${bit}`);
      assert.equal(verifyAuthenticated(m, KEY), false, `bit ${bit}, raw key`);
    }
  }
  const sha1Base = signed(MAP_REGISTER_SHA1);
  for (let bit = 0; bit < sha1Base.length * 8; bit++) {
    const m = sha1Base.slice();
    m[bit >> 3]! ^= 0x80 >> (bit & 7);
    assert.equal(verifyAuthenticated(m, KEY), false, `sha1 bit ${bit}`);
  }
});

Deno.test("verifyAuthenticated() fails with a wrong key", () => {
  const m = signed(MAP_REGISTER);
  assert.equal(verifyAuthenticated(m, KEY + "x"), false);
  assert.equal(verifyAuthenticated(m, ""), false);
  assert.equal(verifyAuthenticated(m, new HmacKey(2, "it-is-a-secreT")), false);
  assert.equal(authStatus(m, "wrong"), "mismatch");
});

Deno.test("authStatus() says why a message fails, without throwing", () => {
  const m = signed(MAP_REGISTER);
  const relabel = (keyId: number, len: number) => {
    const c = m.slice();
    c[12] = keyId >> 8;
    c[13] = keyId;
    c[14] = len >> 8;
    c[15] = len;
    return c;
  };
  const cases: [string, Uint8Array, Uint8Array | string | HmacKey, string][] = [
    ["ok", m, KEY, "ok"],
    ["key id none", relabel(0, 0), KEY, "bad-key-id"],
    ["key id 3", relabel(3, 32), KEY, "bad-key-id"],
    ["key id 0x0102", relabel(0x0102, 32), KEY, "bad-key-id"],
    ["prepared key for sha1", m, new HmacKey("sha1", KEY), "bad-key-id"],
    ["key id 1 with length 32", relabel(1, 32), KEY, "bad-length"],
    ["key id 2 with length 20", relabel(2, 20), KEY, "bad-length"],
    ["key id 2 with length 0", relabel(2, 0), KEY, "bad-length"],
    ["key id 2 with length 0xffff", relabel(2, 0xffff), KEY, "bad-length"],
    ["key id 1 relabelled, length 20", relabel(1, 20), KEY, "mismatch"],
    ["empty", new Uint8Array(0), KEY, "truncated"],
    ["15 bytes", m.slice(0, 15), KEY, "truncated"],
    ["47 bytes", m.slice(0, 47), KEY, "truncated"],
    ["wrong key", m, "nope", "mismatch"],
  ];
  for (const [name, msg, key, want] of cases) {
    assert.equal(authStatus(msg, key), want, name);
    assert.equal(verifyAuthenticated(msg, key), want === "ok", name);
  }
});

Deno.test("verifyAuthenticated() returns false at every truncated length", () => {
  const m = signed(MAP_REGISTER);
  for (let n = 0; n < m.length; n++) {
    const cut = m.slice(0, n);
    assert.equal(verifyAuthenticated(cut, KEY), false, `length ${n}`);
    assert.equal(
      authStatus(cut, KEY),
      n < 48 ? "truncated" : "mismatch",
      `length ${n}`,
    );
  }
});

Deno.test("verifyAuthenticated() leaves the message unchanged", () => {
  for (
    const [m, key] of [
      [signed(MAP_REGISTER), KEY],
      [signed(MAP_REGISTER), "wrong"],
      [MAP_REGISTER.slice(), KEY],
      [signed(MAP_REGISTER_SHA1), new HmacKey(1, KEY)],
    ] as const
  ) {
    const before = m.slice();
    verifyAuthenticated(m, key);
    authStatus(m, key);
    assert.deepEqual(m, before);
  }
});

Deno.test("verifyAuthenticated() compares past a zero byte in the MAC (unlike strncmp)", () => {
  // Find a nonce whose MAC has a zero at byte 1, then alter only the bytes
  // after it: a strncmp-style compare would stop at the zero and accept.
  const m = MAP_REGISTER.slice();
  let nonce = 0;
  do {
    m[11] = nonce & 0xff;
    m[10] = nonce >> 8;
    nonce++;
    signAuthenticated(m, KEY);
  } while (m[17] !== 0 && nonce < 0x10000);
  assert.equal(m[17], 0, "found a MAC with a zero at byte 1");
  assert.equal(verifyAuthenticated(m, KEY), true);
  for (let i = 18; i < 48; i++) {
    const forged = m.slice();
    forged[i]! ^= 0x01;
    assert.equal(verifyAuthenticated(forged, KEY), false, `byte ${i}`);
  }
  const tail = m.slice();
  tail.fill(0, 18, 48); // everything after the zero byte replaced
  assert.equal(verifyAuthenticated(tail, KEY), false);
  assert.equal(
    constantTimeEqual(tail.subarray(16, 48), m.subarray(16, 48)),
    false,
  );
});
