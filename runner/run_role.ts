/**
 * The process around a role: its logger and counters from the config,
 * the runtime edits saved in the state file, the HTTP API, signals and
 * uncaught errors, and a clean stop that closes what the role opened.
 * This layer sits above roles/ and web/: it gives the role's status
 * source to the web app, and neither of those knows the other.
 *
 * SIGHUP reloads the config file (runner/reload.ts): what changed is
 * applied to the running role, or the new file is refused with its errors
 * and the old config stays in force. `POST /api/v1/reload` does the same.
 *
 * How a role stops, whatever stops it ({@link runRole}):
 * - SIGINT, SIGTERM and every other signal whose default action
 *   would end the process ({@link STOP_SIGNALS}) start a clean stop: the
 *   API stops accepting and gives requests in flight
 *   {@link STOP_GRACE_MS} before closing their connections, whatever the
 *   clients do; then the role's `close()` undoes what it set up (routes,
 *   rules, TUN); then the process exits 0.
 * - A second signal during the stop closes the API connections at once
 *   and goes straight to the role's `close()`, which still runs.
 * - An uncaught exception or unhandled promise rejection is logged
 *   (`uncaught-error`) and stops the role the same way; the exit code is
 *   then 1.
 *
 * @module
 */

import { type Config, DEFAULTS, loadConfig, type Role } from "../config/mod.ts";
import type { Fields, Logger, LogSink } from "../core/log.ts";
import { type RoleDeps, roleDeps, type RoleHandle, type RoleStart } from "../core/role.ts";
import { VERSION } from "../version.ts";
import { createApp } from "../web/app.ts";
import { type ApiLimits, type ApiServer, startApi, STOP_GRACE_MS } from "../web/server.ts";
import { RuntimeEdits, stateFilePath } from "../web/state.ts";
import { startHint } from "./start_hint.ts";
import { Reloader } from "./reload.ts";
import type { ReloadOutcome } from "../core/status.ts";

/**
 * Starts the HTTP API of a running role when `[api] enabled` (the
 * default), on `[api] listen` (127.0.0.1:9942 by default): the role's
 * {@link RoleHandle.statusSource} (or an empty one), with its counters
 * when it lists none, behind `edits` (runtime edits are saved before they
 * are answered). The write token is `[api] token`, else `OOR_API_TOKEN`.
 * The connection cap and timeouts are `[api] max-connections`,
 * `idle-timeout` and `request-timeout`; on a loopback address only
 * requests for that address or `localhost` are answered (see
 * `AppOptions.allowedHosts`). Internal errors are logged
 * (`api-internal-error`) with the id their 500 answer carries.
 * Resolves to undefined when the API is off or its address cannot be
 * bound: that is logged as a warning and the role runs on without it.
 */
export async function startRoleApi(
  role: string,
  config: Config,
  handle: RoleHandle,
  deps: RoleDeps,
  opts: {
    edits?: RuntimeEdits;
    startedAt?: number;
    reload?: () => Promise<ReloadOutcome>;
  } = {},
): Promise<ApiServer | undefined> {
  const api = config.api;
  if (!api.enabled) return undefined;
  const edits = opts.edits ?? new RuntimeEdits(undefined);
  const source = edits.wrap(handle.statusSource?.() ?? {});
  source.counters ??= () => deps.counters.snapshot();
  if (opts.reload !== undefined) source.reload = opts.reload;
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
    ...(isLoopbackHost(api.host) ? { allowedHosts: [api.host, "localhost"] } : {}),
    // The app reports each distinct error once a minute (its id meanwhile).
    onError: (e, where, id) =>
      log.error("api-internal-error", {
        id,
        where,
        error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
        at: e instanceof Error
          ? e.stack?.split("\n").find((l) => /^\s+at /.test(l))?.trim()
          : undefined,
      }),
  });
  const writable = source.addStaticMapping !== undefined ||
    source.addDatabaseMapping !== undefined || source.setPeers !== undefined ||
    source.addLispSite !== undefined || source.addDelegSite !== undefined ||
    source.reload !== undefined;
  try {
    const server = await startApi(app, {
      host: api.host,
      port: api.port,
      limits: apiLimits(config),
      logger: log,
    });
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
      hint: startHint(e, { setting: "[api] listen", address: api.host, port: api.port }),
    });
    return undefined;
  }
}

/** The API's connection cap and timeouts from `[api]`, defaults for what it leaves out. */
export function apiLimits(config: Pick<Config, "api">): Partial<ApiLimits> {
  const api = config.api;
  return {
    maxConnections: api.maxConnections ?? DEFAULTS.apiMaxConnections,
    idleTimeoutMs: (api.idleTimeout ?? DEFAULTS.apiIdleTimeout) * 1000,
    requestTimeoutMs: (api.requestTimeout ?? DEFAULTS.apiRequestTimeout) * 1000,
  };
}

/** Whether an address (canonical text) is loopback: 127/8, ::1, or ::ffff:127/104. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::1" || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * The signals that stop a role cleanly: every one whose default action
 * ends the process and that a program may catch, but SIGHUP (a reload,
 * see runner/reload.ts). SIGKILL and SIGSTOP
 * cannot be caught; the faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL) and
 * SIGABRT, SIGTRAP, SIGSYS and SIGPROF are left to the runtime.
 */
export const STOP_SIGNALS: readonly Deno.Signal[] = [
  "SIGINT",
  "SIGTERM",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
  "SIGALRM",
  "SIGVTALRM",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGPWR",
  "SIGIO",
  "SIGSTKFLT",
];

/** What ended the run: a signal, or an error nothing caught. */
type StopReason = { readonly signal: string } | { readonly error: unknown };

/**
 * Listens for {@link STOP_SIGNALS} and uncaught errors while a role runs:
 * the first one resolves {@link StopWatch.stopped}, any later one
 * {@link StopWatch.hurried}. An uncaught error is logged and kept from
 * ending the process, so that the role's cleanup still runs.
 */
class StopWatch {
  readonly #stopped = Promise.withResolvers<StopReason>();
  readonly #hurried = Promise.withResolvers<string>();
  readonly #log: Logger;
  readonly #signals: [Deno.Signal, () => void][] = [];
  #count = 0;
  #failed = false;

  readonly #onError = (e: ErrorEvent) => {
    e.preventDefault();
    this.#uncaught(e.error ?? e.message, "exception");
  };
  readonly #onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    this.#uncaught(e.reason, "rejection");
  };

  constructor(log: Logger) {
    this.#log = log;
    for (const s of STOP_SIGNALS) {
      const f = () => this.#event({ signal: s });
      try {
        Deno.addSignalListener(s, f);
        this.#signals.push([s, f]);
      } catch {
        // Not a signal this platform lets a program catch.
      }
    }
    globalThis.addEventListener("error", this.#onError);
    globalThis.addEventListener("unhandledrejection", this.#onRejection);
  }

  /** Resolves with what asked the role to stop first. */
  get stopped(): Promise<StopReason> {
    return this.#stopped.promise;
  }

  /** Resolves when a second signal or error asks to stop at once. */
  get hurried(): Promise<string> {
    return this.#hurried.promise;
  }

  /** Whether an uncaught error happened (the exit code is then 1). */
  get failed(): boolean {
    return this.#failed;
  }

  #uncaught(error: unknown, kind: string): void {
    this.#failed = true;
    const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const fields: Fields = {
      kind,
      error: text,
      stack: error instanceof Error
        ? error.stack?.split("\n").slice(1, 6).map((l) => l.trim()).join(" | ")
        : undefined,
    };
    // One line per distinct error a minute: a loop that throws cannot flood the log.
    this.#log.limited(`uncaught ${text}`, 60_000, "error", "uncaught-error", fields);
    this.#event({ error });
  }

  #event(reason: StopReason): void {
    this.#count++;
    if (this.#count === 1) {
      this.#stopped.resolve(reason);
      return;
    }
    const what = "signal" in reason ? reason.signal : "uncaught error";
    if (this.#count === 2) this.#log.warn("stop-hurried", { by: what });
    this.#hurried.resolve(what);
  }

  /** Stops listening. */
  close(): void {
    for (const [s, f] of this.#signals) {
      try {
        Deno.removeSignalListener(s, f);
      } catch {
        // gone
      }
    }
    globalThis.removeEventListener("error", this.#onError);
    globalThis.removeEventListener("unhandledrejection", this.#onRejection);
  }
}

/** A process's soft and hard limits of open files; `Infinity` for unlimited. */
export interface FdLimit {
  /** What the kernel enforces now. */
  readonly soft: number;
  /** The most the soft limit may be raised to. */
  readonly hard: number;
}

/**
 * The open-file limits in the text of `/proc/self/limits`, or undefined
 * when the line is not there.
 */
export function parseFdLimit(limits: string): FdLimit | undefined {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(limits);
  if (m === null) return undefined;
  const n = (v: string) => v === "unlimited" ? Infinity : Number(v);
  return { soft: n(m[1]!), hard: n(m[2]!) };
}

/**
 * Logs the process's open-file limits (`fd-limit`). Deno's runtime raises
 * the soft limit to the hard one before main.ts runs; when it is still
 * lower (another runtime), `fd-limit-low` says so, since the API's cap
 * and the role's sockets count on it.
 */
function logFdLimit(log: Logger): void {
  let limit: FdLimit | undefined;
  try {
    limit = parseFdLimit(Deno.readTextFileSync("/proc/self/limits"));
  } catch {
    return; // Not Linux, or no read permission: nothing to say.
  }
  if (limit === undefined) return;
  if (limit.soft < limit.hard) {
    log.warn("fd-limit-low", {
      soft: limit.soft,
      hard: limit.hard,
      hint: "raise the soft limit of open files (ulimit -n, LimitNOFILE=)",
    });
  } else log.info("fd-limit", { soft: limit.soft, hard: limit.hard });
}

/** What {@link runRole} takes besides the role. */
export interface RunOptions {
  /** Log line format. */
  readonly logFormat?: "text" | "json";
  /** The config file, for the default state file path. */
  readonly configPath?: string;
  /** Where log lines go instead of `log-file` or standard error (tests). */
  readonly sink?: LogSink;
}

/**
 * Runs a role until a signal or an uncaught error stops it (see the
 * module notes), then closes it. Resolves to the process exit code: 0
 * after a clean stop on a signal; 1 if it failed to start, if an uncaught
 * error stopped it, or if its close failed.
 *
 * Runtime edits saved in the state file (`[api] state-file`, else
 * `<configPath>.state.json`) are applied to `config` before the role
 * starts; then the HTTP API starts ({@link startRoleApi}).
 */
export async function runRole(
  role: string,
  config: Config,
  start: RoleStart,
  opts: RunOptions = {},
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
  const watch = new StopWatch(deps.logger);
  // SIGHUP reloads; one that comes while the role starts waits for it.
  let reloader: Reloader | undefined;
  let hupPending = false;
  const onHup = () => {
    if (reloader === undefined) hupPending = true;
    else void reloader.reload("SIGHUP");
  };
  let hupListening = false;
  try {
    Deno.addSignalListener("SIGHUP", onHup);
    hupListening = true;
  } catch {
    // Not a signal this platform lets a program catch.
  }
  try {
    logFdLimit(deps.logger);
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
      // What went wrong, and what to do about it (an address not on this
      // host, a missing capability, a port in use).
      deps.logger.error("start-failed", {
        error: e instanceof Error ? e.message : String(e),
        hint: startHint(e),
      });
      return 1;
    }
    const configPath = opts.configPath;
    if (configPath !== undefined) {
      reloader = new Reloader({
        role,
        file: configPath,
        read: () => loadConfig(configPath, role as Role),
        current: config,
        edits,
        source: handle.statusSource?.() ?? {},
        log: deps.logger,
      });
    }
    const reload = reloader !== undefined
      ? ((r: Reloader) => () => r.reload("api"))(reloader)
      : undefined;
    const api = await startRoleApi(role, config, handle, deps, {
      edits,
      startedAt,
      ...(reload !== undefined ? { reload } : {}),
    });
    deps.logger.info("started", { pid: Deno.pid });
    if (hupPending) onHup();
    const reason = await watch.stopped;
    reloader = undefined; // a SIGHUP from now on changes nothing
    deps.logger.info(
      "stopping",
      "signal" in reason ? { signal: reason.signal } : { reason: "uncaught error" },
    );
    if (api !== undefined) {
      // A second signal cuts the grace short.
      await Promise.race([api.close(STOP_GRACE_MS), watch.hurried.then(() => api.close(0))]);
    }
    let code = watch.failed ? 1 : 0;
    try {
      await handle.close();
    } catch (e) {
      deps.logger.error("stop-failed", { error: e instanceof Error ? e.message : String(e) });
      code = 1;
    }
    deps.logger.flush();
    deps.logger.info("stopped", code !== 0 ? { "exit-code": code } : {});
    return code;
  } finally {
    if (hupListening) Deno.removeSignalListener("SIGHUP", onHup);
    watch.close();
    deps.logger.close();
  }
}
