/**
 * A stand-in tunnel router run by web/state_test.ts as its own process:
 * `runRole()` with a role whose map-cache and database hold just the
 * config's `[[static-map-cache]]` and `[[database-mapping]]` entries and
 * take edits through the write hooks. The test edits it over HTTP, kills
 * it with SIGKILL and starts it again.
 *
 * Usage: `deno run -A web/testdata/edit_role.ts CONFIG` (the API listens
 * on a free port of `[api] listen`'s address; the log says which).
 *
 * @module
 */

import type { Config, DatabaseMapping, StaticMapCacheEntry } from "../../config/mod.ts";
import { formatPrefix, loadConfig } from "../../config/mod.ts";
import { type RoleHandle } from "../../core/role.ts";
import { runRole } from "../../runner/run_role.ts";
import type { StatusSource } from "../../core/status.ts";

const key = (e: { eidPrefix: { address: string; length: number }; iid: number }) =>
  `${e.iid} ${formatPrefix(e.eidPrefix)}`;

function start(config: Config): Promise<RoleHandle> {
  const statics = new Map<string, StaticMapCacheEntry>();
  const db = new Map<string, DatabaseMapping>();
  for (const e of config.staticMapCache) statics.set(key(e), e);
  for (const m of config.databaseMappings) db.set(key(m), m);
  const locs = (rs: StaticMapCacheEntry["rlocAddresses"]) =>
    rs.map((r) => ({
      address: r.kind === "address" ? r.address : r.elpName,
      priority: r.priority,
      weight: r.weight,
      state: "up" as const,
    }));
  const source: StatusSource = {
    mapCache: () =>
      [...statics.values()].map((e) => ({
        eidPrefix: formatPrefix(e.eidPrefix),
        iid: e.iid,
        kind: "positive" as const,
        static: true,
        expiresAt: null,
        rlocs: locs(e.rlocAddresses),
      })),
    database: () =>
      [...db.values()].map((m) => ({
        eidPrefix: formatPrefix(m.eidPrefix),
        iid: m.iid,
        ttl: m.ttl,
        rlocs: locs(m.rlocAddresses),
      })),
    addStaticMapping: (e) => void statics.set(key(e), e),
    removeStaticMapping: (eidPrefix, iid) => statics.delete(key({ eidPrefix, iid })),
    addDatabaseMapping: (m) => void db.set(key(m), m),
    removeDatabaseMapping: (eidPrefix, iid) => db.delete(key({ eidPrefix, iid })),
  };
  return Promise.resolve({ close: () => Promise.resolve(), statusSource: () => source });
}

const path = Deno.args[0];
if (path === undefined) throw new Error("usage: edit_role.ts CONFIG");
const r = await loadConfig(path);
if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
// A free port instead of the file's (a config file cannot say port 0).
const config: Config = { ...r.config, api: { ...r.config.api, port: 0 } };
Deno.exit(await runRole("xtr", config, start, { configPath: path }));
