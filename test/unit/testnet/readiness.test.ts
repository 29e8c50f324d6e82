import { describe, expect, it } from 'vitest'
import { DHT_READY_TIMEOUT, FULL_CHECK_MAX_NODES, readinessOffsets, readyTimeout } from '../../../src/testnet/readiness.js'

describe('testnet readiness lookups', () => {
  it('checks every ordered pair up to FULL_CHECK_MAX_NODES nodes', () => {
    expect(readinessOffsets(1)).toEqual([])
    expect(readinessOffsets(6)).toEqual([1, 2, 3, 4, 5])
    expect(readinessOffsets(FULL_CHECK_MAX_NODES)).toHaveLength(FULL_CHECK_MAX_NODES - 1)
  })

  it('beyond, checks rounds at offsets near and far, each a node searching and a node found once', () => {
    expect(readinessOffsets(FULL_CHECK_MAX_NODES + 1)).toEqual([1, 2, 4, 8, 16])
    expect(readinessOffsets(30)).toEqual([1, 2, 4, 8, 15, 16])
    expect(readinessOffsets(50)).toEqual([1, 2, 4, 8, 16, 25, 32])
    for (const n of [17, 30, 50, 100]) {
      for (const k of readinessOffsets(n)) expect(k).toBeGreaterThan(0)
      for (const k of readinessOffsets(n)) expect(k).toBeLessThan(n)
    }
  })

  it('gives more lookups more time, never less than the base timeout', () => {
    expect(readyTimeout(0)).toBe(DHT_READY_TIMEOUT)
    expect(readyTimeout(350)).toBeGreaterThan(readyTimeout(180))
  })
})
