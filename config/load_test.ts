import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { loadConfig } from "./mod.ts";

Deno.test("loadConfig() reads a file and names it in errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/oor.toml`;
    await Deno.writeTextFile(path, "debug = 1\n[rloc-probing]\nrloc-probe-retries = 7\n");
    const r = await loadConfig(path);
    deepStrictEqual(r.ok ? [] : r.errors.map(String), [
      `${path}:3: rloc-probing.rloc-probe-retries: must be from 0 to 5 (got 7)`,
    ]);
    await Deno.writeTextFile(path, "debug = 2\n");
    const ok = await loadConfig(path);
    strictEqual(ok.ok && ok.config.debug, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() checks the file against the role it is given", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/oor.toml`;
    await Deno.writeTextFile(path, "");
    const r = await loadConfig(path, "ddt");
    deepStrictEqual(r.ok ? [] : r.errors.map(String), [
      `${path}: ddt-auth-site: role ddt needs at least one [[ddt-auth-site]]`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() reports a missing file, a directory and bad UTF-8 as errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = await loadConfig(`${dir}/none.toml`);
    deepStrictEqual(missing.ok ? [] : missing.errors.map(String), [
      `${dir}/none.toml: cannot read: no such file`,
    ]);
    const isDir = await loadConfig(dir);
    strictEqual(isDir.ok, false);
    strictEqual(
      !isDir.ok && isDir.errors[0]!.toString().startsWith(`${dir}: cannot read:`),
      true,
    );
    await Deno.writeFile(`${dir}/bin.toml`, new Uint8Array([0x64, 0xff, 0x0a]));
    const bin = await loadConfig(`${dir}/bin.toml`);
    deepStrictEqual(bin.ok ? [] : bin.errors.map(String), [
      `${dir}/bin.toml: cannot read: not valid UTF-8 text`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
