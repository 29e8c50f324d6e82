import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { tokensMatch } from '../datadir.js'
import type { Logger } from '../logger.js'
import { answerClientError, errorBody, makeErrorHandler } from './errors.js'
import { HostCheck, hostCheckHook } from './hosts.js'
import { API_BODY_LIMIT, declaresBodyTooLarge, onConnection, refuseBody } from './body-limit.js'
import { metricsRoutes, type MetricsView } from './routes/metrics.js'
import { OpenApiCollector, type ErrorStatus } from './openapi.js'
import type { Messenger } from '../messaging/index.js'
import type { GroupService } from '../groups/index.js'
import { groupRoutes } from './routes/groups.js'
import { contactRoutes } from './routes/contacts.js'
import { SseClients, eventRoutes, type SseLimits } from './routes/events.js'
import { mailboxRoutes, type MailboxRoutesInit } from './routes/mailbox.js'
import { messageRoutes } from './routes/messages.js'
import { nodeRoutes, type NodeView } from './routes/node.js'
import type { StoreHealth } from '../store/database.js'
import { validatorCompiler } from './validation.js'
import { webhookRoutes } from './routes/webhooks.js'
import type { WebhookService } from '../webhooks/index.js'
import { securityHeaders, uiRoutes } from './routes/ui.js'
import { UiSessions, fromSameOrigin, readCookie, sessionCookieName } from './ui-session.js'

export { API_BODY_LIMIT } from './body-limit.js'

export interface ApiInit {
  token: string
  node: NodeView
  log: Logger
  version: string
  startedAt?: number
  /** messaging routes (messages, conversations, contacts, events); left out for a node-only API */
  messenger?: Messenger
  /** what this node holds as a mailbox peer (GET /v1/mailbox) */
  mailboxStats?: MailboxRoutesInit['stats']
  /** group routes (/v1/groups…) */
  groups?: GroupService
  /** whether the database takes writes; /v1/health says `degraded` when it does not */
  storeHealth?: () => StoreHealth
  /** the Host names requests over TCP may use; default: loopback names only (src/api/hosts.ts) */
  hostCheck?: HostCheck
  /** how far an event stream client may fall behind (defaults in routes/events.ts; tests shrink them) */
  sse?: Partial<SseLimits>
  /** the event streams open, as GET /metrics counts them */
  sseClients?: SseClients
  /** GET /metrics (Prometheus text), with the token like every route */
  metrics?: MetricsView
  /** /v1/webhooks… */
  webhooks?: WebhookService
  /** the web page's folder (default dist/web, built by npm run build) */
  webDir?: string
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Route needs no bearer token. */
    public?: boolean
    /** Route is left out of the OpenAPI document. */
    hidden?: boolean
    /** Route takes the bearer token only, not the web page's session cookie. */
    bearerOnly?: boolean
  }
  /** Documentation keywords, read by the OpenAPI collector, ignored by validation. */
  interface FastifySchema {
    /** The operation's name in the OpenAPI document (clients generated from it name their methods so); unique */
    operationId?: string
    summary?: string
    description?: string
    tags?: readonly string[]
    /** The error answers the handler gives beyond those every route can (src/api/openapi.ts) */
    errors?: readonly ErrorStatus[]
    /** The media type of a route that answers with no JSON schema (a stream, text) */
    produces?: string
    /** For an event stream: the JSON schema of one event (documented as the content of each `data:` line) */
    events?: Record<string, unknown>
    /** Headers of the success answer that clients rely on, as OpenAPI header objects by name */
    responseHeaders?: Record<string, { description: string, schema: Record<string, unknown> }>
  }
}

/**
 * Builds the HTTP API without listening, so tests can drive it with inject()
 * and the daemon decides where it listens.
 */
export async function buildApi (init: ApiInit): Promise<FastifyInstance> {
  const handleError = makeErrorHandler(init.log)
  const app = Fastify({
    // errors found before routing (a bad URL, a path parameter over the length limit) in the
    // same { error: { code, message } } shape as every other error
    frameworkErrors: (err, request, reply) => {
      const res = reply as FastifyReply
      void handleError(err, request as FastifyRequest, res).then(async body => await res.send(body))
    },
    loggerInstance: init.log.child({ module: 'api' }) as FastifyBaseLogger,
    // one line per request would drown the node's own logs; errors are logged by the error handler
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: API_BODY_LIMIT,
    return503OnClosing: true,
    // requests Node refuses itself (malformed, headers too large) get octet's error shape too
    clientErrorHandler: answerClientError,
    // a missing Host is answered by the Host check below, in octet's shape, not by Node with an empty 400
    http: { requireHostHeader: false }
  })
  app.setValidatorCompiler(validatorCompiler)
  const hostCheck = init.hostCheck ?? new HostCheck([])
  const openapi = new OpenApiCollector()
  app.addHook('onRoute', route => { openapi.onRoute(route) })

  // before the token: a page that rebound its name to us learns nothing, not even 401
  app.addHook('onRequest', hostCheckHook(hostCheck))

  // a body declared too large is refused before anything reads it, and the answer is made to
  // arrive (src/api/body-limit.ts); a client that asked to be told first (Expect:
  // 100-continue) is told before it sends
  app.addHook('onRequest', async (request, reply) => {
    if (!declaresBodyTooLarge(request.raw) || !onConnection(request.raw)) return
    reply.hijack()
    refuseBody(request.raw)
  })
  app.server.on('checkContinue', (req, res) => {
    if (declaresBodyTooLarge(req)) {
      refuseBody(req)
      return
    }
    res.writeContinue()
    app.server.emit('request', req, res)
  })

  const sessions = new UiSessions(init.token)
  app.addHook('onRequest', async (request, reply) => {
    const config = request.routeOptions.config
    if (config.public === true) return
    const header = request.headers.authorization
    const match = /^Bearer (\S+)$/i.exec(header ?? '')
    if (match?.[1] != null && tokensMatch(init.token, match[1])) return
    // the web page's session cookie, only from a page of this origin (src/api/ui-session.ts)
    const cookie = readCookie(request, sessionCookieName(request))
    if (header == null && config.bearerOnly !== true && cookie != null && sessions.valid(cookie) && fromSameOrigin(request)) return
    void reply.code(401).header('www-authenticate', 'Bearer realm="octet"')
    return await reply.send(errorBody('UNAUTHORIZED', 'missing or wrong bearer token; send Authorization: Bearer <token> with the token from <data-dir>/api.token'))
  })
  app.addHook('onSend', securityHeaders)

  app.setErrorHandler(async (err, request, reply) => {
    // a body without a length (chunked) that went over the limit while it was read
    if ((err as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE' && onConnection(request.raw)) {
      reply.hijack()
      refuseBody(request.raw)
      return
    }
    return await handleError(err as Error, request, reply)
  })
  app.setNotFoundHandler(async (request, reply) => {
    void reply.code(404)
    return errorBody('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0] ?? ''}; see GET /v1/openapi.json`)
  })

  await app.register(nodeRoutes, { node: init.node, version: init.version, startedAt: init.startedAt ?? Date.now(), storeHealth: init.storeHealth })
  if (init.messenger != null) {
    const messenger = init.messenger
    await app.register(messageRoutes, { messenger })
    await app.register(contactRoutes, { messenger })
    await app.register(eventRoutes, { events: messenger.events, counters: messenger.counters, limits: init.sse, clients: init.sseClients })
    if (init.mailboxStats != null) await app.register(mailboxRoutes, { messenger, stats: init.mailboxStats })
  }
  if (init.groups != null) await app.register(groupRoutes, { groups: init.groups })
  if (init.webhooks != null) await app.register(webhookRoutes, { webhooks: init.webhooks })
  if (init.metrics != null) await app.register(metricsRoutes, { metrics: init.metrics })
  await app.register(uiRoutes, { sessions, ...(init.webDir != null ? { webDir: init.webDir } : {}) })

  app.get('/v1/openapi.json', { config: { public: true, hidden: true } }, async () => openapi.document(init.version))
  return app
}
