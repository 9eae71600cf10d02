import assert from "node:assert/strict";
import { fileSink, levelForDebug, Logger, type LoggerOptions } from "./log.ts";

/** A logger on a fake clock, writing into an array. */
function capture(opts: Partial<LoggerOptions> = {}) {
  const lines: string[] = [];
  const clock = { t: Date.UTC(2024, 0, 2, 3, 4, 5, 678) };
  const logger = new Logger({
    role: "ms",
    sink: { write: (l) => lines.push(l) },
    now: () => clock.t,
    ...opts,
  });
  return { logger, lines, clock };
}

Deno.test("levelForDebug() maps OOR's debug 0..3 to info, debug, trace, trace", () => {
  assert.deepEqual([0, 1, 2, 3].map(levelForDebug), ["info", "debug", "trace", "trace"]);
});

Deno.test("Logger writes only the levels its debug setting enables", () => {
  const levels = ["error", "warn", "info", "debug", "trace"] as const;
  const shown = [0, 1, 2, 3].map((debug) => {
    const { logger, lines } = capture({ level: levelForDebug(debug) });
    for (const l of levels) logger.log(l, `e-${l}`);
    return lines.map((line) => line.trimEnd().split(/ +/)[3]);
  });
  assert.deepEqual(shown, [
    ["e-error", "e-warn", "e-info"],
    ["e-error", "e-warn", "e-info", "e-debug"],
    ["e-error", "e-warn", "e-info", "e-debug", "e-trace"],
    ["e-error", "e-warn", "e-info", "e-debug", "e-trace"],
  ]);
});

Deno.test("Logger text lines are 'ts level role event k=v', quoting values with spaces", () => {
  const { logger, lines } = capture();
  logger.info("registered", {
    prefix: "10.1.0.0/16",
    peer: "127.0.0.1:4342",
    xtrId: 0xabcn,
    note: "two words",
    proxy: false,
    absent: undefined,
  });
  assert.deepEqual(lines, [
    '2024-01-02T03:04:05.678Z info  ms registered prefix=10.1.0.0/16 peer=127.0.0.1:4342 xtrId=0xabc note="two words" proxy=false\n',
  ]);
});

Deno.test("Logger JSON lines are one object each with ts, level, role, event and the fields", () => {
  const { logger, lines } = capture({ format: "json", level: "trace" });
  logger.warn("control-dropped", { reason: "auth", peer: "[::1]:4342", n: 3, nonce: 255n });
  logger.trace("map-request", { text: 'a "quoted"\nline' });
  assert.equal(lines.length, 2);
  for (const l of lines) {
    assert.ok(l.endsWith("\n") && !l.slice(0, -1).includes("\n"), l);
  }
  assert.deepEqual(JSON.parse(lines[0]!), {
    ts: "2024-01-02T03:04:05.678Z",
    level: "warn",
    role: "ms",
    event: "control-dropped",
    reason: "auth",
    peer: "[::1]:4342",
    n: 3,
    nonce: "0xff",
  });
  assert.equal(JSON.parse(lines[1]!).text, 'a "quoted"\nline');
});

Deno.test("Logger JSON keeps ts, level, role and event when a field has one of those names", () => {
  const { logger, lines } = capture({ format: "json" });
  logger.info("x", { role: "peer-role", event: "inner", level: 3, other: 1 });
  assert.deepEqual(JSON.parse(lines[0]!), {
    ts: "2024-01-02T03:04:05.678Z",
    level: "info",
    role: "ms",
    event: "x",
    role_: "peer-role",
    event_: "inner",
    level_: 3,
    other: 1,
  });
});

Deno.test("Logger.limited() writes once per interval per key and counts what it held back", () => {
  const { logger, lines, clock } = capture();
  const drop = (peer: string) =>
    logger.limited(`drop ${peer}`, 60_000, "warn", "control-dropped", { peer });
  assert.equal(drop("a"), true);
  for (let i = 0; i < 5; i++) assert.equal(drop("a"), false);
  assert.equal(drop("b"), true);
  clock.t += 59_999;
  assert.equal(drop("a"), false);
  clock.t += 1;
  assert.equal(drop("a"), true);
  assert.deepEqual(lines.map((l) => l.slice(25).trimEnd()), [
    "warn  ms control-dropped peer=a",
    "warn  ms control-dropped peer=b",
    "warn  ms control-dropped peer=a suppressed=6",
  ]);
});

Deno.test("Logger.limited() with a disabled level writes nothing and returns false", () => {
  const { logger, lines } = capture({ level: "info" });
  assert.equal(logger.limited("k", 1000, "debug", "e"), false);
  assert.deepEqual(lines, []);
});

Deno.test("Logger.limited() stays bounded when every line has a new key", () => {
  const { logger, lines } = capture({ burst: 1_000_000 });
  for (let i = 0; i < 25_000; i++) logger.limited(`k${i}`, 60_000, "warn", "e");
  // Each new key writes once: the map of keys is bounded, not the keys' first lines.
  assert.equal(lines.length, 25_000);
  assert.equal(logger.limited("k24999", 60_000, "warn", "e"), false);
});

Deno.test("Logger caps each event at its burst per window and reports the rest in one line", () => {
  const { logger, lines, clock } = capture({ burst: 3, windowMs: 10_000 });
  for (let i = 0; i < 50; i++) logger.info("registered", { prefix: `10.${i}.0.0/16` });
  logger.warn("other-event");
  assert.equal(lines.length, 4, lines.join(""));
  clock.t += 10_000;
  logger.info("registered", { prefix: "10.99.0.0/16" });
  const events = lines.map((l) => l.split(" ").filter((w) => w !== "").slice(1, 4).join(" "));
  assert.deepEqual(events.slice(4), [
    "info ms log-suppressed",
    "info ms registered",
  ]);
  assert.match(lines[4]!, / of=registered lines=47 seconds=10\n$/);
});

Deno.test("Logger reports suppressed lines at the most severe level held back", () => {
  const { logger, lines, clock } = capture({ burst: 1, windowMs: 1000 });
  logger.info("e");
  logger.info("e");
  logger.error("e");
  logger.info("e");
  clock.t += 1000;
  logger.info("unrelated");
  assert.match(lines[1]!, / error ms log-suppressed of=e lines=3 /);
  assert.match(lines[2]!, / unrelated\n$/);
});

Deno.test("Logger.flush() reports held-back lines before the window ends, once", () => {
  const { logger, lines } = capture({ burst: 1, windowMs: 60_000 });
  logger.warn("e");
  logger.warn("e");
  logger.warn("e");
  logger.flush();
  logger.flush();
  logger.info("stopped");
  assert.equal(lines.length, 3, lines.join(""));
  assert.match(lines[1]!, / warn {2}ms log-suppressed of=e lines=2 seconds=1\n$/);
  assert.match(lines[2]!, / stopped\n$/);
});

Deno.test("Logger trace lines have no budget", () => {
  const { logger, lines } = capture({ level: "trace", burst: 2 });
  for (let i = 0; i < 10; i++) logger.trace("map-request");
  assert.equal(lines.length, 10);
});

Deno.test("Logger.close() reports held-back lines, closes the sink and silences later calls", () => {
  let closed = 0;
  const lines: string[] = [];
  const logger = new Logger({
    role: "mr",
    burst: 1,
    sink: { write: (l) => lines.push(l), close: () => closed++ },
  });
  logger.info("e");
  logger.info("e");
  logger.close();
  logger.close();
  logger.info("after");
  assert.equal(closed, 1);
  assert.equal(lines.length, 2);
  assert.match(lines[1]!, / log-suppressed of=e lines=1 /);
});

Deno.test("Logger never throws when its sink fails", () => {
  const logger = new Logger({
    role: "ms",
    sink: {
      write: () => {
        throw new Error("disk full");
      },
    },
  });
  logger.error("e");
  logger.limited("k", 1000, "warn", "w");
  assert.equal(logger.failedWrites, 2);
});

Deno.test("fileSink() creates the file readable by its group at most", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const sink = fileSink(`${dir}/new.log`);
    sink.write("x\n");
    sink.close?.();
    assert.equal(Deno.readTextFileSync(`${dir}/new.log`), "x\n");
    assert.equal((Deno.statSync(`${dir}/new.log`).mode ?? 0) & 0o037, 0);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("fileSink() appends lines to the file and closes it", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/oor.log`;
    Deno.writeTextFileSync(path, "earlier\n");
    const logger = new Logger({ role: "ddt", sink: fileSink(path), now: () => 0 });
    logger.info("ddt-node-ready", { port: 4342 });
    logger.close();
    assert.equal(
      Deno.readTextFileSync(path),
      "earlier\n1970-01-01T00:00:00.000Z info  ddt ddt-node-ready port=4342\n",
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
