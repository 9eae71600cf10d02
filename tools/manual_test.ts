import { deepStrictEqual, ok } from "node:assert/strict";
import { ROLES } from "../config/schema.ts";
import { readsKey, roleKeys, roleManual, TOP_LEVEL_KEYS } from "./manual.ts";

/** The validator's list of top-level keys (`TOP_KEYS` in config/validate.ts). */
function validatorTopKeys(): string[] {
  const source = Deno.readTextFileSync(new URL("../config/validate.ts", import.meta.url));
  const m = /const TOP_KEYS = \[([\s\S]*?)\] as const;/.exec(source);
  ok(m !== null, "TOP_KEYS in config/validate.ts");
  return [...m[1]!.matchAll(/"([^"]+)"/g)].map((x) => x[1]!);
}

Deno.test("the manual knows every top-level key of oor.toml, once", () => {
  const missing = validatorTopKeys().filter((k) => !TOP_LEVEL_KEYS.includes(k));
  deepStrictEqual(missing, [], "add these to TOP_LEVEL_KEYS in tools/manual.ts");
  deepStrictEqual(new Set(TOP_LEVEL_KEYS).size, TOP_LEVEL_KEYS.length);
});

Deno.test("the keys of a role's manual are those check-config reads for it", () => {
  const reads = (role: (typeof ROLES)[number]) => new Set(roleKeys(role));
  for (const role of ROLES) {
    for (const k of ["operating-mode", "debug", "log-file", "control-address", "api"]) {
      ok(reads(role).has(k), `${role} ${k}`);
    }
  }
  ok(reads("xtr").has("database-mapping") && !reads("xtr").has("lisp-site"));
  ok(reads("ms").has("lisp-site") && !reads("ms").has("database-mapping"));
  ok(reads("rtr").has("rtr-iface") && !reads("mn").has("rtr-iface"));
  ok(reads("ddt").has("ddt-auth-site") && !reads("mr").has("ddt-auth-site"));
  ok(reads("mr").has("map-server") && !reads("ms").has("map-server"));
  // Not a key at all: never listed.
  ok(!readsKey("xtr", "no-such-key"));
  for (const role of ROLES) {
    const listed = roleManual(role).replace(/\n {12}/g, " ");
    for (const k of roleKeys(role)) ok(listed.includes(` ${k}`), `${role}: ${k}`);
  }
});

Deno.test("each role's manual says what it needs, its capabilities, signals, files and exit status", () => {
  for (const role of ROLES) {
    const text = roleManual(role);
    for (
      const heading of [
        "Configuration",
        "Host:",
        "Running:",
        "HTTP API",
        "Files:",
        "Environment:",
        "Exit status:",
      ]
    ) ok(text.includes(`\n${heading}`), `${role}: ${heading}`);
    ok(text.includes(`examples/${role}.toml`), role);
    const tunnel = ["xtr", "mn", "rtr"].includes(role);
    ok(text.includes("CAP_NET_ADMIN") === tunnel, `${role}: capabilities`);
    ok(text.includes("setcap cap_net_admin,cap_net_raw+ep") === tunnel, `${role}: setcap`);
    for (const line of text.split("\n")) ok(line.length <= 80, `${role}: ${line}`);
  }
});
