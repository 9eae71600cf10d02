/**
 * The `oor` command line: `oor <subcommand> [flags]`.
 *
 * Subcommands are the LISP roles (`xtr`, `mn`, `rtr`, `ms`, `mr`, `ddt`,
 * `ddt-mr`), each run with `--config FILE`, and tools (`check-config`,
 * `convert-config`, `lig`, `decode`, `encode`, `help`, `completions`). Each
 * subcommand is one entry in {@link COMMANDS}; each role's entry point is in
 * {@link ROLE_ENTRIES}. A mistyped subcommand or flag is answered with the
 * closest one ("did you mean"); `oor help ROLE` is the role's manual.
 *
 * Exit codes: 0 success, 1 failure at run time, 2 bad usage or an invalid
 * config file.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { VERSION } from "./version.ts";
import { runDecode, runEncode } from "./tools/codec.ts";
import { LIG_DESCRIPTION, LIG_FLAGS, LIG_SUMMARY, LIG_USAGE, runLig } from "./tools/lig.ts";
import {
  CONVERT_CONFIG_DESCRIPTION,
  CONVERT_CONFIG_FLAGS,
  CONVERT_CONFIG_SUMMARY,
  CONVERT_CONFIG_USAGE,
  runConvertConfig,
} from "./tools/convert_config.ts";
import { didYouMean, flagError } from "./tools/suggest.ts";
import { roleManual } from "./tools/manual.ts";
import {
  type CompletionCommand,
  completionScript,
  SHELLS,
  type ValueKind,
} from "./tools/completions.ts";
import { runRole as runRoleProcess } from "./runner/run_role.ts";
import type { RoleStart } from "./core/role.ts";
import { startMs } from "./roles/ms.ts";
import { startMr } from "./roles/mr.ts";
import { startDdt } from "./roles/ddt.ts";
import { startXtr } from "./roles/xtr.ts";
import { startMn } from "./roles/mn.ts";
import { startRtr } from "./roles/rtr.ts";
import {
  type Config,
  type ConfigError,
  describeConfig,
  loadConfig,
  parseRole,
  type Role,
  ROLES,
} from "./config/mod.ts";

/** Where the CLI writes; tests pass their own to capture output. */
export interface Io {
  /** Writes text (already ending in a newline) to standard output. */
  readonly stdout: (text: string) => void;
  /** Writes text (already ending in a newline) to standard error. */
  readonly stderr: (text: string) => void;
  /** Reads all of standard input (tools that take piped input). */
  readonly readStdin?: () => Promise<Uint8Array>;
  /** Reads a whole file. */
  readonly readFile?: (path: string) => Promise<Uint8Array>;
}

/** Log line format chosen with `--log-format`. */
export type LogFormat = "text" | "json";

/** What a role's entry point gets besides its config. */
export interface RoleOptions {
  /** `--log-format`. */
  readonly logFormat: LogFormat;
  /** `--config` as given, for messages. */
  readonly configPath: string;
  /** Output streams. */
  readonly io: Io;
}

/** Runs a role until it stops; resolves to the exit code. */
export type RoleEntry = (config: Config, options: RoleOptions) => Promise<number>;

/** The entry point of each role. */
export const ROLE_ENTRIES: Readonly<Record<Role, RoleEntry>> = {
  ms: entry("ms", startMs),
  mr: entry("mr", startMr),
  "ddt-mr": entry("ddt-mr", startMr),
  ddt: entry("ddt", startDdt),
  xtr: entry("xtr", startXtr),
  mn: entry("mn", startMn),
  rtr: entry("rtr", startRtr),
};

/**
 * The CLI entry of a role: run `start` until a signal or an uncaught error
 * stops it (cleanly: see runner/run_role.ts).
 */
function entry(role: Role, start: RoleStart): RoleEntry {
  return (config, options) =>
    runRoleProcess(role, config, start, {
      logFormat: options.logFormat,
      configPath: options.configPath,
    });
}

/** Exit code for bad usage or an invalid config. */
const EXIT_USAGE = 2;

/** Most errors (and, apart, warnings) printed for one config file; the rest are counted. */
export const MAX_PRINTED_PROBLEMS = 100;

/**
 * Prints the first {@link MAX_PRINTED_PROBLEMS} of a file's errors or
 * warnings (`prefix` before each) and how many more there are, so that a
 * file of thousands of mistakes stays readable.
 */
function printProblems(
  io: Io,
  file: string,
  list: readonly ConfigError[],
  prefix: string,
  kind: string,
): void {
  const shown = list.length > MAX_PRINTED_PROBLEMS ? list.slice(0, MAX_PRINTED_PROBLEMS) : list;
  let text = "";
  for (const e of shown) text += `${prefix}${e}\n`;
  const rest = list.length - shown.length;
  if (rest > 0) {
    text += `${prefix}${file}: ... and ${rest} more ${kind} (first ${shown.length} shown)\n`;
  }
  if (text !== "") io.stderr(text);
}

/** One flag of a subcommand. */
interface Flag {
  readonly type: "string" | "boolean";
  readonly short?: string;
  /** Placeholder for the value in help, e.g. `FILE`. */
  readonly value?: string;
  readonly help: string;
}

type Values = Readonly<Record<string, string | boolean | undefined>>;

/** What a subcommand's `run` receives. */
interface RunContext {
  readonly io: Io;
  readonly values: Values;
  readonly positionals: readonly string[];
}

/** One subcommand: its help text, its flags and what it does. */
interface Command {
  readonly name: string;
  readonly group: "role" | "tool";
  /** One line for `oor --help`. */
  readonly summary: string;
  /** Usage line without the leading `Usage: `. */
  readonly usage: string;
  /** A paragraph for `oor <sub> --help`. */
  readonly description: string;
  readonly flags: Readonly<Record<string, Flag>>;
  /** Whether the subcommand takes positional arguments. */
  readonly positionals: boolean;
  /** Pass the arguments through unparsed (only `-h`/`--help` is looked at). */
  readonly raw?: boolean;
  /** What its positional arguments are, for shell completion (default: none). */
  readonly complete?: ValueKind;
  readonly run: (ctx: RunContext) => Promise<number>;
}

const HELP_FLAG: Flag = { type: "boolean", short: "h", help: "show this help" };

function roleCommand(role: Role, summary: string, description: string): Command {
  return {
    name: role,
    group: "role",
    summary,
    usage: `oor ${role} --config FILE [--log-format text|json] [--state-file FILE]`,
    description,
    flags: {
      config: {
        type: "string",
        short: "c",
        value: "FILE",
        help: "the oor.toml to run with (required)",
      },
      "log-format": {
        type: "string",
        value: "FORMAT",
        help: "log lines as text or json (default text)",
      },
      "state-file": {
        type: "string",
        value: "FILE",
        help: "where API edits are kept (default [api] state-file)",
      },
    },
    positionals: false,
    run: (ctx) => runRole(role, ctx),
  };
}

function codecIo(io: Io) {
  return {
    stdout: io.stdout,
    stderr: io.stderr,
    readStdin: io.readStdin ?? (() => Promise.resolve(new Uint8Array(0))),
    readFile: io.readFile ?? ((path: string) => Deno.readFile(path)),
  };
}

/** Every subcommand, in the order `oor --help` lists them. */
const COMMANDS: readonly Command[] = [
  roleCommand(
    "xtr",
    "ingress/egress tunnel router for a site",
    "Runs as an xTR: encapsulates traffic from the site's EID prefixes " +
      "towards the locators of the destination, decapsulates traffic " +
      "arriving for them, and registers them with the map-servers.",
  ),
  roleCommand(
    "mn",
    "mobile node",
    "Runs as a LISP mobile node: a single host whose EID stays the same " +
      "while its locators change.",
  ),
  roleCommand(
    "rtr",
    "re-encapsulating tunnel router",
    "Runs as an RTR: decapsulates and re-encapsulates traffic towards the " +
      "next locator, and relays traffic of xTRs behind NATs.",
  ),
  roleCommand(
    "ms",
    "map-server",
    "Runs as a map-server: accepts Map-Registers for the configured sites " +
      "and answers or forwards Map-Requests for them.",
  ),
  roleCommand(
    "mr",
    "map-resolver",
    "Runs as a map-resolver: takes Encapsulated Map-Requests from ITRs and " +
      "gets them to the map-server that holds the mapping.",
  ),
  roleCommand(
    "ddt",
    "DDT node",
    "Runs as a DDT node (RFC 8111): answers DDT Map-Requests for its " +
      "authoritative prefixes with Map-Referrals.",
  ),
  roleCommand(
    "ddt-mr",
    "DDT map-resolver",
    "Runs as a DDT map-resolver: resolves Map-Requests by following " +
      "Map-Referrals down from the DDT roots.",
  ),
  {
    name: "check-config",
    group: "tool",
    summary: "validate oor.toml files and summarize them",
    usage: "oor check-config FILE... [--role ROLE]",
    description: "Checks each FILE and prints a one-line summary, or the problems " +
      "found as file:line: key: reason (the first 100 of a file, then how many more). " +
      "Exits 0 when all files are valid, 2 otherwise. The role to check against is " +
      "--role, else the file's operating-mode; with neither, only the rules common " +
      "to all roles are checked, and a note says so.",
    flags: {
      role: {
        type: "string",
        value: "ROLE",
        help: `check against this role (${ROLES.join(", ")})`,
      },
    },
    positionals: true,
    complete: { kind: "file" },
    run: runCheckConfig,
  },
  {
    name: "convert-config",
    group: "tool",
    summary: CONVERT_CONFIG_SUMMARY,
    usage: CONVERT_CONFIG_USAGE,
    description: CONVERT_CONFIG_DESCRIPTION,
    flags: CONVERT_CONFIG_FLAGS,
    positionals: true,
    raw: true,
    complete: { kind: "file" },
    run: ({ io, positionals }) => runConvertConfig(positionals, io),
  },
  {
    name: "lig",
    group: "tool",
    summary: LIG_SUMMARY,
    usage: LIG_USAGE,
    description: LIG_DESCRIPTION,
    flags: LIG_FLAGS,
    positionals: true,
    raw: true,
    complete: { kind: "text" },
    run: ({ io, positionals }) => runLig(positionals, io),
  },
  {
    name: "decode",
    group: "tool",
    summary: "print LISP messages from hex or a pcap as JSON",
    usage: "oor decode [HEX...] [--as KIND] [--pcap FILE] [--compact]",
    description: "Decodes each HEX argument (or each line of standard input) as a LISP " +
      "message and prints it as JSON: nonces and xTR-IDs as 0x-prefixed hex, byte " +
      "strings as hex, an ECM's inner message decoded as 'message'. With --pcap, decodes every " +
      "UDP datagram on ports 4342 (control), 4341 (LISP data) and 4790 (VXLAN-GPE). " +
      "Exits 1 if any message is malformed, 2 for bad usage.",
    flags: {
      as: {
        type: "string",
        value: "KIND",
        help: "read hex as control (default), lisp-data or vxlan-gpe",
      },
      pcap: { type: "string", value: "FILE", help: "decode the LISP datagrams of a pcap file" },
      compact: { type: "boolean", help: "one JSON value per line" },
    },
    positionals: true,
    complete: { kind: "text" },
    run: ({ io, values, positionals }) => {
      const opts: { inputs: readonly string[]; pcap?: string; as?: string; compact?: boolean } = {
        inputs: positionals,
      };
      if (typeof values["pcap"] === "string") opts.pcap = values["pcap"];
      if (typeof values["as"] === "string") opts.as = values["as"];
      if (values["compact"] === true) opts.compact = true;
      return runDecode(opts, codecIo(io));
    },
  },
  {
    name: "encode",
    group: "tool",
    summary: "turn the JSON of 'oor decode' back into hex",
    usage: "oor encode [JSON...]",
    description: "Reads LISP messages in the JSON form that 'oor decode' prints (from " +
      "the arguments or standard input: one object, an array, or several objects) " +
      "and prints each as hex on its own line. 'oor decode HEX | oor encode' prints " +
      "HEX back.",
    flags: {},
    positionals: true,
    complete: { kind: "text" },
    run: ({ io, positionals }) => runEncode(positionals, codecIo(io)),
  },
  {
    name: "help",
    group: "tool",
    summary: "show the help of a subcommand (of a role: its manual)",
    usage: "oor help [SUBCOMMAND]",
    description: "Prints the list of subcommands, or the help of SUBCOMMAND: its usage and " +
      "flags, and for a role its manual: what it needs in its oor.toml and on the host, " +
      "the keys it reads, how it runs and stops, its API, files, environment and exit status. " +
      "'oor help ROLE' and 'oor ROLE --help' print the same.",
    flags: {},
    positionals: true,
    // Completes the names of the subcommands (completionCommands()).
    run: ({ io, positionals }) => runHelp(positionals, io),
  },
  {
    name: "completions",
    group: "tool",
    summary: "print a shell completion script (bash or zsh)",
    usage: "oor completions bash|zsh",
    description: "Prints a completion script for the shell: subcommands, their flags, " +
      "files for FILE arguments and the values of --role, --log-format and --as. " +
      "Install it with 'oor completions bash > /etc/bash_completion.d/oor' or " +
      "'oor completions zsh > \"${fpath[1]}/_oor\"', or load it in the current " +
      "shell with 'source <(oor completions bash)'.",
    flags: {},
    positionals: true,
    complete: { kind: "choice", choices: SHELLS },
    run: ({ io, positionals }) => runCompletions(positionals, io),
  },
];

/** The command table by name. */
const BY_NAME: ReadonlyMap<string, Command> = new Map(
  COMMANDS.map((c) => [c.name, c]),
);

/** The flags `oor` takes before any subcommand. */
const GLOBAL_FLAGS = ["--help", "-h", "--version"];

/** `oor: unknown subcommand 'xrt'; did you mean 'xtr'? (see oor --help)` */
function unknownSubcommand(name: string): string {
  return `oor: unknown subcommand '${name}'${didYouMean(name, BY_NAME.keys())} (see oor --help)\n`;
}

/** `oor: unknown flag '--verison'; did you mean '--version'? (see oor --help)` */
function unknownGlobalFlag(flag: string): string {
  // `oor --xtr`: a subcommand written as a flag.
  const bare = flag.replace(/^-+/, "");
  const sub = BY_NAME.has(bare) ? `; did you mean '${bare}'?` : didYouMean(flag, GLOBAL_FLAGS);
  return `oor: unknown flag '${flag}'${sub} (see oor --help)\n`;
}

/** What completion offers for a placeholder of a flag's value. */
function valueKind(f: Flag): ValueKind {
  if (f.type === "boolean") return { kind: "none" };
  switch (f.value) {
    case "FILE":
      return { kind: "file" };
    case "ROLE":
      return { kind: "choice", choices: ROLES };
    case "FORMAT":
      return { kind: "choice", choices: ["text", "json"] };
    case "KIND":
      return { kind: "choice", choices: ["control", "lisp-data", "vxlan-gpe"] };
    default:
      return { kind: "text" };
  }
}

/** The command table as shell completion sees it. */
export function completionCommands(): CompletionCommand[] {
  const names = COMMANDS.map((c) => c.name);
  return COMMANDS.map((c) => ({
    name: c.name,
    summary: c.summary,
    flags: Object.entries({ ...c.flags, help: HELP_FLAG }).map(([name, f]) => ({
      name,
      ...(f.short !== undefined ? { short: f.short } : {}),
      help: f.help,
      value: valueKind(f),
    })),
    positionals: c.name === "help"
      ? { kind: "choice", choices: names }
      : c.complete ?? (c.positionals ? { kind: "text" } : { kind: "none" }),
  }));
}

/** `oor help [SUBCOMMAND]`. */
function runHelp(positionals: readonly string[], io: Io): Promise<number> {
  if (positionals.length === 0) {
    io.stdout(globalHelp());
    return Promise.resolve(0);
  }
  if (positionals.length > 1) {
    io.stderr("oor help: give one subcommand (see oor help --help)\n");
    return Promise.resolve(EXIT_USAGE);
  }
  const c = BY_NAME.get(positionals[0]!);
  if (c === undefined) {
    io.stderr(unknownSubcommand(positionals[0]!));
    return Promise.resolve(EXIT_USAGE);
  }
  io.stdout(commandHelp(c));
  return Promise.resolve(0);
}

/** `oor completions bash|zsh`. */
function runCompletions(positionals: readonly string[], io: Io): Promise<number> {
  const shell = positionals[0];
  if (positionals.length !== 1 || !(SHELLS as readonly string[]).includes(shell!)) {
    const got = shell === undefined ? "" : ` (got '${positionals.join(" ")}'` +
      `${didYouMean(shell, SHELLS)})`;
    io.stderr(`oor completions: give the shell: ${SHELLS.join(" or ")}${got}\n`);
    return Promise.resolve(EXIT_USAGE);
  }
  io.stdout(completionScript(shell as (typeof SHELLS)[number], completionCommands()));
  return Promise.resolve(0);
}

// ---------------------------------------------------------------------------
// Help text.

function column(left: string, right: string, width: number): string {
  return `  ${left.padEnd(width)}  ${right}\n`;
}

function globalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length), 12);
  let s = `oor ${VERSION}: a LISP overlay router\n\n`;
  s += "Usage: oor <subcommand> [flags]\n\nRoles:\n";
  for (const c of COMMANDS.filter((c) => c.group === "role")) {
    s += column(c.name, c.summary, width);
  }
  s += "\nTools:\n";
  for (const c of COMMANDS.filter((c) => c.group === "tool")) {
    s += column(c.name, c.summary, width);
  }
  s += "\nFlags:\n";
  s += column("-h, --help", "show this help", width);
  s += column("--version", "print the version", width);
  s += "\nRun 'oor <subcommand> --help' for the flags of a subcommand;\n" +
    "'oor help ROLE' is the manual of a role.\n";
  return s;
}

function commandHelp(c: Command): string {
  const flags = { ...c.flags, help: HELP_FLAG };
  const rows = Object.entries(flags).map(([name, f]) => {
    const short = f.short !== undefined ? `-${f.short}, ` : "    ";
    const value = f.value !== undefined ? ` ${f.value}` : "";
    return [`${short}--${name}${value}`, f.help] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length));
  let s = `${wrapUsage(`Usage: ${c.usage}`, 80)}\n\n${wrap(c.description, 76)}\n\nFlags:\n`;
  for (const [l, r] of rows) s += column(l, r, width);
  const role = c.group === "role" ? parseRole(c.name) : undefined;
  if (role !== undefined) s += roleManual(role);
  return s;
}

/** Wraps a usage line before a `[` that would pass `width`, indenting what follows. */
function wrapUsage(usage: string, width: number): string {
  if (usage.length <= width) return usage;
  const indent = " ".repeat(usage.indexOf(" ", "Usage: oor ".length) + 1);
  const parts = usage.split(/ (?=\[)/);
  const lines: string[] = [];
  let line = parts[0]!;
  for (const p of parts.slice(1)) {
    if (line.length + 1 + p.length > width) {
      lines.push(line);
      line = indent + p;
    } else line = `${line} ${p}`;
  }
  lines.push(line);
  return lines.join("\n");
}

/** Wraps a paragraph at `width` columns. */
function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line.length > 0 && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line.length > 0 ? `${line} ${word}` : word;
    }
  }
  if (line.length > 0) lines.push(line);
  return lines.join("\n");
}

// ---------------------------------------------------------------------------
// Running.

/** Turns a node:util parseArgs error into our one-line message, with a guess. */
function argsError(command: Command, e: unknown, args: readonly string[]): string {
  const flags = [...Object.keys(command.flags), "help"];
  return `oor ${command.name}: ${flagError(e, flags, args)} (see oor ${command.name} --help)`;
}

async function runRole(role: Role, { io, values }: RunContext): Promise<number> {
  const configPath = values["config"];
  if (typeof configPath !== "string") {
    io.stderr(`oor ${role}: --config FILE is required (see oor ${role} --help)\n`);
    return EXIT_USAGE;
  }
  const format = values["log-format"] ?? "text";
  if (format !== "text" && format !== "json") {
    io.stderr(`oor ${role}: --log-format must be text or json (got '${format}')\n`);
    return EXIT_USAGE;
  }
  const result = await loadConfig(configPath, role);
  printProblems(io, configPath, result.warnings, "warning: ", "warnings");
  if (!result.ok) {
    printProblems(io, configPath, result.errors, "", "errors");
    return EXIT_USAGE;
  }
  let config = result.config;
  const stateFile = values["state-file"];
  if (typeof stateFile === "string") {
    if (stateFile === "") {
      io.stderr(`oor ${role}: --state-file needs a file name\n`);
      return EXIT_USAGE;
    }
    // Given on the command line: relative to the working directory.
    const path = stateFile.startsWith("/") ? stateFile : `${Deno.cwd()}/${stateFile}`;
    config = { ...config, api: { ...config.api, stateFile: path } };
  }
  return await ROLE_ENTRIES[role](config, { logFormat: format, configPath, io });
}

/**
 * What check-config says of a file checked with no role: neither
 * `operating-mode` nor `--role` says which role it is for, and guessing
 * from its sections would hold it to the wrong role's rules.
 */
const NO_ROLE_NOTE = "no operating-mode and no --role: checked what every role needs; " +
  "skipped the role checks (the sections a role needs, the [[map-server]] key of xtr and mn, " +
  "keys the role ignores): give --role ROLE to run them";

async function runCheckConfig(
  { io, values, positionals }: RunContext,
): Promise<number> {
  if (positionals.length === 0) {
    io.stderr("oor check-config: give at least one FILE (see oor check-config --help)\n");
    return EXIT_USAGE;
  }
  let role: Role | undefined;
  const roleText = values["role"];
  if (typeof roleText === "string") {
    role = parseRole(roleText);
    if (role === undefined) {
      io.stderr(
        `oor check-config: unknown role '${roleText}' (one of ${ROLES.join(", ")})\n`,
      );
      return EXIT_USAGE;
    }
  }
  let status = 0;
  for (const file of positionals) {
    const result = await loadConfig(file, role);
    printProblems(io, file, result.warnings, "warning: ", "warnings");
    if (result.ok) {
      io.stdout(`${file}: ok (${describeConfig(result.config)})\n`);
      if (result.config.role === undefined) io.stderr(`note: ${file}: ${NO_ROLE_NOTE}\n`);
    } else {
      printProblems(io, file, result.errors, "", "errors");
      status = EXIT_USAGE;
    }
  }
  return status;
}

/** Writes all of `text` to a Deno stream, synchronously. */
function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string) {
  let bytes = new TextEncoder().encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}

/** The process's own stdout and stderr. */
export const DENO_IO: Io = {
  stdout: (text) => writeAll(Deno.stdout, text),
  stderr: (text) => writeAll(Deno.stderr, text),
  readStdin: async () => new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer()),
  readFile: (path) => Deno.readFile(path),
};

/**
 * Runs `oor` with `args` (without the program name) and resolves to the
 * exit code. Never calls `Deno.exit`, so tests can call it in-process.
 */
export async function main(
  args: readonly string[],
  io: Io = DENO_IO,
): Promise<number> {
  const first = args[0];
  if (first === undefined) {
    io.stderr(globalHelp());
    return EXIT_USAGE;
  }
  if (first === "--version") {
    io.stdout(`oor ${VERSION}\n`);
    return 0;
  }
  if (first === "-h" || first === "--help") {
    io.stdout(globalHelp());
    return 0;
  }
  if (first === "help") {
    // `oor help --help` is the help of help; `oor help xtr --help` that of xtr.
    const topics = args.slice(1).filter((a) => a !== "-h" && a !== "--help");
    if (topics.length === 0 && topics.length < args.length - 1) {
      io.stdout(commandHelp(BY_NAME.get("help")!));
      return 0;
    }
    const flag = topics.find((a) => a.startsWith("-"));
    if (flag !== undefined) {
      io.stderr(`oor help: unknown flag '${flag}' (see oor help --help)\n`);
      return EXIT_USAGE;
    }
    return await runHelp(topics, io);
  }
  if (first.startsWith("-")) {
    io.stderr(unknownGlobalFlag(first));
    return EXIT_USAGE;
  }
  const command = BY_NAME.get(first);
  if (command === undefined) {
    io.stderr(unknownSubcommand(first));
    return EXIT_USAGE;
  }
  if (command.raw === true) {
    const rest = args.slice(1);
    if (rest.includes("-h") || rest.includes("--help")) {
      io.stdout(commandHelp(command));
      return 0;
    }
    return await command.run({ io, values: {}, positionals: rest });
  }
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, f] of Object.entries({ ...command.flags, help: HELP_FLAG })) {
    options[name] = f.short !== undefined ? { type: f.type, short: f.short } : { type: f.type };
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: args.slice(1) as string[],
      options,
      strict: true,
      allowPositionals: command.positionals,
    });
  } catch (e) {
    io.stderr(`${argsError(command, e, args.slice(1))}\n`);
    return EXIT_USAGE;
  }
  if (parsed.values["help"] === true) {
    io.stdout(commandHelp(command));
    return 0;
  }
  return await command.run({
    io,
    values: parsed.values as Values,
    positionals: parsed.positionals,
  });
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
