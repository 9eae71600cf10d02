/**
 * Benchmarks of LISP message authentication on a 100-byte Map-Register
 * (one EID record, an IPv4 and an IPv6 locator, HMAC-SHA-256).
 *
 * Run: `deno bench wire/auth_bench.ts`
 *
 * @module
 */

import {
  HmacKey,
  KEY_ID_HMAC_SHA1_96,
  KEY_ID_HMAC_SHA256_128,
  sha256,
  signAuthenticated,
  verifyAuthenticated,
} from "./auth.ts";

function mapRegister(keyId: number, authLength: number): Uint8Array {
  const head = [0x30, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 0, keyId, 0, authLength];
  const record = [
    ...[0x00, 0x00, 0x05, 0xa0, 0x02, 0x18, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01],
    ...[0xc0, 0x00, 0x02, 0x00],
    ...[0x01, 0x64, 0xff, 0x00, 0x00, 0x05, 0x00, 0x01, 0xcb, 0x00, 0x71, 0x01],
    ...[0x02, 0x64, 0xff, 0x00, 0x00, 0x01, 0x00, 0x02],
    ...[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
  ];
  return Uint8Array.from([
    ...head,
    ...new Array(authLength).fill(0),
    ...record,
  ]);
}

const KEY = "it-is-a-secret";
const key256 = new HmacKey(KEY_ID_HMAC_SHA256_128, KEY);
const key1 = new HmacKey(KEY_ID_HMAC_SHA1_96, KEY);
const reg256 = mapRegister(KEY_ID_HMAC_SHA256_128, 32); // 100 bytes
const reg1 = mapRegister(KEY_ID_HMAC_SHA1_96, 20); // 88 bytes
signAuthenticated(reg1, key1);
const signed256 = reg256.slice();
signAuthenticated(signed256, key256);

Deno.bench({
  name: "signAuthenticated() HMAC-SHA-256, 100-byte Map-Register, prepared key",
  group: "sign",
  baseline: true,
  fn() {
    signAuthenticated(reg256, key256);
  },
});

Deno.bench({
  name: "signAuthenticated() HMAC-SHA-256, 100-byte Map-Register, raw key",
  group: "sign",
  fn() {
    signAuthenticated(reg256, KEY);
  },
});

Deno.bench({
  name: "verifyAuthenticated() HMAC-SHA-256, 100-byte Map-Register, prepared key",
  group: "verify",
  baseline: true,
  fn() {
    if (!verifyAuthenticated(signed256, key256)) throw new Error("bad MAC");
  },
});

Deno.bench({
  name: "verifyAuthenticated() HMAC-SHA-1, 88-byte Map-Register, prepared key",
  group: "verify",
  fn() {
    if (!verifyAuthenticated(reg1, key1)) throw new Error("bad MAC");
  },
});

const kib = new Uint8Array(1024);
Deno.bench({
  name: "sha256() of 1 KiB",
  fn() {
    sha256(kib);
  },
});
