/**
 * The assets of a release, named as the README says, with their SHA-256
 * sums: what `.github/workflows/release.yml` uploads to a GitHub release.
 *
 * ```
 * deno run -A scripts/release_assets.ts [--dist dist] [--out dist/release] [--version V]
 * ```
 *
 * From the executables `deno task compile` built in `--dist`
 * (`oor-x86_64-unknown-linux-gnu`, `oor-aarch64-unknown-linux-gnu`), it
 * writes to `--out`:
 *
 * - `oor-VERSION-x86_64-unknown-linux-gnu`, `oor-VERSION-aarch64-unknown-linux-gnu`:
 *   the executables, each checked to be an ELF of its architecture;
 * - `oor-VERSION-packaging.tar.gz`: `oor-VERSION/` with the systemd unit and
 *   its drop-in (packaging/systemd/), the sysusers.d entry, the bash and zsh
 *   completions (made by `oor completions`) and the README;
 * - `SHA256SUMS`: one `HASH  NAME` line per asset, as `sha256sum -c SHA256SUMS` reads it.
 *
 * VERSION is version.ts's unless `--version` says otherwise. The tarball is
 * reproducible (sorted names, fixed times and owners). Exit codes: 0 done,
 * 1 a missing or wrong executable, 2 bad usage.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { VERSION } from "../version.ts";
import { completionCommands } from "../main.ts";
import { completionScript } from "../tools/completions.ts";
import { elfTarget, ROOT, type Target, TARGETS } from "./compile.ts";

/** The name of each asset of release `version`. */
export function assetNames(version: string): {
  readonly executables: Readonly<Record<Target, string>>;
  readonly packaging: string;
  readonly sums: string;
} {
  return {
    executables: Object.fromEntries(
      TARGETS.map((t) => [t, `oor-${version}-${t}`]),
    ) as Record<Target, string>,
    packaging: `oor-${version}-packaging.tar.gz`,
    sums: "SHA256SUMS",
  };
}

/** The name `deno task compile --target T` gives the executable in the dist folder. */
export function builtName(target: Target): string {
  return `oor-${target}`;
}

/** The SHA-256 of `bytes` in hex. */
export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** `SHA256SUMS` text for files of `dir` (`HASH  NAME`, sorted by name). */
export async function sha256Sums(dir: string, names: readonly string[]): Promise<string> {
  const lines: string[] = [];
  for (const n of [...names].sort()) {
    lines.push(`${await sha256Hex(await Deno.readFile(`${dir}/${n}`))}  ${n}`);
  }
  return lines.join("\n") + "\n";
}

/** What goes in the packaging tarball: path inside it -> text. */
export function packagingFiles(version: string): Map<string, string> {
  const files = new Map<string, string>();
  const read = (p: string) => Deno.readTextFileSync(`${ROOT}/${p}`);
  const top = `oor-${version}`;
  files.set(`${top}/systemd/oor@.service`, read("packaging/systemd/oor@.service"));
  files.set(`${top}/systemd/tunnel-router.conf`, read("packaging/systemd/tunnel-router.conf"));
  files.set(`${top}/sysusers.d/oor.conf`, read("packaging/sysusers.d/oor.conf"));
  const commands = completionCommands();
  files.set(`${top}/completions/oor.bash`, completionScript("bash", commands));
  files.set(`${top}/completions/_oor`, completionScript("zsh", commands));
  files.set(`${top}/README.md`, read("README.md"));
  return files;
}

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const r = await new Deno.Command(cmd, { args, cwd, stderr: "piped" }).output();
  if (!r.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  }
}

/** Writes the reproducible tarball `out/name` of `files`. */
async function writeTarball(out: string, name: string, files: Map<string, string>) {
  const stage = await Deno.makeTempDir({ prefix: "oor-packaging-" });
  try {
    for (const [path, text] of files) {
      await Deno.mkdir(`${stage}/${path.replace(/\/[^/]*$/, "")}`, { recursive: true });
      await Deno.writeTextFile(`${stage}/${path}`, text);
      await Deno.chmod(`${stage}/${path}`, 0o644);
    }
    const tar = `${stage}/out.tar`;
    const top = [...new Set([...files.keys()].map((p) => p.split("/")[0]!))];
    await run("tar", [
      "--sort=name",
      "--mtime=@0",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "--mode=u+rwX,go+rX,go-w",
      "-cf",
      tar,
      ...top,
    ], stage);
    await run("gzip", ["-n", "-9", tar], stage);
    await Deno.copyFile(`${tar}.gz`, `${out}/${name}`);
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
}

/** Runs the script with `argv`; resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        dist: { type: "string" },
        out: { type: "string" },
        version: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    console.error(`release_assets: ${(e as Error).message}`);
    return 2;
  }
  if (values.help === true) {
    console.log(
      "Usage: deno run -A scripts/release_assets.ts [--dist DIR] [--out DIR] [--version V]",
    );
    return 0;
  }
  const dist = values.dist ?? `${ROOT}/dist`;
  const out = values.out ?? `${dist}/release`;
  const version = values.version ?? VERSION;
  const names = assetNames(version);
  await Deno.mkdir(out, { recursive: true });
  const assets: string[] = [];
  for (const target of TARGETS) {
    const from = `${dist}/${builtName(target)}`;
    let header: Uint8Array;
    try {
      header = (await Deno.readFile(from)).subarray(0, 64);
    } catch {
      console.error(
        `release_assets: no ${from}: build it with deno task compile --target ${target} ` +
          `--output ${from}`,
      );
      return 1;
    }
    const built = elfTarget(header);
    if (built !== target) {
      console.error(
        `release_assets: ${from} is ${built ?? "not a Linux executable"}, not ${target}`,
      );
      return 1;
    }
    const to = `${out}/${names.executables[target]}`;
    await Deno.copyFile(from, to);
    await Deno.chmod(to, 0o755);
    assets.push(names.executables[target]);
  }
  await writeTarball(out, names.packaging, packagingFiles(version));
  assets.push(names.packaging);
  const sums = await sha256Sums(out, assets);
  await Deno.writeTextFile(`${out}/${names.sums}`, sums);
  console.log(`release assets of oor ${version} in ${out}:`);
  for (const a of [...assets, names.sums]) console.log(`  ${a}`);
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
