/**
 * Padding of octet's plaintexts (a DM's Plaintext, a group's GroupPlaintext):
 * both carry their padding in bytes field 4, so that the encoding's length
 * says only which block of sizes the text falls in.
 */

/** How many padding bytes make an encoding of `unpaddedLength` bytes (without field 4) a multiple of `block`. */
export function paddingLength (unpaddedLength: number, block: number): number {
  // field 4 adds one tag byte, a varint length, and the padding itself
  for (let target = Math.ceil((unpaddedLength + 2) / block) * block; ; target += block) {
    for (let varintBytes = 1; varintBytes <= 3; varintBytes++) {
      const length = target - unpaddedLength - 1 - varintBytes
      if (length >= 0 && varintLength(length) === varintBytes) return length
    }
  }
}

function varintLength (n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : 3
}
