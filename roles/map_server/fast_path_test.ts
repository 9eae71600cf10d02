import assert from "node:assert/strict";
import { type Address, ipAddress } from "../../wire/address.ts";
import { HmacKey } from "../../wire/auth.ts";
import { emitEcm } from "../../wire/ecm.ts";
import type { EidRecord } from "../../wire/eid_record.ts";
import { ipv4ToBytes, ipv6ToBytes } from "../../wire/ip_text.ts";
import { locatorRecord } from "../../wire/locator.ts";
import { emitSignedMapRegister, type MapRegister } from "../../wire/map_register.ts";
import { emitMapRequest, type MapRequest } from "../../wire/map_request.ts";
import { parseConfig } from "../../config/mod.ts";
import { ControlPlane, type ControlTransportFactory, type Peer } from "../../core/control.ts";
import { Counters } from "../../core/counters.ts";
import { ForwardGuard, OwnAddresses } from "../../core/forward_guard.ts";
import { Logger } from "../../core/log.ts";
import { parsePrefix, prefixEid, prefixFromConfig } from "../../core/prefix.ts";
import { RateLimiter } from "../../core/rate_limit.ts";
import { deriveSeed, Rng } from "../../tests/wire_gen.ts";
import { AnswerTable } from "./answers.ts";
import { Answerer } from "./answerer.ts";
import {
  FAST_ANSWERED,
  FAST_ANSWERED_DDT,
  FAST_MAIN,
  FAST_MAIN_ADMITTED,
  FAST_RATE_LIMITED,
  FAST_REGISTER,
  FastPath,
  SiteIndex,
} from "./fast_path.ts";
import { AnswerPublisher } from "./publisher.ts";
import { Registrar } from "./registrar.ts";
import { RegistrationStore, STATIC_KEY } from "./registrations.ts";
import { Sites, staticLocators } from "./sites.ts";

const CONFIG = `
operating-mode = "MS"
control-address = "127.0.0.1"
control-rate-limit = 0

[[lisp-site]]
eid-prefix = "10.0.0.0/8"
key-type = 2
key = "k10"
accept-more-specifics = true
max-registrations = 100000

[[lisp-site]]
eid-prefix = "10.9.0.0/16"
key-type = 1
key = "k109"
proxy-reply = true

[[lisp-site]]
eid-prefix = "172.16.0.0/12"
iid = 7
key-type = 1
key = "k172"
accept-more-specifics = true
proxy-reply = true
max-registrations = 100000

[[lisp-site]]
eid-prefix = "2001:db8::/32"
key-type = 2
key = "k6"
accept-more-specifics = true
max-registrations = 100000

[[ms-static-registered-site]]
eid-prefix = "192.168.0.0/16"
rloc-address = [ { address = "192.0.2.99", priority = 1, weight = 50 } ]
`;

const KEYS: Record<string, HmacKey> = {
  "10.0.0.0/8": new HmacKey(2, "k10"),
  "10.9.0.0/16": new HmacKey(1, "k109"),
  "[7]172.16.0.0/12": new HmacKey(1, "k172"),
  "2001:db8::/32": new HmacKey(2, "k6"),
};

interface Sent {
  readonly bytes: Uint8Array;
  readonly to: Peer;
}

/** The main thread's parts (as ms.ts assembles them) on a transport that keeps what is sent. */
async function mainThread(clock: { t: number }) {
  const r = parseConfig(CONFIG, { role: "ms" });
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  const config = r.config;
  const sent: Sent[] = [];
  const transport: ControlTransportFactory = (address, port) =>
    Promise.resolve({
      address,
      port: port || 4342,
      send: (bytes, to) => {
        sent.push({ bytes: bytes.slice(), to });
        return true;
      },
      rebind: () => Promise.resolve(),
      close: () => Promise.resolve(),
    });
  const now = () => clock.t;
  const counters = new Counters();
  const logger = new Logger({ role: "ms", level: "error", now, sink: { write: () => {} } });
  const cp = await ControlPlane.open({
    logger,
    counters,
    address: "127.0.0.1",
    port: 4342,
    now,
    transport,
  });
  const sites = new Sites(config);
  const store = new RegistrationStore();
  for (const s of config.msStaticRegisteredSites) {
    store.put({
      prefix: prefixFromConfig(s.eidPrefix, s.iid),
      key: STATIC_KEY,
      static: true,
      locators: staticLocators(s, config),
      ttl: s.ttl,
      action: 0,
      mapVersion: 0,
      proxyReply: true,
      firstSeen: 0,
      lastSeen: 0,
      expiresAt: Infinity,
    });
  }
  const deps = { logger, counters, now };
  const registrar = new Registrar(deps, cp, sites, store);
  const own = new OwnAddresses({ socket: cp, host: { addresses: () => [] }, now });
  const guard = new ForwardGuard(own, { now });
  new Answerer({ deps, cp, sites, store, expired: () => {}, guard });
  const table = new AnswerTable();
  new AnswerPublisher(table, store, sites, now);
  return { cp, sent, sites, store, table, registrar, counters };
}

function bytesOf(a: Address): Uint8Array {
  const b = new Uint8Array(a.kind === "ipv4" ? 4 : 16);
  if (a.kind === "ipv4") ipv4ToBytes(a.ip, b, 0);
  else if (a.kind === "ipv6") ipv6ToBytes(a.ip, b, 0);
  return b;
}

/** Somewhere near the configured and registered space. */
function eid(rng: Rng): Address {
  switch (rng.int(6)) {
    case 0:
      return ipAddress(`10.${rng.int(12)}.${rng.int(4)}.${rng.int(256)}`);
    case 1:
      return ipAddress(`10.9.${rng.int(4)}.${rng.int(256)}`);
    case 2:
      return {
        kind: "iid",
        iid: 7,
        iidMaskLen: 32,
        address: ipAddress(`172.${16 + rng.int(20)}.${rng.int(4)}.1`),
      };
    case 3:
      return ipAddress(`2001:db8:${rng.int(6).toString(16)}::${rng.int(65536).toString(16)}`);
    case 4:
      return ipAddress(`192.168.${rng.int(3)}.${rng.int(256)}`);
    default:
      return rng.bool()
        ? ipAddress(`${rng.int(256)}.${rng.int(256)}.1.1`)
        : ipAddress(`2001:${rng.int(65536).toString(16)}::1`);
  }
}

/** A registration for a random prefix of a site, signed with its key (or a wrong one). */
function register(rng: Rng, nonce: bigint): { bytes: Uint8Array; text: string } {
  const choices: [string, number, number][] = [
    ["10.0.0.0/8", 12, 24],
    ["10.9.0.0/16", 16, 16],
    ["[7]172.16.0.0/12", 14, 24],
    ["2001:db8::/32", 40, 56],
  ];
  const [site, lo, hi] = choices[rng.int(choices.length)]!;
  const len = lo + rng.int(hi - lo + 1);
  const iid = site.startsWith("[7]") ? 7 : 0;
  const addr = site.startsWith("10.0")
    ? `10.${rng.int(12)}.${rng.int(4)}.0`
    : site.startsWith("10.9")
    ? `10.9.${rng.int(2)}.0`
    : site.startsWith("[7]")
    ? `172.${16 + rng.int(20)}.${rng.int(4)}.0`
    : `2001:db8:${rng.int(6).toString(16)}::`;
  const text = `${addr}/${len}`;
  const p = parsePrefix(text, iid);
  const rec: EidRecord = {
    ttl: rng.bool(0.1) ? 0 : 10,
    maskLen: len,
    action: 0,
    authoritative: true,
    incomplete: false,
    sigCount: 0,
    mapVersion: rng.int(4),
    eid: p !== undefined ? prefixEid(p) : ipAddress("10.0.0.1"),
    locators: Array.from(
      { length: 1 + rng.int(2) },
      () =>
        locatorRecord(ipAddress(`192.0.2.${1 + rng.int(20)}`), 1 + rng.int(2), 50, {
          local: rng.bool(),
        }),
    ),
  };
  const key = KEYS[site]!;
  const m: MapRegister = {
    proxyReply: rng.bool(),
    securityCapable: false,
    xtrIdPresent: true,
    rtr: false,
    eidNotify: false,
    useTtlForTimeout: false,
    mergeRequest: false,
    mobileNode: false,
    wantMapNotify: rng.bool(0.8),
    nonce,
    keyId: key.keyId,
    authData: new Uint8Array(0),
    records: [rec],
    xtrId: BigInt(1 + rng.int(3)),
    siteId: 1n,
  };
  const signWith = rng.bool(0.1) ? new HmacKey(key.keyId, "wrong") : key;
  return { bytes: emitSignedMapRegister(m, signWith), text: `${site} ${text}` };
}

function request(rng: Rng, nonce: bigint): Uint8Array {
  const e = eid(rng);
  const ip = e.kind === "iid" ? e.address : e;
  const m: MapRequest = {
    authoritative: false,
    probe: false,
    smr: false,
    pitr: false,
    smrInvoked: false,
    localXtr: false,
    dontMapReply: false,
    nonce,
    sourceEid: { kind: "none" },
    itrRlocs: [ipAddress(rng.bool(0.8) ? "127.0.0.9" : "::1")],
    records: [{ maskLen: ip.kind === "ipv4" ? 32 : 128, eid: e }],
  };
  const inner = emitMapRequest(m);
  if (rng.bool(0.2)) return inner;
  return emitEcm({
    security: false,
    ddtOriginated: rng.bool(0.1),
    forRtr: false,
    rtrRelayed: false,
    inner: {
      src: "127.0.0.9",
      dst: "10.1.1.1",
      srcPort: 40000 + rng.int(1000),
      dstPort: 4342,
      ttl: 64,
    },
    payload: inner,
  });
}

Deno.test("FastPath answers Map-Requests and verifies Map-Registers exactly as the main thread's answerer and registrar do", async () => {
  const clock = { t: 1_000_000 };
  const m = await mainThread(clock);
  const fast = new FastPath(new SiteIndex(m.sites), new AnswerTable(m.table.memory), undefined);
  const src = ipAddress("127.0.0.9");
  const src4 = 0x7f000009;
  const out = new Uint8Array(4096);
  const tally = { answered: 0, ddt: 0, main: 0, registers: 0, notifies: 0, rejected: 0 };
  for (let i = 0; i < 4000; i++) {
    const rng = new Rng(deriveSeed(0xfa57, i));
    if (i % 500 === 499) clock.t += 170_000; // registrations start to expire
    if (rng.bool(0.35)) {
      const { bytes, text } = register(rng, BigInt(i));
      const code = fast.handle(bytes, 0, bytes.length, src4, -1, clock.t, out, 0, out.length);
      const before = m.sent.length;
      const accepted = m.counters.get("oor_map_server_map_registers_accepted_total");
      m.cp.receive(bytes, { address: src.ip, port: 4342 });
      const took = m.counters.get("oor_map_server_map_registers_accepted_total") > accepted;
      if (code === FAST_REGISTER) {
        tally.registers++;
        assert.ok(took, `case ${i}: verified ${text}, the registrar refused it`);
        if (fast.outLength > 0) {
          tally.notifies++;
          assert.equal(m.sent.length, before + 1);
          assert.deepEqual(
            out.subarray(0, fast.outLength),
            m.sent[before]!.bytes,
            `case ${i}: Map-Notify`,
          );
        } else assert.equal(m.sent.length, before);
      } else {
        assert.equal(code, FAST_MAIN_ADMITTED, `case ${i}: ${text}`);
        if (!took) tally.rejected++;
      }
      continue;
    }
    const bytes = request(rng, BigInt(i));
    const code = fast.handle(bytes, 0, bytes.length, src4, -1, clock.t, out, 0, out.length);
    const before = m.sent.length;
    m.cp.receive(bytes, { address: src.ip, port: 5555 });
    if (code !== FAST_ANSWERED && code !== FAST_ANSWERED_DDT) {
      assert.ok(code === FAST_MAIN_ADMITTED || code === FAST_MAIN, `case ${i}: code ${code}`);
      tally.main++;
      continue;
    }
    tally.answered++;
    let first = before;
    if (code === FAST_ANSWERED_DDT) {
      // A DDT map-resolver's request: the MS-ACK to the source, then the ITR's answer.
      tally.ddt++;
      assert.equal(m.sent.length, before + 2, `case ${i}: the answerer sent two messages`);
      const ack = m.sent[first++]!;
      const at = fast.referralAt;
      assert.deepEqual(out.subarray(at, at + fast.referralLength), ack.bytes, `case ${i}: MS-ACK`);
      assert.deepEqual([ack.to.address, ack.to.port], [src.ip, 5555]);
    } else assert.equal(m.sent.length, before + 1, `case ${i}: the answerer sent one message`);
    const want = m.sent[first]!;
    assert.deepEqual(out.subarray(0, fast.outLength), want.bytes, `case ${i}: the Map-Reply`);
    if (fast.toAddress >= 0) {
      assert.deepEqual(
        bytes.subarray(fast.toAddress, fast.toAddress + (fast.toFamily === 4 ? 4 : 16)),
        bytesOf(ipAddress(want.to.address)),
      );
      assert.equal(fast.toPort, want.to.port);
    } else assert.deepEqual([want.to.address, want.to.port], [src.ip, 5555]);
  }
  assert.ok(
    tally.answered > 1500 && tally.ddt > 10 && tally.registers > 500 && tally.notifies > 300,
    JSON.stringify(tally),
  );
  assert.ok(tally.main > 10 && tally.rejected > 10, JSON.stringify(tally));
  await m.cp.close();
});

Deno.test("FastPath takes the shared rate limit: what it refuses is counted and dropped", async () => {
  const clock = { t: 0 };
  const m = await mainThread(clock);
  const limiter = new RateLimiter(5);
  const fast = new FastPath(new SiteIndex(m.sites), m.table, limiter);
  const out = new Uint8Array(2048);
  const codes: number[] = [];
  for (let i = 0; i < 12; i++) {
    const b = request(new Rng(1000 + i), BigInt(i));
    codes.push(fast.handle(b, 0, b.length, 0x7f000009, -1, 0, out, 0, out.length));
  }
  assert.equal(codes.filter((c) => c === FAST_RATE_LIMITED).length, 2);
  assert.equal(fast.counts[7], 2);
  // Another source has its own bucket; the main thread shares them.
  const b = request(new Rng(3), 99n);
  assert.notEqual(
    fast.handle(b, 0, b.length, 0x7f00000a, -1, 0, out, 0, out.length),
    FAST_RATE_LIMITED,
  );
  assert.equal(limiter.allow("127.0.0.9", 0), false);
  await m.cp.close();
});

Deno.test("a table that refuses a change is disabled: the Workers then hand every Map-Request to the main thread", async () => {
  const clock = { t: 0 };
  const m = await mainThread(clock);
  class Full extends AnswerTable {
    override publish(...args: Parameters<AnswerTable["publish"]>): void {
      if (args[5] !== undefined) throw new RangeError("the answer heap is full");
      super.publish(...args);
    }
  }
  const table = new Full();
  const lines: string[] = [];
  const store = new RegistrationStore();
  const logger = new Logger({ role: "ms", sink: { write: (l) => lines.push(l) } });
  new AnswerPublisher(table, store, m.sites, () => clock.t, logger);
  const fast = new FastPath(new SiteIndex(m.sites), table, undefined);
  const out = new Uint8Array(2048);
  const b = emitMapRequest({
    authoritative: false,
    probe: false,
    smr: false,
    pitr: false,
    smrInvoked: false,
    localXtr: false,
    dontMapReply: false,
    nonce: 1n,
    sourceEid: { kind: "none" },
    itrRlocs: [ipAddress("127.0.0.9")],
    records: [{ maskLen: 32, eid: ipAddress("10.2.0.9") }],
  });
  const ask = () => fast.handle(b, 0, b.length, 0x7f000009, -1, 0, out, 0, out.length);
  assert.equal(ask(), FAST_ANSWERED, "answered while the table holds everything");
  store.put({
    prefix: parsePrefix("10.2.0.0/16")!,
    key: "x",
    static: false,
    locators: [locatorRecord(ipAddress("192.0.2.1"))],
    ttl: 10,
    action: 0,
    mapVersion: 0,
    proxyReply: true,
    firstSeen: 0,
    lastSeen: 0,
    expiresAt: 1e12,
  });
  assert.ok(table.trie.broken);
  assert.equal(ask(), FAST_MAIN_ADMITTED, "every request to the main thread");
  assert.equal(lines.filter((l) => l.includes("answer-table-full")).length, 1);
  await m.cp.close();
});
