/**
 * The control-plane load generator: its messages (the nonce patched in
 * place with the inner UDP checksum brought up to date, byte for byte what
 * the codec emits, and clean in tshark), its latency histogram, and a whole
 * run of every phase with batched Workers against the transport responder
 * on 127.0.0.1 (no root needed).
 *
 * @module
 */

import assert from "node:assert/strict";
import { runLoad } from "./_loadgen.ts";
import {
  fillRequest,
  Histogram,
  mapRegisterFor,
  mapRequestTemplate,
  slash24s,
} from "./_loadgen_worker.ts";
import { startResponder } from "./_bench_responder.ts";
import { emitEcm } from "../wire/ecm.ts";
import { emitMapRequest } from "../wire/map_request.ts";
import { parseControlMessage } from "../wire/message.ts";
import { authStatus, HmacKey, KEY_ID_HMAC_SHA1_96, KEY_ID_HMAC_SHA256_128 } from "../wire/auth.ts";
import { assertClean, dissect, fieldValues, tsharkMissing } from "../tests/tshark.ts";

/** What the codec emits for the same Map-Request with its nonce set from the start. */
function emitted(source: string, port: number, eid: string, nonce: bigint): Uint8Array {
  return emitEcm({
    security: false,
    ddtOriginated: false,
    forRtr: false,
    rtrRelayed: false,
    inner: { src: source, dst: eid, srcPort: port, dstPort: 4342, ttl: 64 },
    payload: emitMapRequest({
      authoritative: false,
      probe: false,
      smr: false,
      pitr: false,
      smrInvoked: false,
      localXtr: false,
      dontMapReply: false,
      nonce,
      sourceEid: { kind: "none" },
      itrRlocs: [{ kind: "ipv4", ip: source }],
      records: [{ maskLen: 32, eid: { kind: "ipv4", ip: eid } }],
    }),
  });
}

Deno.test("fillRequest() patches the nonce and inner UDP checksum to what the codec emits", () => {
  const cases: [number, number][] = [
    [0, 0],
    [1, 1],
    [0xffffffff, 0xffffffff],
    [0x12345678, 0x9abcdef0],
    [0xffff0000, 0x0000ffff],
  ];
  for (let i = 0; i < 200; i++) {
    const r = crypto.getRandomValues(new Uint32Array(2));
    cases.push([r[0]!, r[1]!]);
  }
  for (
    const [eid, port] of [["12.0.0.1", 40000], ["10.255.3.1", 1], ["11.1.2.1", 65535]] as const
  ) {
    const tpl = mapRequestTemplate("127.0.0.1", port, eid);
    const buf = new Uint8Array(512).fill(0xa5);
    const view = new DataView(buf.buffer);
    for (const [tag, seq] of cases) {
      const n = fillRequest(tpl, buf, view, 7, tag, seq);
      const want = emitted("127.0.0.1", port, eid, (BigInt(tag) << 32n) | BigInt(seq));
      assert.deepEqual(buf.subarray(7, 7 + n), want, `tag ${tag} seq ${seq} eid ${eid}`);
    }
  }
});

Deno.test("mapRegisterFor() signs with the key type of its key, nonce tag:index", () => {
  for (const keyId of [KEY_ID_HMAC_SHA1_96, KEY_ID_HMAC_SHA256_128]) {
    const key = new HmacKey(keyId, "k");
    const bytes = mapRegisterFor("10.0.7.0", 7, 0xdeadbeef, key);
    assert.equal(authStatus(bytes, key), "ok");
    const m = parseControlMessage(bytes);
    assert.equal(m.type, "map-register");
    if (m.type !== "map-register") return;
    assert.equal(m.msg.keyId, keyId);
    assert.equal(m.msg.nonce, (0xdeadbeefn << 32n) | 7n);
    assert.ok(m.msg.proxyReply && m.msg.wantMapNotify);
    assert.equal(m.msg.records[0]!.maskLen, 24);
  }
});

Deno.test("slash24s() lists the /24s of a prefix in order, at most max", () => {
  assert.deepEqual(slash24s("10.0.0.0/8", 3), ["10.0.0.0", "10.0.1.0", "10.0.2.0"]);
  assert.deepEqual(slash24s("192.168.4.0/23", 10), ["192.168.4.0", "192.168.5.0"]);
  assert.throws(() => slash24s("10.0.0.0/25", 1), TypeError);
});

Deno.test("Histogram: quantiles in 1 µs buckets, 1 ms past 100 ms, merged across Workers", () => {
  const a = new Histogram();
  const b = new Histogram();
  for (let i = 1; i <= 98; i++) a.record(i / 100); // 0.01 .. 0.98 ms
  b.record(2.5);
  b.record(250.7);
  a.merge(b);
  assert.equal(a.total, 100);
  assert.equal(a.quantile(0.5), 0.5);
  assert.equal(a.quantile(0.99), 2.5);
  assert.equal(a.quantile(1), 250);
  assert.equal(a.max, 250.7);
  const c = new Histogram(a.counts.slice());
  assert.equal(c.total, 100);
  assert.equal(new Histogram().quantile(0.5), 0);
});

const missing = await tsharkMissing();
Deno.test({
  name: "the generator's messages are clean in tshark, checksums included" +
    (missing !== undefined ? ` (skipped: ${missing})` : ""),
  ignore: missing !== undefined,
  async fn() {
    const tpl = mapRequestTemplate("127.0.0.1", 41000, "12.0.3.1");
    const buf = new Uint8Array(tpl.length);
    fillRequest(tpl, buf, new DataView(buf.buffer), 0, 0x8badf00d, 123456);
    const payloads = [
      buf,
      mapRegisterFor("10.0.3.0", 3, 0x8badf00d, new HmacKey(KEY_ID_HMAC_SHA1_96, "k1")),
      mapRegisterFor("11.0.3.0", 3, 0x8badf00d, new HmacKey(KEY_ID_HMAC_SHA256_128, "k2")),
    ];
    const frames = await dissect(payloads.map((payload) => ({
      payload,
      srcPort: 41000,
      dstPort: 4342,
    })));
    for (const f of frames) assertClean(f);
    assert.deepEqual(fieldValues(frames[0]!, "lisp.nonce"), ["0x8badf00d0001e240"]);
    // Outer and inner UDP checksums, both verified ("1": good).
    assert.deepEqual(fieldValues(frames[0]!, "udp.checksum.status"), ["1", "1"]);
  },
});

Deno.test({
  name: "runLoad() runs every phase with batched Workers against a responder on loopback",
  // The Workers' sockets close after the test's last await.
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const responder = await startResponder({
      address: "127.0.0.1",
      port: 0,
      kt1Key: "k1",
      kt2Key: "k2",
    });
    try {
      const r = await runLoad({
        plan: {
          target: "127.0.0.1",
          port: responder.port,
          source: "127.0.0.1",
          batch: 16,
          prefixes: 256,
          negativeSite: "12.0.0.0/8",
          kt1Site: "10.0.0.0/8",
          kt1Key: "k1",
          kt2Site: "11.0.0.0/8",
          kt2Key: "k2",
        },
        phases: ["negative", "register-kt1", "positive", "register-kt2"],
        seconds: 0.3,
        warmupSeconds: 0.1,
        drainSeconds: 0.5,
        expireSeconds: 1,
        window: 16,
        rate: 0,
        workers: 2,
        serverPid: Deno.pid,
        log: () => {},
      });
      assert.equal(r.mode, "closed");
      assert.equal(r.workers, 2);
      for (const kind of ["negative", "register-kt1", "positive", "register-kt2"] as const) {
        const p = r.phases[kind];
        assert.ok(p !== undefined && !("error" in p), `${kind}: ${JSON.stringify(p)}`);
        assert.ok(p.sent > 0 && p.answered > 0 && p.perSecond > 0, `${kind}: ${JSON.stringify(p)}`);
        assert.equal(p.answered + p.lost, p.sent);
        assert.ok(p.medianMs > 0 && p.p99Ms >= p.medianMs, `${kind} latency`);
        assert.ok(p.serverCpu !== undefined && p.loadgenCpu >= 0);
      }
      const neg = r.phases.negative!;
      const pos = r.phases.positive!;
      assert.ok(!("error" in neg) && !("error" in pos));
      assert.equal(neg.positive, 0, "negative Map-Requests get negative Map-Replies");
      assert.equal(pos.positive, pos.answered, "after registering, every reply has a locator");
    } finally {
      responder.close();
    }
  },
});
