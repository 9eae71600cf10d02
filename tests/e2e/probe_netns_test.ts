/**
 * The registration probe (roles/tunnel_router/registration_alarm.ts) in a
 * network namespace of its own (`oor-probe-<pid>`, loopback only): a
 * map-server with no route to it is named as such (ENETUNREACH), one on a
 * closed port as ICMP port unreachable.
 *
 * @module
 */

import assert from "node:assert/strict";
import { rootMissing, testNeeding } from "../prereq.ts";

const ALARM = new URL("../../roles/tunnel_router/registration_alarm.ts", import.meta.url).href;

async function sh(args: string[]): Promise<string> {
  const r = await new Deno.Command(args[0]!, {
    args: args.slice(1),
    stdout: "piped",
    stderr: "piped",
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  }).output();
  const d = new TextDecoder();
  if (!r.success) throw new Error(`${args.join(" ")}: ${d.decode(r.stderr)}`);
  return d.decode(r.stdout);
}

testNeeding(rootMissing(), {
  name: "probeMapServer() names no route (ENETUNREACH) and a closed port (ICMP port unreachable)",
  async fn() {
    const ns = `oor-probe-${Deno.pid}`;
    await sh(["ip", "netns", "add", ns]);
    try {
      await sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
      const code = `import { probeMapServer } from "${ALARM}";
        console.log(JSON.stringify([
          await probeMapServer("203.0.113.9", 4342),
          await probeMapServer("127.0.0.1", 4342),
          await probeMapServer("2001:db8::9", 4342),
        ]));`;
      const out = await sh(["ip", "netns", "exec", ns, Deno.execPath(), "eval", code]);
      assert.deepEqual(JSON.parse(out), [
        { kind: "no-route", error: "ENETUNREACH" },
        { kind: "port-unreachable" },
        { kind: "no-route", error: "ENETUNREACH" },
      ]);
    } finally {
      await sh(["ip", "netns", "del", ns]).catch(() => {});
    }
  },
});
