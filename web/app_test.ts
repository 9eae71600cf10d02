import assert from "node:assert/strict";
import {
  type DatabaseMapping,
  formatPrefix,
  type Prefix,
  type StaticMapCacheEntry,
} from "../config/mod.ts";
import { createApp, filterMapCache } from "./app.ts";
import { metricName, parseSeriesKey, renderMetrics } from "./_metrics.ts";
import {
  type MapCacheView,
  SourceError,
  splitIidPrefix,
  type StatusSource,
} from "../core/status.ts";
import { startMsWithApi } from "../tests/web_fixtures.ts";

// ---------------------------------------------------------------------------
// A fake role with every provider, and the app over it.

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const TOKEN = "s3cret-token";

function loc(address: string, state: "up" | "down" = "up") {
  return { address, priority: 1, weight: 100, state };
}

const MAP_CACHE: MapCacheView[] = [
  {
    eidPrefix: "10.1.0.0/16",
    iid: 0,
    kind: "positive",
    static: false,
    origin: "map-reply",
    ttl: 10,
    expiresAt: T0 + 600_000,
    rlocs: [loc("192.0.2.1"), loc("192.0.2.2", "down")],
  },
  {
    eidPrefix: "10.1.2.0/24",
    iid: 0,
    kind: "positive",
    static: true,
    expiresAt: null,
    rlocs: [loc("192.0.2.3")],
  },
  {
    eidPrefix: "10.0.0.0/8",
    iid: 5,
    kind: "negative",
    action: "natively-forward",
    static: false,
    expiresAt: T0 + 60_000,
    rlocs: [],
  },
  {
    eidPrefix: "2001:db8::/32",
    iid: 0,
    kind: "positive",
    static: false,
    expiresAt: T0 + 60_000,
    rlocs: [loc("2001:db8:ffff::1")],
  },
];

class FakeRole implements StatusSource {
  statics: StaticMapCacheEntry[] = [];
  mappings: DatabaseMapping[] = [];
  removed: string[] = [];
  counterValues: Record<string, number> = {
    "oor_map_server_map_registers_accepted_total": 3,
    'oor_control_messages_in_total{type="map-register"}': 5,
    'oor_control_messages_in_total{type="map-request"}': 2,
    'oor_map_server_registrations{source="map-register"}': 1,
    // Counters writes label values as they are: this one holds a quote.
    'oor_map_server_map_registers_rejected_total{reason="a"b"}': 1,
    "weird-name.count_total": 4,
  };

  status() {
    return {
      rlocs: [
        { address: "192.0.2.1", state: "up" as const, interface: "eth0", since: T0 - 5000 },
        { address: "2001:db8::1", state: "down" as const, reason: "link down" },
      ],
      mapServers: [{ address: "192.0.2.100", lastMapNotify: T0 - 30_000, registered: true }],
      details: { "control address": "127.0.0.1 port 4342" },
    };
  }
  mapCache() {
    return MAP_CACHE;
  }
  database() {
    return [{ eidPrefix: "10.5.0.0/16", iid: 0, ttl: 10, rlocs: [loc("192.0.2.1")] }];
  }
  sites() {
    return {
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
        prefix: "10.1.1.0/24",
        iid: 0,
        site: "10.1.0.0/16",
        source: "map-register",
        from: "127.0.0.1:4342",
        xtrId: "000102030405060708090a0b0c0d0e0f",
        rlocs: [{ address: "192.0.2.1", priority: 1, weight: 100, reachable: true }],
        ttl: 10,
        proxyReply: true,
        firstSeen: T0 - 60_000,
        lastSeen: T0 - 5_000,
        expiresAt: T0 + 175_000,
      }],
    };
  }
  referrals() {
    return [{
      eidPrefix: "10.0.0.0/8",
      iid: 0,
      action: "node-referral",
      rlocs: ["192.0.2.9"],
      ttl: 1440,
      expiresAt: T0 + 3_600_000,
      origin: "cache" as const,
    }];
  }
  counters() {
    return this.counterValues;
  }
  addStaticMapping(e: StaticMapCacheEntry) {
    if (e.eidPrefix.address === "10.66.0.0") {
      throw new SourceError(409, "10.66.0.0/16 is one of our own EID prefixes", "eid-prefix");
    }
    this.statics.push(e);
  }
  removeStaticMapping(p: Prefix, iid: number) {
    this.removed.push(`${iid} ${formatPrefix(p)}`);
    return p.address === "10.2.0.0";
  }
  addDatabaseMapping(m: DatabaseMapping) {
    this.mappings.push(m);
  }
  removeDatabaseMapping(p: Prefix, iid: number) {
    this.removed.push(`db ${iid} ${formatPrefix(p)}`);
    return true;
  }
}

function appFor(source: StatusSource, token: string | null = TOKEN, errors: unknown[] = []) {
  return createApp(source, {
    ...(token !== null ? { token } : {}),
    version: "9.9.9",
    role: "xtr",
    startedAt: T0 - 3_723_000,
    now: () => T0,
    onError: (e) => errors.push(e),
  });
}

const auth = { Authorization: `Bearer ${TOKEN}` };

function post(body: unknown, headers: Record<string, string> = auth) {
  return {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  } satisfies RequestInit;
}

const GOOD_STATIC = {
  "eid-prefix": "10.2.0.0/16",
  iid: 0,
  "rloc-address": [{ address: "192.0.2.7", priority: 1, weight: 50 }],
};

// ---------------------------------------------------------------------------
// Reads

Deno.test("GET /api/v1/status gives role, version, uptime, RLOCs and map-servers", async () => {
  const res = await appFor(new FakeRole()).request("/api/v1/status");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  assert.equal(res.headers.get("cache-control"), "no-store");
  const body = await res.json();
  assert.equal(body.role, "xtr");
  assert.equal(body.version, "9.9.9");
  assert.equal(body["uptime-seconds"], 3723);
  assert.equal(body.writable, true);
  assert.deepEqual(body.rlocs.map((r: { state: string }) => r.state), ["up", "down"]);
  assert.deepEqual(body["map-servers"], [{
    address: "192.0.2.100",
    "last-map-notify": T0 - 30_000,
    registered: true,
  }]);
});

Deno.test("GET /api/v1/status answers for a role that gives no status provider", async () => {
  const res = await appFor({}, null).request("/api/v1/status");
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.deepEqual(body, {
    role: "xtr",
    version: "9.9.9",
    "started-at": T0 - 3_723_000,
    "uptime-seconds": 3723,
    writable: false,
  });
});

Deno.test("GET /api/v1/map-cache lists every entry, or those overlapping eid in iid", async () => {
  const app = appFor(new FakeRole());
  const prefixes = async (q: string) => {
    const res = await app.request(`/api/v1/map-cache${q}`);
    assert.equal(res.status, 200, q);
    const body = await res.json();
    assert.equal(body.count, body.entries.length);
    return body.entries.map((e: { iid: number; "eid-prefix": string }) =>
      `[${e.iid}]${e["eid-prefix"]}`
    );
  };
  assert.deepEqual(await prefixes(""), [
    "[0]10.1.0.0/16",
    "[0]10.1.2.0/24",
    "[5]10.0.0.0/8",
    "[0]2001:db8::/32",
  ]);
  assert.deepEqual(await prefixes("?eid=10.1.2.3"), [
    "[0]10.1.0.0/16",
    "[0]10.1.2.0/24",
    "[5]10.0.0.0/8",
  ]);
  assert.deepEqual(await prefixes("?eid=10.1.2.3&iid=0"), ["[0]10.1.0.0/16", "[0]10.1.2.0/24"]);
  assert.deepEqual(await prefixes("?eid=10.1.9.0/24"), ["[0]10.1.0.0/16", "[5]10.0.0.0/8"]);
  assert.deepEqual(await prefixes("?eid=10.0.0.0/12&iid=0"), [
    "[0]10.1.0.0/16",
    "[0]10.1.2.0/24",
  ]);
  assert.deepEqual(await prefixes("?iid=5"), ["[5]10.0.0.0/8"]);
  assert.deepEqual(await prefixes("?eid=2001:db8:1::1"), ["[0]2001:db8::/32"]);
  assert.deepEqual(await prefixes("?eid=192.168.0.1"), []);
});

Deno.test("filterMapCache() matches MAC EIDs and skips unparsable entries when filtering", () => {
  const mac: MapCacheView = {
    eidPrefix: "00:11:22:33:44:55/48",
    iid: 1,
    kind: "positive",
    static: true,
    expiresAt: null,
    rlocs: [],
  };
  const bad: MapCacheView = { ...mac, eidPrefix: "nonsense" };
  assert.deepEqual(filterMapCache([mac, bad], { eid: "00:11:22:33:44:55/48" }), [mac]);
  assert.deepEqual(filterMapCache([mac, bad], {}), [mac, bad]);
});

Deno.test("GET /api/v1/map-cache rejects a bad eid, iid or parameter naming it", async () => {
  const app = appFor(new FakeRole());
  for (
    const [q, field] of [
      ["?eid=10.1.2", "eid"],
      ["?eid=", "eid"],
      ["?eid=10.0.0.0/33", "eid"],
      ["?iid=x", "iid"],
      ["?iid=-1", "iid"],
      ["?iid=16777216", "iid"],
      ["?prefix=10.0.0.0/8", "prefix"],
    ]
  ) {
    const res = await app.request(`/api/v1/map-cache${q}`);
    assert.equal(res.status, 400, q);
    const body = await res.json();
    assert.equal(body.field, field, q);
    assert.equal(typeof body.error, "string");
  }
});

/** A role with `n` of everything, numbered in order. */
function bigRole(n: number): StatusSource {
  const view = (i: number) => ({ eidPrefix: `10.${i >> 8}.${i & 255}.0/24`, iid: 0 });
  return {
    mapCache: () =>
      Array.from({ length: n }, (_, i) => ({
        ...view(i),
        kind: "positive" as const,
        static: false,
        expiresAt: null,
        rlocs: [],
      })),
    database: () => Array.from({ length: n }, (_, i) => ({ ...view(i), ttl: 10, rlocs: [] })),
    referrals: () =>
      Array.from({ length: n }, (_, i) => ({
        ...view(i),
        action: "node-referral",
        rlocs: [],
        expiresAt: null,
        origin: "cache" as const,
      })),
    sites: () => ({
      sites: Array.from({ length: 3 }, (_, i) => ({
        prefix: `10.${i}.0.0/16`,
        iid: 0,
        keyType: 1,
        acceptMoreSpecifics: false,
        proxyReply: false,
        ddtMsPeers: [],
        registrations: 0,
      })),
      registrations: Array.from({ length: n }, (_, i) => ({
        prefix: view(i).eidPrefix,
        iid: 0,
        source: "map-register",
        rlocs: [],
        ttl: 10,
        proxyReply: false,
        firstSeen: T0,
        lastSeen: T0,
        expiresAt: T0 + 1000,
      })),
    }),
  };
}

Deno.test("every list is paged: default 100, limit up to 1000, offset, total and next", async () => {
  const app = appFor(bigRole(2500));
  for (const path of ["/api/v1/map-cache", "/api/v1/database", "/api/v1/referrals"]) {
    const first = await (await app.request(path)).json();
    assert.equal(first.total, 2500, path);
    assert.equal(first.count, 100, path);
    assert.equal(first.entries.length, 100, path);
    assert.equal(first.offset, 0);
    assert.equal(first.limit, 100);
    assert.equal(first.next, 100);
    assert.equal(first.entries[0]["eid-prefix"], "10.0.0.0/24");
    const mid = await (await app.request(`${path}?limit=1000&offset=1000`)).json();
    assert.equal(mid.count, 1000);
    assert.equal(mid.entries[0]["eid-prefix"], "10.3.232.0/24", "entry 1000");
    assert.equal(mid.next, 2000);
    const last = await (await app.request(`${path}?offset=2450&limit=1000`)).json();
    assert.equal(last.count, 50);
    assert.equal(last.next, null);
    const past = await (await app.request(`${path}?offset=9999`)).json();
    assert.deepEqual([past.count, past.total, past.next, past.entries], [0, 2500, null, []]);
  }
  // The map-cache filters first, then pages.
  const filtered = await (await app.request("/api/v1/map-cache?eid=10.1.0.0/16&limit=10")).json();
  assert.equal(filtered.total, 256);
  assert.equal(filtered.count, 10);
  assert.equal(filtered.entries[0]["eid-prefix"], "10.1.0.0/24");
  // Sites: both lists side by side.
  const sites = await (await app.request("/api/v1/sites?limit=2")).json();
  assert.equal(sites["sites-total"], 3);
  assert.equal(sites["registrations-total"], 2500);
  assert.equal(sites.sites.length, 2);
  assert.equal(sites.registrations.length, 2);
  assert.equal(sites.next, 2);
  const more = await (await app.request("/api/v1/sites?limit=2&offset=2")).json();
  assert.deepEqual(more.sites.map((x: { "eid-prefix": string }) => x["eid-prefix"]), [
    "10.2.0.0/16",
  ]);
  assert.equal(more.registrations[0]["eid-prefix"], "10.0.2.0/24");
  assert.equal(more.next, 4, "registrations go on");
  const end = await (await app.request("/api/v1/sites?limit=1000&offset=2000")).json();
  assert.deepEqual([end.sites.length, end.registrations.length, end.next], [0, 500, null]);
  // The status page shows 500 rows of a table and says how to page through the rest.
  const html = await (await app.request("/?refresh=0")).text();
  assert.match(
    html,
    /Showing 500 of 2500; all of them are in <a href="\/api\/v1\/map-cache">\/api\/v1\/map-cache<\/a>, a page at a time \(<code>\?limit=1000&amp;offset=1000<\/code>\)/,
  );
  // The whole answer stays bounded whatever the role holds.
  const biggest = await (await app.request("/api/v1/sites?limit=1000")).text();
  assert.ok(biggest.length < 400_000, `${biggest.length} bytes`);
});

Deno.test("limit and offset out of range answer 400 naming them", async () => {
  const app = appFor(bigRole(5));
  for (
    const path of ["/api/v1/map-cache", "/api/v1/database", "/api/v1/referrals", "/api/v1/sites"]
  ) {
    for (
      const [q, field] of [
        ["limit=0", "limit"],
        ["limit=1001", "limit"],
        ["limit=ten", "limit"],
        ["limit=", "limit"],
        ["offset=-1", "offset"],
        ["offset=1.5", "offset"],
        ["offset=99999999999", "offset"],
        ["page=2", "page"],
      ]
    ) {
      const res = await app.request(`${path}?${q}`);
      assert.equal(res.status, 400, `${path}?${q}`);
      assert.equal((await res.json()).field, field, `${path}?${q}`);
    }
  }
});

Deno.test("with allowedHosts, a request for another Host is refused with 403 (DNS rebinding)", async () => {
  const app = createApp(new FakeRole(), {
    version: "9.9.9",
    role: "xtr",
    startedAt: T0,
    now: () => T0,
    allowedHosts: ["127.0.0.1", "localhost"],
  });
  const get = (path: string, host?: string) =>
    app.fetch(new Request(`http://127.0.0.1:9942${path}`, host ? { headers: { host } } : {}));
  for (const host of ["127.0.0.1:9942", "127.0.0.1", "localhost:9942", "LOCALHOST", "localhost."]) {
    assert.equal((await get("/api/v1/status", host)).status, 200, host);
  }
  for (
    const host of [
      "attacker.example:9942",
      "attacker.example",
      "127.0.0.1.nip.io:9942",
      "[::1]:9942",
    ]
  ) {
    for (const path of ["/api/v1/status", "/api/v1/sites", "/api/v1/map-cache", "/", "/metrics"]) {
      const res = await get(path, host);
      assert.equal(res.status, 403, `${host} ${path}`);
      const body = await res.json();
      assert.equal(body.field, "host");
      assert.match(body.error, /answers requests for 127\.0\.0\.1 or localhost only/);
    }
  }
  assert.equal((await get("/api/v1/status")).status, 403, "no Host at all");
  // Without the option (an API not on loopback), any Host goes.
  assert.equal(
    (await appFor(new FakeRole()).request("/api/v1/status", {
      headers: { host: "oor.example.net" },
    })).status,
    200,
  );
  // An API on ::1.
  const v6 = createApp(new FakeRole(), {
    version: "9",
    role: "xtr",
    startedAt: T0,
    now: () => T0,
    allowedHosts: ["::1", "localhost"],
  });
  const ok = await v6.fetch(
    new Request("http://[::1]:1/api/v1/status", { headers: { host: "[::1]:1" } }),
  );
  assert.equal(ok.status, 200);
});

Deno.test("GET database, sites, referrals and stats return the providers' views", async () => {
  const app = appFor(new FakeRole());
  const db = await (await app.request("/api/v1/database")).json();
  assert.deepEqual(db.entries.map((e: { "eid-prefix": string }) => e["eid-prefix"]), [
    "10.5.0.0/16",
  ]);
  const sites = await (await app.request("/api/v1/sites")).json();
  assert.equal(sites.registrations[0]["xtr-id"], "000102030405060708090a0b0c0d0e0f");
  assert.equal(sites.registrations[0]["last-seen"], T0 - 5_000);
  assert.equal(sites.registrations[0]["expires-at"], T0 + 175_000);
  assert.equal(sites.sites[0]["eid-prefix"], "10.1.0.0/16");
  const refs = await (await app.request("/api/v1/referrals")).json();
  assert.equal(refs.count, 1);
  assert.equal(refs.entries[0].action, "node-referral");
  const stats = await (await app.request("/api/v1/stats")).json();
  assert.equal(stats["uptime-seconds"], 3723);
  assert.equal(stats.counters["oor_map_server_map_registers_accepted_total"], 3);
});

Deno.test("a provider the role does not have answers 404 naming what is missing", async () => {
  const app = appFor({ status: () => ({}) });
  for (
    const [path, what] of [
      ["/api/v1/map-cache", "has no map-cache"],
      ["/api/v1/database", "has no database"],
      ["/api/v1/sites", "has no sites"],
      ["/api/v1/referrals", "has no referrals"],
      ["/api/v1/stats", "has no counters"],
    ]
  ) {
    const res = await app.request(path!);
    assert.equal(res.status, 404, path);
    const body = await res.json();
    assert.match(body.error, new RegExp(`^this role \\(xtr\\) ${what}`), path);
  }
  for (
    const [method, path, what] of [
      ["POST", "/api/v1/map-cache", "has no map-cache to edit"],
      ["DELETE", "/api/v1/map-cache?eid-prefix=10.0.0.0/8", "has no map-cache to edit"],
      ["POST", "/api/v1/database", "has no database to edit"],
      ["DELETE", "/api/v1/database?eid-prefix=10.0.0.0/8", "has no database to edit"],
    ]
  ) {
    // Without a token too: what the role has is no secret.
    const res = await app.request(path!, {
      method: method!,
      body: method === "POST" ? "{}" : null,
    });
    assert.equal(res.status, 404, `${method} ${path}`);
    assert.match((await res.json()).error, new RegExp(what!));
  }
});

Deno.test("unknown routes get a JSON 404 and other methods a 405 with Allow", async () => {
  const app = appFor(new FakeRole());
  const res = await app.request("/api/v1/nothing");
  assert.equal(res.status, 404);
  assert.equal((await res.json()).error, "no route GET /api/v1/nothing");
  const put = await app.request("/api/v1/map-cache", { method: "PUT", body: "{}" });
  assert.equal(put.status, 405);
  assert.equal(put.headers.get("allow"), "GET, HEAD, POST, DELETE");
  const del = await app.request("/api/v1/status", { method: "DELETE" });
  assert.equal(del.status, 405);
  assert.equal(del.headers.get("allow"), "GET, HEAD");
});

Deno.test("a provider that throws answers 500 with a generic message and an id; the details are reported", async () => {
  const reported: { error: unknown; where: string; id: string }[] = [];
  let now = T0;
  const app = createApp({
    database: () => {
      throw new Error("table is locked at /var/lib/secret");
    },
  }, {
    version: "9.9.9",
    role: "xtr",
    startedAt: T0,
    now: () => now,
    onError: (error, where, id) => reported.push({ error, where, id }),
  });
  const res = await app.request("/api/v1/database");
  assert.equal(res.status, 500);
  const body = await res.json();
  assert.match(body.id, /^[0-9a-f]{8}$/);
  assert.equal(body.error, `internal error (id ${body.id}; the role's log has the details)`);
  assert.doesNotMatch(JSON.stringify(body), /locked|secret/);
  assert.equal(reported.length, 1);
  assert.equal((reported[0]!.error as Error).message, "table is locked at /var/lib/secret");
  assert.equal(reported[0]!.where, "GET /api/v1/database");
  assert.equal(reported[0]!.id, body.id);
  // The same failure within a minute: the same id, reported once.
  const again = await (await app.request("/api/v1/database")).json();
  assert.equal(again.id, body.id);
  assert.equal(reported.length, 1);
  // A minute later: a new id, reported again.
  now += 60_000;
  const later = await (await app.request("/api/v1/database")).json();
  assert.notEqual(later.id, body.id);
  assert.equal(reported.length, 2);
  // The status page says the same, with its own id.
  const page = await (await app.request("/")).text();
  assert.match(page, /Could not read the database: internal error \(id [0-9a-f]{8};/);
  assert.doesNotMatch(page, /locked|secret/);
  assert.equal(reported.length, 3);
  assert.equal(reported[2]!.where, "GET / database");
});

Deno.test("a SourceError of 5xx keeps the role's message, adds an id and reports its cause", async () => {
  const reported: { error: unknown; id: string }[] = [];
  const cause = new Error("EACCES: /var/lib/oor/x.json");
  const app = createApp({
    database: () => {
      const e = new SourceError(503, "the database is being rebuilt");
      (e as Error).cause = cause;
      throw e;
    },
  }, {
    version: "9.9.9",
    role: "xtr",
    startedAt: T0,
    now: () => T0,
    onError: (error, _where, id) => reported.push({ error, id }),
  });
  const res = await app.request("/api/v1/database");
  assert.equal(res.status, 503);
  const body = await res.json();
  assert.equal(body.error, `the database is being rebuilt (error id ${body.id})`);
  assert.deepEqual(reported, [{ error: cause, id: body.id }]);
});

// ---------------------------------------------------------------------------
// Metrics

/** A strict reader of the Prometheus text format 0.0.4; throws on any line it does not accept. */
function parseExposition(text: string) {
  assert.ok(text.endsWith("\n"), "ends with a newline");
  const families = new Map<string, { type?: string; help?: string; samples: number }>();
  const series = new Set<string>();
  const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
  const VALUE = "(?:[-+]?(?:[0-9]*\\.?[0-9]+(?:[eE][-+]?[0-9]+)?)|NaN|[-+]Inf)";
  const sample = new RegExp(
    `^(${NAME})(\\{(?:${LABEL})(?:,${LABEL})*,?\\})? (${VALUE})( -?[0-9]+)?$`,
  );
  const meta = new RegExp(`^# (HELP|TYPE) (${NAME}) (.*)$`);
  let current: string | undefined;
  const done = new Set<string>();
  const out: { name: string; labels: string; value: number }[] = [];
  for (const line of text.slice(0, -1).split("\n")) {
    const m = meta.exec(line);
    if (m) {
      const [, kind, name, rest] = m;
      const f = families.get(name!) ?? { samples: 0 };
      families.set(name!, f);
      assert.ok(f.samples === 0, `${kind} of ${name} after its samples`);
      if (kind === "TYPE") {
        assert.equal(f.type, undefined, `second TYPE for ${name}`);
        assert.match(rest!, /^(counter|gauge|histogram|summary|untyped)$/);
        f.type = rest!;
      } else {
        assert.equal(f.help, undefined, `second HELP for ${name}`);
        f.help = rest!;
      }
      continue;
    }
    assert.ok(!line.startsWith("#") || line.startsWith("# "), `bad comment: ${line}`);
    if (line.startsWith("#")) continue;
    const s = sample.exec(line);
    assert.ok(s, `not a sample line: ${JSON.stringify(line)}`);
    const name = s[1]!;
    if (current !== name) {
      assert.ok(!done.has(name), `samples of ${name} are not together`);
      if (current !== undefined) done.add(current);
      current = name;
    }
    const f = families.get(name);
    assert.ok(f?.type !== undefined, `sample of ${name} before its TYPE`);
    f.samples++;
    const key = `${name}${s[2] ?? ""}`;
    assert.ok(!series.has(key), `series ${key} twice`);
    series.add(key);
    const v = s[3]!;
    out.push({
      name,
      labels: s[2] ?? "",
      value: v === "NaN" ? NaN : v === "+Inf" ? Infinity : v === "-Inf" ? -Infinity : Number(v),
    });
  }
  return { families, samples: out };
}

Deno.test("GET /metrics is Prometheus text: HELP and TYPE, counters as _total, gauges", async () => {
  const res = await appFor(new FakeRole()).request("/metrics");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  const { families, samples } = parseExposition(text);
  for (const [name, f] of families) {
    assert.ok(name.startsWith("oor_"), name);
    assert.ok(f.help !== undefined && f.help.length > 0, `HELP of ${name}`);
    assert.equal(f.type, name.endsWith("_total") ? "counter" : "gauge", name);
  }
  const value = (name: string, labels = "") =>
    samples.find((s) => s.name === name && s.labels === labels)?.value;
  assert.equal(value("oor_map_server_map_registers_accepted_total"), 3);
  assert.equal(value("oor_control_messages_in_total", '{type="map-register"}'), 5);
  assert.equal(value("oor_control_messages_in_total", '{type="map-request"}'), 2);
  assert.equal(value("oor_map_server_registrations", '{source="map-register"}'), 1);
  assert.equal(value("oor_map_server_map_registers_rejected_total", '{reason="a\\"b"}'), 1);
  assert.equal(value("oor_weird_name_count_total"), 4);
  assert.equal(value("oor_process_uptime_seconds"), 3723);
  assert.equal(value("oor_process_start_time_seconds"), (T0 - 3_723_000) / 1000);
  assert.equal(value("oor_build_info", '{role="xtr",version="9.9.9"}'), 1);
  assert.equal(families.get("oor_control_messages_in_total")?.samples, 2);
  assert.match(
    text,
    /^# HELP oor_map_server_map_registers_accepted_total Map-Registers accepted \(/m,
  );
  assert.match(text, /^# TYPE oor_map_server_map_registers_accepted_total counter$/m);
  assert.match(text, /^# TYPE oor_map_server_registrations gauge$/m);
});

Deno.test("GET /metrics has the process series even for a role without counters", async () => {
  const { samples } = parseExposition(await (await appFor({}).request("/metrics")).text());
  assert.deepEqual(
    samples.map((s) => s.name).filter((n) => n !== "oor_process_resident_memory_bytes"),
    ["oor_build_info", "oor_process_start_time_seconds", "oor_process_uptime_seconds"],
  );
});

Deno.test("renderMetrics() escapes label values and maps names into oor_*", () => {
  const text = renderMetrics({ 'x_total{path="a\\b",msg="line\nbreak"}': 1, "y": NaN }, {
    role: "ms",
    version: "1",
    startedAt: 0,
    now: 0,
  });
  assert.match(text, /^oor_x_total\{path="a\\\\b",msg="line\\nbreak"\} 1$/m);
  assert.match(text, /^oor_y NaN$/m);
  parseExposition(text);
  assert.equal(metricName("oor_ok_total"), "oor_ok_total");
  assert.equal(metricName("bad-name"), "oor_bad_name");
  assert.deepEqual(parseSeriesKey('a{k="v,w",l="x"}'), {
    name: "a",
    labels: [["k", "v,w"], ["l", "x"]],
  });
});

// ---------------------------------------------------------------------------
// Writes: auth

Deno.test("writes are refused with 403 when no token is configured", async () => {
  for (const token of [null, ""]) {
    const role = new FakeRole();
    const app = appFor(role, token);
    const res = await app.request("/api/v1/map-cache", post(GOOD_STATIC));
    assert.equal(res.status, 403);
    assert.match((await res.json()).error, /no API token is configured/);
    const del = await app.request("/api/v1/database?eid-prefix=10.5.0.0/16", {
      method: "DELETE",
      headers: auth,
    });
    assert.equal(del.status, 403);
    assert.deepEqual(role.statics, []);
    assert.deepEqual(role.removed, []);
  }
});

Deno.test("writes with a missing or wrong bearer token get 401 and change nothing", async () => {
  const role = new FakeRole();
  const app = appFor(role);
  for (
    const headers of [
      {},
      { Authorization: "" },
      { Authorization: `Basic ${btoa("u:" + TOKEN)}` },
      { Authorization: "Bearer" },
      { Authorization: "Bearer wrong" },
      { Authorization: `Bearer ${TOKEN}x` },
      { Authorization: `Bearer ${TOKEN.slice(0, -1)}` },
    ] as Record<string, string>[]
  ) {
    const res = await app.request(
      "/api/v1/map-cache",
      post(GOOD_STATIC, headers),
    );
    assert.equal(res.status, 401, JSON.stringify(headers));
    assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="oor"');
    assert.match((await res.json()).error, /bearer token/);
  }
  assert.deepEqual(role.statics, []);
});

Deno.test("POST /api/v1/map-cache with the token adds the entry, canonical", async () => {
  const role = new FakeRole();
  const app = appFor(role);
  const res = await app.request(
    "/api/v1/map-cache",
    post({
      "eid-prefix": "2001:DB8:0:0::/64",
      iid: 3,
      "rloc-address": [{ address: "2001:db8:0::7" }, { address: "192.0.2.8", priority: 2 }],
    }, { Authorization: `bearer ${TOKEN}` }),
  );
  assert.equal(res.status, 201);
  const added = {
    "eid-prefix": "2001:db8::/64",
    iid: 3,
    "rloc-address": [
      { address: "2001:db8::7", priority: 1, weight: 100 },
      { address: "192.0.2.8", priority: 2, weight: 100 },
    ],
  };
  assert.deepEqual(await res.json(), { added });
  assert.deepEqual(role.statics, [{
    eidPrefix: { family: 6, address: "2001:db8::", length: 64 },
    iid: 3,
    rlocAddresses: [
      { kind: "address", address: "2001:db8::7", priority: 1, weight: 100 },
      { kind: "address", address: "192.0.2.8", priority: 2, weight: 100 },
    ],
  }]);
});

Deno.test("POST /api/v1/database adds a mapping with rloc-address and rloc-iface", async () => {
  const role = new FakeRole();
  const res = await appFor(role).request(
    "/api/v1/database",
    post({
      "eid-prefix": "10.7.0.0/24",
      ttl: 5,
      "rloc-address": [{ address: "192.0.2.1", weight: 0 }],
      "rloc-iface": [{ interface: "eth0", ip_version: 6, priority: 255 }],
    }),
  );
  assert.equal(res.status, 201);
  assert.deepEqual(role.mappings, [{
    eidPrefix: { family: 4, address: "10.7.0.0", length: 24 },
    iid: 0,
    ttl: 5,
    rlocAddresses: [{ kind: "address", address: "192.0.2.1", priority: 1, weight: 0 }],
    rlocIfaces: [{ interface: "eth0", ipVersion: 6, priority: 255, weight: 100 }],
  }]);
});

Deno.test("DELETE removes by eid-prefix and iid, 404 when there was nothing", async () => {
  const role = new FakeRole();
  const app = appFor(role);
  const ok = await app.request("/api/v1/map-cache?eid-prefix=10.2.0.0/16&iid=0", {
    method: "DELETE",
    headers: auth,
  });
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { removed: { "eid-prefix": "10.2.0.0/16", iid: 0 } });
  const none = await app.request("/api/v1/map-cache?eid-prefix=10.3.0.0/16&iid=4", {
    method: "DELETE",
    headers: auth,
  });
  assert.equal(none.status, 404);
  assert.equal(
    (await none.json()).error,
    "no static map-cache entry for 10.3.0.0/16 in instance 4",
  );
  const db = await app.request("/api/v1/database?eid-prefix=fd00::/8", {
    method: "DELETE",
    headers: auth,
  });
  assert.equal(db.status, 200);
  assert.deepEqual(role.removed, ["0 10.2.0.0/16", "4 10.3.0.0/16", "db 0 fd00::/8"]);
});

Deno.test("a hook's SourceError answers with its status and field", async () => {
  const res = await appFor(new FakeRole()).request(
    "/api/v1/map-cache",
    post({ ...GOOD_STATIC, "eid-prefix": "10.66.0.0/16" }),
  );
  assert.equal(res.status, 409);
  assert.deepEqual(await res.json(), {
    error: "10.66.0.0/16 is one of our own EID prefixes",
    field: "eid-prefix",
  });
});

// ---------------------------------------------------------------------------
// Writes: bad bodies

const rloc = (r: Record<string, unknown>) => ({ ...GOOD_STATIC, "rloc-address": [r] });

const BAD_STATIC: [string, unknown, string, RegExp][] = [
  ["not JSON", "{eid-prefix: 1", "body", /is not JSON/],
  ["empty", "", "body", /is empty/],
  ["an array", "[]", "body", /must be a JSON object/],
  ["no eid-prefix", { "rloc-address": GOOD_STATIC["rloc-address"] }, "eid-prefix", /is required/],
  ["eid-prefix a number", { ...GOOD_STATIC, "eid-prefix": 10 }, "eid-prefix", /must be a prefix/],
  [
    "eid-prefix no length",
    { ...GOOD_STATIC, "eid-prefix": "10.2.0.0" },
    "eid-prefix",
    /10\.2\.0\.0\/32/,
  ],
  [
    "eid-prefix host bits",
    { ...GOOD_STATIC, "eid-prefix": "10.2.0.1/16" },
    "eid-prefix",
    /did you mean 10\.2\.0\.0\/16/,
  ],
  ["eid-prefix too long", { ...GOOD_STATIC, "eid-prefix": "10.2.0.0/33" }, "eid-prefix", /0\.\.32/],
  [
    "eid-prefix a MAC",
    { ...GOOD_STATIC, "eid-prefix": "00:11:22:33:44:55/48" },
    "eid-prefix",
    /IPv4 or IPv6/,
  ],
  ["iid negative", { ...GOOD_STATIC, iid: -1 }, "iid", /0\.\.16777214/],
  ["iid too big", { ...GOOD_STATIC, iid: 0xffffff }, "iid", /0\.\.16777214/],
  ["iid a string", { ...GOOD_STATIC, iid: "5" }, "iid", /integer/],
  ["no rloc-address", { "eid-prefix": "10.2.0.0/16" }, "rloc-address", /at least one/],
  ["rloc-address empty", { ...GOOD_STATIC, "rloc-address": [] }, "rloc-address", /at least one/],
  ["rloc-address an object", { ...GOOD_STATIC, "rloc-address": {} }, "rloc-address", /array/],
  [
    "locator a string",
    { ...GOOD_STATIC, "rloc-address": ["192.0.2.1"] },
    "rloc-address[0]",
    /object/,
  ],
  ["locator without address", rloc({ priority: 1 }), "rloc-address[0].address", /required/],
  ["bad address", rloc({ address: "300.1.1.1" }), "rloc-address[0].address", /IPv4 or IPv6/],
  [
    "address with a length",
    rloc({ address: "192.0.2.1/32" }),
    "rloc-address[0].address",
    /IPv4 or IPv6/,
  ],
  [
    "priority 256",
    rloc({ address: "192.0.2.1", priority: 256 }),
    "rloc-address[0].priority",
    /0\.\.255/,
  ],
  [
    "priority -1",
    rloc({ address: "192.0.2.1", priority: -1 }),
    "rloc-address[0].priority",
    /0\.\.255/,
  ],
  ["weight 1.5", rloc({ address: "192.0.2.1", weight: 1.5 }), "rloc-address[0].weight", /0\.\.255/],
  [
    "weight a string",
    rloc({ address: "192.0.2.1", weight: "1" }),
    "rloc-address[0].weight",
    /integer/,
  ],
  [
    "unknown locator key",
    rloc({ address: "192.0.2.1", prio: 1 }),
    "rloc-address[0].prio",
    /unknown key/,
  ],
  [
    "a locator twice",
    { ...GOOD_STATIC, "rloc-address": [{ address: "2001:db8::1" }, { address: "2001:DB8::1" }] },
    "rloc-address[1].address",
    /listed twice/,
  ],
  ["unknown key", { ...GOOD_STATIC, rlocs: [] }, "rlocs", /unknown key/],
  ["a key of no table", { ...GOOD_STATIC, "map-server": [] }, "map-server", /unknown key/],
];

Deno.test("POST /api/v1/map-cache answers 400 naming the field of a bad body", async () => {
  const role = new FakeRole();
  const app = appFor(role);
  for (const [what, body, field, reason] of BAD_STATIC) {
    const res = await app.request("/api/v1/map-cache", post(body));
    assert.equal(res.status, 400, what);
    const json = await res.json();
    assert.equal(json.field, field, what);
    assert.match(json.error, reason, what);
    assert.ok(json.error.startsWith(`${field}: `), `${what}: ${json.error}`);
  }
  assert.deepEqual(role.statics, []);
});

const GOOD_DB = { "eid-prefix": "10.7.0.0/24", "rloc-address": [{ address: "192.0.2.1" }] };

const BAD_DATABASE: [string, unknown, string, RegExp][] = [
  ["no locator", { "eid-prefix": "10.7.0.0/24" }, "rloc-address", /rloc-address or rloc-iface/],
  ["ttl negative", { ...GOOD_DB, ttl: -1 }, "ttl", /0\.\.4294967295/],
  ["ttl a string", { ...GOOD_DB, ttl: "10" }, "ttl", /integer/],
  ["rloc-iface not a list", { ...GOOD_DB, "rloc-iface": "eth0" }, "rloc-iface", /array/],
  [
    "interface missing",
    { ...GOOD_DB, "rloc-iface": [{ priority: 1 }] },
    "rloc-iface[0].interface",
    /required/,
  ],
  [
    "interface with a slash",
    { ...GOOD_DB, "rloc-iface": [{ interface: "a/b" }] },
    "rloc-iface[0].interface",
    /interface name/,
  ],
  [
    "interface too long",
    { ...GOOD_DB, "rloc-iface": [{ interface: "x".repeat(16) }] },
    "rloc-iface[0].interface",
    /1\.\.15/,
  ],
  [
    "ip_version 5",
    { ...GOOD_DB, "rloc-iface": [{ interface: "eth0", ip_version: 5 }] },
    "rloc-iface[0].ip_version",
    /4 or 6/,
  ],
  [
    "iface weight 300",
    { ...GOOD_DB, "rloc-iface": [{ interface: "eth0", weight: 300 }] },
    "rloc-iface[0].weight",
    /0\.\.255/,
  ],
  [
    "an interface twice",
    { ...GOOD_DB, "rloc-iface": [{ interface: "eth0" }, { interface: "eth0", ip_version: 4 }] },
    "rloc-iface[1].interface",
    /listed twice/,
  ],
  [
    "eid-prefix host bits",
    { ...GOOD_DB, "eid-prefix": "fd00::1/64" },
    "eid-prefix",
    /did you mean fd00::\/64/,
  ],
];

Deno.test("POST /api/v1/database answers 400 naming the field of a bad body", async () => {
  const role = new FakeRole();
  const app = appFor(role);
  for (const [what, body, field, reason] of BAD_DATABASE) {
    const res = await app.request("/api/v1/database", post(body));
    assert.equal(res.status, 400, what);
    const json = await res.json();
    assert.equal(json.field, field, what);
    assert.match(json.error, reason, what);
  }
  assert.deepEqual(role.mappings, []);
});

Deno.test("DELETE answers 400 naming a bad eid-prefix, iid or parameter", async () => {
  const app = appFor(new FakeRole());
  for (
    const [q, field] of [
      ["", "eid-prefix"],
      ["?eid-prefix=10.2.0.1/16", "eid-prefix"],
      ["?eid-prefix=10.2.0.0/16&iid=abc", "iid"],
      ["?eid-prefix=10.2.0.0/16&iid=1.5", "iid"],
      ["?eid-prefix=10.2.0.0/16&eid=1", "eid"],
    ]
  ) {
    for (const path of ["/api/v1/map-cache", "/api/v1/database"]) {
      const res = await app.request(`${path}${q}`, { method: "DELETE", headers: auth });
      assert.equal(res.status, 400, `${path}${q}`);
      assert.equal((await res.json()).field, field, `${path}${q}`);
    }
  }
});

Deno.test("a body larger than 64 KiB is refused with 413", async () => {
  const big = { ...GOOD_STATIC, pad: "x".repeat(70_000) };
  const res = await appFor(new FakeRole()).request(
    "/api/v1/map-cache",
    post(big),
  );
  assert.equal(res.status, 413);
  assert.equal((await res.json()).field, "body");
});

// ---------------------------------------------------------------------------
// The status page

Deno.test("GET / renders role, RLOCs with state, map-cache rows and counters", async () => {
  const res = await appFor(new FakeRole()).request("/");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/html/);
  assert.equal(
    res.headers.get("content-security-policy"),
    "default-src 'none'; style-src 'unsafe-inline'",
  );
  const html = await res.text();
  assert.match(html, /^<!DOCTYPE html>\n<html lang="en">/);
  assert.match(html, /<meta http-equiv="refresh" content="2">/);
  assert.match(html, /<h1>oor xtr<\/h1>/);
  assert.match(html, /<span id="uptime">1 h 2 min<\/span>/);
  assert.doesNotMatch(html, /<script/);
  assert.doesNotMatch(html, /(src|href)="https?:/, "no external asset");
  // RLOCs with their state as words.
  assert.match(html, /<th scope="row">192\.0\.2\.1<\/th><td><span class="state up">up<\/span>/);
  assert.match(html, /<th scope="row">2001:db8::1<\/th><td><span class="state down">down<\/span>/);
  // One table row per map-cache entry, with a caption and column headers.
  const table = /<table id="map-cache-table">([\s\S]*?)<\/table>/.exec(html)?.[1] ?? "";
  assert.match(table, /<caption>Map-cache entries \(4\)<\/caption>/);
  assert.equal((table.match(/<tr>/g) ?? []).length, 5, "a header row and 4 entries");
  assert.match(table, /<th scope="col">EID prefix<\/th>/);
  assert.match(table, /<th scope="row">10\.1\.2\.0\/24<\/th>/);
  assert.match(html, /<time datetime="2025-01-01T11:59:30.000Z"[^>]*>30 s ago<\/time>/);
  assert.match(html, /id="registration-table"/);
  assert.match(html, /<code>000102030405060708090a0b0c0d0e0f<\/code>/);
  assert.match(html, /id="referral-table"/);
  assert.match(
    html,
    /<code>oor_map_server_map_registers_accepted_total<\/code>[^]*?<\/th><td><\/td><td class="num">3<\/td>/,
  );
});

Deno.test("GET /?refresh=0 stops reloading and says how to resume", async () => {
  const html = await (await appFor(new FakeRole()).request("/?refresh=0")).text();
  assert.doesNotMatch(html, /http-equiv="refresh"/);
  assert.match(html, /<a href="\/">Reload every 2 s<\/a>/);
});

Deno.test("GET / escapes what the role reports", async () => {
  const html = await (await appFor({
    counters: () => ({ 'evil{x="<script>alert(1)</script>"}': 1 }),
    status: () => ({ details: { "<b>": "a&b" } }),
  }).request("/")).text();
  assert.doesNotMatch(html, /<script>/);
  assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  assert.match(html, /<dt>&lt;b&gt;<\/dt><dd>a&amp;b<\/dd>/);
});

Deno.test("GET / of a role with nothing to list still shows role and version", async () => {
  const html = await (await appFor({}).request("/")).text();
  assert.match(html, /<dt>Version<\/dt><dd>9\.9\.9<\/dd>/);
  assert.doesNotMatch(html, /Runtime edits/, "a role with no write hooks takes no edits");
  assert.doesNotMatch(html, /<table/);
});

Deno.test("GET / and the status say whether runtime edits are enabled", async () => {
  const on = await (await appFor(new FakeRole()).request("/")).text();
  assert.match(on, /<dt>Runtime edits<\/dt><dd>enabled \(token set\)<\/dd>/);
  const off = appFor(new FakeRole(), null);
  assert.match(
    await (await off.request("/")).text(),
    /<dt>Runtime edits<\/dt><dd>disabled \(no API token configured\)<\/dd>/,
  );
  assert.equal((await (await off.request("/api/v1/status")).json()).writable, false);
  assert.equal((await (await appFor({}).request("/api/v1/status")).json()).writable, false);
});

// ---------------------------------------------------------------------------
// A running role

Deno.test("a running ms serves its registrations on /api/v1/sites and /metrics", async () => {
  const h = await startMsWithApi();
  try {
    assert.match(h.api.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.match(
      h.lines.join(""),
      // An ms takes lisp-site edits: writable, but not without a token.
      /api-listening url=http:\/\/127\.0\.0\.1:\d+\/ writes="no token"/,
    );
    await h.register("10.1.5.0/24", ["127.0.0.2", "127.0.0.3"], 0xabcdefn);
    const sites = await (await fetch(`${h.api.url}api/v1/sites`)).json();
    const reg = sites.registrations.find((r: { "eid-prefix": string }) =>
      r["eid-prefix"] === "10.1.5.0/24"
    );
    assert.equal(reg["xtr-id"], "00000000000000000000000000abcdef");
    assert.equal(reg.site, "10.1.0.0/16");
    assert.deepEqual(reg["rloc-address"].map((l: { address: string }) => l.address), [
      "127.0.0.2",
      "127.0.0.3",
    ]);
    assert.ok(reg["last-seen"] <= Date.now() && reg["expires-at"] > reg["last-seen"]);
    assert.equal(sites.sites.length, 2);
    assert.ok(sites.registrations.some((r: { source: string }) => r.source === "static"));

    const res = await fetch(`${h.api.url}metrics`);
    assert.equal(res.status, 200);
    const { samples } = parseExposition(await res.text());
    const value = (name: string, labels = "") =>
      samples.find((s) => s.name === name && s.labels === labels)?.value;
    assert.equal(value("oor_map_server_map_registers_accepted_total"), 1);
    assert.equal(value("oor_map_server_registrations", '{source="map-register"}'), 1);
    assert.equal(value("oor_map_server_registrations", '{source="static"}'), 1);
    assert.equal(value("oor_control_messages_in_total", '{type="map-register"}'), 1);
    assert.equal(
      value(
        "oor_build_info",
        '{role="ms",version="' + (await import("../version.ts")).VERSION + '"}',
      ),
      1,
    );

    const status = await (await fetch(`${h.api.url}api/v1/status`)).json();
    assert.equal(status.role, "ms");
    assert.equal(status.details.registrations, 1);
    const mc = await fetch(`${h.api.url}api/v1/map-cache`);
    assert.equal(mc.status, 404);
    assert.equal((await mc.json()).error, "this role (ms) has no map-cache");
  } finally {
    await h.close();
  }
});

Deno.test("startRoleApi() keeps the role running when the API address is taken", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { startRoleApi } = await import("../runner/run_role.ts");
  const { Counters } = await import("../core/counters.ts");
  const { Logger } = await import("../core/log.ts");
  const { parseConfig } = await import("../config/mod.ts");
  try {
    const r = parseConfig('[api]\nlisten = "127.0.0.1:9942"\n');
    assert.ok(r.ok);
    const config = { ...r.config, api: { ...r.config.api, port: taken.addr.port } };
    const lines: string[] = [];
    const deps = {
      logger: new Logger({ role: "ms", sink: { write: (l: string) => lines.push(l) } }),
      counters: new Counters(),
      now: Date.now,
    };
    const api = await startRoleApi("ms", config, { close: () => Promise.resolve() }, deps);
    assert.equal(api, undefined);
    assert.match(lines.join(""), / warn {2}ms api-listen-failed address=127\.0\.0\.1:\d+ reason=/);
    const off = await startRoleApi("ms", { ...config, api: { ...config.api, enabled: false } }, {
      close: () => Promise.resolve(),
    }, deps);
    assert.equal(off, undefined);
  } finally {
    taken.close();
  }
});

Deno.test("splitIidPrefix() reads the roles' [iid]prefix text", () => {
  assert.deepEqual(splitIidPrefix("[5]10.1.0.0/16"), { eidPrefix: "10.1.0.0/16", iid: 5 });
  assert.deepEqual(splitIidPrefix("2001:db8::/32"), { eidPrefix: "2001:db8::/32", iid: 0 });
});
