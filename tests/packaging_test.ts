/**
 * packaging/: the systemd unit `oor@.service` (one instance per role), its
 * drop-in for the tunnel routers, and the sysusers.d entry. What the unit
 * grants each role is read from the files; `systemd-analyze verify` and
 * `systemd-analyze security --offline` check them where systemd-analyze is
 * installed (the test says it skipped them otherwise). That a tunnel router
 * runs with exactly those capabilities, as a user that is not root, is
 * tests/e2e/capabilities_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { testNeeding } from "./prereq.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const UNIT = Deno.readTextFileSync(`${ROOT}packaging/systemd/oor@.service`);
const DROPIN = Deno.readTextFileSync(`${ROOT}packaging/systemd/tunnel-router.conf`);

/** The values of `key=` in a unit's text, in order (comments skipped). */
function values(text: string, key: string): string[] {
  return text.split("\n").filter((l) => l.startsWith(`${key}=`)).map((l) =>
    l.slice(key.length + 1)
  );
}

Deno.test("oor@.service runs the role of its instance name, with no capability", () => {
  assert.deepEqual(values(UNIT, "ExecStart"), [
    "/usr/local/bin/oor %i --config /etc/oor/%i.toml --state-file /var/lib/oor/%i.state.json",
  ]);
  assert.deepEqual(values(UNIT, "CapabilityBoundingSet"), [""]);
  assert.deepEqual(values(UNIT, "AmbientCapabilities"), [""]);
  assert.deepEqual(values(UNIT, "User"), ["oor"]);
  assert.deepEqual(values(UNIT, "NoNewPrivileges"), ["yes"]);
  assert.deepEqual(values(UNIT, "StateDirectory"), ["oor"]);
  assert.deepEqual(values(UNIT, "Environment"), ["DENO_NO_UPDATE_CHECK=1"]);
  assert.deepEqual(values(UNIT, "KillSignal"), ["SIGTERM"]);
  // The JavaScript engine needs writable and executable memory.
  assert.deepEqual(values(UNIT, "MemoryDenyWriteExecute"), []);
  // The sysusers.d entry makes the user it runs as.
  const sysusers = Deno.readTextFileSync(`${ROOT}packaging/sysusers.d/oor.conf`);
  assert.match(sysusers, /^u oor - "oor LISP router" \/var\/lib\/oor$/m);
});

Deno.test("the tunnel routers' drop-in adds CAP_NET_ADMIN, CAP_NET_RAW and /dev/net/tun, nothing more", () => {
  assert.deepEqual(values(DROPIN, "CapabilityBoundingSet"), ["CAP_NET_ADMIN CAP_NET_RAW"]);
  assert.deepEqual(values(DROPIN, "AmbientCapabilities"), ["CAP_NET_ADMIN CAP_NET_RAW"]);
  assert.deepEqual(values(DROPIN, "DeviceAllow"), ["/dev/net/tun rw"]);
  assert.deepEqual(values(DROPIN, "PrivateDevices"), ["no"]);
  const keys = DROPIN.split("\n").filter((l) => /^[A-Z]\w*=/.test(l)).map((l) => l.split("=")[0]);
  assert.deepEqual(keys.sort(), [
    "AmbientCapabilities",
    "CapabilityBoundingSet",
    "DeviceAllow",
    "DevicePolicy",
    "PrivateDevices",
  ]);
});

/** Whether systemd-analyze runs here. */
function haveSystemdAnalyze(): boolean {
  try {
    return new Deno.Command("systemd-analyze", { args: ["--version"], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** The unit and drop-in installed in a folder, ExecStart pointed at a program that exists. */
function installed(dir: string): void {
  Deno.writeTextFileSync(`${dir}/oor@.service`, UNIT.replace("/usr/local/bin/oor", "/bin/true"));
  for (const role of ["xtr", "mn", "rtr"]) {
    Deno.mkdirSync(`${dir}/oor@${role}.service.d`);
    Deno.writeTextFileSync(`${dir}/oor@${role}.service.d/tunnel-router.conf`, DROPIN);
  }
}

function analyze(dir: string, args: string[]): { code: number; out: string } {
  const r = new Deno.Command("systemd-analyze", {
    args,
    env: { SYSTEMD_UNIT_PATH: `${dir}:`, SYSTEMD_LOG_LEVEL: "notice", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout) + d.decode(r.stderr) };
}

testNeeding(haveSystemdAnalyze() ? undefined : "needs systemd-analyze (apt-get install systemd)", {
  name: "systemd-analyze verifies the unit for every role and rates its exposure low",
  fn() {
    const dir = Deno.makeTempDirSync({ prefix: "oor-unit-" });
    try {
      installed(dir);
      const roles = ["xtr", "mn", "rtr", "ms", "mr", "ddt", "ddt-mr"];
      const verify = analyze(dir, ["verify", "--man=no", ...roles.map((r) => `oor@${r}.service`)]);
      assert.equal(verify.code, 0, verify.out);
      assert.equal(verify.out.trim(), "", verify.out);
      for (const role of roles) {
        // systemd's 0-10 exposure scale, times ten: 2.5 at most.
        const sec = analyze(dir, [
          "security",
          "--offline=yes",
          "--threshold=25",
          `oor@${role}.service`,
        ]);
        assert.equal(sec.code, 0, `${role}:\n${sec.out}`);
        const tunnel = ["xtr", "mn", "rtr"].includes(role);
        // What the role may do: only the tunnel routers get capabilities.
        assert.equal(/✗ AmbientCapabilities=/.test(sec.out), tunnel, `${role}:\n${sec.out}`);
        assert.match(sec.out, /✓ CapabilityBoundingSet=~CAP_SYS_ADMIN/, role);
        assert.match(sec.out, /✓ User=\/DynamicUser=/, role);
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
