import assert from "node:assert/strict";
import { EXIT_NO_STUB, hostTarget, ROOT, TARGETS, withoutBacktrace } from "./compile.ts";

Deno.test("withoutBacktrace() drops anyhow's Stack backtrace section and keeps the rest", () => {
  const stderr = [
    "error: Writing deno compile executable to temporary file '/tmp/x'",
    "",
    "Caused by:",
    "    0: Setting up base binary.",
    "    1: dns error",
    "",
    "Stack backtrace:",
    "   0: <unknown>",
    "   1: std::rt::lang_start",
    "             at /rustc/abc/library/std/src/rt.rs:10:5",
    "",
    "after",
  ].join("\n");
  assert.equal(
    withoutBacktrace(stderr),
    [
      "error: Writing deno compile executable to temporary file '/tmp/x'",
      "",
      "Caused by:",
      "    0: Setting up base binary.",
      "    1: dns error",
      "",
      "after",
    ].join("\n"),
  );
  assert.equal(withoutBacktrace("nothing to drop\n"), "nothing to drop\n");
});

Deno.test({
  name: "deno task compile without its runtime stub ends with the DENORT_BIN hint, " +
    "no Rust backtrace, even under RUST_BACKTRACE=1",
  sanitizeResources: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "oor-compile-offline-" });
    try {
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${ROOT}/scripts/compile.ts`, "--output", `${dir}/oor`],
        cwd: ROOT,
        env: {
          NO_COLOR: "1",
          DENO_NO_UPDATE_CHECK: "1",
          RUST_BACKTRACE: "1",
          // Offline, for sure: an empty cache, and every download refused on loopback.
          DENO_DIR: `${dir}/deno`,
          HTTPS_PROXY: "http://127.0.0.1:9",
          HTTP_PROXY: "http://127.0.0.1:9",
          NO_PROXY: "",
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(r.stderr);
      assert.equal(r.code, EXIT_NO_STUB, stderr);
      assert.doesNotMatch(stderr, /Stack backtrace|<unknown>|rustc/, stderr);
      const lines = stderr.trimEnd().split("\n");
      const target = hostTarget() ?? TARGETS[0];
      assert.equal(lines.at(-1), "    DENORT_BIN=/path/to/denort deno task compile", stderr);
      assert.ok(
        stderr.includes(`set DENORT_BIN to the 'denort' binary of Deno ${Deno.version.deno}`),
        stderr,
      );
      assert.ok(stderr.includes(`denort-${target}.zip`), stderr);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
