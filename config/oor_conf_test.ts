import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  type ConfEntry,
  convertOorConf,
  isOorConf,
  OOR_CONF_KEYS,
  parseOorConf,
  parseOorConfTree,
  UNSUPPORTED_KEYS,
} from "./oor_conf.ts";
import { type Config, OPERATING_MODE_NAMES, parseRole, type Role, ROLES } from "./schema.ts";
import { type ConfigResult, parseConfig } from "./validate.ts";
import { loadConfig } from "./load.ts";

const TESTDATA = new URL("./testdata/", import.meta.url);
const FULL = Deno.readTextFileSync(new URL("oor.conf", TESTDATA));
const EXPECTED = Deno.readTextFileSync(new URL("oor_expected.toml", TESTDATA));
const MODE_LINE = /^operating-mode +=.*$/m;

/** The config of a result that must be valid, or a failed assertion listing its errors. */
function configOf(r: ConfigResult): Config {
  deepStrictEqual(r.ok ? [] : r.errors.map(String), []);
  if (!r.ok) throw new Error("unreachable");
  return r.config;
}

/** Errors of a result as `file:line: ...` strings ([] when valid). */
function errorsOf(r: ConfigResult | ReturnType<typeof convertOorConf>): string[] {
  return r.ok ? [] : r.errors.map(String);
}

/** The full fixture with its operating-mode set for `role`. */
function fullFor(role: Role): string {
  return FULL.replace(MODE_LINE, `operating-mode = ${OPERATING_MODE_NAMES[role]}`);
}

// ---------------------------------------------------------------------------
// The full example.

Deno.test("parseOorConf() reads the full example as the hand-written oor.toml says", () => {
  const fromConf = configOf(parseOorConf(FULL));
  const fromToml = configOf(parseConfig(EXPECTED));
  deepStrictEqual(fromConf, fromToml);
  // A few values the hand-written file and the conf must both have, so a
  // shared mistake in both does not pass unseen.
  strictEqual(fromConf.role, "xtr");
  strictEqual(fromConf.api.token, 'api "token"!');
  deepStrictEqual(fromConf.proxyItrs, ["198.51.100.60", "198.51.100.61"]);
  deepStrictEqual(fromConf.rtrIfaces.map((i) => `${i.iface}/${i.ipVersion}`), [
    "eth1/4",
    "eth1/6",
  ]);
  deepStrictEqual(
    fromConf.explicitLocatorPaths[0]?.nodes.map((n) => [n.strict, n.probe, n.lookup]),
    [
      [true, false, false],
      [false, true, true],
    ],
  );
  deepStrictEqual(fromConf.staticMapCache[0]?.rlocAddresses[1], {
    kind: "elp",
    elpName: "elp-1",
    priority: 2,
    weight: 50,
  });
  strictEqual(fromConf.lispSites[1]?.ddtMsPeersComplete, false);
  deepStrictEqual(fromConf.ddtDelegSites[1]?.delegNodes, ["2001:db8:ffff::5"]);
});

Deno.test("the full example holds every key an oor.conf may have", () => {
  const tree = parseOorConfTree(FULL);
  ok(tree.ok);
  const seen = new Set<string>();
  const walk = (entries: readonly ConfEntry[], path: string) => {
    for (const e of entries) {
      const p = path === "" ? e.name : `${path}.${e.name}`;
      seen.add(p);
      if (e.kind === "section") walk(e.entries, p);
    }
  };
  walk(tree.entries, "");
  deepStrictEqual(OOR_CONF_KEYS.filter((k) => !seen.has(k)), []);
  deepStrictEqual([...seen].filter((k) => !OOR_CONF_KEYS.includes(k)), []);
  // Sanity: the list covers OOR's sections of every role.
  for (
    const k of [
      "rtr-ifaces.rtr-iface.ip_version",
      "ms-rtrs-set.rtrs",
      "ddt-deleg-site.deleg-nodes",
      "explicit-locator-path.elp-node.lookup",
      "lisp-site.ddt-ms-peers-complete",
      "database-mapping.rloc-iface.interface",
    ]
  ) ok(OOR_CONF_KEYS.includes(k), k);
});

Deno.test("the full example converts and validates for every role", () => {
  for (const role of ROLES) {
    const text = fullFor(role);
    const direct = parseOorConf(text, { role });
    const config = configOf(direct);
    strictEqual(config.role, role);
    strictEqual(config.operatingMode, role);
    // Keys other roles use are only warnings, each on its oor.conf line.
    for (const w of direct.warnings) {
      ok(/^oor\.conf:\d+: [a-z0-9_-]+: ignored by role /.test(String(w)), String(w));
    }
  }
});

Deno.test("convertOorConf() output parses to the same Config as the oor.conf, for every role", () => {
  for (const role of ROLES) {
    const text = fullFor(role);
    const converted = convertOorConf(text);
    ok(converted.ok);
    deepStrictEqual(
      configOf(parseConfig(converted.toml, { role })),
      configOf(parseOorConf(text, { role })),
      role,
    );
  }
});

Deno.test("every per-role oor.conf converts and is valid for its role, without warnings", async () => {
  const dir = new URL("roles/", TESTDATA);
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  deepStrictEqual(names, ROLES.map((r) => `${r}.conf`).sort());
  for (const name of names) {
    const role = parseRole(name.replace(/\.conf$/, ""))!;
    const path = fileURLToPath(new URL(name, dir));
    const loaded = await loadConfig(path, role);
    strictEqual(configOf(loaded).role, role, name);
    deepStrictEqual(loaded.warnings.map(String), [], name);
    const text = Deno.readTextFileSync(path);
    const converted = convertOorConf(text, { file: name });
    ok(converted.ok, name);
    deepStrictEqual(
      configOf(parseConfig(converted.toml, { role })),
      configOf(parseOorConf(text, { role })),
      name,
    );
  }
});

// ---------------------------------------------------------------------------
// The TOML text.

Deno.test("convertOorConf() writes well-formed TOML with a header naming the source", () => {
  const conf = [
    "# an xTR", // 1
    "map-server { address = 192.0.2.2; key = k }", // 2
    "debug = 2", // 3
    "rloc-probing { rloc-probe-interval = 0 }", // 4
    "map-resolver = {192.0.2.1,", // 5
    "  192.0.2.9}", // 6
    "database-mapping {", // 7
    "  eid-prefix = 10.1.0.0/24", // 8
    "  rloc-address { address = 198.51.100.1 }", // 9
    "}", // 10
    "rtr-ifaces { rtr-iface { iface = eth0 } }", // 11
    "proxy-itrs = {198.51.100.60, 198.51.100.61}", // 12
  ].join("\n");
  const r = convertOorConf(conf, { file: "site/oor.conf" });
  ok(r.ok);
  strictEqual(
    r.toml,
    [
      "# oor.toml converted by 'oor convert-config' from the OOR config site/oor.conf.",
      "# The keys keep OOR's names. Check it with: oor check-config FILE",
      "",
      "debug = 2",
      "map-resolver = [",
      '  "192.0.2.1",',
      '  "192.0.2.9",',
      "]",
      'proxy-itrs = ["198.51.100.60", "198.51.100.61"]',
      "",
      "[rloc-probing]",
      "rloc-probe-interval = 0",
      "",
      "[[map-server]]",
      'address = "192.0.2.2"',
      'key = "k"',
      "",
      "[[database-mapping]]",
      'eid-prefix = "10.1.0.0/24"',
      "[[database-mapping.rloc-address]]",
      'address = "198.51.100.1"',
      "",
      "[[rtr-iface]]",
      'iface = "eth0"',
      "",
    ].join("\n"),
  );
  deepStrictEqual(r.origins, [
    undefined,
    undefined,
    undefined,
    3,
    5,
    5,
    6,
    6,
    12,
    undefined,
    4,
    4,
    undefined,
    2,
    2,
    2,
    undefined,
    7,
    8,
    9,
    9,
    undefined,
    11,
    11,
  ]);
});

Deno.test("convertOorConf() escapes strings for TOML", () => {
  const r = convertOorConf('log-file = "a\\\\b\\t\\"c\\"\\001"\n');
  ok(r.ok);
  ok(r.toml.includes('log-file = "a\\\\b\\t\\"c\\"\\u0001"\n'), r.toml);
  const back = parseConfig(r.toml);
  strictEqual(back.ok && back.config.logFile, 'a\\b\t"c"\x01');
});

// ---------------------------------------------------------------------------
// Unknown and unsupported keys.

Deno.test("parseOorConf() names an unknown key with file, line and a guess", () => {
  const conf = [
    "debug = 1",
    "map-server {",
    "    address = 192.0.2.2",
    "    kye = secret",
    "}",
    "debgu = 2",
    "colour = blue",
  ].join("\n");
  deepStrictEqual(errorsOf(parseOorConf(conf, { file: "oor.conf" })), [
    "oor.conf:4: map-server: unknown key 'kye' (did you mean 'key'?)",
    "oor.conf:6: unknown key 'debgu' (did you mean 'debug'?)",
    "oor.conf:7: unknown key 'colour'",
  ]);
});

Deno.test("parseOorConf() says where a key in the wrong section belongs", () => {
  const conf = [
    "rloc-probe-interval = 30",
    "rtr-iface { iface = eth0 }",
    "database-mapping { eid-prefix = 10.1.0.0/24; delegation-type = CHILD_DDT_NODE }",
  ].join("\n");
  deepStrictEqual(errorsOf(parseOorConf(conf)), [
    "oor.conf:1: unknown key 'rloc-probe-interval' (it goes inside rloc-probing { ... })",
    "oor.conf:2: unknown key 'rtr-iface' (it goes inside rtr-ifaces { ... })",
    "oor.conf:3: database-mapping: unknown key 'delegation-type' (it goes inside ddt-deleg-site { ... })",
  ]);
});

Deno.test("parseOorConf() names each OOR key oor does not support", () => {
  for (const key of Object.keys(UNSUPPORTED_KEYS)) {
    const conf = `debug = 0\n${key} = x\n`;
    deepStrictEqual(errorsOf(parseOorConf(conf)), [
      `oor.conf:2: ${key}: not supported: ${UNSUPPORTED_KEYS[key]}`,
    ]);
  }
  // As sections, the way OOR writes the section-shaped ones.
  deepStrictEqual(
    errorsOf(parseOorConf("replication-list {\n rle-name = r\n}\n")),
    [`oor.conf:1: replication-list: not supported: ${UNSUPPORTED_KEYS["replication-list"]}`],
  );
  deepStrictEqual(
    errorsOf(parseOorConf(
      "ms-static-registered-site {\n eid-prefix = 10.2.0.0/16\n rloc-iface { interface = eth0 }\n}\n",
    )),
    [
      "oor.conf:3: ms-static-registered-site.rloc-iface: not supported: " +
      "a map-server's static site takes rloc-address locators only (OOR ignores rloc-iface here)",
    ],
  );
});

// ---------------------------------------------------------------------------
// Syntax errors.

Deno.test("parseOorConf() reports a syntax error with line and column", () => {
  const cases: [string, string][] = [
    ['debug = 1\nlog-file = "/var/log\n', 'oor.conf:2:12: unterminated "string"'],
    ["key = 'abc", "oor.conf:1:7: unterminated 'string'"],
    ["debug = 1\n/* never\nclosed\n", "oor.conf:2:1: unterminated /* comment"],
    [
      "map-server {\n  address = 192.0.2.2\n",
      "oor.conf:1:1: section 'map-server' is not closed: a '}' is missing",
    ],
    ["debug = 1\n}\n", "oor.conf:2:1: unexpected '}': no section is open"],
    ["debug 1\n", "oor.conf:1:7: expected '=' or '{' after 'debug', found '1'"],
    ["debug =\n", "oor.conf:2:1: expected a value for 'debug', found the end of the file"],
    [
      "map-resolver = {\n  192.0.2.1\n  192.0.2.2\n}\n",
      "oor.conf:3:3: expected ',' or '}' in the list of 'map-resolver', found '192.0.2.2' (separate list items with commas)",
    ],
    [
      "map-resolver = {192.0.2.1,,}\n",
      "oor.conf:1:27: expected a value or '}' in the list of 'map-resolver', found ','",
    ],
    [
      "key = ${OOR_KEY}\n",
      "oor.conf:1:7: ${...} (environment variable) is not supported: write the value itself",
    ],
    [
      'key = "a${B}"\n',
      "oor.conf:1:9: ${...} (environment variable) is not supported: write the value itself",
    ],
    [
      'include("other.conf")\n',
      "oor.conf:1:8: 'include(...)': functions such as include() are not supported",
    ],
    [
      "key = a+b\n",
      "oor.conf:1:8: unexpected '+' (write += to add to a list, or quote a value that has a '+')",
    ],
    ["debug = 1 */\n", "oor.conf:1:11: '*/' closes no comment"],
    [
      "log-file = /var/log/my oor.log\n",
      "oor.conf:1:24: expected '=' or '{' after 'oor.log', found the end of the file (a value with spaces must be quoted)",
    ],
    [
      'lisp-site "a" {\n}\n',
      "oor.conf:1:11: expected '=' or '{' after 'lisp-site', found \"a\" (sections have no titles in oor.conf)",
    ],
    ['key = "\\8"\n', "oor.conf:1:8: bad escape sequence '\\8'"],
    ['key = "\\400"\n', "oor.conf:1:8: octal escape '\\400' is above \\377"],
    ["= 1\n", "oor.conf:1:1: expected a key name, found '='"],
  ];
  for (const [conf, want] of cases) {
    deepStrictEqual(errorsOf(parseOorConf(conf)), [want], conf);
  }
});

// ---------------------------------------------------------------------------
// Types, and values placed back on their lines.

Deno.test("parseOorConf() checks the type of each value against OOR's", () => {
  const conf = [
    "debug = one", // 1
    "nat_traversal_support = maybe", // 2
    "map-server { address = 192.0.2.2; key = k; key-type = 09 }", // 3
    "control-port = {4342}", // 4
    "debug += 2", // 5
    "map-server = 192.0.2.2", // 6
    "debug { }", // 7
  ].join("\n");
  deepStrictEqual(errorsOf(parseOorConf(conf)), [
    "oor.conf:1: debug: must be an integer (got 'one')",
    "oor.conf:2: nat_traversal_support: must be true or false (or yes/no, on/off; got 'maybe')",
    "oor.conf:3: map-server.key-type: must be an integer (got '09'); a leading 0 makes it octal in oor.conf, and 8 and 9 are not octal digits",
    "oor.conf:4: control-port: takes one value, not a {...} list",
    "oor.conf:5: debug: takes one value: += only adds to lists",
    "oor.conf:6: map-server: is a section: write map-server { ... } without '='",
    "oor.conf:7: debug: takes a value: write debug = ..., not a section",
  ]);
});

Deno.test("parseOorConf() puts validation errors on their oor.conf lines", () => {
  const conf = [
    "operating-mode = xTR", // 1
    "map-resolver = {", // 2
    "  192.0.2.1,", // 3
    "  not-an-address", // 4
    "}", // 5
    "map-server {", // 6
    "  address = 192.0.2.2", // 7
    "}", // 8
    "", // 9
    "database-mapping {", // 10
    "  eid-prefix = 10.1.0.0/24", // 11
    "  iid = 99999999", // 12
    "  rloc-address {", // 13
    "    address = 198.51.100.1", // 14
    "    weight = 300", // 15
    "  }", // 16
    "}", // 17
  ].join("\n");
  deepStrictEqual(errorsOf(parseOorConf(conf, { file: "site.conf" })), [
    'site.conf:4: map-resolver[1]: must be an IPv4 or IPv6 address; host names are not supported (got "not-an-address")',
    "site.conf:6: map-server[0].key: required key is missing",
    "site.conf:12: database-mapping[0].iid: must be from 0 to 16777214 (got 99999999)",
    "site.conf:15: database-mapping[0].rloc-address[0].weight: must be from 0 to 255 (got 300)",
  ]);
});

Deno.test("parseOorConf() checks operating-mode against the role it is given", () => {
  deepStrictEqual(errorsOf(parseOorConf("\noperating-mode = MS\n", { role: "xtr" })).slice(0, 1), [
    'oor.conf:2: operating-mode: is "MS" but the role given on the command line is xtr',
  ]);
});

// ---------------------------------------------------------------------------
// libconfuse's details.

Deno.test("parseOorConf() reads names in any case and values as libconfuse does", () => {
  const conf = [
    "DEBUG = 0x3",
    "Map-Request-Retries = 04",
    'tun-mtu = "+1400"', // a bare + is not a word character
    "NAT_Traversal_Support = Yes",
    'map-server { ADDRESS = 192.0.2.2; Key = "k\\\\1"; PROXY-REPLY = ON }',
  ].join("\n");
  const c = configOf(parseOorConf(conf));
  strictEqual(c.debug, 3);
  strictEqual(c.mapRequestRetries, 4);
  strictEqual(c.tunMtu, 1400);
  strictEqual(c.natTraversalSupport, true);
  deepStrictEqual(c.mapServers, [{
    address: "192.0.2.2",
    keyType: 1,
    key: "k\\1",
    proxyReply: true,
    merge: false,
  }]);
  // No '' escape as in SQL: two quoted strings in a row are a value and a stray name.
  strictEqual(parseOorConf("log-file = 'a''b'\n").ok, false);
});

Deno.test("parseOorConf() reads every spelling of true and false", () => {
  const spellings: [string, boolean][] = [
    ["true", true],
    ["yes", true],
    ["on", true],
    ["TRUE", true],
    ["false", false],
    ["no", false],
    ["off", false],
    ["Off", false],
    ['"on"', true],
  ];
  for (const [word, want] of spellings) {
    strictEqual(
      configOf(parseOorConf(`nat_traversal_support = ${word}`)).natTraversalSupport,
      want,
      word,
    );
  }
});

Deno.test("parseOorConf() reads quoted strings with libconfuse's escapes", () => {
  const cases: [string, string][] = [
    ['"tab\\there"', "tab\there"],
    ['"q\\"q"', 'q"q'],
    ['"\\x41\\101\\e"', "AA\x1b"],
    ['"two \\\nlines"', "two lines"],
    ['"new\nline"', "new\nline"],
    ["'a\\'b\\\\c\\d'", "a'b\\c\\d"],
    ['"semi;colon"', "semi;colon"],
    ["a;b", "a;b"],
    ["a;", "a"],
    ["/var/log//oor.log", "/var/log//oor.log"],
  ];
  for (const [written, want] of cases) {
    const r = parseOorConf(`log-file = ${written}\ndebug = 1\n`);
    strictEqual(configOf(r).logFile, want, written);
    strictEqual(configOf(r).debug, 1, written);
  }
});

Deno.test("parseOorConf() skips every style of comment", () => {
  const conf = [
    "#### a banner ####",
    "# debug = 3",
    "// debug = 3",
    "/* debug = 3 */ debug = 1 /* debug = 3",
    "   debug = 3 */",
    "map-resolver = {192.0.2.1, # a comment inside a list",
    "  192.0.2.2 // and another",
    "}",
    "log-file = /var/log/oor.log# no space needed",
    "proxy-itrs = 192.0.2.3/* nor here */",
  ].join("\n");
  const c = configOf(parseOorConf(conf));
  strictEqual(c.debug, 1);
  deepStrictEqual(c.mapResolvers, ["192.0.2.1", "192.0.2.2"]);
  strictEqual(c.logFile, "/var/log/oor.log");
  deepStrictEqual(c.proxyItrs, ["192.0.2.3"]);
});

Deno.test("parseOorConf() keeps OOR's meaning of repeated keys and sections, with warnings", () => {
  const conf = [
    "debug = 1", // 1
    "debug = 2", // 2
    "map-resolver = 192.0.2.1", // 3
    "map-resolver += {192.0.2.2, 192.0.2.3,}", // 4
    "proxy-itrs = 192.0.2.9", // 5
    "proxy-itrs = 192.0.2.8", // 6
    "rloc-probing { rloc-probe-interval = 10 }", // 7
    "rloc-probing { rloc-probe-interval = 20 }", // 8
    "map-request-retries = 0", // 9
    "rtr-ifaces { rtr-iface { iface = eth0 } }", // 10
    "rtr-ifaces { rtr-iface { iface = eth1 } }", // 11
  ].join("\n");
  const r = parseOorConf(conf);
  const c = configOf(r);
  strictEqual(c.debug, 2);
  deepStrictEqual(c.mapResolvers, ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
  deepStrictEqual(c.proxyItrs, ["192.0.2.8"]);
  strictEqual(c.rlocProbing.interval, 10);
  strictEqual(c.mapRequestRetries, 3);
  deepStrictEqual(c.rtrIfaces.map((i) => i.iface), ["eth0", "eth1"]);
  deepStrictEqual(r.warnings.map(String), [
    "oor.conf:2: debug: set again (first at line 1): the last value counts, as in OOR",
    "oor.conf:6: proxy-itrs: set again (first at line 5): this list replaces it, as in OOR (use += to add)",
    "oor.conf:8: rloc-probing: a second rloc-probing section is ignored: OOR reads only the first (line 7)",
    "oor.conf:9: map-request-retries: OOR reads 0 as its default, 3; converted to 3",
    "oor.conf:11: rtr-ifaces: another rtr-ifaces section: OOR reads only the first (line 10); oor takes the entries of all",
  ]);
});

Deno.test("parseOorConfTree() keeps the shape and lines of what was written", () => {
  const r = parseOorConfTree("a = 1;\nlist += {x,\n'y'}\nsec {\n  inner { k = \"v\" }\n}\n");
  ok(r.ok);
  deepStrictEqual(r.entries, [
    {
      kind: "option",
      name: "a",
      line: 1,
      op: "=",
      braces: false,
      values: [{ text: "1", quoted: false, line: 1 }],
    },
    {
      kind: "option",
      name: "list",
      line: 2,
      op: "+=",
      braces: true,
      values: [{ text: "x", quoted: false, line: 2 }, { text: "y", quoted: true, line: 3 }],
    },
    {
      kind: "section",
      name: "sec",
      line: 4,
      entries: [{
        kind: "section",
        name: "inner",
        line: 5,
        entries: [{
          kind: "option",
          name: "k",
          line: 5,
          op: "=",
          braces: false,
          values: [{ text: "v", quoted: true, line: 5 }],
        }],
      }],
    },
  ]);
});

Deno.test("parseOorConf() reads Windows line endings and counts their lines", () => {
  const conf =
    "debug = 1\r\nmap-resolver = {192.0.2.1,\r\n  192.0.2.2}\r\nrloc-probing {\r\n  rloc-probe-retries = 9\r\n}\r\n";
  deepStrictEqual(errorsOf(parseOorConf(conf)), [
    "oor.conf:5: rloc-probing.rloc-probe-retries: must be from 0 to 5 (got 9)",
  ]);
  const c = configOf(parseOorConf(conf.replace("= 9", "= 3")));
  deepStrictEqual(c.mapResolvers, ["192.0.2.1", "192.0.2.2"]);
});

Deno.test("parseOorConf() accepts an empty file and a file of comments", () => {
  strictEqual(configOf(parseOorConf("")).debug, 0);
  strictEqual(configOf(parseOorConf("\ufeff# nothing\n/* here */\n")).debug, 0);
});

// ---------------------------------------------------------------------------
// Telling oor.conf from oor.toml, and loading.

Deno.test("isOorConf() goes by the extension, then by the content", () => {
  strictEqual(isOorConf("/etc/oor.conf", 'debug = "1"'), true);
  strictEqual(isOorConf("oor.CONF", ""), true);
  strictEqual(isOorConf("oor.toml", "map-server {\n}"), false);
  strictEqual(isOorConf("oor.cfg", "map-server {\n address = 192.0.2.2\n}"), true);
  strictEqual(isOorConf("oor", "// a comment\ndebug = 1"), true);
  strictEqual(isOorConf("oor", "/* a comment */"), true);
  strictEqual(isOorConf("oor", "operating-mode = xTR\n"), true);
  strictEqual(isOorConf("oor", 'operating-mode = "xTR"\n[api]\nlisten = "127.0.0.1:1"\n'), false);
  strictEqual(isOorConf("oor", "debug = 1\n"), false);
  strictEqual(isOorConf("oor", ""), false);
  // Neither TOML nor libconfuse: left to the TOML reader, which says why.
  strictEqual(isOorConf("oor", "debug = = 1\n"), false);
});

Deno.test("loadConfig() reads an oor.conf, by extension or by content", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const conf = `${dir}/oor.conf`;
    await Deno.writeTextFile(
      conf,
      "operating-mode = MS\nlisp-site {\n  eid-prefix = 10.1.0.0/16\n  key = k\n}\n",
    );
    strictEqual(configOf(await loadConfig(conf, "ms")).lispSites[0]?.key, "k");

    const bare = `${dir}/site-config`;
    await Deno.writeTextFile(bare, "debug = 1\nrloc-probing {\n  rloc-probe-retries = 7\n}\n");
    deepStrictEqual(errorsOf(await loadConfig(bare)), [
      `${bare}:3: rloc-probing.rloc-probe-retries: must be from 0 to 5 (got 7)`,
    ]);

    await Deno.writeTextFile(conf, "debug = 1\nmap-server {\n  kye = x\n}\n");
    deepStrictEqual(errorsOf(await loadConfig(conf)), [
      `${conf}:3: map-server: unknown key 'kye' (did you mean 'key'?)`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
