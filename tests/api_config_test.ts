import assert from "node:assert/strict";
import { parseConfig } from "../config/mod.ts";
import { apiLimits } from "../runner/run_role.ts";

const SITE = ["[[lisp-site]]", 'eid-prefix = "10.1.0.0/16"', 'key = "k"'];

function withApi(lines: string[]) {
  return parseConfig(['operating-mode = "MS"', "[api]", ...lines, ...SITE].join("\n"), {
    role: "ms",
    file: "ms.toml",
  });
}

Deno.test("[api] max-connections, idle-timeout and request-timeout are read, with defaults", () => {
  const r = withApi(["max-connections = 8", "idle-timeout = 2", "request-timeout = 30"]);
  assert.ok(r.ok, r.ok ? "" : r.errors.join("\n"));
  assert.equal(r.config.api.maxConnections, 8);
  assert.equal(r.config.api.idleTimeout, 2);
  assert.equal(r.config.api.requestTimeout, 30);
  assert.deepEqual(apiLimits(r.config), {
    maxConnections: 8,
    idleTimeoutMs: 2_000,
    requestTimeoutMs: 30_000,
  });
  const d = withApi([]);
  assert.ok(d.ok);
  assert.deepEqual(apiLimits(d.config), {
    maxConnections: 64,
    idleTimeoutMs: 5_000,
    requestTimeoutMs: 10_000,
  });
});

Deno.test("bad [api] limits are errors with file, line, key and reason", () => {
  const cases: [string, string][] = [
    ["max-connections = 0", "ms.toml:3: api.max-connections: must be from 1 to 10000 (got 0)"],
    [
      "max-connections = 20000",
      "ms.toml:3: api.max-connections: must be from 1 to 10000 (got 20000)",
    ],
    [
      'idle-timeout = "5"',
      "ms.toml:3: api.idle-timeout: must be an integer, not a string (write 5 without quotes)",
    ],
    ["request-timeout = 0", "ms.toml:3: api.request-timeout: must be from 1 to 3600 (got 0)"],
    ["request-timeout = 1.5", "ms.toml:3: api.request-timeout: must be an integer, not a float"],
  ];
  for (const [line, error] of cases) {
    const r = withApi([line]);
    assert.equal(r.ok, false, line);
    if (!r.ok) assert.deepEqual(r.errors.map(String), [error], line);
  }
});
