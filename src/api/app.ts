import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { tokensMatch } from '../datadir.js'
import type { Logger } from '../logger.js'
import { errorBody, makeErrorHandler } from './errors.js'
import { OpenApiCollector } from './openapi.js'
import { nodeRoutes, type NodeView } from './routes/node.js'

/** Request bodies above this are refused with 413 before they are parsed. */
export const API_BODY_LIMIT = 64 * 1024

export interface ApiInit {
  token: string
  node: NodeView
  log: Logger
  version: string
  startedAt?: number
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Route needs no bearer token. */
    public?: boolean
    /** Route is left out of the OpenAPI document. */
    hidden?: boolean
  }
  /** Documentation keywords, read by the OpenAPI collector, ignored by validation. */
  interface FastifySchema {
    summary?: string
    description?: string
    tags?: readonly string[]
  }
}

/**
 * Builds the HTTP API without listening, so tests can drive it with inject()
 * and the daemon decides where it listens.
 */
export async function buildApi (init: ApiInit): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: init.log.child({ module: 'api' }) as FastifyBaseLogger,
    // one line per request would drown the node's own logs; errors are logged by the error handler
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: API_BODY_LIMIT,
    return503OnClosing: true
  })
  const openapi = new OpenApiCollector()
  app.addHook('onRoute', route => { openapi.onRoute(route) })

  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config.public === true) return
    const header = request.headers.authorization ?? ''
    const match = /^Bearer (\S+)$/i.exec(header)
    if (match?.[1] == null || !tokensMatch(init.token, match[1])) {
      void reply.code(401).header('www-authenticate', 'Bearer realm="octet"')
      return await reply.send(errorBody('UNAUTHORIZED', 'missing or wrong bearer token; send Authorization: Bearer <token> with the token from <data-dir>/api.token'))
    }
  })

  app.setErrorHandler(makeErrorHandler(init.log))
  app.setNotFoundHandler(async (request, reply) => {
    void reply.code(404)
    return errorBody('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0] ?? ''}; see GET /v1/openapi.json`)
  })

  await app.register(nodeRoutes, { node: init.node, version: init.version, startedAt: init.startedAt ?? Date.now() })

  app.get('/v1/openapi.json', { config: { public: true, hidden: true } }, async () => openapi.document(init.version))
  return app
}
