/**
 * One timer for many deadlines: a hashed timing wheel. A role with
 * thousands of requests outstanding (a ddt-mr waiting for referrals, a
 * tunnel router resolving misses) armed a `setTimeout` per request and
 * cleared it when the answer came, nearly always first: two timer
 * operations and a closure per message. Here a deadline is an entry in a
 * bucket of the wheel, cancelling it marks it, and one `setTimeout` ticks
 * the wheel while anything is in it (none when it is empty, so an idle role
 * or a test leaves no timer behind).
 *
 * - `slots` buckets of `tickMs` each: a deadline goes to the bucket of its
 *   tick; one further than a turn of the wheel waits there for its turn.
 * - Deadlines fire at most one tick late, never early, in the order of
 *   their ticks.
 * - Time is real time (`performance.now()`, as `setTimeout` counts it),
 *   whatever clock the role reads otherwise.
 *
 * @module
 */

/** A deadline in the wheel; {@link TimerWheel.cancel} takes it back. */
export interface WheelTimer<T> {
  /** What {@link TimerWheel}'s callback gets when the deadline passes. */
  readonly item: T;
  /** When it fires, in `performance.now()` milliseconds. */
  readonly deadline: number;
  /** Cancelled, or fired. */
  done: boolean;
}

/** Options of {@link TimerWheel}. */
export interface TimerWheelOptions {
  /** Width of a bucket, ms (default 10). */
  readonly tickMs?: number;
  /** Buckets (default 512: a turn of 5.12 s at 10 ms). */
  readonly slots?: number;
  /** Clock (default `performance.now()`); tests pass their own. */
  readonly now?: () => number;
  /** Timer arming (default `setTimeout`/`clearTimeout`); tests pass their own. */
  readonly setTimer?: (fn: () => void, ms: number) => unknown;
  readonly clearTimer?: (t: unknown) => void;
}

/** Deadlines of items of type `T`, each handed to `expired` when it passes (see the module notes). */
export class TimerWheel<T> {
  readonly #expired: (item: T) => void;
  readonly #tickMs: number;
  readonly #buckets: WheelTimer<T>[][];
  readonly #now: () => number;
  readonly #setTimer: (fn: () => void, ms: number) => unknown;
  readonly #clearTimer: (t: unknown) => void;
  /** The tick the wheel has processed up to (exclusive). */
  #tick = -1;
  #live = 0;
  #timer: unknown;
  #armedFor = Infinity;
  #closed = false;

  /** A wheel that calls `expired(item)` for each deadline that passes. */
  constructor(expired: (item: T) => void, options: TimerWheelOptions = {}) {
    this.#expired = expired;
    this.#tickMs = options.tickMs ?? 10;
    const slots = options.slots ?? 512;
    if (!(this.#tickMs > 0) || !Number.isInteger(slots) || slots < 1) {
      throw new RangeError(`bad wheel: tick ${this.#tickMs} ms, ${slots} slots`);
    }
    this.#buckets = Array.from({ length: slots }, () => []);
    this.#now = options.now ?? (() => performance.now());
    this.#setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.#clearTimer = options.clearTimer ??
      ((t) => clearTimeout(t as ReturnType<typeof setTimeout>));
  }

  /** Deadlines pending (not fired, not cancelled). */
  get size(): number {
    return this.#live;
  }

  /** Adds a deadline `delayMs` from now for `item`. */
  add(item: T, delayMs: number): WheelTimer<T> {
    if (this.#closed) throw new RangeError("the timer wheel is closed");
    const now = this.#now();
    const deadline = now + Math.max(0, delayMs);
    const t: WheelTimer<T> = { item, deadline, done: false };
    // Never into a bucket already processed: at the earliest, the next tick.
    if (this.#tick < 0) this.#tick = Math.floor(now / this.#tickMs);
    const tick = Math.max(Math.ceil(deadline / this.#tickMs), this.#tick);
    this.#buckets[tick % this.#buckets.length]!.push(t);
    this.#live++;
    this.#arm(tick);
    return t;
  }

  /** Takes back a deadline (nothing if it fired or was cancelled already). */
  cancel(t: WheelTimer<T>): void {
    if (t.done) return;
    t.done = true;
    this.#live--;
    if (this.#live === 0) this.#disarm();
  }

  /** Cancels everything; later {@link add}s throw. */
  close(): void {
    this.#closed = true;
    for (const b of this.#buckets) {
      for (const t of b) t.done = true;
      b.length = 0;
    }
    this.#live = 0;
    this.#disarm();
  }

  #arm(tick: number): void {
    const at = tick * this.#tickMs;
    if (this.#timer !== undefined && this.#armedFor <= at) return;
    if (this.#timer !== undefined) this.#clearTimer(this.#timer);
    this.#armedFor = at;
    this.#timer = this.#setTimer(() => this.#expiredTick(), Math.max(0, at - this.#now()));
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clearTimer(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
  }

  /** Fires every deadline of the ticks that have passed, then arms for the next one due. */
  #expiredTick(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = this.#now();
    const until = Math.floor(now / this.#tickMs);
    const n = this.#buckets.length;
    // A late timer (a busy event loop) catches up at most one turn: every bucket once.
    const from = Math.max(this.#tick, until - n + 1);
    const due: WheelTimer<T>[] = [];
    for (let tick = from; tick <= until; tick++) {
      const b = this.#buckets[tick % n]!;
      let keep = 0;
      for (let i = 0; i < b.length; i++) {
        const t = b[i]!;
        if (t.done) continue;
        if (t.deadline <= now) due.push(t);
        else b[keep++] = t;
      }
      b.length = keep;
    }
    this.#tick = until + 1;
    due.sort((a, b) => a.deadline - b.deadline);
    for (const t of due) {
      if (t.done) continue; // cancelled by an earlier one's callback
      t.done = true;
      this.#live--;
      this.#expired(t.item);
    }
    if (this.#live > 0 && !this.#closed) this.#armNext(now);
  }

  /** Arms for the earliest bucket that holds a live deadline. */
  #armNext(now: number): void {
    const n = this.#buckets.length;
    let earliest = Infinity;
    for (let k = 0; k < n; k++) {
      const b = this.#buckets[(this.#tick + k) % n]!;
      for (const t of b) if (!t.done && t.deadline < earliest) earliest = t.deadline;
      // A bucket's deadlines all fall in this turn or later ones: the first
      // bucket with a deadline in this turn holds the earliest.
      if (earliest < (this.#tick + k + 1) * this.#tickMs) break;
    }
    if (earliest === Infinity) return;
    this.#arm(Math.max(Math.ceil(earliest / this.#tickMs), Math.floor(now / this.#tickMs) + 1));
  }
}
