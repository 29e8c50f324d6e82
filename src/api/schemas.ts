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

export const stringArray = { type: 'array', items: { type: 'string' } } as const

export const peerSummarySchema = {
  type: 'object',
  required: ['peerId', 'addresses'],
  properties: { peerId: { type: 'string' }, addresses: stringArray }
} as const
