import assert from "node:assert/strict";
import { assetNames, builtName, main, packagingFiles, sha256Hex } from "./release_assets.ts";
import { ROOT, TARGETS } from "./compile.ts";

/** A 64-byte little-endian ELF header for machine `machine` (0x3e x86-64, 0xb7 aarch64). */
function elf(machine: number): Uint8Array<ArrayBuffer> {
  const h = new Uint8Array(4096);
  h.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  h[18] = machine;
  h[100] = machine; // make the two files differ past the header too
  return h;
}

async function sh(cmd: string, args: string[], cwd: string): Promise<string> {
  const r = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const d = new TextDecoder();
  assert.equal(r.code, 0, `${cmd} ${args.join(" ")}: ${d.decode(r.stderr)}`);
  return d.decode(r.stdout);
}

Deno.test("release assets: named as the README says, sha256sum -c passes, reproducible", async () => {
  const dir = await Deno.makeTempDir({ prefix: "oor-release-" });
  try {
    await Deno.mkdir(`${dir}/dist`);
    await Deno.writeFile(`${dir}/dist/${builtName("x86_64-unknown-linux-gnu")}`, elf(0x3e));
    await Deno.writeFile(`${dir}/dist/${builtName("aarch64-unknown-linux-gnu")}`, elf(0xb7));
    const code = await main(["--dist", `${dir}/dist`, "--out", `${dir}/a`, "--version", "9.8.7"]);
    assert.equal(code, 0);
    const names = [...Deno.readDirSync(`${dir}/a`)].map((e) => e.name).sort();
    assert.deepEqual(names, [
      "SHA256SUMS",
      "oor-9.8.7-aarch64-unknown-linux-gnu",
      "oor-9.8.7-packaging.tar.gz",
      "oor-9.8.7-x86_64-unknown-linux-gnu",
    ]);
    // The README names these, with VERSION for the version.
    const readme = Deno.readTextFileSync(`${ROOT}/README.md`);
    const n = assetNames("VERSION");
    for (const a of [...Object.values(n.executables), n.packaging, n.sums]) {
      assert.ok(readme.includes(a), `README names ${a}`);
    }
    // sha256sum checks them; our hash is sha256sum's.
    assert.match(await sh("sha256sum", ["-c", "SHA256SUMS"], `${dir}/a`), /: OK\n.*: OK\n.*: OK\n/);
    const sums = Deno.readTextFileSync(`${dir}/a/SHA256SUMS`);
    assert.ok(sums.includes(`${await sha256Hex(elf(0x3e))}  oor-9.8.7-x86_64-unknown-linux-gnu`));
    assert.equal(
      (Deno.statSync(`${dir}/a/oor-9.8.7-x86_64-unknown-linux-gnu`).mode ?? 0) & 0o777,
      0o755,
    );
    // The tarball: unit, drop-in, sysusers entry, completions, README.
    const listing = (await sh("tar", ["-tzf", `${dir}/a/oor-9.8.7-packaging.tar.gz`], dir))
      .trim().split("\n").filter((l) => !l.endsWith("/")).sort();
    assert.deepEqual(listing, [...packagingFiles("9.8.7").keys()].sort());
    assert.ok(listing.includes("oor-9.8.7/systemd/oor@.service"));
    assert.ok(listing.includes("oor-9.8.7/completions/_oor"));
    // Built again: the same bytes.
    assert.equal(
      await main(["--dist", `${dir}/dist`, "--out", `${dir}/b`, "--version", "9.8.7"]),
      0,
    );
    assert.equal(Deno.readTextFileSync(`${dir}/b/SHA256SUMS`), sums);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("release assets refuse an executable of the wrong architecture or a missing one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "oor-release-" });
  try {
    await Deno.writeFile(`${dir}/${builtName(TARGETS[0])}`, elf(0xb7));
    await Deno.writeFile(`${dir}/${builtName(TARGETS[1])}`, elf(0xb7));
    assert.equal(await main(["--dist", dir, "--out", `${dir}/out`]), 1);
    await Deno.remove(`${dir}/${builtName(TARGETS[0])}`);
    assert.equal(await main(["--dist", dir, "--out", `${dir}/out`]), 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the release workflow builds, names and uploads what scripts/release_assets.ts names", () => {
  const yml = Deno.readTextFileSync(`${ROOT}/.github/workflows/release.yml`);
  for (const t of TARGETS) {
    assert.ok(yml.includes(`--target ${t} --output dist/${builtName(t)}`), t);
  }
  assert.ok(yml.includes("scripts/release_assets.ts --dist dist --out dist/release"));
  assert.ok(yml.includes("sha256sum -c SHA256SUMS"));
  assert.ok(yml.includes('gh release upload "$tag" --clobber dist/release/*'));
});
