import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { parseConfig } from "./mod.ts";

const XTR = [
  'map-resolver = ["192.0.2.1"]',
  "[[map-server]]",
  'address = "192.0.2.2"',
  "key-type = 1",
  'key = "k"',
  "[[database-mapping]]",
  'eid-prefix = "10.1.0.0/24"',
  "[[database-mapping.rloc-address]]",
  'address = "198.51.100.1"',
];

Deno.test("parseConfig() reads subscribe (RFC 9437) for xtr and mn, false by default", () => {
  for (const role of ["xtr", "mn"] as const) {
    const lines = role === "mn"
      ? XTR.map((l) => l === 'eid-prefix = "10.1.0.0/24"' ? 'eid-prefix = "10.1.0.1/32"' : l)
      : XTR;
    const on = parseConfig(["subscribe = true", ...lines].join("\n") + "\n", { role });
    ok(on.ok, on.ok ? "" : on.errors.map(String).join("\n"));
    strictEqual(on.config.subscribe, true);
    const off = parseConfig(lines.join("\n") + "\n", { role });
    ok(off.ok);
    strictEqual(off.config.subscribe, false);
  }
});

Deno.test("parseConfig() refuses a subscribe that is not a boolean, with its line", () => {
  const r = parseConfig(["subscribe = 1", ...XTR].join("\n") + "\n", { role: "xtr" });
  ok(!r.ok);
  deepStrictEqual(r.errors.map((e) => String(e).includes("subscribe") && e.line === 1), [true]);
});
