import { describe, expect, it } from 'vitest'
import { PeerBudget } from '../../../src/prekeys/budget.js'

const MINUTE = 60_000

function clock (start = 1_000_000): { now: () => number, advance: (ms: number) => void } {
  let time = start
  return { now: () => time, advance: (ms) => { time += ms } }
}

describe('the per-peer one-time prekey budget', () => {
  it('gives each peer its burst, then one token per refill period', () => {
    const c = clock()
    const budget = new PeerBudget(3, 10 * MINUTE, 100, c.now)
    expect([1, 2, 3, 4, 5].map(() => budget.tryTake('a'))).toEqual([true, true, true, false, false])
    // another peer has its own bucket
    expect(budget.tryTake('b')).toBe(true)

    c.advance(9 * MINUTE)
    expect(budget.tryTake('a')).toBe(false)
    c.advance(1 * MINUTE)
    expect(budget.tryTake('a')).toBe(true)
    expect(budget.tryTake('a')).toBe(false)

    // a long silence refills up to the burst, not beyond
    c.advance(1000 * MINUTE)
    expect([1, 2, 3, 4].map(() => budget.tryTake('a'))).toEqual([true, true, true, false])
  })

  it('refused requests do not push the refill back', () => {
    const c = clock()
    const budget = new PeerBudget(1, 10 * MINUTE, 100, c.now)
    expect(budget.tryTake('a')).toBe(true)
    for (let i = 0; i < 9; i++) {
      c.advance(MINUTE)
      expect(budget.tryTake('a')).toBe(false)
    }
    c.advance(MINUTE)
    expect(budget.tryTake('a')).toBe(true)
  })

  it('keeps memory bounded under a flood of fresh PeerIds', () => {
    const c = clock()
    const budget = new PeerBudget(2, 10 * MINUTE, 1000, c.now)
    for (let i = 0; i < 20_000; i++) expect(budget.tryTake(`peer-${i}`)).toBe(true)
    expect(budget.trackedPeers).toBeLessThanOrEqual(1000)
  })

  it('forgets first the peers whose bucket is full again, then the least recently seen', () => {
    const c = clock()
    const budget = new PeerBudget(2, 10 * MINUTE, 10, c.now)
    const drained = ['a1', 'a2', 'a3', 'a4', 'a5']
    for (const peer of drained) { budget.tryTake(peer); budget.tryTake(peer) }
    budget.tryTake('full')
    c.advance(10 * MINUTE) // 'full' has its 2 tokens back, the others 1 of 2
    for (const peer of ['p1', 'p2', 'p3', 'p4', 'p5']) budget.tryTake(peer)
    // 11 peers > 10: 'full' goes first (it carries nothing), then the oldest, a1, down to 9
    expect(budget.trackedPeers).toBe(9)
    // a2 is remembered: one token left, not a fresh bucket of two
    expect([budget.tryTake('a2'), budget.tryTake('a2')]).toEqual([true, false])
  })
})
