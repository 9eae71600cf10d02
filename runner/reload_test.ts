import assert from "node:assert/strict";
import { type Config, type ConfigResult, parseConfig, type Role } from "../config/mod.ts";
import { Logger } from "../core/log.ts";
import type { StatusSource } from "../core/status.ts";
import { RuntimeEdits } from "../web/state.ts";
import { configDiff, Reloader, tomlKey } from "./reload.ts";

const FILE = "oor.toml";

function xtrText(...extra: string[]): string {
  return [
    'operating-mode = "xTR"',
    "control-port = 0",
    'map-resolver = ["192.0.2.3"]',
    "[[map-server]]",
    'address = "192.0.2.2"',
    "key-type = 1",
    'key = "k"',
    ...extra,
  ].join("\n") + "\n";
}

function mapping(eid: string, rloc = "192.0.2.1", priority = 1): string {
  return [
    "[[database-mapping]]",
    `eid-prefix = "${eid}"`,
    "iid = 0",
    "[[database-mapping.rloc-address]]",
    `address = "${rloc}"`,
    `priority = ${priority}`,
    "weight = 100",
  ].join("\n");
}

function staticEntry(eid: string): string {
  return [
    "[[static-map-cache]]",
    `eid-prefix = "${eid}"`,
    "iid = 0",
    "[[static-map-cache.rloc-address]]",
    'address = "192.0.2.9"',
    "priority = 1",
    "weight = 100",
  ].join("\n");
}

function msText(...sites: string[]): string {
  return ['operating-mode = "MS"', "control-port = 0", ...sites].join("\n") + "\n";
}

function site(eid: string, key = "k1"): string {
  return ["[[lisp-site]]", `eid-prefix = "${eid}"`, "iid = 0", "key-type = 1", `key = "${key}"`]
    .join("\n");
}

function parse(text: string, role: Role = "xtr"): Config {
  const r = parseConfig(text, { file: FILE, role });
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  return r.config;
}

const summary = (d: ReturnType<typeof configDiff>) =>
  d.changes.map((c) => `${c.table} ${c.action} ${c.eidPrefix.address}/${c.eidPrefix.length}`);

Deno.test("tomlKey() names config fields as the file writes them", () => {
  assert.equal(tomlKey("tunName"), "tun-name");
  assert.equal(tomlKey("controlPort"), "control-port");
  assert.equal(tomlKey("operatingMode"), "operating-mode");
  assert.equal(tomlKey("mapServers"), "[[map-server]]");
  assert.equal(tomlKey("dataPlane"), "[data-plane]");
});

Deno.test("configDiff() of a tunnel router: mappings and static entries added, replaced and removed, additions first", () => {
  const old = parse(
    xtrText(mapping("10.1.0.0/24"), mapping("10.3.0.0/24"), staticEntry("10.9.0.0/24")),
  );
  const next = parse(
    xtrText(
      mapping("10.1.0.0/24", "192.0.2.1", 2),
      mapping("10.2.0.0/24"),
      staticEntry("10.8.0.0/24"),
    ),
  );
  const d = configDiff(old, next);
  assert.deepEqual(d.fixed, []);
  assert.deepEqual(summary(d), [
    "database-mapping changed 10.1.0.0/24",
    "database-mapping added 10.2.0.0/24",
    "static-map-cache added 10.8.0.0/24",
    "database-mapping removed 10.3.0.0/24",
    "static-map-cache removed 10.9.0.0/24",
  ]);
  assert.deepEqual(
    configDiff(
      old,
      parse(xtrText(mapping("10.1.0.0/24"), mapping("10.3.0.0/24"), staticEntry("10.9.0.0/24"))),
    ),
    { fixed: [], changes: [] },
  );
});

Deno.test("configDiff() of a map-server: sites added, removed, and a changed key", () => {
  const d = configDiff(
    parse(msText(site("10.1.0.0/16"), site("10.2.0.0/16")), "ms"),
    parse(msText(site("10.1.0.0/16", "k2"), site("10.3.0.0/16")), "ms"),
  );
  assert.deepEqual(d.fixed, []);
  assert.deepEqual(summary(d), [
    "lisp-site changed 10.1.0.0/16",
    "lisp-site added 10.3.0.0/16",
    "lisp-site removed 10.2.0.0/16",
  ]);
});

Deno.test("configDiff() names each key that cannot change while the role runs; [api] state-file is not one", () => {
  const old = parse(xtrText(mapping("10.1.0.0/24")));
  const next = parse(
    ['tun-name = "lispTun9"', xtrText(mapping("10.1.0.0/24"))].join("\n")
      .replace("control-port = 0", "control-port = 4342"),
  );
  const d = configDiff(old, next);
  assert.deepEqual([...d.fixed].sort(), [
    "control-port: cannot change while the role runs (restart to apply it)",
    "tun-name: cannot change while the role runs (restart to apply it)",
  ]);
  const withState = { ...old, api: { ...old.api, stateFile: "/var/lib/oor/x.json" } };
  assert.deepEqual(configDiff(old, withState).fixed, []);
});

/** A source that records what the reload asks of it. */
function recorder(calls: string[]): StatusSource {
  const key = (p: { address: string; length: number }) => `${p.address}/${p.length}`;
  return {
    addDatabaseMapping: (m) => void calls.push(`add db ${key(m.eidPrefix)}`),
    removeDatabaseMapping: (p) => (calls.push(`remove db ${key(p)}`), true),
    addStaticMapping: (e) => void calls.push(`add static ${key(e.eidPrefix)}`),
    removeStaticMapping: (p) => (calls.push(`remove static ${key(p)}`), true),
  };
}

function reloader(
  current: Config,
  files: string[],
  source: StatusSource,
  lines: string[],
  edits?: RuntimeEdits,
): Reloader {
  return new Reloader({
    role: "xtr",
    file: FILE,
    read: () => Promise.resolve<ConfigResult>(parseConfig(files[0]!, { file: FILE, role: "xtr" })),
    current,
    ...(edits !== undefined ? { edits } : {}),
    source,
    log: new Logger({ role: "xtr", level: "debug", sink: { write: (l) => lines.push(l) } }),
  });
}

Deno.test("Reloader applies a new mapping through the role's hooks and logs each change and a summary", async () => {
  const calls: string[] = [];
  const lines: string[] = [];
  const files = [xtrText(mapping("10.1.0.0/24"), mapping("10.2.0.0/24"))];
  const r = reloader(parse(xtrText(mapping("10.1.0.0/24"))), files, recorder(calls), lines);
  const out = await r.reload("SIGHUP");
  assert.deepEqual(out, {
    ok: true,
    errors: [],
    changes: ["[[database-mapping]] 10.2.0.0/24 added"],
  });
  assert.deepEqual(calls, ["add db 10.2.0.0/24"]);
  assert.ok(
    lines.some((l) => / reload-applied .*table=database-mapping action=added/.test(l)),
    lines.join(""),
  );
  assert.ok(lines.some((l) => / reloaded .*trigger=SIGHUP.* changes=1/.test(l)), lines.join(""));
  // The same file again: nothing to do.
  assert.deepEqual((await r.reload("api")).changes, []);
  assert.deepEqual(calls, ["add db 10.2.0.0/24"]);
});

Deno.test("Reloader refuses an invalid file whole with its errors (file:line) and keeps the config in force", async () => {
  const calls: string[] = [];
  const lines: string[] = [];
  const current = parse(xtrText(mapping("10.1.0.0/24")));
  const files = [xtrText(mapping("10.1.0.0/24"), mapping("10.2.0.0/33"))];
  const r = reloader(current, files, recorder(calls), lines);
  const out = await r.reload("SIGHUP");
  assert.equal(out.ok, false);
  assert.match(out.errors[0]!, /^oor\.toml:\d+: database-mapping\[1\]\.eid-prefix: /);
  assert.deepEqual(calls, []);
  assert.equal(r.current, current);
  assert.ok(
    lines.some((l) => /ERROR.* reload-refused .*oor\.toml:\d+: database-mapping/i.test(l)),
    lines.join(""),
  );
  // A key that cannot change refuses the whole file, the mapping beside it too.
  files[0] = ['tun-name = "other"', xtrText(mapping("10.1.0.0/24"), mapping("10.2.0.0/24"))].join(
    "\n",
  );
  const fixed = await r.reload("SIGHUP");
  assert.deepEqual(fixed.errors, [
    "tun-name: cannot change while the role runs (restart to apply it)",
  ]);
  assert.deepEqual(calls, []);
});

Deno.test("Reloader refuses a table the role cannot change at runtime, naming it", async () => {
  const lines: string[] = [];
  const r = reloader(
    parse(xtrText(mapping("10.1.0.0/24"))),
    [xtrText(mapping("10.1.0.0/24"), staticEntry("10.9.0.0/24"))],
    { addDatabaseMapping: () => {}, removeDatabaseMapping: () => true },
    lines,
  );
  assert.deepEqual((await r.reload("api")).errors, [
    "[[static-map-cache]]: this role (xtr) cannot change it while it runs",
  ]);
});

Deno.test("Reloader keeps the runtime edits on top of the reloaded file", async () => {
  const calls: string[] = [];
  const edits = new RuntimeEdits(undefined);
  const current = parse(xtrText(mapping("10.1.0.0/24"), mapping("10.3.0.0/24")));
  edits.apply(current);
  // Through the API: 10.5/24 added, 10.3/24 removed.
  await edits.addDatabaseMapping(parse(xtrText(mapping("10.5.0.0/24"))).databaseMappings[0]!);
  await edits.removeDatabaseMapping(current.databaseMappings[1]!.eidPrefix, 0);
  // The new file drops 10.1/24, still has 10.3/24, adds 10.2/24 and 10.5/24.
  const files = [
    xtrText(mapping("10.3.0.0/24"), mapping("10.2.0.0/24"), mapping("10.5.0.0/24", "192.0.2.7")),
  ];
  const out = await reloader(current, files, recorder(calls), [], edits).reload("SIGHUP");
  assert.equal(out.ok, true);
  // 10.3/24 stays removed and 10.5/24 stays as the API wrote it; the rest is the file's.
  assert.deepEqual(calls, ["add db 10.2.0.0/24", "remove db 10.1.0.0/24"]);
});

Deno.test("configDiff() takes map-servers, map-resolvers and proxy-ETRs together as the peers", () => {
  const old = parse(xtrText(mapping("10.1.0.0/24")));
  const next = parse(
    xtrText(mapping("10.1.0.0/24"))
      .replace('map-resolver = ["192.0.2.3"]', 'map-resolver = ["192.0.2.4"]')
      .replace('key = "k"', 'key = "k2"'),
  );
  const d = configDiff(old, next);
  assert.deepEqual(d.fixed, []);
  assert.deepEqual(d.changes, []);
  assert.deepEqual(d.peers?.keys, ["map-resolver", "[[map-server]]"]);
  assert.deepEqual(d.peers?.lists.mapResolvers, ["192.0.2.4"]);
  assert.equal(d.peers?.lists.mapServers[0]?.key, "k2");
  assert.equal(configDiff(old, old).peers, undefined);
});

Deno.test("Reloader gives changed peers to setPeers before the mappings, or refuses them when the role has no such hook", async () => {
  const calls: string[] = [];
  const files = [
    xtrText(mapping("10.1.0.0/24"), mapping("10.2.0.0/24")).replace('key = "k"', 'key = "k2"'),
  ];
  const source: StatusSource = {
    ...recorder(calls),
    setPeers: (p) => {
      calls.push(`peers ${p.mapServers.map((m) => `${m.address}:${m.key}`).join(",")}`);
      return ["map-server 192.0.2.2 changed"];
    },
  };
  const lines: string[] = [];
  const out = await reloader(parse(xtrText(mapping("10.1.0.0/24"))), files, source, lines).reload(
    "SIGHUP",
  );
  assert.deepEqual(out, {
    ok: true,
    errors: [],
    changes: ["map-server 192.0.2.2 changed", "[[database-mapping]] 10.2.0.0/24 added"],
  });
  assert.deepEqual(calls, ["peers 192.0.2.2:k2", "add db 10.2.0.0/24"]);
  assert.ok(
    lines.some((l) =>
      / reload-applied table=peers entry="map-server 192\.0\.2\.2 changed"/.test(l)
    ),
    lines.join(""),
  );
  const refused = await reloader(parse(xtrText(mapping("10.1.0.0/24"))), files, recorder([]), [])
    .reload("api");
  assert.deepEqual(refused.errors, [
    "[[map-server]]: this role (xtr) cannot change it while it runs",
  ]);
});

Deno.test("configDiff() of a DDT node: a delegation added and one whose nodes changed", () => {
  const ddt = (...delegs: string[]) =>
    parse(
      [
        'operating-mode = "DDT"',
        "control-port = 0",
        "[[ddt-auth-site]]",
        'eid-prefix = "10.0.0.0/8"',
        ...delegs,
      ].join("\n") + "\n",
      "ddt",
    );
  const deleg = (eid: string, node: string) =>
    [
      "[[ddt-deleg-site]]",
      `eid-prefix = "${eid}"`,
      'delegation-type = "MAP_SERVER_DDT_NODE"',
      `deleg-nodes = ["${node}"]`,
    ].join("\n");
  const d = configDiff(
    ddt(deleg("10.1.0.0/16", "192.0.2.5")),
    ddt(deleg("10.1.0.0/16", "192.0.2.6"), deleg("10.2.0.0/16", "192.0.2.7")),
  );
  assert.deepEqual(d.fixed, []);
  assert.deepEqual(summary(d), [
    "ddt-deleg-site changed 10.1.0.0/16",
    "ddt-deleg-site added 10.2.0.0/16",
  ]);
});
