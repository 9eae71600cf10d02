import assert from "node:assert/strict";
import { ipAddress } from "../../wire/address.ts";
import { formatPrefix, parsePrefix, type Prefix } from "../../core/prefix.ts";
import {
  type Registration,
  registrationKey,
  RegistrationStore,
  STATIC_KEY,
} from "./registrations.ts";

function pfx(text: string, iid = 0): Prefix {
  const p = parsePrefix(text, iid);
  if (p === undefined) throw new Error(text);
  return p;
}

function reg(prefix: string, key: string, o: Partial<Registration> = {}): Registration {
  return {
    prefix: pfx(prefix),
    key,
    static: false,
    locators: [{
      priority: 1,
      weight: 100,
      mPriority: 255,
      mWeight: 0,
      local: false,
      probed: false,
      reachable: true,
      address: ipAddress("192.0.2.1"),
    }],
    ttl: 10,
    action: 0,
    mapVersion: 0,
    proxyReply: false,
    firstSeen: 0,
    lastSeen: 0,
    expiresAt: 1000,
    ...o,
  };
}

Deno.test("registrationKey() keys by xTR-ID when there is one, else by source address", () => {
  const from = { address: "192.0.2.7", port: 4342 };
  assert.equal(registrationKey(0xabn, from), "xtr-id:ab");
  assert.equal(registrationKey(undefined, from), "rloc:192.0.2.7");
  assert.notEqual(registrationKey(undefined, from), STATIC_KEY);
});

Deno.test("RegistrationStore.lookup() returns the live registrations of the most specific prefix, newest first", () => {
  const s = new RegistrationStore();
  s.put(reg("10.0.0.0/8", "a"));
  s.put(reg("10.1.0.0/16", "a", { lastSeen: 1 }));
  s.put(reg("10.1.0.0/16", "b", { lastSeen: 2 }));
  const got = s.lookup(pfx("10.1.2.3/32"), 0);
  assert.equal(got && formatPrefix(got.prefix), "10.1.0.0/16");
  assert.deepEqual(got?.registrations.map((r) => r.key), ["b", "a"]);
  assert.equal(s.lookup(pfx("10.2.0.1/32"), 0)?.prefix.len, 8);
  assert.equal(s.lookup(pfx("11.0.0.1/32"), 0), undefined);
  assert.equal(s.lookup(pfx("10.1.2.3/32", 5), 0), undefined, "another instance id");
  assert.equal(s.dynamicCount, 3);
});

Deno.test("RegistrationStore.lookup() drops expired registrations and falls back to a less specific prefix", () => {
  const s = new RegistrationStore();
  s.put(reg("10.0.0.0/8", "a", { expiresAt: 5000 }));
  s.put(reg("10.1.0.0/16", "a", { expiresAt: 1000 }));
  s.put(reg("10.1.0.0/16", "b", { expiresAt: 2000 }));
  const expired: string[] = [];
  const got = s.lookup(pfx("10.1.2.3/32"), 1000, (r) => expired.push(r.key));
  assert.deepEqual(got?.registrations.map((r) => r.key), ["b"]);
  assert.deepEqual(expired, ["a"]);
  const later = s.lookup(pfx("10.1.2.3/32"), 2000, (r) => expired.push(r.key));
  assert.equal(later?.prefix.len, 8);
  assert.deepEqual(expired, ["a", "b"]);
  assert.equal(s.dynamicCount, 1);
  assert.equal([...s.all()].length, 1);
});

Deno.test("RegistrationStore answers ETR registrations before a static one, which never expires", () => {
  const s = new RegistrationStore();
  s.put(reg("10.9.0.0/16", STATIC_KEY, { static: true, expiresAt: Infinity }));
  s.put(reg("10.9.0.0/16", "etr", { expiresAt: 1000 }));
  assert.deepEqual(s.lookup(pfx("10.9.1.1/32"), 0)?.registrations.map((r) => r.key), ["etr"]);
  assert.deepEqual(s.lookup(pfx("10.9.1.1/32"), 1e15)?.registrations.map((r) => r.key), [
    STATIC_KEY,
  ]);
  assert.deepEqual([s.dynamicCount, s.staticCount], [0, 1]);
});

Deno.test("RegistrationStore.put() replaces one key, remove() deletes one key", () => {
  const s = new RegistrationStore();
  assert.equal(s.put(reg("10.1.0.0/16", "a", { ttl: 1 })), undefined);
  assert.equal(s.put(reg("10.1.0.0/16", "a", { ttl: 2 }))?.ttl, 1);
  s.put(reg("10.1.0.0/16", "b"));
  assert.equal(s.dynamicCount, 2);
  assert.equal(s.get(pfx("10.1.0.0/16"), "a")?.ttl, 2);
  assert.equal(s.remove(pfx("10.1.0.0/16"), "a")?.key, "a");
  assert.equal(s.remove(pfx("10.1.0.0/16"), "a"), undefined);
  assert.equal(s.remove(pfx("10.1.0.0/16"), "b")?.key, "b");
  assert.equal(s.dynamicCount, 0);
  assert.equal(s.lookup(pfx("10.1.0.0/16"), 0), undefined);
  assert.equal(s.hole(pfx("10.1.0.0/16"))?.len, 0, "the table is empty again");
});

Deno.test("RegistrationStore.sweep() removes exactly the expired registrations", () => {
  const s = new RegistrationStore();
  s.put(reg("10.1.0.0/16", "a", { expiresAt: 1000 }));
  s.put(reg("10.1.0.0/16", "b", { expiresAt: 3000 }));
  s.put(reg("10.2.0.0/16", "a", { expiresAt: 1000 }));
  s.put(reg("10.3.0.0/16", STATIC_KEY, { static: true, expiresAt: Infinity }));
  assert.deepEqual(s.sweep(999), []);
  assert.equal(s.hole(pfx("10.2.0.1/32")), undefined);
  assert.deepEqual(s.sweep(1000).map((r) => `${formatPrefix(r.prefix)} ${r.key}`).sort(), [
    "10.1.0.0/16 a",
    "10.2.0.0/16 a",
  ]);
  assert.deepEqual([...s.all()].map((r) => r.key).sort(), ["b", STATIC_KEY]);
  assert.equal(s.dynamicCount, 1);
  assert.equal(s.hole(pfx("10.2.0.1/32"))?.len, 16, "10.2/16 left the table");
});

Deno.test("RegistrationStore.hole() is the least specific prefix around an EID that holds no registration", () => {
  const s = new RegistrationStore();
  s.put(reg("10.2.1.0/24", "a"));
  assert.equal(formatPrefix(s.hole(pfx("10.2.200.1/32"))!), "10.2.128.0/17");
  assert.equal(s.hole(pfx("10.2.0.0/16")), undefined, "a registration lies inside");
});

Deno.test("RegistrationStore.siteCount() counts each site's registrations as they come and go", () => {
  const s = new RegistrationStore();
  const site = pfx("10.0.0.0/8");
  const other = pfx("10.0.0.0/8", 5);
  s.put(reg("10.1.0.0/16", "a", { site }));
  s.put(reg("10.1.0.0/16", "b", { site }));
  s.put(reg("10.2.0.0/16", "a", { site, expiresAt: 500 }));
  s.put(reg("10.1.0.0/16", "a", { site, lastSeen: 9 })); // a refresh: no new registration
  s.put(reg("10.1.0.0/16", "c", { site: other, prefix: pfx("10.1.0.0/16", 5) }));
  s.put(reg("10.9.0.0/16", STATIC_KEY, { static: true, expiresAt: Infinity }));
  assert.equal(s.siteCount(site), 3);
  assert.equal(s.siteCount(other), 1);
  assert.deepEqual([...s.at(pfx("10.1.0.0/16"))].map((r) => r.key), ["a", "b"]);
  s.remove(pfx("10.1.0.0/16"), "b");
  assert.equal(s.siteCount(site), 2);
  s.lookup(pfx("10.2.0.1/32"), 600); // drops the expired one on its way
  assert.equal(s.siteCount(site), 1);
  s.sweep(2000);
  assert.equal(s.siteCount(site), 0);
  assert.equal(s.siteCount(other), 0);
  assert.equal(s.dynamicCount, 0);
  assert.equal(s.staticCount, 1);
});
