/**
 * What every role process shares around its own work: the logger and
 * counters built from the config, SIGINT/SIGTERM handling, and a clean
 * stop that closes what the role opened.
 *
 * A role is a `start` function returning a {@link RoleHandle}; tests call
 * `start` directly (several roles in one process, on loopback), the CLI
 * goes through {@link runRole}.
 *
 * @module
 */

import type { Config } from "./config/mod.ts";
import { Counters } from "./_counters.ts";
import { levelForDebug, Logger, type LogSink } from "./_log.ts";

/** What a role's `start` gets. */
export interface RoleDeps {
  /** Structured logger of the role. */
  readonly logger: Logger;
  /** The role's counters (exported by the metrics endpoint). */
  readonly counters: Counters;
  /** Clock in milliseconds (tests pass a fake one). */
  readonly now: () => number;
}

/** A running role. */
export interface RoleHandle {
  /** Stops the role and undoes what it set up; resolves when done. */
  close(): Promise<void>;
}

/** Starts a role from its config. */
export type RoleStart<H extends RoleHandle = RoleHandle> = (
  config: Config,
  deps: RoleDeps,
) => Promise<H>;

/** Builds the logger and counters a role runs with. */
export function roleDeps(
  role: string,
  config: Config,
  opts: { logFormat?: "text" | "json"; sink?: LogSink; now?: () => number } = {},
): RoleDeps {
  const now = opts.now ?? Date.now;
  let sink = opts.sink;
  if (sink === undefined && config.logFile !== undefined) {
    const file = Deno.openSync(config.logFile, { append: true, create: true });
    const enc = new TextEncoder();
    sink = { write: (line) => void file.writeSync(enc.encode(line)) };
  }
  const logger = new Logger({
    role,
    level: levelForDebug(config.debug),
    format: opts.logFormat ?? "text",
    now,
    ...(sink ? { sink } : {}),
  });
  return { logger, counters: new Counters(), now };
}

/**
 * Runs a role until SIGINT or SIGTERM, then closes it. Resolves to the
 * process exit code: 0 after a clean stop, 1 if it failed to start.
 */
export async function runRole(
  role: string,
  config: Config,
  start: RoleStart,
  opts: { logFormat?: "text" | "json" } = {},
): Promise<number> {
  const deps = roleDeps(role, config, opts);
  let handle: RoleHandle;
  try {
    handle = await start(config, deps);
  } catch (e) {
    deps.logger.error("start-failed", { error: e instanceof Error ? e.message : String(e) });
    return 1;
  }
  deps.logger.info("started", { pid: Deno.pid });
  const stop = Promise.withResolvers<string>();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  const listeners = signals.map((s) => {
    const f = () => stop.resolve(s);
    Deno.addSignalListener(s, f);
    return [s, f] as const;
  });
  const signal = await stop.promise;
  for (const [s, f] of listeners) Deno.removeSignalListener(s, f);
  deps.logger.info("stopping", { signal });
  await handle.close();
  deps.logger.info("stopped");
  return 0;
}
