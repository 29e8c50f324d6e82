import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from '../../logger.js'
import { answerClientError, errorBody, makeErrorHandler } from '../errors.js'
import { hostCheckHook, type HostCheck } from '../hosts.js'

/** What the metrics route needs: OctetMetrics provides it. */
export interface MetricsView {
  scrape: () => Promise<{ contentType: string, text: string }>
}

export async function metricsRoutes (app: FastifyInstance, { metrics }: { metrics: MetricsView }): Promise<void> {
  app.get('/metrics', {
    schema: {
      operationId: 'getMetrics', produces: 'text/plain',
      summary: "Prometheus text exposition (text/plain; version=0.0.4) of octet's and libp2p's metrics; see the README for the names. Also served without the token on --metrics host:port when set",
      tags: ['node']
    }
  }, async (_request, reply) => {
    const { contentType, text } = await metrics.scrape()
    void reply.header('content-type', contentType).header('cache-control', 'no-store')
    return text
  })
}

export interface MetricsApiInit {
  metrics: MetricsView
  hostCheck: HostCheck
  log: Logger
}

/**
 * The metrics alone, without the token, for a Prometheus server that is given its own address
 * (`--metrics host:port`): only GET /metrics, behind the same Host check as the API (a web
 * page that rebinds its name to this address learns nothing), bodies refused.
 */
export async function buildMetricsApi ({ metrics, hostCheck, log }: MetricsApiInit): Promise<FastifyInstance> {
  const handleError = makeErrorHandler(log)
  const app = Fastify({
    loggerInstance: log.child({ module: 'metrics' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1,
    return503OnClosing: true,
    clientErrorHandler: answerClientError,
    http: { requireHostHeader: false }
  })
  app.addHook('onRequest', hostCheckHook(hostCheck))
  app.setErrorHandler(handleError)
  app.setNotFoundHandler(async (request, reply) => {
    void reply.code(404)
    return errorBody('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0] ?? ''}: this address serves GET /metrics only`)
  })
  await app.register(metricsRoutes, { metrics })
  return app
}
