import assert from "node:assert/strict";
import {
  DEFAULT_INNER_TTL,
  DUPLICATE_WINDOW_MS,
  ForwardGuard,
  type HostAddresses,
  OwnAddresses,
} from "./forward_guard.ts";
import { Logger } from "./log.ts";

/** A host whose addresses a test sets, counting how often they are read. */
class FakeHost implements HostAddresses {
  list: string[] = [];
  reads = 0;
  fail = false;
  readonly sources = new Map<string, string>();
  addresses(): string[] {
    this.reads++;
    if (this.fail) throw new Error("netlink unavailable");
    return this.list;
  }
  routeSource(dst: string): string | undefined {
    return this.sources.get(dst);
  }
}

function own(address: string | undefined, host = new FakeHost(), clock = { t: 0 }) {
  const lines: string[] = [];
  const logger = new Logger({
    role: "t",
    now: () => clock.t,
    sink: { write: (l) => lines.push(l) },
  });
  const o = new OwnAddresses({
    socket: { address, port: 4342 },
    host,
    now: () => clock.t,
    logger,
    refreshMs: 1000,
  });
  return { o, host, clock, lines };
}

Deno.test("OwnAddresses: bound to one address, only that address on our port is ourselves", () => {
  const { o, host } = own("127.0.43.1");
  assert.equal(o.isSelf({ address: "127.0.43.1", port: 4342 }), true);
  assert.equal(o.isSelf({ address: "::ffff:127.0.43.1", port: 4342 }), true, "IPv4-mapped");
  assert.equal(o.isSelf({ address: "0.0.0.0", port: 4342 }), true, "unspecified: the host");
  assert.equal(o.isSelf({ address: "127.0.43.1", port: 4343 }), false, "another port");
  assert.equal(o.isSelf({ address: "127.0.43.2", port: 4342 }), false, "another socket's address");
  assert.equal(o.isSelf({ address: "not an address", port: 4342 }), false);
  assert.equal(host.reads, 0, "the host's addresses are not needed");
});

Deno.test("OwnAddresses: bound to the wildcard, every host address, loopback and unspecified", () => {
  const { o, host } = own(undefined);
  host.list = ["192.0.2.2", "fd00:0:0::2", "fe80::fc:ff:fe00:1"];
  for (const a of ["192.0.2.2", "fd00::2", "FD00::0002", "127.0.0.1", "127.9.9.9", "::1", "::"]) {
    assert.equal(o.isSelf({ address: a, port: 4342 }), true, a);
  }
  assert.equal(o.isSelf({ address: "198.51.100.1", port: 4342 }), false);
  assert.equal(o.isSelf({ address: "192.0.2.2", port: 4341 }), false);
  assert.equal(o.isHostAddress("192.0.2.2"), true);
  assert.equal(o.isHostAddress("192.0.2.3"), false);
});

Deno.test("OwnAddresses reads the host's addresses now and then, not per question", () => {
  const { o, host, clock } = own(undefined);
  host.list = ["192.0.2.2"];
  for (let i = 0; i < 100; i++) o.isSelf({ address: "192.0.2.9", port: 4342 });
  assert.equal(host.reads, 1);
  host.list = ["192.0.2.2", "192.0.2.9"];
  clock.t = 999;
  assert.equal(o.isSelf({ address: "192.0.2.9", port: 4342 }), false, "not read again yet");
  clock.t = 1000;
  assert.equal(o.isSelf({ address: "192.0.2.9", port: 4342 }), true, "a new address, read again");
  assert.equal(host.reads, 2);
});

Deno.test("OwnAddresses keeps loopback and the last addresses when the host's cannot be read", () => {
  const { o, host, clock, lines } = own(undefined);
  host.list = ["192.0.2.2"];
  assert.equal(o.isHostAddress("192.0.2.2"), true);
  host.fail = true;
  for (let i = 0; i < 5; i++) {
    clock.t += 1000;
    assert.equal(o.isHostAddress("192.0.2.2"), true);
    assert.equal(o.isHostAddress("127.0.0.1"), true);
  }
  assert.equal(host.reads, 6, "read again at every refresh");
  assert.equal(lines.filter((l) => l.includes("host-addresses-unavailable")).length, 1);
  assert.match(lines[0]!, /netlink unavailable/);
});

Deno.test("OwnAddresses.sourceToward() is the bound address, or the kernel's source toward the peer", () => {
  assert.equal(own("127.0.0.60").o.sourceToward("127.0.0.61"), "127.0.0.60");
  assert.equal(own("127.0.0.60").o.sourceToward("::1"), undefined, "not of the family");
  const { o, host } = own(undefined);
  host.sources.set("192.0.2.50", "192.0.2.2");
  assert.equal(o.sourceToward("192.0.2.50"), "192.0.2.2");
  assert.equal(o.sourceToward("127.0.0.61"), "127.0.0.1");
  assert.equal(o.sourceToward("::1"), "::1");
  assert.equal(o.sourceToward("198.51.100.1"), undefined, "no route");
});

Deno.test("ForwardGuard.check(): never to ourselves, one TTL less, and not twice within the window", () => {
  const clock = { t: 0 };
  const { o } = own("127.0.43.1", new FakeHost(), clock);
  const g = new ForwardGuard(o, { now: () => clock.t });
  const etr = { address: "127.0.43.5", port: 4342 };
  assert.equal(
    g.check({ address: "127.0.43.1", port: 4342 }, 64, 1n, "10.1.0.0/16"),
    "own-address",
  );
  assert.equal(g.check(etr, 64, 1n, "10.1.0.0/16"), 63);
  assert.equal(g.check(etr, 64, 1n, "10.1.0.0/16"), "duplicate");
  assert.equal(g.check(etr, 64, 1n, "10.2.0.0/16"), 63, "another EID");
  assert.equal(g.check(etr, 64, 2n, "10.1.0.0/16"), 63, "another nonce");
  assert.equal(g.check(etr, undefined, 3n, "10.1.0.0/16"), DEFAULT_INNER_TTL, "no inner header");
  assert.equal(g.check(etr, 2, 4n, "10.1.0.0/16"), 1);
  assert.equal(g.check(etr, 1, 5n, "10.1.0.0/16"), "ttl-expired");
  assert.equal(g.check(etr, 0, 5n, "10.1.0.0/16"), "ttl-expired");
  assert.equal(g.check(etr, 9, 5n, "10.1.0.0/16"), 8, "a refused request is not remembered");
  clock.t = DUPLICATE_WINDOW_MS - 1;
  assert.equal(g.check(etr, 64, 1n, "10.1.0.0/16"), "duplicate");
  clock.t = DUPLICATE_WINDOW_MS;
  assert.equal(g.check(etr, 64, 1n, "10.1.0.0/16"), 63, "after the window: a retransmission");
});

Deno.test("ForwardGuard.check() forgets in the order it remembered: by expiry, and the oldest past 65,536", () => {
  const clock = { t: 0 };
  const g = new ForwardGuard(own("192.0.2.1", new FakeHost(), clock).o, { now: () => clock.t });
  const to = { address: "198.51.100.1", port: 4342 };
  for (let i = 0; i < 70_000; i++) assert.equal(g.check(to, 64, BigInt(i), "10.0.0.1/32"), 63);
  // The 4,464 oldest were pushed out; the rest are remembered.
  assert.equal(g.check(to, 64, 0n, "10.0.0.1/32"), 63);
  assert.equal(g.check(to, 64, 69_999n, "10.0.0.1/32"), "duplicate");
  assert.equal(g.check(to, 64, 10_000n, "10.0.0.1/32"), "duplicate");
  // One remembered half a window later outlives those of the first moment.
  clock.t += DUPLICATE_WINDOW_MS / 2;
  assert.equal(g.check(to, 64, 123_456n, "10.0.0.1/32"), 63);
  clock.t += DUPLICATE_WINDOW_MS / 2;
  assert.equal(g.check(to, 64, 10_000n, "10.0.0.1/32"), 63, "expired");
  assert.equal(g.check(to, 64, 69_999n, "10.0.0.1/32"), 63, "expired");
  assert.equal(g.check(to, 64, 123_456n, "10.0.0.1/32"), "duplicate", "not yet");
});
