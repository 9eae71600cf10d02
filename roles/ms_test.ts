import assert from "node:assert/strict";
import { type Address, addressToString, ipAddress, NO_ADDRESS } from "../wire/address.ts";
import { HmacKey, signAuthenticated, verifyAuthenticated } from "../wire/auth.ts";
import { emitEcm } from "../wire/ecm.ts";
import { emitInfo, type InfoReply } from "../wire/info.ts";
import { ACTION, type EidRecord, REFERRAL_ACTION } from "../wire/eid_record.ts";
import type { LocatorRecord } from "../wire/locator.ts";
import type { ControlMessage, ControlMessageType } from "../wire/message.ts";
import { emitSignedMapNotify } from "../wire/map_notify.ts";
import { emitSignedMapRegister, type MapRegister } from "../wire/map_register.ts";
import { emitMapRequest, type MapRequest } from "../wire/map_request.ts";
import { parseConfig } from "../config/mod.ts";
import { ControlPlane, type Peer, type Received } from "../core/control.ts";
import { DUPLICATE_WINDOW_MS } from "../core/forward_guard.ts";
import { Counters } from "../core/counters.ts";
import { Logger } from "../core/log.ts";
import { parsePrefix, prefixEid } from "../core/prefix.ts";
import { type MsHandle, startMs } from "./ms.ts";

// ---------------------------------------------------------------------------
// Harness: an ms and test peers (xTRs, ITRs, ETRs, a DDT Map-Resolver) made
// of raw ControlPlanes on loopback, sending hand-built messages.

const T0 = Date.UTC(2025, 0, 1);

/** A fake clock shared by the ms, its logger and its rate limiter. */
class Clock {
  t = T0;
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

interface Ms {
  readonly ms: MsHandle;
  readonly counters: Counters;
  readonly lines: string[];
  readonly peer: Peer;
  readonly clock: Clock;
}

function msToml(...lines: string[]): string {
  return [
    'operating-mode = "MS"',
    'control-address = "127.0.0.1"',
    "control-port = 0",
    "control-rate-limit = 0",
    ...lines,
  ].join("\n") + "\n";
}

interface SiteOptions {
  iid?: number;
  keyType?: 1 | 2;
  key?: string;
  more?: boolean;
  proxy?: boolean;
  peers?: string[];
  complete?: boolean;
  merge?: boolean;
}

function site(prefix: string, o: SiteOptions = {}): string {
  return [
    "[[lisp-site]]",
    `eid-prefix = "${prefix}"`,
    `iid = ${o.iid ?? 0}`,
    `key-type = ${o.keyType ?? 1}`,
    `key = "${o.key ?? "k1"}"`,
    `accept-more-specifics = ${o.more ?? false}`,
    `proxy-reply = ${o.proxy ?? false}`,
    ...(o.peers ? [`ddt-ms-peers = ${JSON.stringify(o.peers)}`] : []),
    ...(o.complete !== undefined ? [`ddt-ms-peers-complete = ${o.complete}`] : []),
    ...(o.merge !== undefined ? [`merge = ${o.merge}`] : []),
  ].join("\n");
}

async function startTestMs(text: string, clock = new Clock(), statePath?: string): Promise<Ms> {
  const r = parseConfig(text, { role: "ms" });
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  const lines: string[] = [];
  const counters = new Counters();
  const logger = new Logger({
    role: "ms",
    level: "debug",
    now: clock.now,
    sink: { write: (l) => lines.push(l) },
  });
  const ms = await startMs(r.config, {
    logger,
    counters,
    now: clock.now,
    ...(statePath !== undefined ? { statePath } : {}),
  });
  const address = r.config.controlAddress ?? "127.0.0.1";
  return { ms, counters, lines, peer: { address, port: ms.port }, clock };
}

/** Waits until `cond()` holds (polling), or fails after `ms`. */
async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

type Got<T extends ControlMessageType> = Received & {
  readonly message: Extract<ControlMessage, { type: T }>;
};

const TYPES: readonly ControlMessageType[] = [
  "map-request",
  "map-reply",
  "map-register",
  "map-notify",
  "map-notify-ack",
  "map-referral",
];

/** A test peer: a bare control socket that keeps what it receives. */
class Host {
  readonly cp: ControlPlane;
  readonly peer: Peer;
  readonly got: Received[] = [];

  private constructor(cp: ControlPlane, peer: Peer) {
    this.cp = cp;
    this.peer = peer;
    for (const t of TYPES) cp.on(t, (_m, r) => void this.got.push(r));
  }

  static async open(address = "127.0.0.1", port = 0): Promise<Host> {
    const cp = await ControlPlane.open({
      logger: new Logger({ role: "peer", sink: { write: () => {} } }),
      counters: new Counters(),
      address,
      port,
    });
    return new Host(cp, { address, port: cp.port });
  }

  /** The first received message of `type` not taken yet (waits for it). */
  async next<T extends ControlMessageType>(type: T): Promise<Got<T>> {
    await until(() => this.got.some((r) => r.message.type === type), `a ${type}`);
    const i = this.got.findIndex((r) => r.message.type === type);
    return this.got.splice(i, 1)[0] as Got<T>;
  }

  count(type: ControlMessageType): number {
    return this.got.filter((r) => r.message.type === type).length;
  }

  close(): void {
    this.cp.close();
  }
}

function locator(address: string, priority = 1, local = false): LocatorRecord {
  return {
    priority,
    weight: 100,
    mPriority: 255,
    mWeight: 0,
    local,
    probed: false,
    reachable: true,
    address: ipAddress(address),
  };
}

function record(prefix: string, rlocs: string[], o: { iid?: number; ttl?: number } = {}) {
  const p = parsePrefix(prefix, o.iid ?? 0);
  if (p === undefined) throw new Error(prefix);
  const rec: EidRecord = {
    ttl: o.ttl ?? 10,
    maskLen: p.len,
    action: ACTION.NO_ACTION,
    authoritative: true,
    incomplete: false,
    sigCount: 0,
    mapVersion: 0,
    eid: prefixEid(p),
    locators: rlocs.map((a) => locator(a, 1, true)),
  };
  return rec;
}

interface RegisterOptions {
  nonce?: bigint;
  keyId?: number;
  key?: string;
  notify?: boolean;
  proxy?: boolean;
  useTtl?: boolean;
  xtrId?: bigint;
  siteId?: bigint;
}

function registerMessage(records: EidRecord[], o: RegisterOptions = {}): MapRegister {
  const base = {
    proxyReply: o.proxy ?? false,
    securityCapable: false,
    rtr: false,
    eidNotify: false,
    useTtlForTimeout: o.useTtl ?? false,
    mergeRequest: false,
    mobileNode: false,
    wantMapNotify: o.notify ?? true,
    nonce: o.nonce ?? 0x1111n,
    keyId: o.keyId ?? 1,
    authData: new Uint8Array(0),
    records,
  };
  return o.xtrId !== undefined
    ? { ...base, xtrIdPresent: true, xtrId: o.xtrId, siteId: o.siteId ?? 0n }
    : { ...base, xtrIdPresent: false };
}

function register(records: EidRecord[], o: RegisterOptions = {}): Uint8Array {
  const m = registerMessage(records, o);
  return emitSignedMapRegister(m, new HmacKey(m.keyId, o.key ?? "k1"));
}

function requestMessage(
  eid: string,
  o: {
    nonce?: bigint;
    iid?: number;
    itr?: string;
    maskLen?: number;
    probe?: boolean;
    smr?: boolean;
  } = {},
): MapRequest {
  const ip = ipAddress(eid);
  const inner: Address = ip;
  return {
    authoritative: false,
    probe: o.probe ?? false,
    smr: o.smr ?? false,
    pitr: false,
    smrInvoked: false,
    localXtr: false,
    dontMapReply: false,
    nonce: o.nonce ?? 0x2222n,
    sourceEid: NO_ADDRESS,
    itrRlocs: [ipAddress(o.itr ?? "127.0.0.1")],
    records: [{
      maskLen: o.maskLen ?? (ip.kind === "ipv4" ? 32 : 128),
      eid: o.iid ? { kind: "iid", iid: o.iid, iidMaskLen: 0, address: inner } : inner,
    }],
  };
}

/** Sends a Map-Request from `itr` to the ms in an ECM, the way an ITR (or a DDT-MR) does. */
function sendEcmRequest(
  itr: Host,
  ms: Peer,
  eid: string,
  o: Parameters<typeof requestMessage>[1] & { ddt?: boolean; from?: Host; ttl?: number } = {},
): void {
  const m = requestMessage(eid, { itr: itr.peer.address, ...o });
  const v4 = ipAddress(eid).kind === "ipv4" === (ipAddress(itr.peer.address).kind === "ipv4");
  const ecm = emitEcm({
    security: false,
    ddtOriginated: o.ddt ?? false,
    forRtr: false,
    rtrRelayed: false,
    inner: {
      src: itr.peer.address,
      dst: v4 ? eid : itr.peer.address,
      srcPort: itr.peer.port,
      dstPort: 4342,
      ttl: o.ttl ?? 64,
    },
    payload: emitMapRequest(m),
  });
  (o.from ?? itr).cp.send(ecm, ms);
}

/** Asks the ms for a non-EID address and waits for the answer: everything sent before has been handled. */
async function barrier(host: Host, ms: Peer): Promise<void> {
  host.cp.send(emitMapRequest(requestMessage("198.51.100.99", { nonce: 0xbaban })), ms);
  for (;;) {
    const r = await host.next("map-reply");
    if (r.message.msg.nonce === 0xbaban) return;
    host.got.push(r);
  }
}

function only<T>(list: readonly T[]): T {
  assert.equal(list.length, 1);
  return list[0]!;
}

// ---------------------------------------------------------------------------
// Map-Register and Map-Notify

Deno.test("ms: a Map-Register with the M bit gets a Map-Notify signed with the site key at its source port", async () => {
  const t = await startTestMs(msToml(
    site("10.1.0.0/16"),
    site("10.2.0.0/16", { keyType: 2, key: "k2" }),
  ));
  const xtr = await Host.open();
  try {
    for (
      const [prefix, keyId, key] of [["10.1.0.0/16", 1, "k1"], ["10.2.0.0/16", 2, "k2"]] as const
    ) {
      const records = [record(prefix, ["192.0.2.1", "192.0.2.2"])];
      const nonce = BigInt(keyId) << 60n | 0xabcdn;
      xtr.cp.send(register(records, { nonce, keyId, key }), t.peer);
      const n = await xtr.next("map-notify");
      const msg = n.message.msg;
      assert.equal(msg.nonce, nonce);
      assert.equal(msg.keyId, keyId);
      assert.equal(msg.xtrIdPresent, false);
      assert.deepEqual(msg.records, records);
      assert.deepEqual(n.from, t.peer);
      assert.ok(verifyAuthenticated(new Uint8Array(n.bytes), new HmacKey(keyId, key)));
      assert.ok(!verifyAuthenticated(new Uint8Array(n.bytes), new HmacKey(keyId, "other")));
    }
    // The I bit: xTR-ID and site-ID are echoed.
    xtr.cp.send(
      register([record("10.1.0.0/16", ["192.0.2.3"])], { xtrId: 0xfeedn, siteId: 7n }),
      t.peer,
    );
    const n = await xtr.next("map-notify");
    assert.equal(n.message.msg.xtrIdPresent, true);
    assert.equal(n.message.msg.xtrId, 0xfeedn);
    assert.equal(n.message.msg.siteId, 7n);
    // Without M: registered, no Map-Notify.
    xtr.cp.send(
      register([record("10.2.0.0/16", ["192.0.2.9"])], {
        keyId: 2,
        key: "k2",
        notify: false,
        xtrId: 5n,
      }),
      t.peer,
    );
    await barrier(xtr, t.peer);
    assert.equal(xtr.count("map-notify"), 0);

    assert.equal(t.counters.get("oor_map_server_map_registers_accepted_total"), 4);
    assert.equal(t.counters.get("oor_map_server_map_notifies_sent_total"), 3);
    assert.equal(t.counters.get("oor_map_server_registrations", { source: "map-register" }), 4);
    const regs = t.ms.registrations();
    assert.deepEqual(regs.map((r) => [r.prefix, r.xtrId ?? r.from]), [
      ["10.1.0.0/16", `127.0.0.1:${xtr.peer.port}`],
      ["10.1.0.0/16", "0000000000000000000000000000feed"],
      ["10.2.0.0/16", `127.0.0.1:${xtr.peer.port}`],
      ["10.2.0.0/16", "00000000000000000000000000000005"],
    ]);
    const first = regs[0]!;
    assert.deepEqual(first, {
      prefix: "10.1.0.0/16",
      iid: 0,
      site: "10.1.0.0/16",
      source: "map-register",
      from: `127.0.0.1:${xtr.peer.port}`,
      rlocs: [
        { address: "192.0.2.1", priority: 1, weight: 100, reachable: true },
        { address: "192.0.2.2", priority: 1, weight: 100, reachable: true },
      ],
      ttl: 10,
      proxyReply: false,
      firstSeen: T0,
      lastSeen: T0,
      expiresAt: T0 + 180_000,
    });
    assert.equal(regs[1]!.siteId, "0000000000000007");
    assert.deepEqual(t.ms.sites().map((s) => [s.prefix, s.keyType, s.registrations]), [
      ["10.1.0.0/16", 1, 2],
      ["10.2.0.0/16", 2, 2],
    ]);
    assert.ok(t.lines.some((l) => l.includes(" registered ") && l.includes("10.1.0.0/16")));
  } finally {
    xtr.close();
    await t.ms.close();
  }
});

Deno.test("ms: Map-Registers with a wrong key, key id, an EID outside every site or an unwanted more specific are rejected", async () => {
  const t = await startTestMs(msToml(
    site("10.1.0.0/16"),
    site("10.2.0.0/16", { keyType: 2, key: "k2", more: true }),
  ));
  const xtr = await Host.open();
  try {
    const rejected = (reason: string) =>
      t.counters.get("oor_map_server_map_registers_rejected_total", { reason });
    const cases: [string, Uint8Array][] = [
      ["auth", register([record("10.1.0.0/16", ["192.0.2.1"])], { key: "wrong" })],
      ["key-id", register([record("10.1.0.0/16", ["192.0.2.1"])], { keyId: 2 })],
      ["key-id", register([record("10.2.0.0/16", ["192.0.2.1"])], { keyId: 1, key: "k2" })],
      ["no-site", register([record("10.3.0.0/16", ["192.0.2.1"])])],
      ["no-site", register([record("10.1.0.0/16", ["192.0.2.1"]), record("10.9.0.0/24", [])])],
      ["no-site", register([record("10.0.0.0/8", ["192.0.2.1"])])],
      ["more-specific", register([record("10.1.1.0/24", ["192.0.2.1"])])],
      ["no-site", register([record("10.1.0.0/16", ["192.0.2.1"], { iid: 1 })])],
    ];
    for (const [, bytes] of cases) xtr.cp.send(bytes, t.peer);
    await barrier(xtr, t.peer);
    assert.equal(xtr.count("map-notify"), 0, "no Map-Notify for a rejected Map-Register");
    assert.deepEqual(
      ["auth", "key-id", "no-site", "more-specific"].map(rejected),
      [1, 2, 4, 1],
    );
    assert.equal(t.counters.get("oor_map_server_map_registers_accepted_total"), 0);
    assert.deepEqual(t.ms.registrations(), [], "one bad record rejects the whole Map-Register");
    const logged = () => t.lines.filter((l) => l.includes("map-register-rejected")).length;
    assert.equal(logged(), 1, "logged once per source per minute");
    t.clock.advance(61_000);
    xtr.cp.send(cases[0]![1], t.peer);
    await barrier(xtr, t.peer);
    assert.equal(logged(), 2);

    // The site with accept-more-specifics takes a longer prefix.
    xtr.cp.send(register([record("10.2.3.0/24", ["192.0.2.1"])], { keyId: 2, key: "k2" }), t.peer);
    const n = await xtr.next("map-notify");
    assert.equal(n.message.msg.records[0]!.maskLen, 24);
    assert.deepEqual(t.ms.registrations().map((r) => [r.prefix, r.site]), [
      ["10.2.3.0/24", "10.2.0.0/16"],
    ]);
  } finally {
    xtr.close();
    await t.ms.close();
  }
});

// ---------------------------------------------------------------------------
// Expiry and withdrawal

Deno.test("ms: a registration expires 3 minutes after its last refresh, or after its TTL with the T bit", async () => {
  const t = await startTestMs(
    msToml(site("10.1.0.0/16", { proxy: true }), site("10.2.0.0/16", { proxy: true })),
  );
  const xtr = await Host.open();
  try {
    const ask = async (eid: string) => {
      xtr.cp.send(emitMapRequest(requestMessage(eid)), t.peer);
      return only((await xtr.next("map-reply")).message.msg.records);
    };
    xtr.cp.send(register([record("10.1.0.0/16", ["192.0.2.1"])], { notify: false }), t.peer);
    xtr.cp.send(
      register([record("10.2.0.0/16", ["192.0.2.2"], { ttl: 5 })], { useTtl: true }),
      t.peer,
    );
    await xtr.next("map-notify");
    t.clock.advance(120_000);
    xtr.cp.send(register([record("10.1.0.0/16", ["192.0.2.1"])], { notify: false }), t.peer);
    await barrier(xtr, t.peer);
    t.clock.advance(179_000); // 2:59 after the refresh, 4:59 after the T registration
    assert.equal((await ask("10.1.2.3")).locators.length, 1);
    assert.equal((await ask("10.2.2.3")).locators.length, 1);
    assert.equal(t.ms.registrations()[0]!.firstSeen, T0, "a refresh keeps the first time");
    t.clock.advance(2_000);
    const gone = await ask("10.1.2.3");
    assert.deepEqual([gone.locators.length, gone.ttl, gone.action], [
      0,
      1,
      ACTION.NATIVELY_FORWARD,
    ]);
    assert.equal((await ask("10.2.2.3")).locators.length, 0, "5-minute TTL is over too");
    assert.equal(t.counters.get("oor_map_server_registrations_expired_total"), 2);
    assert.equal(t.counters.get("oor_map_server_registrations", { source: "map-register" }), 0);
    assert.deepEqual(t.ms.registrations(), []);
    assert.ok(t.lines.some((l) => l.includes("registration-expired")));
  } finally {
    xtr.close();
    await t.ms.close();
  }
});

Deno.test("ms: the sweep in registrations() drops expired entries nobody asked for", async () => {
  const t = await startTestMs(msToml(site("10.1.0.0/16")));
  const xtr = await Host.open();
  try {
    xtr.cp.send(register([record("10.1.0.0/16", ["192.0.2.1"])]), t.peer);
    await xtr.next("map-notify");
    assert.equal(t.ms.registrations().length, 1);
    t.clock.advance(180_000);
    assert.deepEqual(t.ms.registrations(), []);
    assert.equal(t.counters.get("oor_map_server_registrations_expired_total"), 1);
  } finally {
    xtr.close();
    await t.ms.close();
  }
});

Deno.test("ms: a record with TTL 0 withdraws the ETR's registration and is confirmed by Map-Notify", async () => {
  const t = await startTestMs(msToml(site("10.1.0.0/16", { proxy: true })));
  const xtr = await Host.open();
  try {
    xtr.cp.send(register([record("10.1.0.0/16", ["192.0.2.1"])], { xtrId: 1n }), t.peer);
    xtr.cp.send(register([record("10.1.0.0/16", ["192.0.2.2"])], { xtrId: 2n }), t.peer);
    await xtr.next("map-notify");
    await xtr.next("map-notify");
    const withdraw = [record("10.1.0.0/16", [], { ttl: 0 })];
    xtr.cp.send(register(withdraw, { xtrId: 1n, nonce: 0x77n }), t.peer);
    const n = await xtr.next("map-notify");
    assert.equal(n.message.msg.nonce, 0x77n);
    assert.deepEqual(n.message.msg.records, withdraw);
    assert.deepEqual(t.ms.registrations().map((r) => r.xtrId), [
      "00000000000000000000000000000002",
    ]);
    xtr.cp.send(register(withdraw, { xtrId: 2n }), t.peer);
    await xtr.next("map-notify");
    xtr.cp.send(emitMapRequest(requestMessage("10.1.0.1")), t.peer);
    const rec = only((await xtr.next("map-reply")).message.msg.records);
    assert.deepEqual([rec.locators.length, rec.ttl], [0, 1]);
    assert.equal(t.counters.get("oor_map_server_registrations_withdrawn_total"), 2);
  } finally {
    xtr.close();
    await t.ms.close();
  }
});

// ---------------------------------------------------------------------------
// Map-Requests

Deno.test("ms: registrations of one prefix by two xTR-IDs are kept apart and merged in a proxy Map-Reply", async () => {
  const t = await startTestMs(msToml(site("10.1.0.0/16")));
  const xtr = await Host.open();
  const xtr2 = await Host.open("127.0.0.2");
  const itr = await Host.open("127.0.0.3");
  try {
    xtr.cp.send(
      register([record("10.1.0.0/16", ["192.0.2.1", "192.0.2.2"], { ttl: 10 })], {
        xtrId: 1n,
        proxy: true,
      }),
      t.peer,
    );
    await xtr.next("map-notify");
    t.clock.advance(1000);
    xtr.cp.send(
      register([record("10.1.0.0/16", ["192.0.2.2", "192.0.2.3"], { ttl: 5 })], {
        xtrId: 2n,
        proxy: true,
      }),
      t.peer,
    );
    await xtr.next("map-notify");
    sendEcmRequest(itr, t.peer, "10.1.7.7", { nonce: 0x5151n });
    const reply = await itr.next("map-reply");
    assert.equal(reply.message.msg.nonce, 0x5151n);
    const rec = only(reply.message.msg.records);
    assert.equal(rec.authoritative, false, "a proxy Map-Reply has A clear (RFC 9301 §5.4)");
    assert.equal(rec.ttl, 5);
    assert.equal(rec.maskLen, 16);
    assert.deepEqual(rec.eid, ipAddress("10.1.0.0"));
    assert.deepEqual(
      rec.locators.map((l) => [l.address, l.local]),
      [
        [ipAddress("192.0.2.2"), false],
        [ipAddress("192.0.2.3"), false],
        [ipAddress("192.0.2.1"), false],
      ],
      "union of both, newest registration first, L bits cleared",
    );
    assert.equal(t.ms.registrations().length, 2);

    // Without the I bit, two ETRs are told apart by their source address.
    xtr2.cp.send(register([record("10.1.0.0/16", ["192.0.2.4"])], { proxy: true }), t.peer);
    await xtr2.next("map-notify");
    sendEcmRequest(itr, t.peer, "10.1.7.7");
    const rec2 = only((await itr.next("map-reply")).message.msg.records);
    assert.equal(rec2.locators.length, 4);
    assert.equal(
      t.counters.get("oor_map_server_map_requests_answered_total", { kind: "proxy" }),
      2,
    );
  } finally {
    xtr.close();
    xtr2.close();
    itr.close();
    await t.ms.close();
  }
});

Deno.test("ms: without proxy-reply the Map-Request is forwarded in an ECM to a registered ETR", async () => {
  const t = await startTestMs(msToml(site("10.1.0.0/16"), site("10.2.0.0/16", { proxy: true })));
  const xtr = await Host.open();
  const itr = await Host.open("127.0.0.3");
  const etr = await Host.open("127.77.0.5", 4342);
  try {
    for (const p of ["10.1.0.0/16", "10.2.0.0/16"]) {
      xtr.cp.send(register([record(p, ["127.77.0.5", "192.0.2.50"])]), t.peer);
      await xtr.next("map-notify");
    }
    sendEcmRequest(itr, t.peer, "10.1.2.3", { nonce: 0x4242n });
    const fwd = await etr.next("map-request");
    assert.equal(fwd.message.msg.nonce, 0x4242n);
    assert.deepEqual(fwd.message.msg.itrRlocs, [ipAddress("127.0.0.3")]);
    assert.deepEqual(fwd.from, t.peer, "forwarded by the ms");
    assert.ok(fwd.ecm !== undefined, "in an ECM");
    assert.equal(fwd.ecm.ddtOriginated, false);
    const { src, dst, srcPort, dstPort, ttl } = fwd.ecm.inner;
    assert.deepEqual({ src, dst, srcPort, dstPort, ttl }, {
      src: "127.0.0.3",
      dst: "10.1.2.3",
      srcPort: itr.peer.port,
      dstPort: 4342,
      ttl: 63,
    });
    assert.equal(
      t.counters.get("oor_map_server_map_requests_answered_total", { kind: "forwarded" }),
      1,
    );

    // The site's proxy-reply answers instead, as does the P bit of a registration.
    sendEcmRequest(itr, t.peer, "10.2.2.3");
    const rec = only((await itr.next("map-reply")).message.msg.records);
    assert.equal(rec.locators.length, 2);
    xtr.cp.send(register([record("10.1.0.0/16", ["127.77.0.5"])], { proxy: true }), t.peer);
    await xtr.next("map-notify");
    sendEcmRequest(itr, t.peer, "10.1.2.3");
    assert.equal(only((await itr.next("map-reply")).message.msg.records).locators.length, 1);
    assert.equal(etr.count("map-request"), 0);

    // A plain Map-Request is forwarded too, in an ECM built from its source.
    xtr.cp.send(register([record("10.1.0.0/16", ["127.77.0.5"])], { proxy: false }), t.peer);
    await xtr.next("map-notify");
    itr.cp.send(emitMapRequest(requestMessage("10.1.9.9", { itr: "127.0.0.3" })), t.peer);
    const plain = await etr.next("map-request");
    assert.deepEqual(plain.ecm?.inner, {
      tos: 0,
      identification: 0,
      dontFragment: true,
      zeroUdpChecksum: false,
      src: "127.0.0.3",
      dst: "10.1.9.9",
      srcPort: itr.peer.port,
      dstPort: 4342,
      ttl: 64,
    });
  } finally {
    xtr.close();
    itr.close();
    etr.close();
    await t.ms.close();
  }
});

/** The dropped-request counter of the ms, by reason. */
function dropped(t: Ms, reason: string): number {
  return t.counters.get("oor_map_server_map_requests_dropped_total", { reason });
}

Deno.test("ms: a site registered with the ms's own address gets no forward to it, so no loop", async () => {
  // The ms listens on port 4342, the port it forwards to: a forward to its
  // own address comes back to it, and went round until the rate limit
  // stopped it (here there is none).
  const self = "127.0.43.1";
  const t = await startTestMs(
    msToml(site("10.1.0.0/16"), site("10.2.0.0/16"))
      .replace('control-address = "127.0.0.1"', `control-address = "${self}"`)
      .replace("control-port = 0", "control-port = 4342"),
  );
  const xtr = await Host.open();
  const itr = await Host.open("127.0.0.3");
  const etr = await Host.open("127.0.43.5", 4342);
  try {
    xtr.cp.send(register([record("10.1.0.0/16", [self])]), t.peer);
    await xtr.next("map-notify");
    // The ms's own address first (same priority), an ETR after it.
    xtr.cp.send(register([record("10.2.0.0/16", [self, "127.0.43.5"])]), t.peer);
    await xtr.next("map-notify");

    sendEcmRequest(itr, t.peer, "10.1.2.3", { nonce: 0x100n });
    await barrier(itr, t.peer);
    await new Promise((r) => setTimeout(r, 50));
    const forwarded = () =>
      t.counters.get("oor_map_server_map_requests_answered_total", { kind: "forwarded" });
    assert.equal(forwarded(), 0);
    assert.equal(dropped(t, "own-address"), 1);
    assert.equal(
      t.counters.get("oor_control_messages_in_total", { type: "ecm-map-request" }),
      1,
      "the request came in once: nothing went round",
    );
    const warned = t.lines.filter((l) => l.includes(" map-request-not-forwarded "));
    assert.equal(warned.length, 1, t.lines.join(""));
    assert.match(warned[0]!, /reason=own-address/);

    // With another RLOC beside its own, the ms forwards to that one.
    sendEcmRequest(itr, t.peer, "10.2.2.3", { nonce: 0x101n });
    const fwd = await etr.next("map-request");
    assert.equal(fwd.message.msg.nonce, 0x101n);
    assert.equal(forwarded(), 1);
  } finally {
    xtr.close();
    itr.close();
    etr.close();
    await t.ms.close();
  }
});

Deno.test("ms: a forwarded ECM carries the inner TTL one less than received; TTL 1 or 0 is dropped", async () => {
  const t = await startTestMs(msToml(site("10.1.0.0/16")));
  const xtr = await Host.open();
  const itr = await Host.open("127.0.0.3");
  const etr = await Host.open("127.77.0.7", 4342);
  try {
    xtr.cp.send(register([record("10.1.0.0/16", ["127.77.0.7"])]), t.peer);
    await xtr.next("map-notify");
    sendEcmRequest(itr, t.peer, "10.1.2.3", { nonce: 1n, ttl: 10 });
    assert.equal((await etr.next("map-request")).ecm?.inner.ttl, 9);
    sendEcmRequest(itr, t.peer, "10.1.2.3", { nonce: 2n, ttl: 2 });
    assert.equal((await etr.next("map-request")).ecm?.inner.ttl, 1);
    sendEcmRequest(itr, t.peer, "10.1.2.3", { nonce: 3n, ttl: 1 });
    sendEcmRequest(itr, t.peer, "10.1.2.3", { nonce: 4n, ttl: 0 });
    await barrier(itr, t.peer);
    assert.equal(etr.count("map-request"), 0);
    assert.equal(dropped(t, "ttl-expired"), 2);
    assert.equal(
      t.counters.get("oor_map_server_map_requests_answered_total", { kind: "forwarded" }),
      2,
    );
  } finally {
    xtr.close();
    itr.close();
    etr.close();
    await t.ms.close();
  }
});

Deno.test("ms: a Map-Request with the nonce and EID of one forwarded within the window is dropped", async () => {
  const t = await startTestMs(msToml(site("10.1.0.0/16")));
  const xtr = await Host.open();
  const itr = await Host.open("127.0.0.3");
  const etr = await Host.open("127.77.0.8", 4342);
  try {
    xtr.cp.send(register([record("10.1.0.0/16", ["127.77.0.8"])]), t.peer);
    await xtr.next("map-notify");
    sendEcmRequest(itr, t.peer, "10.1.2.3", { nonce: 7n });
    await etr.next("map-request");
    sendEcmRequest(itr, t.peer, "10.1.2.3", { nonce: 7n });
    await barrier(itr, t.peer);
    assert.equal(etr.count("map-request"), 0, "the copy is not forwarded");
    assert.equal(dropped(t, "duplicate"), 1);
    // The same nonce for another EID is another request.
    sendEcmRequest(itr, t.peer, "10.1.2.4", { nonce: 7n });
    await etr.next("map-request");
    // After the window, the same request is an ITR's retransmission: forwarded.
    t.clock.advance(DUPLICATE_WINDOW_MS);
    sendEcmRequest(itr, t.peer, "10.1.2.3", { nonce: 7n });
    assert.equal((await etr.next("map-request")).message.msg.nonce, 7n);
    assert.equal(dropped(t, "duplicate"), 1);
  } finally {
    xtr.close();
    itr.close();
    etr.close();
    await t.ms.close();
  }
});

Deno.test("ms: negative Map-Replies for a site with no registration and for non-EID space", async () => {
  const t = await startTestMs(msToml(site("10.1.0.0/16"), site("10.2.0.0/16", { more: true })));
  const xtr = await Host.open();
  const itr = await Host.open("127.0.0.3");
  try {
    xtr.cp.send(register([record("10.2.1.0/24", ["192.0.2.1"])], { proxy: true }), t.peer);
    await xtr.next("map-notify");
    const ask = async (eid: string, maskLen?: number) => {
      sendEcmRequest(itr, t.peer, eid, maskLen !== undefined ? { maskLen } : {});
      const rec = only((await itr.next("map-reply")).message.msg.records);
      assert.equal(rec.locators.length, 0);
      assert.equal(rec.authoritative, true);
      return [`${(rec.eid as { ip: string }).ip}/${rec.maskLen}`, rec.action, rec.ttl];
    };
    const NF = ACTION.NATIVELY_FORWARD;
    assert.deepEqual(await ask("10.1.2.3"), ["10.1.0.0/16", NF, 1], "site, not registered");
    assert.deepEqual(
      await ask("10.2.200.1"),
      ["10.2.128.0/17", NF, 1],
      "inside a site, around its registered more specific",
    );
    assert.deepEqual(await ask("10.200.0.1"), ["10.128.0.0/9", NF, 15], "hole next to the sites");
    assert.deepEqual(await ask("192.0.2.1"), ["128.0.0.0/1", NF, 15], "hole");
    assert.deepEqual(
      await ask("10.0.0.0", 8),
      ["10.0.0.0/8", ACTION.SEND_MAP_REQUEST, 1],
      "a request covering sites: ask again for the more specifics",
    );
    const kind = (k: string) =>
      t.counters.get("oor_map_server_map_requests_answered_total", { kind: k });
    assert.deepEqual([kind("negative-site"), kind("negative-hole")], [2, 3]);
  } finally {
    xtr.close();
    itr.close();
    await t.ms.close();
  }
});

Deno.test("ms: IPv6 EIDs and RLOCs", async () => {
  const t = await startTestMs(
    msToml(site("fd00:1::/48", { keyType: 2, key: "k6", proxy: true }))
      .replace('control-address = "127.0.0.1"', 'control-address = "::1"'),
  );
  const xtr = await Host.open("::1");
  const itr = await Host.open("::1");
  try {
    assert.deepEqual(t.peer.address, "::1");
    xtr.cp.send(
      register([record("fd00:1::/48", ["::1", "2001:db8::1"])], { keyId: 2, key: "k6" }),
      t.peer,
    );
    const n = await xtr.next("map-notify");
    assert.ok(verifyAuthenticated(new Uint8Array(n.bytes), new HmacKey(2, "k6")));
    sendEcmRequest(itr, t.peer, "fd00:1::1234", { nonce: 6n });
    const reply = await itr.next("map-reply");
    const rec = only(reply.message.msg.records);
    assert.deepEqual(rec.eid, ipAddress("fd00:1::"));
    assert.equal(rec.maskLen, 48);
    assert.deepEqual(rec.locators.map((l) => l.address), [
      ipAddress("::1"),
      ipAddress("2001:db8::1"),
    ]);
    sendEcmRequest(itr, t.peer, "fd00:2::1");
    const neg = only((await itr.next("map-reply")).message.msg.records);
    assert.deepEqual([neg.eid, neg.maskLen, neg.ttl], [ipAddress("fd00:2::"), 31, 15]);
    assert.deepEqual(t.ms.registrations()[0]!.rlocs.map((r) => r.address), ["::1", "2001:db8::1"]);
  } finally {
    xtr.close();
    itr.close();
    await t.ms.close();
  }
});

Deno.test("ms: two instance ids with the same prefix are kept apart", async () => {
  const t = await startTestMs(msToml(
    site("10.1.0.0/16", { iid: 1, key: "key-a", proxy: true }),
    site("10.1.0.0/16", { iid: 2, key: "key-b", proxy: true }),
  ));
  const xtr = await Host.open();
  const itr = await Host.open("127.0.0.3");
  try {
    xtr.cp.send(
      register([record("10.1.0.0/16", ["192.0.2.1"], { iid: 1 })], { key: "key-a" }),
      t.peer,
    );
    await xtr.next("map-notify");
    xtr.cp.send(
      register([record("10.1.0.0/16", ["192.0.2.2"], { iid: 2 })], { key: "key-a" }),
      t.peer,
    );
    await barrier(xtr, t.peer);
    assert.equal(xtr.count("map-notify"), 0, "iid 2 takes only its own key");
    assert.equal(
      t.counters.get("oor_map_server_map_registers_rejected_total", { reason: "auth" }),
      1,
    );
    xtr.cp.send(
      register([record("10.1.0.0/16", ["192.0.2.2"], { iid: 2 })], { key: "key-b" }),
      t.peer,
    );
    await xtr.next("map-notify");
    const ask = async (iid: number) => {
      sendEcmRequest(itr, t.peer, "10.1.1.1", { iid });
      return only((await itr.next("map-reply")).message.msg.records);
    };
    for (const [iid, rloc] of [[1, "192.0.2.1"], [2, "192.0.2.2"]] as const) {
      const rec = await ask(iid);
      assert.deepEqual(rec.eid, {
        kind: "iid",
        iid,
        iidMaskLen: 32,
        address: ipAddress("10.1.0.0"),
      });
      assert.deepEqual(rec.locators.map((l) => l.address), [ipAddress(rloc)]);
    }
    const other = await ask(3);
    assert.deepEqual([other.eid, other.maskLen, other.ttl], [
      { kind: "iid", iid: 3, iidMaskLen: 32, address: ipAddress("0.0.0.0") },
      0,
      15,
    ]);
    const none = await ask(0);
    assert.deepEqual([none.eid, none.maskLen], [ipAddress("0.0.0.0"), 0]);
    assert.deepEqual(t.ms.registrations().map((r) => r.prefix), [
      "[1]10.1.0.0/16",
      "[2]10.1.0.0/16",
    ]);
  } finally {
    xtr.close();
    itr.close();
    await t.ms.close();
  }
});

Deno.test("ms: static registered sites are proxy-replied and never expire", async () => {
  const t = await startTestMs(msToml(
    "[[ms-static-registered-site]]",
    'eid-prefix = "10.9.0.0/16"',
    "ttl = 30",
    "[[ms-static-registered-site.rloc-address]]",
    'address = "192.0.2.90"',
    "priority = 2",
    "weight = 50",
  ));
  const itr = await Host.open("127.0.0.3");
  try {
    t.clock.advance(7 * 86_400_000);
    sendEcmRequest(itr, t.peer, "10.9.1.1");
    const rec = only((await itr.next("map-reply")).message.msg.records);
    assert.deepEqual([rec.maskLen, rec.ttl, rec.locators.length], [16, 30, 1]);
    assert.deepEqual(rec.locators[0], { ...locator("192.0.2.90", 2), weight: 50 });
  } finally {
    itr.close();
    await t.ms.close();
  }
  assert.deepEqual(t.ms.registrations().map((r) => [r.source, r.expiresAt, r.rlocs[0]!.weight]), [
    ["static", null, 50],
  ]);
  assert.equal(t.counters.get("oor_map_server_registrations", { source: "static" }), 1);
});

Deno.test("ms: plain Map-Requests are answered at their source; probes and SMRs are dropped", async () => {
  const t = await startTestMs(msToml(site("10.1.0.0/16")));
  const itr = await Host.open("127.0.0.3");
  try {
    itr.cp.send(emitMapRequest(requestMessage("10.1.0.1", { probe: true })), t.peer);
    itr.cp.send(emitMapRequest(requestMessage("10.1.0.1", { smr: true })), t.peer);
    itr.cp.send(
      emitMapRequest(requestMessage("10.1.0.1", { itr: "192.0.2.1", nonce: 3n })),
      t.peer,
    );
    const reply = await itr.next("map-reply");
    assert.equal(reply.message.msg.nonce, 3n, "to the source, not the ITR-RLOC");
    assert.equal(itr.count("map-reply"), 0);
    const dropped = (reason: string) =>
      t.counters.get("oor_map_server_map_requests_dropped_total", { reason });
    assert.deepEqual([dropped("probe"), dropped("smr")], [1, 1]);
  } finally {
    itr.close();
    await t.ms.close();
  }
});

Deno.test("ms: an ECM Map-Request whose ITR-RLOCs the ms cannot reach is dropped and counted", async () => {
  const t = await startTestMs(msToml(site("10.1.0.0/16")));
  const itr = await Host.open("127.0.0.3");
  try {
    sendEcmRequest(itr, t.peer, "10.1.0.1", { itr: "2001:db8::1" });
    await until(
      () =>
        t.counters.get("oor_map_server_map_requests_dropped_total", { reason: "no-itr-rloc" }) ===
          1,
      "a no-itr-rloc drop",
    );
  } finally {
    itr.close();
    await t.ms.close();
  }
});

// ---------------------------------------------------------------------------
// Map-Notify-Ack

Deno.test("ms: a Map-Notify-Ack is verified and matched to the Map-Notify it acknowledges", async () => {
  const t = await startTestMs(msToml(site("10.1.0.0/16")));
  const xtr = await Host.open();
  try {
    const records = [record("10.1.0.0/16", ["192.0.2.1"])];
    xtr.cp.send(register(records, { nonce: 0x31n }), t.peer);
    const n = await xtr.next("map-notify");
    const ack = (nonce: bigint, key: string) =>
      emitSignedMapNotify({ ...n.message.msg, ack: true, nonce }, new HmacKey(1, key));
    xtr.cp.send(ack(0x31n, "k1"), t.peer);
    xtr.cp.send(ack(0x31n, "k1"), t.peer);
    xtr.cp.send(ack(0x32n, "wrong"), t.peer);
    const acks = (result: string) =>
      t.counters.get("oor_map_server_map_notify_acks_total", { result });
    await until(() => acks("matched") + acks("unmatched") + acks("auth") === 3, "three acks");
    assert.deepEqual([acks("matched"), acks("unmatched"), acks("auth")], [1, 1, 1]);
  } finally {
    xtr.close();
    await t.ms.close();
  }
});

// ---------------------------------------------------------------------------
// DDT

Deno.test("ms: DDT-originated Map-Requests get MS-ACK, MS-NOT-REGISTERED or NOT-AUTHORITATIVE referrals", async () => {
  const t = await startTestMs(msToml(
    site("10.1.0.0/16", { peers: ["127.0.0.9"], complete: false }),
    site("10.3.0.0/16"),
    site("10.4.0.0/16", { proxy: true }),
  ));
  const xtr = await Host.open();
  const itr = await Host.open("127.0.0.3");
  const mr = await Host.open("127.0.0.4");
  const etr = await Host.open("127.77.0.6", 4342);
  try {
    for (const p of ["10.1.0.0/16", "10.4.0.0/16"]) {
      xtr.cp.send(register([record(p, ["127.77.0.6"])]), t.peer);
      await xtr.next("map-notify");
    }
    const referral = async (eid: string, nonce: bigint) => {
      sendEcmRequest(itr, t.peer, eid, { ddt: true, from: mr, nonce });
      const ref = await mr.next("map-referral");
      assert.equal(ref.message.msg.nonce, nonce);
      return only(ref.message.msg.records).record;
    };
    const self = locator("127.0.0.1");
    const peer9 = locator("127.0.0.9");

    // Registered, not proxied: MS-ACK to the DDT-MR, and the request goes to the ETR.
    const ack = await referral("10.1.5.5", 1n);
    assert.deepEqual(
      [ack.action, ack.ttl, ack.maskLen, ack.authoritative, ack.incomplete, ack.eid],
      [REFERRAL_ACTION.MS_ACK, 1440, 16, true, true, ipAddress("10.1.0.0")],
    );
    assert.deepEqual(ack.locators, [self, peer9]);
    const fwd = await etr.next("map-request");
    assert.equal(fwd.message.msg.nonce, 1n);
    assert.equal(fwd.ecm?.ddtOriginated, false);
    assert.equal(fwd.ecm?.inner.srcPort, itr.peer.port);

    // Registered and proxied: MS-ACK, and the ITR gets the Map-Reply.
    const ack4 = await referral("10.4.5.5", 4n);
    assert.deepEqual([ack4.action, ack4.incomplete, ack4.locators], [
      REFERRAL_ACTION.MS_ACK,
      false,
      [self],
    ]);
    const reply = await itr.next("map-reply");
    assert.equal(reply.message.msg.nonce, 4n);

    // A site with no registration.
    const nr = await referral("10.3.5.5", 3n);
    assert.deepEqual(
      [nr.action, nr.ttl, nr.maskLen, nr.authoritative, nr.incomplete, nr.locators],
      [REFERRAL_ACTION.MS_NOT_REGISTERED, 1, 16, true, false, [self]],
    );

    // Outside every site.
    const na = await referral("192.0.2.1", 5n);
    assert.deepEqual(
      [na.action, na.ttl, na.maskLen, na.authoritative, na.incomplete, na.locators],
      [REFERRAL_ACTION.NOT_AUTHORITATIVE, 0, 32, false, true, []],
    );
    await barrier(itr, t.peer);
    assert.equal(itr.count("map-reply"), 0, "no Map-Reply beside a negative referral");
    assert.equal(etr.count("map-request"), 0);
    const sent = (action: string) =>
      t.counters.get("oor_map_server_map_referrals_sent_total", { action });
    assert.deepEqual([sent("ms-ack"), sent("ms-not-registered"), sent("not-authoritative")], [
      2,
      1,
      1,
    ]);
  } finally {
    xtr.close();
    itr.close();
    mr.close();
    etr.close();
    await t.ms.close();
  }
});

// ---------------------------------------------------------------------------
// Config

Deno.test("ms: control-rate-limit limits Map-Registers from one source", async () => {
  const t = await startTestMs(
    msToml(site("10.1.0.0/16")).replace("control-rate-limit = 0", "control-rate-limit = 2"),
  );
  const xtr = await Host.open();
  try {
    for (let i = 0; i < 6; i++) {
      xtr.cp.send(register([record("10.1.0.0/16", ["192.0.2.1"])], { nonce: BigInt(i) }), t.peer);
    }
    const dropped = () => t.counters.get("oor_control_dropped_total", { reason: "rate-limited" });
    await until(() => xtr.count("map-notify") + dropped() === 6, "six registers handled");
    assert.equal(xtr.count("map-notify"), 4, "a burst of twice the rate");
    assert.equal(dropped(), 2);
  } finally {
    xtr.close();
    await t.ms.close();
  }
});

Deno.test("ms: startMs() binds the configured address and an ephemeral port", async () => {
  const t = await startTestMs(msToml(site("10.1.0.0/16")));
  try {
    assert.ok(t.ms.port > 0);
    assert.ok(t.lines.some((l) => l.includes("ms-listening")));
  } finally {
    await t.ms.close();
    await t.ms.close(); // twice is harmless
  }
});

// ---------------------------------------------------------------------------
// Info-Request (NAT traversal)

Deno.test("ms: an Info-Request gets an Info-Reply with the source it came from and the advertised RTRs", async () => {
  const t = await startTestMs(msToml(
    'ms-advertised-rtrs-set = "edge"',
    site("10.1.0.0/24", { keyType: 2, key: "nat-key" }),
    "[[ms-rtr-node]]",
    'name = "r1"',
    'address = "192.0.2.31"',
    'key = "rtr-key"',
    "[[ms-rtr-node]]",
    'name = "r2"',
    'address = "192.0.2.32"',
    'key = "rtr-key"',
    "[[ms-rtrs-set]]",
    'name = "edge"',
    "ttl = 7",
    'rtrs = ["r1", "r2"]',
  ));
  const xtr = await Host.open();
  const replies: InfoReply[] = [];
  xtr.cp.on("info-reply", (m) => void replies.push(m));
  const key = new HmacKey(2, "nat-key");
  const request = (nonce: bigint, eid: string, k = key) => {
    const bytes = emitInfo({
      reply: false,
      nonce,
      keyId: k.keyId,
      authData: new Uint8Array(k.digestLength),
      ttl: 0,
      maskLen: 32,
      eid: ipAddress(eid),
      address: NO_ADDRESS,
    });
    signAuthenticated(bytes, k);
    xtr.cp.send(bytes, t.peer);
  };
  try {
    request(0x51n, "10.1.0.5");
    await until(() => replies.length === 1, "the Info-Reply");
    const r = replies[0]!;
    assert.equal(r.nonce, 0x51n);
    assert.equal(r.ttl, 7);
    assert.equal(r.nat.etrPort, xtr.peer.port, "the port the request came from");
    assert.equal(addressToString(r.nat.globalEtr), "127.0.0.1", "the address it came from");
    assert.equal(addressToString(r.nat.ms), "127.0.0.1");
    assert.equal(r.nat.msPort, t.peer.port);
    assert.deepEqual(r.nat.rtrs.map(addressToString), ["192.0.2.31", "192.0.2.32"]);
    // Outside every site, or under the wrong key: no answer, counted.
    request(0x52n, "10.9.0.5");
    request(0x53n, "10.1.0.5", new HmacKey(2, "wrong"));
    await until(
      () =>
        t.counters.get("oor_map_server_info_requests_total", { result: "no-site" }) === 1 &&
        t.counters.get("oor_map_server_info_requests_total", { result: "auth" }) === 1,
      "both rejections",
    );
    assert.equal(replies.length, 1);
  } finally {
    xtr.close();
    await t.ms.close();
  }
});

Deno.test("ms: a registration relayed by a known RTR is accepted, answered through it, and gives Info-Replies the private RLOC", async () => {
  const rtrKey = "rtr-key";
  const t = await startTestMs(msToml(
    'ms-advertised-rtrs-set = "edge"',
    site("10.1.0.0/24", { keyType: 2, key: "nat-key" }),
    "[[ms-rtr-node]]",
    'name = "r1"',
    'address = "127.0.0.1"',
    `key = "${rtrKey}"`,
    "[[ms-rtrs-set]]",
    'name = "edge"',
    "ttl = 7",
    'rtrs = ["r1"]',
  ));
  const rtr = await Host.open();
  const xtr = await Host.open();
  const replies: InfoReply[] = [];
  xtr.cp.on("info-reply", (m) => void replies.push(m));
  const key = new HmacKey(2, "nat-key");
  const info = (nonce: bigint) => {
    const bytes = emitInfo({
      reply: false,
      nonce,
      keyId: key.keyId,
      authData: new Uint8Array(key.digestLength),
      ttl: 0,
      maskLen: 24,
      eid: ipAddress("10.1.0.0"),
      address: NO_ADDRESS,
    });
    signAuthenticated(bytes, key);
    xtr.cp.send(bytes, t.peer);
  };
  try {
    info(0x61n);
    await until(() => replies.length === 1, "the first Info-Reply");
    assert.equal(replies[0]!.nat.privateEtr.kind, "none", "no registration yet");
    // The RTR relays the xTR's Map-Register: ECM with the N bit, the xTR's
    // private RLOC as the inner source.
    const relayed = emitEcm({
      security: false,
      ddtOriginated: false,
      forRtr: false,
      rtrRelayed: true,
      inner: { src: "192.168.1.2", dst: "127.0.0.1", srcPort: 4342, dstPort: 4342, ttl: 64 },
      payload: register([record("10.1.0.0/24", ["127.0.0.1"])], {
        keyId: 2,
        key: "nat-key",
        xtrId: 0xabcn,
      }),
    });
    rtr.cp.send(relayed, t.peer);
    const notify = await rtr.next("map-notify");
    assert.equal(notify.message.msg.rtrAuthPresent, true, "signed for the RTR too");
    info(0x62n);
    await until(() => replies.length === 2, "the second Info-Reply");
    assert.equal(addressToString(replies[1]!.nat.privateEtr), "192.168.1.2");
    // The same relay from an address that is no [[ms-rtr-node]] is refused.
    const stranger = await Host.open("127.0.0.2");
    try {
      stranger.cp.send(relayed, t.peer);
      await until(
        () =>
          t.counters.get("oor_map_server_map_registers_rejected_total", {
            reason: "unknown-rtr",
          }) === 1,
        "the refusal",
      );
    } finally {
      stranger.close();
    }
  } finally {
    rtr.close();
    xtr.close();
    await t.ms.close();
  }
});

Deno.test("ms: live registrations are kept across a restart; expired ones and ones no site admits are not", async () => {
  const dir = await Deno.makeTempDir({ prefix: "oor-ms-saved-" });
  const statePath = `${dir}/ms.toml.state.json`;
  const clock = new Clock();
  const sites = [site("10.1.0.0/16", { more: true }), site("10.2.0.0/16")];
  const xtr = await Host.open();
  try {
    const a = await startTestMs(msToml(...sites), clock, statePath);
    try {
      xtr.cp.send(
        register([record("10.1.1.0/24", ["192.0.2.1", "192.0.2.2"])], {
          xtrId: 0xabcn,
          siteId: 9n,
        }),
        a.peer,
      );
      await xtr.next("map-notify");
      xtr.cp.send(register([record("10.2.0.0/16", ["192.0.2.7"])], { proxy: true }), a.peer);
      await xtr.next("map-notify");
    } finally {
      await a.ms.close();
    }
    const before = a.ms.registrations();
    assert.equal(before.length, 2);
    // Restarted a minute later, without the 10.2.0.0/16 site.
    clock.advance(60_000);
    const b = await startTestMs(msToml(sites[0]!), clock, statePath);
    try {
      const after = b.ms.registrations();
      assert.deepEqual(after, [before.find((r) => r.prefix === "10.1.1.0/24")]);
      assert.ok(
        b.lines.some((l) => /registrations-restored .*restored=1 expired=0 no-site=1/.test(l)),
        b.lines.join("\n"),
      );
    } finally {
      await b.ms.close();
    }
    // Three minutes after its last refresh, it has expired: nothing comes back.
    clock.advance(3 * 60_000);
    const c = await startTestMs(msToml(...sites), clock, statePath);
    try {
      assert.deepEqual(c.ms.registrations(), []);
      assert.ok(c.lines.some((l) => /registrations-restored .*restored=0 expired=2/.test(l)));
    } finally {
      await c.ms.close();
    }
  } finally {
    xtr.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ms: an unreadable registrations file is logged and ignored", async () => {
  const dir = await Deno.makeTempDir({ prefix: "oor-ms-saved-" });
  const statePath = `${dir}/ms.toml.state.json`;
  try {
    await Deno.writeTextFile(`${dir}/ms.toml.state.registrations.json`, "{not json");
    const t = await startTestMs(msToml(site("10.1.0.0/16")), new Clock(), statePath);
    try {
      assert.deepEqual(t.ms.registrations(), []);
      assert.ok(t.lines.some((l) => /warn .*registrations-file-unreadable .*not JSON/.test(l)));
    } finally {
      await t.ms.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ms: without an xTR-ID the newest registration of a prefix replaces the others, unless the site merges", async () => {
  const a = await Host.open("127.0.0.1");
  const b = await Host.open("127.0.0.2");
  try {
    for (const merge of [false, true]) {
      const t = await startTestMs(msToml(site("10.1.0.0/16", { merge })));
      try {
        a.cp.send(register([record("10.1.0.0/16", ["192.0.2.1"])]), t.peer);
        await a.next("map-notify");
        // The same ETR, moved to another address (or a second ETR of the site).
        b.cp.send(register([record("10.1.0.0/16", ["192.0.2.2"])]), t.peer);
        await b.next("map-notify");
        const rlocs = t.ms.registrations().map((r) => r.rlocs.map((l) => l.address).join(","));
        assert.deepEqual(
          rlocs.sort(),
          merge ? ["192.0.2.1", "192.0.2.2"] : ["192.0.2.2"],
          `merge = ${merge}`,
        );
      } finally {
        await t.ms.close();
      }
    }
  } finally {
    a.close();
    b.close();
  }
});
