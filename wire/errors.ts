/**
 * The single error class for malformed wire input.
 *
 * Every parser in `wire/` throws only `WireError` for bytes a peer could
 * send; misuse by our own code (a bad argument) is a `TypeError` or
 * `RangeError` instead.
 *
 * @module
 */

/** Malformed input: which field, at which byte offset, and why. */
export class WireError extends Error {
  /** Byte offset, from the start of the buffer given to the parser, where the fault was found. */
  readonly offset: number;
  /** The field being read, e.g. `"map-register.record-count"`. */
  readonly field: string;

  /**
   * Records where and why parsing failed.
   *
   * @param field the field being read when the fault was found
   * @param offset byte offset of that field
   * @param reason what is wrong, in a few words
   */
  constructor(field: string, offset: number, reason: string) {
    super(`${field} at offset ${offset}: ${reason}`);
    this.name = "WireError";
    this.field = field;
    this.offset = offset;
  }
}
