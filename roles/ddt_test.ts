import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import dgram from "node:dgram";
import { parseConfig } from "../config/mod.ts";
import { ControlPlane } from "../core/control.ts";
import { Counters } from "../core/counters.ts";
import { Logger } from "../core/log.ts";
import type { RoleDeps } from "../core/role.ts";
import {
  DdtTables,
  DELEGATION_HOLE_TTL,
  NOT_AUTHORITATIVE_TTL,
  REFERRAL_TTL,
  startDdt,
} from "./ddt.ts";
import { type Address, addressToString, ipAddress } from "../wire/address.ts";
import { type EidRecord, REFERRAL_ACTION } from "../wire/eid_record.ts";
import { emitMapRequest, type MapRequest } from "../wire/map_request.ts";
import type { MapReferral } from "../wire/map_referral.ts";

// A DDT node authoritative for 10.0.0.0/8 and 2001:db8::/32 (iid 0) and
// 10.0.0.0/8 in instance 7, with delegations:
//   10.1.0.0/16   -> child DDT nodes .31, .32
//   10.1.2.0/24   -> map-servers .41 (more specific than the /16)
//   10.2.0.0/16   -> map-servers .42, .43
//   2001:db8:1::/48 -> child DDT node ::31
//   [7] 10.7.0.0/16 -> map-server .47
const CONFIG = `
[[ddt-auth-site]]
eid-prefix = "10.0.0.0/8"
[[ddt-auth-site]]
eid-prefix = "2001:db8::/32"
[[ddt-auth-site]]
eid-prefix = "10.0.0.0/8"
iid = 7
[[ddt-deleg-site]]
eid-prefix = "10.1.0.0/16"
delegation-type = "CHILD_DDT_NODE"
deleg-nodes = ["127.0.0.31", "127.0.0.32"]
[[ddt-deleg-site]]
eid-prefix = "10.1.2.0/24"
delegation-type = "MAP_SERVER_DDT_NODE"
deleg-nodes = ["127.0.0.41"]
[[ddt-deleg-site]]
eid-prefix = "10.2.0.0/16"
delegation-type = "MAP_SERVER_DDT_NODE"
deleg-nodes = ["127.0.0.42", "127.0.0.43"]
[[ddt-deleg-site]]
eid-prefix = "2001:db8:1::/48"
delegation-type = "CHILD_DDT_NODE"
deleg-nodes = ["::31"]
[[ddt-deleg-site]]
eid-prefix = "10.7.0.0/16"
iid = 7
delegation-type = "MAP_SERVER_DDT_NODE"
deleg-nodes = ["127.0.0.47"]
`;

function config(extra = "") {
  const r = parseConfig(extra + CONFIG, { role: "ddt" });
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  return r.config;
}

function eid(ip: string, iid = 0): Address {
  const a = ipAddress(ip);
  return iid === 0 ? a : { kind: "iid", iid, iidMaskLen: 32, address: a };
}

function host(ip: string, iid = 0) {
  return { eid: eid(ip, iid), maskLen: ip.includes(":") ? 128 : 32 };
}

function refs(r: EidRecord): string[] {
  return r.locators.map((l) => addressToString(l.address));
}

const tables = new DdtTables(config());

Deno.test("DdtTables answers NODE-REFERRAL with the delegated prefix and its deleg-nodes, TTL 1440", () => {
  const r = tables.referral(host("10.1.9.9"));
  strictEqual(r.action, REFERRAL_ACTION.NODE_REFERRAL);
  strictEqual(r.ttl, REFERRAL_TTL);
  strictEqual(r.ttl, 1440);
  deepStrictEqual(r.eid, ipAddress("10.1.0.0"));
  strictEqual(r.maskLen, 16);
  strictEqual(r.authoritative, true);
  strictEqual(r.incomplete, false);
  deepStrictEqual(refs(r), ["127.0.0.31", "127.0.0.32"]);
});

Deno.test("DdtTables answers MS-REFERRAL from the most specific delegation", () => {
  const r = tables.referral(host("10.1.2.3"));
  strictEqual(r.action, REFERRAL_ACTION.MS_REFERRAL);
  strictEqual(r.ttl, 1440);
  deepStrictEqual(r.eid, ipAddress("10.1.2.0"));
  strictEqual(r.maskLen, 24);
  strictEqual(r.incomplete, false);
  deepStrictEqual(refs(r), ["127.0.0.41"]);
  const r2 = tables.referral(host("10.2.200.1"));
  strictEqual(r2.action, REFERRAL_ACTION.MS_REFERRAL);
  deepStrictEqual(refs(r2), ["127.0.0.42", "127.0.0.43"]);
});

Deno.test("DdtTables answers a request for a prefix inside a delegation like one for a host", () => {
  const r = tables.referral({ eid: ipAddress("10.1.2.128"), maskLen: 25 });
  strictEqual(r.action, REFERRAL_ACTION.MS_REFERRAL);
  strictEqual(r.maskLen, 24);
  // A prefix wider than a delegation it overlaps is answered for its first
  // address: 10.0.0.0 is in a hole, 10.0.0.0/16.
  const wide = tables.referral({ eid: ipAddress("10.0.0.0"), maskLen: 8 });
  strictEqual(wide.action, REFERRAL_ACTION.DELEGATION_HOLE);
  deepStrictEqual([addressToString(wide.eid), wide.maskLen], ["10.0.0.0", 16]);
});

Deno.test("DdtTables answers DELEGATION-HOLE with the least-specific hole, TTL 15", () => {
  // 10.200.0.1 shares 8 bits with 10.1/16 and 10.2/16: the hole is 10.128.0.0/9.
  const r = tables.referral(host("10.200.0.1"));
  strictEqual(r.action, REFERRAL_ACTION.DELEGATION_HOLE);
  strictEqual(r.ttl, DELEGATION_HOLE_TTL);
  strictEqual(r.ttl, 15);
  deepStrictEqual(r.eid, ipAddress("10.128.0.0"));
  strictEqual(r.maskLen, 9);
  strictEqual(r.authoritative, true);
  strictEqual(r.incomplete, false);
  deepStrictEqual(r.locators, []);
  // 10.3.0.1 is next to 10.2/16: 10.3.0.0/16 is the widest prefix missing both.
  const r2 = tables.referral(host("10.3.0.1"));
  deepStrictEqual([addressToString(r2.eid), r2.maskLen], ["10.3.0.0", 16]);
  // Inside 10.1/16 but that is delegated: a referral, not a hole (10.1.3.0 is not in the /24).
  strictEqual(tables.referral(host("10.1.3.1")).action, REFERRAL_ACTION.NODE_REFERRAL);
});

Deno.test("DdtTables bounds a delegation hole by the auth-site", () => {
  // 2001:db8::/32 has one delegation; 2001:db8:8000::1 differs at bit 32, so
  // the hole among delegations is 2001:db8:8000::/33, inside the auth-site.
  const r = tables.referral(host("2001:db8:8000::1"));
  strictEqual(r.action, REFERRAL_ACTION.DELEGATION_HOLE);
  deepStrictEqual([addressToString(r.eid), r.maskLen], ["2001:db8:8000::", 33]);
  // An auth-site with no delegation in its trie: the hole is the auth-site itself.
  const t = new DdtTables(parseOk(`
[[ddt-auth-site]]
eid-prefix = "192.0.2.0/24"
`));
  const r2 = t.referral(host("192.0.2.77"));
  strictEqual(r2.action, REFERRAL_ACTION.DELEGATION_HOLE);
  deepStrictEqual([addressToString(r2.eid), r2.maskLen], ["192.0.2.0", 24]);
});

function parseOk(text: string) {
  const r = parseConfig(text, { role: "ddt" });
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  return r.config;
}

Deno.test("DdtTables answers NOT-AUTHORITATIVE with the requested EID, TTL 0 and the I bit", () => {
  const r = tables.referral(host("192.168.1.1"));
  strictEqual(r.action, REFERRAL_ACTION.NOT_AUTHORITATIVE);
  strictEqual(r.ttl, NOT_AUTHORITATIVE_TTL);
  strictEqual(r.ttl, 0);
  strictEqual(r.incomplete, true);
  strictEqual(r.authoritative, false);
  deepStrictEqual(r.eid, ipAddress("192.168.1.1"));
  strictEqual(r.maskLen, 32);
  deepStrictEqual(r.locators, []);
  // A MAC EID, or an IPv6 EID outside 2001:db8::/32.
  strictEqual(
    tables.referral({ eid: { kind: "mac", mac: "00:11:22:33:44:55" }, maskLen: 48 }).action,
    REFERRAL_ACTION.NOT_AUTHORITATIVE,
  );
  strictEqual(tables.referral(host("2001:db9::1")).action, REFERRAL_ACTION.NOT_AUTHORITATIVE);
});

Deno.test("DdtTables honours instance IDs", () => {
  // 10.7.0.1 in instance 7 is delegated; in instance 0 it is a hole.
  const r7 = tables.referral(host("10.7.0.1", 7));
  strictEqual(r7.action, REFERRAL_ACTION.MS_REFERRAL);
  deepStrictEqual(r7.eid, eid("10.7.0.0", 7));
  strictEqual(r7.maskLen, 16);
  deepStrictEqual(refs(r7), ["127.0.0.47"]);
  strictEqual(tables.referral(host("10.7.0.1")).action, REFERRAL_ACTION.DELEGATION_HOLE);
  // 10.1.2.3 in instance 7: a hole of instance 7 (the iid-0 delegations do not apply).
  const h = tables.referral(host("10.1.2.3", 7));
  strictEqual(h.action, REFERRAL_ACTION.DELEGATION_HOLE);
  deepStrictEqual(h.eid, eid("10.0.0.0", 7));
  strictEqual(h.maskLen, 14);
  // Instance 8 is not configured at all.
  const n = tables.referral(host("10.1.2.3", 8));
  strictEqual(n.action, REFERRAL_ACTION.NOT_AUTHORITATIVE);
  deepStrictEqual(n.eid, eid("10.1.2.3", 8));
});

// ---------------------------------------------------------------------------
// Over UDP on loopback.

function quietDeps(): RoleDeps {
  const lines: string[] = [];
  return {
    logger: new Logger({ role: "test", level: "debug", sink: { write: (l) => lines.push(l) } }),
    counters: new Counters(),
    now: Date.now,
  };
}

async function freePort(address: string): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => s.bind(0, address, resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function mapRequest(nonce: bigint, e: Address, maskLen: number, itr: string): MapRequest {
  return {
    authoritative: false,
    probe: false,
    smr: false,
    pitr: false,
    smrInvoked: false,
    localXtr: false,
    dontMapReply: false,
    nonce,
    sourceEid: { kind: "none" },
    itrRlocs: [ipAddress(itr)],
    records: [{ maskLen, eid: e }],
  };
}

Deno.test("startDdt answers ECM Map-Requests over UDP with Map-Referrals sent to the ECM's source", async () => {
  const port = await freePort("127.0.0.21");
  const deps = quietDeps();
  const ddt = await startDdt(
    config(`control-address = "127.0.0.21"\ncontrol-port = ${port}\n`),
    deps,
  );
  const client = await ControlPlane.open({
    logger: deps.logger,
    counters: new Counters(),
    address: "127.0.0.20",
    port: 0,
  });
  try {
    strictEqual(ddt.control.port, port);
    let nonce = 0x1000n;
    // The inner header names a different source and port (the ITR's): the
    // referral must still come back to the ECM's outer source, the client.
    const ask = async (e: Address, maskLen: number, ddtBit = true): Promise<MapReferral> => {
      const n = nonce++;
      const bytes = emitMapRequest(mapRequest(n, e, maskLen, "127.0.0.99"));
      const r = await client.request(
        n,
        () =>
          client.sendEcm(
            bytes,
            { src: "127.0.0.99", dst: "10.0.0.1", srcPort: 4342, dstPort: 4342 },
            { address: "127.0.0.21", port },
            { ddtOriginated: ddtBit },
          ),
        "test",
        { retries: 2, timeoutMs: 1000, expect: ["map-referral"] },
      );
      strictEqual(r.message.type, "map-referral");
      strictEqual(r.from.address, "127.0.0.21");
      strictEqual(r.from.port, port);
      if (r.message.type !== "map-referral") throw new Error("unreachable");
      strictEqual(r.message.msg.nonce, n, "nonce copied from the request");
      strictEqual(r.message.msg.records.length, 1);
      deepStrictEqual(r.message.msg.records[0]!.signatures, []);
      return r.message.msg;
    };
    const node = (await ask(ipAddress("10.1.9.9"), 32)).records[0]!.record;
    deepStrictEqual(
      [node.action, node.ttl, addressToString(node.eid), node.maskLen, refs(node)],
      [REFERRAL_ACTION.NODE_REFERRAL, 1440, "10.1.0.0", 16, ["127.0.0.31", "127.0.0.32"]],
    );
    const ms = (await ask(ipAddress("10.1.2.3"), 32)).records[0]!.record;
    deepStrictEqual(
      [ms.action, ms.ttl, addressToString(ms.eid), ms.maskLen, refs(ms)],
      [REFERRAL_ACTION.MS_REFERRAL, 1440, "10.1.2.0", 24, ["127.0.0.41"]],
    );
    const hole = (await ask(ipAddress("10.200.0.1"), 32)).records[0]!.record;
    deepStrictEqual(
      [hole.action, hole.ttl, addressToString(hole.eid), hole.maskLen, hole.incomplete],
      [REFERRAL_ACTION.DELEGATION_HOLE, 15, "10.128.0.0", 9, false],
    );
    const na = (await ask(ipAddress("172.16.0.1"), 32, false)).records[0]!.record;
    deepStrictEqual(
      [na.action, na.ttl, addressToString(na.eid), na.maskLen, na.incomplete],
      [REFERRAL_ACTION.NOT_AUTHORITATIVE, 0, "172.16.0.1", 32, true],
    );
    const v6 = (await ask(ipAddress("2001:db8:1::5"), 128)).records[0]!.record;
    deepStrictEqual(
      [v6.action, addressToString(v6.eid), v6.maskLen, refs(v6)],
      [REFERRAL_ACTION.NODE_REFERRAL, "2001:db8:1::", 48, ["::31"]],
    );
    const i7 = (await ask(eid("10.7.1.1", 7), 32)).records[0]!.record;
    deepStrictEqual(i7.eid, eid("10.7.0.0", 7));
    strictEqual(i7.action, REFERRAL_ACTION.MS_REFERRAL);

    const c = deps.counters;
    strictEqual(c.get("oor_ddt_requests_total", { kind: "ddt" }), 5);
    strictEqual(c.get("oor_ddt_requests_total", { kind: "ecm" }), 1);
    strictEqual(c.get("oor_ddt_referrals_total", { action: "node-referral" }), 2);
    strictEqual(c.get("oor_ddt_referrals_total", { action: "ms-referral" }), 2);
    strictEqual(c.get("oor_ddt_referrals_total", { action: "delegation-hole" }), 1);
    strictEqual(c.get("oor_ddt_referrals_total", { action: "not-authoritative" }), 1);
  } finally {
    client.close();
    await ddt.close();
  }
});

Deno.test("startDdt ignores RLOC-probes and counts them", async () => {
  const port = await freePort("127.0.0.21");
  const deps = quietDeps();
  const ddt = await startDdt(
    config(`control-address = "127.0.0.21"\ncontrol-port = ${port}\n`),
    deps,
  );
  const client = await ControlPlane.open({
    logger: deps.logger,
    counters: new Counters(),
    address: "127.0.0.20",
    port: 0,
  });
  try {
    const req = { ...mapRequest(7n, ipAddress("10.1.2.3"), 32, "127.0.0.20"), probe: true };
    let error: unknown;
    try {
      await client.request(
        7n,
        () =>
          client.sendEcm(
            emitMapRequest(req),
            { src: "127.0.0.20", dst: "10.1.2.3", srcPort: client.port, dstPort: 4342 },
            { address: "127.0.0.21", port },
            { ddtOriginated: true },
          ),
        "probe",
        { retries: 0, timeoutMs: 300, expect: ["map-referral"] },
      );
    } catch (e) {
      error = e;
    }
    ok(error instanceof Error && error.name === "NoReplyError", "no referral for a probe");
    strictEqual(deps.counters.get("oor_ddt_dropped_total", { reason: "probe" }), 1);
  } finally {
    client.close();
    await ddt.close();
  }
});

Deno.test("ddt API edits its delegations: referrals follow at once, outside an auth-site is refused, saved", async () => {
  const { createApp } = await import("../web/app.ts");
  const { RuntimeEdits } = await import("../web/state.ts");
  const dir = await Deno.makeTempDir();
  const port = await freePort("127.0.0.21");
  const cfg = config(`control-address = "127.0.0.21"\ncontrol-port = ${port}\n`);
  const ddt = await startDdt(cfg, quietDeps());
  try {
    const edits = await RuntimeEdits.open(`${dir}/state.json`);
    edits.apply(cfg);
    const app = createApp(edits.wrap(ddt.statusSource!()), {
      token: "t",
      version: "0",
      role: "ddt",
      startedAt: 0,
      now: Date.now,
    });
    const send = (method: string, path: string, body?: unknown) =>
      app.request(path, {
        method,
        headers: { Authorization: "Bearer t" },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    const before = ddt.referralFor(host("10.3.1.1")).record;
    strictEqual(before.action, REFERRAL_ACTION.DELEGATION_HOLE);

    const outside = await send("POST", "/api/v1/ddt-deleg-sites", {
      "eid-prefix": "11.3.0.0/16",
      "delegation-type": "MAP_SERVER_DDT_NODE",
      "deleg-nodes": ["127.0.0.44"],
    });
    strictEqual(outside.status, 400);
    const why = await outside.json();
    strictEqual(why.field, "eid-prefix");
    ok(/ddt-auth-site/.test(why.error), why.error);

    const add = await send("POST", "/api/v1/ddt-deleg-sites", {
      "eid-prefix": "10.3.0.0/16",
      "delegation-type": "MAP_SERVER_DDT_NODE",
      "deleg-nodes": ["127.0.0.44"],
    });
    strictEqual(add.status, 201, await add.clone().text());
    await add.body?.cancel();
    const after = ddt.referralFor(host("10.3.1.1")).record;
    strictEqual(after.action, REFERRAL_ACTION.MS_REFERRAL);
    strictEqual(after.maskLen, 16);
    deepStrictEqual(after.locators.map((l) => addressToString(l.address)), ["127.0.0.44"]);
    const list = await (await app.request("/api/v1/ddt-deleg-sites?limit=1000")).json();
    ok(
      list.entries.some((d: { "eid-prefix": string; "deleg-nodes": string[] }) =>
        d["eid-prefix"] === "10.3.0.0/16" && d["deleg-nodes"][0] === "127.0.0.44"
      ),
    );

    // A configured delegation removed: a hole again; both edits saved.
    const del = await send("DELETE", "/api/v1/ddt-deleg-sites?eid-prefix=10.2.0.0/16");
    strictEqual(del.status, 200);
    await del.body?.cancel();
    strictEqual(ddt.referralFor(host("10.2.1.1")).record.action, REFERRAL_ACTION.DELEGATION_HOLE);
    const again = await RuntimeEdits.open(`${dir}/state.json`);
    const c = again.apply(cfg);
    ok(c.ddtDelegSites.some((d) => d.eidPrefix.address === "10.3.0.0"));
    ok(!c.ddtDelegSites.some((d) => d.eidPrefix.address === "10.2.0.0"));
  } finally {
    await ddt.close();
    await Deno.remove(dir, { recursive: true });
  }
});
