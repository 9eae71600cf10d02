import assert from "node:assert/strict";
import { type Address, ipAddress } from "./address.ts";
import { authStatusAt, HmacKey, signAuthenticatedAt } from "./auth.ts";
import {
  MapRegisterView,
  MapRequestView,
  nonceKey,
  scanMapRegister,
  scanMapRequest,
  writeMapNotifyFrom,
  writeMapReplyHeader,
  writeNegativeRecord,
} from "./control_view.ts";
import { emitEcm } from "./ecm.ts";
import { ACTION, type EidRecord } from "./eid_record.ts";
import { ipv4ToBytes, ipv6ToBytes } from "./ip_text.ts";
import { locatorRecord } from "./locator.ts";
import { emitMapRegister, type MapRegister, parseMapRegister } from "./map_register.ts";
import { emitSignedMapNotify } from "./map_notify.ts";
import { emitMapReply } from "./map_reply.ts";
import { emitMapRequest, type MapRequest } from "./map_request.ts";
import { type ControlMessage, emitControlMessage, parseControlMessage } from "./message.ts";
import {
  deriveSeed,
  randomEcmInner,
  randomEidRecord,
  randomIp,
  randomMapRegister,
  randomMapRequest,
  Rng,
} from "../tests/wire_gen.ts";

const SEED = 0x5ca1ab1e;

function addrBytes(a: Address): Uint8Array | undefined {
  if (a.kind === "ipv4") {
    const b = new Uint8Array(4);
    ipv4ToBytes(a.ip, b, 0);
    return b;
  }
  if (a.kind === "ipv6") {
    const b = new Uint8Array(16);
    ipv6ToBytes(a.ip, b, 0);
    return b;
  }
  return undefined;
}

/** A Map-Request of the common shape (one host record, IP ITR-RLOCs), with variations. */
function commonRequest(rng: Rng): MapRequest {
  const ip = randomIp(rng);
  const eid: Address = rng.bool(0.3)
    ? { kind: "iid", iid: rng.u32(), iidMaskLen: rng.u8(), address: ip }
    : ip;
  return {
    authoritative: rng.bool(),
    probe: rng.bool(0.05),
    smr: rng.bool(0.05),
    pitr: rng.bool(),
    smrInvoked: rng.bool(),
    localXtr: rng.bool(),
    dontMapReply: rng.bool(),
    nonce: rng.bigint64(),
    sourceEid: rng.bool(0.5)
      ? { kind: "none" }
      : rng.bool()
      ? randomIp(rng)
      : { kind: "iid", iid: 5, iidMaskLen: 32, address: randomIp(rng) },
    itrRlocs: Array.from({ length: 1 + rng.int(3) }, () => randomIp(rng)),
    records: [{ maskLen: ip.kind === "ipv4" ? 32 : 128, eid }],
  };
}

/** The datagram: the Map-Request alone or in an ECM. */
function datagram(rng: Rng, m: MapRequest): Uint8Array {
  const inner = emitMapRequest(m);
  return rng.bool() ? inner : emitEcm({
    security: rng.bool(0.1),
    ddtOriginated: rng.bool(0.3),
    forRtr: false,
    rtrRelayed: false,
    inner: randomEcmInner(rng),
    payload: inner,
  });
}

/** Flips, cuts or grows the bytes now and then. */
function mutate(rng: Rng, b: Uint8Array): Uint8Array {
  const k = rng.int(6);
  if (k === 0) return b;
  const out = b.slice();
  if (k <= 3) {
    for (let i = 0; i < 1 + rng.int(3); i++) out[rng.int(out.length)] = rng.u8();
    return out;
  }
  if (k === 4) return out.subarray(0, rng.int(out.length));
  const grown = new Uint8Array(b.length + 1 + rng.int(8));
  grown.set(b);
  return grown;
}

/** Checks one datagram: what the scan accepts, the codec parses to the same fields. */
function agree(bytes: Uint8Array, families: number): boolean {
  // At an offset inside a bigger buffer, as in a receive batch.
  const buf = new Uint8Array(bytes.length + 40).fill(0xa5);
  buf.set(bytes, 17);
  const v = new MapRequestView();
  if (!scanMapRequest(buf, 17, 17 + bytes.length, v, families)) return false;
  let msg: ControlMessage = parseControlMessage(bytes); // throws when the scan was wrong
  if (msg.type === "ecm") {
    assert.ok(v.ecm);
    assert.equal(v.ddt, msg.msg.ddtOriginated);
    assert.equal(v.innerSrcPort, msg.msg.inner.srcPort);
    assert.equal(v.innerTtl, msg.msg.inner.ttl);
    msg = parseControlMessage(msg.msg.payload);
  } else assert.ok(!v.ecm);
  assert.equal(msg.type, "map-request");
  const m = (msg as Extract<ControlMessage, { type: "map-request" }>).msg;
  assert.ok(!m.probe && !m.smr && m.mapReply === undefined && m.records.length === 1);
  assert.equal(new DataView(buf.buffer).getBigUint64(v.nonce, false), m.nonce);
  const itr = m.itrRlocs.find((a) =>
    (a.kind === "ipv4" && (families & 1) !== 0) || (a.kind === "ipv6" && (families & 2) !== 0)
  );
  if (itr === undefined) assert.equal(v.itrFamily, 0);
  else {
    assert.equal(v.itrFamily, itr.kind === "ipv4" ? 4 : 6);
    assert.deepEqual(
      buf.subarray(v.itrAddress, v.itrAddress + (v.itrFamily === 4 ? 4 : 16)),
      addrBytes(itr),
    );
  }
  const rec = m.records[0]!;
  const eid = rec.eid.kind === "iid" ? rec.eid.address : rec.eid;
  assert.equal(v.iid, rec.eid.kind === "iid" ? rec.eid.iid : 0);
  assert.equal(v.eidFamily, eid.kind === "ipv4" ? 4 : 6);
  assert.equal(rec.maskLen, v.eidFamily === 4 ? 32 : 128);
  assert.deepEqual(
    buf.subarray(v.eidAddress, v.eidAddress + (v.eidFamily === 4 ? 4 : 16)),
    addrBytes(eid),
  );
  return true;
}

Deno.test("scanMapRequest() accepts only what parseControlMessage() parses, and reads the same fields", () => {
  let accepted = 0;
  let total = 0;
  for (let i = 0; i < 20_000; i++) {
    const rng = new Rng(deriveSeed(SEED, "request", i));
    const m = rng.bool(0.7) ? commonRequest(rng) : randomMapRequest(rng);
    const bytes = mutate(rng, datagram(rng, m));
    total++;
    try {
      if (agree(bytes, 1 + rng.int(3))) accepted++;
    } catch (e) {
      throw new Error(`case ${i}: ${(e as Error).message}`, { cause: e });
    }
  }
  assert.ok(accepted > total / 4, `${accepted} of ${total} accepted`);
});

Deno.test("scanMapRequest() refuses probes, SMRs, several records, a prefix, a Map-Reply record, trailing bytes", () => {
  const rng = new Rng(7);
  const base: MapRequest = { ...commonRequest(rng), probe: false, smr: false };
  const v = new MapRequestView();
  const ok = (m: MapRequest, extra = 0) => {
    const b = emitMapRequest(m);
    const buf = new Uint8Array(b.length + extra);
    buf.set(b);
    return scanMapRequest(buf, 0, buf.length, v, 3);
  };
  assert.ok(ok(base));
  assert.ok(!ok({ ...base, probe: true }));
  assert.ok(!ok({ ...base, smr: true }));
  assert.ok(!ok({ ...base, records: [base.records[0]!, base.records[0]!] }));
  assert.ok(!ok({ ...base, records: [{ ...base.records[0]!, maskLen: 24 }] }));
  assert.ok(!ok({ ...base, mapReply: randomEidRecord(rng) }));
  assert.ok(!ok(base, 1));
});

Deno.test("scanMapRequest() leaves a subscription (RFC 9437: N bit, or I bit) to the main thread", () => {
  const rng = new Rng(9);
  const base: MapRequest = { ...commonRequest(rng), probe: false, smr: false };
  const v = new MapRequestView();
  const scan = (m: MapRequest) => {
    const b = emitMapRequest(m);
    return scanMapRequest(b, 0, b.length, v, 3);
  };
  assert.ok(scan(base));
  assert.ok(!scan({ ...base, records: [{ ...base.records[0]!, notify: true }] }));
  assert.ok(!scan({ ...base, xtrId: 1n, siteId: 2n }));
  // The I bit alone, the xTR-ID left out: not of the common shape either.
  const b = emitMapRequest(base);
  b[1]! |= 0x10;
  assert.ok(!scanMapRequest(b, 0, b.length, v, 3));
});

/** A Map-Register of the common shape: IP EIDs (some in an instance), IP locators. */
function commonRegister(rng: Rng): MapRegister {
  const records: EidRecord[] = Array.from({ length: 1 + rng.int(3) }, () => {
    const ip = randomIp(rng);
    return {
      ttl: rng.u32(),
      maskLen: rng.int(ip.kind === "ipv4" ? 33 : 129),
      action: rng.int(8),
      authoritative: rng.bool(),
      incomplete: rng.bool(0.1),
      sigCount: 0,
      mapVersion: rng.int(4096),
      eid: rng.bool(0.3) ? { kind: "iid", iid: rng.u32(), iidMaskLen: 32, address: ip } : ip,
      locators: Array.from({ length: rng.int(4) }, () => ({
        ...locatorRecord(randomIp(rng), rng.u8(), rng.u8()),
        local: rng.bool(),
        probed: rng.bool(),
        reachable: rng.bool(),
      })),
    };
  });
  const xtr = rng.bool();
  const keyId = rng.pick([1, 2]);
  const m: MapRegister = {
    proxyReply: rng.bool(),
    securityCapable: rng.bool(),
    xtrIdPresent: xtr,
    rtr: false,
    eidNotify: false,
    useTtlForTimeout: rng.bool(),
    mergeRequest: rng.bool(),
    mobileNode: false,
    wantMapNotify: rng.bool(0.8),
    nonce: rng.bigint64(),
    keyId,
    authData: new Uint8Array(keyId === 1 ? 20 : 32),
    records,
  };
  return xtr ? { ...m, xtrId: rng.bigint128(), siteId: rng.bigint64() } : m;
}

Deno.test("scanMapRegister() accepts only what parseMapRegister() parses; the Map-Notify it writes is emitSignedMapNotify()'s", () => {
  const keys = [new HmacKey(1, "key one"), new HmacKey(2, "key two")];
  let accepted = 0;
  let notified = 0;
  for (let i = 0; i < 10_000; i++) {
    const rng = new Rng(deriveSeed(SEED, "register", i));
    const m = rng.bool(0.7) ? commonRegister(rng) : randomMapRegister(rng);
    let bytes: Uint8Array;
    try {
      bytes = emitMapRegister(m);
    } catch {
      continue;
    }
    const key = keys.find((k) => k.keyId === m.keyId);
    if (key !== undefined && m.authData.length === key.digestLength) {
      signAuthenticatedAt(bytes, 0, bytes.length, key);
    }
    bytes = mutate(rng, bytes);
    const buf = new Uint8Array(bytes.length + 30).fill(0x5a);
    buf.set(bytes, 9);
    const v = new MapRegisterView();
    if (!scanMapRegister(buf, 9, 9 + bytes.length, v)) continue;
    accepted++;
    const p = parseMapRegister(bytes);
    assert.equal(v.records, p.records.length, `case ${i}`);
    assert.deepEqual([v.wantMapNotify, v.proxyReply, v.xtrIdPresent, v.keyId], [
      p.wantMapNotify,
      p.proxyReply,
      p.xtrIdPresent,
      p.keyId,
    ]);
    p.records.forEach((r, j) => {
      const eid = r.eid.kind === "iid" ? r.eid.address : r.eid;
      assert.equal(v.iid[j], r.eid.kind === "iid" ? r.eid.iid : 0);
      assert.equal(v.maskLen[j], r.maskLen);
      assert.equal(v.ttl[j], r.ttl);
      const n = v.family[j] === 4 ? 4 : 16;
      assert.deepEqual(buf.subarray(v.address[j]!, v.address[j]! + n), addrBytes(eid));
    });
    // Signed again after the mutation, so every accepted one is compared.
    const pkey = keys.find((k) => k.keyId === p.keyId);
    if (pkey === undefined || p.authData.length !== pkey.digestLength) continue;
    signAuthenticatedAt(buf, 9, 9 + bytes.length, pkey);
    assert.equal(authStatusAt(buf, 9, 9 + bytes.length, pkey), "ok");
    notified++;
    const out = new Uint8Array(bytes.length + 8).fill(0xa5);
    const n = writeMapNotifyFrom(buf, 9, 9 + bytes.length, out, 3);
    signAuthenticatedAt(out, 3, 3 + n, pkey);
    const want = emitSignedMapNotify({
      ack: false,
      xtrIdPresent: p.xtrIdPresent,
      rtrAuthPresent: false,
      nonce: p.nonce,
      keyId: p.keyId,
      authData: new Uint8Array(0),
      records: p.records,
      ...(p.xtrIdPresent ? { xtrId: p.xtrId!, siteId: p.siteId! } : {}),
    }, pkey);
    assert.deepEqual(out.subarray(3, 3 + n), want, `case ${i}: the Map-Notify`);
  }
  assert.ok(accepted > 3000 && notified > 3000, `${accepted} accepted, ${notified} compared`);
});

Deno.test("authStatusAt() reads a message in place as authStatus() does", () => {
  const key = new HmacKey(2, "k");
  const m = emitMapRegister({
    ...commonRegister(new Rng(3)),
    keyId: 2,
    authData: new Uint8Array(32),
  });
  signAuthenticatedAt(m, 0, m.length, key);
  const buf = new Uint8Array(m.length + 10);
  buf.set(m, 5);
  assert.equal(authStatusAt(buf, 5, 5 + m.length, key), "ok");
  buf[5 + m.length - 1]! ^= 1;
  assert.equal(authStatusAt(buf, 5, 5 + m.length, key), "mismatch");
  assert.equal(authStatusAt(buf, 5, 5 + m.length, new HmacKey(1, "k")), "bad-key-id");
  assert.equal(authStatusAt(buf, 5, 5 + 10, key), "truncated");
});

Deno.test("writeMapReplyHeader() and writeNegativeRecord() write what emitMapReply() does", () => {
  for (let i = 0; i < 3000; i++) {
    const rng = new Rng(deriveSeed(SEED, "reply", i));
    const ip = randomIp(rng);
    const family = ip.kind === "ipv4" ? 4 : 6;
    const bytes = addrBytes(ip)!;
    const len = rng.int(family === 4 ? 33 : 129);
    const iid = rng.bool() ? 0 : rng.u32();
    const ttl = rng.pick([1, 15, rng.u32()]);
    const action = rng.pick([ACTION.NATIVELY_FORWARD, ACTION.SEND_MAP_REQUEST, rng.int(8)]);
    const authoritative = rng.bool();
    const nonce = rng.bigint64();
    const src = new Uint8Array(8);
    new DataView(src.buffer).setBigUint64(0, nonce, false);
    const out = new Uint8Array(100).fill(0xa5);
    let n = writeMapReplyHeader(out, 2, src, 0);
    n += writeNegativeRecord(out, 2 + n, ttl, action, authoritative, iid, family, bytes, 0, len);
    const masked = bytes.slice();
    for (let k = 0; k < masked.length; k++) {
      const keep = len - k * 8;
      if (keep < 8) masked[k] = keep <= 0 ? 0 : masked[k]! & (0xff << (8 - keep));
    }
    const text = ipAddress(family === 4 ? [...masked].join(".") : ip.ip);
    const eidIp: Address = family === 4 ? text : { kind: "ipv6", ip: ipv6Text(masked) };
    const want = emitMapReply({
      probe: false,
      echoNonce: false,
      security: false,
      nonce,
      records: [{
        ttl,
        maskLen: len,
        action,
        authoritative,
        incomplete: false,
        sigCount: 0,
        mapVersion: 0,
        eid: iid === 0 ? eidIp : { kind: "iid", iid, iidMaskLen: 32, address: eidIp },
        locators: [],
      }],
    });
    assert.deepEqual(out.subarray(2, 2 + n), want, `case ${i}`);
  }
});

function ipv6Text(b: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return ipAddress(parts.join(":")).ip;
}

Deno.test("scanMapRequest() reads a Map-Request that emitControlMessage() wrote in an ECM over IPv6", () => {
  const m: MapRequest = {
    ...commonRequest(new Rng(11)),
    probe: false,
    smr: false,
    itrRlocs: [ipAddress("2001:db8::1"), ipAddress("192.0.2.1")],
  };
  const bytes = emitControlMessage({
    type: "ecm",
    msg: {
      security: false,
      ddtOriginated: true,
      forRtr: false,
      rtrRelayed: false,
      inner: { src: "2001:db8::1", dst: "2001:db8::2", srcPort: 61000, dstPort: 4342, ttl: 9 },
      payload: emitMapRequest(m),
    },
  });
  const v = new MapRequestView();
  assert.ok(scanMapRequest(bytes, 0, bytes.length, v, 1));
  assert.deepEqual([v.ecm, v.ddt, v.innerSrcPort, v.innerTtl, v.itrFamily], [
    true,
    true,
    61000,
    9,
    4,
  ]);
  assert.ok(scanMapRequest(bytes, 0, bytes.length, v, 2));
  assert.equal(v.itrFamily, 6);
});

Deno.test("nonceKey() is an exact number per nonce with the same high half, and below 2^53", () => {
  const seen = new Set<number>();
  for (const lo of [0, 1, 0x1fffff, 0x200000, 0x7fffffff, 0x80000000, 0xffffffff]) {
    const k = nonceKey(0x12345678, lo);
    assert.ok(Number.isSafeInteger(k) && k >= 0, `${k}`);
    assert.ok(!seen.has(k), `lo ${lo}`);
    seen.add(k);
  }
  assert.equal(nonceKey(0xffffffff, 0xffffffff), nonceKey(0xffffffff, 0xffffffff));
});
