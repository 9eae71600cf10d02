import assert from "node:assert/strict";
import { type Address, ipAddress } from "../../wire/address.ts";
import { type Ecm, emitEcm, parseEcm } from "../../wire/ecm.ts";
import { emitMapRequest, type MapRequest } from "../../wire/map_request.ts";
import { RateLimiter } from "../../core/rate_limit.ts";
import { assertClean, dissect, fieldValues, tsharkMissing } from "../../tests/tshark.ts";
import {
  FORWARD_COUNTS,
  forwardedEcm,
  ForwardPath,
  FWD_DROPPED,
  FWD_MAIN,
  FWD_RATE_LIMITED,
  FWD_SENT,
} from "./forward_path.ts";

const ITR4 = 0xc0000201; // 192.0.2.1

function request(eid: Address, nonce: bigint, extra: Partial<MapRequest> = {}): Uint8Array {
  return emitMapRequest({
    authoritative: false,
    probe: false,
    smr: false,
    pitr: false,
    smrInvoked: false,
    localXtr: false,
    dontMapReply: false,
    nonce,
    sourceEid: { kind: "none" },
    itrRlocs: [ipAddress("192.0.2.1")],
    records: [{ maskLen: eid.kind === "ipv6" ? 128 : 32, eid }],
    ...extra,
  });
}

function ecm(payload: Uint8Array, ttl: number, v6 = false, flags: Partial<Ecm> = {}): Ecm {
  return {
    security: false,
    ddtOriginated: false,
    forRtr: false,
    rtrRelayed: false,
    inner: v6
      ? { src: "2001:db8::1", dst: "fd00::5", srcPort: 40000, dstPort: 4342, ttl, flowLabel: 7 }
      : {
        src: "192.0.2.1",
        dst: "10.1.2.3",
        srcPort: 40000,
        dstPort: 4342,
        ttl,
        identification: 0x1234,
        dontFragment: true,
      },
    payload,
    ...flags,
  };
}

/** What roles/mr.ts's main-thread path sends for `m`: emitEcm with D, R, N clear and TTL - 1. */
function mainPath(m: Ecm): Uint8Array {
  const inner = { ...m.inner, ttl: m.inner.ttl - 1 };
  return emitEcm({ ...m, ddtOriginated: false, forRtr: false, rtrRelayed: false, inner });
}

function path(limiter?: RateLimiter): { p: ForwardPath; counts: Float64Array } {
  const counts = new Float64Array(FORWARD_COUNTS.length);
  const p = new ForwardPath(limiter, counts, 3);
  p.setTargets([{ address: "198.51.100.7", port: 4342 }]);
  return { p, counts };
}

/** Runs `bytes` through `p` at `now`; the code and what it wrote. */
function run(p: ForwardPath, bytes: Uint8Array, now = 1000): { code: number; out: Uint8Array } {
  const buf = new Uint8Array(4096).fill(0xa5);
  const at = 100;
  const b = new Uint8Array(bytes.length + 8);
  b.set(bytes, 8);
  const code = p.handle(b, 8, 8 + bytes.length, ITR4, -1, now, buf, at, 2048);
  return { code, out: buf.slice(at, at + (code === FWD_SENT ? p.outLength : 0)) };
}

Deno.test("ForwardPath writes what the main-thread path emits (IPv4 and IPv6 inner, an instance id)", () => {
  const cases: Ecm[] = [
    ecm(request(ipAddress("10.1.2.3"), 0x1111n), 64),
    ecm(request(ipAddress("fd00::5"), 0x2222n), 9, true),
    ecm(
      request({ kind: "iid", iid: 7, iidMaskLen: 32, address: ipAddress("10.9.9.9") }, 0x3333n),
      2,
    ),
    ecm(request(ipAddress("10.1.2.4"), 0x4444n), 30, false, { forRtr: true, rtrRelayed: true }),
  ];
  for (const m of cases) {
    const { p, counts } = path();
    const { code, out } = run(p, emitEcm(m));
    assert.equal(code, FWD_SENT);
    assert.deepEqual(out, mainPath(m));
    assert.equal(parseEcm(out).inner.ttl, m.inner.ttl - 1);
    assert.equal(parseEcm(out).checksumOk, true);
    assert.equal(p.toFamily, 4);
    assert.equal(p.toAddr4, 0xc6336407);
    assert.equal(p.toPort, 4342);
    assert.deepEqual([...counts], [1, 1, 1, 1, 0, 0, 0]);
  }
});

Deno.test("forwardedEcm() rewrites the datagram as it came, or emits anew for an inner header with options", () => {
  for (
    const m of [
      ecm(request(ipAddress("10.1.2.3"), 1n), 64),
      ecm(request(ipAddress("fd00::5"), 2n), 9, true),
    ]
  ) {
    const datagram = emitEcm({ ...m, forRtr: true });
    assert.deepEqual(forwardedEcm(parseEcm(datagram), m.inner.ttl - 1, datagram), mainPath(m));
    assert.deepEqual(forwardedEcm(parseEcm(datagram), m.inner.ttl - 1), mainPath(m));
  }
  // An inner IPv4 header with options (IHL 6): not rewritten in place, emitted (without them).
  const m = ecm(request(ipAddress("10.1.2.3"), 3n), 64);
  const plain = emitEcm(m);
  const withOptions = new Uint8Array(plain.length + 4);
  withOptions.set(plain.subarray(0, 24), 0);
  withOptions.set([1, 1, 1, 1], 24);
  withOptions.set(plain.subarray(24), 28);
  withOptions[4] = 0x46;
  const out = forwardedEcm(m, 63, withOptions);
  assert.deepEqual(out, mainPath(m));
});

Deno.test("ForwardPath drops TTL 1 and 0 and a copy within 500 ms, and forwards it after", () => {
  const { p, counts } = path();
  const m = emitEcm(ecm(request(ipAddress("10.1.2.3"), 0x800n), 10));
  assert.equal(run(p, m, 1000).code, FWD_SENT);
  assert.equal(run(p, m, 1400).code, FWD_DROPPED);
  assert.equal(p.dropReason, "duplicate");
  // Another EID with the same nonce, the same EID with another nonce: not copies.
  assert.equal(
    run(p, emitEcm(ecm(request(ipAddress("10.1.2.4"), 0x800n), 10)), 1400).code,
    FWD_SENT,
  );
  assert.equal(
    run(p, emitEcm(ecm(request(ipAddress("10.1.2.3"), 0x801n), 10)), 1400).code,
    FWD_SENT,
  );
  assert.equal(run(p, m, 1500).code, FWD_SENT, "the window is over");
  for (const ttl of [1, 0]) {
    assert.equal(
      run(p, emitEcm(ecm(request(ipAddress("10.1.2.3"), 0x900n), ttl))).code,
      FWD_DROPPED,
    );
    assert.equal(p.dropReason, "ttl-expired");
  }
  assert.deepEqual([...counts], [7, 7, 4, 4, 2, 1, 0]);
});

Deno.test("ForwardPath leaves to the main thread what it does not forward in place", () => {
  const { p, counts } = path();
  const eid = ipAddress("10.1.2.3");
  const others: Uint8Array[] = [
    request(eid, 1n), // not in an ECM
    emitEcm(ecm(request(eid, 2n), 64, false, { ddtOriginated: true })),
    emitEcm(ecm(request(eid, 3n, { probe: true }), 64)),
    emitEcm(ecm(request(eid, 4n, { smr: true }), 64)),
    emitEcm(ecm(request(eid, 5n, { records: [{ maskLen: 8, eid }] }), 64)),
    emitEcm(ecm(request(eid, 6n, { records: [{ maskLen: 32, eid }, { maskLen: 32, eid }] }), 64)),
    new Uint8Array([0x80, 0, 0]),
  ];
  for (const b of others) assert.equal(run(p, b).code, FWD_MAIN);
  // No map-server, or map-servers of both families: all the main thread's.
  const m = emitEcm(ecm(request(eid, 7n), 64));
  p.setTargets([]);
  assert.equal(run(p, m).code, FWD_MAIN);
  p.setTargets([{ address: "198.51.100.7", port: 4342 }, { address: "2001:db8::8", port: 4342 }]);
  assert.equal(run(p, m).code, FWD_MAIN);
  // A target of a family the Worker has no socket for.
  const v4only = new ForwardPath(undefined, new Float64Array(FORWARD_COUNTS.length), 1);
  v4only.setTargets([{ address: "2001:db8::7", port: 4342 }]);
  assert.equal(run(v4only, m).code, FWD_MAIN);
  assert.deepEqual([...counts], [0, 0, 0, 0, 0, 0, 0]);
});

Deno.test("ForwardPath sends an ITR's repeated request for an EID to the next map-server within 3 s", () => {
  const { p } = path();
  p.setTargets([
    { address: "198.51.100.7", port: 4342 },
    { address: "198.51.100.8", port: 4343 },
    { address: "198.51.100.9", port: 4344 },
  ]);
  const eid = ipAddress("10.1.2.3");
  const to = (nonce: bigint, now: number, ip = eid) => {
    assert.equal(run(p, emitEcm(ecm(request(ip, nonce), 64)), now).code, FWD_SENT);
    return `${p.toAddr4.toString(16)}:${p.toPort}`;
  };
  const [a, b, c] = ["c6336407:4342", "c6336408:4343", "c6336409:4344"];
  assert.equal(to(1n, 1000), a);
  assert.equal(to(2n, 2000), b, "asked again within 3 s: the next one");
  assert.equal(to(3n, 3000), c);
  assert.equal(to(4n, 4000), a, "round again");
  assert.equal(to(5n, 1000 + 4000 + 3000), a, "3 s after the last: the first again");
  assert.equal(to(6n, 7100, ipAddress("10.1.2.4")), a, "another EID: the first");
  // Another ITR asking for the same EID: the first.
  const b2 = new Uint8Array(4096);
  const bytes = emitEcm(ecm(request(eid, 7n), 64));
  const code = p.handle(bytes, 0, bytes.length, 0xc0000202, -1, 7200, b2, 0, 2048);
  assert.equal(code, FWD_SENT);
  assert.equal(`${p.toAddr4.toString(16)}:${p.toPort}`, a);
});

Deno.test("ForwardPath: two Workers' paths share the recent forwards, so the next map-server is the next one", () => {
  const recent = ForwardPath.recentMemory();
  const targets = [{ address: "198.51.100.7", port: 4342 }, {
    address: "198.51.100.8",
    port: 4342,
  }];
  const paths = [0, 1].map(() => {
    const p = new ForwardPath(
      undefined,
      new Float64Array(FORWARD_COUNTS.length),
      3,
      500,
      3000,
      recent,
    );
    p.setTargets(targets);
    return p;
  });
  const eid = ipAddress("10.1.2.3");
  const sent = (p: ForwardPath, nonce: bigint, now: number) => {
    assert.equal(run(p, emitEcm(ecm(request(eid, nonce), 64)), now).code, FWD_SENT);
    return p.toAddr4;
  };
  assert.equal(sent(paths[0]!, 1n, 1000), 0xc6336407);
  assert.equal(
    sent(paths[1]!, 2n, 1500),
    0xc6336408,
    "the other Worker knows it went to the first",
  );
  assert.equal(sent(paths[0]!, 3n, 2000), 0xc6336407);
});

Deno.test("ForwardPath takes the shared rate-limit buckets", () => {
  const limiter = new RateLimiter(2);
  const { p, counts } = path(limiter);
  const codes: number[] = [];
  for (let n = 1; n <= 50; n++) {
    codes.push(run(p, emitEcm(ecm(request(ipAddress("10.1.2.3"), BigInt(n)), 64)), 5000).code);
  }
  const limited = codes.filter((c) => c === FWD_RATE_LIMITED).length;
  assert.ok(limited > 0 && limited < 50, `${limited} of 50 limited`);
  assert.equal(codes.filter((c) => c === FWD_SENT).length, 50 - limited);
  assert.equal(counts[6], limited);
  assert.equal(counts[0], 50);
  // The main thread's share of the same buckets (core/control.ts): none left for this source.
  assert.equal(limiter.allow("192.0.2.1", 5000), false);
});

Deno.test({
  name: "ForwardPath's forwards decode cleanly in tshark, TTL one less",
  ignore: (await tsharkMissing()) !== undefined,
  fn: async () => {
    const { p } = path();
    const ms = [
      ecm(request(ipAddress("10.1.2.3"), 0x5151n), 64),
      ecm(request(ipAddress("fd00::5"), 0x5252n), 33, true),
    ];
    const frames = ms.map((m) => ({
      payload: run(p, emitEcm(m)).out,
      srcPort: 4342,
      dstPort: 4342,
    }));
    const out = await dissect(frames);
    for (const [i, f] of out.entries()) {
      assertClean(f);
      const ttl = fieldValues(f, i === 0 ? "ip.ttl" : "ipv6.hlim");
      assert.ok(ttl.includes(String(ms[i]!.inner.ttl - 1)), `inner TTL in ${ttl}`);
    }
  },
});
