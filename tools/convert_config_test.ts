import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  CONVERT_CONFIG_FLAGS,
  CONVERT_CONFIG_USAGE,
  type ConvertConfigIo,
  runConvertConfig,
} from "./convert_config.ts";
import { parseOorConf } from "../config/oor_conf.ts";
import { parseConfig } from "../config/validate.ts";

const FULL = fileURLToPath(new URL("../config/testdata/oor.conf", import.meta.url));

/** Runs `oor convert-config ARGS` in-process; files come from `files` when given. */
async function run(
  args: readonly string[],
  files?: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io: ConvertConfigIo = {
    stdout: (t) => stdout += t,
    stderr: (t) => stderr += t,
    ...(files !== undefined
      ? {
        readFile: (path: string) => {
          const text = files[path];
          return text === undefined
            ? Promise.reject(new Deno.errors.NotFound(path))
            : Promise.resolve(new TextEncoder().encode(text));
        },
      }
      : {}),
  };
  const code = await runConvertConfig(args, io);
  return { code, stdout, stderr };
}

Deno.test("runConvertConfig() prints TOML that parses to the same Config as the oor.conf", async () => {
  const r = await run([FULL]);
  strictEqual(r.code, 0);
  // The full example has keys of every role; those xTR ignores are warned about.
  for (const line of r.stderr.split("\n").filter((l) => l !== "")) {
    ok(line.startsWith(`warning: ${FULL}:`) && line.endsWith("ignored by role xtr"), line);
  }
  ok(
    r.stdout.startsWith(
      `# oor.toml converted by 'oor convert-config' from the OOR config ${FULL}.\n`,
    ),
  );
  const fromToml = parseConfig(r.stdout);
  const fromConf = parseOorConf(Deno.readTextFileSync(FULL));
  ok(fromToml.ok && fromConf.ok);
  deepStrictEqual(fromToml.config, fromConf.config);
});

Deno.test("runConvertConfig() validates against --role and prints nothing on errors", async () => {
  const files = {
    "oor.conf": "operating-mode = xTR\nmap-resolver = 192.0.2.1\n",
  };
  const r = await run(["oor.conf", "--role", "ms"], files);
  strictEqual(r.code, 2);
  strictEqual(r.stdout, "");
  deepStrictEqual(r.stderr.split("\n").filter((l) => l !== ""), [
    "warning: oor.conf:2: map-resolver: ignored by role ms",
    'oor.conf:1: operating-mode: is "xTR" but the role given on the command line is ms',
    "oor.conf: lisp-site: role ms needs at least one [[lisp-site]] or [[ms-static-registered-site]]",
  ]);
});

Deno.test("runConvertConfig() reports unknown keys and syntax errors with their lines, exit 2", async () => {
  const files = {
    "a.conf": "debug = 1\nmap-server {\n  address = 192.0.2.2\n  kye = x\n}\n",
    "b.conf": "debug = 1\nmap-resolver = {192.0.2.1 192.0.2.2}\n",
  };
  const a = await run(["a.conf"], files);
  deepStrictEqual([a.code, a.stdout, a.stderr], [
    2,
    "",
    "a.conf:4: map-server: unknown key 'kye' (did you mean 'key'?)\n",
  ]);
  const b = await run(["b.conf"], files);
  deepStrictEqual([b.code, b.stdout, b.stderr], [
    2,
    "",
    "b.conf:2:27: expected ',' or '}' in the list of 'map-resolver', found '192.0.2.2' " +
    "(separate list items with commas)\n",
  ]);
});

Deno.test("runConvertConfig() prints warnings and still converts", async () => {
  const r = await run(["w.conf"], { "w.conf": "debug = 1\ndebug = 2\n" });
  strictEqual(r.code, 0);
  strictEqual(
    r.stderr,
    "warning: w.conf:2: debug: set again (first at line 1): the last value counts, as in OOR\n",
  );
  ok(r.stdout.endsWith("\ndebug = 2\n"), r.stdout);
});

Deno.test("runConvertConfig() rejects bad usage and unreadable files with exit 2", async () => {
  const see = "(see oor convert-config --help)";
  const cases: [readonly string[], string][] = [
    [[], `oor convert-config: give the oor.conf FILE to convert ${see}\n`],
    [["a.conf", "b.conf"], `oor convert-config: give one FILE, not 2 ${see}\n`],
    [["a.conf", "--bogus"], `oor convert-config: unknown flag '--bogus' ${see}\n`],
    [["a.conf", "--role"], `oor convert-config: flag --role needs a value ${see}\n`],
    [
      ["a.conf", "--role", "pitr"],
      "oor convert-config: unknown role 'pitr' (one of xtr, mn, rtr, ms, mr, ddt, ddt-mr)\n",
    ],
    [["missing.conf"], "missing.conf: cannot read: no such file\n"],
  ];
  for (const [args, want] of cases) {
    const r = await run(args, { "a.conf": "debug = 1\n" });
    deepStrictEqual([r.code, r.stdout, r.stderr], [2, "", want], args.join(" "));
  }
});

Deno.test("runConvertConfig() reads a real file and says when it is not UTF-8", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/bin.conf`, new Uint8Array([0x64, 0xff, 0x0a]));
    const r = await run([`${dir}/bin.conf`]);
    deepStrictEqual([r.code, r.stderr], [
      2,
      `${dir}/bin.conf: cannot read: not valid UTF-8 text\n`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("convert-config's help names its flag", () => {
  deepStrictEqual(Object.keys(CONVERT_CONFIG_FLAGS), ["role"]);
  ok(CONVERT_CONFIG_USAGE.includes("--role ROLE"));
});
