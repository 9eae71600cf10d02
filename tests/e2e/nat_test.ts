/**
 * End-to-end test of NAT traversal (draft-ietf-lisp-nat-traversal), in the
 * `nat` lab topology of scripts/lab/topologies.ts: xtr1 and hosta behind a
 * NAT namespace doing nftables masquerade, an rtr, the ms/mr and xtr2 with
 * hostb on the public underlay.
 *
 * - xtr1 learns it is behind a NAT from the map-server's Info-Reply,
 *   registers through the rtr, and UDP and ICMP go hosta ↔ hostb both
 *   ways through the rtr;
 * - the NAT mapping changes (another source address and a port range,
 *   conntrack flushed): xtr1 logs `nat-global-rloc-changed`, registers
 *   again, and traffic flows again both ways.
 *
 * The same again in `nat-mn`, with the mobile node behind the NAT in
 * xtr1's place (its EID on its TUN, no site behind it).
 *
 * Then every tunnel router is stopped with SIGTERM and its namespace
 * checked clean, as in e2e_test.ts. Needs root (namespaces, TUN, nft,
 * conntrack); skipped otherwise. `OOR_E2E_KEEP=1` keeps configs and logs.
 *
 * @module
 */

import assert from "node:assert/strict";
import { sleep } from "../../scripts/lab/topology.ts";
import { makeTopology, natRules, PLAN, upTopology } from "../../scripts/lab/topologies.ts";
import { assertClean as assertFrameClean, dissectFile, fieldValues } from "../tshark.ts";
import { assertClean, bothWays, capture, type Ctx, e2e, pingWorks, udpRoundTrips } from "./_lab.ts";
import { commandsMissing } from "../prereq.ts";

/** The port range the NAT box takes after the mapping changes (nft's range
 * is inclusive: 20100 is in it), and a pattern matching every port in it. */
const CHANGED_PORTS = "20000-20100";
const CHANGED_PORT = "20(?:0\\d\\d|100)(?!\\d)";

/** The NAT labs need nftables and conntrack (.ci/run installs them). */
const NAT_TOOLS = commandsMissing(["nft", "conntrack"], "apt-get install nftables conntrack");

/** Like `withTopology` (tests/_e2e.ts); the topology's setup puts the NAT rules in first. */
async function withNat(
  name: "nat" | "nat-mn",
  labName: string,
  fn: (ctx: Ctx) => Promise<void>,
): Promise<void> {
  const stateDir = await Deno.makeTempDir({ prefix: "oor-e2e-" });
  const topo = makeTopology(name, {});
  const { lab, started, skipped } = await upTopology(topo, {
    name: labName,
    stateDir,
    stopTimeoutMs: 8000,
  });
  try {
    assert.deepEqual(skipped.map((s) => s.spec.name), [], "every process of the topology runs");
    assert.match(
      await lab.execOk("nat", ["nft", "list", "table", "ip", "oor_lab_nat"]),
      /masquerade/,
      "the NAT box masquerades",
    );
    try {
      await fn({ lab, topo, started });
      for (const p of topo.lisp.filter((p) => ["xtr", "mn", "rtr"].includes(p.role))) {
        await lab.stop(p.name);
        const proc = lab.processes.get(p.name)!;
        assert.equal(proc.status?.code, 0, `${p.name} exited cleanly`);
        assert.match(proc.readLog(), /host-restored/, `${p.name} logged its clean-up`);
        await assertClean(lab, p.node);
      }
    } catch (e) {
      for (const p of lab.processes.values()) {
        const tail = p.readLog().split("\n").slice(-30).join("\n    ");
        console.error(`--- ${p.name} (${p.log}):\n    ${tail}`);
      }
      throw e;
    }
  } finally {
    await lab.down();
    if (Deno.env.get("OOR_E2E_KEEP") === "1") console.error(`logs kept in ${stateDir}/${labName}`);
    else await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
}

/** The NAT box's UDP conntrack entries towards `dst` port `dport`, as text. */
async function flows(ctx: Ctx, dst: string, dport: number): Promise<string> {
  const r = await ctx.lab.exec("nat", [
    "conntrack",
    "-L",
    "-p",
    "udp",
    "--orig-dst",
    dst,
    "--dport",
    String(dport),
  ]);
  return r.stdout;
}

e2e(
  "e2e nat: xtr1 behind a NAT reaches hostb through the rtr, also after the NAT mapping changes",
  async () => {
    await withNat("nat", "e2e-nat", async (ctx) => {
      const { lab } = ctx;
      const proc = (n: string) => ctx.started.find((p) => p.name === n)!;
      // Every control message on the underlay: on the control port, and
      // the ECM'd Map-Registers from xtr1's data port. What the rtr sends
      // from its control port to another port is data (through the NAT
      // binding xtr1's Map-Registers opened) or a Data-Map-Notify: a
      // second capture, decoded as LISP data.
      const rtrData = `src host ${PLAN.rtrRloc4} and src port 4342 and not dst port 4342`;
      const pcap = await lab.writeFile("control.pcap", "");
      await capture(
        lab,
        "router",
        "any",
        `inbound and udp and port 4342 and not (${rtrData})`,
        pcap,
      );
      const natPcap = await lab.writeFile("rtr-nat.pcap", "");
      await capture(lab, "router", "any", `inbound and udp and ${rtrData}`, natPcap, "capture-nat");
      const xtr1 = proc("xtr1");
      const rtr = proc("rtr");
      // Discovery: the Info-Reply shows the masquerading address.
      await xtr1.waitForLog(
        new RegExp(
          `nat-detected .*global=${PLAN.natPublic4.replaceAll(".", "\\.")}:\\d+ .*rtrs=${
            PLAN.rtrRloc4.replaceAll(".", "\\.")
          }`,
        ),
        15_000,
      );
      // Registration through the rtr; the rtr learns xtr1's translated address.
      await xtr1.waitForLog(/ registered /, 15_000);
      await proc("xtr2").waitForLog(/ registered /, 15_000);
      await rtr.waitForLog(
        new RegExp(`rtr-nat-xtr-registered .*xtr=${PLAN.natPublic4.replaceAll(".", "\\.")}:`),
        10_000,
      );
      // The map-server answers for site 1 with the rtr as its locator.
      const ms = proc("ms");
      await ms.waitForLog(
        new RegExp(
          `registered .*prefix=10\\.1\\.0\\.0/24 .*rlocs=${PLAN.rtrRloc4.replaceAll(".", "\\.")}`,
        ),
        5_000,
      );

      await bothWays(lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
      // The data went xtr1:4341 -> rtr:4341 through the NAT.
      assert.match(await flows(ctx, PLAN.rtrRloc4, 4341), /sport=4341/, "a data flow to the rtr");

      // The NAT mapping changes: another source address, another port range.
      const changed = await lab.writeFile(
        "nat2.nft",
        natRules(`${PLAN.natPublic4b}:${CHANGED_PORTS}`),
      );
      await lab.execOk("nat", ["nft", "delete", "table", "ip", "oor_lab_nat"]);
      await lab.execOk("nat", ["nft", "-f", changed]);
      await lab.execOk("nat", ["conntrack", "-F"]);
      await xtr1.waitForLog(
        new RegExp(
          `nat-global-rloc-changed .*to=${PLAN.natPublic4b.replaceAll(".", "\\.")}:${CHANGED_PORT}`,
        ),
        25_000,
      );
      await rtr.waitForLog(
        new RegExp(
          `rtr-nat-xtr-registered .*xtr=${PLAN.natPublic4b.replaceAll(".", "\\.")}:${CHANGED_PORT}`,
        ),
        10_000,
      );
      // hostb first: the rtr must now use the new translated address and port.
      await pingWorks(lab, "hostb", PLAN.hostA4, 15_000);
      await pingWorks(lab, "hosta", PLAN.hostB4, 15_000);
      await sleep(200);
      const ba = await udpRoundTrips(lab, "hostb", PLAN.hostA4);
      assert.ok(ba >= 8, `hostb → hosta UDP after the change: ${ba}/10 echoes`);
      const ab = await udpRoundTrips(lab, "hosta", PLAN.hostB4);
      assert.ok(ab >= 8, `hosta → hostb UDP after the change: ${ab}/10 echoes`);
      assert.match(
        await flows(ctx, PLAN.rtrRloc4, 4341),
        new RegExp(
          `dst=${PLAN.natPublic4b.replaceAll(".", "\\.")} sport=4341 dport=${CHANGED_PORT}`,
        ),
        "the data flow uses the new mapping",
      );

      // Wireshark's dissector reads every control message cleanly.
      await lab.stop("capture");
      await lab.stop("capture-nat");
      // The kernel leaves outer UDP checksums to veth offload, so they are
      // not final in a capture: tshark's UDP checksum check is off here
      // (tests/tshark_test.ts checks the checksums we compute).
      const noChecksum = ["udp.check_checksum:FALSE"];
      const frames = await dissectFile(pcap, { preferences: noChecksum });
      // The rtr's data to xtr1, and the Map-Notify relayed in a LISP data
      // packet with IID 0xFFFFFF (its inner IP/UDP to xtr1's control port).
      const natFrames = await dissectFile(natPcap, {
        decodeAs: ["udp.port==4342,lisp-data"],
        preferences: noChecksum,
      });
      let dataMapNotify = 0;
      for (const f of natFrames) {
        assertFrameClean(f);
        if (fieldValues(f, "lisp.type").includes("4")) dataMapNotify++;
      }
      assert.ok(natFrames.length > 0, "the rtr sent data to xtr1 from its control port");
      assert.ok(dataMapNotify > 0, "a Data-Map-Notify went to xtr1");
      const types = new Set<string>();
      const privates = new Set<string>();
      for (const f of frames) {
        assertFrameClean(f);
        // An Info-Reply's NAT LCAF: global ETR, MS, private ETR, RTRs.
        if (fieldValues(f, "lisp.info.r")[0] === "1") {
          const rlocs = fieldValues(f, "lisp.lcaf.natt.rloc.ipv4");
          if (rlocs[2] !== undefined) privates.add(rlocs[2]);
        }
        const t = fieldValues(f, "lisp.type");
        const info = fieldValues(f, "lisp.info.r");
        types.add(
          t.join(">") + (info.length > 0 ? (info[0] === "1" ? " reply" : " request") : ""),
        );
      }
      for (const want of ["7 request", "7 reply", "8>3", "4"]) {
        assert.ok(types.has(want), `captured ${want} (have: ${[...types].join(", ")})`);
      }
      // Once the rtr relayed xtr1's registration, the ms knows its private RLOC.
      assert.ok(
        privates.has(PLAN.xtr1Private4),
        `an Info-Reply gives the private ETR RLOC (have: ${[...privates].join(", ")})`,
      );
    });
  },
  NAT_TOOLS,
);
e2e(
  "e2e nat-mn: the mobile node behind a NAT reaches hostb through the rtr, also after the NAT mapping changes",
  async () => {
    await withNat("nat-mn", "e2e-nat-mn", async (ctx) => {
      const { lab } = ctx;
      const proc = (n: string) => ctx.started.find((p) => p.name === n)!;
      const mn = proc("mn");
      const dots = (a: string) => a.replaceAll(".", "\\.");
      await mn.waitForLog(
        new RegExp(
          `nat-detected .*global=${dots(PLAN.natPublic4)}:\\d+ .*rtrs=${dots(PLAN.rtrRloc4)}`,
        ),
        15_000,
      );
      await mn.waitForLog(/ registered /, 15_000);
      await proc("xtr2").waitForLog(/ registered /, 15_000);
      await proc("ms").waitForLog(
        new RegExp(`registered .*prefix=${dots(PLAN.mnEid4)}/32 .*rlocs=${dots(PLAN.rtrRloc4)}`),
        10_000,
      );
      // From the mobile node's EID (its TUN address) to hostb and back.
      await bothWays(lab, "mn", PLAN.mnEid4, "hostb", PLAN.hostB4);

      // The NAT mapping changes; the mobile node learns its new global RLOC.
      const changed = await lab.writeFile(
        "nat2.nft",
        natRules(`${PLAN.natPublic4b}:${CHANGED_PORTS}`),
      );
      await lab.execOk("nat", ["nft", "delete", "table", "ip", "oor_lab_nat"]);
      await lab.execOk("nat", ["nft", "-f", changed]);
      await lab.execOk("nat", ["conntrack", "-F"]);
      await mn.waitForLog(
        new RegExp(`nat-global-rloc-changed .*to=${dots(PLAN.natPublic4b)}:${CHANGED_PORT}`),
        25_000,
      );
      await pingWorks(lab, "hostb", PLAN.mnEid4, 15_000);
      await pingWorks(lab, "mn", PLAN.hostB4, 15_000);
      const n = await udpRoundTrips(lab, "mn", PLAN.hostB4);
      assert.ok(n >= 8, `mn → hostb UDP after the change: ${n}/10 echoes`);
      assert.match(
        await flows(ctx, PLAN.rtrRloc4, 4341),
        new RegExp(`dst=${dots(PLAN.natPublic4b)} sport=4341 dport=${CHANGED_PORT}`),
        "the data flow uses the new mapping",
      );
    });
  },
  NAT_TOOLS,
);
