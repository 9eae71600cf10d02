/**
 * `POST /api/v1/reload` (web/app.ts) over a source with a reload hook, as
 * `runRole()` gives it (runner/reload.ts): a write, so the token is needed.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ReloadOutcome, StatusSource } from "../core/status.ts";
import { createApp } from "./app.ts";

const TOKEN = "s3cret";

function appFor(source: StatusSource, token?: string) {
  return createApp(source, {
    ...(token !== undefined ? { token } : {}),
    version: "9.9.9",
    role: "xtr",
    startedAt: 0,
    now: () => 1_000,
  });
}

const post = (token?: string): RequestInit => ({
  method: "POST",
  headers: token !== undefined ? { Authorization: `Bearer ${token}` } : {},
});

Deno.test("POST /api/v1/reload needs the token and answers the changes applied", async () => {
  let calls = 0;
  const source: StatusSource = {
    reload: () => {
      calls++;
      return Promise.resolve<ReloadOutcome>({
        ok: true,
        errors: [],
        changes: ["[[database-mapping]] 10.2.0.0/24 added"],
      });
    },
  };
  const app = appFor(source, TOKEN);
  assert.equal((await app.request("/api/v1/reload", post())).status, 401);
  assert.equal((await app.request("/api/v1/reload", post("wrong"))).status, 401);
  assert.equal((await appFor(source).request("/api/v1/reload", post(TOKEN))).status, 403);
  assert.equal(calls, 0, "no reload without the token");
  const r = await app.request("/api/v1/reload", post(TOKEN));
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), {
    reloaded: true,
    changes: ["[[database-mapping]] 10.2.0.0/24 added"],
  });
  assert.equal(calls, 1);
});

Deno.test("POST /api/v1/reload answers 400 with the errors of a refused file", async () => {
  const errors = ["oor.toml:7: database-mapping[1].eid-prefix: prefix length must be 0..32"];
  const app = appFor({
    reload: () => Promise.resolve<ReloadOutcome>({ ok: false, errors, changes: [] }),
  }, TOKEN);
  const r = await app.request("/api/v1/reload", post(TOKEN));
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.deepEqual(body.errors, errors);
  assert.match(body.error, /^reload refused or incomplete: oor\.toml:7: /);
});

Deno.test("POST /api/v1/reload on a source without the hook is 404, before any token check", async () => {
  const r = await appFor({}, TOKEN).request("/api/v1/reload", post());
  assert.equal(r.status, 404);
  assert.match((await r.json()).error, /cannot reload/);
});
