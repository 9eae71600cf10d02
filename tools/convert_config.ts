/**
 * `oor convert-config FILE [--role ROLE]`: prints the `oor.toml` equivalent
 * of an OOR `oor.conf`.
 *
 * The file is read as an `oor.conf` whatever its name, converted (see
 * config/oor_conf.ts), and the result validated as `oor check-config`
 * would, against `--role` or else the file's `operating-mode`. The TOML
 * goes to standard output only when the file is valid, so
 * `oor convert-config oor.conf > oor.toml` never writes a broken file;
 * every problem goes to standard error as `oor.conf:12: key: reason`.
 *
 * Exit codes: 0 converted, 2 bad usage, an unreadable file, or an invalid
 * config.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { convertOorConf, parseOorConf } from "../config/oor_conf.ts";
import { parseRole, type Role, ROLES } from "../config/schema.ts";
import { flagError } from "./suggest.ts";

/** One-line summary for `oor --help`. */
export const CONVERT_CONFIG_SUMMARY = "print the oor.toml equivalent of an OOR oor.conf";

/** Usage line for `oor convert-config --help` (without the leading `Usage: `). */
export const CONVERT_CONFIG_USAGE = "oor convert-config FILE [--role ROLE]";

/** A paragraph for `oor convert-config --help`. */
export const CONVERT_CONFIG_DESCRIPTION =
  "Reads FILE as an OOR oor.conf (libconfuse syntax: # // and /* */ comments, " +
  "sections in braces, {a, b} lists, quoted or bare values) and prints the same " +
  "configuration as oor.toml, with OOR's key names. The result is validated " +
  "like check-config, against --role or else the file's operating-mode, and " +
  "printed only when valid. Problems go to standard error as file:line: key: " +
  "reason; keys OOR has but oor does not support are named with the reason. " +
  "OOR's allowed-dst-eids becomes destination-prefixes; 'local' of an " +
  "rloc-address is dropped with a warning (oor tells local locators by the " +
  "host's addresses). Exits 0 when the file converted, 2 otherwise. Every role " +
  "also reads an oor.conf directly.";

/** The flags of `oor convert-config`, for its help text. */
export const CONVERT_CONFIG_FLAGS: Readonly<
  Record<
    string,
    { readonly type: "string" | "boolean"; readonly value?: string; readonly help: string }
  >
> = {
  role: {
    type: "string",
    value: "ROLE",
    help: `validate against this role: ${ROLES.join(", ")}`,
  },
};

/** Where `oor convert-config` reads and writes; tests pass their own. */
export interface ConvertConfigIo {
  /** Standard output (text ends in a newline). */
  readonly stdout: (text: string) => void;
  /** Standard error (text ends in a newline). */
  readonly stderr: (text: string) => void;
  /** Reads a whole file; `Deno.readFile` when not given. */
  readonly readFile?: (path: string) => Promise<Uint8Array>;
}

const EXIT_USAGE = 2;

/** Why a file could not be read, in a few words. */
function readFailure(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "cannot read: no such file";
  if (e instanceof Deno.errors.PermissionDenied) return "cannot read: permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "cannot read: is a directory";
  if (e instanceof TypeError) return "cannot read: not valid UTF-8 text";
  return `cannot read: ${e instanceof Error ? e.message : String(e)}`;
}

/**
 * `oor convert-config`: `args` are the arguments after `convert-config`.
 * Resolves to the exit code: 0 when the file converted (TOML on stdout),
 * 2 for bad usage, an unreadable file or an invalid config (reasons on
 * stderr, nothing on stdout).
 */
export async function runConvertConfig(
  args: readonly string[],
  io: ConvertConfigIo,
): Promise<number> {
  const see = "(see oor convert-config --help)";
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: { role: { type: "string" } },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    const reason = flagError(e, [...Object.keys(CONVERT_CONFIG_FLAGS), "help"], args);
    io.stderr(`oor convert-config: ${reason} ${see}\n`);
    return EXIT_USAGE;
  }
  const files = parsed.positionals;
  if (files.length !== 1) {
    io.stderr(
      files.length === 0
        ? `oor convert-config: give the oor.conf FILE to convert ${see}\n`
        : `oor convert-config: give one FILE, not ${files.length} ${see}\n`,
    );
    return EXIT_USAGE;
  }
  const file = files[0]!;
  let role: Role | undefined;
  const roleText = parsed.values.role;
  if (roleText !== undefined) {
    role = parseRole(roleText);
    if (role === undefined) {
      io.stderr(`oor convert-config: unknown role '${roleText}' (one of ${ROLES.join(", ")})\n`);
      return EXIT_USAGE;
    }
  }
  let text: string;
  try {
    const bytes = await (io.readFile ?? Deno.readFile)(file);
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (e) {
    io.stderr(`${file}: ${readFailure(e)}\n`);
    return EXIT_USAGE;
  }
  const checked = parseOorConf(text, role !== undefined ? { file, role } : { file });
  for (const w of checked.warnings) io.stderr(`warning: ${w}\n`);
  if (!checked.ok) {
    for (const e of checked.errors) io.stderr(`${e}\n`);
    return EXIT_USAGE;
  }
  const converted = convertOorConf(text, { file });
  if (!converted.ok) {
    // parseOorConf converted the same text without error; this cannot happen.
    for (const e of converted.errors) io.stderr(`${e}\n`);
    return EXIT_USAGE;
  }
  io.stdout(converted.toml);
  return 0;
}
