/**
 * The map-server's publish/subscribe (RFC 9437, roles/map_server/
 * subscriptions.ts), end to end on loopback: an ETR and a subscribing ITR
 * made of bare control sockets, sending hand-built messages.
 */

import assert from "node:assert/strict";
import { ipAddress, NO_ADDRESS } from "../wire/address.ts";
import { HmacKey, verifyAuthenticated } from "../wire/auth.ts";
import { emitEcm } from "../wire/ecm.ts";
import { ACTION, type EidRecord } from "../wire/eid_record.ts";
import type { ControlMessage, ControlMessageType } from "../wire/message.ts";
import { emitSignedMapNotify, type MapNotify } from "../wire/map_notify.ts";
import { emitSignedMapRegister } from "../wire/map_register.ts";
import { emitMapRequest, type MapRequest } from "../wire/map_request.ts";
import { parseConfig } from "../config/mod.ts";
import { ControlPlane, type Peer, type Received } from "../core/control.ts";
import { Counters } from "../core/counters.ts";
import { Logger } from "../core/log.ts";
import { parsePrefix, prefixEid } from "../core/prefix.ts";
import { type MsHandle, msStarter } from "./ms.ts";

type Got<T extends ControlMessageType> = Received & {
  readonly message: Extract<ControlMessage, { type: T }>;
};

async function until(cond: () => boolean, what: string, ms = 4000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A bare control socket that keeps what it receives. */
class Host {
  readonly got: Received[] = [];
  private constructor(readonly cp: ControlPlane, readonly peer: Peer) {
    for (const t of ["map-reply", "map-notify", "map-notify-ack"] as const) {
      cp.on(t, (_m, r) => void this.got.push(r));
    }
  }
  static async open(address: string): Promise<Host> {
    const cp = await ControlPlane.open({
      logger: new Logger({ role: "peer", sink: { write: () => {} } }),
      counters: new Counters(),
      address,
      port: 0,
    });
    return new Host(cp, { address, port: cp.port });
  }
  async next<T extends ControlMessageType>(type: T, ms = 4000): Promise<Got<T>> {
    await until(() => this.got.some((r) => r.message.type === type), `a ${type}`, ms);
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

interface Ms {
  readonly ms: MsHandle;
  readonly counters: Counters;
  readonly peer: Peer;
}

async function startTestMs(workers: number): Promise<Ms> {
  const text = [
    'operating-mode = "MS"',
    'control-address = "127.0.0.1"',
    "control-port = 0",
    "control-rate-limit = 0",
    "[[lisp-site]]",
    'eid-prefix = "10.1.0.0/16"',
    "key-type = 1",
    'key = "etr-key"',
    "accept-more-specifics = true",
    "proxy-reply = true",
    "[[lisp-site]]",
    'eid-prefix = "10.9.0.0/16"',
    "key-type = 2",
    'key = "itr-key"',
    "accept-more-specifics = true",
  ].join("\n") + "\n";
  const r = parseConfig(text, { role: "ms" });
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  const counters = new Counters();
  const logger = new Logger({ role: "ms", sink: { write: () => {} } });
  const ms = await msStarter({ workers })(r.config, { logger, counters, now: Date.now });
  return { ms, counters, peer: { address: "127.0.0.1", port: ms.port } };
}

function record(prefix: string, rlocs: readonly [string, number][], ttl = 10): EidRecord {
  const p = parsePrefix(prefix)!;
  return {
    ttl,
    maskLen: p.len,
    action: ACTION.NO_ACTION,
    authoritative: true,
    incomplete: false,
    sigCount: 0,
    mapVersion: 0,
    eid: prefixEid(p),
    locators: rlocs.map(([a, priority]) => ({
      priority,
      weight: 100,
      mPriority: 255,
      mWeight: 0,
      local: true,
      probed: false,
      reachable: true,
      address: ipAddress(a),
    })),
  };
}

function register(
  rec: EidRecord,
  key: HmacKey,
  o: { nonce: bigint; xtrId?: bigint },
): Uint8Array {
  const base = {
    proxyReply: false,
    securityCapable: false,
    rtr: false,
    eidNotify: false,
    useTtlForTimeout: false,
    mergeRequest: false,
    mobileNode: false,
    wantMapNotify: true,
    nonce: o.nonce,
    keyId: key.keyId,
    authData: new Uint8Array(0),
    records: [rec],
  };
  return emitSignedMapRegister(
    o.xtrId !== undefined
      ? { ...base, xtrIdPresent: true, xtrId: o.xtrId, siteId: 0n }
      : { ...base, xtrIdPresent: false },
    key,
  );
}

const XTR_ID = 0x0123456789abcdef0123456789abcdefn;
const SITE_ID = 9n;
const ETR_KEY = new HmacKey(1, "etr-key");
const ITR_KEY = new HmacKey(2, "itr-key");

/** A subscribing Map-Request (RFC 9437) for `eid`, in an ECM from `itr` as an ITR sends it. */
function subscribe(
  itr: Host,
  ms: Peer,
  eid: string,
  o: { nonce: bigint; xtrId?: bigint; withdraw?: boolean; notify?: boolean },
): void {
  const m: MapRequest = {
    authoritative: false,
    probe: false,
    smr: false,
    pitr: false,
    smrInvoked: false,
    localXtr: false,
    dontMapReply: false,
    nonce: o.nonce,
    sourceEid: NO_ADDRESS,
    itrRlocs: [o.withdraw === true ? NO_ADDRESS : ipAddress(itr.peer.address)],
    records: [{
      maskLen: 32,
      eid: ipAddress(eid),
      ...(o.notify === false ? {} : { notify: true }),
    }],
    ...(o.xtrId !== undefined ? { xtrId: o.xtrId, siteId: SITE_ID } : {}),
  };
  itr.cp.send(
    emitEcm({
      security: false,
      ddtOriginated: false,
      forRtr: false,
      rtrRelayed: false,
      inner: { src: itr.peer.address, dst: eid, srcPort: itr.peer.port, dstPort: 4342, ttl: 64 },
      payload: emitMapRequest(m),
    }),
    ms,
  );
}

function ack(n: MapNotify, key: HmacKey): Uint8Array {
  return emitSignedMapNotify({ ...n, ack: true }, key);
}

function rlocsOf(n: MapNotify): string[] {
  return n.records[0]!.locators.map((l) => (l.address as { ip: string }).ip);
}

for (const workers of [0, 1]) {
  Deno.test(`ms (${workers} answering Workers): a subscriber gets the mapping at once, then a signed Map-Notify on every change, resent until acknowledged`, async () => {
    const t = await startTestMs(workers);
    const etr = await Host.open("127.0.0.2");
    const itr = await Host.open("127.0.0.1");
    const pub = (result: string) => t.counters.get("oor_map_server_publications_total", { result });
    try {
      // The ETR of 10.1.0.0/24 and the ITR's own site (with its xTR-ID) register.
      etr.cp.send(
        register(record("10.1.0.0/24", [["192.0.2.1", 1]]), ETR_KEY, { nonce: 1n }),
        t.peer,
      );
      await etr.next("map-notify");
      itr.cp.send(
        register(record("10.9.0.0/24", [["192.0.2.9", 1]]), ITR_KEY, { nonce: 2n, xtrId: XTR_ID }),
        t.peer,
      );
      await itr.next("map-notify");

      // Subscribing: a Map-Reply as usual, and a Map-Notify under the request's nonce.
      subscribe(itr, t.peer, "10.1.0.5", { nonce: 0x500n, xtrId: XTR_ID });
      const reply = await itr.next("map-reply");
      assert.equal(reply.message.msg.nonce, 0x500n);
      let n = await itr.next("map-notify");
      assert.equal(n.message.msg.nonce, 0x500n);
      assert.equal(n.message.msg.xtrIdPresent, true);
      assert.equal(n.message.msg.xtrId, XTR_ID);
      assert.equal(n.message.msg.siteId, SITE_ID);
      assert.deepEqual(rlocsOf(n.message.msg), ["192.0.2.1"]);
      assert.equal(n.message.msg.keyId, 2);
      // Signed with the key of the subscriber's own site, not the ETR's.
      assert.ok(verifyAuthenticated(new Uint8Array(n.bytes), ITR_KEY));
      assert.ok(!verifyAuthenticated(new Uint8Array(n.bytes), new HmacKey(2, "etr-key")));
      itr.cp.send(ack(n.message.msg, ITR_KEY), t.peer);
      await until(() => pub("acknowledged") === 1, "the first acknowledgement");
      // The same ack again (late): ours, not the registrar's, and no warning counted.
      itr.cp.send(ack(n.message.msg, ITR_KEY), t.peer);
      await until(() => pub("late-ack") === 1, "the late acknowledgement");
      for (const result of ["auth", "unmatched", "matched"]) {
        assert.equal(t.counters.get("oor_map_server_map_notify_acks_total", { result }), 0, result);
      }

      // A refresh that changes nothing publishes nothing.
      etr.cp.send(
        register(record("10.1.0.0/24", [["192.0.2.1", 1]]), ETR_KEY, { nonce: 3n }),
        t.peer,
      );
      await etr.next("map-notify");
      assert.equal(itr.count("map-notify"), 0);
      assert.equal(pub("sent"), 1);

      // The ETR moves: published under the next nonce; not acknowledged, so resent a second later.
      etr.cp.send(
        register(record("10.1.0.0/24", [["192.0.2.2", 1]]), ETR_KEY, { nonce: 4n }),
        t.peer,
      );
      n = await itr.next("map-notify");
      assert.equal(n.message.msg.nonce, 0x501n);
      assert.deepEqual(rlocsOf(n.message.msg), ["192.0.2.2"]);
      const again = await itr.next("map-notify", 3000);
      assert.equal(again.message.msg.nonce, 0x501n);
      assert.equal(pub("resent") >= 1, true);
      // An ack under another key is refused; the right one ends the resends.
      itr.cp.send(ack(n.message.msg, new HmacKey(2, "wrong")), t.peer);
      await until(
        () => t.counters.get("oor_map_server_map_notify_acks_total", { result: "auth" }) === 1,
        "the refused ack",
      );
      itr.cp.send(ack(n.message.msg, ITR_KEY), t.peer);
      await until(() => pub("acknowledged") === 2, "the second acknowledgement");

      // A priority change is a change.
      etr.cp.send(
        register(record("10.1.0.0/24", [["192.0.2.2", 1], ["192.0.2.3", 2]]), ETR_KEY, {
          nonce: 5n,
        }),
        t.peer,
      );
      n = await itr.next("map-notify");
      assert.equal(n.message.msg.nonce, 0x502n);
      assert.deepEqual(rlocsOf(n.message.msg), ["192.0.2.2", "192.0.2.3"]);
      itr.cp.send(ack(n.message.msg, ITR_KEY), t.peer);

      // A withdrawal: the record with no locators and TTL 0.
      etr.cp.send(
        register(record("10.1.0.0/24", [["192.0.2.2", 1]], 0), ETR_KEY, { nonce: 6n }),
        t.peer,
      );
      n = await itr.next("map-notify");
      assert.equal(n.message.msg.nonce, 0x503n);
      assert.equal(n.message.msg.records[0]!.ttl, 0);
      assert.deepEqual(n.message.msg.records[0]!.locators, []);
      // For the prefix that was registered, not the one asked for.
      assert.equal(n.message.msg.records[0]!.maskLen, 24);
      itr.cp.send(ack(n.message.msg, ITR_KEY), t.peer);
      await until(() => pub("acknowledged") === 4, "four acknowledgements");

      const subs = t.ms.subscriptions();
      assert.equal(subs.length, 1);
      assert.deepEqual(
        { ...subs[0]!, subscribedAt: 0, expiresAt: 0 },
        {
          prefix: "10.1.0.5/32",
          iid: 0,
          xtrId: "0123456789abcdef0123456789abcdef",
          siteId: "0000000000000009",
          itrRlocs: ["127.0.0.1"],
          notify: `127.0.0.1:${itr.peer.port}`,
          site: "10.9.0.0/16",
          published: 4,
          acknowledged: 4,
          pending: false,
          subscribedAt: 0,
          expiresAt: 0,
        },
      );
      assert.equal(t.counters.get("oor_map_server_subscriptions"), 1);
      // The status source shows them beside the sites.
      const sites = await t.ms.statusSource().sites!();
      assert.equal(sites.subscriptions?.length, 1);

      // Unsubscribing: ITR-RLOC AFI 0.
      subscribe(itr, t.peer, "10.1.0.5", { nonce: 0x600n, xtrId: XTR_ID, withdraw: true });
      await until(() => t.ms.subscriptions().length === 0, "the withdrawal");
    } finally {
      etr.close();
      itr.close();
      await t.ms.close();
    }
  });
}

Deno.test("ms: a subscription from an xTR that registered nothing here, or without an xTR-ID, is answered but not kept", async () => {
  const t = await startTestMs(0);
  const etr = await Host.open("127.0.0.2");
  const itr = await Host.open("127.0.0.1");
  const req = (result: string) =>
    t.counters.get("oor_map_server_subscribe_requests_total", { result });
  try {
    etr.cp.send(
      register(record("10.1.0.0/24", [["192.0.2.1", 1]]), ETR_KEY, { nonce: 1n }),
      t.peer,
    );
    await etr.next("map-notify");
    subscribe(itr, t.peer, "10.1.0.5", { nonce: 0x700n, xtrId: XTR_ID });
    assert.equal((await itr.next("map-reply")).message.msg.nonce, 0x700n);
    subscribe(itr, t.peer, "10.1.0.5", { nonce: 0x701n });
    assert.equal((await itr.next("map-reply")).message.msg.nonce, 0x701n);
    assert.equal(req("unknown-xtr"), 1);
    assert.equal(req("no-xtr-id"), 1);
    assert.equal(itr.count("map-notify"), 0);
    assert.deepEqual(t.ms.subscriptions(), []);
  } finally {
    etr.close();
    itr.close();
    await t.ms.close();
  }
});

Deno.test("ms: a subscriber without an xTR-ID registration is known by its ITR-RLOC as a registration's source, and told when the prefix registers", async () => {
  const t = await startTestMs(0);
  const etr = await Host.open("127.0.0.2");
  const itr = await Host.open("127.0.0.1");
  try {
    // The ITR registers its own site without the I bit: found by source address.
    itr.cp.send(
      register(record("10.9.0.0/24", [["192.0.2.9", 1]]), ITR_KEY, { nonce: 2n }),
      t.peer,
    );
    await itr.next("map-notify");
    // Nothing registered for 10.1.0.5 yet: a negative reply, the subscription kept.
    subscribe(itr, t.peer, "10.1.0.5", { nonce: 0x800n, xtrId: XTR_ID });
    await itr.next("map-reply");
    await until(() => t.ms.subscriptions().length === 1, "the subscription");
    assert.equal(itr.count("map-notify"), 0);
    // It registers: the subscriber hears of it.
    etr.cp.send(
      register(record("10.1.0.0/24", [["192.0.2.1", 1]]), ETR_KEY, { nonce: 1n }),
      t.peer,
    );
    const n = await itr.next("map-notify");
    assert.equal(n.message.msg.nonce, 0x801n);
    assert.deepEqual(rlocsOf(n.message.msg), ["192.0.2.1"]);
    assert.ok(verifyAuthenticated(new Uint8Array(n.bytes), ITR_KEY));
    itr.cp.send(ack(n.message.msg, ITR_KEY), t.peer);
    await until(
      () => t.counters.get("oor_map_server_publications_total", { result: "acknowledged" }) === 1,
      "the acknowledgement",
    );
  } finally {
    etr.close();
    itr.close();
    await t.ms.close();
  }
});
