import assert from "node:assert/strict";
import { parseConfig } from "../config/mod.ts";
import type { RoleHandle, RoleStart } from "../core/role.ts";
import { parseFdLimit, runRole } from "./run_role.ts";

const CONFIG = (() => {
  const r = parseConfig(
    [
      'operating-mode = "MS"',
      "[api]",
      "enabled = false",
      "[[lisp-site]]",
      'eid-prefix = "10.1.0.0/16"',
      'key = "k"',
    ].join("\n"),
    { role: "ms" },
  );
  if (!r.ok) throw new Error(r.errors.join("\n"));
  return r.config;
})();

/** A role that does `misbehave` once started, and records its close. */
function role(misbehave: () => void): { start: RoleStart; closed: () => boolean } {
  let closed = false;
  const start: RoleStart = () => {
    setTimeout(misbehave, 20);
    // What a real role's sockets do: keep the event loop alive until close().
    const alive = setInterval(() => {}, 1_000);
    const handle: RoleHandle = {
      close: () => {
        clearInterval(alive);
        closed = true;
        return Promise.resolve();
      },
    };
    return Promise.resolve(handle);
  };
  return { start, closed: () => closed };
}

async function run(misbehave: () => void) {
  const lines: string[] = [];
  const r = role(misbehave);
  const code = await runRole("ms", CONFIG, r.start, { sink: { write: (l) => lines.push(l) } });
  return { code, closed: r.closed(), log: lines.join("") };
}

Deno.test("an uncaught exception in a role stops it cleanly: logged, closed, exit 1", async () => {
  const { code, closed, log } = await run(() => {
    throw new Error("boom in a timer");
  });
  assert.equal(code, 1);
  assert.ok(closed, "the role's close() ran");
  assert.match(log, / uncaught-error kind=exception error="Error: boom in a timer" stack=/);
  assert.match(log, / stopping reason="uncaught error"\n/);
  assert.match(log, / stopped exit-code=1\n/);
});

Deno.test("an unhandled rejection in a role stops it cleanly: logged, closed, exit 1", async () => {
  const { code, closed, log } = await run(() => {
    Promise.reject(new RangeError("nobody awaits this"));
  });
  assert.equal(code, 1);
  assert.ok(closed);
  assert.match(log, / uncaught-error kind=rejection error="RangeError: nobody awaits this"/);
  assert.match(log, / stopped exit-code=1\n/);
});

Deno.test("runRole() stops cleanly on any stop signal (SIGUSR2 here), exit 0", async () => {
  const { code, closed, log } = await run(() => Deno.kill(Deno.pid, "SIGUSR2"));
  assert.equal(code, 0);
  assert.ok(closed);
  assert.match(log, / stopping signal=SIGUSR2\n/);
  assert.match(log, / stopped\n/);
});

Deno.test("parseFdLimit() reads Max open files of /proc/self/limits", () => {
  const limits = [
    "Limit                     Soft Limit           Hard Limit           Units     ",
    "Max processes             unlimited            unlimited            processes ",
    "Max open files            1024                 524288               files     ",
  ].join("\n");
  assert.deepEqual(parseFdLimit(limits), { soft: 1024, hard: 524288 });
  assert.deepEqual(
    parseFdLimit("Max open files            unlimited            unlimited            files"),
    { soft: Infinity, hard: Infinity },
  );
  assert.equal(parseFdLimit("Max processes 1 1"), undefined);
});
