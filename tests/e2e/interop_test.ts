/**
 * Interoperability with the real Open Overlay Router 1.3.0 (Debian's
 * `openoverlayrouter`): OOR and oor side by side in the lab topologies of
 * scripts/lab/topologies.ts, each side's state asserted (our logs and API,
 * OOR's log lines; tests/e2e/_oor.ts runs OOR).
 *
 * One test per network, one step per cell of the interop matrix:
 *
 * - `basic`, our ms and mr: an OOR xTR (site 1) and our xtr (site 2).
 *   OOR registers with our ms (key-type 1); both resolve through our mr;
 *   LISP data both ways; RLOC probing both ways (the path cut and restored:
 *   each side marks the other down, then up); an SMR from our side
 *   refreshes OOR's map-cache, one from OOR's side (its RLOC changes)
 *   refreshes ours; a wrong key is refused.
 * - `basic`, OOR's map-server (also the map-resolver), iid 0, VXLAN-GPE:
 *   both register with it and resolve through it; data both ways.
 * - The same with iid 5 and LISP, OOR's map-server set up for NAT
 *   traversal (an RTR set advertised), our xtr not behind a NAT: it
 *   registers (no xTR-ID, so OOR does not take it for an RTR's relay).
 * - `nat`: an OOR xTR behind the masquerade through our rtr and ms; and our
 *   xtr behind it through OOR's RTR (draft-version OLD, then NEW) and
 *   OOR's map-server; traffic both ways.
 *
 * Needs root and OOR (.ci/run installs `openoverlayrouter`); skipped
 * otherwise, failed in CI.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Lab, sleep, waitFor } from "../../scripts/lab/topology.ts";
import { PLAN, type Topology } from "../../scripts/lab/topologies.ts";
import { apiGet, bothWays, type Ctx, e2e, metric, pingWorks, withTopology } from "./_lab.ts";
import {
  OOR_MISSING,
  oorMsConfig,
  type OorProcess,
  oorRtrConfig,
  oorXtrConfig,
  startOor,
} from "./_oor.ts";
import { commandsMissing } from "../prereq.ts";

/** What these tests need besides root: OOR, and nft for the cut path and the NAT. */
const NEEDS = OOR_MISSING ??
  commandsMissing(["nft", "conntrack", "curl"], "apt-get install nftables conntrack curl");

/** The API token of xtr2 in the first test (runtime edits need one). */
const TOKEN = "interop-test-token";

const dots = (s: string) => s.replaceAll(".", "\\.");

// ---------------------------------------------------------------------------
// Editing a topology: processes out, configs changed, addresses dropped.

function without(t: Topology, names: readonly string[]): Topology {
  return { ...t, lisp: t.lisp.filter((p) => !names.includes(p.name)) };
}

function editConfigs(t: Topology, f: (config: string, name: string) => string): Topology {
  return { ...t, lisp: t.lisp.map((p) => ({ ...p, config: f(p.config, p.name) })) };
}

/** OOR has HMAC-SHA-1-96 only: every key of the topology becomes key-type 1. */
function keyType1(t: Topology): Topology {
  return editConfigs(t, (c) => c.replaceAll("key-type = 2", "key-type = 1"));
}

/** The ms namespace keeps only the map-server's address (OOR takes its interface's last). */
function msAddressOnly(t: Topology): Topology {
  return {
    ...t,
    links: t.links.map((l) =>
      l.a.node === "ms" ? { ...l, a: { ...l.a, addresses: [`${PLAN.ms4}/24`] } } : l
    ),
  };
}

/** Our tunnel routers ask OOR's map-server (it is also the map-resolver). */
function resolveThroughMs(t: Topology): Topology {
  return editConfigs(t, (c) => c.replaceAll(`"${PLAN.mr4}"`, `"${PLAN.ms4}"`));
}

// ---------------------------------------------------------------------------
// Our side, through its API.

interface CacheEntry {
  "eid-prefix": string;
  iid: number;
  "rloc-address": { address: string; state?: string; priority?: number }[];
}

async function mapCache(lab: Lab, node: string): Promise<CacheEntry[]> {
  const mc = await apiGet(lab, node, "127.0.0.1:9942", "/api/v1/map-cache") as {
    entries: CacheEntry[];
  };
  return mc.entries;
}

/** Waits until `node`'s map-cache has `prefix` (in `iid`) with exactly the RLOCs `rlocs`. */
async function cachedWith(
  lab: Lab,
  node: string,
  prefix: string,
  rlocs: readonly string[],
  iid = 0,
  timeoutMs = 15_000,
): Promise<void> {
  let last = "";
  try {
    await waitFor(`${node} caching ${prefix} -> ${rlocs.join(",")}`, async () => {
      const e = (await mapCache(lab, node)).find((x) =>
        x["eid-prefix"] === prefix && x.iid === iid
      );
      last = JSON.stringify(e);
      return e !== undefined && e["rloc-address"].map((r) => r.address).sort().join(",") ===
            [...rlocs].sort().join(",") || undefined;
    }, { timeoutMs, intervalMs: 250 });
  } catch (e) {
    throw new Error(`${(e as Error).message}; last: ${last}`, { cause: e });
  }
}

function proc(ctx: Ctx, name: string) {
  const p = ctx.lab.processes.get(name);
  assert.ok(p !== undefined, `${name} runs`);
  return p;
}

/** Drops forwarded traffic between `a` and `b` in the router (both ways) until `restore()`. */
async function cutPath(lab: Lab, a: string, b: string): Promise<() => Promise<void>> {
  const rules = [
    "table inet oor_lab_cut {",
    "  chain forward_cut {",
    "    type filter hook forward priority 0; policy accept;",
    `    ip saddr ${a} ip daddr ${b} drop`,
    `    ip saddr ${b} ip daddr ${a} drop`,
    "  }",
    "}",
    "",
  ].join("\n");
  await lab.execOk("router", ["nft", "-f", await lab.writeFile("cut.nft", rules)]);
  return async () => {
    await lab.execOk("router", ["nft", "delete", "table", "inet", "oor_lab_cut"]);
  };
}

/** Runs `fn` as a step that does not hide the others' results when it fails. */
function step(t: Deno.TestContext, name: string, fn: () => Promise<void>): Promise<boolean> {
  return t.step({ name, fn, sanitizeOps: false, sanitizeResources: false });
}

// ---------------------------------------------------------------------------
// OOR's xTR with our ms and mr.

e2e(
  "interop: OOR 1.3.0's xTR with our ms, mr and xtr",
  async (t) => {
    const edit = (topo: Topology) =>
      editConfigs(
        keyType1(without(topo, ["xtr1"])),
        (c, n) => n === "xtr2" ? c.replace("[api]\n", `[api]\ntoken = "${TOKEN}"\n`) : c,
      );
    await withTopology("basic", "e2e-interop-ms", { rlocProbeInterval: 2 }, async (ctx) => {
      const { lab } = ctx;
      const oorConfig = (key: string) =>
        oorXtrConfig({
          mapResolver: PLAN.mr4,
          mapServer: PLAN.ms4,
          key,
          mappings: [{ eid: PLAN.site1Eid4, iface: "rloc0" }],
          probe: { interval: 2, retries: 1, retriesInterval: 1 },
        });
      let oor: OorProcess = await startOor(lab, "xtr1", "oor-xtr1", oorConfig(PLAN.site1Key));
      const ms = proc(ctx, "ms");
      const xtr2 = proc(ctx, "xtr2");

      await step(t, "OOR xTR registers with our ms (key-type 1)", async () => {
        await ms.waitForLog(
          new RegExp(`registered prefix=${dots(PLAN.site1Eid4)} .*rlocs=${dots(PLAN.xtr1Rloc4)}`),
          15_000,
        );
        await oor.waitForLog(
          new RegExp(`Map-Notify message confirms correct registration of ${dots(PLAN.site1Eid4)}`),
        );
        await xtr2.waitForLog(/ registered /, 15_000);
      });

      await step(
        t,
        "resolution through our mr: OOR xTR and our xtr; LISP data both ways",
        async () => {
          await bothWays(lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
          await oor.waitForLog(
            new RegExp(`Added Map Cache entry with EID prefix ${dots(PLAN.site2Eid4)}`),
          );
          await cachedWith(lab, "xtr2", PLAN.site1Eid4, [PLAN.xtr1Rloc4]);
        },
      );

      await step(t, "RLOC probing both ways: each marks the other down, then up", async () => {
        await oor.waitForLog(
          new RegExp(`Successfully probed RLOC ${dots(PLAN.xtr2Rloc4)} of cache entry`),
        );
        const downs = oor.count(/Locator state changes to DOWN/);
        const ups = oor.count(/state changed to UP/);
        const restore = await cutPath(lab, PLAN.xtr1Rloc4, PLAN.xtr2Rloc4);
        try {
          await xtr2.waitForLog(new RegExp(`locator-down .*rloc=${dots(PLAN.xtr1Rloc4)}`), 20_000);
          await waitFor("OOR marking our RLOC down", () =>
            oor.count(
                new RegExp(
                  `locator ${dots(PLAN.xtr2Rloc4)} .*Locator state changes to DOWN`,
                ),
              ) > downs || undefined, { timeoutMs: 20_000, intervalMs: 200 });
        } finally {
          await restore();
        }
        await xtr2.waitForLog(new RegExp(`locator-up .*rloc=${dots(PLAN.xtr1Rloc4)}`), 20_000);
        await waitFor(
          "OOR marking our RLOC up",
          () =>
            oor.count(new RegExp(`Locator ${dots(PLAN.xtr2Rloc4)} state changed to UP`)) > ups ||
            undefined,
          { timeoutMs: 20_000, intervalMs: 200 },
        );
        await pingWorks(lab, "hosta", PLAN.hostB4);
      });

      await step(t, "an SMR from our xtr refreshes OOR's map-cache", async () => {
        const smr = new RegExp(`SMR: Map-Request for EID: ${dots(PLAN.site2Eid4)}`);
        const replaced = new RegExp(
          `Mapping with EID ${dots(PLAN.site2Eid4)} already exists, replacing`,
        );
        const before = { smr: oor.count(smr), replaced: oor.count(replaced) };
        // A changed local mapping (a new priority through the API) makes xtr2 send SMRs.
        const body = JSON.stringify({
          "eid-prefix": PLAN.site2Eid4,
          "rloc-address": [{ address: PLAN.xtr2Rloc4, priority: 2, weight: 100 }],
        });
        await lab.execOk("xtr2", [
          "curl",
          "-sf",
          "-X",
          "POST",
          "-H",
          "content-type: application/json",
          "-H",
          `authorization: Bearer ${TOKEN}`,
          "-d",
          body,
          "http://127.0.0.1:9942/api/v1/database",
        ]);
        await xtr2.waitForLog(/smrs-sent count=/, 10_000);
        await waitFor("OOR answering the SMR", () => oor.count(smr) > before.smr || undefined, {
          timeoutMs: 10_000,
          intervalMs: 200,
        });
        // Its SMR-invoked Map-Request (s bit) through our mr gets a reply that replaces the entry.
        await waitFor(
          "OOR replacing its entry",
          () => oor.count(replaced) > before.replaced || undefined,
          { timeoutMs: 10_000, intervalMs: 200 },
        );
      });

      await step(t, "an SMR from OOR (its RLOC changed) refreshes our map-cache", async () => {
        const newRloc = "100.64.1.3";
        await lab.execOk("xtr1", ["ip", "addr", "add", `${newRloc}/24`, "dev", "rloc0"]);
        // OOR sends its SMRs about 4 s after the address event.
        await oor.waitForLog(
          new RegExp(`Address changed from ${dots(PLAN.xtr1Rloc4)} to ${dots(newRloc)}`),
        );
        await xtr2.waitForLog(new RegExp(`smr-received peer=${dots(newRloc)}:4342`), 15_000);
        await cachedWith(lab, "xtr2", PLAN.site1Eid4, [newRloc]);
        await pingWorks(lab, "hostb", PLAN.hostA4);
        await pingWorks(lab, "hosta", PLAN.hostB4);
      });

      await step(t, "our ms refuses an OOR xTR with the wrong key", async () => {
        await lab.stop("oor-xtr1");
        await sleep(500);
        oor = await startOor(lab, "xtr1", "oor-xtr1-badkey", oorConfig("not-the-site-key"));
        await ms.waitForLog(
          /map-register-rejected reason=auth .*site 10\.1\.0\.0\/24/,
          15_000,
        );
        await sleep(3000);
        assert.equal(oor.count(/Map-Notify message confirms correct registration/), 0);
      });
    }, edit);
  },
  NEEDS,
);

// ---------------------------------------------------------------------------
// Our xtr with OOR's map-server.

/** Both xTRs with OOR's map-server (its own map-resolver) in `iid`; `rtr`: NAT set up there. */
function oorMsTest(
  name: string,
  lab: string,
  opts: {
    iid: number;
    encapsulation: "LISP" | "VXLAN-GPE";
    natConfigured: boolean;
    /** xtr2 with `subscribe = true` (RFC 9437): OOR's map-server must answer it as usual. */
    subscribe?: boolean;
  },
): void {
  e2e(name, async (t) => {
    const iid = opts.iid;
    const edit = (topo: Topology) =>
      editConfigs(
        resolveThroughMs(msAddressOnly(keyType1(without(topo, ["ms", "mr", "xtr1"])))),
        (c, n) =>
          n === "xtr2"
            ? c.replace(/^iid = 0$/m, `iid = ${iid}`).replace(
              /^map-resolver = .*$/m,
              (line) => opts.subscribe === true ? `${line}\nsubscribe = true` : line,
            )
            : c,
      );
    await withTopology("basic", lab, {
      encapsulation: opts.encapsulation,
      rlocProbeInterval: 0,
    }, async (ctx) => {
      const { lab } = ctx;
      const ms = await startOor(
        lab,
        "ms",
        "oor-ms",
        oorMsConfig({
          iface: "eth0",
          sites: [
            { eid: PLAN.site1Eid4, iid, key: PLAN.site1Key },
            { eid: PLAN.site2Eid4, iid, key: PLAN.site2Key },
          ],
          ...(opts.natConfigured ? { rtr: { address: PLAN.rtrRloc4, key: PLAN.rtrKey } } : {}),
        }),
      );
      // xtr2 started before OOR's map-server: it retries its Map-Register.
      const oor = await startOor(
        lab,
        "xtr1",
        "oor-xtr1",
        oorXtrConfig({
          encapsulation: opts.encapsulation,
          mapResolver: PLAN.ms4,
          mapServer: PLAN.ms4,
          key: PLAN.site1Key,
          mappings: [{ eid: PLAN.site1Eid4, iid, iface: "rloc0" }],
          probe: { interval: 0, retries: 0, retriesInterval: 1 },
        }),
      );
      const xtr2 = proc(ctx, "xtr2");
      const eid = (p: string) => iid === 0 ? dots(p) : `\\(IID ${iid}/32, EID ${dots(p)}\\)`;

      await step(t, `our xtr registers with OOR's map-server (iid ${iid})`, async () => {
        await xtr2.waitForLog(/ registered prefix=(\[\d+\])?10\.2\.0\.0\/24/, 20_000);
        await ms.waitForLog(
          new RegExp(`Message validated with key associated to EID ${eid(PLAN.site2Eid4)}`),
        );
        assert.doesNotMatch(ms.log(), /more specific of|unknown RTR|not in configured lisp-sites/);
        assert.ok(ms.process.alive(), "OOR's map-server still runs");
      });

      await step(t, `OOR xTR registers with OOR's map-server (iid ${iid})`, async () => {
        await oor.waitForLog(
          new RegExp(`Map-Notify message confirms correct registration of ${eid(PLAN.site1Eid4)}`),
        );
      });

      await step(
        t,
        `resolution through OOR's map-server: OOR xTR and our xtr; ${opts.encapsulation} data both ways (iid ${iid})`,
        async () => {
          await bothWays(lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
          await cachedWith(lab, "xtr2", PLAN.site1Eid4, [PLAN.xtr1Rloc4], iid);
          await oor.waitForLog(
            new RegExp(`Added Map Cache entry with EID prefix ${eid(PLAN.site2Eid4)}`),
          );
        },
      );

      if (opts.subscribe === true) {
        await step(
          t,
          "subscribing Map-Requests: OOR's map-server answers them as any",
          async () => {
            assert.ok(ms.process.alive(), "OOR's map-server still runs");
            // No publication from a map-server without publish/subscribe, and nothing refused.
            for (const result of ["applied", "auth"]) {
              const series = `oor_tr_publications_total{result="${result}"}`;
              assert.equal(await metric(lab, "xtr2", "127.0.0.1:9942", series), 0, series);
            }
          },
        );
      }
    }, edit);
  }, NEEDS);
}

oorMsTest(
  "interop: our xtr and OOR 1.3.0's xTR with OOR's map-server, iid 0, VXLAN-GPE",
  "e2e-interop-oms0",
  {
    iid: 0,
    encapsulation: "VXLAN-GPE",
    natConfigured: false,
  },
);
oorMsTest(
  "interop: our xtr subscribing (RFC 9437) with OOR's map-server, which answers as usual, iid 0, LISP",
  "e2e-interop-osub",
  { iid: 0, encapsulation: "LISP", natConfigured: false, subscribe: true },
);
oorMsTest(
  "interop: our xtr and OOR 1.3.0's xTR with OOR's NAT-configured map-server, iid 5, LISP",
  "e2e-interop-oms5",
  { iid: 5, encapsulation: "LISP", natConfigured: true },
);

// ---------------------------------------------------------------------------
// NAT traversal.

e2e(
  "interop: OOR 1.3.0's xTR behind a NAT through our rtr and ms",
  async (t) => {
    const edit = (topo: Topology) => keyType1(without(topo, ["xtr1"]));
    await withTopology("nat", "e2e-interop-nat1", { rlocProbeInterval: 0 }, async (ctx) => {
      const { lab } = ctx;
      const oor = await startOor(
        lab,
        "xtr1",
        "oor-xtr1",
        oorXtrConfig({
          mapResolver: PLAN.mr4,
          mapServer: PLAN.ms4,
          key: PLAN.site1Key,
          nat: true,
          mappings: [{ eid: PLAN.site1Eid4, iface: "rloc0" }],
        }),
      );
      const rtr = proc(ctx, "rtr");
      const ms = proc(ctx, "ms");

      await step(t, "OOR xTR registers through our rtr (Data-Map-Notify back)", async () => {
        await rtr.waitForLog(
          new RegExp(
            `rtr-nat-xtr-registered prefix=${dots(PLAN.site1Eid4)} .*xtr=${dots(PLAN.natPublic4)}:`,
          ),
          20_000,
        );
        await ms.waitForLog(
          new RegExp(`registered prefix=${dots(PLAN.site1Eid4)} .*rlocs=.*${dots(PLAN.rtrRloc4)}`),
        );
        await oor.waitForLog(/Received Data Map-Notify/);
        await oor.waitForLog(
          new RegExp(`Map-Notify message confirms correct registration of ${dots(PLAN.site1Eid4)}`),
        );
      });

      await step(t, "traffic both ways between OOR's site (behind the NAT) and ours", async () => {
        await proc(ctx, "xtr2").waitForLog(/ registered /, 15_000);
        await bothWays(lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
      });
    }, edit);
  },
  NEEDS,
);

for (const draft of ["OLD", "NEW"] as const) {
  e2e(
    `interop: our xtr behind a NAT through OOR 1.3.0's RTR (draft-version ${draft}) and map-server`,
    async (t) => {
      const edit = (topo: Topology) =>
        resolveThroughMs(msAddressOnly(keyType1(without(topo, ["ms", "mr", "rtr"]))));
      await withTopology("nat", `e2e-interop-nat-${draft.toLowerCase()}`, {
        rlocProbeInterval: 0,
      }, async (ctx) => {
        const { lab } = ctx;
        const ms = await startOor(
          lab,
          "ms",
          "oor-ms",
          oorMsConfig({
            iface: "eth0",
            sites: [
              { eid: PLAN.site1Eid4, key: PLAN.site1Key },
              { eid: PLAN.site2Eid4, key: PLAN.site2Key },
            ],
            rtr: { address: PLAN.rtrRloc4, key: PLAN.rtrKey },
          }),
        );
        const rtr = await startOor(
          lab,
          "rtr",
          "oor-rtr",
          oorRtrConfig({
            iface: "rloc0",
            mapResolver: PLAN.ms4,
            ms: { address: PLAN.ms4, key: PLAN.rtrKey, draft },
          }),
        );
        const xtr1 = proc(ctx, "xtr1");

        await step(t, "our xtr finds the NAT and OOR's RTR in the Info-Reply", async () => {
          await xtr1.waitForLog(
            new RegExp(
              `nat-detected .*global=${dots(PLAN.natPublic4)}:\\d+ .*rtrs=${dots(PLAN.rtrRloc4)}`,
            ),
            25_000,
          );
        });

        await step(t, "our xtr registers through OOR's RTR (Data-Map-Notify back)", async () => {
          await xtr1.waitForLog(
            new RegExp(`registered prefix=${dots(PLAN.site1Eid4)} .*via=${dots(PLAN.rtrRloc4)}`),
            25_000,
          );
          await rtr.waitForLog(/RTR: Received Encapsulated/);
          assert.ok(ms.process.alive(), "OOR's map-server still runs");
          assert.ok(rtr.process.alive(), "OOR's RTR still runs");
        });

        await step(
          t,
          "traffic both ways between our site (behind the NAT) and the other",
          async () => {
            await proc(ctx, "xtr2").waitForLog(/ registered /, 15_000);
            await bothWays(lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
          },
        );
      }, edit);
    },
    NEEDS,
  );
}
