import assert from "node:assert/strict";
import { formatPrefix, parseConfig } from "../config/mod.ts";
import type { Config, DatabaseMapping, StaticMapCacheEntry } from "../config/mod.ts";
import { createApp } from "./app.ts";
import type { StatusSource } from "../core/status.ts";
import {
  EMPTY_STATE,
  formatState,
  loadState,
  RuntimeEdits,
  type RuntimeState,
  saveState,
  StateError,
  stateFilePath,
} from "./state.ts";

const TOKEN = "state-test-token";

function config(...lines: string[]): Config {
  const r = parseConfig(lines.join("\n") + "\n");
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  return r.config;
}

const BASE = config(
  "[[static-map-cache]]",
  'eid-prefix = "10.9.0.0/16"',
  "[[static-map-cache.rloc-address]]",
  'address = "192.0.2.9"',
  "[[static-map-cache]]",
  'eid-prefix = "10.8.0.0/16"',
  "[[static-map-cache.rloc-address]]",
  'address = "192.0.2.8"',
  "[[database-mapping]]",
  'eid-prefix = "10.5.0.0/16"',
  "[[database-mapping.rloc-address]]",
  'address = "192.0.2.1"',
);

function staticEntry(prefix: string, rloc: string, iid = 0): StaticMapCacheEntry {
  const [address, length] = prefix.split("/");
  return {
    eidPrefix: {
      family: address!.includes(":") ? 6 : 4,
      address: address!,
      length: Number(length),
    },
    iid,
    rlocAddresses: [{ kind: "address", address: rloc, priority: 1, weight: 100 }],
  };
}

function dbEntry(prefix: string, rloc: string): DatabaseMapping {
  const s = staticEntry(prefix, rloc);
  return { ...s, ttl: 10, rlocIfaces: [] };
}

const texts = (c: Config) => c.staticMapCache.map((e) => `${e.iid} ${formatPrefix(e.eidPrefix)}`);

Deno.test("saveState() then loadState() gives the same state, and no temp file is left", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/oor.toml.state.json`;
    const state: RuntimeState = {
      staticMapCache: {
        added: [staticEntry("10.2.0.0/16", "192.0.2.7"), staticEntry("fd00::/8", "2001:db8::1", 7)],
        removed: [{ eidPrefix: { family: 4, address: "10.9.0.0", length: 16 }, iid: 0 }],
      },
      databaseMappings: {
        added: [{
          ...dbEntry("10.7.0.0/24", "192.0.2.1"),
          rlocIfaces: [{ interface: "eth0", ipVersion: 6, priority: 2, weight: 3 }],
        }],
        removed: [],
      },
      lispSites: { added: [], removed: [] },
      staticSites: { added: [], removed: [] },
      delegSites: { added: [], removed: [] },
      peers: {
        mapServers: {
          added: [{
            address: "192.0.2.9",
            keyType: 2,
            key: "k",
            proxyReply: true,
            merge: false,
          }],
          removed: ["192.0.2.2"],
        },
        mapResolvers: { added: ["2001:db8::53"], removed: [] },
        proxyEtrsIpv4: { added: [{ address: "192.0.2.7", priority: 1, weight: 50 }], removed: [] },
        proxyEtrsIpv6: { added: [], removed: ["2001:db8::7"] },
      },
    };
    await saveState(path, state);
    assert.deepEqual(await loadState(path), state);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["oor.toml.state.json"]);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const json = JSON.parse(await Deno.readTextFile(path));
    assert.equal(json.format, 1);
    assert.deepEqual(json["static-map-cache"].removed, [{ "eid-prefix": "10.9.0.0/16", iid: 0 }]);
    assert.deepEqual(json["database-mapping"].added[0]["rloc-iface"], [
      { interface: "eth0", ip_version: 6, priority: 2, weight: 3 },
    ]);
    // Saving again replaces the file whole.
    await saveState(path, EMPTY_STATE);
    assert.deepEqual(await loadState(path), EMPTY_STATE);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadState() of a missing file is no edits; a bad one names the file and field", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.deepEqual(await loadState(`${dir}/none.json`), EMPTY_STATE);
    const cases: [string, RegExp][] = [
      ["{", /: not JSON: /],
      ["[]", /: \(top\): must be a JSON object/],
      ['{"format": 2}', /: format: must be 1 \(got 2\)/],
      ['{"format": 1, "extra": 1}', /: extra: unknown key/],
      [
        '{"format": 1, "static-map-cache": {"added": [{"eid-prefix": "10.0.0.1/8", "rloc-address": [{"address": "192.0.2.1"}]}]}}',
        /: static-map-cache\.added\[0\]\.eid-prefix: host bits set/,
      ],
      [
        '{"format": 1, "database-mapping": {"added": [{"eid-prefix": "10.0.0.0/8", "rloc-address": [{"address": "192.0.2.1", "priority": 300}]}]}}',
        /: database-mapping\.added\[0\]\.rloc-address\[0\]\.priority: must be an integer 0\.\.255/,
      ],
      [
        '{"format": 1, "database-mapping": {"removed": [{"eid-prefix": "x"}]}}',
        /: database-mapping\.removed\[0\]\.eid-prefix: /,
      ],
      [
        '{"format": 1, "database-mapping": {"added": {}}}',
        /: database-mapping\.added: must be an array/,
      ],
    ];
    for (const [text, reason] of cases) {
      const path = `${dir}/bad.json`;
      await Deno.writeTextFile(path, text);
      await assert.rejects(loadState(path), (e: unknown) => {
        assert.ok(e instanceof StateError, String(e));
        assert.ok(e.message.startsWith(`${path}: `), e.message);
        assert.match(e.message, reason, text);
        return true;
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RuntimeEdits.apply() replaces, hides and adds config entries", () => {
  const edits = new RuntimeEdits(undefined, {
    staticMapCache: {
      added: [staticEntry("10.8.0.0/16", "192.0.2.88"), staticEntry("10.2.0.0/16", "192.0.2.7")],
      removed: [{ eidPrefix: { family: 4, address: "10.9.0.0", length: 16 }, iid: 0 }],
    },
    databaseMappings: { added: [dbEntry("10.5.0.0/16", "192.0.2.55")], removed: [] },
  });
  const c = edits.apply(BASE);
  assert.deepEqual(texts(c), ["0 10.8.0.0/16", "0 10.2.0.0/16"]);
  const first = c.staticMapCache[0]!.rlocAddresses[0]!;
  assert.equal(first.kind === "address" ? first.address : "", "192.0.2.88");
  assert.equal(c.databaseMappings.length, 1);
  const db = c.databaseMappings[0]!.rlocAddresses[0]!;
  assert.equal(db.kind === "address" ? db.address : "", "192.0.2.55");
  assert.equal(edits.size, 4);
  // The rest of the config is untouched.
  assert.deepEqual({ ...c, staticMapCache: [], databaseMappings: [] }, {
    ...BASE,
    staticMapCache: [],
    databaseMappings: [],
  });
});

Deno.test("stateFilePath() takes [api] state-file from the config's directory, else <config>.state.json", () => {
  const api = BASE.api;
  assert.equal(stateFilePath({ api }, "/etc/oor/oor.toml"), "/etc/oor/oor.toml.state.json");
  assert.equal(stateFilePath({ api }), undefined);
  const rel = { api: { ...api, stateFile: "state/edits.json" } };
  assert.equal(stateFilePath(rel, "/etc/oor/oor.toml"), "/etc/oor/state/edits.json");
  assert.equal(stateFilePath(rel), "state/edits.json");
  const abs = { api: { ...api, stateFile: "/var/lib/oor/edits.json" } };
  assert.equal(stateFilePath(abs, "/etc/oor/oor.toml"), "/var/lib/oor/edits.json");
  assert.equal(config("[api]", 'state-file = "x.json"').api.stateFile, "x.json");
  const bad = parseConfig('[api]\nstate-file = ""\n');
  assert.ok(!bad.ok && String(bad.errors[0]).includes("api.state-file: must not be empty"));
});

/** A role whose static map-cache is a map; what the hooks got is recorded. */
function memoryRole(c: Config) {
  const statics = new Map<string, StaticMapCacheEntry>();
  for (const e of c.staticMapCache) statics.set(`${e.iid} ${e.eidPrefix.address}`, e);
  const source: StatusSource = {
    mapCache: () =>
      [...statics.values()].map((e) => ({
        eidPrefix: formatPrefix(e.eidPrefix),
        iid: e.iid,
        kind: "positive" as const,
        static: true,
        expiresAt: null,
        rlocs: [],
      })),
    addStaticMapping: (e) => void statics.set(`${e.iid} ${e.eidPrefix.address}`, e),
    removeStaticMapping: (p, iid) => statics.delete(`${iid} ${p.address}`),
  };
  return { statics, source };
}

Deno.test("RuntimeEdits.wrap() saves each edit before answering, and a new process gets it back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/state.json`;
    const edits = await RuntimeEdits.open(path);
    const role = memoryRole(edits.apply(BASE));
    const app = createApp(edits.wrap(role.source), {
      token: TOKEN,
      version: "0",
      role: "xtr",
      startedAt: 0,
      now: () => 0,
    });
    const headers = { Authorization: `Bearer ${TOKEN}` };
    const add = await app.request("/api/v1/map-cache", {
      method: "POST",
      headers,
      body: JSON.stringify({
        "eid-prefix": "10.2.0.0/16",
        "rloc-address": [{ address: "192.0.2.7" }],
      }),
    });
    assert.equal(add.status, 201);
    // On disk as soon as it was answered.
    assert.equal((await loadState(path)).staticMapCache.added.length, 1);
    const del = await app.request("/api/v1/map-cache?eid-prefix=10.9.0.0/16", {
      method: "DELETE",
      headers,
    });
    assert.equal(del.status, 200);
    const missing = await app.request("/api/v1/map-cache?eid-prefix=10.99.0.0/16", {
      method: "DELETE",
      headers,
    });
    assert.equal(missing.status, 404);
    const list = await (await app.request("/api/v1/map-cache")).json();
    assert.deepEqual(
      list.entries.map((e: { "eid-prefix": string; origin?: string }) => [
        e["eid-prefix"],
        e.origin,
      ]),
      [["10.8.0.0/16", undefined], ["10.2.0.0/16", "api"]],
    );

    // "Restart": a new RuntimeEdits from the file, applied to the same config.
    const again = await RuntimeEdits.open(path);
    assert.deepEqual(texts(again.apply(BASE)), ["0 10.8.0.0/16", "0 10.2.0.0/16"]);
    assert.equal(again.size, 2);

    // Removing what only an edit added forgets the edit.
    const role2 = memoryRole(again.apply(BASE));
    const wrapped = again.wrap(role2.source);
    assert.equal(
      await wrapped.removeStaticMapping!({ family: 4, address: "10.2.0.0", length: 16 }, 0),
      true,
    );
    const state = await loadState(path);
    assert.deepEqual(state.staticMapCache.added, []);
    assert.equal(state.staticMapCache.removed.length, 1);
    // Adding back a removed config entry clears its removal.
    await wrapped.addStaticMapping!(staticEntry("10.9.0.0/16", "192.0.2.99"));
    const after = await loadState(path);
    assert.deepEqual(after.staticMapCache.removed, []);
    assert.equal(after.staticMapCache.added.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RuntimeEdits.wrap() answers 500 saying what becomes of an edit it could not save, and saves it with the next one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/missing-dir/state.json`;
    const edits = new RuntimeEdits(path);
    const role = memoryRole(edits.apply(BASE));
    const reported: { error: unknown; id: string }[] = [];
    const app = createApp(edits.wrap(role.source), {
      token: TOKEN,
      version: "0",
      role: "xtr",
      startedAt: 0,
      now: () => 0,
      onError: (error, _where, id) => reported.push({ error, id }),
    });
    const add = (prefix: string) =>
      app.request("/api/v1/map-cache", {
        method: "POST",
        headers: { Authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ "eid-prefix": prefix, "rloc-address": [{ address: "192.0.2.7" }] }),
      });
    const res = await add("10.2.0.0/16");
    assert.equal(res.status, 500);
    const body = await res.json();
    assert.equal(
      body.error,
      "the edit is in effect in the running role, but the state file could not be written: " +
        "the edit is kept in memory and saved with the next edit that can be written; " +
        `if none is before the role stops, it is gone at the next start (error id ${body.id})`,
    );
    assert.doesNotMatch(body.error, /missing-dir/, "the path is for the log");
    assert.equal(reported.length, 1);
    assert.equal(reported[0]!.id, body.id);
    assert.match(String(reported[0]!.error), /saving the state file .*missing-dir\/state\.json: /);
    assert.ok(role.statics.has("0 10.2.0.0"), "in effect");
    // What the message says: the next edit that can be written saves this one too.
    await Deno.mkdir(`${dir}/missing-dir`);
    assert.equal((await add("10.3.0.0/16")).status, 201);
    const saved = await loadState(path);
    assert.deepEqual(
      saved.staticMapCache.added.map((e) => formatPrefix(e.eidPrefix)),
      ["10.2.0.0/16", "10.3.0.0/16"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("formatState() writes the documented keys", () => {
  const text = formatState(EMPTY_STATE, new Date(0));
  assert.equal(
    text,
    JSON.stringify(
      {
        format: 1,
        updated: "1970-01-01T00:00:00.000Z",
        "static-map-cache": { added: [], removed: [] },
        "database-mapping": { added: [], removed: [] },
        "lisp-site": { added: [], removed: [] },
        "ms-static-registered-site": { added: [], removed: [] },
        "ddt-deleg-site": { added: [], removed: [] },
        "map-server": { added: [], removed: [] },
        "map-resolver": { added: [], removed: [] },
        "proxy-etr-ipv4": { added: [], removed: [] },
        "proxy-etr-ipv6": { added: [], removed: [] },
      },
      null,
      2,
    ) + "\n",
  );
});

// ---------------------------------------------------------------------------
// kill -9

const CHILD = new URL("./testdata/edit_role.ts", import.meta.url).pathname;

/** A `runRole()` process of web/testdata/edit_role.ts, with its log collected. */
class Child {
  readonly proc: Deno.ChildProcess;
  log = "";
  readonly #pump: Promise<void>;

  constructor(configPath: string) {
    const proc = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CHILD, configPath],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { OOR_API_TOKEN: "", DENO_NO_UPDATE_CHECK: "1" },
    }).spawn();
    this.proc = proc;
    this.#pump = (async () => {
      for await (const t of proc.stderr.pipeThrough(new TextDecoderStream())) this.log += t;
    })();
  }

  /** The API URL, once the log says it is listening. */
  async url(): Promise<string> {
    const end = Date.now() + 20_000;
    for (;;) {
      const m = /api-listening url=(\S+)/.exec(this.log);
      if (m && / started /.test(this.log)) return m[1]!;
      if (Date.now() > end) throw new Error(`the role did not start:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async wait(): Promise<Deno.CommandStatus> {
    const s = await this.proc.status;
    await this.#pump;
    return s;
  }
}

Deno.test("edits made through the API of a running role come back after kill -9", async () => {
  const dir = await Deno.makeTempDir();
  const children: Child[] = [];
  try {
    const configPath = `${dir}/oor.toml`;
    await Deno.writeTextFile(
      configPath,
      [
        "[api]",
        'listen = "127.0.0.1:9942"',
        `token = "${TOKEN}"`,
        "[[static-map-cache]]",
        'eid-prefix = "10.9.0.0/16"',
        "[[static-map-cache.rloc-address]]",
        'address = "192.0.2.9"',
        "[[database-mapping]]",
        'eid-prefix = "10.5.0.0/16"',
        "[[database-mapping.rloc-address]]",
        'address = "192.0.2.1"',
        "",
      ].join("\n"),
    );
    const first = new Child(configPath);
    children.push(first);
    const url = await first.url();
    const headers = { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" };
    const answers = [
      await fetch(`${url}api/v1/map-cache`, {
        method: "POST",
        headers,
        body: JSON.stringify({
          "eid-prefix": "10.2.0.0/16",
          "rloc-address": [{ address: "192.0.2.7", priority: 2, weight: 30 }],
        }),
      }),
      await fetch(`${url}api/v1/map-cache?eid-prefix=10.9.0.0/16&iid=0`, {
        method: "DELETE",
        headers,
      }),
      await fetch(`${url}api/v1/database`, {
        method: "POST",
        headers,
        body: JSON.stringify({
          "eid-prefix": "10.7.0.0/24",
          "rloc-address": [{ address: "192.0.2.1" }],
        }),
      }),
    ];
    for (const a of answers) await a.body?.cancel();
    assert.deepEqual(answers.map((a) => a.status), [201, 200, 201]);
    // Killed right after the answers: no chance to save anything more.
    first.proc.kill("SIGKILL");
    const killed = await first.wait();
    assert.equal(killed.signal, "SIGKILL");
    assert.ok((await Deno.stat(`${configPath}.state.json`)).isFile);

    const second = new Child(configPath);
    children.push(second);
    const url2 = await second.url();
    assert.match(second.log, /runtime-edits-applied state-file=\S+oor\.toml\.state\.json edits=3/);
    const mc = await (await fetch(`${url2}api/v1/map-cache`)).json();
    assert.deepEqual(mc.entries, [{
      "eid-prefix": "10.2.0.0/16",
      iid: 0,
      kind: "positive",
      static: true,
      "expires-at": null,
      "rloc-address": [{ address: "192.0.2.7", priority: 2, weight: 30, state: "up" }],
      origin: "api",
    }]);
    const db = await (await fetch(`${url2}api/v1/database`)).json();
    assert.deepEqual(
      db.entries.map((e: { "eid-prefix": string; origin?: string }) => [
        e["eid-prefix"],
        e.origin,
      ]),
      [["10.5.0.0/16", undefined], ["10.7.0.0/24", "api"]],
    );
    second.proc.kill("SIGTERM");
    const stopped = await second.wait();
    assert.equal(stopped.code, 0, second.log);
  } finally {
    for (const c of children) {
      try {
        c.proc.kill("SIGKILL");
      } catch {
        // already gone
      }
      await c.wait();
    }
    await Deno.remove(dir, { recursive: true });
  }
});
