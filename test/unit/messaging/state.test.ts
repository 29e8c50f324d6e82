import { describe, expect, it } from 'vitest'
import { RateLimiter } from '../../../src/messaging/rate-limit.js'
import { trackSequence } from '../../../src/messaging/receiver.js'
import type { ConversationRecord } from '../../../src/messaging/records.js'

const empty: ConversationRecord = { peer: 'p', nextSeq: 1, highestSeq: 0, missing: [], lastMessageAt: 0, unread: 0 }

describe('trackSequence: gaps stay visible', () => {
  it.each([
    { arrivals: [1, 2, 3], highest: 3, missing: [] },
    { arrivals: [1, 4], highest: 4, missing: [2, 3] },
    { arrivals: [1, 4, 3], highest: 4, missing: [2] },
    { arrivals: [1, 4, 3, 2], highest: 4, missing: [] },
    { arrivals: [3, 1], highest: 3, missing: [2] },
    { arrivals: [2, 2], highest: 2, missing: [1] }
  ])('$arrivals → highest $highest, missing $missing', ({ arrivals, highest, missing }) => {
    const state = arrivals.reduce(trackSequence, empty)
    expect(state.highestSeq).toBe(highest)
    expect(state.missing).toEqual(missing)
  })

  it('caps the gaps it tracks', () => {
    const state = trackSequence(empty, 1_000_000)
    expect(state.missing.length).toBeLessThanOrEqual(1000)
  })
})

describe('RateLimiter', () => {
  it('allows a burst, then the steady rate, per key', () => {
    let now = 0
    const limiter = new RateLimiter(10, 5, () => now)
    const burst = Array.from({ length: 8 }, () => limiter.tryTake('a'))
    expect(burst).toEqual([true, true, true, true, true, false, false, false])
    expect(limiter.tryTake('b')).toBe(true)
    now += 100
    expect(limiter.tryTake('a')).toBe(true)
    expect(limiter.tryTake('a')).toBe(false)
    now += 10_000
    expect(Array.from({ length: 6 }, () => limiter.tryTake('a')).filter(Boolean)).toHaveLength(5)
  })
})

describe('RateLimiter with batches', () => {
  it('charges one token per item; a batch larger than the bucket goes only from a full bucket, into debt', () => {
    let now = 0
    const limiter = new RateLimiter(10, 5, () => now)
    expect(limiter.tryTake('a', 3)).toBe(true)
    expect(limiter.tryTake('a', 3)).toBe(false) // 2 left
    expect(limiter.tryTake('a', 2)).toBe(true)
    now += 500 // refilled to the burst of 5
    expect(limiter.tryTake('a', 20)).toBe(true) // -15
    now += 1000 // -5
    expect(limiter.tryTake('a')).toBe(false)
    now += 600 // 1
    expect(limiter.tryTake('a')).toBe(true)
  })
})
