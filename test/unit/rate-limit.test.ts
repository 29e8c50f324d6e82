import { describe, expect, it } from 'vitest'
import { RateLimiter } from '../../src/rate-limit.js'

const MINUTE = 60_000

function clock (start = 1_000_000): { now: () => number, advance: (ms: number) => void } {
  let time = start
  return { now: () => time, advance: (ms) => { time += ms } }
}

describe('RateLimiter: a token bucket per key', () => {
  it('allows a burst, then the steady rate, per key', () => {
    const c = clock()
    const limiter = new RateLimiter(10, 5, { now: c.now })
    expect(Array.from({ length: 8 }, () => limiter.tryTake('a'))).toEqual([true, true, true, true, true, false, false, false])
    // another key has its own bucket
    expect(limiter.tryTake('b')).toBe(true)
    c.advance(100)
    expect(limiter.tryTake('a')).toBe(true)
    expect(limiter.tryTake('a')).toBe(false)
    // a long silence refills up to the burst, not beyond
    c.advance(10_000)
    expect(Array.from({ length: 6 }, () => limiter.tryTake('a'))).toEqual([true, true, true, true, true, false])
  })

  it.each([
    { what: 'one every 10 min', perSecond: 1 / 600, burst: 3, full: 10 * MINUTE },
    { what: 'one every 30 min', perSecond: 1 / 1800, burst: 5, full: 30 * MINUTE },
    { what: '5 a second', perSecond: 5, burst: 40, full: 200 }
  ])('slow and fast rates refill one token exactly on time ($what)', ({ perSecond, burst, full }) => {
    const c = clock()
    const limiter = new RateLimiter(perSecond, burst, { now: c.now })
    for (let i = 0; i < burst; i++) expect(limiter.tryTake('a')).toBe(true)
    expect(limiter.tryTake('a')).toBe(false)
    c.advance(full - 1)
    expect(limiter.tryTake('a')).toBe(false)
    c.advance(1)
    expect(limiter.tryTake('a')).toBe(true)
    expect(limiter.tryTake('a')).toBe(false)
  })

  it('refused requests neither cost nor push the refill back', () => {
    const c = clock()
    const limiter = new RateLimiter(1 / 600, 1, { now: c.now })
    expect(limiter.tryTake('a')).toBe(true)
    for (let i = 0; i < 9; i++) {
      c.advance(MINUTE)
      expect(limiter.tryTake('a')).toBe(false)
    }
    c.advance(MINUTE)
    expect(limiter.tryTake('a')).toBe(true)
  })

  it('charges one token per item; a batch larger than the bucket goes only from a full bucket, into debt', () => {
    const c = clock()
    const limiter = new RateLimiter(10, 5, { now: c.now })
    expect(limiter.tryTake('a', 3)).toBe(true)
    expect(limiter.tryTake('a', 3)).toBe(false) // 2 left
    expect(limiter.tryTake('a', 2)).toBe(true)
    c.advance(500) // refilled to the burst of 5
    expect(limiter.tryTake('a', 20)).toBe(true) // -15
    c.advance(1000) // -5
    expect(limiter.tryTake('a')).toBe(false)
    c.advance(600) // 1
    expect(limiter.tryTake('a')).toBe(true)
    // a batch larger than the burst from a fresh key goes at once
    expect(limiter.tryTake('b', 100)).toBe(true)
  })

  it('gives refunded tokens back, never above the burst', () => {
    const c = clock()
    const limiter = new RateLimiter(1, 10, { now: c.now })
    expect(limiter.tryTake('a', 10)).toBe(true)
    expect(limiter.tryTake('a')).toBe(false)
    limiter.refund('a', 4)
    expect(limiter.tryTake('a', 4)).toBe(true)
    expect(limiter.tryTake('a')).toBe(false)
    limiter.refund('a', 1000)
    expect(limiter.tryTake('a', 10)).toBe(true)
    expect(limiter.tryTake('a')).toBe(false)
    // refunding a key never seen leaves nothing behind
    limiter.refund('unknown', 3)
    expect(limiter.trackedKeys).toBe(1)
  })

  it('a clock that steps back adds no tokens and takes none', () => {
    const c = clock()
    const limiter = new RateLimiter(1, 3, { now: c.now })
    expect([limiter.tryTake('a'), limiter.tryTake('a')]).toEqual([true, true])
    c.advance(-60_000)
    // the token left is still there, and no more came
    expect([limiter.tryTake('a'), limiter.tryTake('a')]).toEqual([true, false])
    c.advance(999)
    expect(limiter.tryTake('a')).toBe(false)
    c.advance(1)
    expect(limiter.tryTake('a')).toBe(true)
  })

  it('keeps memory bounded under a flood of fresh keys', () => {
    const c = clock()
    const limiter = new RateLimiter(1 / 600, 2, { maxKeys: 1000, now: c.now })
    for (let i = 0; i < 20_000; i++) expect(limiter.tryTake(`peer-${i}`)).toBe(true)
    expect(limiter.trackedKeys).toBeLessThanOrEqual(1000)
  })

  it('forgets first the keys whose bucket is full again, then the least recently used', () => {
    const c = clock()
    const limiter = new RateLimiter(1 / 600, 2, { maxKeys: 10, now: c.now })
    for (const peer of ['a1', 'a2', 'a3', 'a4', 'a5']) { limiter.tryTake(peer); limiter.tryTake(peer) }
    limiter.tryTake('full')
    c.advance(10 * MINUTE) // 'full' has its 2 tokens back, the others 1 of 2
    for (const peer of ['p1', 'p2', 'p3', 'p4', 'p5']) limiter.tryTake(peer)
    // 11 keys > 10: 'full' goes first (it carries nothing), then the oldest, a1, down to 9
    expect(limiter.trackedKeys).toBe(9)
    // a2 is remembered: one token left, not a fresh bucket of two
    expect([limiter.tryTake('a2'), limiter.tryTake('a2')]).toEqual([true, false])
    // a1 was forgotten: a full bucket again
    expect([limiter.tryTake('a1'), limiter.tryTake('a1'), limiter.tryTake('a1')]).toEqual([true, true, false])
  })

  it('a refused key counts as used: it is not the first forgotten', () => {
    const c = clock()
    const limiter = new RateLimiter(1 / 600, 1, { maxKeys: 3, now: c.now })
    for (const key of ['old', 'k2', 'k3']) limiter.tryTake(key)
    expect(limiter.tryTake('old')).toBe(false) // now the most recently used
    limiter.tryTake('k4') // 4 > 3: down to 2, oldest first (k2, k3)
    expect(limiter.tryTake('old')).toBe(false)
  })

  it.each([{ perSecond: 1, burst: 0 }, { perSecond: 0, burst: 1 }, { perSecond: 1, burst: Number.NaN }])('refuses a limit that could never allow anything ($perSecond/s, $burst)', ({ perSecond, burst }) => {
    expect(() => new RateLimiter(perSecond, burst)).toThrow(RangeError)
  })
})
