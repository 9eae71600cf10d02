/**
 * The release executable (issue 5, point 5): what `deno task compile`
 * (scripts/compile.ts) puts in it, and the program built from the same
 * module graph and run with the same permissions.
 *
 * `deno compile` needs its runtime stub (`denort`), which it downloads; on
 * a machine that cannot (as in CI here) the compile test checks the
 * message and exit code, and the program is checked as a `deno bundle`
 * of `main.ts` instead, its run-time files (the data-plane Worker module,
 * assets) bundled or copied beside it where `new URL(..., import.meta.url)`
 * finds them, run by `deno run` with exactly the executable's permissions:
 * `--version`, `check-config`, and a map-server on loopback answering
 * `lig`, stopped by SIGTERM with exit code 0. Where the stub is there
 * (`DENORT_BIN`, or a reachable release server), the compiled executable
 * goes through the same checks.
 *
 * Loopback addresses: 127.0.5.1 (map-server), 127.0.5.70 (its static RLOC).
 *
 * @module
 */

import assert from "node:assert/strict";
import { VERSION } from "../version.ts";
import {
  auditSource,
  auditSources,
  compileArgs,
  elfTarget,
  ENTRY,
  EXIT_NO_STUB,
  findAssets,
  hostTarget,
  PERMISSIONS,
  type ProductGraph,
  productGraph,
  ROOT,
  TARGETS,
  unusedPackages,
} from "../scripts/compile.ts";

const MS = "127.0.5.1";
const RLOC = "127.0.5.70";

// ---------------------------------------------------------------------------
// Running the program.

/** A running process whose output is collected as it comes. */
class Proc {
  readonly #child: Deno.ChildProcess;
  readonly #pumps: Promise<void>[];
  stdout = "";
  stderr = "";

  constructor(cmd: readonly string[], cwd: string) {
    this.#child = new Deno.Command(cmd[0]!, {
      args: cmd.slice(1),
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    }).spawn();
    this.#pumps = [
      this.#pump(this.#child.stdout, (t) => this.stdout += t),
      this.#pump(this.#child.stderr, (t) => this.stderr += t),
    ];
  }

  async #pump(stream: ReadableStream<Uint8Array>, add: (t: string) => void): Promise<void> {
    for await (const t of stream.pipeThrough(new TextDecoderStream())) add(t);
  }

  /** Waits until `test` holds for stderr; throws after `ms`. */
  async waitStderr(test: (s: string) => boolean, ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!test(this.stderr)) {
      if (Date.now() > until) throw new Error(`timed out; stderr so far:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  kill(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch { /* already gone */ }
  }

  /** Waits for the exit and the end of the output. */
  async status(): Promise<Deno.CommandStatus> {
    const s = await this.#child.status;
    await Promise.all(this.#pumps);
    return s;
  }
}

/** Runs `cmd` to the end. */
async function runTo(cmd: readonly string[], cwd: string) {
  const p = new Proc(cmd, cwd);
  const s = await p.status();
  return { code: s.code, stdout: p.stdout, stderr: p.stderr };
}

/**
 * The checks the program must pass however it is built: `cmd` is the
 * command that runs `oor` (the executable, or `deno run ... bundle.js`).
 */
async function exercise(cmd: readonly string[], dir: string): Promise<void> {
  const version = await runTo([...cmd, "--version"], dir);
  assert.deepEqual(version, { code: 0, stdout: `oor ${VERSION}\n`, stderr: "" });

  const check = await runTo([...cmd, "check-config", `${ROOT}/examples/ms.toml`], dir);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /examples\/ms\.toml: ok \(role ms: /);

  Deno.writeTextFileSync(
    `${dir}/ms.toml`,
    [
      `control-address = "${MS}"`,
      "control-port = 0",
      "[api]",
      `listen = "${MS}:9942"`,
      "[[lisp-site]]",
      'eid-prefix = "10.1.0.0/16"',
      "key-type = 2",
      'key = "bundle-test-key"',
      "accept-more-specifics = true",
      "[[ms-static-registered-site]]",
      'eid-prefix = "10.1.1.0/24"',
      `rloc-address = [{ address = "${RLOC}", priority = 1, weight = 100 }]`,
      "",
    ].join("\n"),
  );
  const ms = new Proc([...cmd, "ms", "--config", "ms.toml", "--log-format", "json"], dir);
  try {
    await ms.waitStderr((s) => s.includes('"event":"started"'), 15_000);
    const listening = ms.stderr.split("\n").map((l) => JSON.parse(l || "{}"))
      .find((o) => o.event === "ms-listening");
    const port = listening?.port;
    assert.ok(typeof port === "number" && port > 0, ms.stderr);

    const lig = await runTo(
      [...cmd, "lig", "10.1.1.5", "--mr", MS, "--port", String(port), "--json"],
      dir,
    );
    assert.equal(lig.code, 0, `${lig.stdout}${lig.stderr}`);
    const answer = JSON.parse(lig.stdout);
    assert.equal(answer.negative, false);
    assert.equal(answer.replier, `${MS}:${port}`);
    assert.equal(answer.records[0].eidPrefix, "10.1.1.0/24");
    assert.deepEqual(answer.records[0].locators.map((l: { address: string }) => l.address), [
      RLOC,
    ]);
  } finally {
    ms.kill("SIGTERM");
  }
  const stopped = await ms.status();
  assert.equal(stopped.code, 0, ms.stderr);
  const lines = ms.stderr.trimEnd().split("\n");
  for (const l of lines) assert.equal(JSON.parse(l).role, "ms", l);
  assert.equal(JSON.parse(lines.at(-1)!).event, "stopped");
}

// ---------------------------------------------------------------------------
// The bundle.

/**
 * Bundles `main.ts` into `dir/oor.js` and puts each run-time file where
 * the bundle's `new URL(relative, import.meta.url)` finds it: modules
 * (Workers) bundled, other files copied.
 */
async function buildBundle(graph: ProductGraph, dir: string): Promise<string> {
  const bundle = async (entry: string, out: string) => {
    const r = await runTo(
      [Deno.execPath(), "bundle", "--platform", "deno", "--output", out, entry],
      ROOT,
    );
    assert.equal(r.code, 0, `deno bundle ${entry}:\n${r.stderr}`);
  };
  await bundle(ENTRY, `${dir}/oor.js`);
  const placed = new Map<string, string>();
  for (const a of graph.assets) {
    // A missing file is the audit test's failure, not this one's.
    if (!exists(a.path)) continue;
    assert.ok(
      !a.relative.startsWith("../"),
      `${a.from}: ${a.relative} is above its module; the bundle cannot mirror that`,
    );
    const to = `${dir}/${a.relative.replace(/^\.\//, "")}`;
    const before = placed.get(to);
    assert.ok(before === undefined || before === a.path, `${to}: ${before} and ${a.path}`);
    if (before !== undefined) continue;
    placed.set(to, a.path);
    Deno.mkdirSync(to.replace(/\/[^/]*$/, ""), { recursive: true });
    if (a.module) await bundle(a.path, to);
    else Deno.copyFileSync(a.path, to);
  }
  return `${dir}/oor.js`;
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

Deno.test({
  name: "the bundle of main.ts runs --version, check-config and an ms answering lig " +
    "with the executable's permissions",
  sanitizeResources: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "oor-bundle-" });
    try {
      const graph = await productGraph();
      const js = await buildBundle(graph, dir);
      await exercise(
        [Deno.execPath(), "run", "--no-config", "--no-prompt", ...PERMISSIONS, js],
        dir,
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

// ---------------------------------------------------------------------------
// deno compile.

Deno.test({
  name: "deno task compile builds an executable that passes the same checks, " +
    "or says clearly that it has no runtime stub",
  sanitizeResources: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "oor-compile-" });
    try {
      const out = `${dir}/oor`;
      const r = await runTo(
        [Deno.execPath(), "run", "-A", `${ROOT}/scripts/compile.ts`, "--output", out],
        ROOT,
      );
      if (r.code === EXIT_NO_STUB) {
        const target = hostTarget() ?? TARGETS[0];
        assert.match(r.stderr, /deno compile has no runtime stub/);
        assert.ok(r.stderr.includes(`DENORT_BIN to the 'denort' binary of Deno`), r.stderr);
        assert.ok(r.stderr.includes(`denort-${target}.zip`), r.stderr);
        console.log(
          "  (no denort here: the executable was not built; the bundle test ran instead)",
        );
        return;
      }
      assert.equal(r.code, 0, r.stderr);
      await exercise([out], dir);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test("deno task compile refuses a DENORT_BIN built for another architecture", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "oor-denort-" });
  try {
    // An ELF header for aarch64 (e_machine 0xb7), little-endian, 64-bit.
    const elf = new Uint8Array(64);
    elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    elf[18] = 0xb7;
    Deno.writeFileSync(`${dir}/denort`, elf);
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}/scripts/compile.ts`, "--target", "x86_64-unknown-linux-gnu"],
      cwd: ROOT,
      env: { DENORT_BIN: `${dir}/denort`, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 2, stderr);
    assert.match(stderr, /is aarch64-unknown-linux-gnu, not x86_64-unknown-linux-gnu/);

    const missing = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}/scripts/compile.ts`],
      cwd: ROOT,
      env: { DENORT_BIN: `${dir}/nothing-here`, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(missing.code, 2);
    assert.match(new TextDecoder().decode(missing.stderr), /DENORT_BIN=.*nothing-here: /);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("elfTarget() reads x86_64 and aarch64 from an ELF header, nothing from others", () => {
  const header = (machine: number) => {
    const b = new Uint8Array(64);
    b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    b[18] = machine;
    return b;
  };
  assert.equal(elfTarget(header(0x3e)), "x86_64-unknown-linux-gnu");
  assert.equal(elfTarget(header(0xb7)), "aarch64-unknown-linux-gnu");
  assert.equal(elfTarget(header(0x28)), undefined);
  assert.equal(elfTarget(new TextEncoder().encode("#!/bin/sh\necho hello world\n")), undefined);
  assert.equal(elfTarget(header(0x3e).subarray(0, 10)), undefined);
});

// ---------------------------------------------------------------------------
// What goes in, and what it may do.

Deno.test("the program's modules need no permission beyond the executable's", async () => {
  const graph = await productGraph();
  assert.ok(graph.modules.includes(`${ROOT}/main.ts`));
  assert.ok(graph.modules.includes(`${ROOT}/roles/ms.ts`));
  assert.ok(graph.modules.every((m) => !m.endsWith("_test.ts")), "a test module in the program");
  assert.ok(graph.packages.includes("smol-toml"));
  assert.deepEqual(auditSources(graph), []);
});

Deno.test("auditSource() flags subprocesses, OS queries, unlisted env and other libraries", () => {
  const source = [
    "// Deno.Command in a comment is fine",
    'const p = new Deno.Command("ip", { args: ["link"] });',
    'import { spawn } from "node:child_process";',
    "const me = Deno.uid();",
    'const t = Deno.env.get("OOR_API_TOKEN");',
    'const h = Deno.env.get("HOME") ?? process.env.USER ?? process.env["SHELL"];',
    "const all = Deno.env.toObject();",
    'const lib = Deno.dlopen("libssl.so.3", {});',
    'const libc = Deno.dlopen("libc.so.6", {});',
    "const any = Deno.dlopen(name, {});",
  ].join("\n");
  const found = auditSource(source, "/x.ts").map((p) => `${p.line}: ${p.reason}`);
  assert.deepEqual(found, [
    "2: starts a subprocess (the executable has no --allow-run)",
    "3: starts a subprocess (the executable has no --allow-run)",
    "4: Deno.uid needs --allow-sys, which the executable has not",
    "6: reads env HOME, not in ENV_VARS",
    "6: reads env USER, not in ENV_VARS",
    "6: reads env SHELL, not in ENV_VARS",
    "7: uses the environment beyond reading the names in ENV_VARS",
    "8: loads libssl.so.3 through FFI",
    "10: loads a library named at run time through FFI",
  ]);
});

Deno.test("findAssets() finds the Worker and data files a module loads by URL", () => {
  const source = [
    "/** new URL('./in_a_comment.ts', import.meta.url) */",
    'const w = new Worker(new URL("./_dataplane_worker.ts", import.meta.url), { type: "module" });',
    "const css = await Deno.readTextFile(new URL('./static/page.css', import.meta.url));",
    'const abs = new URL("https://example.invalid/x");',
  ].join("\n");
  assert.deepEqual(findAssets(source, "/repo/roles/xtr.ts"), [
    {
      from: "/repo/roles/xtr.ts",
      relative: "./_dataplane_worker.ts",
      path: "/repo/roles/_dataplane_worker.ts",
      module: true,
    },
    {
      from: "/repo/roles/xtr.ts",
      relative: "./static/page.css",
      path: "/repo/roles/static/page.css",
      module: false,
    },
  ]);
});

Deno.test("compileArgs() bakes in the permissions, includes run-time files, leaves out unused packages", () => {
  const dir = Deno.makeTempDirSync({ prefix: "oor-args-" });
  try {
    Deno.writeTextFileSync(`${dir}/w.ts`, "");
    const graph: ProductGraph = {
      modules: [`${ROOT}/main.ts`],
      assets: [
        { from: `${dir}/a.ts`, relative: "./w.ts", path: `${dir}/w.ts`, module: true },
        { from: `${dir}/b.ts`, relative: "./w.ts", path: `${dir}/w.ts`, module: true },
      ],
      packages: ["smol-toml"],
    };
    const args = compileArgs({
      output: "/out/oor",
      target: "aarch64-unknown-linux-gnu",
      graph,
      exclude: ["@deno/linux-x64-glibc", "deno"],
    });
    assert.deepEqual(args, [
      "compile",
      ...PERMISSIONS,
      "--output",
      "/out/oor",
      "--target",
      "aarch64-unknown-linux-gnu",
      "--include",
      `${dir}/w.ts`,
      "--exclude",
      "node_modules/@deno/linux-x64-glibc",
      "--exclude",
      "node_modules/deno",
      "main.ts",
    ]);
    assert.ok(!args.some((a) => /^--allow-(all|run|sys)|^-A$/.test(a)));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("unusedPackages() names every node_modules package not kept, scoped ones one by one", () => {
  const dir = Deno.makeTempDirSync({ prefix: "oor-nm-" });
  try {
    for (
      const p of ["hono", "deno", "@deno/linux-x64-glibc", "@deno/shim", "@types/node", ".bin"]
    ) {
      Deno.mkdirSync(`${dir}/node_modules/${p}`, { recursive: true });
    }
    Deno.writeTextFileSync(`${dir}/node_modules/.package-lock.json`, "{}");
    assert.deepEqual(unusedPackages(dir, ["hono", "@deno/shim"]), [
      ".bin",
      "@deno/linux-x64-glibc",
      "@types/node",
      "deno",
    ]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
