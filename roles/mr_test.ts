import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import dgram from "node:dgram";
import { parseConfig } from "../config/mod.ts";
import { ControlPlane, type Received } from "../core/control.ts";
import { Counters } from "../core/counters.ts";
import { Logger } from "../core/log.ts";
import { formatPrefix, parsePrefix, prefixEid } from "../core/prefix.ts";
import type { RoleDeps } from "../core/role.ts";
import { referralLocators } from "./ddt.ts";
import { MAX_MS_PEERS, type MrHandle, mrStarter } from "./mr.ts";
import { startMs } from "./ms.ts";
import { type Address, addressToString, ipAddress } from "../wire/address.ts";
import { ACTION, type EidRecord, REFERRAL_ACTION } from "../wire/eid_record.ts";
import type { MapReply } from "../wire/map_reply.ts";
import { emitMapRequest, type MapRequest } from "../wire/map_request.ts";

// Every process of a test binds its own loopback address and one shared
// port, as LISP nodes all use 4342: referrals name addresses, not ports.
const ITR = "127.0.0.50";
const MR = "127.0.0.60";
const ROOT = "127.0.0.61";
const ROOT2 = "127.0.0.62";
const CHILD = "127.0.0.63";
const MS1 = "127.0.0.71";
const MS2 = "127.0.0.72";
const DEAD = "127.0.0.99";
const DEAD2 = "127.0.0.97";

async function freePort(): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function deps(): RoleDeps {
  return {
    logger: new Logger({ role: "test", level: "debug", sink: { write: () => {} } }),
    counters: new Counters(),
    now: Date.now,
  };
}

function ddtMrConfig(port: number, roots: string[], retries = 1) {
  const r = parseConfig(
    `control-address = "${MR}"\ncontrol-port = ${port}\nmap-request-retries = ${retries}\n` +
      `ddt-root-addresses = [${roots.map((a) => `"${a}"`).join(", ")}]\n`,
    { role: "ddt-mr" },
  );
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  return r.config;
}

/** A referral record for `prefix` (`"10.0.0.0/8"`), optionally in an instance. */
function referral(
  action: number,
  prefix: string,
  ttl: number,
  rlocs: string[] = [],
  iid = 0,
): EidRecord {
  const p = parsePrefix(prefix, iid)!;
  return {
    ttl,
    maskLen: p.len,
    action,
    authoritative: true,
    incomplete: action === REFERRAL_ACTION.NOT_AUTHORITATIVE,
    sigCount: 0,
    mapVersion: 0,
    eid: prefixEid(p),
    locators: referralLocators(rlocs),
  };
}

type Answer = (req: MapRequest, r: Received) => EidRecord | undefined;

interface Fake {
  readonly cp: ControlPlane;
  /** The DDT Map-Requests (ECMs with the D bit) it got. */
  readonly seen: Received[];
  /** The other Map-Requests it got (forwarded by a map-resolver). */
  readonly plain: Received[];
}

/**
 * A fake DDT node: answers each DDT Map-Request with `answer`'s record
 * (none: silent), and hands other Map-Requests to `onPlain`.
 */
async function fakeNode(
  address: string,
  port: number,
  answer: Answer,
  onPlain: (req: MapRequest, r: Received, cp: ControlPlane) => void = () => {},
): Promise<Fake> {
  const d = deps();
  const cp = await ControlPlane.open({ ...d, address, port });
  const seen: Received[] = [];
  const plain: Received[] = [];
  cp.on("map-request", (m, r) => {
    if (r.ecm?.ddtOriginated !== true) {
      plain.push(r);
      return onPlain(m, r, cp);
    }
    seen.push(r);
    const rec = answer(m, r);
    if (rec === undefined) return;
    cp.send({
      type: "map-referral",
      msg: { nonce: m.nonce, records: [{ record: rec, signatures: [] }] },
    }, r.from);
  });
  return { cp, seen, plain };
}

/** A positive Map-Reply record for `prefix` with one locator. */
function mapping(prefix: string, rloc: string, iid = 0): EidRecord {
  const p = parsePrefix(prefix, iid)!;
  return {
    ttl: 10,
    maskLen: p.len,
    action: ACTION.NO_ACTION,
    authoritative: false,
    incomplete: false,
    sigCount: 0,
    mapVersion: 0,
    eid: prefixEid(p),
    locators: referralLocators([rloc]),
  };
}

/** A proxy Map-Reply for `prefix` to the request's first ITR-RLOC, at the inner source port. */
function proxyReply(cp: ControlPlane, req: MapRequest, r: Received, prefix: string, rloc: string) {
  cp.send({
    type: "map-reply",
    msg: {
      probe: false,
      echoNonce: false,
      security: false,
      nonce: req.nonce,
      records: [mapping(prefix, rloc, prefixIid(req))],
    },
  }, { address: addressToString(req.itrRlocs[0]!), port: r.ecm!.inner.srcPort });
}

/**
 * A fake DDT Map-Server (RFC 8111 §7.2): a DDT Map-Request gets MS-ACK and
 * a proxy Map-Reply for `prefix` to its ITR-RLOC at the inner source port
 * (the ddt-mr's own: it asked with its own nonce); a forwarded request
 * (the ITR's, after MS-ACK) gets the proxy Map-Reply only.
 */
function fakeMs(address: string, port: number, prefix: string, rloc: string): Promise<Fake> {
  let cp: ControlPlane | undefined;
  const node = fakeNode(
    address,
    port,
    (req, r) => {
      proxyReply(cp!, req, r, prefix, rloc);
      return referral(REFERRAL_ACTION.MS_ACK, prefix, 1440, [address], prefixIid(req));
    },
    (req, r, c) => proxyReply(c, req, r, prefix, rloc),
  );
  return node.then((n) => {
    cp = n.cp;
    return n;
  });
}

function prefixIid(req: MapRequest): number {
  const e = req.records[0]!.eid;
  return e.kind === "iid" ? e.iid : 0;
}

function eid(ip: string, iid = 0): Address {
  const a = ipAddress(ip);
  return iid === 0 ? a : { kind: "iid", iid, iidMaskLen: 32, address: a };
}

let nextNonce = 0x5000n;

/** The test ITR: sends an ECM Map-Request to the MR and waits for the Map-Reply. */
async function ask(
  itr: ControlPlane,
  port: number,
  ip: string,
  iid = 0,
  timeoutMs = 3000,
  maskLen = 32,
): Promise<MapReply> {
  const nonce = nextNonce++;
  const req: MapRequest = {
    authoritative: false,
    probe: false,
    smr: false,
    pitr: false,
    smrInvoked: false,
    localXtr: false,
    dontMapReply: false,
    nonce,
    sourceEid: { kind: "none" },
    itrRlocs: [ipAddress(ITR)],
    records: [{ maskLen, eid: eid(ip, iid) }],
  };
  const bytes = emitMapRequest(req);
  const r = await itr.request(
    nonce,
    () =>
      itr.sendEcm(bytes, { src: ITR, dst: ip, srcPort: itr.port, dstPort: 4342 }, {
        address: MR,
        port,
      }),
    `Map-Request for ${ip}`,
    { retries: 0, timeoutMs, expect: ["map-reply"] },
  );
  if (r.message.type !== "map-reply") throw new Error("not a map-reply");
  strictEqual(r.message.msg.nonce, nonce);
  return r.message.msg;
}

/** Starts what a test needs and closes it all afterwards. */
async function withNet(
  fn: (
    net: { port: number; itr: ControlPlane; closeLater: (c: { close(): unknown }) => void },
  ) => Promise<void>,
): Promise<void> {
  const port = await freePort();
  const toClose: { close(): unknown }[] = [];
  const itr = await ControlPlane.open({ ...deps(), address: ITR, port: 0 });
  toClose.push(itr);
  try {
    await fn({ port, itr, closeLater: (c) => toClose.push(c) });
  } finally {
    for (const c of toClose.reverse()) await c.close();
  }
}

async function startDdtMr(
  port: number,
  roots: string[],
  d: RoleDeps,
  retries = 1,
  timeoutMs = 300,
): Promise<MrHandle> {
  return await mrStarter({ referralTimeoutMs: timeoutMs })(ddtMrConfig(port, roots, retries), d);
}

/** Waits until the MR has finished with every request (the ITR may hear back first). */
async function settled(mr: MrHandle): Promise<void> {
  for (let i = 0; i < 200 && mr.pendingCount > 0; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  strictEqual(mr.pendingCount, 0);
}

function negative(reply: MapReply) {
  strictEqual(reply.records.length, 1);
  const r = reply.records[0]!;
  strictEqual(r.locators.length, 0, "a negative Map-Reply has no locators");
  return { prefix: `${addressToString(r.eid)}/${r.maskLen}`, ttl: r.ttl, action: r.action };
}

// ---------------------------------------------------------------------------

Deno.test("mr without DDT roots forwards the ITR's ECM to a map-server, the next one on a repeat", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const ms1 = await fakeMs(MS1, port, "10.1.0.0/16", "192.0.2.1");
    const ms2 = await fakeMs(MS2, port, "10.1.0.0/16", "192.0.2.2");
    closeLater(ms1.cp);
    closeLater(ms2.cp);
    const r = parseConfig(
      `control-address = "${MR}"\ncontrol-port = ${port}\n` +
        `[[map-server]]\naddress = "${MS1}"\n[[map-server]]\naddress = "${MS2}"\n`,
      { role: "mr" },
    );
    if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
    const d = deps();
    const mr = await mrStarter()(r.config, d);
    closeLater(mr);
    strictEqual(mr.ddt, false);

    const reply = await ask(itr, port, "10.1.2.3");
    deepStrictEqual(reply.records[0]!.locators.map((l) => addressToString(l.address)), [
      "192.0.2.1",
    ]);
    strictEqual(ms1.plain.length, 1);
    const fwd = ms1.plain[0]!;
    strictEqual(fwd.from.address, MR);
    strictEqual(fwd.ecm?.ddtOriginated, false, "no D bit when forwarding");
    strictEqual(fwd.ecm?.inner.src, ITR, "the ITR's inner header is kept");
    strictEqual(fwd.ecm?.inner.srcPort, itr.port);
    strictEqual(fwd.ecm?.inner.ttl, 63, "one hop less than the ITR's 64");

    // The same ITR asking again for the same EID (its retransmission) goes to the next one.
    const again = await ask(itr, port, "10.1.2.3");
    deepStrictEqual(again.records[0]!.locators.map((l) => addressToString(l.address)), [
      "192.0.2.2",
    ]);
    strictEqual(ms2.plain.length, 1);
    strictEqual(d.counters.get("oor_mr_forwarded_total"), 2);
    strictEqual(d.counters.get("oor_mr_requests_total", { mode: "forward" }), 2);
  });
});

/** Starts an mr (no DDT roots) on `address` forwarding to `servers`. */
async function startForwardMr(
  port: number,
  servers: string[],
  d: RoleDeps,
  address = MR,
  workers?: number,
): Promise<MrHandle> {
  const r = parseConfig(
    `control-address = "${address}"\ncontrol-port = ${port}\ncontrol-rate-limit = 0\n` +
      servers.map((a) => `[[map-server]]\naddress = "${a}"\n`).join(""),
    { role: "mr" },
  );
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  return await mrStarter(workers === undefined ? {} : { workers })(r.config, d);
}

/** Sends an ITR's ECM Map-Request to the MR with inner TTL `ttl`, not waiting for an answer. */
function sendRequest(itr: ControlPlane, port: number, ip: string, nonce: bigint, ttl = 64): void {
  const req: MapRequest = {
    authoritative: false,
    probe: false,
    smr: false,
    pitr: false,
    smrInvoked: false,
    localXtr: false,
    dontMapReply: false,
    nonce,
    sourceEid: { kind: "none" },
    itrRlocs: [ipAddress(ITR)],
    records: [{ maskLen: 32, eid: ipAddress(ip) }],
  };
  itr.sendEcm(
    emitMapRequest(req),
    { src: ITR, dst: ip, srcPort: itr.port, dstPort: 4342, ttl },
    { address: MR, port },
  );
}

/** Waits until `cond()` holds, up to a second. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  ok(cond(), what);
}

Deno.test("mr never forwards to itself: a [[map-server]] naming the mr is skipped", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const ms1 = await fakeMs(MS1, port, "10.1.0.0/16", "192.0.2.1");
    closeLater(ms1.cp);
    // Its only map-server is itself: the request is dropped, not sent round.
    const d = deps();
    const mr = await startForwardMr(port, [MR], d);
    sendRequest(itr, port, "10.1.2.3", 0x700n);
    const c = d.counters;
    await until(() => c.get("oor_mr_dropped_total", { reason: "own-address" }) === 1, "a drop");
    await new Promise((r) => setTimeout(r, 50));
    strictEqual(c.get("oor_mr_forwarded_total"), 0);
    strictEqual(
      c.get("oor_control_messages_in_total", { type: "ecm-map-request" }),
      1,
      "the request came in once: nothing went round",
    );
    await mr.close();
  });
  // Itself and another: every request goes to the other.
  await withNet(async ({ port, itr, closeLater }) => {
    const ms1 = await fakeMs(MS1, port, "10.1.0.0/16", "192.0.2.1");
    closeLater(ms1.cp);
    const d2 = deps();
    const mr2 = await startForwardMr(port, [MR, MS1], d2);
    closeLater(mr2);
    await ask(itr, port, "10.1.2.3");
    await ask(itr, port, "10.1.2.3");
    strictEqual(ms1.plain.length, 2);
    strictEqual(d2.counters.get("oor_mr_forwarded_total"), 2);
    strictEqual(d2.counters.get("oor_control_messages_in_total", { type: "ecm-map-request" }), 2);
  });
});

Deno.test("mr forwards with the inner TTL one less, and drops TTL 1 and a copy within the window", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const ms1 = await fakeMs(MS1, port, "10.1.0.0/16", "192.0.2.1");
    closeLater(ms1.cp);
    const d = deps();
    const mr = await startForwardMr(port, [MS1], d);
    closeLater(mr);
    const c = d.counters;
    sendRequest(itr, port, "10.1.2.3", 0x800n, 10);
    await until(() => ms1.plain.length === 1, "a forward");
    strictEqual(ms1.plain[0]!.ecm?.inner.ttl, 9);
    sendRequest(itr, port, "10.1.2.3", 0x800n, 10);
    await until(() => c.get("oor_mr_dropped_total", { reason: "duplicate" }) === 1, "a copy");
    sendRequest(itr, port, "10.1.2.3", 0x801n, 1);
    sendRequest(itr, port, "10.1.2.3", 0x802n, 0);
    await until(() => c.get("oor_mr_dropped_total", { reason: "ttl-expired" }) === 2, "TTL drops");
    strictEqual(ms1.plain.length, 1);
    strictEqual(c.get("oor_mr_forwarded_total"), 1);
  });
});

Deno.test("mr forwards on Workers, one per nonce's share, as the main thread alone does", async () => {
  for (const workers of [2, 0]) {
    await withNet(async ({ port, itr, closeLater }) => {
      const ms1 = await fakeMs(MS1, port, "10.1.0.0/16", "192.0.2.1");
      closeLater(ms1.cp);
      const d = deps();
      const mr = await startForwardMr(port, [MS1], d, MR, workers);
      closeLater(mr);
      const details = (await mr.statusSource().status!()).details as Record<string, unknown>;
      strictEqual(details["forwarding workers"], workers);
      for (let n = 0; n < 40; n++) sendRequest(itr, port, "10.1.2.3", 0xb00n + BigInt(n), 20);
      await until(() => ms1.plain.length === 40, `40 forwards (${workers} Workers)`);
      for (const r of ms1.plain) strictEqual(r.ecm?.inner.ttl, 19);
      const nonces = new Set(
        ms1.plain.map((r) => r.message.type === "map-request" && r.message.msg.nonce),
      );
      strictEqual(nonces.size, 40);
      const c = d.counters;
      strictEqual(c.get("oor_mr_forwarded_total"), 40);
      strictEqual(c.get("oor_mr_requests_total", { mode: "forward" }), 40);
      strictEqual(c.get("oor_control_messages_in_total", { type: "ecm-map-request" }), 40);
      // The copies, whichever Worker each reaches, are dropped.
      for (let n = 0; n < 40; n++) sendRequest(itr, port, "10.1.2.3", 0xb00n + BigInt(n), 20);
      await until(() => c.get("oor_mr_dropped_total", { reason: "duplicate" }) === 40, "40 copies");
      strictEqual(ms1.plain.length, 40);
      // Something only the main thread handles still is handled (a Map-Reply: counted, ignored).
      itr.send(
        {
          type: "map-reply",
          msg: {
            probe: false,
            echoNonce: false,
            security: false,
            nonce: 5n,
            records: [],
          },
        },
        { address: MR, port },
      );
      await until(() => c.get("oor_mr_map_replies_ignored_total") === 1, "the Map-Reply");
    });
  }
});

Deno.test("two mrs naming each other as map-server: the request goes round once, then is dropped", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const d = deps();
    closeLater(await startForwardMr(port, [MS1], d));
    const d2 = deps();
    closeLater(await startForwardMr(port, [MR], d2, MS1));
    sendRequest(itr, port, "10.1.2.3", 0xa00n);
    const c = d.counters;
    await until(() => c.get("oor_mr_dropped_total", { reason: "duplicate" }) === 1, "a copy");
    await new Promise((r) => setTimeout(r, 50));
    strictEqual(c.get("oor_mr_forwarded_total"), 1);
    strictEqual(d2.counters.get("oor_mr_forwarded_total"), 1);
    strictEqual(c.get("oor_control_messages_in_total", { type: "ecm-map-request" }), 2);
  });
});

Deno.test("ddt-mr drops an ITR's request whose inner TTL has no hop left", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const root = await fakeNode(ROOT, port, () => undefined);
    closeLater(root.cp);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d);
    closeLater(mr);
    sendRequest(itr, port, "10.1.2.3", 0x900n, 1);
    const c = d.counters;
    await until(() => c.get("oor_mr_dropped_total", { reason: "ttl-expired" }) === 1, "a drop");
    strictEqual(mr.pendingCount, 0);
    strictEqual(root.seen.length, 0);
  });
});

Deno.test("ddt-mr follows NODE-REFERRAL then MS-REFERRAL; the map-server answers the ITR", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const root = await fakeNode(
      ROOT,
      port,
      () => referral(REFERRAL_ACTION.NODE_REFERRAL, "10.0.0.0/8", 1440, [CHILD]),
    );
    const child = await fakeNode(
      CHILD,
      port,
      () => referral(REFERRAL_ACTION.MS_REFERRAL, "10.1.0.0/16", 1440, [MS1]),
    );
    const ms = await fakeMs(MS1, port, "10.1.0.0/16", "192.0.2.1");
    for (const f of [root, child, ms]) closeLater(f.cp);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d);
    closeLater(mr);
    strictEqual(mr.ddt, true);

    const itrNonce = nextNonce;
    const reply = await ask(itr, port, "10.1.2.3");
    await settled(mr);
    strictEqual(reply.records[0]!.action, ACTION.NO_ACTION);
    deepStrictEqual(reply.records[0]!.locators.map((l) => addressToString(l.address)), [
      "192.0.2.1",
    ]);
    // Each DDT node got a DDT Map-Request of the MR's own: D bit, a fresh
    // nonce (never the ITR's, which whoever sent the request knows), the MR
    // as ITR-RLOC and inner source, the ITR's inner TTL less one.
    const nonces = new Set<bigint>();
    for (const f of [root, child]) {
      strictEqual(f.seen.length, 1);
      const r = f.seen[0]!;
      strictEqual(r.ecm?.ddtOriginated, true);
      strictEqual(r.from.address, MR);
      strictEqual(r.ecm?.inner.src, MR);
      strictEqual(r.ecm?.inner.srcPort, port);
      strictEqual(r.ecm?.inner.ttl, 63);
      if (r.message.type !== "map-request") throw new Error("unreachable");
      deepStrictEqual(r.message.msg.itrRlocs, [ipAddress(MR)]);
      ok(r.message.msg.nonce !== itrNonce, "not the ITR's nonce");
      nonces.add(r.message.msg.nonce);
    }
    strictEqual(nonces.size, 2, "a fresh nonce per query");
    // The map-server of the MS-REFERRAL got the ITR's own request with the
    // D bit (RFC 8111 §7.3.1), and answered the ITR with the ITR's nonce
    // (ask() checks it): nothing more after its MS-ACK.
    strictEqual(ms.seen.length, 1);
    itrsOwn(ms.seen[0]!, itrNonce, itr.port);
    strictEqual(ms.plain.length, 0);
    // The referrals are cached: the next request starts at the map-server.
    const cache = mr.referralCache().map((e) => [formatPrefix(e.prefix), e.action, e.rlocs]);
    deepStrictEqual(cache.sort(), [
      ["10.0.0.0/8", REFERRAL_ACTION.NODE_REFERRAL, [CHILD]],
      ["10.1.0.0/16", REFERRAL_ACTION.MS_REFERRAL, [MS1]],
    ]);
    await ask(itr, port, "10.1.9.9");
    await settled(mr);
    strictEqual(root.seen.length, 1);
    strictEqual(child.seen.length, 1);
    strictEqual(ms.seen.length, 2);
    strictEqual(ms.plain.length, 0);
    const c = d.counters;
    strictEqual(c.get("oor_mr_referrals_total", { action: "node-referral" }), 1);
    strictEqual(c.get("oor_mr_referrals_total", { action: "ms-referral" }), 1);
    strictEqual(c.get("oor_mr_referrals_total", { action: "ms-ack" }), 2);
    strictEqual(c.get("oor_mr_resolutions_total", { result: "succeeded", reason: "ms-ack" }), 2);
    strictEqual(c.get("oor_mr_referral_cache_hits_total", { kind: "referral" }), 1);
    strictEqual(c.get("oor_mr_referral_cache_entries"), 2);
    strictEqual(c.get("oor_mr_ddt_requests_sent_total"), 4);
    strictEqual(c.get("oor_mr_forwarded_total"), 2);
    strictEqual(mr.pendingCount, 0);
    // The map-server answered the ITR, not the MR.
    await new Promise((r) => setTimeout(r, 50));
    strictEqual(c.get("oor_mr_map_replies_ignored_total"), 0);
    strictEqual(c.get("oor_control_dropped_total", { reason: "unknown-nonce" }), 0);
  });
});

Deno.test("ddt-mr fails over to the next referral RLOC when one does not answer", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    // The first root and the first referred map-server are dead.
    const root = await fakeNode(
      ROOT,
      port,
      () => referral(REFERRAL_ACTION.MS_REFERRAL, "10.1.0.0/16", 1440, [DEAD2, MS1]),
    );
    const ms = await fakeMs(MS1, port, "10.1.0.0/16", "192.0.2.1");
    closeLater(root.cp);
    closeLater(ms.cp);
    const d = deps();
    const mr = await startDdtMr(port, [DEAD, ROOT], d);
    closeLater(mr);
    const t0 = Date.now();
    const reply = await ask(itr, port, "10.1.2.3");
    ok(Date.now() - t0 >= 500, "waited out two timeouts (dead root, dead map-server)");
    strictEqual(reply.records[0]!.locators.length, 1);
    await settled(mr);
    strictEqual(d.counters.get("oor_mr_referral_timeouts_total"), 2);
    strictEqual(
      d.counters.get("oor_mr_resolutions_total", { result: "succeeded", reason: "ms-ack" }),
      1,
    );
    // The cached referral lists the dead RLOC first, but it is now tried last.
    deepStrictEqual(mr.referralCache().map((e) => e.rlocs), [[DEAD2, MS1]]);
    await ask(itr, port, "10.1.7.7");
    await settled(mr);
    strictEqual(d.counters.get("oor_mr_referral_timeouts_total"), 2);
    strictEqual(ms.seen.length, 2);
  });
});

Deno.test("ddt-mr answers a negative Map-Reply when every referral RLOC is dead", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const d = deps();
    const mr = await startDdtMr(port, [DEAD, "127.0.0.98"], d, 1, 100);
    closeLater(mr);
    const reply = await ask(itr, port, "10.1.2.3", 0, 5000);
    deepStrictEqual(negative(reply), {
      prefix: "10.1.2.3/32",
      ttl: 1,
      action: ACTION.SEND_MAP_REQUEST,
    });
    // Two RLOCs, map-request-retries 1: four attempts.
    strictEqual(d.counters.get("oor_mr_referral_timeouts_total"), 4);
    strictEqual(
      d.counters.get("oor_mr_resolutions_total", { result: "failed", reason: "no-response" }),
      1,
    );
  });
});

Deno.test("ddt-mr restarts from the roots when a cached referral's nodes are dead", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    let first = true;
    const root = await fakeNode(ROOT, port, () => {
      // First answer refers to a node that then dies; later ones to the live map-server.
      const rlocs = first ? [CHILD] : [MS1];
      first = false;
      return referral(REFERRAL_ACTION.MS_REFERRAL, "10.1.0.0/16", 1440, rlocs);
    });
    const child = await fakeMs(CHILD, port, "10.1.0.0/16", "192.0.2.9");
    const ms = await fakeMs(MS1, port, "10.1.0.0/16", "192.0.2.1");
    closeLater(root.cp);
    closeLater(ms.cp);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d, 0, 200);
    closeLater(mr);
    await ask(itr, port, "10.1.2.3");
    await settled(mr);
    child.cp.close();
    const reply = await ask(itr, port, "10.1.2.4");
    deepStrictEqual(reply.records[0]!.locators.map((l) => addressToString(l.address)), [
      "192.0.2.1",
    ]);
    await settled(mr);
    strictEqual(d.counters.get("oor_mr_root_restarts_total"), 1);
    strictEqual(root.seen.length, 2);
    deepStrictEqual(mr.referralCache().map((e) => e.rlocs), [[MS1]]);
  });
});

Deno.test("ddt-mr detects a referral that is not more specific than the last as a loop", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const root = await fakeNode(
      ROOT,
      port,
      () => referral(REFERRAL_ACTION.NODE_REFERRAL, "10.0.0.0/8", 1440, [CHILD]),
    );
    const child = await fakeNode(
      CHILD,
      port,
      () => referral(REFERRAL_ACTION.NODE_REFERRAL, "10.0.0.0/8", 1440, [ROOT]),
    );
    closeLater(root.cp);
    closeLater(child.cp);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d);
    closeLater(mr);
    const reply = await ask(itr, port, "10.1.2.3");
    deepStrictEqual(negative(reply), {
      prefix: "10.1.2.3/32",
      ttl: 1,
      action: ACTION.SEND_MAP_REQUEST,
    });
    strictEqual(d.counters.get("oor_mr_loops_total"), 1);
    strictEqual(root.seen.length, 1);
    strictEqual(child.seen.length, 1);
  });
});

Deno.test("ddt-mr detects a node that refers the same request twice as a loop", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    // Root -> child (/16) -> root again (/24): more specific each time, but
    // the root has referred this request already.
    let rootCalls = 0;
    const root = await fakeNode(ROOT, port, () =>
      referral(
        REFERRAL_ACTION.NODE_REFERRAL,
        rootCalls++ === 0 ? "10.0.0.0/8" : "10.1.2.0/24",
        1440,
        [CHILD],
      ));
    const child = await fakeNode(
      CHILD,
      port,
      () => referral(REFERRAL_ACTION.NODE_REFERRAL, "10.1.0.0/16", 1440, [ROOT]),
    );
    closeLater(root.cp);
    closeLater(child.cp);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d);
    closeLater(mr);
    const reply = await ask(itr, port, "10.1.2.3");
    strictEqual(negative(reply).action, ACTION.SEND_MAP_REQUEST);
    strictEqual(d.counters.get("oor_mr_loops_total"), 1);
    strictEqual(root.seen.length, 2);
  });
});

Deno.test("ddt-mr answers DELEGATION-HOLE with a negative reply for the hole, cached for its TTL", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const root = await fakeNode(
      ROOT,
      port,
      (req) => referral(REFERRAL_ACTION.DELEGATION_HOLE, "10.128.0.0/9", 15, [], prefixIid(req)),
    );
    closeLater(root.cp);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d);
    closeLater(mr);
    const reply = await ask(itr, port, "10.200.1.1", 5);
    deepStrictEqual(negative(reply), {
      prefix: "[5]10.128.0.0/9",
      ttl: 15,
      action: ACTION.NATIVELY_FORWARD,
    });
    deepStrictEqual(reply.records[0]!.eid, eid("10.128.0.0", 5), "the instance ID is kept");
    // From the cache now: the root is not asked again (and only for instance 5).
    const again = await ask(itr, port, "10.130.0.1", 5);
    deepStrictEqual(negative(again).prefix, "[5]10.128.0.0/9");
    strictEqual(root.seen.length, 1);
    strictEqual(d.counters.get("oor_mr_referral_cache_hits_total", { kind: "negative" }), 1);
    await ask(itr, port, "10.130.0.1", 6);
    strictEqual(root.seen.length, 2, "another instance is another cache entry");
    strictEqual(
      d.counters.get("oor_mr_negative_replies_total", { reason: "delegation-hole" }),
      3,
    );
  });
});

Deno.test("ddt-mr keeps a negative referral to its own prefix when the ITR asked for a wider one", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    // Like a real DDT node: a request wider than a delegation is answered
    // for its first address (a hole inside it); 10.1.0.0/16 is delegated;
    // and 10.200.0.0/16 gets a referral for a prefix that is not the EID's.
    const root = await fakeNode(ROOT, port, (req) => {
      const r = req.records[0]!;
      if (r.maskLen < 16) return referral(REFERRAL_ACTION.DELEGATION_HOLE, "10.0.0.0/16", 15);
      if (addressToString(r.eid).startsWith("10.200.")) {
        return referral(REFERRAL_ACTION.DELEGATION_HOLE, "10.0.0.0/16", 15);
      }
      return referral(REFERRAL_ACTION.MS_REFERRAL, "10.1.0.0/16", 1440, [MS1]);
    });
    const ms = await fakeMs(MS1, port, "10.1.0.0/16", "192.0.2.1");
    closeLater(root.cp);
    closeLater(ms.cp);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d);
    closeLater(mr);
    // The ITR asks for 10.0.0.0/10: the hole is 10.0.0.0/16, not the /10
    // (which holds the delegated 10.1.0.0/16).
    deepStrictEqual(negative(await ask(itr, port, "10.0.0.0", 0, 3000, 10)), {
      prefix: "10.0.0.0/16",
      ttl: 15,
      action: ACTION.NATIVELY_FORWARD,
    });
    await settled(mr);
    deepStrictEqual(mr.referralCache().map((e) => formatPrefix(e.prefix)), ["10.0.0.0/16"]);
    // So 10.1.2.3 is still resolved, not answered from a negative /10.
    const positive = await ask(itr, port, "10.1.2.3");
    deepStrictEqual(positive.records[0]!.locators.map((l) => addressToString(l.address)), [
      "192.0.2.1",
    ]);
    await settled(mr);
    // A negative referral that does not cover the EID is a bad referral:
    // a short Send-Map-Request answer, nothing cached.
    deepStrictEqual(negative(await ask(itr, port, "10.200.0.1")), {
      prefix: "10.200.0.1/32",
      ttl: 1,
      action: ACTION.SEND_MAP_REQUEST,
    });
    await settled(mr);
    strictEqual(
      d.counters.get("oor_mr_resolutions_total", { result: "failed", reason: "bad-referral" }),
      1,
    );
    deepStrictEqual(
      mr.referralCache().map((e) => formatPrefix(e.prefix)).sort(),
      ["10.0.0.0/16", "10.1.0.0/16"],
    );
  });
});

Deno.test("ddt-mr logs failed resolutions once per reason and ITR a minute, whatever the EIDs", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    // A root whose referral never covers the EID: every resolution fails.
    const root = await fakeNode(
      ROOT,
      port,
      () => referral(REFERRAL_ACTION.NODE_REFERRAL, "192.0.2.0/24", 1440, [CHILD]),
    );
    closeLater(root.cp);
    const lines: string[] = [];
    const d: RoleDeps = {
      ...deps(),
      logger: new Logger({ role: "test", sink: { write: (l) => lines.push(l) } }),
    };
    const mr = await startDdtMr(port, [ROOT], d);
    closeLater(mr);
    for (const ip of ["10.1.1.1", "10.2.2.2", "10.3.3.3"]) {
      deepStrictEqual(negative(await ask(itr, port, ip)).action, ACTION.SEND_MAP_REQUEST);
    }
    await settled(mr);
    strictEqual(
      d.counters.get("oor_mr_resolutions_total", { result: "failed", reason: "bad-referral" }),
      3,
    );
    const logged = lines.filter((l) => l.includes(" mr-resolution-failed "));
    strictEqual(logged.length, 1, lines.join(""));
    ok(logged[0]!.includes(`peer=${ITR}:`), logged[0]);
  });
});

/** A burst of forged Map-Referrals for 10.70.0.0/16, MS-REFERRAL to `to`, 1440 minutes. */
function forgeReferrals(from: ControlPlane, nonce: bigint, mrPort: number, to: string, n = 20) {
  for (let i = 0; i < n; i++) {
    from.send({
      type: "map-referral",
      msg: {
        nonce,
        records: [{
          record: referral(REFERRAL_ACTION.MS_REFERRAL, "10.70.0.0/16", 1440, [to]),
          signatures: [],
        }],
      },
    }, { address: MR, port: mrPort });
  }
}

Deno.test("ddt-mr asks with nonces of its own: referrals with the ITR's nonce from the root's address are dropped", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    // The root is slow to answer. Whoever sent the ITR's request knows its
    // nonce; with the root's address spoofed (a socket on the root's
    // address) it tries to plant 10.70.0.0/16 pointing at itself.
    const ATTACKER = "127.0.0.66";
    const root = await fakeNode(ROOT, port, () => undefined);
    const spoofer = await ControlPlane.open({ ...deps(), address: ROOT, port: 0 });
    closeLater(root.cp);
    closeLater(spoofer);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d, 0, 400);
    closeLater(mr);
    const itrNonce = nextNonce;
    const answer = ask(itr, port, "10.70.1.1");
    for (let i = 0; i < 100 && root.seen.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    strictEqual(root.seen.length, 1);
    forgeReferrals(spoofer, itrNonce, port, ATTACKER);
    const reply = await answer;
    await settled(mr);
    deepStrictEqual(mr.referralCache(), [], "nothing planted");
    strictEqual(negative(reply).action, ACTION.SEND_MAP_REQUEST, "the root never answered");
    const asked = root.seen[0]!.message;
    ok(asked.type === "map-request" && asked.msg.nonce !== itrNonce, "the query's nonce is fresh");
    strictEqual(d.counters.get("oor_mr_referrals_total", { action: "ms-referral" }), 0);
    strictEqual(d.counters.get("oor_control_dropped_total", { reason: "unknown-nonce" }), 20);
  });
});

Deno.test("ddt-mr takes a Map-Referral only from the node it asked, even with the right nonce", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    // The root lets the query's nonce out (say the path is watched), and
    // another address answers with it first.
    const ATTACKER = "127.0.0.66";
    const attacker = await ControlPlane.open({ ...deps(), address: ATTACKER, port: 0 });
    const root = await fakeNode(ROOT, port, (req) => {
      forgeReferrals(attacker, req.nonce, port, ATTACKER);
      return undefined;
    });
    closeLater(root.cp);
    closeLater(attacker);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d, 0, 400);
    closeLater(mr);
    const reply = await ask(itr, port, "10.70.1.1");
    strictEqual(negative(reply).action, ACTION.SEND_MAP_REQUEST);
    await settled(mr);
    deepStrictEqual(mr.referralCache(), [], "nothing planted");
    strictEqual(d.counters.get("oor_control_dropped_total", { reason: "wrong-source" }), 20);
  });
});

Deno.test("ddt-mr tries every map-server on MS-NOT-REGISTERED, then answers negative with TTL 1", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const root = await fakeNode(
      ROOT,
      port,
      () => referral(REFERRAL_ACTION.MS_REFERRAL, "10.3.0.0/16", 1440, [MS1, MS2]),
    );
    const notReg = () => referral(REFERRAL_ACTION.MS_NOT_REGISTERED, "10.3.0.0/16", 1, [MS1, MS2]);
    const ms1 = await fakeNode(MS1, port, notReg);
    const ms2 = await fakeNode(MS2, port, notReg);
    for (const f of [root, ms1, ms2]) closeLater(f.cp);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d);
    closeLater(mr);
    const reply = await ask(itr, port, "10.3.4.5");
    deepStrictEqual(negative(reply), {
      prefix: "10.3.0.0/16",
      ttl: 1,
      action: ACTION.NATIVELY_FORWARD,
    });
    strictEqual(ms1.seen.length, 1);
    strictEqual(ms2.seen.length, 1);
    strictEqual(d.counters.get("oor_mr_referrals_total", { action: "ms-not-registered" }), 1);
    // Asked with the ITR's own request: what comes back on the ITR's nonce is not cached.
    const entry = mr.referralCache().find((e) => e.action === REFERRAL_ACTION.MS_NOT_REGISTERED);
    strictEqual(entry, undefined);
    for (const f of [ms1, ms2]) {
      const q = f.seen[0]!.message;
      ok(q.type === "map-request" && q.msg.itrRlocs.length === 1);
      ok(q.type === "map-request" && addressToString(q.msg.itrRlocs[0]!) === ITR);
    }
  });
});

Deno.test("ddt-mr asks the peers an MS-NOT-REGISTERED lists (ddt-ms-peers): one has the registration", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    // The tree refers to ms1 alone; the ETR registered with ms2 only, which
    // ms1 names as its peer.
    const root = await fakeNode(
      ROOT,
      port,
      () => referral(REFERRAL_ACTION.MS_REFERRAL, "10.3.0.0/16", 1440, [MS1]),
    );
    const ms1 = await fakeNode(
      MS1,
      port,
      () => referral(REFERRAL_ACTION.MS_NOT_REGISTERED, "10.3.0.0/16", 1, [MS1, MS2]),
    );
    const ms2 = await fakeMs(MS2, port, "10.3.0.0/16", "192.0.2.3");
    for (const f of [root, ms1, ms2]) closeLater(f.cp);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d);
    closeLater(mr);
    const reply = await ask(itr, port, "10.3.4.5");
    deepStrictEqual(reply.records[0]!.locators.map((l) => addressToString(l.address)), [
      "192.0.2.3",
    ]);
    await settled(mr);
    // ms1: the ITR's request, then ours (a peer list on the ITR's nonce is not followed).
    strictEqual(ms1.seen.length, 2);
    ok(ms1.seen[1]!.message.type === "map-request");
    ok(ms1.seen[0]!.message.type === "map-request");
    ok(ms1.seen[1]!.message.msg.nonce !== ms1.seen[0]!.message.msg.nonce);
    strictEqual(ms2.seen.length, 1, "ms2 asked once, with our nonce");
    strictEqual(ms2.plain.length, 1, "then the ITR's request went to it after MS-ACK");
    const c = d.counters;
    strictEqual(c.get("oor_mr_map_server_peers_asked_total"), 1);
    strictEqual(c.get("oor_mr_resolutions_total", { result: "succeeded", reason: "ms-ack" }), 1);
    strictEqual(c.get("oor_mr_negative_replies_total", { reason: "ms-not-registered" }), 0);
    deepStrictEqual(
      mr.referralCache().map((e) => [formatPrefix(e.prefix), e.action]),
      [["10.3.0.0/16", REFERRAL_ACTION.MS_REFERRAL]],
      "no negative entry cached",
    );
  });
});

Deno.test("ddt-mr: peers of an MS-NOT-REGISTERED that are silent leave its answer; at most MAX_MS_PEERS asked", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const root = await fakeNode(
      ROOT,
      port,
      () => referral(REFERRAL_ACTION.MS_REFERRAL, "10.3.0.0/16", 1440, [MS1]),
    );
    // A long list of peers, none of which answers.
    const peers = Array.from({ length: MAX_MS_PEERS + 4 }, (_, i) => `127.0.0.${120 + i}`);
    const ms1 = await fakeNode(
      MS1,
      port,
      () => referral(REFERRAL_ACTION.MS_NOT_REGISTERED, "10.3.0.0/16", 1, [MS1, ...peers]),
    );
    for (const f of [root, ms1]) closeLater(f.cp);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d, 0, 100);
    closeLater(mr);
    const reply = await ask(itr, port, "10.3.4.5");
    deepStrictEqual(negative(reply), {
      prefix: "10.3.0.0/16",
      ttl: 1,
      action: ACTION.NATIVELY_FORWARD,
    });
    await settled(mr);
    const c = d.counters;
    strictEqual(c.get("oor_mr_map_server_peers_asked_total"), MAX_MS_PEERS);
    strictEqual(c.get("oor_mr_referral_timeouts_total"), MAX_MS_PEERS);
    strictEqual(c.get("oor_mr_referrals_total", { action: "ms-not-registered" }), 2);
    strictEqual(ms1.seen.length, 2);
    // The answer came on our own nonce: cached, so the next request is answered at once.
    const entry = mr.referralCache().find((e) => e.action === REFERRAL_ACTION.MS_NOT_REGISTERED);
    deepStrictEqual(entry && formatPrefix(entry.prefix), "10.3.0.0/16");
    strictEqual(negative(await ask(itr, port, "10.3.9.9")).action, ACTION.NATIVELY_FORWARD);
    strictEqual(ms1.seen.length, 2, "not asked again");
  });
});

Deno.test("ddt-mr answers NOT-AUTHORITATIVE from the roots with a negative reply for the EID", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const root = await fakeNode(
      ROOT,
      port,
      () => referral(REFERRAL_ACTION.NOT_AUTHORITATIVE, "172.16.0.1/32", 0),
    );
    const root2 = await fakeNode(
      ROOT2,
      port,
      () => referral(REFERRAL_ACTION.NOT_AUTHORITATIVE, "172.16.0.1/32", 0),
    );
    closeLater(root.cp);
    closeLater(root2.cp);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT, ROOT2], d);
    closeLater(mr);
    const reply = await ask(itr, port, "172.16.0.1");
    deepStrictEqual(negative(reply), {
      prefix: "172.16.0.1/32",
      ttl: 1,
      action: ACTION.NATIVELY_FORWARD,
    });
    strictEqual(root.seen.length + root2.seen.length, 2, "both roots were asked");
    strictEqual(mr.referralCache().length, 0, "TTL 0 and the I bit: not cached");
  });
});

Deno.test("ddt-mr drops Map-Requests that are not encapsulated", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d);
    closeLater(mr);
    const req: MapRequest = {
      authoritative: false,
      probe: false,
      smr: false,
      pitr: false,
      smrInvoked: false,
      localXtr: false,
      dontMapReply: false,
      nonce: 1n,
      sourceEid: { kind: "none" },
      itrRlocs: [ipAddress(ITR)],
      records: [{ maskLen: 32, eid: ipAddress("10.1.1.1") }],
    };
    itr.send({ type: "map-request", msg: req }, { address: MR, port });
    for (let i = 0; i < 50 && d.counters.get("oor_mr_requests_total", { mode: "ddt" }) === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    strictEqual(d.counters.get("oor_mr_dropped_total", { reason: "not-encapsulated" }), 1);
    strictEqual(mr.pendingCount, 0);
  });
});

Deno.test("ddt-mr resolves an ITR's retransmission once, as the same pending request", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    // The first root is dead, so the first resolution is still pending when
    // the ITR sends the same Map-Request (same nonce) again.
    const root = await fakeNode(
      ROOT,
      port,
      () => referral(REFERRAL_ACTION.MS_REFERRAL, "10.1.0.0/16", 1440, [MS1]),
    );
    const ms = await fakeMs(MS1, port, "10.1.0.0/16", "192.0.2.1");
    closeLater(root.cp);
    closeLater(ms.cp);
    const d = deps();
    const mr = await startDdtMr(port, [DEAD, ROOT], d, 1, 200);
    closeLater(mr);
    const nonce = 0xabcdefn;
    let sends = 0;
    const send = () => {
      sends++;
      sendRequest(itr, port, "10.1.2.3", nonce);
    };
    // Two retransmissions 30 and 60 ms after the first, all well inside the
    // dead root's 200 ms: every copy arrives while the first is pending,
    // however slow the machine (a copy sent on a timer after the answer
    // would be a new request, not a retransmission).
    const timers = [30, 60].map((ms) => setTimeout(send, ms));
    const reply = await itr.request(nonce, send, "retransmitted Map-Request", {
      retries: 0,
      timeoutMs: 5000,
      expect: ["map-reply"],
    }).finally(() => timers.forEach(clearTimeout));
    ok(sends >= 2, "the ITR retransmitted");
    strictEqual(reply.message.type, "map-reply");
    await settled(mr);
    strictEqual(d.counters.get("oor_mr_duplicates_total"), sends - 1);
    strictEqual(root.seen.length, 1);
    strictEqual(ms.seen.length, 1);
  });
});

Deno.test("mr API edits its map-servers: the next request is forwarded to the new list, and it is saved", async () => {
  const { createApp } = await import("../web/app.ts");
  const { RuntimeEdits } = await import("../web/state.ts");
  const dir = await Deno.makeTempDir();
  try {
    await withNet(async ({ port, itr, closeLater }) => {
      const ms1 = await fakeMs(MS1, port, "10.1.0.0/16", "192.0.2.1");
      const ms2 = await fakeMs(MS2, port, "10.1.0.0/16", "192.0.2.2");
      closeLater(ms1.cp);
      closeLater(ms2.cp);
      const mr = await startForwardMr(port, [MS1], deps());
      closeLater(mr);
      const edits = await RuntimeEdits.open(`${dir}/state.json`);
      const r = parseConfig(`[[map-server]]\naddress = "${MS1}"\n`, { role: "mr" });
      ok(r.ok);
      edits.apply(r.config);
      const app = createApp(edits.wrap(mr.statusSource()), {
        token: "t",
        version: "0",
        role: "mr",
        startedAt: 0,
        now: Date.now,
      });
      const send = (method: string, path: string, body?: unknown) =>
        app.request(path, {
          method,
          headers: { Authorization: "Bearer t" },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
      const first = await ask(itr, port, "10.1.2.3");
      deepStrictEqual(first.records[0]!.locators.map((l) => addressToString(l.address)), [
        "192.0.2.1",
      ]);

      const add = await send("POST", "/api/v1/map-servers", { address: MS2 });
      strictEqual(add.status, 201, await add.clone().text());
      deepStrictEqual((await add.json()).changes, [`[[map-server]] ${MS2} added`]);
      strictEqual((await send("DELETE", `/api/v1/map-servers?address=${MS1}`)).status, 200);
      const next = await ask(itr, port, "10.1.9.9");
      deepStrictEqual(next.records[0]!.locators.map((l) => addressToString(l.address)), [
        "192.0.2.2",
      ]);
      strictEqual(ms1.plain.length, 1, "the removed map-server gets nothing more");
      const list = await (await app.request("/api/v1/map-servers")).json();
      deepStrictEqual(list.entries.map((m: { address: string }) => m.address), [MS2]);
      // An mr has no map-resolvers or proxy-ETRs to edit.
      const petr = await send("POST", "/api/v1/proxy-etrs", { address: "192.0.2.9" });
      strictEqual(petr.status, 404);
      await petr.body?.cancel();

      const again = await RuntimeEdits.open(`${dir}/state.json`);
      deepStrictEqual(again.apply(r.config).mapServers.map((m) => m.address), [MS2]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ddt-mr API has no map-servers to edit: it resolves through DDT", async () => {
  const { createApp } = await import("../web/app.ts");
  const { RuntimeEdits } = await import("../web/state.ts");
  await withNet(async ({ port, closeLater }) => {
    const cfg = ddtMrConfig(port, [ROOT]);
    const mr = await mrStarter()(cfg, deps());
    closeLater(mr);
    const edits = new RuntimeEdits(undefined);
    edits.apply(cfg);
    const app = createApp(edits.wrap(mr.statusSource()), {
      token: "t",
      version: "0",
      role: "ddt-mr",
      startedAt: 0,
      now: Date.now,
    });
    const res = await app.request("/api/v1/map-servers", {
      method: "POST",
      headers: { Authorization: "Bearer t" },
      body: JSON.stringify({ address: MS1 }),
    });
    strictEqual(res.status, 404);
    ok(/resolves through DDT/.test((await res.json()).error));
    strictEqual(edits.size, 0, "nothing recorded");
  });
});

// ---------------------------------------------------------------------------
// RFC 8111 §7.3.1: a map-server the referrals name gets the ITR's own request

/** Checks that `r` is the ITR's own request (nonce, ITR-RLOC, inner header) in a D-bit ECM. */
function itrsOwn(r: Received, itrNonce: bigint, itrPort: number): void {
  strictEqual(r.ecm?.ddtOriginated, true, "the D bit");
  strictEqual(r.from.address, MR);
  if (r.message.type !== "map-request") throw new Error("not a map-request");
  strictEqual(r.message.msg.nonce, itrNonce, "the ITR's nonce");
  deepStrictEqual(r.message.msg.itrRlocs, [ipAddress(ITR)], "the ITR's ITR-RLOCs");
  deepStrictEqual([r.ecm?.inner.src, r.ecm?.inner.srcPort, r.ecm?.inner.ttl], [ITR, itrPort, 63]);
}

Deno.test("ddt-mr sends a map-server of an MS-REFERRAL the ITR's own request with the D bit; MS-ACK ends it", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const root = await fakeNode(
      ROOT,
      port,
      () => referral(REFERRAL_ACTION.MS_REFERRAL, "10.1.0.0/16", 1440, [MS1]),
    );
    const ms = await fakeMs(MS1, port, "10.1.0.0/16", "192.0.2.1");
    closeLater(root.cp);
    closeLater(ms.cp);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d);
    closeLater(mr);
    // From the root (a query of the MR's own), then the map-server.
    const first = nextNonce;
    strictEqual((await ask(itr, port, "10.1.2.3")).records[0]!.locators.length, 1);
    await settled(mr);
    strictEqual(root.seen.length, 1);
    const q = root.seen[0]!.message;
    ok(q.type === "map-request" && q.msg.nonce !== first, "the root gets a nonce of the MR's");
    // From the cache: the map-server only (the cached path).
    const second = nextNonce;
    strictEqual((await ask(itr, port, "10.1.9.9")).records[0]!.locators.length, 1);
    await settled(mr);
    strictEqual(root.seen.length, 1);
    strictEqual(ms.seen.length, 2);
    itrsOwn(ms.seen[0]!, first, itr.port);
    itrsOwn(ms.seen[1]!, second, itr.port);
    strictEqual(ms.plain.length, 0, "nothing forwarded after MS-ACK: the map-server answered");
    const c = d.counters;
    strictEqual(c.get("oor_mr_resolutions_total", { result: "succeeded", reason: "ms-ack" }), 2);
    strictEqual(c.get("oor_mr_referrals_total", { action: "ms-ack" }), 2);
    strictEqual(c.get("oor_mr_referral_cache_hits_total", { kind: "referral" }), 1);
    strictEqual(c.get("oor_mr_ddt_requests_sent_total"), 3);
    strictEqual(c.get("oor_mr_forwarded_total"), 2);
    strictEqual(c.get("oor_mr_map_replies_ignored_total"), 0);
    strictEqual(c.get("oor_mr_requests_total", { mode: "ddt" }), 2);
    strictEqual(c.get("oor_control_messages_in_total", { type: "map-referral" }), 3);
  });
});

Deno.test("ddt-mr in front of our ms: the ms answers the ITR itself and returns MS-ACK", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const root = await fakeNode(
      ROOT,
      port,
      () => referral(REFERRAL_ACTION.MS_REFERRAL, "10.0.0.0/8", 1440, [MS1]),
    );
    closeLater(root.cp);
    const parsed = parseConfig(
      [
        'operating-mode = "MS"',
        `control-address = "${MS1}"`,
        `control-port = ${port}`,
        "control-rate-limit = 0",
        "[[lisp-site]]",
        'eid-prefix = "10.0.0.0/8"',
        'key = "k"',
        "[[ms-static-registered-site]]",
        'eid-prefix = "10.0.0.0/8"',
        "[[ms-static-registered-site.rloc-address]]",
        'address = "192.0.2.7"',
        "",
      ].join("\n"),
      { role: "ms" },
    );
    if (!parsed.ok) throw new Error(parsed.errors.map(String).join("\n"));
    const msDeps = deps();
    const ms = await startMs(parsed.config, msDeps);
    closeLater(ms);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d);
    closeLater(mr);
    for (const ip of ["10.4.0.1", "10.4.0.2", "10.4.0.3"]) {
      // ask() checks the reply carries the ITR's nonce: the ms answered the ITR.
      const reply = await ask(itr, port, ip);
      deepStrictEqual(reply.records[0]!.locators.map((l) => addressToString(l.address)), [
        "192.0.2.7",
      ]);
    }
    await settled(mr);
    strictEqual(
      d.counters.get("oor_mr_resolutions_total", { result: "succeeded", reason: "ms-ack" }),
      3,
    );
    strictEqual(d.counters.get("oor_mr_forwarded_total"), 3);
    // The ms's Workers pass their counts up now and then.
    const ms3 = () =>
      msDeps.counters.get("oor_map_server_map_referrals_sent_total", { action: "ms-ack" }) >= 3;
    for (let i = 0; i < 200 && !ms3(); i++) await new Promise((r) => setTimeout(r, 10));
    strictEqual(
      msDeps.counters.get("oor_map_server_map_referrals_sent_total", { action: "ms-ack" }),
      3,
    );
    strictEqual(
      msDeps.counters.get("oor_map_server_map_requests_answered_total", { kind: "proxy" }),
      3,
      "one request's work per ITR request",
    );
    // The ms answered them on its Workers (roles/map_server/fast_path.ts): proxy reply and MS-ACK.
    const workers = Object.entries(msDeps.counters.snapshot())
      .filter(([k]) => k.startsWith("oor_map_server_worker_datagrams_total") && /answered/.test(k))
      .reduce((n, [, v]) => n + v, 0);
    strictEqual(workers, 3);
  });
});

Deno.test("ddt-mr drops an MS-ACK with the ITR's nonce from an address it did not ask", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    // The map-server is silent; an attacker who saw the ITR's request
    // answers for it with the ITR's nonce from its own address.
    const ATTACKER = "127.0.0.66";
    const attacker = await ControlPlane.open({ ...deps(), address: ATTACKER, port: 0 });
    const root = await fakeNode(
      ROOT,
      port,
      () => referral(REFERRAL_ACTION.MS_REFERRAL, "10.1.0.0/16", 1440, [MS1]),
    );
    const ms = await fakeNode(MS1, port, (req) => {
      attacker.send({
        type: "map-referral",
        msg: {
          nonce: req.nonce,
          records: [{
            record: referral(REFERRAL_ACTION.MS_ACK, "10.1.0.0/16", 1440, [ATTACKER]),
            signatures: [],
          }],
        },
      }, { address: MR, port });
      return undefined;
    });
    for (const c of [attacker, root.cp, ms.cp]) closeLater(c);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d, 0, 200);
    closeLater(mr);
    await ask(itr, port, "10.1.2.3", 0, 3000).catch(() => undefined);
    await settled(mr);
    const reply = await ask(itr, port, "10.1.2.4", 0, 3000);
    await settled(mr);
    strictEqual(negative(reply).action, ACTION.SEND_MAP_REQUEST, "the map-server never answered");
    const c = d.counters;
    strictEqual(c.get("oor_mr_resolutions_total", { result: "succeeded", reason: "ms-ack" }), 0);
    // The first request's query with the ITR's nonce waits in core/control.ts (wrong-source);
    // the cached one's in the cached path, which leaves what it does not take to core/control.ts
    // (unknown-nonce); after its timeout the walk asks with the MR's own nonce (wrong-source:
    // this attacker sees every query).
    deepStrictEqual(
      ["wrong-source", "unknown-nonce"].map((reason) =>
        c.get("oor_control_dropped_total", { reason })
      ),
      [3, 1],
      "forgeries dropped",
    );
    ok(c.get("oor_mr_referral_timeouts_total") >= 2);
  });
});

Deno.test("ddt-mr never caches nor follows a referral that answers the ITR's own request", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    // To the ITR's nonce the map-server (or someone with its address)
    // answers a NODE-REFERRAL to the attacker; to the MR's own, MS-ACK.
    const ATTACKER = "127.0.0.66";
    const root = await fakeNode(
      ROOT,
      port,
      () => referral(REFERRAL_ACTION.MS_REFERRAL, "10.1.0.0/16", 1440, [MS1]),
    );
    let itrNonce = -1n;
    const ms = await fakeNode(
      MS1,
      port,
      (req, r) => {
        if (req.nonce === itrNonce) {
          return referral(REFERRAL_ACTION.NODE_REFERRAL, "10.1.2.0/24", 1440, [ATTACKER]);
        }
        proxyReply(ms.cp, req, r, "10.1.0.0/16", "192.0.2.1");
        return referral(REFERRAL_ACTION.MS_ACK, "10.1.0.0/16", 1440, [MS1]);
      },
      (req, r, c) => proxyReply(c, req, r, "10.1.0.0/16", "192.0.2.1"),
    ).then((f) => f);
    closeLater(root.cp);
    closeLater(ms.cp);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d);
    closeLater(mr);
    await ask(itr, port, "10.1.5.5"); // caches the MS-REFERRAL (the ITR's request: MS-ACK)
    await settled(mr);
    itrNonce = nextNonce;
    const reply = await ask(itr, port, "10.1.2.3");
    strictEqual(reply.records[0]!.locators.length, 1);
    await settled(mr);
    deepStrictEqual(
      mr.referralCache().map((e) => [formatPrefix(e.prefix), e.rlocs]),
      [["10.1.0.0/16", [MS1]]],
      "the referral to the attacker is not cached",
    );
    const c = d.counters;
    strictEqual(c.get("oor_mr_dropped_total", { reason: "referral-to-itr-nonce" }), 1);
    // Asked again with a nonce of the MR's own, then the ITR's request forwarded after MS-ACK.
    strictEqual(ms.seen.length, 3);
    const again = ms.seen[2]!.message;
    ok(again.type === "map-request" && again.msg.nonce !== itrNonce);
    strictEqual(ms.plain.length, 1);
    strictEqual(c.get("oor_mr_resolutions_total", { result: "succeeded", reason: "ms-ack" }), 2);
  });
});

Deno.test("ddt-mr's cached path: the ITR's copy of a request waiting for its MS-ACK joins it", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const root = await fakeNode(
      ROOT,
      port,
      () => referral(REFERRAL_ACTION.MS_REFERRAL, "10.1.0.0/16", 1440, [MS1]),
    );
    // A slow map-server: its answer to the ITR and its MS-ACK come 100 ms late.
    let slow = false;
    const ms = await fakeNode(MS1, port, (req, r) => {
      const answer = () => {
        proxyReply(ms.cp, req, r, "10.1.0.0/16", "192.0.2.1");
        ms.cp.send({
          type: "map-referral",
          msg: {
            nonce: req.nonce,
            records: [{
              record: referral(REFERRAL_ACTION.MS_ACK, "10.1.0.0/16", 1440, [MS1]),
              signatures: [],
            }],
          },
        }, r.from);
      };
      if (slow) setTimeout(answer, 100);
      else answer();
      return undefined;
    }).then((f) => f);
    closeLater(root.cp);
    closeLater(ms.cp);
    const d = deps();
    const mr = await startDdtMr(port, [ROOT], d);
    closeLater(mr);
    await ask(itr, port, "10.1.2.3");
    await settled(mr);
    slow = true;
    const nonce = nextNonce;
    const answer = ask(itr, port, "10.1.2.4");
    // The ITR's retransmission, the same datagram, while the first waits.
    await new Promise((r) => setTimeout(r, 20));
    sendRequest(itr, port, "10.1.2.4", nonce);
    strictEqual((await answer).records[0]!.locators.length, 1);
    await settled(mr);
    strictEqual(ms.seen.length, 2, "the copy was not sent on");
    strictEqual(d.counters.get("oor_mr_duplicates_total"), 1);
    strictEqual(d.counters.get("oor_mr_requests_total", { mode: "ddt" }), 3);
  });
});

Deno.test("ddt-mr's cached path holds at most maxPending requests; then the walk's limit drops them", async () => {
  await withNet(async ({ port, itr, closeLater }) => {
    const root = await fakeNode(
      ROOT,
      port,
      () => referral(REFERRAL_ACTION.MS_REFERRAL, "10.1.0.0/16", 1440, [MS1]),
    );
    const ms = await fakeNode(MS1, port, () => undefined); // never answers
    closeLater(root.cp);
    closeLater(ms.cp);
    const d = deps();
    const parsed = ddtMrConfig(port, [ROOT], 0);
    const mr = await mrStarter({ referralTimeoutMs: 400, maxPending: 1 })(parsed, d);
    closeLater(mr);
    const send = (ip: string) => {
      const req = emitMapRequest({
        authoritative: false,
        probe: false,
        smr: false,
        pitr: false,
        smrInvoked: false,
        localXtr: false,
        dontMapReply: false,
        nonce: nextNonce++,
        sourceEid: { kind: "none" },
        itrRlocs: [ipAddress(ITR)],
        records: [{ maskLen: 32, eid: eid(ip) }],
      });
      itr.sendEcm(req, { src: ITR, dst: ip, srcPort: itr.port, dstPort: 4342 }, {
        address: MR,
        port,
      });
    };
    send("10.1.0.1"); // the walk: the root, then the map-server (waits)
    for (let i = 0; i < 100 && ms.seen.length < 1; i++) await new Promise((r) => setTimeout(r, 5));
    send("10.1.0.2"); // the cached path (waits)
    send("10.1.0.3"); // the cached path is full, so is the walk: dropped
    for (let i = 0; i < 100 && ms.seen.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50));
    strictEqual(mr.pendingCount, 2);
    strictEqual(ms.seen.length, 2);
    strictEqual(d.counters.get("oor_mr_dropped_total", { reason: "overloaded" }), 1);
    await settled(mr);
  });
});
