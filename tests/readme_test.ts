/**
 * The README's commands work as copied: the loopback example (an ms and an
 * mr, a lig through them, `kill %1 %2`) runs in bash, exactly as the README
 * has it, in a copy of the repository; every `npm run X` it names is a
 * script of package.json and every `deno task X` a task of deno.json.
 *
 * Loopback addresses: 127.0.0.61 (ms), 127.0.0.62 (mr), API ports 9961 and
 * 9962, as the README says.
 *
 * @module
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;
const README = Deno.readTextFileSync(`${ROOT}README.md`);

/** The first ```sh block after the line that starts with `intro`. */
function shBlockAfter(intro: string): string {
  const at = README.indexOf(`\n${intro}`);
  assert.ok(at >= 0, `README has "${intro}"`);
  const m = /```sh\n([\s\S]*?)```/.exec(README.slice(at));
  assert.ok(m !== null, `a sh block after "${intro}"`);
  return m[1]!;
}

Deno.test("every npm run and deno task the README names exists", () => {
  const pkg = JSON.parse(Deno.readTextFileSync(`${ROOT}package.json`)) as {
    scripts: Record<string, string>;
  };
  const deno = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)) as {
    tasks: Record<string, string>;
  };
  const npm = [...README.matchAll(/npm run (?:-s )?([a-z0-9:-]+)/g)].map((m) => m[1]!);
  const tasks = [...README.matchAll(/deno task ([a-z0-9:-]+)/g)].map((m) => m[1]!);
  assert.ok(npm.includes("lab") && npm.includes("demo"), npm.join(" "));
  for (const n of new Set(npm)) assert.ok(pkg.scripts[n] !== undefined, `npm run ${n}`);
  for (const t of new Set(tasks)) assert.ok(deno.tasks[t] !== undefined, `deno task ${t}`);
});

Deno.test({
  name: "the README's loopback example runs as copied: lig answers, kill %1 %2 stops both",
  sanitizeResources: false,
  async fn() {
    const script = shBlockAfter("A map-server and a map-resolver on loopback");
    assert.match(script, /kill %1 %2/);
    // A copy of the repository (node_modules linked), where the example's files go.
    const dir = await Deno.makeTempDir({ prefix: "oor-readme-" });
    try {
      for (const e of Deno.readDirSync(ROOT)) {
        if ([".git", "node_modules", "dist"].includes(e.name)) continue;
        await Deno.copyFile(`${ROOT}${e.name}`, `${dir}/${e.name}`).catch(async () => {
          const r = await new Deno.Command("cp", { args: ["-r", `${ROOT}${e.name}`, dir] })
            .output();
          assert.ok(r.success, `copy ${e.name}`);
        });
      }
      await Deno.symlink(`${ROOT}node_modules`, `${dir}/node_modules`);
      const child = new Deno.Command("bash", {
        args: ["-e", "-c", script],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // The pipes close when bash and both roles are gone: a role left running hangs here.
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      const r = await child.output();
      clearTimeout(timer);
      const out = new TextDecoder().decode(r.stdout);
      const err = new TextDecoder().decode(r.stderr);
      const context = `stdout:\n${out}\nstderr:\n${err}`;
      assert.equal(r.code, 0, context);
      assert.match(out, /10\.1\.1\.0\/24/, context);
      assert.match(out, /127\.0\.0\.70/, context);
      assert.match(err, /ms api-listening url=http:\/\/127\.0\.0\.1:9961\//, context);
      assert.match(err, /mr api-listening url=http:\/\/127\.0\.0\.1:9962\//, context);
      assert.doesNotMatch(err, /api-listen-failed|start-failed/, context);
      // Both stopped cleanly on the SIGTERM of kill %1 %2.
      assert.match(err, /ms stopping signal=SIGTERM/, context);
      assert.match(err, /mr stopping signal=SIGTERM/, context);
      assert.equal(err.match(/ stopped/g)?.length, 2, context);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
