import type { RouteOptions } from 'fastify'
import { DEFAULT_API_PORT } from '../config.js'
import { errorSchema } from './schemas.js'

interface RouteDoc {
  method: string
  url: string
  schema: Record<string, unknown>
  public: boolean
}

/** Where a daemon listens unless told otherwise (`api.url` in its data dir says where it does). */
export const DEFAULT_API_URL = `http://127.0.0.1:${DEFAULT_API_PORT}`

/**
 * The error answers the API gives, each a shared response in `components.responses` with
 * the one error schema. Every operation documents those any request can get (below); a
 * route's schema names those its handler gives in `errors`.
 */
const ERROR_RESPONSES = {
  400: ['BadRequest', 'The request is invalid: a parameter, header or body fails its schema, the JSON does not parse, or the request makes no sense (BAD_REQUEST, INVALID_PEER_ID …)'],
  401: ['Unauthorized', 'Missing or wrong bearer token (UNAUTHORIZED); the token is in <data-dir>/api.token'],
  403: ['Forbidden', 'Not allowed: the Host header names a host the daemon does not answer to (HOST_NOT_ALLOWED), or a group operation needs a member (NOT_A_MEMBER, also once removed or left) or an admin (NOT_AN_ADMIN) of the group'],
  404: ['NotFound', 'What the request names does not exist (NOT_FOUND, PEER_NOT_FOUND)'],
  409: ['Conflict', 'The request conflicts with the current state (CONFLICT, IDENTITY_CHANGED)'],
  410: ['EventsPruned', 'The events asked for are no longer kept (EVENTS_PRUNED)'],
  413: ['PayloadTooLarge', 'The body, or the text in it, is over the limit (PAYLOAD_TOO_LARGE)'],
  415: ['UnsupportedMediaType', 'The body is not sent as Content-Type: application/json (BAD_REQUEST)'],
  429: ['RateLimited', 'A peer asked us to slow down (RATE_LIMITED)'],
  500: ['InternalError', 'An unexpected failure, logged by the daemon (INTERNAL)'],
  503: ['Unavailable', 'The daemon is stopping, or runs without what the route needs (UNAVAILABLE)'],
  504: ['Timeout', 'The network did not answer in time (TIMEOUT)'],
  507: ['DiskFull', 'The disk is full: nothing more is written until space is freed (DISK_FULL)']
} as const satisfies Record<number, readonly [string, string]>

export type ErrorStatus = keyof typeof ERROR_RESPONSES

/**
 * The one rule for success statuses, which every route follows (and the
 * document states): by what the operation does, not by the route.
 */
export const STATUS_RULE = 'Success statuses follow one rule: 201 with a Location header when a resource was created (a group, a new contact); 202 when the outcome depends on other peers later (sending a message, inviting, accepting an invite, leaving, removing a member); 200 with the resulting resource for reads and local state changes; 204 for deletes with no outcome to wait for.'

/** What any request can be answered, whatever its route. */
const ALWAYS: readonly ErrorStatus[] = [403, 500, 503]

/**
 * Builds the OpenAPI description from the routes' own schemas, so the document
 * cannot drift from what the server validates.
 */
export class OpenApiCollector {
  private readonly routes: RouteDoc[] = []

  onRoute (route: RouteOptions): void {
    if (route.schema == null || (route.config as { hidden?: boolean } | undefined)?.hidden === true) return
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    for (const method of methods) {
      if (method === 'HEAD') continue
      this.routes.push({
        method: method.toLowerCase(),
        url: route.url,
        schema: route.schema as Record<string, unknown>,
        public: (route.config as { public?: boolean } | undefined)?.public === true
      })
    }
  }

  document (version: string): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {}
    const used = new Set<ErrorStatus>()
    const tags = new Set<string>()
    let eventSchema: unknown
    for (const route of this.routes) {
      const path = route.url.replace(/:([A-Za-z_]+)/g, '{$1}')
      const { operationId, summary, description, tags: routeTags, params, querystring, body, response, headers, errors, produces, events, responseHeaders } = route.schema as Record<string, any>
      const parameters = [
        ...schemaParameters(params, 'path'),
        ...schemaParameters(querystring, 'query'),
        ...schemaParameters(headers, 'header')
      ]
      const responses: Record<string, unknown> = {}
      for (const [status, schema] of Object.entries((response ?? {}) as Record<string, unknown>)) {
        responses[status] = (schema as { type?: string }).type === 'null'
          ? { description: 'Done; no body' }
          : { description: 'Success', content: { 'application/json': { schema } } }
      }
      // a route that answers with a stream or text documents its media type instead of a schema;
      // an event stream, the JSON of each event (its `data:` lines)
      if (Object.keys(responses).length === 0) {
        const schema = events == null
          ? { type: 'string' }
          : { type: 'string', description: 'Server-Sent Events: each `data:` line is one event as JSON', contentMediaType: 'application/json', contentSchema: { $ref: '#/components/schemas/Event' } }
        // a named schema, so that generated clients get a type for an event (octet/client's ApiEvent)
        if (events != null) eventSchema = events
        responses[200] = { description: 'Success', content: { [produces ?? 'application/json']: { schema } } }
      }
      // headers of the success answer a client relies on (the event stream's heartbeat interval)
      if (responseHeaders != null && responses[200] != null) responses[200] = { ...responses[200] as object, headers: responseHeaders }
      const statuses = new Set<ErrorStatus>([...ALWAYS, ...((errors ?? []) as ErrorStatus[])])
      if (!route.public) statuses.add(401)
      if (parameters.length > 0 || body != null) statuses.add(400)
      if (body != null) {
        statuses.add(413)
        statuses.add(415)
      }
      for (const status of [...statuses].sort((a, b) => a - b)) {
        used.add(status)
        responses[status] = { $ref: `#/components/responses/${ERROR_RESPONSES[status][0]}` }
      }
      for (const tag of (routeTags ?? []) as string[]) tags.add(tag)
      paths[path] ??= {}
      paths[path][route.method] = {
        operationId,
        summary,
        ...(description != null ? { description } : {}),
        tags: routeTags,
        security: route.public ? [] : [{ bearer: [] }],
        ...(parameters.length > 0 ? { parameters } : {}),
        ...(body != null ? { requestBody: { required: true, content: { 'application/json': { schema: body } } } } : {}),
        responses
      }
    }
    const responses = Object.fromEntries([...used].sort((a, b) => a - b).map(status => {
      const [name, description] = ERROR_RESPONSES[status]
      return [name, { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }]
    }))
    return {
      openapi: '3.1.0',
      info: {
        title: 'octet daemon API',
        version,
        description: `Local HTTP API of an octet node. Every route but /v1/health needs \`Authorization: Bearer <token>\`; the token is in <data-dir>/api.token. Every error answer has the same shape: \`{ "error": { "code", "message" } }\`. ${STATUS_RULE} A peer is always named \`peerId\`, a message's writer \`author\`; message ids are 32 hex digits (direct: random; group: the first 16 bytes of SHA-256 over \`<groupId>:<author>:<seq>\`).`,
        license: { name: 'AGPL-3.0-only', identifier: 'AGPL-3.0-only' }
      },
      servers: [{ url: DEFAULT_API_URL, description: 'the default; `api.url` in the data dir says where a running daemon listens' }],
      tags: [...tags].sort().map(name => ({ name, description: TAG_DESCRIPTIONS[name] ?? name })),
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'the token in <data-dir>/api.token' } },
        schemas: { Error: errorSchema, ...(eventSchema != null ? { Event: eventSchema } : {}) },
        responses
      },
      security: [{ bearer: [] }],
      paths
    }
  }
}

const TAG_DESCRIPTIONS: Record<string, string> = {
  node: 'The node: health, identity, connectivity, peers, counters, metrics',
  messages: 'Direct messages and conversations',
  contacts: 'Contacts, contact requests, identity keys and safety numbers',
  ui: 'The web page served at /: its one-time login code (for `octet ui`) and its session cookie, which every route also takes from a page of this origin',
  groups: 'Groups, their members and messages',
  events: 'The live event stream',
  webhooks: 'Events pushed to URLs by POST, signed, at least once and in order',
  mailbox: 'Sealed envelopes held for and fetched from offline peers'
}

function schemaParameters (schema: any, where: 'path' | 'query' | 'header'): unknown[] {
  if (schema?.properties == null) return []
  const required: string[] = schema.required ?? []
  return Object.entries(schema.properties as Record<string, unknown>).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || required.includes(name),
    schema: property
  }))
}
