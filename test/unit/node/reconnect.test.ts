import { describe, expect, it } from 'vitest'
import { backoffDelay } from '../../../src/backoff.js'
import { connectivityOf, DEFAULT_BACKOFF } from '../../../src/node/reconnect.js'
import { MIN_PEERS, RECONNECT_BASE_DELAY, RECONNECT_MAX_DELAY } from '../../../src/node/constants.js'

describe('reconnect backoff', () => {
  it('starts at the base delay and doubles per failure, with equal jitter: a pick in [d/2, d]', () => {
    expect(backoffDelay(0, DEFAULT_BACKOFF, () => 0)).toBe(RECONNECT_BASE_DELAY / 2)
    expect(backoffDelay(0, DEFAULT_BACKOFF, () => 0.999999)).toBe(RECONNECT_BASE_DELAY)
    expect(backoffDelay(1, DEFAULT_BACKOFF, () => 0.999999)).toBe(2 * RECONNECT_BASE_DELAY)
    expect(backoffDelay(3, DEFAULT_BACKOFF, () => 0)).toBe(4 * RECONNECT_BASE_DELAY)
  })

  it('never waits longer than the cap, however many failures, and never less than half of it once there', () => {
    for (const failures of [5, 6, 20, 1000, Number.MAX_SAFE_INTEGER]) {
      expect(backoffDelay(failures, DEFAULT_BACKOFF, () => 0.999999)).toBeLessThanOrEqual(RECONNECT_MAX_DELAY)
      expect(backoffDelay(failures, DEFAULT_BACKOFF, () => 0)).toBe(RECONNECT_MAX_DELAY / 2)
    }
    // the step where the doubling meets the cap
    const atCap = Math.ceil(Math.log2(RECONNECT_MAX_DELAY / RECONNECT_BASE_DELAY))
    expect(backoffDelay(atCap - 1, DEFAULT_BACKOFF, () => 0.999999)).toBeLessThan(RECONNECT_MAX_DELAY)
    expect(backoffDelay(atCap, DEFAULT_BACKOFF, () => 0.999999)).toBe(RECONNECT_MAX_DELAY)
  })

  it('treats a negative failure count as none', () => {
    expect(backoffDelay(-3, DEFAULT_BACKOFF, () => 0)).toBe(RECONNECT_BASE_DELAY / 2)
  })

  it('spreads nodes that failed together: the jitter covers the upper half of the delay', () => {
    const picks = Array.from({ length: 200 }, () => backoffDelay(2, DEFAULT_BACKOFF))
    expect(Math.min(...picks)).toBeGreaterThanOrEqual(2 * RECONNECT_BASE_DELAY)
    expect(Math.max(...picks)).toBeLessThanOrEqual(4 * RECONNECT_BASE_DELAY)
    expect(new Set(picks).size).toBeGreaterThan(20)
  })
})

describe('connectivity', () => {
  it('is isolated at 0 peers, low below the minimum, ok from it on', () => {
    expect(connectivityOf(0, MIN_PEERS)).toBe('isolated')
    expect(connectivityOf(1, MIN_PEERS)).toBe('low')
    expect(connectivityOf(MIN_PEERS - 1, MIN_PEERS)).toBe('low')
    expect(connectivityOf(MIN_PEERS, MIN_PEERS)).toBe('ok')
  })
})
