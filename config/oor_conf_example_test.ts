/**
 * OOR 1.3.0's own `oor.conf.example` (tests/fixtures/oor.conf.example, as
 * OOR ships it) with its placeholders filled in as a user would
 * (tests/fixtures/oor.conf.example.filled): it converts for every role, and
 * every key OOR documents or parses converts, or is named as unsupported
 * with the reason.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import {
  OOR_CONF_DROPPED,
  OOR_CONF_KEYS,
  OOR_CONF_RENAMED,
  parseOorConf,
  parseOorConfTree,
  UNSUPPORTED_KEYS,
} from "./oor_conf.ts";
import type { ConfEntry } from "./oor_conf.ts";
import { OPERATING_MODE_NAMES, ROLES } from "./schema.ts";
import { runConvertConfig } from "../tools/convert_config.ts";

const FIXTURES = new URL("../tests/fixtures/", import.meta.url);
const ORIGINAL = Deno.readTextFileSync(new URL("oor.conf.example", FIXTURES));
const FILLED_PATH = new URL("oor.conf.example.filled", FIXTURES).pathname;
const FILLED = Deno.readTextFileSync(FILLED_PATH);

/** The filled example with `operating-mode` set to the mode of `role`. */
function filledFor(role: (typeof ROLES)[number]): string {
  let text = FILLED.replace(
    /^operating-mode += xTR$/m,
    `operating-mode = ${OPERATING_MODE_NAMES[role]}`,
  );
  // A mobile node's EID is one address: its user writes a host prefix.
  if (role === "mn") {
    text = text.replace(
      "database-mapping {\n    eid-prefix          = 10.1.1.0/24",
      "database-mapping {\n    eid-prefix          = 10.1.1.5/32",
    );
  }
  return text;
}

/** Every dotted key path of a parsed file, sections included. */
function keyPaths(entries: readonly ConfEntry[], path = "", out = new Set<string>()): Set<string> {
  for (const e of entries) {
    const p = path === "" ? e.name : `${path}.${e.name}`;
    out.add(p);
    if (e.kind === "section") keyPaths(e.entries, p, out);
  }
  return out;
}

/** The lines of `a` that are not in a longest common subsequence of `a` and `b`. */
function removedLines(a: readonly string[], b: readonly string[]): string[] {
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j]
        ? lcs[i + 1]![j + 1]! + 1
        : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n) {
    if (j < m && a[i] === b[j]) {
      i++;
      j++;
    } else if (j < m && lcs[i]![j + 1]! >= lcs[i + 1]![j]!) {
      j++;
    } else {
      out.push(a[i]!);
      i++;
    }
  }
  return out;
}

Deno.test("the filled oor.conf.example differs from OOR's only where OOR wrote a placeholder or commented a key out", () => {
  const removed = removedLines(ORIGINAL.split("\n"), FILLED.split("\n"));
  // `<ip-address>`, `[true|false]`, a `...` line, or the commented-out
  // allowed-dst-eids and proxy-itrs lists.
  const placeholder =
    /<[^>]*>|\[[A-Za-z]+\|[A-Za-z]+\]|^\s*\.\.\.\s*$|^#( ?allowed-dst-eids|proxy-itrs| |\s*\d|})/;
  deepStrictEqual(removed.filter((l) => !placeholder.test(l)), []);
  ok(removed.length > 50, `${removed.length} lines filled in`);
  ok(!/<[a-z -]+>/i.test(FILLED), "no <placeholder> is left");
});

Deno.test("OOR's oor.conf.example, filled in, converts and validates for every role", () => {
  for (const role of ROLES) {
    const r = parseOorConf(filledFor(role), { file: "oor.conf", role });
    deepStrictEqual(r.ok ? [] : r.errors.map(String), [], role);
    if (!r.ok) continue;
    strictEqual(r.config.role, role);
    // What the warnings may say: sections of other roles, the control-iface
    // OOR's file sets three times, and `local` dropped once.
    for (const w of r.warnings.map(String)) {
      ok(
        / ignored by role /.test(w) ||
          /: control-iface: set again \(first at line \d+\): the last value counts, as in OOR$/
            .test(w) ||
          /^oor\.conf:\d+: database-mapping\.rloc-address\.local: dropped: /.test(w),
        `${role}: ${w}`,
      );
    }
    strictEqual(r.warnings.filter((w) => /\.local: dropped/.test(String(w))).length, 1);
  }
  // allowed-dst-eids is destination-prefixes; the PITRs are all read.
  const xtr = parseOorConf(filledFor("xtr"), { role: "xtr" });
  ok(xtr.ok);
  deepStrictEqual(
    xtr.config.destinationPrefixes.map((p) => `${p.address}/${p.length}`),
    ["10.1.0.0/16", "10.3.0.0/16"],
  );
  strictEqual(xtr.config.proxyItrs.length, 11);
});

Deno.test("oor convert-config prints the oor.toml of OOR's filled example", async () => {
  let out = "";
  let err = "";
  const code = await runConvertConfig([FILLED_PATH], {
    stdout: (t) => out += t,
    stderr: (t) => err += t,
  });
  strictEqual(code, 0, err);
  ok(out.includes('destination-prefixes = [\n  "10.1.0.0/16",\n  "10.3.0.0/16",\n]\n'), out);
  ok(!/^local = /m.test(out), "local is dropped");
  ok(!err.includes("unknown key"), err);
  ok(err.includes("database-mapping.rloc-address.local: dropped: oor needs no 'local'"), err);
});

/**
 * Every option and section of OOR 1.3.0's libconfuse parser
 * (config/oor_config_confuse.c, `cfg_opt_t` tables), as dotted paths.
 */
const OOR_PARSER_KEYS = [
  "map-server",
  "map-server.address",
  "map-server.key-type",
  "map-server.key",
  "map-server.proxy-reply",
  ...["database-mapping", "ms-static-registered-site", "rtr-database-mapping"].flatMap((s) => [
    s,
    `${s}.eid-prefix`,
    `${s}.iid`,
    `${s}.ttl`,
    `${s}.rloc-address`,
    `${s}.rloc-address.address`,
    `${s}.rloc-address.priority`,
    `${s}.rloc-address.weight`,
    `${s}.rloc-address.local`,
    `${s}.rloc-iface`,
    `${s}.rloc-iface.interface`,
    `${s}.rloc-iface.ip_version`,
    `${s}.rloc-iface.priority`,
    `${s}.rloc-iface.weight`,
  ]),
  "static-map-cache",
  "static-map-cache.eid-prefix",
  "static-map-cache.iid",
  "static-map-cache.rloc-address",
  "static-map-cache.rloc-address.address",
  "static-map-cache.rloc-address.priority",
  "static-map-cache.rloc-address.weight",
  "static-map-cache.rloc-address.local",
  ...["proxy-etr-ipv4", "proxy-etr-ipv6"].flatMap((s) => [
    s,
    `${s}.address`,
    `${s}.priority`,
    `${s}.weight`,
  ]),
  "rtr-ifaces",
  "rtr-ifaces.rtr-iface",
  "rtr-ifaces.rtr-iface.iface",
  "rtr-ifaces.rtr-iface.ip_version",
  "rtr-ifaces.rtr-iface.priority",
  "rtr-ifaces.rtr-iface.weight",
  "rloc-probing",
  "rloc-probing.rloc-probe-interval",
  "rloc-probing.rloc-probe-retries",
  "rloc-probing.rloc-probe-retries-interval",
  "explicit-locator-path",
  "explicit-locator-path.elp-name",
  "explicit-locator-path.elp-node",
  "explicit-locator-path.elp-node.address",
  "explicit-locator-path.elp-node.strict",
  "explicit-locator-path.elp-node.probe",
  "explicit-locator-path.elp-node.lookup",
  "replication-list",
  "multicast-info",
  "encapsulation",
  "map-request-retries",
  "control-port",
  "debug",
  "log-file",
  "ipv6-scope",
  "rloc-probing-interval",
  "map-resolver",
  "proxy-itrs",
  "allowed-dst-eids",
  "override-dns",
  "override-dns-primary",
  "override-dns-secondary",
  "operating-mode",
  "nat_traversal_support",
  "control-iface",
  "rtr-data-iface",
  "lisp-site",
  "lisp-site.eid-prefix",
  "lisp-site.iid",
  "lisp-site.key-type",
  "lisp-site.key",
  "lisp-site.accept-more-specifics",
  "lisp-site.proxy-reply",
  "lisp-site.merge",
  "lisp-site.ddt-ms-peers-complete",
  "lisp-site.ddt-ms-peers",
  "ddt-auth-site",
  "ddt-auth-site.eid-prefix",
  "ddt-auth-site.iid",
  "ddt-deleg-site",
  "ddt-deleg-site.eid-prefix",
  "ddt-deleg-site.iid",
  "ddt-deleg-site.delegation-type",
  "ddt-deleg-site.deleg-nodes",
  "ddt-root-addresses",
  "ms-rtrs-set",
  "ms-rtrs-set.name",
  "ms-rtrs-set.ttl",
  "ms-rtrs-set.rtrs",
  "ms-rtr-node",
  "ms-rtr-node.name",
  "ms-rtr-node.address",
  "ms-rtr-node.key",
  "ms-advertised-rtrs-set",
  "rtr-ms-node",
  "rtr-ms-node.address",
  "rtr-ms-node.key",
  "rtr-ms-node.draft-version",
];

/** What oor does with a key path of OOR's, or undefined when it does not know it. */
function fate(path: string): string | undefined {
  if (OOR_CONF_KEYS.includes(path)) return "converts";
  if (OOR_CONF_RENAMED[path] !== undefined) return `converts to ${OOR_CONF_RENAMED[path]}`;
  if (OOR_CONF_DROPPED[path] !== undefined) return "dropped with a reason";
  // Unsupported sections take everything inside them with them.
  for (const [key, why] of Object.entries(UNSUPPORTED_KEYS)) {
    if ((path === key || path.startsWith(`${key}.`)) && why.length > 20) return "unsupported";
  }
  // A section oor does not take in one place (rloc-iface of a static site).
  if (path === "ms-static-registered-site.rloc-iface") return "unsupported";
  if (path.startsWith("ms-static-registered-site.rloc-iface.")) return "unsupported";
  return undefined;
}

Deno.test("every key of OOR's parser and of its example converts, or is unsupported with a reason", () => {
  const tree = parseOorConfTree(FILLED);
  ok(tree.ok);
  const documented = keyPaths(tree.entries);
  const unknown = [...new Set([...OOR_PARSER_KEYS, ...documented])].filter((k) =>
    fate(k) === undefined
  );
  deepStrictEqual(unknown, []);
  // The example documents these; before, `local` stopped the conversion.
  for (const k of ["database-mapping.rloc-address.local", "allowed-dst-eids", "proxy-itrs"]) {
    ok(documented.has(k), k);
  }
});

Deno.test("an unsupported key of OOR's is an error that names it and says why", () => {
  for (const key of ["rtr-database-mapping", "replication-list", "multicast-info"]) {
    const r = parseOorConf(`${key} {\n}\n`, { file: "oor.conf" });
    ok(!r.ok);
    deepStrictEqual(r.errors.map(String), [
      `oor.conf:1: ${key}: not supported: ${UNSUPPORTED_KEYS[key]}`,
    ]);
  }
  const r = parseOorConf(
    "ms-static-registered-site {\n eid-prefix = 10.1.0.0/24\n rloc-iface { interface = eth0 }\n}\n",
    { file: "oor.conf", role: "ms" },
  );
  ok(!r.ok);
  ok(
    /oor\.conf:3: ms-static-registered-site\.rloc-iface: not supported: /.test(String(r.errors[0])),
  );
});

Deno.test("allowed-dst-eids and destination-prefixes together are one error, on the second", () => {
  const r = parseOorConf(
    "destination-prefixes = {10.2.0.0/16}\nallowed-dst-eids = {10.3.0.0/16}\n",
    { file: "oor.conf" },
  );
  ok(!r.ok);
  deepStrictEqual(r.errors.map(String), [
    "oor.conf:2: allowed-dst-eids: is destination-prefixes in oor.toml, which " +
    "destination-prefixes (line 1) already sets: give one of them",
  ]);
  // += on OOR's name adds to the list it began.
  const plus = parseOorConf("allowed-dst-eids = 10.2.0.0/16\nallowed-dst-eids += 10.3.0.0/16\n");
  ok(plus.ok);
  strictEqual(plus.config.destinationPrefixes.length, 2);
});

Deno.test("local is checked as a boolean, then dropped with one warning per file", () => {
  const bad = parseOorConf(
    "database-mapping {\n eid-prefix = 10.1.0.0/24\n rloc-address { address = 192.0.2.1; local = maybe }\n}\n",
    { file: "oor.conf" },
  );
  ok(!bad.ok);
  deepStrictEqual(bad.errors.map(String), [
    "oor.conf:3: database-mapping.rloc-address.local: must be true or false (or yes/no, on/off; got 'maybe')",
  ]);
  const two = parseOorConf(
    "database-mapping {\n eid-prefix = 10.1.0.0/24\n" +
      " rloc-address { address = 192.0.2.1; local = true }\n" +
      " rloc-address { address = 192.0.2.2; local = false }\n}\n",
    { file: "oor.conf" },
  );
  ok(two.ok);
  deepStrictEqual(two.warnings.map((w) => `${w.line} ${w.keyPath}`), [
    "3 database-mapping.rloc-address.local",
  ]);
  deepStrictEqual(two.config.databaseMappings[0]?.rlocAddresses.length, 2);
});
