/**
 * A tunnel router started without CAP_NET_ADMIN says what to do: its
 * `start-failed` line names the capability and the setcap command. Runs an
 * xtr as root with CAP_NET_ADMIN and CAP_NET_RAW taken away (setpriv), in a
 * network namespace of its own (`oor-hint-<pid>`), so nothing of this host
 * is touched even if it did start.
 *
 * @module
 */

import assert from "node:assert/strict";
import { commandsMissing, rootMissing, testNeeding } from "../prereq.ts";

const SKIP = rootMissing() ?? commandsMissing(["setpriv"], "Debian package util-linux");
const ROOT = new URL("../../", import.meta.url).pathname;

async function sh(args: string[]): Promise<void> {
  const r = await new Deno.Command(args[0]!, { args: args.slice(1), stderr: "piped" }).output();
  if (!r.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
}

testNeeding(SKIP, {
  name: "xtr without CAP_NET_ADMIN: start-failed names CAP_NET_ADMIN and the setcap line",
  sanitizeResources: false,
  async fn() {
    const ns = `oor-hint-${Deno.pid}`;
    const dir = await Deno.makeTempDir();
    await sh(["ip", "netns", "add", ns]);
    try {
      await sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
      const config = `${dir}/xtr.toml`;
      await Deno.writeTextFile(
        config,
        [
          'operating-mode = "xTR"',
          'map-resolver = ["192.0.2.1"]',
          "[api]",
          "enabled = false",
          "[[map-server]]",
          'address = "192.0.2.2"',
          "key-type = 2",
          'key = "lab-key"',
          "[[database-mapping]]",
          'eid-prefix = "10.1.0.0/24"',
          "[[database-mapping.rloc-address]]",
          'address = "192.0.2.10"',
          "",
        ].join("\n"),
      );
      const p = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns,
          "setpriv",
          "--bounding-set=-net_admin,-net_raw",
          "--inh-caps=-net_admin,-net_raw",
          Deno.execPath(),
          "run",
          "-A",
          `${ROOT}main.ts`,
          "xtr",
          "-c",
          config,
        ],
        env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(p.stderr);
      assert.equal(p.code, 1, err);
      const line = err.split("\n").find((l) => l.includes(" start-failed ")) ?? "";
      assert.match(line, /error="TUNSETIFF lispTun0: Operation not permitted \(EPERM\)"/, err);
      assert.match(line, /hint="creating the TUN device needs CAP_NET_ADMIN: run as root/, line);
      // Run from source, the executable to give capabilities to is the compiled one.
      assert.match(line, /sudo setcap cap_net_admin,cap_net_raw\+ep dist\/oor/, line);
    } finally {
      await sh(["ip", "netns", "delete", ns]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
