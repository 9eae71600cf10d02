/**
 * The labs of scripts/lab/ built for real in network namespaces (root):
 * the underlay routes, the ms answers lig, and tearing a lab down leaves
 * nothing behind, also after a crash.
 */

import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import {
  LabError,
  labNamespaces,
  listNamespaces,
  namespaceName,
  pidAlive,
  readState,
  run,
  teardownLab,
} from "../../scripts/lab/topology.ts";
import { lig, makeTopology, PLAN, upTopology } from "../../scripts/lab/topologies.ts";
import { rootMissing, testNeeding } from "../prereq.ts";

// ---------------------------------------------------------------------------
// Labs (root).

/** Host veth interfaces (none of ours should ever be there). */
async function hostVeths(): Promise<string[]> {
  const r = await run(["ip", "-o", "link", "show", "type", "veth"]);
  return r.stdout.split("\n").filter((l) => l.trim() !== "").map((l) => l.split(":")[1]!.trim());
}

/** Pids whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      if (cmd.includes(text) && pidAlive(Number(e.name))) out.push(Number(e.name));
    } catch { /* gone */ }
  }
  return out;
}

testNeeding(rootMissing(), {
  name: "basic lab: the underlay routes between the xTRs, the ms answers lig, down leaves nothing",
  sanitizeResources: true,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "oor-lab-test-" });
    const vethsBefore = await hostVeths();
    const topo = makeTopology("basic");
    // Only the mapping system: with the tunnel routers up, EIDs would cross.
    const { lab, started, skipped } = await upTopology(topo, {
      name: "tbasic",
      stateDir: tmp,
      stopTimeoutMs: 3000,
      only: ["ms", "mr"],
    });
    const pids = started.map((p) => p.pid);
    try {
      // The mapping system runs; the tunnel routers are reported, not hidden.
      ok(started.some((p) => p.name === "ms"), "the ms started");
      for (const p of started) ok(p.alive(), `${p.name} is running`);
      for (const s of skipped) ok(!started.some((p) => p.name === s.spec.name));
      strictEqual(started.length + skipped.length, topo.lisp.length);
      deepStrictEqual(
        (await labNamespaces("tbasic")).map((n) => n.node).sort(),
        topo.nodes.map((n) => n.name).sort(),
      );
      ok(readState("tbasic", tmp)?.processes.some((p) => p.name === "ms"), "state has the ms");

      // Underlay: RLOC to RLOC across the router, and to the ms.
      ok(await lab.ping("xtr1", PLAN.xtr2Rloc4), "xtr1 reaches xtr2's RLOC");
      ok(await lab.ping("xtr2", PLAN.xtr1Rloc4), "xtr2 reaches xtr1's RLOC");
      ok(await lab.ping("xtr1", PLAN.ms4), "xtr1 reaches the ms");
      // The router knows no EID: without LISP, site 1 cannot reach site 2.
      ok(!(await lab.ping("hosta", PLAN.hostB4)), "EIDs are not routed natively");
      ok(await lab.ping("hosta", PLAN.xtr1Eid4), "hosta reaches its xTR");
      // A lab is closed: nothing routes to the host's networks.
      const route = await lab.exec("router", ["ip", "route", "get", "192.0.2.1"]);
      ok(route.code !== 0, "the router has no route to the host's network");

      // The ms answers for its static registration, directly and via the mr.
      const q = topo.staticLookup;
      const direct = await lig(lab, q.from, q.eid, q.ms);
      strictEqual(direct.code, 0, `lig via the ms: ${direct.stderr}`);
      strictEqual(direct.negative, false);
      strictEqual(direct.eidPrefix, PLAN.staticSite4);
      deepStrictEqual(direct.locators, [q.rloc]);
      const viaMr = await lig(lab, q.from, q.eid, q.mr);
      strictEqual(viaMr.code, 0, `lig via the mr: ${viaMr.stderr}`);
      deepStrictEqual(viaMr.locators, [q.rloc]);
      strictEqual(viaMr.replier, `${q.ms}:4342`, "the ms proxy-replies to the mr's request");
      ok(started[0]!.readLog().includes("started"), "the ms logs to its log file");
    } finally {
      await lab.down();
    }
    deepStrictEqual(await labNamespaces("tbasic"), [], "no namespace left");
    const names = await listNamespaces();
    ok(!names.some((n) => n.startsWith("oor-tbasic-")), "ip netns list shows none");
    deepStrictEqual(await hostVeths(), vethsBefore, "no veth left on the host");
    for (const pid of pids) ok(!pidAlive(pid), `pid ${pid} is gone`);
    deepStrictEqual(processesMentioning(`${tmp}/tbasic/`), [], "no lab process left");
    strictEqual(readState("tbasic", tmp), undefined, "state file removed");
    ok((await Deno.stat(`${tmp}/tbasic/ms.log`)).isFile, "logs stay after down");
    await Deno.remove(tmp, { recursive: true });
  },
});

testNeeding(rootMissing(), {
  name: "lab up twice rebuilds the lab, lab down twice is harmless",
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "oor-lab-test-" });
    const topo = makeTopology("basic");
    const opts = { name: "tidem", stateDir: tmp, stopTimeoutMs: 3000, only: ["ms"] };
    const first = await upTopology(topo, opts);
    let second: Awaited<ReturnType<typeof upTopology>> | undefined;
    try {
      const firstMs = first.started[0]!;
      // A second Lab object, as a second `lab up` in another process would be.
      second = await upTopology(topo, opts);
      ok(!pidAlive(firstMs.pid), "the first ms was stopped");
      strictEqual((await labNamespaces("tidem")).length, topo.nodes.length);
      ok(second.started[0]!.alive(), "the second ms runs");
      ok(await second.lab.ping("xtr1", PLAN.xtr2Rloc4), "the rebuilt underlay works");
      deepStrictEqual(readState("tidem", tmp)?.processes.map((p) => p.pid), [
        second.started[0]!.pid,
      ]);
    } finally {
      await (second ?? first).lab.down();
      await first.lab.down();
    }
    deepStrictEqual(await labNamespaces("tidem"), []);
    await first.lab.down();
    await Deno.remove(tmp, { recursive: true });
  },
});

testNeeding(rootMissing(), {
  name: "teardownLab() removes a half-built lab and what runs in it",
  async fn() {
    const a = namespaceName("thalf", "a");
    const b = namespaceName("thalf", "b");
    await run(["ip", "netns", "add", a]);
    await run(["ip", "netns", "add", b]);
    const sleeper = new Deno.Command("ip", {
      args: ["netns", "exec", a, "sleep", "60"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const r = await teardownLab("thalf", { timeoutMs: 2000 });
      deepStrictEqual([...r.namespaces].sort(), [a, b]);
      deepStrictEqual(r.stopped, [sleeper.pid]);
      deepStrictEqual(await labNamespaces("thalf"), []);
      strictEqual((await sleeper.status).signal, "SIGTERM");
      const again = await teardownLab("thalf");
      deepStrictEqual(again.namespaces, []);
    } finally {
      try {
        sleeper.kill("SIGKILL");
      } catch { /* gone */ }
      await sleeper.status;
      await run(["ip", "netns", "delete", a]);
      await run(["ip", "netns", "delete", b]);
    }
  },
});

testNeeding(rootMissing(), {
  name: "Lab.setLink() takes a link down and, back up, restores the node's routes",
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "oor-lab-test-" });
    const { lab } = await upTopology(makeTopology("multihoming"), {
      name: "tlink",
      stateDir: tmp,
      noStart: true,
    });
    try {
      await lab.setLink("xtr1", "rloc0", false);
      const down = await lab.execOk("xtr1", ["ip", "route", "show", "default"]);
      ok(!down.includes("rloc0") && down.includes("rloc1"), `backup default only: ${down}`);
      ok(await lab.ping("xtr1", PLAN.xtr2Rloc4), "xtr2 reached over rloc1");
      await lab.setLink("xtr1", "rloc0", true);
      const up = await lab.execOk("xtr1", ["ip", "route", "show", "default"]);
      ok(up.includes("rloc0") && up.includes("rloc1"), `both defaults again: ${up}`);
      await rejects(lab.execOk("xtr1", ["ip", "link", "show", "nosuch0"]), LabError);
    } finally {
      await lab.down();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
