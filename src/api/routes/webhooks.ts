import type { FastifyInstance } from 'fastify'
import type { OctetEventType } from '../../messaging/index.js'
import { DELIVERY_TIMEOUT, MAX_SECRET_LENGTH, MAX_URL_LENGTH, MAX_WEBHOOKS, MIN_SECRET_LENGTH, PAUSE_AFTER_FAILURES } from '../../webhooks/constants.js'
import { EVENT_TYPES } from '../../messaging/index.js'
import type { NewWebhook, WebhookService } from '../../webhooks/index.js'
import { SECOND } from '../../units.js'

const eventTypes = { type: 'array', items: { type: 'string', enum: EVENT_TYPES }, maxItems: EVENT_TYPES.length, uniqueItems: true } as const

const webhookSchema = {
  type: 'object',
  required: ['id', 'url', 'events', 'createdAt', 'state', 'failures', 'lastDeliveredId', 'lag'],
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    events: { ...eventTypes, description: 'the event types delivered; empty: all' },
    createdAt: { type: 'number' },
    state: { type: 'string', enum: ['active', 'paused'], description: `paused: ${PAUSE_AFTER_FAILURES} failed attempts in a row (by default); nothing is sent until it is resumed` },
    failures: { type: 'integer', description: 'failed attempts in a row' },
    lastError: { type: 'string', description: 'why the last attempt failed: HTTP <status>, a timeout, ECONNREFUSED …' },
    lastErrorAt: { type: 'number' },
    pausedAt: { type: 'number' },
    lastDeliveredId: { type: 'integer', description: 'the last event id the receiver acknowledged with a 2xx (or the event filter passed over)' },
    lag: { type: 'integer', description: 'events in the log after lastDeliveredId' },
    missed: {
      type: 'object',
      description: 'events pruned from the log before this webhook got them (the last such gap): it went on from the oldest kept',
      required: ['from', 'to', 'at'],
      properties: { from: { type: 'integer' }, to: { type: 'integer' }, at: { type: 'number' } }
    }
  }
} as const
const webhookResponse = { type: 'object', required: ['webhook'], properties: { webhook: webhookSchema } } as const
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f]{16}$' } } } as const

/**
 * `/v1/webhooks`: URLs the daemon POSTs every event to, signed, at least once and in
 * order (src/webhooks/). The secret is shown once, in the answer to the POST.
 */
export async function webhookRoutes (app: FastifyInstance, { webhooks }: { webhooks: WebhookService }): Promise<void> {
  app.post<{ Body: { url: string, events?: OctetEventType[], secret?: string, after?: number } }>('/v1/webhooks', {
    schema: {
      operationId: 'createWebhook', errors: [409, 410, 507],
      summary: 'Register a URL to receive events by POST; answers its secret, once',
      description: `Each event is POSTed as JSON ({ id, type, at, data }, as the event stream gives it) with X-Octet-Event-Id, X-Octet-Timestamp (unix seconds) and X-Octet-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>; the next only after a 2xx, in id order. Each POST times out after ${DELIVERY_TIMEOUT / SECOND} s; redirects are not followed. At most ${MAX_WEBHOOKS} webhooks (409 beyond); 410 EVENTS_PRUNED when \`after\` names events no longer kept.`,
      tags: ['webhooks'],
      body: {
        type: 'object',
        required: ['url'],
        additionalProperties: false,
        properties: {
          url: { type: 'string', minLength: 1, maxLength: MAX_URL_LENGTH, description: 'an http: or https: URL' },
          events: { ...eventTypes, description: 'the event types to deliver; absent or empty: all' },
          secret: { type: 'string', minLength: MIN_SECRET_LENGTH, maxLength: MAX_SECRET_LENGTH, description: 'the HMAC key; absent: a random one is made and answered' },
          after: { type: 'integer', minimum: 0, description: 'deliver the events after this id (still kept in the log); absent: only events from now on' }
        }
      },
      response: {
        201: {
          type: 'object',
          required: ['webhook', 'secret'],
          properties: { webhook: webhookSchema, secret: { type: 'string', description: 'shown this once: keep it to check signatures' } }
        }
      }
    }
  }, async (request, reply) => {
    const { url, events, secret, after } = request.body
    const given: NewWebhook = { url, ...(events != null ? { events } : {}), ...(secret != null ? { secret } : {}), ...(after != null ? { after } : {}) }
    const created = await webhooks.create(given)
    void reply.code(201).header('location', `/v1/webhooks/${created.webhook.id}`)
    return created
  })

  app.get('/v1/webhooks', {
    schema: {
      operationId: 'listWebhooks',
      summary: 'The webhooks, their state and lag (never their secrets)',
      tags: ['webhooks'],
      response: { 200: { type: 'object', required: ['webhooks'], properties: { webhooks: { type: 'array', items: webhookSchema } } } }
    }
  }, async () => ({ webhooks: webhooks.list() }))

  app.get<{ Params: { id: string } }>('/v1/webhooks/:id', {
    schema: { operationId: 'getWebhook', errors: [404], summary: 'One webhook, its state and lag', tags: ['webhooks'], params: idParams, response: { 200: webhookResponse } }
  }, async request => ({ webhook: webhooks.get(request.params.id) }))

  app.delete<{ Params: { id: string } }>('/v1/webhooks/:id', {
    schema: { operationId: 'deleteWebhook', errors: [404, 507], summary: 'Remove a webhook; a POST in flight to it is aborted', tags: ['webhooks'], params: idParams, response: { 204: { type: 'null' } } }
  }, async (request, reply) => {
    await webhooks.remove(request.params.id)
    void reply.code(204)
  })

  app.post<{ Params: { id: string } }>('/v1/webhooks/:id/resume', {
    schema: {
      operationId: 'resumeWebhook', errors: [404, 507],
      summary: 'Make a paused (or failing) webhook active again and try the next event now',
      tags: ['webhooks'],
      params: idParams,
      response: { 200: webhookResponse }
    }
  }, async request => ({ webhook: await webhooks.resume(request.params.id) }))
}
