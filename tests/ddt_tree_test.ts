/**
 * A LISP-DDT tree on loopback, every node a real role instance talking UDP
 * (RFC 8111 §3, §7):
 *
 * ```
 *                     root (ddt) 127.0.0.81
 *          auth 10.0.0.0/8, [7]10.0.0.0/8
 *     /              |                           \
 * 10.1.0.0/16     10.2.0.0/16 (MS)              [7]10.1.1.0/24 (MS)
 * child (ddt)     [dead .99, ms2 .92]            ms1 .91
 * 127.0.0.82
 *   |  10.1.1.0/24, 10.1.2.0/24 (MS)
 *   |  10.1.3.0/24 (MS)
 * ms1 (ms) 127.0.0.91: sites 10.1.1.0/24 (registered), 10.1.2.0/24 (not),
 *                      [7]10.1.1.0/24 (registered),
 *                      10.1.3.0/24 (not; ddt-ms-peers ms2)
 * ms2 (ms) 127.0.0.92: sites 10.2.0.0/16 (registered), 10.1.3.0/24 (registered)
 * ```
 *
 * A ddt-mr (127.0.0.80) resolves the ITR's ECM Map-Requests from the root;
 * the map-servers answer MS-ACK and proxy-reply to the ITR.
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import dgram from "node:dgram";
import { parseConfig } from "../config/mod.ts";
import { ControlPlane } from "../core/control.ts";
import { Counters } from "../core/counters.ts";
import { Logger } from "../core/log.ts";
import { parsePrefix, prefixEid } from "../core/prefix.ts";
import type { RoleDeps, RoleHandle } from "../core/role.ts";
import { startDdt } from "../roles/ddt.ts";
import { type MrHandle, mrStarter } from "../roles/mr.ts";
import { startMs } from "../roles/ms.ts";
import { type Address, addressToString, ipAddress } from "../wire/address.ts";
import { ACTION } from "../wire/eid_record.ts";
import { emitSignedMapRegister } from "../wire/map_register.ts";
import type { MapReply } from "../wire/map_reply.ts";
import { emitMapRequest, type MapRequest } from "../wire/map_request.ts";

const ITR = "127.0.0.70";
const ETR = "127.0.0.75";
const MR = "127.0.0.80";
const ROOT = "127.0.0.81";
const CHILD = "127.0.0.82";
const MS1 = "127.0.0.91";
const MS2 = "127.0.0.92";
const DEAD = "127.0.0.99";
const KEY1 = "site-one-key";
const KEY2 = "site-two-key";

function deps(role: string): RoleDeps {
  return {
    logger: new Logger({ role, level: "debug", sink: { write: () => {} } }),
    counters: new Counters(),
    now: Date.now,
  };
}

function config(text: string, role: "ddt" | "ms" | "ddt-mr") {
  const r = parseConfig(text, { role });
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  return r.config;
}

async function freePort(): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function eid(ip: string, iid = 0): Address {
  const a = ipAddress(ip);
  return iid === 0 ? a : { kind: "iid", iid, iidMaskLen: 0, address: a };
}

/** Registers `prefix` at `ms` with one locator and the P bit, waiting for the Map-Notify. */
async function register(
  etr: ControlPlane,
  ms: string,
  port: number,
  key: string,
  prefix: string,
  rloc: string,
  nonce: bigint,
  iid = 0,
): Promise<void> {
  const p = parsePrefix(prefix, iid)!;
  const bytes = emitSignedMapRegister({
    proxyReply: true,
    securityCapable: false,
    xtrIdPresent: false,
    rtr: false,
    eidNotify: false,
    useTtlForTimeout: false,
    mergeRequest: false,
    mobileNode: false,
    wantMapNotify: true,
    nonce,
    keyId: 2,
    authData: new Uint8Array(0),
    records: [{
      ttl: 10,
      maskLen: p.len,
      action: ACTION.NO_ACTION,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: prefixEid(p),
      locators: [{
        priority: 1,
        weight: 100,
        mPriority: 255,
        mWeight: 0,
        local: true,
        probed: false,
        reachable: true,
        address: ipAddress(rloc),
      }],
    }],
  }, key);
  await etr.request(nonce, () => etr.send(bytes, { address: ms, port }), `register ${prefix}`, {
    retries: 2,
    timeoutMs: 1000,
    expect: ["map-notify"],
  });
}

let nextNonce = 0xd0d0_0000n;

async function ask(itr: ControlPlane, port: number, ip: string, iid = 0): Promise<MapReply> {
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
    records: [{ maskLen: 32, eid: eid(ip, iid) }],
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
    { retries: 0, timeoutMs: 4000, expect: ["map-reply"] },
  );
  if (r.message.type !== "map-reply") throw new Error("not a Map-Reply");
  return r.message.msg;
}

async function settled(mr: MrHandle): Promise<void> {
  for (let i = 0; i < 400 && mr.pendingCount > 0; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  strictEqual(mr.pendingCount, 0);
}

/** Waits up to 2 s for `read()` to give `want` (a count a Worker posts later), then asserts it. */
async function eventually(read: () => number, want: number, what: string): Promise<void> {
  for (let i = 0; i < 400 && read() !== want; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  strictEqual(read(), want, what);
}

function summary(reply: MapReply) {
  strictEqual(reply.records.length, 1);
  const r = reply.records[0]!;
  return {
    prefix: `${addressToString(r.eid)}/${r.maskLen}`,
    action: r.action,
    ttl: r.ttl,
    rlocs: r.locators.map((l) => addressToString(l.address)),
  };
}

Deno.test("a DDT tree (root, child, two map-servers) resolved by a ddt-mr", async () => {
  const port = await freePort();
  const head = (address: string) => `control-address = "${address}"\ncontrol-port = ${port}\n`;
  const handles: RoleHandle[] = [];
  const planes: ControlPlane[] = [];
  try {
    const rootDeps = deps("root");
    handles.push(
      await startDdt(
        config(
          head(ROOT) + `
[[ddt-auth-site]]
eid-prefix = "10.0.0.0/8"
[[ddt-auth-site]]
eid-prefix = "10.0.0.0/8"
iid = 7
[[ddt-deleg-site]]
eid-prefix = "10.1.0.0/16"
delegation-type = "CHILD_DDT_NODE"
deleg-nodes = ["${CHILD}"]
[[ddt-deleg-site]]
eid-prefix = "10.2.0.0/16"
delegation-type = "MAP_SERVER_DDT_NODE"
deleg-nodes = ["${DEAD}", "${MS2}"]
[[ddt-deleg-site]]
eid-prefix = "10.1.1.0/24"
iid = 7
delegation-type = "MAP_SERVER_DDT_NODE"
deleg-nodes = ["${MS1}"]
`,
          "ddt",
        ),
        rootDeps,
      ),
    );
    const childDeps = deps("child");
    handles.push(
      await startDdt(
        config(
          head(CHILD) + `
[[ddt-auth-site]]
eid-prefix = "10.1.0.0/16"
[[ddt-deleg-site]]
eid-prefix = "10.1.1.0/24"
delegation-type = "MAP_SERVER_DDT_NODE"
deleg-nodes = ["${MS1}"]
[[ddt-deleg-site]]
eid-prefix = "10.1.2.0/24"
delegation-type = "MAP_SERVER_DDT_NODE"
deleg-nodes = ["${MS1}"]
[[ddt-deleg-site]]
eid-prefix = "10.1.3.0/24"
delegation-type = "MAP_SERVER_DDT_NODE"
deleg-nodes = ["${MS1}"]
`,
          "ddt",
        ),
        childDeps,
      ),
    );
    const ms1Deps = deps("ms1");
    handles.push(
      await startMs(
        config(
          head(MS1) + `
[[lisp-site]]
eid-prefix = "10.1.1.0/24"
key-type = 2
key = "${KEY1}"
[[lisp-site]]
eid-prefix = "10.1.2.0/24"
key-type = 2
key = "${KEY1}"
[[lisp-site]]
eid-prefix = "10.1.1.0/24"
iid = 7
key-type = 2
key = "${KEY1}"
[[lisp-site]]
eid-prefix = "10.1.3.0/24"
key-type = 2
key = "${KEY1}"
ddt-ms-peers = ["${MS2}"]
ddt-ms-peers-complete = true
`,
          "ms",
        ),
        ms1Deps,
      ),
    );
    const ms2Deps = deps("ms2");
    handles.push(
      await startMs(
        config(
          head(MS2) + `
[[lisp-site]]
eid-prefix = "10.2.0.0/16"
key-type = 2
key = "${KEY2}"
[[lisp-site]]
eid-prefix = "10.1.3.0/24"
key-type = 2
key = "${KEY1}"
`,
          "ms",
        ),
        ms2Deps,
      ),
    );
    const mrDeps = deps("ddt-mr");
    const mr = await mrStarter({ referralTimeoutMs: 300 })(
      config(head(MR) + `map-request-retries = 1\nddt-root-addresses = ["${ROOT}"]\n`, "ddt-mr"),
      mrDeps,
    );
    handles.push(mr);

    const etr = await ControlPlane.open({ ...deps("etr"), address: ETR, port: 0 });
    planes.push(etr);
    const itr = await ControlPlane.open({ ...deps("itr"), address: ITR, port: 0 });
    planes.push(itr);

    await register(etr, MS1, port, KEY1, "10.1.1.0/24", "192.0.2.11", 1n);
    await register(etr, MS1, port, KEY1, "10.1.1.0/24", "192.0.2.17", 2n, 7);
    await register(etr, MS2, port, KEY2, "10.2.0.0/16", "192.0.2.12", 3n);
    await register(etr, MS2, port, KEY1, "10.1.3.0/24", "192.0.2.13", 4n); // at ms2 only

    // Site one: root -> child (NODE-REFERRAL) -> ms1 (MS-REFERRAL) -> MS-ACK + proxy reply.
    const one = await ask(itr, port, "10.1.1.5");
    deepStrictEqual(summary(one), {
      prefix: "10.1.1.0/24",
      action: ACTION.NO_ACTION,
      ttl: 10,
      rlocs: ["192.0.2.11"],
    });
    await settled(mr);

    // Site two: root -> [dead, ms2] (MS-REFERRAL): the dead RLOC times out, ms2 answers.
    const two = await ask(itr, port, "10.2.3.4");
    deepStrictEqual(summary(two), {
      prefix: "10.2.0.0/16",
      action: ACTION.NO_ACTION,
      ttl: 10,
      rlocs: ["192.0.2.12"],
    });
    await settled(mr);
    strictEqual(mrDeps.counters.get("oor_mr_referral_timeouts_total"), 1);

    // The same EID in instance 7 is another site, referred by the root straight to ms1.
    const seven = await ask(itr, port, "10.1.1.5", 7);
    deepStrictEqual(summary(seven), {
      prefix: "[7]10.1.1.0/24",
      action: ACTION.NO_ACTION,
      ttl: 10,
      rlocs: ["192.0.2.17"],
    });
    await settled(mr);

    // A delegation hole at the root: 10.5.0.1 is in neither 10.1/16 nor 10.2/16.
    const hole = await ask(itr, port, "10.5.0.1");
    deepStrictEqual(summary(hole), {
      prefix: "10.4.0.0/14",
      action: ACTION.NATIVELY_FORWARD,
      ttl: 15,
      rlocs: [],
    });
    await settled(mr);

    // A configured site of ms1 with nothing registered: MS-NOT-REGISTERED.
    const notReg = await ask(itr, port, "10.1.2.9");
    deepStrictEqual(summary(notReg), {
      prefix: "10.1.2.0/24",
      action: ACTION.NATIVELY_FORWARD,
      ttl: 1,
      rlocs: [],
    });
    await settled(mr);

    // Registered with ms2 alone, which the tree does not name: ms1's
    // MS-NOT-REGISTERED lists it as a peer, and it answers (RFC 8111 §7.3.2).
    const peer = await ask(itr, port, "10.1.3.5");
    deepStrictEqual(summary(peer), {
      prefix: "10.1.3.0/24",
      action: ACTION.NO_ACTION,
      ttl: 10,
      rlocs: ["192.0.2.13"],
    });
    await settled(mr);
    strictEqual(mrDeps.counters.get("oor_mr_map_server_peers_asked_total"), 1);

    // Outside the whole tree: the root is not authoritative.
    const outside = await ask(itr, port, "192.168.7.7");
    strictEqual(summary(outside).action, ACTION.NATIVELY_FORWARD);
    strictEqual(summary(outside).prefix, "192.168.7.7/32");
    await settled(mr);

    // Asked again, site one and site two come from the referral cache.
    const rootAsked = rootDeps.counters.get("oor_ddt_requests_total", { kind: "ddt" });
    deepStrictEqual(summary(await ask(itr, port, "10.1.1.200")).rlocs, ["192.0.2.11"]);
    deepStrictEqual(summary(await ask(itr, port, "10.2.250.1")).rlocs, ["192.0.2.12"]);
    await settled(mr);
    strictEqual(rootDeps.counters.get("oor_ddt_requests_total", { kind: "ddt" }), rootAsked);
    strictEqual(
      mrDeps.counters.get("oor_mr_referral_timeouts_total"),
      1,
      "the dead RLOC is skipped",
    );

    const mc = mrDeps.counters;
    strictEqual(mc.get("oor_mr_resolutions_total", { result: "succeeded", reason: "ms-ack" }), 6);
    strictEqual(
      mc.get("oor_mr_resolutions_total", { result: "succeeded", reason: "delegation-hole" }),
      1,
    );
    strictEqual(
      mc.get("oor_mr_resolutions_total", { result: "succeeded", reason: "ms-not-registered" }),
      1,
    );
    strictEqual(childDeps.counters.get("oor_ddt_referrals_total", { action: "ms-referral" }), 3);
    strictEqual(rootDeps.counters.get("oor_ddt_referrals_total", { action: "delegation-hole" }), 1);
    // The ms's answering Workers send these MS-ACKs and post their counts a
    // moment later (core counts reach the main thread with their next batch).
    await eventually(
      () => ms1Deps.counters.get("oor_map_server_map_referrals_sent_total", { action: "ms-ack" }),
      3,
      "ms1's MS-ACKs",
    );
    await eventually(
      () => ms2Deps.counters.get("oor_map_server_map_referrals_sent_total", { action: "ms-ack" }),
      3,
      "ms2's MS-ACKs",
    );
  } finally {
    for (const p of planes) p.close();
    for (const h of handles.reverse()) await h.close();
  }
});
