import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { type Io, main, ROLE_ENTRIES } from "./main.ts";
import { ROLES } from "./config/mod.ts";
import { VERSION } from "./version.ts";

/** Runs main() in-process and captures what it writes. */
async function run(
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: Io = {
    stdout: (t) => out += t,
    stderr: (t) => err += t,
  };
  const code = await main(args, io);
  return { code, out, err };
}

const XTR = new URL("./examples/xtr.toml", import.meta.url).pathname;

async function withFile(
  text: string,
  fn: (path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/oor.toml`;
    await Deno.writeTextFile(path, text);
    await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("oor --version prints the version from version.ts", async () => {
  deepStrictEqual(await run("--version"), {
    code: 0,
    out: `oor ${VERSION}\n`,
    err: "",
  });
  strictEqual(VERSION, "0.1.0");
});

Deno.test("oor --version works as a real process", async () => {
  const p = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./main.ts", import.meta.url).pathname, "--version"],
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  strictEqual(p.code, 0);
  strictEqual(new TextDecoder().decode(p.stdout), "oor 0.1.0\n");
});

Deno.test("oor --help and -h list every subcommand", async () => {
  for (const flag of ["--help", "-h", "help"]) {
    const r = await run(flag);
    strictEqual(r.code, 0, flag);
    strictEqual(r.err, "");
    for (
      const sub of [
        "xtr",
        "mn",
        "rtr",
        "ms",
        "mr",
        "ddt",
        "ddt-mr",
        "check-config",
        "decode",
        "encode",
      ]
    ) {
      strictEqual(r.out.includes(`\n  ${sub} `), true, `${flag} lists ${sub}`);
    }
  }
});

Deno.test("oor <sub> --help describes the flags of each subcommand", async () => {
  for (const sub of ["xtr", "mn", "rtr", "ms", "mr", "ddt", "ddt-mr"]) {
    const r = await run(sub, "--help");
    strictEqual(r.code, 0, sub);
    strictEqual(
      r.out.startsWith(
        `Usage: oor ${sub} --config FILE [--log-format text|json] [--state-file FILE]\n`,
      ),
      true,
      sub,
    );
    strictEqual(r.out.includes("-c, --config FILE"), true, sub);
    strictEqual(r.out.includes("--log-format FORMAT"), true, sub);
    strictEqual(r.out.includes("-h, --help"), true, sub);
  }
  const check = await run("check-config", "-h");
  strictEqual(check.code, 0);
  strictEqual(check.out.includes("--role ROLE"), true);
  strictEqual((await run("help", "ms")).out, (await run("ms", "--help")).out);
  strictEqual((await run("decode", "--help")).code, 0);
});

Deno.test("oor with no arguments prints help to stderr and exits 2", async () => {
  const r = await run();
  strictEqual(r.code, 2);
  strictEqual(r.out, "");
  strictEqual(r.err.includes("Usage: oor <subcommand> [flags]"), true);
});

Deno.test("oor rejects an unknown subcommand in one line, exit 2", async () => {
  deepStrictEqual(await run("foo"), {
    code: 2,
    out: "",
    err: "oor: unknown subcommand 'foo' (see oor --help)\n",
  });
  deepStrictEqual(await run("help", "foo"), {
    code: 2,
    out: "",
    err: "oor: unknown subcommand 'foo' (see oor --help)\n",
  });
});

Deno.test("oor rejects unknown and malformed flags in one line, exit 2", async () => {
  const cases: [string[], string][] = [
    [["--foo"], "oor: unknown flag '--foo' (see oor --help)\n"],
    [
      ["xtr", "--foo"],
      "oor xtr: unknown flag '--foo' (see oor xtr --help)\n",
    ],
    [
      ["xtr", "-c", XTR, "-x"],
      "oor xtr: unknown flag '-x' (see oor xtr --help)\n",
    ],
    [
      ["xtr", "--config"],
      "oor xtr: flag --config needs a value (see oor xtr --help)\n",
    ],
    [
      ["xtr", "--help=yes"],
      "oor xtr: flag --help takes no value (see oor xtr --help)\n",
    ],
    [
      ["xtr", "-c", XTR, "extra"],
      "oor xtr: unexpected argument 'extra' (see oor xtr --help)\n",
    ],
    [
      ["xtr"],
      "oor xtr: --config FILE is required (see oor xtr --help)\n",
    ],
    [
      ["xtr", "-c", XTR, "--log-format", "xml"],
      "oor xtr: --log-format must be text or json (got 'xml')\n",
    ],
    [
      ["check-config", "--role", "pitr", XTR],
      "oor check-config: unknown role 'pitr' (one of xtr, mn, rtr, ms, mr, ddt, ddt-mr)\n",
    ],
    [
      ["check-config"],
      "oor check-config: give at least one FILE (see oor check-config --help)\n",
    ],
  ];
  for (const [args, err] of cases) {
    deepStrictEqual(await run(...args), { code: 2, out: "", err }, args.join(" "));
  }
});

Deno.test("oor check-config prints a summary of a valid file and exits 0", async () => {
  deepStrictEqual(await run("check-config", XTR), {
    code: 0,
    out: `${XTR}: ok (role xtr: 3 database mappings, 1 static map-cache entry, 1 instance, ` +
      "1 map-server, 2 map-resolvers, 1 IPv4 proxy-ETR, 1 IPv6 proxy-ETR, 1 explicit locator path)\n",
    err: "",
  });
});

Deno.test("oor check-config prints every error as file:line and exits 2", async () => {
  await withFile(
    [
      "[[map-server]]",
      'address = "192.0.2.2"',
      'key = "k"',
      "key-type = 3",
      "[rloc-probing]",
      "rloc-probe-retries = 9",
    ].join("\n"),
    async (path) => {
      deepStrictEqual(await run("check-config", path), {
        code: 2,
        out: "",
        err: `${path}:4: map-server[0].key-type: must be 1 (HMAC-SHA-1) or 2 (HMAC-SHA-256)\n` +
          `${path}:6: rloc-probing.rloc-probe-retries: must be from 0 to 5 (got 9)\n`,
      });
    },
  );
});

Deno.test("oor check-config --role checks the role and shows warnings", async () => {
  const r = await run("check-config", "--role", "ms", XTR);
  strictEqual(r.code, 2);
  const lines = r.err.trimEnd().split("\n");
  strictEqual(
    lines.includes(
      `${XTR}: lisp-site: role ms needs at least one [[lisp-site]] or [[ms-static-registered-site]]`,
    ),
    true,
  );
  // The line of the example's first [[database-mapping]] table.
  const at = Deno.readTextFileSync(XTR).split("\n").indexOf("[[database-mapping]]") + 1;
  strictEqual(at > 0, true);
  strictEqual(lines.includes(`warning: ${XTR}:${at}: database-mapping: ignored by role ms`), true);
});

Deno.test("oor check-config reports a TOML syntax error with line and column", async () => {
  await withFile("debug = 1\n[api\n", async (path) => {
    deepStrictEqual(await run("check-config", path), {
      code: 2,
      out: "",
      err: `${path}:2:5: illegal character in key\n`,
    });
  });
});

Deno.test("oor check-config reports a missing file clearly and exits 2", async () => {
  deepStrictEqual(await run("check-config", "/nonexistent/oor.toml"), {
    code: 2,
    out: "",
    err: "/nonexistent/oor.toml: cannot read: no such file\n",
  });
});

Deno.test("oor has an entry point for every role", () => {
  // Starting a tunnel-router role here would configure this host's network
  // (TUN, rules, routes) and register with examples/xtr.toml's map-server:
  // the roles themselves are run in network namespaces by tests/e2e_test.ts.
  deepStrictEqual(Object.keys(ROLE_ENTRIES).sort(), [...ROLES].sort());
});

Deno.test("oor <role> stops with exit 2 on an invalid or missing config", async () => {
  const r = await run("ms", "-c", XTR);
  strictEqual(r.code, 2);
  strictEqual(
    r.err.includes(
      `${XTR}:14: operating-mode: is "xTR" but the role given on the command line is ms\n`,
    ),
    true,
  );
  deepStrictEqual(await run("xtr", "-c", "/nonexistent/oor.toml"), {
    code: 2,
    out: "",
    err: "/nonexistent/oor.toml: cannot read: no such file\n",
  });
});

Deno.test("oor decode | oor encode through main() gives the hex back; bad flags exit 2", async () => {
  // Map-Request (RFC 9301 §5.2): type 1, 1 record; nonce; source EID AFI 0;
  // ITR-RLOC 192.0.2.2; record 10.1.1.0/24.
  const hex = "10000001010203040506070800000001c000020200180001" + "0a010100";
  const decoded = await run("decode", hex);
  deepStrictEqual([decoded.code, decoded.err], [0, ""]);
  const encoded = await run("encode", decoded.out);
  deepStrictEqual(encoded, { code: 0, out: `${hex}\n`, err: "" });
  const bad = await run("decode", "--anything", "x");
  deepStrictEqual(bad.code, 2);
  deepStrictEqual(bad.err, "oor decode: unknown flag '--anything' (see oor decode --help)\n");
});

Deno.test("oor check-config shows the first 100 errors of a file and how many more there are", async () => {
  const lines = ['map-resolver = ["192.0.2.1"]'];
  for (let i = 0; i < 5001; i++) {
    lines.push(
      "[[database-mapping]]",
      'eid-prefix = "10.0.0.0/24"',
      'rloc-address = [{ address = "192.0.2.9" }]',
    );
  }
  await withFile(lines.join("\n") + "\n", async (path) => {
    const r = await run("check-config", path);
    strictEqual(r.code, 2);
    strictEqual(r.out, "");
    const err = r.err.trimEnd().split("\n");
    strictEqual(err.length, 101);
    strictEqual(
      err[0],
      `${path}:6: database-mapping[1].eid-prefix: duplicate of database-mapping[0] (same eid-prefix and iid)`,
    );
    strictEqual(err[99]!.startsWith(`${path}:303: database-mapping[100].eid-prefix: `), true);
    strictEqual(err[100], `${path}: ... and 4900 more errors (first 100 shown)`);
  });
});

Deno.test("oor check-config of an mr file without operating-mode demands no map-server key", async () => {
  const mr = ['ddt-root-addresses = ["192.0.2.5"]', "[[map-server]]", 'address = "192.0.2.2"'];
  await withFile(mr.join("\n") + "\n", async (path) => {
    deepStrictEqual(await run("check-config", "--role", "mr", path), {
      code: 0,
      out: `${path}: ok (role mr: 1 map-server, 1 DDT root)\n`,
      err: "",
    });
    const plain = await run("check-config", path);
    strictEqual(plain.code, 0);
    strictEqual(plain.out, `${path}: ok (no role given: 1 map-server, 1 DDT root)\n`);
    strictEqual(
      plain.err,
      `note: ${path}: no operating-mode and no --role: checked what every role needs; skipped ` +
        "the role checks (the sections a role needs, the [[map-server]] key of xtr and mn, keys " +
        "the role ignores): give --role ROLE to run them\n",
    );
    const xtr = await run("check-config", "--role", "xtr", path);
    strictEqual(xtr.code, 2);
    strictEqual(xtr.err.includes(`${path}:2: map-server[0].key: required key is missing\n`), true);
  });
});

Deno.test("a mistyped subcommand or flag gets the closest one: did you mean", async () => {
  const cases: [string[], string][] = [
    [["xrt", "-c", XTR], "oor: unknown subcommand 'xrt'; did you mean 'xtr'? (see oor --help)\n"],
    [
      ["chek-config", XTR],
      "oor: unknown subcommand 'chek-config'; did you mean 'check-config'? (see oor --help)\n",
    ],
    [["help", "lgi"], "oor: unknown subcommand 'lgi'; did you mean 'lig'? (see oor --help)\n"],
    [["--verison"], "oor: unknown flag '--verison'; did you mean '--version'? (see oor --help)\n"],
    [["--ms"], "oor: unknown flag '--ms'; did you mean 'ms'? (see oor --help)\n"],
    [
      ["xtr", "--confg", XTR],
      "oor xtr: unknown flag '--confg'; did you mean '--config'? (see oor xtr --help)\n",
    ],
    [
      ["xtr", "-config", XTR],
      "oor xtr: unknown flag '-config'; did you mean '--config'? (see oor xtr --help)\n",
    ],
    [
      ["xtr", "-c", XTR, "--log-fromat", "json"],
      "oor xtr: unknown flag '--log-fromat'; did you mean '--log-format'? (see oor xtr --help)\n",
    ],
    [
      ["check-config", "--rol", "ms", XTR],
      "oor check-config: unknown flag '--rol'; did you mean '--role'? (see oor check-config --help)\n",
    ],
    [
      ["decode", "--pcp", "x.pcap"],
      "oor decode: unknown flag '--pcp'; did you mean '--pcap'? (see oor decode --help)\n",
    ],
    [
      ["lig", "10.1.1.1", "--rm", "127.0.0.1"],
      "oor lig: unknown flag '--rm'; did you mean '--mr'? (see oor lig --help)\n",
    ],
    [
      ["convert-config", "a.conf", "--rloe", "ms"],
      "oor convert-config: unknown flag '--rloe'; did you mean '--role'? (see oor convert-config --help)\n",
    ],
    [
      ["completions", "bsah"],
      "oor completions: give the shell: bash or zsh (got 'bsah'; did you mean 'bash'?)\n",
    ],
  ];
  for (const [args, err] of cases) {
    deepStrictEqual(await run(...args), { code: 2, out: "", err }, args.join(" "));
  }
  // Nothing close: no guess.
  strictEqual(
    (await run("frobnicate")).err,
    "oor: unknown subcommand 'frobnicate' (see oor --help)\n",
  );
});

Deno.test("oor help --help, oor help help and oor help ROLE --help work", async () => {
  const help = await run("help", "--help");
  deepStrictEqual([help.code, help.err], [0, ""]);
  strictEqual(help.out.startsWith("Usage: oor help [SUBCOMMAND]\n"), true, help.out);
  deepStrictEqual(await run("help", "-h"), help);
  deepStrictEqual(await run("help", "help"), help);
  deepStrictEqual(await run("help", "xtr", "--help"), await run("xtr", "--help"));
  deepStrictEqual(await run("help", "ms", "mr"), {
    code: 2,
    out: "",
    err: "oor help: give one subcommand (see oor help --help)\n",
  });
  // The global help lists help and completions with the other tools.
  const global = (await run("--help")).out;
  strictEqual(global.includes("\n  help  "), true);
  strictEqual(global.includes("\n  completions  "), true);
});

Deno.test("oor help ROLE is the role's manual, fitting 80 columns", async () => {
  for (const role of ROLES) {
    const r = await run("help", role);
    strictEqual(r.code, 0);
    for (const heading of ["Flags:", "Configuration", "Host:", "Running:", "Exit status:"]) {
      strictEqual(r.out.includes(`\n${heading}`), true, `${role}: ${heading}`);
    }
  }
  for (
    const args of [
      ["--help"],
      ...[...ROLES, "lig", "check-config", "completions"].map((c) => ["help", c]),
    ]
  ) {
    for (const line of (await run(...args)).out.split("\n")) {
      strictEqual(line.length <= 80, true, `${args.join(" ")}: ${line}`);
    }
  }
});

Deno.test("oor completions bash|zsh prints a script; anything else is a usage error", async () => {
  const bash = await run("completions", "bash");
  deepStrictEqual([bash.code, bash.err], [0, ""]);
  strictEqual(bash.out.includes("complete -F _oor oor"), true);
  const zsh = await run("completions", "zsh");
  deepStrictEqual([zsh.code, zsh.err], [0, ""]);
  strictEqual(zsh.out.startsWith("#compdef oor\n"), true);
  deepStrictEqual(await run("completions"), {
    code: 2,
    out: "",
    err: "oor completions: give the shell: bash or zsh\n",
  });
});

Deno.test("oor ms --state-file puts the state file where it says", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/ms.toml`;
    await Deno.writeTextFile(
      config,
      'control-address = "127.0.7.1"\n[api]\nenabled = false\n' +
        '[[ms-static-registered-site]]\neid-prefix = "10.9.0.0/24"\n' +
        'rloc-address = [{ address = "127.0.7.70" }]\n',
    );
    // A broken state file there, and none at the default place: the role
    // says so and does not start, which it would not if it read the default.
    await Deno.writeTextFile(`${dir}/elsewhere.json`, "{ not json");
    const p = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./main.ts", import.meta.url).pathname,
        "ms",
        "-c",
        config,
        "--state-file",
        "elsewhere.json",
      ],
      cwd: dir,
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(p.stderr);
    strictEqual(p.code, 1, err);
    strictEqual(/ error ms start-failed error=".*elsewhere\.json.*/.test(err), true, err);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
