/**
 * Configuration reload of a real process (runner/reload.ts): an xtr in a
 * network namespace of its own (`oor-reload-<pid>`, a veth pair for its
 * RLOC) is sent SIGHUP after its file gained a mapping, then after the
 * file was broken, then asked through `POST /api/v1/reload`. The mapping is
 * taken without a restart; the bad file is refused with its errors
 * (file:line) and the old config stays; the API needs the token.
 *
 * @module
 */

import assert from "node:assert/strict";
import { rootMissing, testNeeding } from "../prereq.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const TOKEN = "reload-test-token";

async function sh(args: string[]): Promise<string> {
  const r = await new Deno.Command(args[0]!, {
    args: args.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  if (!r.success) throw new Error(`${args.join(" ")}: ${d.decode(r.stderr)}`);
  return d.decode(r.stdout);
}

function xtrFile(mappings: readonly string[], extra = ""): string {
  return [
    'operating-mode = "xTR"',
    'control-address = "192.0.2.1"',
    'map-resolver = ["192.0.2.3"]',
    "[rloc-probing]",
    "rloc-probe-interval = 0",
    "[api]",
    'listen = "127.0.0.1:9942"',
    `token = "${TOKEN}"`,
    "[[map-server]]",
    'address = "192.0.2.2"',
    "key-type = 1",
    'key = "k"',
    ...mappings.flatMap((eid) => [
      "[[database-mapping]]",
      `eid-prefix = "${eid}"`,
      "[[database-mapping.rloc-address]]",
      'address = "192.0.2.1"',
      "priority = 1",
      "weight = 100",
    ]),
    extra,
  ].join("\n");
}

testNeeding(rootMissing(), {
  name:
    "SIGHUP: an xtr takes a mapping added to its file, refuses a bad file keeping its config; " +
    "POST /api/v1/reload does the same with the token",
  sanitizeResources: false,
  async fn() {
    const ns = `oor-reload-${Deno.pid}`;
    const dir = await Deno.makeTempDir({ prefix: "oor-reload-" });
    const file = `${dir}/xtr.toml`;
    await sh(["ip", "netns", "add", ns]);
    let child: Deno.ChildProcess | undefined;
    let log = "";
    try {
      await sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
      await sh(["ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
      await sh(["ip", "-n", ns, "link", "set", "d1", "up"]);
      await sh(["ip", "-n", ns, "addr", "add", "192.0.2.1/24", "dev", "d0"]);
      await sh(["ip", "-n", ns, "link", "set", "d0", "up"]);
      await Deno.writeTextFile(file, xtrFile(["10.1.0.0/24"]));
      child = new Deno.Command("ip", {
        args: ["netns", "exec", ns, Deno.execPath(), "run", "-A", `${ROOT}main.ts`, "xtr"]
          .concat(["--config", file]),
        env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const pump = (async () => {
        for await (const t of child!.stderr.pipeThrough(new TextDecoderStream())) log += t;
      })();
      const waitLog = async (re: RegExp, what: string, from = 0) => {
        const deadline = Date.now() + 15_000;
        while (!re.test(log.slice(from))) {
          if (Date.now() > deadline) throw new Error(`no ${what} in:\n${log}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      const api = (args: string[]) => sh(["ip", "netns", "exec", ns, "curl", "-s", ...args]);
      /** The database's EID prefixes, whatever the shape of the list (paged or not). */
      const database = async () => {
        const body = JSON.parse(await api(["http://127.0.0.1:9942/api/v1/database"]));
        const list = (Array.isArray(body) ? body : body.entries) as Record<string, string>[];
        return list.map((d) => d["eidPrefix"] ?? d["eid-prefix"]).sort();
      };
      await waitLog(/ started /, "started");
      // The process runs in its namespace, started through `ip netns exec`.
      const pid = Number(/ started pid=(\d+)/.exec(log)?.[1]);
      assert.ok(pid > 0, log);

      // 1. A mapping added to the file.
      await Deno.writeTextFile(file, xtrFile(["10.1.0.0/24", "10.2.0.0/24"]));
      let from = log.length;
      Deno.kill(pid, "SIGHUP");
      await waitLog(/ reloaded /, "reloaded", from);
      assert.match(log.slice(from), / reload-applied .*action=added .*10\.2\.0\.0\/24/);
      assert.match(log.slice(from), / reloaded trigger=SIGHUP .*changes=1/);
      assert.deepEqual(await database(), ["10.1.0.0/24", "10.2.0.0/24"]);

      // 2. A bad file: refused with its errors, the old config stays.
      await Deno.writeTextFile(file, xtrFile(["10.1.0.0/24", "10.3.0.0/33"]));
      from = log.length;
      Deno.kill(pid, "SIGHUP");
      await waitLog(/ reload-refused /, "reload-refused", from);
      assert.match(
        log.slice(from),
        /ERROR.* reload-refused .*xtr\.toml:\d+: database-mapping\[1\]\.eid-prefix/i,
      );
      assert.deepEqual(await database(), ["10.1.0.0/24", "10.2.0.0/24"]);
      // A key that cannot change at runtime: refused, naming it.
      await Deno.writeTextFile(file, 'tun-name = "lispTun7"\n' + xtrFile(["10.1.0.0/24"]));
      from = log.length;
      Deno.kill(pid, "SIGHUP");
      await waitLog(/ reload-refused /, "reload-refused", from);
      assert.match(log.slice(from), /tun-name: cannot change while the role runs/);
      assert.deepEqual(await database(), ["10.1.0.0/24", "10.2.0.0/24"]);

      // 3. Through the API: the token is needed; then the file's removal applies.
      await Deno.writeTextFile(file, xtrFile(["10.1.0.0/24"]));
      const url = "http://127.0.0.1:9942/api/v1/reload";
      assert.match(await api(["-X", "POST", "-w", "%{http_code}", url]), /401$/);
      assert.deepEqual(await database(), ["10.1.0.0/24", "10.2.0.0/24"]);
      const ok = JSON.parse(
        await api(["-X", "POST", "-H", `Authorization: Bearer ${TOKEN}`, url]),
      );
      assert.deepEqual(ok, {
        reloaded: true,
        changes: ["[[database-mapping]] 10.2.0.0/24 removed"],
      });
      assert.deepEqual(await database(), ["10.1.0.0/24"]);
      await Deno.writeTextFile(file, "operating-mode = [\n");
      const bad = await api([
        "-X",
        "POST",
        "-H",
        `Authorization: Bearer ${TOKEN}`,
        "-w",
        "\n%{http_code}",
        url,
      ]);
      assert.match(bad, /\n400$/);
      assert.match(JSON.parse(bad.split("\n")[0]!).errors[0], /xtr\.toml:\d+:\d+: invalid value/);

      // Still running; SIGTERM stops it.
      assert.doesNotMatch(log, / stopping /);
      Deno.kill(pid, "SIGTERM");
      const status = await child.status;
      await pump;
      assert.equal(status.code, 0, log);
    } catch (e) {
      console.error(log);
      throw e;
    } finally {
      try {
        child?.kill("SIGKILL");
      } catch {
        // exited
      }
      await sh(["ip", "netns", "del", ns]).catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
