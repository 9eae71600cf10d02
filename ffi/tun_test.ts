/**
 * The pure parts of ffi/tun.ts (no TUN needed; tests/e2e/tun_test.ts and
 * tun_offload_test.ts open real ones in a namespace).
 *
 * @module
 */

import assert from "node:assert/strict";
import { offloadFallbacks, offloadNames } from "./tun.ts";
import {
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  TUN_F_TSO_ECN,
  TUN_F_USO4,
  TUN_F_USO6,
} from "./libc.ts";

const ALL = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_USO4 | TUN_F_USO6;

Deno.test("offloadFallbacks() drops USO, then TSO-ECN, TSO6, TSO4, then everything", () => {
  assert.deepEqual(offloadFallbacks(ALL), [
    ALL,
    TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN,
    TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
    TUN_F_CSUM | TUN_F_TSO4,
    TUN_F_CSUM,
    0,
  ]);
});

Deno.test("offloadFallbacks() skips what was not asked for and ends at 0", () => {
  assert.deepEqual(offloadFallbacks(TUN_F_CSUM | TUN_F_TSO6), [
    TUN_F_CSUM | TUN_F_TSO6,
    TUN_F_CSUM,
    0,
  ]);
  assert.deepEqual(offloadFallbacks(TUN_F_CSUM), [TUN_F_CSUM, 0]);
  assert.deepEqual(offloadFallbacks(0), [0]);
  // TSO without the checksum cannot stand: straight to 0.
  assert.deepEqual(offloadFallbacks(TUN_F_TSO4), [TUN_F_TSO4, 0]);
});

Deno.test("offloadNames() spells the offloads for logs", () => {
  assert.equal(offloadNames(ALL), "csum tso4 tso6 tso-ecn uso4 uso6");
  assert.equal(offloadNames(TUN_F_CSUM | TUN_F_TSO4), "csum tso4");
  assert.equal(offloadNames(0), "none");
});
