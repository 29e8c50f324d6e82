import type { FastifyInstance } from 'fastify'
import type { Messenger } from '../../messaging/index.js'

export interface MailboxStats {
  envelopes: number
  bytes: number
  recipients: number
}

export interface MailboxRoutesInit {
  messenger: Messenger
  /** what this node holds for others as a mailbox peer */
  stats: () => MailboxStats | Promise<MailboxStats>
}

export async function mailboxRoutes (app: FastifyInstance, { messenger, stats }: MailboxRoutesInit): Promise<void> {
  app.get('/v1/mailbox', {
    schema: {
      operationId: 'getMailbox',
      summary: 'Sealed envelopes this node holds for offline peers, and the space they take',
      tags: ['mailbox'],
      response: {
        200: {
          type: 'object',
          required: ['holding'],
          properties: {
            holding: {
              type: 'object',
              required: ['envelopes', 'bytes', 'recipients'],
              properties: { envelopes: { type: 'integer' }, bytes: { type: 'integer' }, recipients: { type: 'integer' } }
            }
          }
        }
      }
    }
  }, async () => ({ holding: await stats() }))

  app.post('/v1/mailbox/collect', {
    schema: {
      operationId: 'collectMailboxes', errors: [507],
      summary: 'Fetch now what mailbox peers hold for this node (also done at start and every minute)',
      tags: ['mailbox'],
      response: {
        200: {
          type: 'object',
          required: ['mailboxes', 'fetched', 'accepted'],
          properties: { mailboxes: { type: 'integer' }, fetched: { type: 'integer' }, accepted: { type: 'integer' } }
        }
      }
    }
  }, async () => await messenger.collectMailboxes())
}
