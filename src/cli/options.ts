import { InvalidArgumentError } from 'commander'

/** commander accumulator for repeatable options. */
export function collect (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

/** A whole-number flag within bounds, or commander's one-line error naming the flag. */
export function integerOption (min: number, max: number) {
  return (value: string): number => {
    const n = Number(value)
    if (!/^\d+$/.test(value) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`)
    }
    return n
  }
}
