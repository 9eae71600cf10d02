/**
 * `oor.toml`: the schema, its validation with `file:line` errors, and
 * loading from disk.
 *
 * ```ts
 * import { loadConfig } from "./config/mod.ts";
 * const r = await loadConfig("oor.toml", "xtr");
 * if (!r.ok) for (const e of r.errors) console.error(String(e));
 * ```
 *
 * @module
 */

export * from "./schema.ts";
export { ConfigError } from "./errors.ts";
export { type ConfigResult, parseConfig, type ParseConfigOptions } from "./validate.ts";
export { loadConfig } from "./load.ts";
export { describeConfig } from "./summary.ts";
