import assert from "node:assert/strict";
import { type Config, parseConfig } from "../../config/mod.ts";
import { Counters } from "../../core/counters.ts";
import { Logger } from "../../core/log.ts";
import type { PeerLists } from "../../core/status.ts";
import type { Env } from "./context.ts";
import { applyPeers, peerChanges } from "./peers.ts";

function config(...lines: string[]): Config {
  const r = parseConfig(
    [
      'operating-mode = "xTR"',
      ...lines,
      "[[database-mapping]]",
      'eid-prefix = "10.1.0.0/24"',
      "[[database-mapping.rloc-address]]",
      'address = "192.0.2.1"',
    ].join("\n"),
    { role: "xtr" },
  );
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  return r.config;
}

const ms = (address: string, key = "k") =>
  ["[[map-server]]", `address = "${address}"`, "key-type = 1", `key = "${key}"`].join("\n");
const petr = (address: string) =>
  ["[[proxy-etr-ipv4]]", `address = "${address}"`, "priority = 1", "weight = 100"].join("\n");

function env(c: Config, lines: string[]): Env {
  return {
    config: c,
    log: new Logger({ role: "xtr", sink: { write: (l) => lines.push(l) } }),
    counters: new Counters(),
    now: Date.now,
    nonce: () => 1n,
    peerPort: () => 4342,
    timing: {} as Env["timing"],
    signal: new AbortController().signal,
  };
}

Deno.test("peerChanges() says per address what was added, changed or removed", () => {
  const a = config(
    'map-resolver = ["192.0.2.3"]',
    ms("192.0.2.2"),
    ms("192.0.2.5"),
    petr("192.0.2.8"),
  );
  const b = config('map-resolver = ["192.0.2.4"]', ms("192.0.2.2", "k2"), ms("192.0.2.6"));
  assert.deepEqual(peerChanges(a, b), [
    "map-server 192.0.2.2 changed",
    "map-server 192.0.2.6 added",
    "map-server 192.0.2.5 removed",
    "map-resolver 192.0.2.4 added",
    "map-resolver 192.0.2.3 removed",
    "proxy-etr-ipv4 192.0.2.8 removed",
  ]);
  assert.deepEqual(peerChanges(a, a), []);
});

Deno.test("applyPeers() puts the new lists in the router's config and tells only the parts whose list changed", () => {
  const lines: string[] = [];
  const e = env(config('map-resolver = ["192.0.2.3"]', ms("192.0.2.2"), petr("192.0.2.8")), lines);
  const database = e.config.databaseMappings;
  const calls: string[] = [];
  const parts = {
    mapServersChanged: () => (calls.push("map-servers"), []),
    setPetrs: (v4: PeerLists["proxyEtrsIpv4"]) =>
      void calls.push(`petrs ${v4.map((p) => p.address)}`),
  };
  const next = config('map-resolver = ["192.0.2.4"]', ms("192.0.2.2"), petr("192.0.2.8"));
  assert.deepEqual(applyPeers(e, next, parts), [
    "map-resolver 192.0.2.4 added",
    "map-resolver 192.0.2.3 removed",
  ]);
  assert.deepEqual(e.config.mapResolvers, ["192.0.2.4"]);
  assert.equal(e.config.databaseMappings, database, "the rest of the config is kept");
  assert.deepEqual(calls, [], "neither map-servers nor proxy-ETRs changed");
  assert.equal(lines.filter((l) => / peer-changed /.test(l)).length, 2);
  const third = config('map-resolver = ["192.0.2.4"]', ms("192.0.2.2", "k2"), petr("192.0.2.9"));
  applyPeers(e, third, parts);
  assert.deepEqual(calls, ["map-servers", "petrs 192.0.2.9"]);
  assert.equal(e.config.mapServers[0]?.key, "k2");
  assert.deepEqual(applyPeers(e, third, parts), [], "nothing differs: nothing done");
  assert.equal(calls.length, 2);
});
