import { describe, expect, it } from 'vitest'
import { trackSequence } from '../../../src/messaging/records.js'
import type { ConversationRecord } from '../../../src/messaging/records.js'

const empty: ConversationRecord = { peerId: 'p', nextSeq: 1, highestSeq: 0, missing: [], lastMessageAt: 0, unread: 0 }

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
