import { deepStrictEqual, ok } from "node:assert/strict";
import { parseConfig } from "../config/validate.ts";
import { ROLES } from "../config/schema.ts";
import { COMMON_KEYS, ROLE_ONLY_KEYS, roleKeys, roleManual } from "./manual.ts";

/** The validator's list of top-level keys (`TOP_KEYS` in config/validate.ts). */
function validatorTopKeys(): string[] {
  const source = Deno.readTextFileSync(new URL("../config/validate.ts", import.meta.url));
  const m = /const TOP_KEYS = \[([\s\S]*?)\] as const;/.exec(source);
  ok(m !== null, "TOP_KEYS in config/validate.ts");
  return [...m[1]!.matchAll(/"([^"]+)"/g)].map((x) => x[1]!);
}

Deno.test("the manual lists every top-level key of oor.toml, once", () => {
  const listed = [...COMMON_KEYS, ...Object.keys(ROLE_ONLY_KEYS)];
  deepStrictEqual([...listed].sort(), [...new Set(validatorTopKeys())].sort());
  deepStrictEqual(new Set(listed).size, listed.length);
});

Deno.test("the keys the manual says a role reads are those the validator does not call ignored", () => {
  for (const role of ROLES) {
    const reads = new Set(roleKeys(role));
    for (const key of validatorTopKeys()) {
      // Any value: the "ignored by role" warning looks at the key alone.
      const r = parseConfig(`"${key}" = 0\n`, { role, file: "t.toml" });
      const ignored = r.warnings.some((w) =>
        String(w) === `t.toml:1: ${key}: ignored by role ${role}`
      );
      ok(
        ignored !== reads.has(key),
        `${role} ${key}: the manual says ${reads.has(key) ? "read" : "ignored"}`,
      );
    }
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
