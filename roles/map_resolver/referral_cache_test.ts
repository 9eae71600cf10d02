import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { formatPrefix, parsePrefix, prefixEid } from "../../core/prefix.ts";
import { type EidRecord, REFERRAL_ACTION } from "../../wire/eid_record.ts";
import { NOT_REGISTERED_TTL, ReferralCache } from "./referral_cache.ts";

function record(action: number, prefix: string, ttl: number, incomplete = false): EidRecord {
  const p = parsePrefix(prefix, 0)!;
  return {
    ttl,
    maskLen: p.len,
    action,
    authoritative: true,
    incomplete,
    sigCount: 0,
    mapVersion: 0,
    eid: prefixEid(p),
    locators: [],
  };
}

function add(c: ReferralCache, action: number, prefix: string, ttl: number, incomplete = false) {
  c.add(parsePrefix(prefix, 0)!, record(action, prefix, ttl, incomplete), ["192.0.2.1"]);
}

const at = (c: ReferralCache, ip: string) => {
  const e = c.lookup(parsePrefix(`${ip}/32`, 0)!);
  return e && [formatPrefix(e.prefix), e.action, e.ttl];
};

Deno.test("ReferralCache keeps neither an incomplete referral nor one with TTL 0 (RFC 8111 §6.4)", () => {
  const c = new ReferralCache(() => 0);
  add(c, REFERRAL_ACTION.NODE_REFERRAL, "10.0.0.0/8", 1440, true);
  add(c, REFERRAL_ACTION.NODE_REFERRAL, "10.1.0.0/16", 0);
  strictEqual(c.size, 0);
  strictEqual(at(c, "10.1.2.3"), undefined);
});

Deno.test("ReferralCache: the most specific unexpired entry; MS-NOT-REGISTERED for a minute whatever its TTL", () => {
  let now = 1_000;
  const c = new ReferralCache(() => now);
  add(c, REFERRAL_ACTION.NODE_REFERRAL, "10.0.0.0/8", 1440);
  add(c, REFERRAL_ACTION.MS_NOT_REGISTERED, "10.1.0.0/16", 60);
  deepStrictEqual(at(c, "10.1.2.3"), [
    "10.1.0.0/16",
    REFERRAL_ACTION.MS_NOT_REGISTERED,
    NOT_REGISTERED_TTL,
  ]);
  deepStrictEqual(at(c, "10.9.9.9"), ["10.0.0.0/8", REFERRAL_ACTION.NODE_REFERRAL, 1440]);
  now += NOT_REGISTERED_TTL * 60_000; // the negative entry is gone, the wider one answers
  deepStrictEqual(at(c, "10.1.2.3"), ["10.0.0.0/8", REFERRAL_ACTION.NODE_REFERRAL, 1440]);
  strictEqual(c.size, 1, "the lookup dropped the expired entry it met");
});

Deno.test("ReferralCache.sweep() drops what expired, entries() lists what has not", () => {
  let now = 0;
  const c = new ReferralCache(() => now);
  add(c, REFERRAL_ACTION.MS_REFERRAL, "10.1.0.0/16", 1);
  add(c, REFERRAL_ACTION.MS_REFERRAL, "10.2.0.0/16", 10);
  now = 60_000;
  deepStrictEqual(c.entries().map((e) => formatPrefix(e.prefix)), ["10.2.0.0/16"]);
  strictEqual(c.size, 2);
  c.sweep();
  strictEqual(c.size, 1);
  c.delete(parsePrefix("10.2.0.0/16", 0)!);
  strictEqual(c.size, 0);
});
