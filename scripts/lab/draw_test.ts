import assert from "node:assert/strict";
import { drawNetwork, type NetModel } from "./draw.ts";

const up = (name: string, ...addresses: string[]) => ({ name, addresses, up: true });

Deno.test("drawNetwork() draws a lab as a tree from the router: links, addresses, TUNs, processes", () => {
  const model: NetModel = {
    nodes: [
      { name: "hostb", ifaces: [up("eth0", "10.2.0.10/24")] },
      { name: "mn", ifaces: [up("rloc0", "100.64.1.3/24"), up("lispTun0", "10.3.0.5/32")] },
      {
        name: "router",
        ifaces: [
          up("to-mn", "100.64.1.1/24"),
          up("to-ms", "100.64.100.1/24"),
          up("to-xtr2", "100.64.2.1/24"),
        ],
      },
      { name: "ms", ifaces: [up("eth0", "100.64.100.2/24", "100.64.100.3/24")] },
      {
        name: "xtr2",
        ifaces: [
          up("rloc0", "100.64.2.2/24"),
          up("site0", "10.2.0.1/24"),
          { name: "lispTun0", addresses: [], up: false },
        ],
      },
    ],
    links: [
      { a: { node: "mn", iface: "rloc0" }, b: { node: "router", iface: "to-mn" } },
      { a: { node: "router", iface: "to-ms" }, b: { node: "ms", iface: "eth0" } },
      { a: { node: "router", iface: "to-xtr2" }, b: { node: "xtr2", iface: "rloc0" } },
      { a: { node: "xtr2", iface: "site0" }, b: { node: "hostb", iface: "eth0" } },
    ],
  };
  const notes = new Map([
    ["mn", "[mn: running]"],
    ["ms", "[ms: running; mr: running]"],
  ]);
  assert.deepEqual(drawNetwork(model, notes), [
    "router",
    "├── to-mn 100.64.1.1/24 ─── rloc0 100.64.1.3/24  mn  [mn: running]",
    "│     lispTun0 10.3.0.5/32",
    "├── to-ms 100.64.100.1/24 ─── eth0 100.64.100.2/24 100.64.100.3/24  ms  [ms: running; mr: running]",
    "└── to-xtr2 100.64.2.1/24 ─── rloc0 100.64.2.2/24  xtr2",
    "      lispTun0 (down)",
    "    └── site0 10.2.0.1/24 ─── eth0 10.2.0.10/24  hostb",
  ]);
});

Deno.test("drawNetwork() draws a second link to a node once, and nodes without links on their own", () => {
  const model: NetModel = {
    nodes: [
      {
        name: "router",
        ifaces: [up("to-xtr1", "100.64.1.1/24"), up("to-xtr1b", "100.64.11.1/24")],
      },
      { name: "xtr1", ifaces: [up("rloc0", "100.64.1.2/24"), up("rloc1", "100.64.11.2/24")] },
      { name: "lonely", ifaces: [] },
    ],
    links: [
      { a: { node: "xtr1", iface: "rloc0" }, b: { node: "router", iface: "to-xtr1" } },
      { a: { node: "xtr1", iface: "rloc1" }, b: { node: "router", iface: "to-xtr1b" } },
    ],
  };
  assert.deepEqual(drawNetwork(model), [
    "router",
    "├── to-xtr1 100.64.1.1/24 ─── rloc0 100.64.1.2/24  xtr1",
    "└── to-xtr1b 100.64.11.1/24 ─── rloc1 100.64.11.2/24  xtr1 (again)",
    "lonely",
  ]);
  assert.deepEqual(drawNetwork({ nodes: [], links: [] }), []);
});
