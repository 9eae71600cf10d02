/**
 * Logs of a role end to end (issue 5, point 6): `debug` 0..3 picks the
 * level, `log-file` takes the lines instead of standard error, and
 * `--log-format json` writes one JSON object per line with ts, level,
 * role, event and the fields.
 *
 * Loopback addresses: 127.0.6.1 .. 127.0.6.3 (map-servers on port 0).
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseConfig } from "../config/mod.ts";
import type { Config } from "../config/mod.ts";
import { roleDeps } from "../core/role.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** What every run of a role logs, in this order. */
const LIFE = ["ms-listening", "started", "stopping", "stopped"];

function msToml(address: string, ...extra: string[]): string {
  return [
    ...extra,
    `control-address = "${address}"`,
    "control-port = 0",
    "[api]",
    `listen = "${address}:9942"`,
    "[[lisp-site]]",
    'eid-prefix = "10.1.0.0/16"',
    "key-type = 2",
    'key = "logs-test-key"',
    "",
  ].join("\n");
}

function config(text: string): Config {
  const r = parseConfig(text, { role: "ms" });
  assert.ok(r.ok, r.ok ? "" : r.errors.join("\n"));
  return r.config;
}

/** `oor ms` in its own process, stderr read as it comes. */
function startMs(configPath: string, ...flags: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "ms", "--config", configPath, ...flags],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
  let stderr = "";
  let stdout = "";
  const pumps = [
    (async () => {
      for await (const t of child.stderr.pipeThrough(new TextDecoderStream())) stderr += t;
    })(),
    (async () => {
      for await (const t of child.stdout.pipeThrough(new TextDecoderStream())) stdout += t;
    })(),
  ];
  return {
    get stderr() {
      return stderr;
    },
    get stdout() {
      return stdout;
    },
    /** Waits until `test(stderr)` holds. */
    async until(test: (s: string) => boolean, what: string, ms = 15_000) {
      const end = Date.now() + ms;
      while (!test(stderr)) {
        if (Date.now() > end) throw new Error(`no ${what} after ${ms} ms; stderr:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    /** Sends SIGTERM and waits for the exit and the end of the output. */
    async stop(): Promise<number> {
      try {
        child.kill("SIGTERM");
      } catch { /* gone already */ }
      const s = await child.status;
      await Promise.all(pumps);
      return s.code;
    },
    /** Waits for the exit without a signal. */
    async exit(): Promise<number> {
      const s = await child.status;
      await Promise.all(pumps);
      return s.code;
    },
  };
}

Deno.test("roleDeps() sets the level from debug 0..3: info, debug, trace, trace", () => {
  const levels = ["error", "warn", "info", "debug", "trace"] as const;
  const table = [0, 1, 2, 3].map((debug) => {
    const deps = roleDeps("ms", config(msToml("127.0.6.1", `debug = ${debug}`)), {
      sink: { write: () => {} },
    });
    return levels.filter((l) => deps.logger.enabled(l)).at(-1);
  });
  assert.deepEqual(table, ["info", "debug", "trace", "trace"]);
});

Deno.test("roleDeps() writes to log-file, appending, and close() releases the file", () => {
  const dir = Deno.makeTempDirSync({ prefix: "oor-logs-" });
  try {
    const path = `${dir}/oor.log`;
    const c = config(msToml("127.0.6.1", `log-file = "${path}"`, "debug = 1"));
    for (const n of [1, 2]) {
      const deps = roleDeps("ms", c, { logFormat: "json", now: () => 0 });
      deps.logger.debug("run", { n });
      deps.logger.close();
    }
    assert.deepEqual(
      Deno.readTextFileSync(path).trimEnd().split("\n").map((l) => JSON.parse(l)),
      [1, 2].map((n) => ({
        ts: "1970-01-01T00:00:00.000Z",
        level: "debug",
        role: "ms",
        event: "run",
        n,
      })),
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test({
  name: "oor ms --log-format json writes one JSON object per line, role ms, and exits 0 on SIGTERM",
  sanitizeResources: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "oor-logs-" });
    try {
      Deno.writeTextFileSync(`${dir}/ms.toml`, msToml("127.0.6.2"));
      const ms = startMs(`${dir}/ms.toml`, "--log-format", "json");
      await ms.until((s) => s.split("\n").length > 2, "two lines");
      const code = await ms.stop();
      assert.equal(code, 0, ms.stderr);
      assert.equal(ms.stdout, "");
      const lines = ms.stderr.trimEnd().split("\n");
      const objects = lines.map((l) => JSON.parse(l));
      for (const o of objects) {
        assert.deepEqual(Object.keys(o).slice(0, 4), ["ts", "level", "role", "event"]);
        assert.equal(o.role, "ms");
        assert.ok(!Number.isNaN(Date.parse(o.ts)), o.ts);
        assert.ok(["error", "warn", "info", "debug", "trace"].includes(o.level), o.level);
      }
      // Other events (the API's, for one) may come between; these come in this order.
      assert.deepEqual(objects.map((o) => o.event).filter((e) => LIFE.includes(e)), LIFE);
      assert.equal(objects.at(-1).event, "stopped");
      const listening = objects.find((o) => o.event === "ms-listening");
      assert.equal(listening.address, "127.0.6.2");
      assert.ok(listening.port > 0);
      assert.equal(objects.find((o) => o.event === "stopping").signal, "SIGTERM");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "oor ms with log-file writes its lines there and nothing to stderr",
  sanitizeResources: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "oor-logs-" });
    try {
      const log = `${dir}/ms.log`;
      Deno.writeTextFileSync(`${dir}/ms.toml`, msToml("127.0.6.3", `log-file = "${log}"`));
      const ms = startMs(`${dir}/ms.toml`);
      const end = Date.now() + 15_000;
      const text = () => {
        try {
          return Deno.readTextFileSync(log);
        } catch {
          return "";
        }
      };
      while (!text().includes(" started ")) {
        if (Date.now() > end) throw new Error(`no 'started' in ${log}; stderr:\n${ms.stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(await ms.stop(), 0, ms.stderr);
      assert.equal(ms.stderr, "");
      const events = Deno.readTextFileSync(log).trimEnd().split("\n").map((l) => {
        const m = /^\S+Z (\w+)\s+(\S+) (\S+)/.exec(l);
        assert.ok(m !== null, l);
        return `${m[1]} ${m[2]} ${m[3]}`;
      });
      assert.deepEqual(
        events.filter((e) => LIFE.some((l) => e.endsWith(` ${l}`))),
        LIFE.map((l) => `info ms ${l}`),
      );
      assert.equal(events.at(-1), "info ms stopped");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "oor ms with a log-file it cannot open exits 1 with one line saying why",
  sanitizeResources: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "oor-logs-" });
    try {
      Deno.writeTextFileSync(
        `${dir}/ms.toml`,
        msToml("127.0.6.3", `log-file = "${dir}/no-such-dir/ms.log"`),
      );
      const ms = startMs(`${dir}/ms.toml`);
      assert.equal(await ms.exit(), 1);
      assert.match(ms.stderr, /^oor ms: cannot open log-file .*no-such-dir\/ms\.log: .+\n$/);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
