import assert from "node:assert/strict";
import { TimerWheel } from "./timer_wheel.ts";

/** A clock and one-shot timers the test moves by hand. */
class FakeTime {
  now = 1_000_000;
  timers = new Map<number, { at: number; fn: () => void }>();
  #id = 0;
  readonly setTimer = (fn: () => void, ms: number): unknown => {
    const id = ++this.#id;
    this.timers.set(id, { at: this.now + ms, fn });
    return id;
  };
  readonly clearTimer = (t: unknown): void => void this.timers.delete(t as number);
  /** Moves time to `to`, firing the timers due on the way, in order. */
  advance(to: number): void {
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= to && (!next || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.now = Math.max(this.now, next[1].at);
      next[1].fn();
    }
    this.now = to;
  }
}

function wheel(t: FakeTime, fired: string[], slots = 8): TimerWheel<string> {
  return new TimerWheel<string>((x) => fired.push(`${x}@${t.now - 1_000_000}`), {
    tickMs: 10,
    slots,
    now: () => t.now,
    setTimer: t.setTimer,
    clearTimer: t.clearTimer,
  });
}

Deno.test("TimerWheel fires each deadline at most one tick late, never early, in order", () => {
  const t = new FakeTime();
  const fired: string[] = [];
  const w = wheel(t, fired);
  w.add("c", 35);
  w.add("a", 5);
  w.add("b", 20);
  assert.equal(w.size, 3);
  assert.equal(t.timers.size, 1, "one timer for all of them");
  t.advance(t.now + 4);
  assert.deepEqual(fired, []);
  t.advance(t.now + 100);
  assert.deepEqual(fired, ["a@10", "b@20", "c@40"]);
  assert.equal(w.size, 0);
  assert.equal(t.timers.size, 0, "no timer once empty");
});

Deno.test("TimerWheel: a cancelled deadline never fires, and the last cancel disarms the timer", () => {
  const t = new FakeTime();
  const fired: string[] = [];
  const w = wheel(t, fired);
  const a = w.add("a", 10);
  const b = w.add("b", 30);
  w.cancel(a);
  w.cancel(a); // twice: nothing more
  assert.equal(w.size, 1);
  t.advance(t.now + 15);
  assert.deepEqual(fired, []);
  w.cancel(b);
  assert.equal(t.timers.size, 0);
  t.advance(t.now + 100);
  assert.deepEqual(fired, []);
});

Deno.test("TimerWheel keeps deadlines further than a turn of the wheel for their own turn", () => {
  const t = new FakeTime();
  const fired: string[] = [];
  const w = wheel(t, fired, 4); // a turn is 40 ms
  w.add("far", 130);
  w.add("near", 10);
  t.advance(t.now + 125);
  assert.deepEqual(fired, ["near@10"]);
  t.advance(t.now + 10);
  assert.deepEqual(fired, ["near@10", "far@130"]);
});

Deno.test("TimerWheel: what a callback adds fires later, and a late tick catches up", () => {
  const t = new FakeTime();
  const fired: string[] = [];
  const w = new TimerWheel<string>((x) => {
    fired.push(`${x}@${t.now - 1_000_000}`);
    if (x === "first") w.add("again", 20);
  }, { tickMs: 10, slots: 8, now: () => t.now, setTimer: t.setTimer, clearTimer: t.clearTimer });
  w.add("first", 10);
  w.add("other", 12);
  // The event loop was busy: the timer runs 500 ms late, past several turns.
  const [id, timer] = [...t.timers][0]!;
  t.timers.delete(id);
  t.now += 500;
  timer.fn();
  assert.deepEqual(fired, ["first@500", "other@500"]);
  t.advance(t.now + 30);
  assert.deepEqual(fired, ["first@500", "other@500", "again@520"]);
  w.close();
  assert.throws(() => w.add("x", 1), RangeError);
  assert.equal(t.timers.size, 0);
});

Deno.test("TimerWheel on real timers: thousands of deadlines, one timer, each fired once", async () => {
  const fired = new Set<number>();
  let twice = 0;
  const w = new TimerWheel<number>((i) => {
    if (fired.has(i)) twice++;
    fired.add(i);
  });
  const start = performance.now();
  const handles = Array.from({ length: 5000 }, (_, i) => w.add(i, 20 + (i % 50)));
  for (let i = 0; i < 5000; i += 2) w.cancel(handles[i]!);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(fired.size, 2500);
  assert.equal(twice, 0);
  assert.ok([...fired].every((i) => i % 2 === 1));
  assert.ok(performance.now() - start >= 20);
  assert.equal(w.size, 0);
});
