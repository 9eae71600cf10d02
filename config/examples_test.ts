import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { loadConfig, parseRole } from "./mod.ts";
import { parseAddress, parsePrefix, prefixCovers } from "./_ip.ts";

const EXAMPLES = new URL("../examples/", import.meta.url);

function exampleFiles(): string[] {
  return [...Deno.readDirSync(EXAMPLES)]
    .filter((e) => e.isFile && e.name.endsWith(".toml"))
    .map((e) => e.name)
    .sort();
}

Deno.test("examples/ has one file per role", () => {
  deepStrictEqual(exampleFiles(), [
    "ddt-mr.toml",
    "ddt.toml",
    "mn.toml",
    "mr.toml",
    "ms.toml",
    "rtr.toml",
    "xtr.toml",
  ]);
});

Deno.test("every example is valid for its role, without warnings", async () => {
  for (const name of exampleFiles()) {
    const role = parseRole(name.replace(/\.toml$/, ""));
    strictEqual(role !== undefined, true, name);
    const r = await loadConfig(fileURLToPath(new URL(name, EXAMPLES)), role);
    deepStrictEqual(r.ok ? [] : r.errors.map(String), [], name);
    deepStrictEqual(r.warnings.map(String), [], name);
  }
});

/** Documentation, private, unique-local and loopback space only. */
const ALLOWED = [
  "127.0.0.0/8",
  "192.0.2.0/24",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "2001:db8::/32",
  "fc00::/7",
  "::1/128",
].map((t) => {
  const r = parsePrefix(t);
  if (!r.ok) throw new Error(r.reason);
  return r.prefix;
});

Deno.test("no example names an address outside documentation or private space", () => {
  for (const name of exampleFiles()) {
    const text = Deno.readTextFileSync(new URL(name, EXAMPLES));
    // Every quoted address or prefix, commented out or not.
    const quoted = text.matchAll(/"([0-9A-Fa-f.:]+)(?:\/([0-9]+))?(?::[0-9]+)?"/g);
    const bracketed = text.matchAll(/"\[([0-9A-Fa-f:]+)\]:[0-9]+"/g);
    const found = [...quoted, ...bracketed].map((m) => {
      const t = m[1]!;
      // "127.0.0.1:9942" matches whole: drop the port.
      return parseAddress(t) !== undefined ? t : t.replace(/:[0-9]+$/, "");
    }).filter((t) => parseAddress(t) !== undefined);
    strictEqual(found.length > 0, true, `${name} has addresses`);
    for (const text of found) {
      const a = parseAddress(text)!;
      const host = {
        family: a.family,
        address: a.text,
        length: a.family === 4 ? 32 : 128,
      } as const;
      strictEqual(
        ALLOWED.some((p) => prefixCovers(p, host)),
        true,
        `${name}: ${text} is not in a documentation or private range`,
      );
    }
  }
});
