/**
 * What a role is to the process that runs it: a `start` function from a
 * config and {@link RoleDeps} (logger, counters, clock) to a running
 * {@link RoleHandle}. Tests call `start` directly (several roles in one
 * process, on loopback); the CLI goes through `runner/`.
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import { Counters } from "./counters.ts";
import { fileSink, levelForDebug, Logger, type LogSink } from "./log.ts";
import type { StatusSource } from "./status.ts";

/** What a role's `start` gets. */
export interface RoleDeps {
  /** Structured logger of the role. */
  readonly logger: Logger;
  /** The role's counters (exported by the metrics endpoint). */
  readonly counters: Counters;
  /** Clock in milliseconds (tests pass a fake one). */
  readonly now: () => number;
  /**
   * The role's state file (runtime edits, web/state.ts), when it has one:
   * a role may keep other state beside it (the ms its registrations).
   */
  readonly statePath?: string;
}

/** A running role. */
export interface RoleHandle {
  /** Stops the role and undoes what it set up; resolves when done. */
  close(): Promise<void>;
  /** What the HTTP API and status page show of the role (core/status.ts). */
  statusSource?(): StatusSource;
}

/** Starts a role from its config. */
export type RoleStart<H extends RoleHandle = RoleHandle> = (
  config: Config,
  deps: RoleDeps,
) => Promise<H>;

/**
 * Builds the logger and counters a role runs with: the level from
 * `debug` ({@link levelForDebug}), lines to `log-file` when set (appended)
 * or else to standard error, as text or JSON. Throws when `log-file`
 * cannot be opened. The caller closes the logger (`deps.logger.close()`).
 */
export function roleDeps(
  role: string,
  config: Config,
  opts: { logFormat?: "text" | "json"; sink?: LogSink; now?: () => number } = {},
): RoleDeps {
  const now = opts.now ?? Date.now;
  let sink = opts.sink;
  if (sink === undefined && config.logFile !== undefined) sink = fileSink(config.logFile);
  const logger = new Logger({
    role,
    level: levelForDebug(config.debug),
    format: opts.logFormat ?? "text",
    now,
    ...(sink ? { sink } : {}),
  });
  return { logger, counters: new Counters(), now };
}
