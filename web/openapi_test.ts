import assert from "node:assert/strict";
import type { LispSite, MsStaticRegisteredSite, StaticMapCacheEntry } from "../config/mod.ts";
import type { PeerLists, StatusSource } from "../core/status.ts";
import { createApp } from "./app.ts";
import { openApiDocument, type Route, ROUTES } from "./openapi.ts";

const TOKEN = "t0ken";
const T0 = Date.UTC(2025, 0, 1);

/** Routes the table documents that another module adds to the app (none now). */
const ADDED_ELSEWHERE = new Set<string>();

/** A role with every provider. */
function everything(): StatusSource {
  const sites: LispSite[] = [];
  const statics: MsStaticRegisteredSite[] = [];
  const mc: StaticMapCacheEntry[] = [];
  let peers: PeerLists = {
    mapServers: [{ address: "192.0.2.100", keyType: 1, key: "k", proxyReply: false, merge: false }],
    mapResolvers: ["192.0.2.100"],
    proxyEtrsIpv4: [{ address: "192.0.2.100", priority: 1, weight: 100 }],
    proxyEtrsIpv6: [],
  };
  return {
    status: () => ({ rlocs: [{ address: "192.0.2.1", state: "up" }], details: { a: 1 } }),
    mapCache: () => [{
      eidPrefix: "10.1.0.0/16",
      iid: 0,
      kind: "positive",
      static: true,
      expiresAt: null,
      rlocs: [{ address: "192.0.2.7", priority: 1, weight: 100, state: "up" }],
    }],
    database: () => [{
      eidPrefix: "10.5.0.0/16",
      iid: 0,
      ttl: 10,
      rlocs: [{ address: "192.0.2.1", priority: 1, weight: 100, state: "up" }],
    }],
    sites: () => ({
      sites: [{
        prefix: "10.1.0.0/16",
        iid: 0,
        keyType: 1,
        acceptMoreSpecifics: true,
        proxyReply: false,
        ddtMsPeers: [],
        registrations: 1,
      }],
      registrations: [{
        prefix: "10.1.5.0/24",
        iid: 0,
        site: "10.1.0.0/16",
        source: "map-register",
        rlocs: [{ address: "192.0.2.9", priority: 1, weight: 100, reachable: true }],
        ttl: 3,
        proxyReply: false,
        firstSeen: T0,
        lastSeen: T0,
        expiresAt: T0 + 180_000,
      }, {
        prefix: "10.9.0.0/16",
        iid: 0,
        source: "static",
        rlocs: [{ address: "192.0.2.10", priority: 1, weight: 100, reachable: true }],
        ttl: 10,
        proxyReply: true,
        firstSeen: T0,
        lastSeen: T0,
        expiresAt: null,
      }],
    }),
    referrals: () => [{
      eidPrefix: "10.0.0.0/8",
      iid: 0,
      action: "authoritative",
      rlocs: [],
      expiresAt: null,
      origin: "auth-site",
    }, {
      eidPrefix: "10.0.0.0/8",
      iid: 0,
      action: "node-referral",
      rlocs: ["192.0.2.50"],
      expiresAt: null,
      origin: "deleg-site",
    }],
    reload: () => Promise.resolve({ ok: true, errors: [], changes: [] }),
    addDelegSite: () => {},
    removeDelegSite: () => true,
    peerLists: () => peers,
    setPeers: (l) => {
      peers = l;
      return ["changed"];
    },
    counters: () => ({ "oor_x_total": 1 }),
    addStaticMapping: (e) => void mc.push(e),
    removeStaticMapping: () => true,
    addDatabaseMapping: () => {},
    removeDatabaseMapping: () => true,
    addLispSite: (s) => void sites.push(s),
    removeLispSite: () => true,
    addStaticSite: (s) => void statics.push(s),
    removeStaticSite: () => true,
  };
}

function appOf(source: StatusSource = everything()) {
  return createApp(source, {
    token: TOKEN,
    version: "1.2.3",
    role: "ms",
    startedAt: T0,
    now: () => T0 + 1000,
  });
}

/** A request each route accepts. */
const EXAMPLE_BODY: Record<string, unknown> = {
  StaticMapCache: { "eid-prefix": "10.2.0.0/16", "rloc-address": [{ address: "192.0.2.7" }] },
  DatabaseMapping: { "eid-prefix": "10.7.0.0/24", "rloc-address": [{ address: "192.0.2.1" }] },
  LispSite: { "eid-prefix": "10.4.0.0/16", "key-type": 1, key: "k" },
  StaticSite: { "eid-prefix": "10.6.0.0/16", "rloc-address": [{ address: "192.0.2.8" }] },
  MapServer: { address: "192.0.2.101", key: "k" },
  MapResolver: { address: "192.0.2.101" },
  ProxyEtr: { address: "2001:db8::1" },
  DelegSite: {
    "eid-prefix": "10.4.0.0/16",
    "delegation-type": "CHILD_DDT_NODE",
    "deleg-nodes": ["192.0.2.60"],
  },
};

function requestFor(r: Route): [string, RequestInit] {
  const query = (r.query ?? []).filter((q) => q.required).map((q) =>
    `${q.name}=${
      q.name === "eid-prefix" ? "10.9.0.0/16" : q.name === "address" ? "192.0.2.100" : "1"
    }`
  );
  const path = r.path + (query.length > 0 ? `?${query.join("&")}` : "");
  const init: RequestInit = { method: r.method };
  if (r.write) init.headers = { Authorization: `Bearer ${TOKEN}` };
  if (r.body !== undefined) init.body = JSON.stringify(EXAMPLE_BODY[r.body]);
  return [path, init];
}

type Schema = Record<string, unknown>;

/** Follows a `$ref` into the document's schemas. */
function resolve(doc: Record<string, unknown>, s: Schema): Schema {
  const ref = s["$ref"];
  if (typeof ref !== "string") return s;
  const name = ref.replace("#/components/schemas/", "");
  const schemas = (doc["components"] as { schemas: Record<string, Schema> }).schemas;
  assert.ok(schemas[name] !== undefined, `${ref} resolves`);
  return schemas[name]!;
}

Deno.test("the OpenAPI document is 3.1, every operation has responses and every $ref resolves", () => {
  const doc = openApiDocument({ version: "1.2.3", role: "ms" });
  assert.equal(doc["openapi"], "3.1.0");
  assert.equal((doc["info"] as { version: string }).version, "1.2.3");
  const paths = doc["paths"] as Record<string, Record<string, Record<string, unknown>>>;
  let operations = 0;
  const ids = new Set<string>();
  for (const [path, ops] of Object.entries(paths)) {
    assert.ok(path.startsWith("/"), path);
    for (const [method, op] of Object.entries(ops)) {
      operations++;
      assert.ok(["get", "post", "delete"].includes(method), `${method} ${path}`);
      const id = op["operationId"] as string;
      assert.ok(!ids.has(id), `operationId ${id} is unique`);
      ids.add(id);
      const responses = op["responses"] as Record<string, { description: string }>;
      const codes = Object.keys(responses);
      assert.ok(codes.some((c) => c.startsWith("2")), `${method} ${path} has a 2xx`);
      for (const c of codes) {
        assert.match(c, /^[1-5][0-9][0-9]$/);
        assert.equal(typeof responses[c]!.description, "string");
      }
    }
  }
  assert.equal(operations, ROUTES.length);
  // Every $ref anywhere points at a schema that exists.
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (typeof v !== "object" || v === null) return;
    if (typeof (v as Schema)["$ref"] === "string") resolve(doc, v as Schema);
    Object.values(v).forEach(walk);
  };
  walk(doc);
});

Deno.test("every route the app serves is documented, and every documented route is served", () => {
  const app = appOf();
  const served = new Set(
    app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path}`),
  );
  const documented = new Set(ROUTES.map((r) => `${r.method} ${r.path}`));
  for (const s of served) assert.ok(documented.has(s), `${s} is served but not documented`);
  for (const d of documented) {
    if (ADDED_ELSEWHERE.has(d)) continue;
    assert.ok(served.has(d), `${d} is documented but not served`);
  }
});

Deno.test("each documented route answers as documented", async () => {
  const app = appOf();
  const doc = openApiDocument({ version: "1.2.3", role: "ms" });
  const paths = doc["paths"] as Record<string, Record<string, Record<string, unknown>>>;
  for (const r of ROUTES) {
    if (ADDED_ELSEWHERE.has(`${r.method} ${r.path}`)) continue;
    const [path, init] = requestFor(r);
    const res = await app.request(path, init);
    const what = `${r.method} ${path}`;
    assert.equal(res.status, r.ok.status, `${what}: ${await res.clone().text()}`);
    const op = paths[r.path]![r.method.toLowerCase()]!;
    const documented = (op["responses"] as Record<string, { content: Record<string, unknown> }>)[
      String(res.status)
    ];
    assert.ok(documented !== undefined, `${what} answered ${res.status}, which is documented`);
    const type = Object.keys(documented.content)[0]!;
    assert.ok((res.headers.get("content-type") ?? "").startsWith(type), what);
    if (type !== "application/json") {
      await res.body?.cancel();
      continue;
    }
    const body = await res.json();
    const schema = resolve(
      doc,
      (documented.content[type] as { schema: Schema }).schema,
    );
    for (const k of (schema["required"] as string[] | undefined) ?? []) {
      assert.ok(k in body, `${what}: required "${k}" is in the answer`);
    }
    // Entries of a page carry their schema's required keys too.
    const entries = (schema["properties"] as Record<string, Schema> | undefined)?.["entries"];
    if (entries !== undefined && Array.isArray(body.entries) && body.entries.length > 0) {
      const item = resolve(doc, entries["items"] as Schema);
      const props = item["properties"] as Record<string, Schema>;
      for (const k of (item["required"] as string[] | undefined) ?? []) {
        if (props[k]?.["writeOnly"] === true) continue; // a site's key is never shown
        assert.ok(k in body.entries[0], `${what}: entries carry "${k}"`);
      }
    }
  }
});

Deno.test("each documented error of a write answers as documented: 401, 403, 400", async () => {
  const app = appOf();
  const readOnly = createApp(everything(), {
    version: "1",
    role: "ms",
    startedAt: T0,
    now: () => T0,
  });
  for (const r of ROUTES.filter((x) => x.write && !ADDED_ELSEWHERE.has(`${x.method} ${x.path}`))) {
    const [path, init] = requestFor(r);
    const noToken = await app.request(path, { ...init, headers: {} });
    assert.equal(noToken.status, 401, `${r.method} ${r.path} without a token`);
    await noToken.body?.cancel();
    const off = await readOnly.request(path, init);
    assert.equal(off.status, 403, `${r.method} ${r.path} on a read-only API`);
    assert.match((await off.json()).error, /read-only/);
    if (r.body !== undefined) {
      const bad = await app.request(path, { ...init, body: "[]" });
      assert.equal(bad.status, 400, `${r.method} ${r.path} with a bad body`);
      await bad.body?.cancel();
    }
  }
});

Deno.test("GET /api/v1 is an index of the routes, saying which ones this role has", async () => {
  const app = appOf({ status: () => ({}), sites: everything().sites! });
  const res = await app.request("/api/v1");
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.role, "ms");
  assert.equal(body.openapi, "/api/v1/openapi.json");
  assert.equal(body.routes.length, ROUTES.length);
  const has = (m: string, p: string) =>
    body.routes.find((r: { method: string; path: string }) => r.method === m && r.path === p)
      ?.available;
  assert.equal(has("GET", "/api/v1/sites"), true);
  assert.equal(has("GET", "/api/v1/map-cache"), false);
  assert.equal(has("POST", "/api/v1/lisp-sites"), false);
  assert.equal(has("GET", "/api/v1/status"), true);
  const nothing = await app.request("/api/v1/nothing");
  assert.equal(nothing.status, 404);
  assert.match((await nothing.json()).error, /no route GET \/api\/v1\/nothing/);
});

Deno.test("a method a path does not have answers 405 with the methods from the route table", async () => {
  const app = appOf();
  const res = await app.request("/api/v1/lisp-sites", { method: "PUT" });
  assert.equal(res.status, 405);
  assert.equal(res.headers.get("allow"), "GET, HEAD, POST, DELETE");
  await res.body?.cancel();
  const idx = await app.request("/api/v1", { method: "POST" });
  assert.equal(idx.status, 405);
  assert.equal(idx.headers.get("allow"), "GET, HEAD");
  await idx.body?.cancel();
});

Deno.test("what a GET answers can be posted back as it is, to every edit route", async () => {
  const app = appOf();
  const auth = { Authorization: `Bearer ${TOKEN}` };
  const cases: [string, (e: Record<string, unknown>) => Record<string, unknown>][] = [
    ["/api/v1/map-cache", (e) => e],
    ["/api/v1/database", (e) => e],
    ["/api/v1/lisp-sites", (e) => ({ ...e, key: "the key, which a GET never shows" })],
    ["/api/v1/ms-static-registered-sites", (e) => e],
    ["/api/v1/ddt-deleg-sites", (e) => e],
    ["/api/v1/map-servers", (e) => ({ ...e, key: "k" })],
    ["/api/v1/map-resolvers", (e) => e],
    ["/api/v1/proxy-etrs", (e) => e],
  ];
  for (const [path, withSecret] of cases) {
    const got = await (await app.request(path)).json();
    assert.ok(got.entries.length > 0, `${path} lists something`);
    const res = await app.request(path, {
      method: "POST",
      headers: auth,
      body: JSON.stringify(withSecret(got.entries[0])),
    });
    assert.equal(res.status, 201, `${path}: ${await res.clone().text()}`);
    await res.body?.cancel();
  }
});
