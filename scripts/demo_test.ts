import assert from "node:assert/strict";
import { missingPrerequisites, PREREQUISITES } from "./demo.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** A PATH of one folder holding executables named `names` (empty scripts). */
function fakePath(dir: string, names: readonly string[]): string {
  for (const n of names) {
    Deno.writeTextFileSync(`${dir}/${n}`, "#!/bin/sh\n");
    Deno.chmodSync(`${dir}/${n}`, 0o755);
  }
  return dir;
}

Deno.test("missingPrerequisites() names each command not on the PATH with its Debian package", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = fakePath(dir, ["ip", "python3"]);
    // Not executable: not there.
    Deno.writeTextFileSync(`${dir}/curl`, "");
    assert.deepEqual(missingPrerequisites(path), [
      { command: "ping", debian: "iputils-ping" },
      { command: "curl", debian: "curl" },
    ]);
    fakePath(dir, ["ping", "curl"]);
    assert.deepEqual(missingPrerequisites(`/nonexistent:${path}`), []);
    assert.deepEqual(PREREQUISITES.map((p) => p.command), ["ip", "ping", "curl", "python3"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the demo without ping and curl says so before it builds anything, exit 2", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = fakePath(dir, ["ip"]);
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}scripts/demo.ts`, "--name", "demo-prereq-test"],
      cwd: ROOT,
      clearEnv: true,
      env: { PATH: path, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout);
    const err = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 2, err);
    assert.equal(out, "", "nothing built, nothing printed on stdout");
    assert.match(
      err,
      /^demo: the demo runs ip, ping, curl, python3; missing: ping \(Debian package iputils-ping\), curl \(Debian package curl\)/,
    );
    assert.match(err, /install with: sudo apt-get install iputils-ping curl/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
