/**
 * Tests of the lab library and topologies that need no privileges: the
 * declarations (names, addresses, generated oor.toml files). The labs
 * themselves are built in network namespaces in tests/lab_test.ts.
 */

import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { parseConfig } from "../../config/mod.ts";
import {
  Lab,
  LabError,
  namespaceName,
  parseNamespaceName,
  routeArgs,
  validateNetwork,
} from "./topology.ts";
import { LISP_ONLY_TOPOLOGIES, makeTopology, PLAN, TOPOLOGY_NAMES } from "./topologies.ts";

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
