import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import type { GroupService } from '../groups/index.js'
import type { Messenger } from '../messaging/index.js'
import type { WebhookService } from '../webhooks/index.js'
import { buildApi } from './app.js'
import type { NodeView } from './routes/node.js'

/**
 * The API with every route registered, over services that are never called: what the
 * OpenAPI document is built from, without a node, a store or a network (`npm run
 * lint:openapi` lints it; the daemon serves the same document at GET /v1/openapi.json).
 */
export async function buildDocumentedApi (version: string, token = 'unused'): Promise<FastifyInstance> {
  const absent = {} as never
  return await buildApi({
    token,
    version,
    log: pino({ level: 'silent' }),
    node: absent as NodeView,
    messenger: absent as Messenger,
    groups: absent as GroupService,
    mailboxStats: async () => absent,
    metrics: { scrape: async () => absent },
    webhooks: absent as WebhookService
  })
}

/** The OpenAPI document the daemon serves, as text. */
export async function openApiDocument (version: string): Promise<string> {
  const app = await buildDocumentedApi(version)
  try {
    const res = await app.inject({ method: 'GET', url: '/v1/openapi.json' })
    return res.body
  } finally {
    await app.close()
  }
}
