import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { completionCommands } from "../main.ts";
import { completionScript } from "./completions.ts";
import { commandsMissing, testNeeding } from "../tests/prereq.ts";

/** Runs a shell script; its standard output. */
function shell(cmd: string, script: string, cwd?: string): string {
  const r = new Deno.Command(cmd, {
    args: ["-c", script],
    ...(cwd !== undefined ? { cwd } : {}),
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const err = new TextDecoder().decode(r.stderr);
  strictEqual(r.code, 0, err);
  return new TextDecoder().decode(r.stdout);
}

/** What bash's completion of `words` (the last one being completed) offers. */
function bashComplete(script: string, words: readonly string[], cwd?: string): string[] {
  const quoted = words.map((w) => `'${w}'`).join(" ");
  const out = shell(
    "bash",
    `${script}\nCOMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _oor; ` +
      `printf '%s\\n' "\${COMPREPLY[@]}"`,
    cwd,
  );
  return out.split("\n").filter((l) => l !== "").sort();
}

testNeeding(commandsMissing(["bash"], "apt-get install bash"), {
  name: "oor completions bash completes subcommands, flags, their values and files",
  fn() {
    const script = completionScript("bash", completionCommands());
    deepStrictEqual(bashComplete(script, ["oor", "xt"]), ["xtr"]);
    deepStrictEqual(bashComplete(script, ["oor", "c"]), [
      "check-config",
      "completions",
      "convert-config",
    ]);
    deepStrictEqual(bashComplete(script, ["oor", "--v"]), ["--version"]);
    deepStrictEqual(bashComplete(script, ["oor", "xtr", "--log-format", ""]), ["json", "text"]);
    deepStrictEqual(bashComplete(script, ["oor", "mn", "--c"]), ["--config"]);
    // A role takes no positionals: its flags straight away.
    deepStrictEqual(bashComplete(script, ["oor", "ms", ""]), [
      "--config",
      "--help",
      "--log-format",
      "--state-file",
      "-c",
      "-h",
    ]);
    deepStrictEqual(bashComplete(script, ["oor", "check-config", "--role", "dd"]), [
      "ddt",
      "ddt-mr",
    ]);
    deepStrictEqual(bashComplete(script, ["oor", "decode", "--as", "v"]), ["vxlan-gpe"]);
    deepStrictEqual(bashComplete(script, ["oor", "help", "l"]), ["lig"]);
    deepStrictEqual(bashComplete(script, ["oor", "completions", ""]), ["bash", "zsh"]);
    deepStrictEqual(bashComplete(script, ["oor", "lig", "--"]), [
      "--count",
      "--help",
      "--iid",
      "--json",
      "--mr",
      "--port",
      "--source",
      "--timeout",
    ]);
    // FILE arguments: the files there.
    const dir = Deno.makeTempDirSync();
    try {
      Deno.writeTextFileSync(`${dir}/site1.toml`, "");
      Deno.writeTextFileSync(`${dir}/site2.conf`, "");
      deepStrictEqual(bashComplete(script, ["oor", "xtr", "-c", "site"], dir), [
        "site1.toml",
        "site2.conf",
      ]);
      deepStrictEqual(bashComplete(script, ["oor", "check-config", "site1"], dir), [
        "site1.toml",
      ]);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

/**
 * zsh's completion functions replaced by ones that print what they were
 * asked, so the script's dispatch and its specs can be checked without a
 * terminal.
 */
const ZSH_STUBS = `
compdef() { print -r -- "compdef $*" }
_describe() { print -r -- "_describe $*" }
_arguments() { local a; for a in "$@"; do print -r -- "arg $a"; done }
`;

testNeeding(commandsMissing(["zsh"], "apt-get install zsh"), {
  name: "oor completions zsh parses, registers itself, and gives each subcommand its flags",
  fn() {
    const script = completionScript("zsh", completionCommands());
    strictEqual(script.split("\n")[0], "#compdef oor");
    // Sourced (not autoloaded from fpath): it registers itself.
    strictEqual(shell("zsh", `${ZSH_STUBS}\n${script}`), "compdef _oor oor\n");
    const complete = (words: string[]) =>
      shell(
        "zsh",
        `${ZSH_STUBS}\n${script}\nwords=(${words.map((w) => `'${w}'`).join(" ")}); ` +
          `CURRENT=${words.length}; _oor`,
      );
    const top = complete(["oor", ""]);
    ok(top.includes("_describe -t subcommands oor subcommand subcommands"), top);
    const xtr = complete(["oor", "xtr", ""]).split("\n");
    ok(
      xtr.includes("arg (-c --config)-c[the oor.toml to run with (required)]:config:_files"),
      xtr.join("\n"),
    );
    ok(
      xtr.includes(
        "arg --log-format[log lines as text or json (default text)]:log-format:(text json)",
      ),
    );
    const check = complete(["oor", "check-config", ""]).split("\n");
    ok(check.includes("arg *:argument:_files"), check.join("\n"));
    ok(
      check.some((l) =>
        l.startsWith("arg --role[") && l.endsWith(":role:(xtr mn rtr ms mr ddt ddt-mr)")
      ),
    );
    const help = complete(["oor", "help", ""]).split("\n");
    ok(help.some((l) => l.startsWith("arg *:argument:(xtr mn rtr ms mr ddt ddt-mr check-config")));
  },
});

Deno.test("the completion scripts name every subcommand and every flag of main.ts's table", () => {
  const commands = completionCommands();
  for (const shellName of ["bash", "zsh"] as const) {
    const script = completionScript(shellName, commands);
    for (const c of commands) {
      ok(script.includes(c.name), `${shellName}: ${c.name}`);
      for (const f of c.flags) {
        ok(script.includes(`--${f.name}`), `${shellName}: ${c.name} --${f.name}`);
      }
    }
  }
});
