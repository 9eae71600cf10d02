/**
 * An API listening on a non-loopback address: without a token it serves
 * reads and refuses writes with 403 saying why; with `OOR_API_TOKEN` in
 * the environment (and none in the file) that is the write token.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../config/mod.ts";
import type { StaticMapCacheEntry } from "../config/mod.ts";
import { Counters } from "../core/counters.ts";
import { Logger } from "../core/log.ts";
import type { StatusSource } from "../core/status.ts";
import { startRoleApi } from "../runner/run_role.ts";

/** A port free on every address now (bound on the wildcard, then let go). */
function freePort(): number {
  const l = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A role with a map-cache to read and edit. */
function role(): { source: StatusSource; added: StaticMapCacheEntry[] } {
  const added: StaticMapCacheEntry[] = [];
  return {
    added,
    source: {
      status: () => ({ details: { mode: "test" } }),
      mapCache: () => [],
      addStaticMapping: (e) => {
        added.push(e);
      },
    },
  };
}

/** Starts the API of `source` on 0.0.0.0 from an oor.toml `[api]` table; runs `f` with its port. */
async function withRemoteApi(
  apiLines: string[],
  source: StatusSource,
  f: (base: string, lines: string[]) => Promise<void>,
): Promise<void> {
  const port = freePort();
  const r = parseConfig(["[api]", `listen = "0.0.0.0:${port}"`, ...apiLines, ""].join("\n"));
  assert.ok(r.ok, r.ok ? "" : r.errors.map(String).join("\n"));
  const lines: string[] = [];
  const deps = {
    logger: new Logger({ role: "xtr", sink: { write: (l: string) => lines.push(l) } }),
    counters: new Counters(),
    now: Date.now,
  };
  const api = await startRoleApi("xtr", r.config, {
    close: () => Promise.resolve(),
    statusSource: () => source,
  }, deps);
  assert.ok(api !== undefined, lines.join(""));
  try {
    // Reached over loopback: the listener is on every address.
    await f(`http://127.0.0.1:${port}`, lines);
  } finally {
    await api.close(0);
  }
}

const ENTRY = JSON.stringify({
  "eid-prefix": "10.2.0.0/16",
  "rloc-address": [{ address: "192.0.2.7" }],
});

/** Runs `f` with OOR_API_TOKEN set to `value` (or unset), then puts it back. */
async function withEnvToken(value: string | undefined, f: () => Promise<void>): Promise<void> {
  const old = Deno.env.get("OOR_API_TOKEN");
  if (value === undefined) Deno.env.delete("OOR_API_TOKEN");
  else Deno.env.set("OOR_API_TOKEN", value);
  try {
    await f();
  } finally {
    if (old === undefined) Deno.env.delete("OOR_API_TOKEN");
    else Deno.env.set("OOR_API_TOKEN", old);
  }
}

Deno.test("a non-loopback [api] listen without a token serves reads and refuses writes with 403", async () => {
  await withEnvToken(undefined, async () => {
    const r = role();
    await withRemoteApi([], r.source, async (base, lines) => {
      assert.match(lines.join(""), /api-listening url=http:\/\/0\.0\.0\.0:\d+\/ writes="no token"/);
      const status = await fetch(`${base}/api/v1/status`, { headers: { Host: "oor.example" } });
      assert.equal(status.status, 200, "any Host may read a non-loopback API");
      const body = await status.json();
      assert.equal(body.writable, false);
      assert.equal(body.details.mode, "test");
      const mc = await fetch(`${base}/api/v1/map-cache`);
      assert.equal(mc.status, 200);
      await mc.body?.cancel();
      const post = await fetch(`${base}/api/v1/map-cache`, {
        method: "POST",
        headers: { Authorization: "Bearer guess" },
        body: ENTRY,
      });
      assert.equal(post.status, 403);
      assert.match(
        (await post.json()).error,
        /no API token is configured, so this API is read-only \(set \[api\] token, or OOR_API_TOKEN/,
      );
      assert.deepEqual(r.added, []);
    });
  });
});

Deno.test("OOR_API_TOKEN is the write token of a non-loopback API whose file has none", async () => {
  await withEnvToken("from-the-environment", async () => {
    const r = role();
    await withRemoteApi([], r.source, async (base, lines) => {
      assert.match(lines.join(""), /writes=enabled/);
      const wrong = await fetch(`${base}/api/v1/map-cache`, {
        method: "POST",
        headers: { Authorization: "Bearer nope" },
        body: ENTRY,
      });
      assert.equal(wrong.status, 401);
      await wrong.body?.cancel();
      const right = await fetch(`${base}/api/v1/map-cache`, {
        method: "POST",
        headers: { Authorization: "Bearer from-the-environment" },
        body: ENTRY,
      });
      assert.equal(right.status, 201);
      await right.body?.cancel();
      assert.equal(r.added.length, 1);
    });
  });
});

Deno.test("[api] token in the file wins over OOR_API_TOKEN", async () => {
  await withEnvToken("from-the-environment", async () => {
    const r = role();
    await withRemoteApi(['token = "from-the-file"'], r.source, async (base) => {
      const env = await fetch(`${base}/api/v1/map-cache`, {
        method: "POST",
        headers: { Authorization: "Bearer from-the-environment" },
        body: ENTRY,
      });
      assert.equal(env.status, 401);
      await env.body?.cancel();
      const file = await fetch(`${base}/api/v1/map-cache`, {
        method: "POST",
        headers: { Authorization: "Bearer from-the-file" },
        body: ENTRY,
      });
      assert.equal(file.status, 201);
      await file.body?.cancel();
    });
  });
});
