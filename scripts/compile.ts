/**
 * `deno task compile`: builds the `oor` executable with `deno compile`.
 *
 * ```
 * deno task compile [--target TRIPLE] [--output FILE]
 * ```
 *
 * `--target` is `x86_64-unknown-linux-gnu` or `aarch64-unknown-linux-gnu`
 * (default: this machine); `--output` defaults to `dist/oor` for this
 * machine and `dist/oor-TRIPLE` for another.
 *
 * What goes in:
 *
 * - The module graph of `main.ts` (`deno info --json`), plus the files
 *   that code loads at run time through `new URL("./x", import.meta.url)`
 *   (the data-plane Worker module, page assets), passed as `--include`
 *   because `deno compile` does not follow them.
 * - Of `node_modules/`, only the npm packages that graph reaches and their
 *   dependencies: every other package is `--exclude`d (the npm-installed
 *   Deno runtime alone is ~100 MB).
 * - The permissions in {@link PERMISSIONS}, baked in: UDP and TCP sockets,
 *   reading and writing files (config, state, log), FFI (libc), and only
 *   the environment variables in {@link ENV_VARS}. No `--allow-run`: the
 *   program never starts a subprocess (no `ip`; routes, addresses and TUN
 *   go through rtnetlink and ioctl over FFI). {@link auditSources} checks
 *   the graph against this list; `tests/bundle_test.ts` runs it.
 *
 * The runtime stub: `deno compile` writes the program into `denort`, which
 * it downloads once per Deno version and target (`denort-TRIPLE.zip` from
 * the Deno release server) into `DENO_DIR`. With `DENORT_BIN` set to a
 * `denort` binary, Deno uses that file instead and downloads nothing: it
 * must be the `denort` of the same Deno version as `node_modules/.bin/deno`
 * and of the target's architecture (checked here from its ELF header,
 * since Deno takes it as it is whatever `--target` says). When the stub
 * can be neither found nor fetched, this script says so and exits 3.
 *
 * After building for this machine it runs `OUTPUT --version` as a smoke
 * test.
 *
 * Exit codes: 0 built, 1 `deno compile` or the smoke test failed, 2 bad
 * usage (or a `DENORT_BIN` that cannot be right), 3 no runtime stub.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { VERSION } from "../version.ts";

/** The repository root (absolute, no trailing slash). */
export const ROOT: string = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** The program's entry module, relative to {@link ROOT}. */
export const ENTRY = "main.ts";

/** The targets the release builds. */
export const TARGETS = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"] as const;

/** One of {@link TARGETS}. */
export type Target = typeof TARGETS[number];

/** Environment variables the program reads (`Deno.env.get`, `process.env`). */
export const ENV_VARS: readonly string[] = ["OOR_API_TOKEN"];

/**
 * The permissions baked into the executable, also used to run the bundle
 * in `tests/bundle_test.ts`. FFI can do anything a process can, so this is
 * a statement of what the program uses rather than a sandbox; the real
 * bounds are the user it runs as and its capabilities (CAP_NET_ADMIN,
 * CAP_NET_RAW).
 */
export const PERMISSIONS: readonly string[] = [
  // UDP 4341/4342/4790 sockets (node:dgram and FFI), the HTTP API.
  "--allow-net",
  // oor.toml/oor.conf, the state file, /proc and /sys.
  "--allow-read",
  // log-file, the state file (written atomically: temp file and rename).
  "--allow-write",
  // libc.so.6 through Deno.dlopen: TUN, rtnetlink, recvmmsg/sendmmsg, poll.
  "--allow-ffi",
  `--allow-env=${ENV_VARS.join(",")}`,
];

/** Exit code when `deno compile` has no runtime stub (offline, no DENORT_BIN). */
export const EXIT_NO_STUB = 3;

// ---------------------------------------------------------------------------
// The module graph.

/** What the program is made of. */
export interface ProductGraph {
  /** Absolute paths of the program's own modules (not node_modules), sorted. */
  readonly modules: readonly string[];
  /** Files loaded at run time through `new URL(..., import.meta.url)`. */
  readonly assets: readonly Asset[];
  /** npm packages reached, with their dependencies, sorted. */
  readonly packages: readonly string[];
}

/** A file a module loads at run time by a URL relative to itself. */
export interface Asset {
  /** Absolute path of the module that names it. */
  readonly from: string;
  /** The relative URL as written (`./worker.ts`). */
  readonly relative: string;
  /** Absolute path of the file. */
  readonly path: string;
  /** Whether it is a module (`.ts`, `.js`, ...), as a Worker's is, rather than data. */
  readonly module: boolean;
}

const MODULE_EXT = /\.(ts|mts|js|mjs|tsx|jsx)$/;
const URL_REF = /new\s+URL\(\s*(["'`])(\.{1,2}\/[^"'`$]*)\1\s*,\s*import\.meta\.url\s*\)/g;

/** Removes `//` and `/* *\/` comments, roughly (enough to scan code, not to run it). */
export function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

/** The `new URL("./x", import.meta.url)` references of one module's source. */
export function findAssets(source: string, modulePath: string): Asset[] {
  const out: Asset[] = [];
  for (const m of stripComments(source).matchAll(URL_REF)) {
    const relative = m[2]!;
    const path = new URL(relative, `file://${modulePath}`).pathname;
    out.push({ from: modulePath, relative, path, module: MODULE_EXT.test(path) });
  }
  return out;
}

/** The npm package a path inside `node_modules/` belongs to (`hono`, `@scope/name`). */
function packageOf(path: string, root: string): string | undefined {
  let prefix = `${root}/node_modules/`;
  if (!path.startsWith(prefix)) {
    // node_modules may be a symbolic link; deno info names the real paths.
    try {
      prefix = `${Deno.realPathSync(`${root}/node_modules`)}/`;
    } catch {
      return undefined;
    }
    if (!path.startsWith(prefix)) return undefined;
  }
  const parts = path.slice(prefix.length).split("/");
  if (parts[0] === undefined || parts[0] === ".bin") return undefined;
  return parts[0].startsWith("@") ? `${parts[0]}/${parts[1] ?? ""}` : parts[0];
}

/** `deno info --json` of one module: local module paths and npm packages. */
async function denoInfo(
  entry: string,
  root: string,
): Promise<{ modules: string[]; packages: string[] }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  }).output();
  if (!out.success) {
    throw new Error(`deno info ${entry} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string; local?: string; error?: string }[];
  };
  const modules: string[] = [];
  const packages = new Set<string>();
  for (const m of info.modules) {
    if (m.error !== undefined) throw new Error(`${m.specifier}: ${m.error}`);
    if (!m.specifier.startsWith("file://")) continue;
    const path = decodeURIComponent(new URL(m.specifier).pathname);
    const pkg = packageOf(path, root);
    if (pkg !== undefined) packages.add(pkg);
    else if (!path.includes("/node_modules/")) modules.push(path);
  }
  return { modules, packages: [...packages] };
}

/** Adds the `dependencies` of each package (from its package.json), transitively. */
function withDependencies(packages: Iterable<string>, root: string): string[] {
  const seen = new Set<string>();
  const todo = [...packages];
  while (todo.length > 0) {
    const name = todo.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    let manifest: { dependencies?: Record<string, string> };
    try {
      manifest = JSON.parse(Deno.readTextFileSync(`${root}/node_modules/${name}/package.json`));
    } catch {
      continue;
    }
    todo.push(...Object.keys(manifest.dependencies ?? {}));
  }
  return [...seen].sort();
}

/**
 * The program's module graph from `entry`: its modules, the files they
 * load at run time (and those files' own graphs, for Worker modules), and
 * the npm packages reached.
 */
export async function productGraph(entry = ENTRY, root = ROOT): Promise<ProductGraph> {
  const modules = new Set<string>();
  const packages = new Set<string>();
  const assets = new Map<string, Asset>();
  const todo = [`${root}/${entry}`];
  const walked = new Set<string>();
  while (todo.length > 0) {
    const start = todo.pop()!;
    if (walked.has(start)) continue;
    walked.add(start);
    const g = await denoInfo(start, root);
    for (const p of g.packages) packages.add(p);
    for (const m of g.modules) {
      if (modules.has(m)) continue;
      modules.add(m);
      for (const a of findAssets(Deno.readTextFileSync(m), m)) {
        assets.set(`${a.from} ${a.relative}`, a);
        if (a.module && isFile(a.path)) todo.push(a.path);
      }
    }
  }
  return {
    modules: [...modules].sort(),
    assets: [...assets.values()],
    packages: withDependencies(packages, root),
  };
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// What the sources need.

/** One use of the runtime that the permissions in {@link PERMISSIONS} do not grant. */
export interface AuditProblem {
  /** Absolute path of the module. */
  readonly file: string;
  /** 1-based line. */
  readonly line: number;
  /** What is wrong. */
  readonly reason: string;
}

const SUBPROCESS = /\bDeno\.(Command|run)\b|\bnode:child_process\b|["']child_process["']/;
const SYS =
  /\bDeno\.(hostname|osRelease|osUptime|loadavg|networkInterfaces|systemMemoryInfo|uid|gid)\b|["']node:os["']/;
const ENV_GET =
  /\bDeno\.env\.(get|has)\(\s*["'`]([^"'`]+)["'`]|\bprocess\.env(?:\.([A-Za-z_]\w*)|\[\s*["'`]([^"'`]+)["'`]\s*\])/g;
const ENV_ANY = /\bDeno\.env\.(toObject|set|delete)\b|\bDeno\.env\.(get|has)\(\s*[^"'`\s]/;
const DLOPEN = /\bDeno\.dlopen\(\s*(["'`])([^"'`]*)\1/g;
const DLOPEN_ANY = /\bDeno\.dlopen\(\s*[^"'`\s]/;

/**
 * Checks a module's source against {@link PERMISSIONS}: no subprocess
 * (`Deno.Command`, `node:child_process`), no OS information that needs
 * `--allow-sys` (`Deno.uid()`, `node:os`, ...), only the environment
 * variables in {@link ENV_VARS}, and only `libc.so.6` through FFI.
 */
export function auditSource(source: string, file: string): AuditProblem[] {
  const problems: AuditProblem[] = [];
  const lines = stripComments(source).split("\n");
  lines.forEach((text, i) => {
    const at = { file, line: i + 1 };
    if (SUBPROCESS.test(text)) {
      problems.push({ ...at, reason: "starts a subprocess (the executable has no --allow-run)" });
    }
    const sys = SYS.exec(text);
    if (sys !== null) {
      problems.push({ ...at, reason: `${sys[0]} needs --allow-sys, which the executable has not` });
    }
    for (const m of text.matchAll(ENV_GET)) {
      const name = m[2] ?? m[3] ?? m[4] ?? "";
      if (!ENV_VARS.includes(name)) {
        problems.push({ ...at, reason: `reads env ${name}, not in ENV_VARS` });
      }
    }
    if (ENV_ANY.test(text)) {
      problems.push({ ...at, reason: "uses the environment beyond reading the names in ENV_VARS" });
    }
    for (const m of text.matchAll(DLOPEN)) {
      if (m[2] !== "libc.so.6") problems.push({ ...at, reason: `loads ${m[2]} through FFI` });
    }
    if (DLOPEN_ANY.test(text)) {
      problems.push({ ...at, reason: "loads a library named at run time through FFI" });
    }
  });
  return problems;
}

/** {@link auditSource} over every module of `graph`, plus its assets that are missing. */
export function auditSources(graph: ProductGraph): AuditProblem[] {
  const problems: AuditProblem[] = [];
  for (const m of graph.modules) problems.push(...auditSource(Deno.readTextFileSync(m), m));
  for (const a of graph.assets) {
    if (!isFile(a.path)) {
      problems.push({ file: a.from, line: 0, reason: `${a.relative} is not a file` });
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------
// deno compile.

/** The target of this machine, if it is one of {@link TARGETS}. */
export function hostTarget(): Target | undefined {
  return (TARGETS as readonly string[]).includes(Deno.build.target)
    ? Deno.build.target as Target
    : undefined;
}

/** The target an ELF executable is built for, from its header; undefined if not known. */
export function elfTarget(header: Uint8Array): Target | undefined {
  if (header.length < 20) return undefined;
  if (header[0] !== 0x7f || header[1] !== 0x45 || header[2] !== 0x4c || header[3] !== 0x46) {
    return undefined;
  }
  // e_ident[EI_DATA] 1 = little-endian; e_machine at offset 18.
  const machine = new DataView(header.buffer, header.byteOffset).getUint16(18, header[5] === 1);
  return machine === 0x3e ? TARGETS[0] : machine === 0xb7 ? TARGETS[1] : undefined;
}

/** `node_modules` entries (packages, with scopes expanded) that `keep` does not name. */
export function unusedPackages(root: string, keep: readonly string[]): string[] {
  const out: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(`${root}/node_modules`)];
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name.startsWith(".")) {
      if (e.name === ".bin") out.push(e.name);
      continue;
    }
    if (e.name.startsWith("@")) {
      for (const s of Deno.readDirSync(`${root}/node_modules/${e.name}`)) {
        const name = `${e.name}/${s.name}`;
        if (!keep.includes(name)) out.push(name);
      }
    } else if (!keep.includes(e.name)) {
      out.push(e.name);
    }
  }
  return out.sort();
}

/** What {@link compileArgs} builds a command line from. */
export interface CompileOptions {
  /** The output file. */
  readonly output: string;
  /** `--target`, when not this machine's. */
  readonly target?: Target;
  /** The program's graph. */
  readonly graph: ProductGraph;
  /** node_modules entries to leave out. */
  readonly exclude: readonly string[];
}

/** The arguments of `deno compile` (without the `deno`). */
export function compileArgs(o: CompileOptions): string[] {
  const args = ["compile", ...PERMISSIONS, "--output", o.output];
  if (o.target !== undefined) args.push("--target", o.target);
  const included = new Set<string>();
  for (const a of o.graph.assets) {
    if (included.has(a.path) || !isFile(a.path)) continue;
    included.add(a.path);
    args.push("--include", a.path);
  }
  let real: string | undefined;
  try {
    real = Deno.realPathSync(`${ROOT}/node_modules`);
  } catch { /* no node_modules */ }
  for (const e of o.exclude) {
    args.push("--exclude", `node_modules/${e}`);
    // A linked node_modules is embedded under its real path.
    if (real !== undefined && real !== `${ROOT}/node_modules`) {
      args.push("--exclude", `${real}/${e}`);
    }
  }
  args.push(ENTRY);
  return args;
}

/**
 * `deno compile`'s error output without a Rust backtrace: the `Stack
 * backtrace:` section anyhow adds under `RUST_BACKTRACE=1` (its numbered
 * frames and their `at` lines) says nothing to a user and buries the hint
 * printed after it.
 */
export function withoutBacktrace(stderr: string): string {
  const out: string[] = [];
  let inTrace = false;
  for (const line of stderr.split("\n")) {
    if (/^\s*Stack backtrace:\s*$/.test(line)) {
      inTrace = true;
      continue;
    }
    if (inTrace && (/^\s+\d+:/.test(line) || /^\s+at /.test(line) || line.trim() === "")) {
      continue;
    }
    inTrace = false;
    out.push(line);
  }
  return out.join("\n");
}

/** Whether `deno compile`'s error output says it could not get the runtime stub. */
export function isStubUnavailable(stderr: string): boolean {
  return /Setting up base binary|Could not find denort/.test(stderr);
}

/** The message for a missing runtime stub. */
export function stubMessage(target: string, denortBin: string | undefined): string {
  const deno = Deno.version.deno;
  const why = denortBin !== undefined
    ? `DENORT_BIN=${denortBin} could not be read`
    : `it could not download denort-${target}.zip for Deno ${deno} (no internet here?)`;
  // The command to run is the last line, where a terminal leaves the eye.
  return `oor compile: deno compile has no runtime stub: ${why}.\n` +
    "  Build once where the Deno release server is reachable (the stub is then cached in\n" +
    `  DENO_DIR), or offline set DENORT_BIN to the 'denort' binary of Deno ${deno} for\n` +
    `  ${target} (unzipped from denort-${target}.zip of that Deno release) and run:\n` +
    `    DENORT_BIN=/path/to/denort deno task compile${
      target === hostTarget() ? "" : ` --target ${target}`
    }\n`;
}

/** Runs the script with `argv` (without the program name); resolves to the exit code. */
export async function compile(argv: readonly string[]): Promise<number> {
  const usage = "Usage: deno task compile [--target TRIPLE] [--output FILE]\n" +
    `  TRIPLE: ${TARGETS.join(" | ")} (default: this machine)\n`;
  let values;
  try {
    ({ values } = parseArgs({
      args: argv as string[],
      options: {
        target: { type: "string" },
        output: { type: "string", short: "o" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    console.error(`oor compile: ${(e as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const host = hostTarget();
  const targetText = values.target ?? host;
  if (targetText === undefined || !(TARGETS as readonly string[]).includes(targetText)) {
    console.error(
      `oor compile: ${
        values.target === undefined
          ? `this machine (${Deno.build.target}) is not a release target; pass --target`
          : `unknown target '${values.target}'`
      }\n${usage}`,
    );
    return 2;
  }
  const target = targetText as Target;
  const output = values.output ?? (target === host ? "dist/oor" : `dist/oor-${target}`);

  const denortBin = Deno.env.get("DENORT_BIN");
  if (denortBin !== undefined) {
    let header: Uint8Array;
    try {
      const f = Deno.openSync(denortBin);
      header = new Uint8Array(64);
      f.readSync(header);
      f.close();
    } catch (e) {
      console.error(`oor compile: DENORT_BIN=${denortBin}: ${(e as Error).message}`);
      return 2;
    }
    const built = elfTarget(header);
    if (built !== target) {
      console.error(
        `oor compile: DENORT_BIN=${denortBin} is ${
          built ?? "not a Linux x86_64 or aarch64 executable"
        }, not ${target}: Deno would use it as it is and build a wrong executable`,
      );
      return 2;
    }
    console.error(`oor compile: runtime stub from DENORT_BIN=${denortBin}`);
  }

  const graph = await productGraph();
  const problems = auditSources(graph);
  if (problems.length > 0) {
    for (const p of problems) console.error(`${p.file}:${p.line}: ${p.reason}`);
    console.error(
      "oor compile: stopped: the executable would fail at run time (a file it loads is " +
        "missing, or the code needs a permission not in PERMISSIONS/ENV_VARS of scripts/compile.ts)",
    );
    return 1;
  }
  // The default is under the repository; a path given is taken from here.
  const outPath = output.startsWith("/")
    ? output
    : `${values.output === undefined ? ROOT : Deno.cwd()}/${output}`;
  Deno.mkdirSync(outPath.replace(/\/[^/]*$/, "") || "/", { recursive: true });
  const args = compileArgs({
    output: outPath,
    ...(target !== host ? { target } : {}),
    graph,
    exclude: unusedPackages(ROOT, graph.packages),
  });
  console.error(`oor compile: deno ${args.join(" ")}`);
  const result = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    // No Rust backtrace in a failure's message, whatever the caller's environment says.
    env: { RUST_BACKTRACE: "0", RUST_LIB_BACKTRACE: "0" },
    stdout: "inherit",
    stderr: "piped",
  }).output();
  const stderr = withoutBacktrace(new TextDecoder().decode(result.stderr));
  for (let rest = new TextEncoder().encode(stderr); rest.length > 0;) {
    rest = rest.subarray(Deno.stderr.writeSync(rest));
  }
  if (!result.success) {
    if (isStubUnavailable(stderr)) {
      console.error(stubMessage(target, denortBin));
      return EXIT_NO_STUB;
    }
    console.error("oor compile: deno compile failed");
    return 1;
  }
  if (target === host) {
    const smoke = await new Deno.Command(outPath, {
      args: ["--version"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const said = new TextDecoder().decode(smoke.stdout).trim();
    if (!smoke.success || said !== `oor ${VERSION}`) {
      console.error(
        `oor compile: ${output} --version printed '${said}' (exit ${smoke.code}), ` +
          `not 'oor ${VERSION}'` +
          (denortBin !== undefined
            ? `: is DENORT_BIN the denort of Deno ${Deno.version.deno}?`
            : ""),
      );
      return 1;
    }
  }
  const size = Deno.statSync(outPath).size;
  console.error(
    `oor compile: built ${output} (${target}, ${(size / 1e6).toFixed(1)} MB) with ${
      PERMISSIONS.join(" ")
    }\n  To run it without root: sudo setcap cap_net_admin,cap_net_raw+ep ${output}`,
  );
  return 0;
}

if (import.meta.main) {
  Deno.exit(await compile(Deno.args));
}
