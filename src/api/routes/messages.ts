import type { FastifyInstance } from 'fastify'
import type { Messenger } from '../../messaging/index.js'
import { DEFAULT_PAGE_SIZE, MAX_IDEMPOTENCY_KEY_LENGTH, MAX_PAGE_SIZE } from '../../messaging/constants.js'
import { peerIdSchema } from '../schemas.js'

export const messageSchema = {
  type: 'object',
  required: ['id', 'direction', 'peerId', 'author', 'seq', 'text', 'sentAt', 'status', 'updatedAt'],
  properties: {
    id: { type: 'string', description: '32 hex digits (random)' },
    direction: { type: 'string', enum: ['out', 'in'] },
    peerId: { type: 'string', description: 'the other side of the conversation' },
    author: { type: 'string', description: 'the PeerId of who wrote it: ours when direction is out, the peer\'s when in' },
    seq: { type: 'integer', description: "the sender's sequence number in this conversation" },
    text: { type: 'string' },
    sentAt: { type: 'number' },
    receivedAt: { type: 'number' },
    status: { type: 'string', enum: ['queued', 'sent', 'stored', 'delivered', 'read', 'failed'], description: 'stored: sealed at `mailboxes` mailbox peers while the recipient is offline' },
    mailboxes: { type: 'integer', description: 'mailbox peers holding a sealed copy (status stored)' },
    reason: { type: 'string' },
    updatedAt: { type: 'number' }
  }
} as const

const messageIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9a-f]{32}$' } }
} as const

export async function messageRoutes (app: FastifyInstance, { messenger }: { messenger: Messenger }): Promise<void> {
  app.post<{ Body: { to: string, text: string }, Headers: { 'idempotency-key'?: string } }>('/v1/messages', {
    schema: {
      operationId: 'sendMessage', errors: [409, 413, 507],
      summary: 'Send a text; answers 202 once it is in the outbox on disk',
      tags: ['messages'],
      headers: {
        type: 'object',
        properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_LENGTH, description: 'a retried request with the same key returns the same message' } }
      },
      body: {
        type: 'object',
        required: ['to', 'text'],
        additionalProperties: false,
        properties: { to: peerIdSchema, text: { type: 'string', description: 'at most 16 KiB of UTF-8 (413 beyond)' } }
      },
      response: { 202: { type: 'object', required: ['message'], properties: { message: messageSchema } } }
    }
  }, async (request, reply) => {
    const key = request.headers['idempotency-key']
    const { message, created } = await messenger.send({ to: request.body.to, text: request.body.text, ...(key != null ? { idempotencyKey: key } : {}) })
    void reply.code(202).header('location', `/v1/messages/${message.id}`)
    if (!created) void reply.header('idempotent-replayed', 'true')
    return { message }
  })

  app.get<{ Params: { id: string } }>('/v1/messages/:id', {
    schema: {
      operationId: 'getMessage', errors: [404],
      summary: 'One message and its status',
      tags: ['messages'],
      params: messageIdParams,
      response: { 200: { type: 'object', required: ['message'], properties: { message: messageSchema } } }
    }
  }, async request => ({ message: await messenger.message(request.params.id) }))

  app.post<{ Params: { id: string } }>('/v1/messages/:id/read', {
    schema: {
      operationId: 'markMessageRead', errors: [404, 409, 507],
      summary: 'Mark a received message read; its sender gets a read receipt',
      tags: ['messages'],
      params: messageIdParams,
      response: { 200: { type: 'object', required: ['message'], properties: { message: messageSchema } } }
    }
  }, async request => ({ message: await messenger.markRead(request.params.id) }))

  app.get('/v1/conversations', {
    schema: {
      operationId: 'listConversations',
      summary: 'Conversations, most recent first, with unread counts and sequence gaps',
      tags: ['messages'],
      response: {
        200: {
          type: 'object',
          required: ['conversations'],
          properties: {
            conversations: {
              type: 'array',
              items: {
                type: 'object',
                required: ['peerId', 'lastMessageAt', 'unread', 'highestReceivedSeq', 'gaps'],
                properties: {
                  peerId: { type: 'string' },
                  name: { type: 'string' },
                  contactState: { type: 'string', enum: ['accepted', 'pending', 'blocked'] },
                  lastMessageAt: { type: 'number' },
                  unread: { type: 'integer' },
                  highestReceivedSeq: { type: 'integer' },
                  gaps: { type: 'array', items: { type: 'integer' }, description: 'sequence numbers not received while later ones were' }
                }
              }
            }
          }
        }
      }
    }
  }, async () => ({ conversations: await messenger.conversations() }))

  app.get<{ Params: { peerId: string }, Querystring: { before?: string, after?: string, limit: number } }>('/v1/conversations/:peerId/messages', {
    schema: {
      operationId: 'listConversationMessages', errors: [404],
      summary: 'Messages of a conversation in order; page with before/after (message ids)',
      tags: ['messages'],
      params: { type: 'object', required: ['peerId'], properties: { peerId: peerIdSchema } },
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          before: { type: 'string', pattern: '^[0-9a-f]{32}$' },
          after: { type: 'string', pattern: '^[0-9a-f]{32}$' },
          limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE }
        }
      },
      response: { 200: { type: 'object', required: ['messages'], properties: { messages: { type: 'array', items: messageSchema } } } }
    }
  }, async request => ({
    messages: await messenger.history(request.params.peerId, {
      limit: request.query.limit,
      ...(request.query.before != null ? { before: request.query.before } : {}),
      ...(request.query.after != null ? { after: request.query.after } : {})
    })
  }))
}
