import assert from "node:assert/strict";
import { addressToString, ipAddress } from "../../wire/address.ts";
import { HmacKey } from "../../wire/auth.ts";
import { emitEcm } from "../../wire/ecm.ts";
import { parseEidRecord } from "../../wire/eid_record.ts";
import { locatorRecord } from "../../wire/locator.ts";
import { emitSignedMapNotify } from "../../wire/map_notify.ts";
import { emitSignedMapRegister, parseMapRegister } from "../../wire/map_register.ts";
import { emitMapRequest } from "../../wire/map_request.ts";
import { parseMapReply } from "../../wire/map_reply.ts";
import { parseConfig } from "../../config/mod.ts";
import type { ControlPlane, Peer, Received } from "../../core/control.ts";
import { Counters } from "../../core/counters.ts";
import { Logger } from "../../core/log.ts";
import { METRICS } from "../../core/metrics.ts";
import { parsePrefix, prefixEid } from "../../core/prefix.ts";
import { UdpSocket } from "../../ffi/udp.ts";
import { msStarter } from "../ms.ts";
import { AnswerTable, FOUND_MAIN, FOUND_PROXY } from "./answers.ts";
import { AnswerPublisher } from "./publisher.ts";
import { Registrar, REGISTRATION_TIMEOUT_MS } from "./registrar.ts";
import { RegistrationStore } from "./registrations.ts";
import { decodeRegistrations, SAVE_SLICE, SavedRegistrations } from "./saved.ts";
import { keyFromBytes } from "./shared_trie.ts";
import { Sites } from "./sites.ts";

// A refresh that changes nothing takes a cheap path (Registrar.refreshVerified,
// RegistrationStore.refresh); anything else is applied as a change.

const KEY = new HmacKey(2, "refresh-key");

function config(extra: string[] = []) {
  const r = parseConfig(
    [
      'operating-mode = "MS"',
      'control-address = "127.0.0.1"',
      "control-port = 0",
      "control-rate-limit = 0",
      "[[lisp-site]]",
      'eid-prefix = "10.0.0.0/8"',
      "key-type = 2",
      'key = "refresh-key"',
      "accept-more-specifics = true",
      ...extra,
    ].join("\n"),
    { role: "ms" },
  );
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  return r.config;
}

interface Reg {
  readonly prefix?: string;
  readonly nonce: bigint;
  readonly xtrId?: bigint;
  readonly rlocs?: readonly string[];
  readonly priority?: number;
  readonly proxy?: boolean;
}

/** A signed Map-Register (P and M bits, an xTR-ID) of one record. */
function mapRegister(o: Reg): Uint8Array {
  const p = parsePrefix(o.prefix ?? "10.1.2.0/24")!;
  return emitSignedMapRegister({
    proxyReply: o.proxy ?? true,
    securityCapable: false,
    xtrIdPresent: true,
    rtr: false,
    eidNotify: false,
    useTtlForTimeout: false,
    mergeRequest: false,
    mobileNode: false,
    wantMapNotify: true,
    nonce: o.nonce,
    keyId: 2,
    authData: new Uint8Array(0),
    records: [{
      ttl: 10,
      maskLen: p.len,
      action: 0,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: prefixEid(p),
      locators: (o.rlocs ?? ["192.0.2.1"]).map((a) => locatorRecord(ipAddress(a), o.priority ?? 1)),
    }],
    xtrId: o.xtrId ?? 7n,
    siteId: 1n,
  }, KEY);
}

/** The registrar's parts on a clock of the test's, as roles/ms.ts assembles them with Workers. */
function parts(extra: string[] = []) {
  const clock = { t: Date.UTC(2026, 0, 1) };
  const now = () => clock.t;
  const counters = new Counters();
  const lines: string[] = [];
  const deps = {
    logger: new Logger({ role: "ms", now, sink: { write: (l: string) => lines.push(l) } }),
    counters,
    now,
  };
  const handlers = new Map<string, (m: unknown, r: Received) => void>();
  const sent: Uint8Array[] = [];
  const cp = {
    on: (type: string, h: (m: unknown, r: Received) => void) => handlers.set(type, h),
    send: (b: Uint8Array) => void sent.push(b),
  } as unknown as ControlPlane;
  const sites = new Sites(config(extra));
  const store = new RegistrationStore();
  const answers = new AnswerTable();
  new AnswerPublisher(answers, store, sites, now);
  const registrar = new Registrar(deps, cp, sites, store);
  let notified = 0;
  const notify = () => void notified++;
  /** As roles/ms.ts's #registerVerified: the cheap path, else parsed and applied. */
  const apply = (bytes: Uint8Array, from: Peer): "refresh" | "change" => {
    if (registrar.refreshVerified(bytes, from, notify)) return "refresh";
    const m = parseMapRegister(bytes);
    const r = { message: { type: "map-register", msg: m }, bytes, from, via: "control" };
    registrar.registerVerified(r as Received, m, notify);
    return "change";
  };
  /** What a Worker answers for `eid` at `at`: the kind found, and the record's locators. */
  const read = (eid: string, at: number) => {
    const out = new Uint8Array(1024);
    const a = ipAddress(eid);
    const bytes = new Uint8Array(a.ip.split(".").map(Number));
    keyFromBytes(answers.trie.key, 4, bytes, 0);
    const found = answers.read(0, 4, at, out, 0, out.length);
    const locators = found === FOUND_PROXY
      ? parseEidRecord(out.slice(0, answers.recordLength)).locators
      : [];
    return { found, locators };
  };
  return {
    clock,
    counters,
    lines,
    store,
    sites,
    registrar,
    apply,
    read,
    sent,
    handlers,
    deps,
    notified: () => notified,
  };
}

const FROM: Peer = { address: "192.0.2.1", port: 4342 };

Deno.test("Registrar.refreshVerified(): a refresh that changes nothing moves the times only, keeps the answer valid past the old expiry, and lets its Map-Notify go", () => {
  const t = parts();
  const t0 = t.clock.t;
  assert.equal(t.apply(mapRegister({ nonce: 1n }), FROM), "change");
  const version = t.store.version;
  const first = [...t.store.all()][0]!;
  assert.equal(first.expiresAt, t0 + REGISTRATION_TIMEOUT_MS);

  t.clock.t = t0 + 60_000;
  // Another nonce (so other authentication data): the same registration.
  assert.equal(t.apply(mapRegister({ nonce: 2n }), FROM), "refresh");
  const regs = [...t.store.all()];
  assert.equal(regs.length, 1);
  assert.equal(regs[0], first, "the same registration, its times moved in place");
  assert.equal(regs[0]!.lastSeen, t0 + 60_000);
  assert.equal(regs[0]!.firstSeen, t0);
  assert.equal(regs[0]!.expiresAt, t0 + 60_000 + REGISTRATION_TIMEOUT_MS);
  assert.equal(t.store.version, version, "no change of the answer: nothing republished");
  assert.equal(t.store.refreshes, 1);
  assert.equal(t.notified(), 2, "both Map-Notifies let go");
  assert.equal(t.counters.get(METRICS.msRegistersAccepted), 2);
  assert.equal(t.counters.get(METRICS.msMapNotifiesSent), 2);

  // Past the first expiry the Workers still answer (the answer's expiry moved too).
  const late = t0 + REGISTRATION_TIMEOUT_MS + 1;
  const seen = t.read("10.1.2.9", late);
  assert.equal(seen.found, FOUND_PROXY);
  assert.equal(seen.locators.length, 1);
  assert.equal(t.read("10.1.2.9", t0 + 60_000 + REGISTRATION_TIMEOUT_MS).found, FOUND_MAIN);

  // Its Map-Notify-Ack is matched to it.
  const ack = emitSignedMapNotify({
    ack: true,
    xtrIdPresent: false,
    rtrAuthPresent: false,
    nonce: 2n,
    keyId: 2,
    authData: new Uint8Array(0),
    records: parseMapRegister(mapRegister({ nonce: 2n })).records,
  }, KEY);
  t.handlers.get("map-notify-ack")!(
    { ack: true, nonce: 2n, records: [] },
    { bytes: ack, from: FROM } as unknown as Received,
  );
  assert.equal(t.counters.get(METRICS.msMapNotifyAcks, { result: "matched" }), 1);
});

Deno.test("Registrar.refreshVerified(): a refresh that changes an RLOC, a priority or the P bit is applied as a change, visible at once", () => {
  const t = parts();
  t.apply(mapRegister({ nonce: 1n }), FROM);
  assert.equal(t.apply(mapRegister({ nonce: 2n }), FROM), "refresh");
  const version = t.store.version;

  assert.equal(
    t.apply(mapRegister({ nonce: 3n, rlocs: ["192.0.2.1", "198.51.100.7"] }), FROM),
    "change",
  );
  assert.ok(t.store.version > version);
  let seen = t.read("10.1.2.9", t.clock.t);
  assert.deepEqual(seen.locators.map((l) => addressToString(l.address)), [
    "192.0.2.1",
    "198.51.100.7",
  ]);
  // The new content is what refreshes are compared with from now on.
  assert.equal(
    t.apply(mapRegister({ nonce: 4n, rlocs: ["192.0.2.1", "198.51.100.7"] }), FROM),
    "refresh",
  );

  assert.equal(t.apply(mapRegister({ nonce: 5n, priority: 9 }), FROM), "change");
  seen = t.read("10.1.2.9", t.clock.t);
  assert.equal(seen.locators.length, 1);
  assert.equal(seen.locators[0]!.priority, 9);

  assert.equal(t.apply(mapRegister({ nonce: 6n, priority: 9, proxy: false }), FROM), "change");
  assert.equal(t.read("10.1.2.9", t.clock.t).found, FOUND_MAIN, "no proxy reply any more");
});

Deno.test("Registrar.refreshVerified(): not from another port, once expired, after a site edit, or beside another xTR's registration of the prefix", () => {
  const t = parts();
  t.apply(mapRegister({ nonce: 1n }), FROM);
  assert.equal(t.apply(mapRegister({ nonce: 2n }), { ...FROM, port: 4343 }), "change");
  assert.equal(t.apply(mapRegister({ nonce: 3n }), { ...FROM, port: 4343 }), "refresh");

  // Expired: registered again (logged as such), not refreshed.
  t.clock.t += REGISTRATION_TIMEOUT_MS;
  t.lines.length = 0;
  assert.equal(t.apply(mapRegister({ nonce: 4n }), { ...FROM, port: 4343 }), "change");
  assert.ok(t.lines.some((l) => l.includes(" ms registered ")), t.lines.join("\n"));

  // A site added or removed at run time: judged again.
  t.sites.add({
    ...config().lispSites[0]!,
    eidPrefix: { family: 4, address: "10.9.0.0", length: 16 },
  });
  assert.equal(t.apply(mapRegister({ nonce: 5n }), { ...FROM, port: 4343 }), "change");
  assert.equal(t.apply(mapRegister({ nonce: 6n }), { ...FROM, port: 4343 }), "refresh");

  // Another xTR holds the prefix too: the answer merges both, most recent first.
  const other = { address: "192.0.2.2", port: 4342 };
  t.apply(mapRegister({ nonce: 7n, xtrId: 8n, rlocs: ["192.0.2.2"] }), other);
  t.clock.t += 1000;
  assert.equal(t.apply(mapRegister({ nonce: 8n }), { ...FROM, port: 4343 }), "change");
  const seen = t.read("10.1.2.9", t.clock.t);
  assert.equal(seen.locators.length, 2);
  assert.equal(addressToString(seen.locators[0]!.address), "192.0.2.1");
});

Deno.test("SavedRegistrations writes a refresh's new expiry, and a restart takes it back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/ms.state.registrations.json`;
    const t = parts();
    const saved = new SavedRegistrations(path, t.store, t.deps);
    t.apply(mapRegister({ nonce: 1n }), FROM);
    saved.save();
    const t0 = t.clock.t;
    t.clock.t += 90_000;
    assert.equal(t.apply(mapRegister({ nonce: 2n }), FROM), "refresh");
    saved.saveSoon();
    await saved.close();
    const back = decodeRegistrations(await Deno.readTextFile(path));
    assert.equal(back.length, 1);
    assert.equal(back[0]!.expiresAt, t0 + 90_000 + REGISTRATION_TIMEOUT_MS);
    assert.equal(back[0]!.lastSeen, t0 + 90_000);
    assert.equal(back[0]!.firstSeen, t0);
    assert.equal(back[0]!.locators.length, 1);

    // A restart after the first expiry keeps it.
    const u = parts();
    u.clock.t = t0 + REGISTRATION_TIMEOUT_MS + 1;
    new SavedRegistrations(path, u.store, u.deps).load(u.sites);
    assert.equal(u.store.dynamicCount, 1);
    assert.equal(u.read("10.1.2.9", u.clock.t).found, FOUND_PROXY);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SavedRegistrations.saveSoon() writes in slices: one removed meanwhile is left out, one added waits for the next write", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/ms.state.registrations.json`;
    const t = parts(["max-registrations = 10000"]);
    const saved = new SavedRegistrations(path, t.store, t.deps);
    const n = SAVE_SLICE * 2 + 100;
    const prefix = (i: number) => `10.${1 + (i >> 8)}.${i & 255}.0/24`;
    for (let i = 0; i < n; i++) {
      t.apply(mapRegister({ prefix: prefix(i), nonce: BigInt(i + 1), xtrId: BigInt(i + 1) }), FROM);
    }
    saved.saveSoon();
    // The first slice is encoded; the rest wait for the event loop.
    const last = [...t.store.all()].find((r) => r.xtrId === BigInt(n))!;
    assert.ok(t.store.remove(last.prefix, last.key));
    t.apply(mapRegister({ prefix: "10.200.0.0/24", nonce: 99_999n, xtrId: 99_999n }), FROM);
    const end = Date.now() + 5000;
    while (!(await Deno.stat(path).then(() => true, () => false))) {
      if (Date.now() > end) throw new Error("not written");
      await new Promise((r) => setTimeout(r, 5));
    }
    const first = decodeRegistrations(await Deno.readTextFile(path));
    assert.equal(first.length, n - 1);
    assert.ok(!first.some((r) => r.xtrId === BigInt(n)), "removed meanwhile: left out");
    assert.ok(!first.some((r) => r.xtrId === 99_999n), "added meanwhile: next time");
    await saved.close();
    const next = decodeRegistrations(await Deno.readTextFile(path));
    assert.equal(next.length, n);
    assert.ok(next.some((r) => r.xtrId === 99_999n));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RegistrationStore.sweep() skips its walk while nothing can have expired, and misses nothing refreshed or put since", () => {
  const t = parts(["max-registrations = 100"]);
  const t0 = t.clock.t;
  t.apply(mapRegister({ prefix: "10.1.1.0/24", nonce: 1n, xtrId: 1n }), FROM);
  t.apply(mapRegister({ prefix: "10.1.2.0/24", nonce: 2n, xtrId: 2n }), FROM);
  assert.deepEqual(t.store.sweep(t0 + 1000), []);
  // 10.1.1.0/24 refreshed: it outlives the other.
  t.clock.t = t0 + 60_000;
  assert.equal(
    t.apply(mapRegister({ prefix: "10.1.1.0/24", nonce: 3n, xtrId: 1n }), FROM),
    "refresh",
  );
  const gone = t.store.sweep(t0 + REGISTRATION_TIMEOUT_MS);
  assert.deepEqual(gone.map((r) => r.xtrId), [2n]);
  // A registration put after that sweep, expiring before the bound it computed, is swept in time.
  t.clock.t = t0 + REGISTRATION_TIMEOUT_MS;
  t.store.put({ ...gone[0]!, expiresAt: t.clock.t + 1000, lastSeen: t.clock.t });
  assert.deepEqual(t.store.sweep(t.clock.t + 1000).map((r) => r.xtrId), [2n]);
  assert.deepEqual(t.store.sweep(t0 + 60_000 + REGISTRATION_TIMEOUT_MS).map((r) => r.xtrId), [1n]);
  assert.equal(t.store.dynamicCount, 0);
});

// ---------------------------------------------------------------------------
// Through the answering Workers

function request(eid: string, nonce: bigint, port: number): Uint8Array {
  return emitEcm({
    security: false,
    ddtOriginated: false,
    forRtr: false,
    rtrRelayed: false,
    inner: { src: "127.0.0.1", dst: eid, srcPort: port, dstPort: 4342, ttl: 64 },
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
      itrRlocs: [ipAddress("127.0.0.1")],
      records: [{ maskLen: 32, eid: ipAddress(eid) }],
    }),
  });
}

async function next(s: UdpSocket, buf: Uint8Array): Promise<Uint8Array> {
  const end = Date.now() + 3000;
  for (;;) {
    const n = s.recvFrom(buf);
    if (n > 0) return buf.slice(0, n);
    if (Date.now() > end) throw new Error("no answer");
    await new Promise((r) => setTimeout(r, 1));
  }
}

Deno.test("ms on 2 Workers: refreshes that change nothing are answered as before; a changed RLOC is seen by both Workers once its Map-Notify arrives", async () => {
  const counters = new Counters();
  const logger = new Logger({ role: "ms", sink: { write: () => {} } });
  const ms = await msStarter({ workers: 2 })(config(), { logger, counters, now: Date.now });
  const s = UdpSocket.open({ address: "127.0.0.1" });
  const port = s.localAddress().port;
  const buf = new Uint8Array(65536);
  const send = (b: Uint8Array) => s.sendTo(b, 0, b.length, "127.0.0.1", ms.port);
  let nonce = 1n;
  const rlocsSeen = async () => {
    const out: string[] = [];
    // An even and an odd nonce: one request to each Worker (worker_pool.ts nonceSpreadFilter()).
    for (let k = 0; k < 2; k++) {
      send(request("10.1.2.9", 0x7000n + 2n * nonce + BigInt(k), port));
      const reply = parseMapReply(await next(s, buf));
      out.push(
        reply.records[0]!.locators.map((l) => `${addressToString(l.address)}/${l.priority}`)
          .join(","),
      );
    }
    return out;
  };
  try {
    const registerAndWait = async (o: Omit<Reg, "nonce">) => {
      send(mapRegister({ ...o, nonce: nonce++, xtrId: 7n }));
      const notify = await next(s, buf);
      assert.equal(notify[0]! >>> 4, 4, "a Map-Notify");
    };
    await registerAndWait({ rlocs: ["192.0.2.1"] });
    for (let i = 0; i < 20; i++) {
      await registerAndWait({ rlocs: ["192.0.2.1"] });
      assert.deepEqual(await rlocsSeen(), ["192.0.2.1/1", "192.0.2.1/1"]);
    }
    await registerAndWait({ rlocs: ["192.0.2.5"] });
    assert.deepEqual(await rlocsSeen(), ["192.0.2.5/1", "192.0.2.5/1"]);
    await registerAndWait({ rlocs: ["192.0.2.5"], priority: 3 });
    assert.deepEqual(await rlocsSeen(), ["192.0.2.5/3", "192.0.2.5/3"]);
    assert.equal(counters.get(METRICS.msRegistersAccepted), 23);
    const regs = ms.registrations();
    assert.equal(regs.length, 1);
    assert.deepEqual(regs[0]!.rlocs.map((r) => `${r.address}/${r.priority}`), ["192.0.2.5/3"]);
  } finally {
    s.close();
    await ms.close();
  }
});
