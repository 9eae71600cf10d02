/**
 * Tests of the lab library and topologies. The declarations (names,
 * addresses, generated oor.toml files) are checked without privileges; the
 * labs themselves are built in network namespaces and need root: those
 * tests are skipped otherwise, saying why.
 */

import { deepStrictEqual, ok, rejects, strictEqual, throws } from "node:assert/strict";
import { parseConfig } from "../../config/mod.ts";
import {
  isRoot,
  Lab,
  LabError,
  labNamespaces,
  listNamespaces,
  namespaceName,
  parseNamespaceName,
  pidAlive,
  readState,
  routeArgs,
  run,
  teardownLab,
  validateNetwork,
} from "./topology.ts";
import {
  lig,
  LISP_ONLY_TOPOLOGIES,
  makeTopology,
  PLAN,
  TOPOLOGY_NAMES,
  upTopology,
} from "./topologies.ts";

const ROOT = isRoot();
const SKIP_REASON = "lab tests need root (network namespaces): run them as root to include them";
if (!ROOT) console.warn(`scripts/lab/topology_test.ts: skipping the lab tests: ${SKIP_REASON}`);

// ---------------------------------------------------------------------------
// Declarations (no privileges).

Deno.test("every topology's oor.toml files are valid configs for their role", () => {
  for (const name of TOPOLOGY_NAMES) {
    for (const encapsulation of ["LISP", "VXLAN-GPE"] as const) {
      if (encapsulation !== "LISP" && LISP_ONLY_TOPOLOGIES.has(name)) {
        throws(() => makeTopology(name, { encapsulation }), /LISP encapsulation only/);
        continue;
      }
      const topo = makeTopology(name, { encapsulation, rlocProbeInterval: 3, debug: 1 });
      ok(topo.lisp.length > 0, `${name} has LISP processes`);
      for (const p of topo.lisp) {
        const r = parseConfig(p.config, { role: p.role, file: `${name}/${p.name}.toml` });
        ok(r.ok, `${name}/${p.name}: ${r.ok ? "" : r.errors.map(String).join("; ")}`);
        deepStrictEqual(r.warnings.map(String), [], `${name}/${p.name} has no warnings`);
        if (p.role === "xtr" || p.role === "mn" || p.role === "rtr") {
          strictEqual(r.config.encapsulation, encapsulation);
        }
        strictEqual(`${r.config.api.host}:${r.config.api.port}`, p.api);
        strictEqual(r.config.api.host, "127.0.0.1", "the API listens on loopback only");
      }
    }
  }
});

Deno.test("every topology is a valid network with one API port per process and node", () => {
  for (const name of TOPOLOGY_NAMES) {
    const topo = makeTopology(name);
    validateNetwork(topo);
    const nodes = new Set(topo.nodes.map((n) => n.name));
    const apis = new Set<string>();
    const names = new Set<string>();
    for (const p of topo.lisp) {
      ok(nodes.has(p.node), `${name}/${p.name} runs in a node of the topology`);
      ok(!names.has(p.name), `${name}: process name ${p.name} is unique`);
      names.add(p.name);
      const key = `${p.node} ${p.api}`;
      ok(!apis.has(key), `${name}: ${key} is used once`);
      apis.add(key);
    }
    ok(nodes.has(topo.staticLookup.from), `${name}: the static lookup runs from a node`);
  }
});

Deno.test("no topology uses the host's 192.0.2.0/24 or assigns an address twice", () => {
  for (const name of TOPOLOGY_NAMES) {
    const topo = makeTopology(name);
    const seen = new Map<string, string>();
    for (const l of topo.links) {
      for (const end of [l.a, l.b]) {
        for (const a of end.addresses ?? []) {
          ok(!a.startsWith("192.0.2."), `${name}: ${end.node} ${a} is not 192.0.2.x`);
          // tenants: the same EIDs once per tenant (xTR iface siteN, host tN*).
          const tenant = name !== "tenants"
            ? ""
            : end.iface.startsWith("site")
            ? ` tenant ${end.iface.slice(4)}`
            : /^t\d/.test(end.node)
            ? ` tenant ${end.node[1]}`
            : "";
          const ip = a.split("/")[0]! + tenant;
          ok(!seen.has(ip), `${name}: ${ip} on ${end.node} and ${seen.get(ip)}`);
          seen.set(ip, end.node);
        }
      }
    }
    for (const p of topo.lisp) ok(!p.config.includes("192.0.2."), `${name}/${p.name} config`);
  }
});

Deno.test("the addressing plan matches the basic topology's interfaces", () => {
  const topo = makeTopology("basic");
  const addrs = (node: string) =>
    topo.links.flatMap((l) => [l.a, l.b]).filter((e) => e.node === node).flatMap((e) =>
      (e.addresses ?? []).map((a) => a.split("/")[0])
    );
  deepStrictEqual(addrs("xtr1"), [PLAN.xtr1Rloc4, PLAN.xtr1Eid4]);
  deepStrictEqual(addrs("xtr2"), [PLAN.xtr2Rloc4, PLAN.xtr2Eid4]);
  deepStrictEqual(addrs("hosta"), [PLAN.hostA4]);
  deepStrictEqual(addrs("ms"), [PLAN.ms4, PLAN.mr4]);
  const router = topo.nodes.find((n) => n.name === "router")!;
  strictEqual(router.forwarding, true);
  deepStrictEqual(router.routes ?? [], [], "the router knows no EID route");
});

Deno.test("namespaceName() and parseNamespaceName() round-trip, other names are not labs", () => {
  strictEqual(namespaceName("basic", "xtr1"), "oor-basic-xtr1");
  deepStrictEqual(parseNamespaceName("oor-basic-xtr1"), { lab: "basic", node: "xtr1" });
  deepStrictEqual(parseNamespaceName("oor-ipv6-rloc-hosta"), { lab: "ipv6-rloc", node: "hosta" });
  strictEqual(parseNamespaceName("blue"), undefined);
  strictEqual(parseNamespaceName("oor-basic"), undefined);
});

Deno.test("routeArgs() spells default routes per family so they work in ip -batch", () => {
  deepStrictEqual(routeArgs({ to: "default", via: "100.64.1.1", metric: 100 }), [
    "route",
    "replace",
    "0.0.0.0/0",
    "via",
    "100.64.1.1",
    "metric",
    "100",
  ]);
  deepStrictEqual(routeArgs({ to: "default", via: "2001:db8:64:1::1" }).slice(0, 3), [
    "route",
    "replace",
    "::/0",
  ]);
});

Deno.test("Lab rejects bad lab names and inconsistent networks", () => {
  throws(() => new Lab({ nodes: [], links: [] }, { name: "Bad_Name" }), LabError);
  throws(
    () =>
      new Lab({
        nodes: [{ name: "a" }],
        links: [{ a: { node: "a", iface: "e0" }, b: { node: "b", iface: "e1" } }],
      }, { name: "x" }),
    /no node "b"/,
  );
  throws(
    () =>
      validateNetwork({
        nodes: [{ name: "a" }, { name: "b" }],
        links: [{
          a: { node: "a", iface: "much-too-long-name" },
          b: { node: "b", iface: "e0", addresses: ["10.0.0.1"] },
        }],
      }),
    /bad interface name[\s\S]*ADDRESS\/LENGTH/,
  );
});

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

Deno.test({
  name: "basic lab: the underlay routes between the xTRs, the ms answers lig, down leaves nothing",
  ignore: !ROOT,
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

Deno.test({
  name: "lab up twice rebuilds the lab, lab down twice is harmless",
  ignore: !ROOT,
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

Deno.test({
  name: "teardownLab() removes a half-built lab and what runs in it",
  ignore: !ROOT,
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

Deno.test({
  name: "Lab.setLink() takes a link down and, back up, restores the node's routes",
  ignore: !ROOT,
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
