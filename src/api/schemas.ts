import { EARLY_HOLD_MAX } from '../groups/constants.js'
import { EVENT_HOLD_MAX } from '../messaging/constants.js'
import { SECOND } from '../units.js'

/** JSON schemas shared by routes; they validate requests and document the API (OpenAPI). */
export const peerIdSchema = {
  type: 'string',
  minLength: 40,
  maxLength: 100,
  pattern: '^[1-9A-HJ-NP-Za-km-z]+$',
  description: 'a libp2p PeerId (base58btc), e.g. 12D3KooW…'
} as const

export const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } }
    }
  }
} as const

/**
 * One event as the event stream sends it (the JSON of each `data:` field; `id:` and `event:`
 * repeat its id and type). The data of each type is what GET routes show of the same things.
 */
export const eventSchema = {
  type: 'object',
  required: ['id', 'type', 'at', 'data'],
  properties: {
    id: { type: 'integer', minimum: 1, description: 'one more than the event before, across restarts: resume with Last-Event-ID' },
    type: { type: 'string', description: 'message.received, message.status, contact.request, contact.updated, identity.changed, group.invite, group.joined, group.message, group.member.added, group.member.removed' },
    at: { type: 'integer', description: 'when the event was committed, ms since the epoch' },
    data: {
      type: 'object',
      description: `depends on the type. message.received and group.message come per conversation (per sender in a group) in the sender's seq order: an event that arrives ahead of an earlier one waits for it, at most ${EVENT_HOLD_MAX / SECOND} s (direct) or ${EARLY_HOLD_MAX / SECOND} s (group), and then carries \`gap\`; one that fills a gap named before carries \`late\`. The message itself is in the history as soon as it arrives.`,
      properties: {
        gap: {
          type: 'object',
          required: ['from', 'to'],
          description: 'message.received, group.message: this event waited for earlier messages of its sender and went out without them; seqs from..to (inclusive) are missing right before it',
          properties: { from: { type: 'integer', minimum: 1 }, to: { type: 'integer', minimum: 1 } }
        },
        late: { type: 'boolean', const: true, description: 'message.received, group.message: the message fills a gap an earlier event named; it comes after messages with higher seqs' }
      }
    }
  }
} as const

export const stringArray = { type: 'array', items: { type: 'string' } } as const

export const peerSummarySchema = {
  type: 'object',
  required: ['peerId', 'addresses'],
  properties: { peerId: { type: 'string' }, addresses: stringArray }
} as const
