/**
 * Reading an `oor.toml` (or an OOR `oor.conf`) from disk. The checks
 * themselves are pure and live in validate.ts and oor_conf.ts; this file
 * only adds the file access and its errors.
 *
 * @module
 */

import { ConfigError } from "./errors.ts";
import { isOorConf, parseOorConf } from "./oor_conf.ts";
import type { Role } from "./schema.ts";
import { type ConfigResult, parseConfig } from "./validate.ts";

/** Why a file could not be read, in a few words. */
function readFailure(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "cannot read: no such file";
  if (e instanceof Deno.errors.PermissionDenied) {
    return "cannot read: permission denied";
  }
  if (e instanceof Deno.errors.IsADirectory) {
    return "cannot read: is a directory";
  }
  if (e instanceof TypeError) return "cannot read: not valid UTF-8 text";
  return `cannot read: ${e instanceof Error ? e.message : String(e)}`;
}

/**
 * Reads and validates the config at `path`, checked against `role` (the
 * subcommand) when given. Errors name the file as `path` was written. An
 * OOR `oor.conf` (a `.conf` file, or libconfuse text) is read as the
 * `oor.toml` it converts to, with errors on its own lines.
 * Never throws for a missing or unreadable file: that is an error in the
 * result (`oor.toml: cannot read: no such file`).
 */
export async function loadConfig(
  path: string,
  role?: Role,
): Promise<ConfigResult> {
  let text: string;
  try {
    const bytes = await Deno.readFile(path);
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (e) {
    return {
      ok: false,
      errors: [new ConfigError(path, undefined, "", readFailure(e))],
      warnings: [],
    };
  }
  const options = role !== undefined ? { file: path, role } : { file: path };
  return isOorConf(path, text) ? parseOorConf(text, options) : parseConfig(text, options);
}
