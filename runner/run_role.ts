/**
 * The process around a role: its logger and counters from the config,
 * the runtime edits saved in the state file, the HTTP API, SIGINT/SIGTERM
 * handling, and a clean stop that closes what the role opened. This layer
 * sits above roles/ and web/: it gives the role's status source to
 * the web app, and neither of those knows the other.
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import { type RoleDeps, roleDeps, type RoleHandle, type RoleStart } from "../core/role.ts";
import { VERSION } from "../version.ts";
import { createApp } from "../web/app.ts";
import { type ApiServer, startApi } from "../web/server.ts";
import { RuntimeEdits, stateFilePath } from "../web/state.ts";

/**
 * Starts the HTTP API of a running role when `[api] enabled` (the
 * default), on `[api] listen` (127.0.0.1:9942 by default): the role's
 * {@link RoleHandle.statusSource} (or an empty one), with its counters
 * when it lists none, behind `edits` (runtime edits are saved before they
 * are answered). The write token is `[api] token`, else `OOR_API_TOKEN`.
 * Resolves to undefined when the API is off or its address cannot be
 * bound: that is logged as a warning and the role runs on without it.
 */
export async function startRoleApi(
  role: string,
  config: Config,
  handle: RoleHandle,
  deps: RoleDeps,
  opts: { edits?: RuntimeEdits; startedAt?: number } = {},
): Promise<ApiServer | undefined> {
  const api = config.api;
  if (!api.enabled) return undefined;
  const edits = opts.edits ?? new RuntimeEdits(undefined);
  const source = edits.wrap(handle.statusSource?.() ?? {});
  source.counters ??= () => deps.counters.snapshot();
  let token = api.token;
  if (token === undefined) {
    try {
      token = Deno.env.get("OOR_API_TOKEN") || undefined;
    } catch {
      // No permission to read the environment: no token.
    }
  }
  const log = deps.logger;
  const app = createApp(source, {
    ...(token !== undefined ? { token } : {}),
    version: VERSION,
    role,
    startedAt: opts.startedAt ?? deps.now(),
    now: deps.now,
    onError: (e, where) =>
      log.limited(`api-error ${where}`, 60_000, "warn", "api-error", {
        where,
        error: e instanceof Error ? e.message : String(e),
      }),
  });
  const writable = source.addStaticMapping !== undefined ||
    source.addDatabaseMapping !== undefined;
  try {
    const server = await startApi(app, { host: api.host, port: api.port });
    log.info("api-listening", {
      url: server.url,
      writes: !writable ? "none for this role" : token !== undefined ? "enabled" : "no token",
      "state-file": writable ? edits.path ?? "none (memory only)" : undefined,
    });
    return server;
  } catch (e) {
    log.warn("api-listen-failed", {
      address: `${api.host.includes(":") ? `[${api.host}]` : api.host}:${api.port}`,
      reason: e instanceof Error ? e.message : String(e),
    });
    return undefined;
  }
}

/**
 * Runs a role until SIGINT or SIGTERM, then closes it. Resolves to the
 * process exit code: 0 after a clean stop, 1 if it failed to start.
 *
 * Runtime edits saved in the state file (`[api] state-file`, else
 * `<configPath>.state.json`) are applied to `config` before the role
 * starts; then the HTTP API starts ({@link startRoleApi}).
 */
export async function runRole(
  role: string,
  config: Config,
  start: RoleStart,
  opts: { logFormat?: "text" | "json"; configPath?: string } = {},
): Promise<number> {
  let deps: RoleDeps;
  try {
    deps = roleDeps(role, config, opts);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    const line = `oor ${role}: cannot open log-file ${config.logFile ?? ""}: ${reason}\n`;
    Deno.stderr.writeSync(new TextEncoder().encode(line));
    return 1;
  }
  // Listen before starting, so a signal that comes as soon as "started"
  // is written (or during start) stops the role instead of killing it.
  const stop = Promise.withResolvers<string>();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  const listeners = signals.map((s) => {
    const f = () => stop.resolve(s);
    Deno.addSignalListener(s, f);
    return [s, f] as const;
  });
  try {
    const startedAt = deps.now();
    const statePath = stateFilePath(config, opts.configPath);
    let edits: RuntimeEdits;
    try {
      edits = await RuntimeEdits.open(statePath);
    } catch (e) {
      deps.logger.error("start-failed", {
        error: `${e instanceof Error ? e.message : String(e)} (fix or remove the state file)`,
      });
      return 1;
    }
    if (edits.size > 0) {
      deps.logger.info("runtime-edits-applied", { "state-file": statePath, edits: edits.size });
    }
    let handle: RoleHandle;
    try {
      handle = await start(
        edits.apply(config),
        statePath !== undefined ? { ...deps, statePath } : deps,
      );
    } catch (e) {
      deps.logger.error("start-failed", { error: e instanceof Error ? e.message : String(e) });
      return 1;
    }
    const api = await startRoleApi(role, config, handle, deps, { edits, startedAt });
    deps.logger.info("started", { pid: Deno.pid });
    const signal = await stop.promise;
    deps.logger.info("stopping", { signal });
    await api?.close();
    await handle.close();
    deps.logger.flush();
    deps.logger.info("stopped");
    return 0;
  } finally {
    for (const [s, f] of listeners) Deno.removeSignalListener(s, f);
    deps.logger.close();
  }
}
