/**
 * `oor ms` with a chosen number of answering Workers, for benchmarks and
 * labs: the same process as `oor ms --config FILE` (runner/run_role.ts:
 * logs, state file, API, signals), started with `msStarter({ workers })`.
 *
 * ```
 * deno run -A scripts/_ms_node.ts --config FILE [--workers N]
 * ```
 *
 * `--workers 0` runs everything on the main thread; without it, the
 * role's default (one Worker per CPU).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadConfig } from "../config/mod.ts";
import { runRole } from "../runner/run_role.ts";
import { msStarter } from "../roles/ms.ts";

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { config: { type: "string" }, workers: { type: "string" } },
  });
  if (values.config === undefined) {
    console.error("usage: _ms_node.ts --config FILE [--workers N]");
    return 2;
  }
  const r = await loadConfig(values.config, "ms");
  if (!r.ok) {
    console.error(r.errors.map(String).join("\n"));
    return 2;
  }
  const workers = values.workers !== undefined ? Number(values.workers) : undefined;
  return await runRole(
    "ms",
    r.config,
    msStarter(workers !== undefined ? { workers } : {}),
    { configPath: values.config },
  );
}

if (import.meta.main) Deno.exit(await main());
