import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import {
  type Config,
  ConfigError,
  type ConfigResult,
  describeConfig,
  formatPrefix,
  parseConfig,
  type Role,
} from "./mod.ts";

/** Joins lines, so that line N of the file is `lines[N - 1]`. */
function toml(...lines: string[]): string {
  return lines.join("\n") + "\n";
}

function errorsOf(text: string, role?: Role): string[] {
  const r = parseConfig(text, role !== undefined ? { role } : {});
  if (r.ok) throw new Error("expected errors, config was valid");
  return r.errors.map(String);
}

function configOf(text: string, role?: Role): Config {
  const r: ConfigResult = parseConfig(text, role !== undefined ? { role } : {});
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  return r.config;
}

/** The smallest valid xTR file. */
const MINIMAL_XTR = toml(
  'map-resolver = ["192.0.2.1"]',
  "[[map-server]]",
  'address = "192.0.2.2"',
  'key = "k"',
  "[[database-mapping]]",
  'eid-prefix = "10.1.0.0/24"',
  'rloc-address = [{ address = "198.51.100.1" }]',
);

// ---------------------------------------------------------------------------
// Valid files.

Deno.test("parseConfig() fills every default into a minimal xtr file", () => {
  const expected: Config = {
    role: "xtr",
    debug: 0,
    mapRequestRetries: 3,
    ipv6Scope: "GLOBAL",
    encapsulation: "LISP",
    controlPort: 4342,
    controlRateLimit: 1000,
    dataPort: 4341,
    tunName: "lispTun0",
    tunMtu: 1440,
    dataPlane: { offloads: true, udpGso: true },
    api: { enabled: true, host: "127.0.0.1", port: 9942 },
    rlocProbing: { interval: 30, retries: 2, retriesInterval: 5 },
    mapResolvers: ["192.0.2.1"],
    mapServers: [{
      address: "192.0.2.2",
      keyType: 1,
      key: "k",
      proxyReply: false,
      merge: false,
    }],
    proxyEtrsIpv4: [],
    proxyEtrsIpv6: [],
    proxyItrs: [],
    databaseMappings: [{
      eidPrefix: { family: 4, address: "10.1.0.0", length: 24 },
      iid: 0,
      ttl: 10,
      rlocAddresses: [{
        kind: "address",
        address: "198.51.100.1",
        priority: 1,
        weight: 100,
      }],
      rlocIfaces: [],
    }],
    staticMapCache: [],
    instances: [],
    destinationPrefixes: [],
    natTraversalSupport: false,
    subscribe: false,
    rtrIfaces: [],
    rtrMsNodes: [],
    lispSites: [],
    msStaticRegisteredSites: [],
    msRtrNodes: [],
    msRtrsSets: [],
    ddtAuthSites: [],
    ddtDelegSites: [],
    ddtRootAddresses: [],
    explicitLocatorPaths: [],
  };
  deepStrictEqual(configOf(MINIMAL_XTR, "xtr"), expected);
});

Deno.test("parseConfig() reads the general keys", () => {
  const c = configOf(toml(
    "debug = 3",
    'log-file = "/var/log/oor.log"',
    "map-request-retries = 0",
    'ipv6-scope = "site"',
    'operating-mode = "ddt-MR"',
    'encapsulation = "vxlan-gpe"',
    'control-iface = "eth0"',
    'control-address = "2001:DB8::10"',
    "control-port = 14342",
    "control-rate-limit = 0",
    'tun-name = "oor0"',
    "tun-mtu = 1400",
    'ddt-root-addresses = ["192.0.2.100"]',
    "[api]",
    "enabled = false",
    'listen = "[::1]:8080"',
    'token = "t0k3n"',
    "[rloc-probing]",
    "rloc-probe-interval = 0",
  ));
  strictEqual(c.role, "ddt-mr");
  strictEqual(c.operatingMode, "ddt-mr");
  strictEqual(c.debug, 3);
  strictEqual(c.logFile, "/var/log/oor.log");
  strictEqual(c.mapRequestRetries, 0);
  strictEqual(c.ipv6Scope, "SITE");
  strictEqual(c.encapsulation, "VXLAN-GPE");
  strictEqual(c.controlIface, "eth0");
  strictEqual(c.controlAddress, "2001:db8::10");
  strictEqual(c.controlPort, 14342);
  strictEqual(c.controlRateLimit, 0, "0 turns rate limiting off");
  strictEqual(c.dataPort, 4790, "VXLAN-GPE's port is the default");
  strictEqual(c.tunName, "oor0");
  strictEqual(c.tunMtu, 1400);
  deepStrictEqual(c.api, {
    enabled: false,
    host: "::1",
    port: 8080,
    token: "t0k3n",
  });
  deepStrictEqual(c.rlocProbing, { interval: 0, retries: 2, retriesInterval: 5 });
});

Deno.test("parseConfig() shortens the default retry interval to a shorter probe interval", () => {
  const c = configOf(toml("[rloc-probing]", "rloc-probe-interval = 3"));
  deepStrictEqual(c.rlocProbing, { interval: 3, retries: 2, retriesInterval: 3 });
});

Deno.test("parseConfig() reads the tunnel router sections", () => {
  const c = configOf(toml(
    "nat_traversal_support = true",
    'map-resolver = ["192.0.2.1", "2001:db8::1"]',
    'proxy-itrs = ["192.0.2.30"]',
    "[[map-server]]",
    'address = "192.0.2.2"',
    "key-type = 2",
    'key = "k"',
    "proxy-reply = true",
    "[[proxy-etr-ipv4]]",
    'address = "203.0.113.1"',
    "[[proxy-etr-ipv6]]",
    'address = "2001:db8::2"',
    "priority = 5",
    "weight = 0",
    "[[explicit-locator-path]]",
    'elp-name = "via-rtr"',
    "[[explicit-locator-path.elp-node]]",
    'address = "198.51.100.20"',
    "strict = true",
    "[[explicit-locator-path.elp-node]]",
    'address = "198.51.100.1"',
    "probe = true",
    "lookup = true",
    "[[database-mapping]]",
    'eid-prefix = "fd00:1::/48"',
    "iid = 16777214",
    "ttl = 60",
    "[[database-mapping.rloc-address]]",
    'address = "via-rtr"',
    "priority = 2",
    "[[database-mapping.rloc-iface]]",
    'interface = "wlan0"',
    "ip_version = 6",
    "weight = 7",
    "[[static-map-cache]]",
    'eid-prefix = "10.9.0.0/16"',
    'rloc-address = [{ address = "203.0.113.50", priority = 3, weight = 4 }]',
  ));
  strictEqual(c.natTraversalSupport, true);
  deepStrictEqual(c.mapResolvers, ["192.0.2.1", "2001:db8::1"]);
  deepStrictEqual(c.proxyItrs, ["192.0.2.30"]);
  deepStrictEqual(c.mapServers, [{
    address: "192.0.2.2",
    keyType: 2,
    key: "k",
    proxyReply: true,
    merge: false,
  }]);
  deepStrictEqual(c.proxyEtrsIpv4, [{
    address: "203.0.113.1",
    priority: 1,
    weight: 100,
  }]);
  deepStrictEqual(c.proxyEtrsIpv6, [{
    address: "2001:db8::2",
    priority: 5,
    weight: 0,
  }]);
  deepStrictEqual(c.explicitLocatorPaths, [{
    name: "via-rtr",
    nodes: [
      { address: "198.51.100.20", strict: true, probe: false, lookup: false },
      { address: "198.51.100.1", strict: false, probe: true, lookup: true },
    ],
  }]);
  deepStrictEqual(c.databaseMappings, [{
    eidPrefix: { family: 6, address: "fd00:1::", length: 48 },
    iid: 16777214,
    ttl: 60,
    rlocAddresses: [{ kind: "elp", elpName: "via-rtr", priority: 2, weight: 100 }],
    rlocIfaces: [{ interface: "wlan0", ipVersion: 6, priority: 1, weight: 7 }],
  }]);
  deepStrictEqual(c.staticMapCache, [{
    eidPrefix: { family: 4, address: "10.9.0.0", length: 16 },
    iid: 0,
    rlocAddresses: [{
      kind: "address",
      address: "203.0.113.50",
      priority: 3,
      weight: 4,
    }],
  }]);
});

Deno.test("parseConfig() reads the RTR sections", () => {
  const c = configOf(toml(
    "[[rtr-iface]]",
    'iface = "eth0"',
    "[[rtr-iface]]",
    'iface = "eth0"',
    "ip_version = 6",
    "priority = 2",
    "weight = 50",
    "[[rtr-ms-node]]",
    'address = "192.0.2.2"',
    'key = "k"',
    "[[rtr-ms-node]]",
    'address = "192.0.2.3"',
    'key = "k2"',
    "key-type = 2",
    'draft-version = "new"',
  ));
  deepStrictEqual(c.rtrIfaces, [
    { iface: "eth0", ipVersion: 4, priority: 1, weight: 100 },
    { iface: "eth0", ipVersion: 6, priority: 2, weight: 50 },
  ]);
  deepStrictEqual(c.rtrMsNodes, [
    { address: "192.0.2.2", key: "k", keyType: 1, draftVersion: "OLD" },
    { address: "192.0.2.3", key: "k2", keyType: 2, draftVersion: "NEW" },
  ]);
});

Deno.test("parseConfig() reads the map-server sections", () => {
  const c = configOf(toml(
    'ms-advertised-rtrs-set = "set1"',
    "[[lisp-site]]",
    'eid-prefix = "10.1.0.0/16"',
    'key = "k"',
    "[[lisp-site]]",
    'eid-prefix = "10.1.0.0/16"',
    "iid = 7",
    "key-type = 2",
    'key = "k2"',
    "accept-more-specifics = true",
    "proxy-reply = true",
    "merge = true",
    "ddt-ms-peers-complete = false",
    'ddt-ms-peers = ["192.0.2.3"]',
    "max-registrations = 20",
    "[[ms-static-registered-site]]",
    'eid-prefix = "10.9.0.0/16"',
    "ttl = 1",
    'rloc-address = [{ address = "203.0.113.50" }]',
    "[[ms-rtr-node]]",
    'name = "r1"',
    'address = "198.51.100.20"',
    'key = "rk"',
    "[[ms-rtrs-set]]",
    'name = "set1"',
    'rtrs = ["r1"]',
  ));
  deepStrictEqual(c.lispSites, [
    {
      eidPrefix: { family: 4, address: "10.1.0.0", length: 16 },
      iid: 0,
      keyType: 1,
      key: "k",
      acceptMoreSpecifics: false,
      proxyReply: false,
      merge: false,
      ddtMsPeersComplete: true,
      ddtMsPeers: [],
      maxRegistrations: 1024,
    },
    {
      eidPrefix: { family: 4, address: "10.1.0.0", length: 16 },
      iid: 7,
      keyType: 2,
      key: "k2",
      acceptMoreSpecifics: true,
      proxyReply: true,
      merge: true,
      ddtMsPeersComplete: false,
      ddtMsPeers: ["192.0.2.3"],
      maxRegistrations: 20,
    },
  ]);
  deepStrictEqual(c.msStaticRegisteredSites, [{
    eidPrefix: { family: 4, address: "10.9.0.0", length: 16 },
    iid: 0,
    ttl: 1,
    rlocAddresses: [{
      kind: "address",
      address: "203.0.113.50",
      priority: 1,
      weight: 100,
    }],
  }]);
  deepStrictEqual(c.msRtrNodes, [{
    name: "r1",
    address: "198.51.100.20",
    key: "rk",
  }]);
  deepStrictEqual(c.msRtrsSets, [{ name: "set1", ttl: 1440, rtrs: ["r1"] }]);
  strictEqual(c.msAdvertisedRtrsSet, "set1");
});

Deno.test("parseConfig() reads the DDT sections", () => {
  const c = configOf(toml(
    'ddt-root-addresses = ["192.0.2.100", "2001:db8::100"]',
    "[[ddt-auth-site]]",
    'eid-prefix = "10.0.0.0/8"',
    "[[ddt-deleg-site]]",
    'eid-prefix = "10.1.0.0/16"',
    'delegation-type = "map_server_ddt_node"',
    'deleg-nodes = ["192.0.2.2"]',
  ));
  deepStrictEqual(c.ddtAuthSites, [{
    eidPrefix: { family: 4, address: "10.0.0.0", length: 8 },
    iid: 0,
  }]);
  deepStrictEqual(c.ddtDelegSites, [{
    eidPrefix: { family: 4, address: "10.1.0.0", length: 16 },
    iid: 0,
    delegationType: "MAP_SERVER_DDT_NODE",
    delegNodes: ["192.0.2.2"],
  }]);
  deepStrictEqual(c.ddtRootAddresses, ["192.0.2.100", "2001:db8::100"]);
});

Deno.test("parseConfig() lets an mr forward to map-servers without keys", () => {
  const c = configOf(toml("[[map-server]]", 'address = "192.0.2.2"'), "mr");
  deepStrictEqual(c.mapServers, [{
    address: "192.0.2.2",
    keyType: 1,
    proxyReply: false,
    merge: false,
  }]);
});

Deno.test("describeConfig() names the role and counts the non-empty sections", () => {
  strictEqual(
    describeConfig(configOf(MINIMAL_XTR, "xtr")),
    "role xtr: 1 database mapping, 1 map-server, 1 map-resolver",
  );
  strictEqual(describeConfig(configOf("")), "no role given");
});

// ---------------------------------------------------------------------------
// Errors: each kind, with its exact message and line.

Deno.test("parseConfig() reports a bad key-type with the line of the key", () => {
  deepStrictEqual(
    errorsOf(toml(
      "[[map-server]]",
      'address = "192.0.2.2"',
      'key = "k"',
      "key-type = 3",
    )),
    [
      "oor.toml:4: map-server[0].key-type: must be 1 (HMAC-SHA-1) or 2 (HMAC-SHA-256)",
    ],
  );
});

Deno.test("parseConfig() names the file it was given", () => {
  const r = parseConfig("debug = 9\n", { file: "/etc/oor/site.toml" });
  deepStrictEqual(
    r.ok ? [] : r.errors.map(String),
    ["/etc/oor/site.toml:1: debug: must be from 0 to 3 (got 9)"],
  );
});

Deno.test("parseConfig() rejects unknown keys, suggesting near misses", () => {
  deepStrictEqual(
    errorsOf(toml(
      "debugg = 1",
      "nat-traversal-support = true",
      "rloc-probe-interval = 10",
      "rloc-probing-interval = 10",
      "colour = 1",
      'token = "x"',
      "[rloc-probing]",
      "rloc-probe-intervall = 10",
      "[[database-mapping]]",
      'eid_prefix = "10.0.0.0/8"',
      "[[database-mapping.rloc-iface]]",
      'interface = "eth0"',
      "ip-version = 4",
    )),
    [
      'oor.toml:1: debugg: unknown key (did you mean "debug"?)',
      'oor.toml:2: nat-traversal-support: unknown key (did you mean "nat_traversal_support"?)',
      "oor.toml:3: rloc-probe-interval: unknown key (it belongs in [rloc-probing])",
      "oor.toml:4: rloc-probing-interval: unknown key: OOR's old rloc-probing-interval is not supported; use rloc-probe-interval in [rloc-probing]",
      "oor.toml:5: colour: unknown key",
      "oor.toml:6: token: unknown key (it belongs in [api])",
      'oor.toml:8: rloc-probing.rloc-probe-intervall: unknown key (did you mean "rloc-probe-interval"?)',
      "oor.toml:9: database-mapping[0].eid-prefix: required key is missing",
      'oor.toml:10: database-mapping[0].eid_prefix: unknown key (did you mean "eid-prefix"?)',
      'oor.toml:13: database-mapping[0].rloc-iface[0].ip-version: unknown key (did you mean "ip_version"?)',
    ],
  );
});

Deno.test("parseConfig() rejects values of the wrong type", () => {
  deepStrictEqual(
    errorsOf(toml(
      'debug = "1"',
      'nat_traversal_support = "on"',
      "log-file = 5",
      'map-resolver = "192.0.2.1"',
      "encapsulation = true",
      "tun-mtu = 1400.5",
      "proxy-itrs = [1]",
      "api = 1",
      "[[rloc-probing]]",
      "[map-server]",
      'address = "192.0.2.1"',
      "[[lisp-site]]",
      'eid-prefix = "10.0.0.0/8"',
      'key = "k"',
      'proxy-reply = "no"',
      'ddt-ms-peers = "192.0.2.1"',
    )),
    [
      "oor.toml:1: debug: must be an integer, not a string (write 1 without quotes)",
      "oor.toml:2: nat_traversal_support: must be true or false, not a string (write true without quotes)",
      "oor.toml:3: log-file: must be a string, not an integer",
      'oor.toml:4: map-resolver: must be an array of addresses like ["192.0.2.1"], not a string',
      "oor.toml:5: encapsulation: must be a string, not a boolean",
      "oor.toml:6: tun-mtu: must be an integer, not a float",
      "oor.toml:7: proxy-itrs[0]: must be a string, not an integer",
      "oor.toml:8: api: must be a table like [api], not an integer",
      "oor.toml:9: rloc-probing: must be a table (write [rloc-probing], not [[rloc-probing]])",
      "oor.toml:10: map-server: must be an array of tables (write [[map-server]], not [map-server])",
      "oor.toml:15: lisp-site[0].proxy-reply: must be true or false, not a string (write false without quotes)",
      'oor.toml:16: lisp-site[0].ddt-ms-peers: must be an array of addresses like ["192.0.2.1"], not a string',
    ],
  );
});

Deno.test("parseConfig() takes control-port 0 (a free port) and checks control-rate-limit", () => {
  const c = configOf(toml("control-port = 0", "control-rate-limit = 50"));
  strictEqual(c.controlPort, 0);
  strictEqual(c.controlRateLimit, 50);
  deepStrictEqual(errorsOf(toml("control-rate-limit = -1", 'control-rate-limit2 = "x"')), [
    "oor.toml:1: control-rate-limit: must be from 0 to 10000000 (got -1)",
    'oor.toml:2: control-rate-limit2: unknown key (did you mean "control-rate-limit"?)',
  ]);
});

Deno.test("parseConfig() rejects values out of range or not in the list", () => {
  deepStrictEqual(
    errorsOf(toml(
      "debug = 4",
      "map-request-retries = 6",
      'ipv6-scope = "LINK"',
      'operating-mode = "PITR"',
      'encapsulation = "GRE"',
      "control-port = -1",
      "data-port = 65536",
      "tun-mtu = 100",
      "[rloc-probing]",
      "rloc-probe-interval = -1",
      "rloc-probe-retries = 6",
      "rloc-probe-retries-interval = 0",
      "[[rtr-iface]]",
      'iface = "eth0"',
      "ip_version = 5",
      "priority = 256",
      "weight = -1",
      "[[rtr-ms-node]]",
      'address = "192.0.2.2"',
      'key = "k"',
      'draft-version = "03"',
      "[[database-mapping]]",
      'eid-prefix = "10.0.0.0/8"',
      "iid = 16777215",
      "ttl = -5",
      'rloc-address = [{ address = "192.0.2.1" }]',
      "[[ddt-auth-site]]",
      'eid-prefix = "10.0.0.0/8"',
      "[[ddt-deleg-site]]",
      'eid-prefix = "10.0.0.0/8"',
      'delegation-type = "CHILD"',
      'deleg-nodes = ["192.0.2.1"]',
    )),
    [
      "oor.toml:1: debug: must be from 0 to 3 (got 4)",
      "oor.toml:2: map-request-retries: must be from 0 to 5 (got 6)",
      'oor.toml:3: ipv6-scope: must be "GLOBAL" or "SITE" (got "LINK")',
      'oor.toml:4: operating-mode: must be one of "xTR", "MN", "RTR", "MS", "MR", "DDT", "DDT-MR" (got "PITR")',
      'oor.toml:5: encapsulation: must be "LISP" or "VXLAN-GPE" (got "GRE")',
      "oor.toml:6: control-port: must be from 0 to 65535 (got -1)",
      "oor.toml:7: data-port: must be from 1 to 65535 (got 65536)",
      "oor.toml:8: tun-mtu: must be from 576 to 65535 (got 100)",
      "oor.toml:10: rloc-probing.rloc-probe-interval: must be from 0 to 86400 (got -1)",
      "oor.toml:11: rloc-probing.rloc-probe-retries: must be from 0 to 5 (got 6)",
      "oor.toml:12: rloc-probing.rloc-probe-retries-interval: must be from 1 to 86400 (got 0)",
      "oor.toml:15: rtr-iface[0].ip_version: must be 4 or 6",
      "oor.toml:16: rtr-iface[0].priority: must be from 0 to 255 (got 256)",
      "oor.toml:17: rtr-iface[0].weight: must be from 0 to 255 (got -1)",
      'oor.toml:21: rtr-ms-node[0].draft-version: must be "OLD" or "NEW" (got "03")',
      "oor.toml:24: database-mapping[0].iid: must be from 0 to 16777214 (got 16777215)",
      "oor.toml:25: database-mapping[0].ttl: must be from 0 to 4294967295 (got -5)",
      'oor.toml:31: ddt-deleg-site[0].delegation-type: must be "CHILD_DDT_NODE" or "MAP_SERVER_DDT_NODE" (got "CHILD")',
    ],
  );
});

Deno.test("parseConfig() rejects bad addresses, prefixes and interface names", () => {
  deepStrictEqual(
    errorsOf(toml(
      'map-resolver = ["192.0.2.256", "mr.example.net", "2001:db8::1%eth0"]',
      'control-address = ""',
      'control-iface = "eth0:1"',
      'tun-name = "a-very-long-name0"',
      "[api]",
      'listen = "localhost:9942"',
      "[[map-server]]",
      'address = "192.0.2.1/32"',
      'key = "k"',
      "[[database-mapping]]",
      'eid-prefix = "10.1.2.0/16"',
      'rloc-iface = [{ interface = "eth/0" }]',
      "[[lisp-site]]",
      'eid-prefix = "10.0.0.1"',
      'key = "k"',
      "[[ddt-auth-site]]",
      'eid-prefix = "2001:db8::/129"',
    )),
    [
      'oor.toml:1: map-resolver[0]: must be an IPv4 or IPv6 address (got "192.0.2.256")',
      'oor.toml:1: map-resolver[1]: must be an IPv4 or IPv6 address; host names are not supported (got "mr.example.net")',
      'oor.toml:1: map-resolver[2]: must be an IPv4 or IPv6 address (got "2001:db8::1%eth0")',
      "oor.toml:2: control-address: must not be empty",
      'oor.toml:3: control-iface: must be an interface name (1 to 15 bytes, no "/", ":" or spaces; got "eth0:1")',
      'oor.toml:4: tun-name: must be an interface name (1 to 15 bytes, no "/", ":" or spaces; got "a-very-long-name0")',
      'oor.toml:6: api.listen: must be ADDRESS:PORT like 127.0.0.1:9942 or [::1]:9942 (got "localhost:9942")',
      'oor.toml:8: map-server[0].address: must be an IPv4 or IPv6 address (got "192.0.2.1/32")',
      "oor.toml:11: database-mapping[0].eid-prefix: host bits set (did you mean 10.1.0.0/16?)",
      'oor.toml:12: database-mapping[0].rloc-iface[0].interface: must be an interface name (1 to 15 bytes, no "/", ":" or spaces; got "eth/0")',
      "oor.toml:14: lisp-site[0].eid-prefix: must be a prefix with a length, like 10.0.0.1/32",
      "oor.toml:17: ddt-auth-site[0].eid-prefix: prefix length must be 0..128 for IPv6 (got 129)",
    ],
  );
});

Deno.test("parseConfig() rejects duplicates, pointing at the first", () => {
  deepStrictEqual(
    errorsOf(toml(
      'map-resolver = ["192.0.2.1", "192.0.2.1"]',
      "[[lisp-site]]",
      'eid-prefix = "10.0.0.0/8"',
      'key = "k"',
      "[[lisp-site]]",
      'eid-prefix = "10.0.0.0/8"',
      'key = "k2"',
      "[[lisp-site]]",
      'eid-prefix = "10.0.0.0/8"',
      "iid = 1",
      'key = "k3"',
      "[[map-server]]",
      'address = "2001:db8::1"',
      'key = "k"',
      "[[map-server]]",
      'address = "2001:DB8:0::1"',
      'key = "k"',
      "[[ms-rtr-node]]",
      'name = "r"',
      'address = "192.0.2.5"',
      'key = "k"',
      "[[ms-rtr-node]]",
      'name = "r"',
      'address = "192.0.2.6"',
      'key = "k"',
    )),
    [
      "oor.toml:1: map-resolver[1]: duplicate of map-resolver[0]",
      "oor.toml:6: lisp-site[1].eid-prefix: duplicate of lisp-site[0] (same eid-prefix and iid)",
      "oor.toml:16: map-server[1].address: duplicate of map-server[0] (same address)",
      "oor.toml:23: ms-rtr-node[1].name: duplicate of ms-rtr-node[0] (same name)",
    ],
  );
});

Deno.test("parseConfig() checks names that refer to other tables", () => {
  deepStrictEqual(
    errorsOf(toml(
      'ms-advertised-rtrs-set = "nope"',
      "[[ms-rtr-node]]",
      'name = "r1"',
      'address = "192.0.2.5"',
      'key = "k"',
      "[[ms-rtrs-set]]",
      'name = "set1"',
      'rtrs = ["r1", "r2"]',
      "[[static-map-cache]]",
      'eid-prefix = "10.9.0.0/16"',
      'rloc-address = [{ address = "no-such-elp" }]',
      "[[ddt-auth-site]]",
      'eid-prefix = "10.0.0.0/8"',
      "[[ddt-deleg-site]]",
      'eid-prefix = "10.1.0.0/16"',
      "iid = 5",
      'delegation-type = "CHILD_DDT_NODE"',
      'deleg-nodes = ["192.0.2.9"]',
    )),
    [
      'oor.toml:1: ms-advertised-rtrs-set: no [[ms-rtrs-set]] is named "nope"',
      'oor.toml:8: ms-rtrs-set[0].rtrs[1]: no [[ms-rtr-node]] is named "r2"',
      'oor.toml:11: static-map-cache[0].rloc-address[0].address: must be an IPv4 or IPv6 address or the elp-name of an [[explicit-locator-path]] (got "no-such-elp")',
      "oor.toml:15: ddt-deleg-site[0].eid-prefix: not inside any [[ddt-auth-site]] with iid 5",
    ],
  );
});

Deno.test("parseConfig() places missing keys on their table's header line", () => {
  deepStrictEqual(
    errorsOf(toml(
      "debug = 0",
      "",
      "[[map-server]]",
      "proxy-reply = true",
      "",
      "[[explicit-locator-path]]",
      'elp-name = "192.0.2.1"',
      "[[database-mapping]]",
      'eid-prefix = "10.0.0.0/8"',
      "[[ddt-deleg-site]]",
      'eid-prefix = "10.0.0.0/8"',
      "deleg-nodes = []",
      "[[ms-rtrs-set]]",
      'name = "s"',
    )),
    [
      "oor.toml:3: map-server[0].address: required key is missing",
      "oor.toml:6: explicit-locator-path[0]: needs at least one elp-node",
      "oor.toml:7: explicit-locator-path[0].elp-name: must be a name, not an address",
      "oor.toml:8: database-mapping[0]: needs at least one rloc-address or rloc-iface",
      "oor.toml:10: ddt-deleg-site[0].delegation-type: required key is missing",
      "oor.toml:11: ddt-deleg-site[0].eid-prefix: not inside any [[ddt-auth-site]] with iid 0",
      "oor.toml:12: ddt-deleg-site[0].deleg-nodes: needs at least one address",
      "oor.toml:13: ms-rtrs-set[0].rtrs: required key is missing",
    ],
  );
});

Deno.test("parseConfig() finds lines inside nested and inline arrays of tables", () => {
  deepStrictEqual(
    errorsOf(toml(
      "[[database-mapping]]",
      'eid-prefix = "10.0.0.0/24"',
      'rloc-address = [{ address = "192.0.2.1" }]',
      "[[database-mapping]]",
      'eid-prefix = "10.0.1.0/24"',
      "[[database-mapping.rloc-address]]",
      'address = "192.0.2.1"',
      "[[database-mapping.rloc-address]]",
      'address = "192.0.2.2"',
      "priority = 300",
      "[[static-map-cache]]",
      'eid-prefix = "10.9.0.0/16"',
      "rloc-address = [",
      '  { address = "192.0.2.3" },',
      '  { address = "192.0.2.4",',
      "    weight = 1000 },",
      "]",
    )),
    [
      "oor.toml:10: database-mapping[1].rloc-address[1].priority: must be from 0 to 255 (got 300)",
      "oor.toml:16: static-map-cache[0].rloc-address[1].weight: must be from 0 to 255 (got 1000)",
    ],
  );
});

Deno.test("parseConfig() checks the rloc-probing and api rules between keys", () => {
  deepStrictEqual(
    errorsOf(toml(
      "control-port = 4341",
      "data-port = 4341",
      "[api]",
      'listen = "0.0.0.0:9942"',
      "[rloc-probing]",
      "rloc-probe-interval = 10",
      "rloc-probe-retries-interval = 11",
    )),
    [
      "oor.toml:2: data-port: must differ from control-port (4341)",
      "oor.toml:7: rloc-probing.rloc-probe-retries-interval: must not exceed rloc-probe-interval (10)",
    ],
  );
});

Deno.test("parseConfig() takes a non-loopback api.listen without a token, read-only, with a warning", () => {
  const r = parseConfig(toml("[api]", 'listen = "0.0.0.0:9942"'));
  ok(r.ok, "a remote read-only API is valid");
  deepStrictEqual(r.config.api.token, undefined);
  deepStrictEqual(r.warnings.map(String), [
    "oor.toml:2: api.listen: not a loopback address and no api.token: anyone who can reach it " +
    "may read the API; edits are refused unless OOR_API_TOKEN is set in the role's environment",
  ]);
  const withToken = parseConfig(toml("[api]", 'listen = "0.0.0.0:9942"', 'token = "t"'));
  ok(withToken.ok);
  deepStrictEqual(withToken.warnings, []);
});

Deno.test("parseConfig() reports every error of a file at once, in line order", () => {
  const errors = errorsOf(
    toml(
      "[[map-server]]",
      'address = "192.0.2.2"',
      "key-type = 0",
      "[rloc-probing]",
      "rloc-probe-retries = 9",
      "[api]",
      "enabled = 1",
    ),
    "xtr",
  );
  deepStrictEqual(errors, [
    "oor.toml:1: map-server[0].key: required key is missing",
    "oor.toml:3: map-server[0].key-type: must be 1 (HMAC-SHA-1) or 2 (HMAC-SHA-256)",
    "oor.toml:5: rloc-probing.rloc-probe-retries: must be from 0 to 5 (got 9)",
    "oor.toml:7: api.enabled: must be true or false, not an integer",
    "oor.toml: database-mapping: role xtr needs at least one [[database-mapping]]",
    "oor.toml: map-resolver: role xtr needs at least one map-resolver address",
  ]);
});

Deno.test("parseConfig() reports a TOML syntax error as file:line:column", () => {
  const r = parseConfig(
    toml("debug = 1", "", 'map-resolver = ["192.0.2.1",,]'),
    { file: "site.toml" },
  );
  strictEqual(r.ok, false);
  if (r.ok) return;
  strictEqual(r.errors.length, 1);
  const e = r.errors[0]!;
  strictEqual(e instanceof ConfigError, true);
  strictEqual(e.line, 3);
  strictEqual(e.column, 29);
  strictEqual(e.keyPath, "");
  strictEqual(String(e), "site.toml:3:29: invalid value");
});

Deno.test("parseConfig() reports a key defined twice as a syntax error", () => {
  deepStrictEqual(errorsOf(toml("debug = 1", "debug = 2")), [
    "oor.toml:2:1: trying to redefine an already defined table or value",
  ]);
});

// ---------------------------------------------------------------------------
// Roles.

Deno.test("parseConfig() requires each role's sections", () => {
  const cases: [Role, string[]][] = [
    ["xtr", [
      "oor.toml: database-mapping: role xtr needs at least one [[database-mapping]]",
      "oor.toml: map-server: role xtr needs at least one [[map-server]]",
      "oor.toml: map-resolver: role xtr needs at least one map-resolver address",
    ]],
    ["mn", [
      "oor.toml: database-mapping: role mn needs at least one [[database-mapping]]",
      "oor.toml: map-server: role mn needs at least one [[map-server]]",
      "oor.toml: map-resolver: role mn needs at least one map-resolver address",
    ]],
    ["rtr", [
      "oor.toml: rtr-iface: role rtr needs at least one [[rtr-iface]]",
      "oor.toml: map-resolver: role rtr needs at least one map-resolver address",
    ]],
    ["ms", [
      "oor.toml: lisp-site: role ms needs at least one [[lisp-site]] or [[ms-static-registered-site]]",
    ]],
    ["mr", [
      "oor.toml: ddt-root-addresses: role mr needs at least one ddt-root-addresses address or [[map-server]]",
    ]],
    ["ddt", [
      "oor.toml: ddt-auth-site: role ddt needs at least one [[ddt-auth-site]]",
    ]],
    ["ddt-mr", [
      "oor.toml: ddt-root-addresses: role ddt-mr needs at least one ddt-root-addresses address",
    ]],
  ];
  for (const [role, expected] of cases) {
    deepStrictEqual(errorsOf("debug = 0\n", role), expected, role);
  }
});

Deno.test("parseConfig() with no role checks only the common rules", () => {
  strictEqual(parseConfig("").ok, true);
  strictEqual(configOf("").role, undefined);
});

Deno.test("parseConfig() rejects an operating-mode that disagrees with the role", () => {
  deepStrictEqual(
    errorsOf(toml('operating-mode = "MS"', ...MINIMAL_XTR.split("\n")), "xtr"),
    [
      'oor.toml:1: operating-mode: is "MS" but the role given on the command line is xtr',
    ],
  );
  strictEqual(
    configOf(toml('operating-mode = "xtr"', ...MINIMAL_XTR.split("\n")), "xtr")
      .operatingMode,
    "xtr",
  );
});

Deno.test("parseConfig() takes the role from operating-mode when none is given", () => {
  deepStrictEqual(errorsOf('operating-mode = "DDT"\n'), [
    "oor.toml: ddt-auth-site: role ddt needs at least one [[ddt-auth-site]]",
  ]);
});

Deno.test("parseConfig() wants host prefixes as a mobile node's EIDs", () => {
  const text = MINIMAL_XTR;
  deepStrictEqual(errorsOf(text, "mn"), [
    "oor.toml:6: database-mapping[0].eid-prefix: a mobile node's EID must be a host prefix (/32)",
  ]);
  strictEqual(
    configOf(text.replace("10.1.0.0/24", "10.1.0.5/32"), "mn").role,
    "mn",
  );
});

Deno.test("parseConfig() warns about sections the role does not read", () => {
  const r = parseConfig(
    toml(
      ...MINIMAL_XTR.trimEnd().split("\n"),
      "[[lisp-site]]",
      'eid-prefix = "10.0.0.0/8"',
      'key = "k"',
    ),
    { role: "xtr" },
  );
  strictEqual(r.ok, true);
  deepStrictEqual(r.warnings.map(String), [
    "oor.toml:8: lisp-site: ignored by role xtr",
  ]);
});

// ---------------------------------------------------------------------------
// Instances and destination filters.

/** MINIMAL_XTR plus 10.1.0.0/24 again in iid 2, and `extra` lines. */
function twoTenants(...extra: string[]): string {
  return toml(
    ...MINIMAL_XTR.trimEnd().split("\n"),
    "[[database-mapping]]",
    'eid-prefix = "10.1.0.0/24"',
    "iid = 2",
    'rloc-address = [{ address = "198.51.100.1" }]',
    ...extra,
  );
}

Deno.test("parseConfig() refuses overlapping EID prefixes of two iids sharing the main TUN", () => {
  deepStrictEqual(errorsOf(twoTenants(), "xtr"), [
    "oor.toml:9: database-mapping[1].eid-prefix: overlaps 10.1.0.0/24 of iid 0 " +
    "(database-mapping[0]); give iid 2 or iid 0 its own [[instance]] with its site-interfaces",
  ]);
});

Deno.test("parseConfig() takes overlapping EID prefixes when one iid has its own [[instance]]", () => {
  const c = configOf(twoTenants("[[instance]]", "iid = 2", 'site-interfaces = ["site2"]'), "xtr");
  deepStrictEqual(c.instances, [{ iid: 2, tunName: "lispTun0-2", siteInterfaces: ["site2"] }]);
  strictEqual(c.databaseMappings.length, 2);
});

Deno.test("parseConfig() checks [[instance]] tables", () => {
  deepStrictEqual(
    errorsOf(
      twoTenants(
        "[[instance]]",
        'site-interfaces = ["site2"]',
        "[[instance]]",
        "iid = 2",
        'tun-name = "lispTun0"',
        'site-interfaces = ["site2"]',
        "[[instance]]",
        "iid = 3",
        "site-interfaces = []",
      ),
      "xtr",
    ),
    [
      "oor.toml:12: instance[0].iid: is required",
      'oor.toml:16: instance[1].tun-name: "lispTun0" is already used by tun-name',
      'oor.toml:17: instance[1].site-interfaces[0]: "site2" already belongs to instance[0].site-interfaces[0]',
      "oor.toml:20: instance[2].site-interfaces: needs at least one interface",
    ],
  );
});

Deno.test("parseConfig() reads destination-prefixes and rejects bad or repeated ones", () => {
  const c = configOf(
    toml(
      `destination-prefixes = ["10.2.0.0/16", "fd00:2::/48"]`,
      ...MINIMAL_XTR.replace("10.1.0.0/24", "10.1.0.5/32").split("\n"),
    ),
    "mn",
  );
  deepStrictEqual(c.destinationPrefixes.map((p) => formatPrefix(p)), [
    "10.2.0.0/16",
    "fd00:2::/48",
  ]);
  const errors = errorsOf(
    toml(
      'destination-prefixes = ["10.2.0.0/33", "10.2.0.0/16", "10.2.0.0/16"]',
      ...MINIMAL_XTR.split("\n"),
    ),
    "xtr",
  );
  strictEqual(errors.length, 2);
  strictEqual(errors[0]!.startsWith("oor.toml:1: destination-prefixes[0]: "), true);
  strictEqual(
    errors[1],
    "oor.toml:1: destination-prefixes[2]: duplicate of destination-prefixes[1]",
  );
});

Deno.test("nat_traversal_support needs LISP encapsulation", () => {
  ok(
    configOf(toml("nat_traversal_support = true", ...MINIMAL_XTR.split("\n")), "xtr")
      .natTraversalSupport,
  );
  deepStrictEqual(
    errorsOf(
      toml(
        'encapsulation = "VXLAN-GPE"',
        "nat_traversal_support = true",
        ...MINIMAL_XTR.split("\n"),
      ),
      "xtr",
    ),
    ['oor.toml:2: nat_traversal_support: NAT traversal needs encapsulation = "LISP"'],
  );
});

// ---------------------------------------------------------------------------
// Limits of one EID record, and of a site.

/** `n` distinct IPv4 addresses 192.0.{2,3,...}.x. */
function addresses(n: number, base = 0): string[] {
  return Array.from(
    { length: n },
    (_, i) => `10.${200 + ((base + i) >> 16)}.${((base + i) >> 8) & 255}.${(base + i) & 255}`,
  );
}

/** `[[KEY.rloc-address]]` tables, one per address. */
function rlocTables(key: string, list: readonly string[]): string[] {
  return list.flatMap((a) => [`[[${key}.rloc-address]]`, `address = "${a}"`]);
}

Deno.test("parseConfig() refuses more than 255 locators in anything that becomes one EID record", () => {
  const errors = errorsOf(toml(
    'control-address = "192.0.2.100"',
    'map-resolver = ["192.0.2.1"]',
    "[[database-mapping]]", // line 3
    'eid-prefix = "10.1.0.0/24"',
    "[[database-mapping.rloc-iface]]",
    'interface = "eth0"',
    ...rlocTables("database-mapping", addresses(255)),
    "[[static-map-cache]]", // line 517
    'eid-prefix = "10.2.0.0/24"',
    ...rlocTables("static-map-cache", addresses(256)),
    "[[ms-static-registered-site]]", // line 1031
    'eid-prefix = "10.3.0.0/24"',
    ...rlocTables("ms-static-registered-site", addresses(300)),
    "[[ddt-auth-site]]", // line 1633
    'eid-prefix = "10.0.0.0/8"',
    "[[ddt-deleg-site]]", // line 1635
    'eid-prefix = "10.4.0.0/16"',
    'delegation-type = "CHILD_DDT_NODE"',
    `deleg-nodes = ${JSON.stringify(addresses(256))}`,
    "[[lisp-site]]", // line 1639
    'eid-prefix = "10.5.0.0/16"',
    'key = "k"',
    `ddt-ms-peers = ${JSON.stringify(addresses(255))}`,
  ));
  const limit = "at most 255 fit in one EID record (8-bit Locator Count, RFC 9301 §5.4)";
  deepStrictEqual(errors, [
    `oor.toml:3: database-mapping[0]: 256 locators (rloc-address and rloc-iface), ${limit}`,
    `oor.toml:517: static-map-cache[0]: 256 locators (rloc-address), ${limit}`,
    `oor.toml:1031: ms-static-registered-site[0]: 300 locators (rloc-address), ${limit}`,
    `oor.toml:1635: ddt-deleg-site[0]: 256 locators (deleg-nodes), ${limit}`,
    `oor.toml:1639: lisp-site[0]: 256 locators (ddt-ms-peers and control-address), ${limit}`,
  ]);
  const rtr = errorsOf(
    toml(
      'map-resolver = ["192.0.2.1"]',
      ...Array.from({ length: 256 }, (_, i) => [
        "[[rtr-iface]]",
        `iface = "eth${i}"`,
      ]).flat(),
    ),
    "rtr",
  );
  deepStrictEqual(rtr, [`oor.toml:2: rtr-iface: 256 locators ([[rtr-iface]]), ${limit}`]);
});

Deno.test("parseConfig() takes exactly 255 locators in one record", () => {
  const c = configOf(
    toml(
      'map-resolver = ["192.0.2.1"]',
      "[[map-server]]",
      'address = "192.0.2.2"',
      'key = "k"',
      "[[database-mapping]]",
      'eid-prefix = "10.1.0.0/24"',
      ...rlocTables("database-mapping", addresses(255)),
    ),
    "xtr",
  );
  strictEqual(c.databaseMappings[0]!.rlocAddresses.length, 255);
});

Deno.test("parseConfig() reads lisp-site max-registrations, 1024 by default", () => {
  const site = (...extra: string[]) =>
    toml("[[lisp-site]]", 'eid-prefix = "10.1.0.0/16"', 'key = "k"', ...extra);
  strictEqual(configOf(site(), "ms").lispSites[0]!.maxRegistrations, 1024);
  strictEqual(configOf(site("max-registrations = 1"), "ms").lispSites[0]!.maxRegistrations, 1);
  deepStrictEqual(errorsOf(site("max-registrations = 0"), "ms"), [
    "oor.toml:4: lisp-site[0].max-registrations: must be from 1 to 10000000 (got 0)",
  ]);
});

Deno.test("parseConfig() demands a [[map-server]] key only of the roles that register (xtr, mn)", () => {
  const mr = toml(
    'map-resolver = ["192.0.2.1"]',
    "[[map-server]]",
    'address = "192.0.2.2"',
  );
  // An mr forwards Map-Requests to its map-servers: they carry no authentication.
  strictEqual(configOf(mr, "mr").mapServers[0]!.key, undefined);
  // Without operating-mode or a role, only what every role needs is checked.
  strictEqual(configOf(mr).role, undefined);
  strictEqual(configOf(mr).mapServers[0]!.key, undefined);
  for (const role of ["xtr", "mn"] as const) {
    ok(errorsOf(mr, role).includes("oor.toml:2: map-server[0].key: required key is missing"));
  }
  ok(configOf(toml('operating-mode = "MR"', mr)).mapServers.length === 1);
  ok(
    errorsOf(toml('operating-mode = "xTR"', mr)).includes(
      "oor.toml:3: map-server[0].key: required key is missing",
    ),
  );
});

Deno.test("parseConfig() takes tun-mtu up to 65535, and at least 1280 with IPv6 EID prefixes", () => {
  const xtr = (mtu: number, eid: string) =>
    toml(
      `tun-mtu = ${mtu}`,
      'map-resolver = ["192.0.2.1"]',
      "[[map-server]]",
      'address = "192.0.2.2"',
      'key = "k"',
      "[[database-mapping]]",
      `eid-prefix = "${eid}"`,
      'rloc-address = [{ address = "198.51.100.1" }]',
    );
  strictEqual(configOf(xtr(65535, "fd00:1::/64"), "xtr").tunMtu, 65535);
  strictEqual(configOf(xtr(1000, "10.1.0.0/24"), "xtr").tunMtu, 1000);
  strictEqual(configOf(xtr(1280, "fd00:1::5/128"), "mn").tunMtu, 1280);
  deepStrictEqual(errorsOf(xtr(1279, "fd00:1::/64"), "xtr"), [
    "oor.toml:1: tun-mtu: must be at least 1280 with IPv6 EID prefixes (got 1279)",
  ]);
  deepStrictEqual(errorsOf(xtr(65536, "10.1.0.0/24"), "xtr"), [
    "oor.toml:1: tun-mtu: must be from 576 to 65535 (got 65536)",
  ]);
});

Deno.test("parseConfig() reads [data-plane] offloads, and says where a bad value is", () => {
  strictEqual(
    configOf(MINIMAL_XTR + "[data-plane]\noffloads = false\n", "xtr").dataPlane.offloads,
    false,
  );
  strictEqual(
    configOf(MINIMAL_XTR + "[data-plane]\noffloads = true\n", "xtr").dataPlane.offloads,
    true,
  );
  strictEqual(configOf(MINIMAL_XTR + "[data-plane]\n", "xtr").dataPlane.offloads, true);
  deepStrictEqual(configOf(MINIMAL_XTR + "[data-plane]\nudp-gso = false\n", "xtr").dataPlane, {
    offloads: true,
    udpGso: false,
  });
  deepStrictEqual(errorsOf(MINIMAL_XTR + '[data-plane]\noffloads = "no"\ngso = 1\n', "xtr"), [
    "oor.toml:9: data-plane.offloads: must be true or false, not a string (write false without quotes)",
    "oor.toml:10: data-plane.gso: unknown key",
  ]);
});

Deno.test("parseConfig() reads [data-plane] workers (absent: the number of cores), and says where a bad value is", () => {
  strictEqual(configOf(MINIMAL_XTR + "[data-plane]\n", "xtr").dataPlane.workers, undefined);
  strictEqual(configOf(MINIMAL_XTR + "[data-plane]\nworkers = 1\n", "xtr").dataPlane.workers, 1);
  strictEqual(configOf(MINIMAL_XTR + "[data-plane]\nworkers = 64\n", "xtr").dataPlane.workers, 64);
  deepStrictEqual(errorsOf(MINIMAL_XTR + "[data-plane]\nworkers = 0\n", "xtr"), [
    "oor.toml:9: data-plane.workers: must be from 1 to 64 (got 0)",
  ]);
  deepStrictEqual(errorsOf(MINIMAL_XTR + "[data-plane]\noffloads = true\nworkers = 65\n", "xtr"), [
    "oor.toml:10: data-plane.workers: must be from 1 to 64 (got 65)",
  ]);
  deepStrictEqual(errorsOf(MINIMAL_XTR + '[data-plane]\nworkers = "2"\n', "xtr"), [
    "oor.toml:9: data-plane.workers: must be an integer, not a string (write 2 without quotes)",
  ]);
  deepStrictEqual(errorsOf(MINIMAL_XTR + "[data-plane]\nworkers = 1.5\n", "xtr"), [
    "oor.toml:9: data-plane.workers: must be an integer, not a float",
  ]);
});

Deno.test("parseConfig() reads [data-plane] cpus (absent: none pinned), and says where a bad value is", () => {
  strictEqual(configOf(MINIMAL_XTR + "[data-plane]\n", "xtr").dataPlane.cpus, undefined);
  deepStrictEqual(configOf(MINIMAL_XTR + "[data-plane]\ncpus = [2, 0]\n", "xtr").dataPlane.cpus, [
    2,
    0,
  ]);
  const bad: [string, string][] = [
    ["cpus = []", "must be a non-empty list of CPU numbers, e.g. [0, 1], not an array"],
    ["cpus = 1", "must be a non-empty list of CPU numbers, e.g. [0, 1], not an integer"],
    ["cpus = [0, -1]", "each CPU must be an integer from 0 to 1023 (got -1)"],
    ["cpus = [1024]", "each CPU must be an integer from 0 to 1023 (got 1024)"],
    ['cpus = ["0"]', 'each CPU must be an integer from 0 to 1023 (got "0")'],
    ["cpus = [1, 1]", "CPU 1 is listed twice"],
  ];
  for (const [line, reason] of bad) {
    deepStrictEqual(errorsOf(MINIMAL_XTR + `[data-plane]\n${line}\n`, "xtr"), [
      `oor.toml:9: data-plane.cpus: ${reason}`,
    ]);
  }
});
