import type { RouteOptions } from 'fastify'
import { errorSchema } from './schemas.js'

interface RouteDoc {
  method: string
  url: string
  schema: Record<string, unknown>
  public: boolean
}

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
    for (const route of this.routes) {
      const path = route.url.replace(/:([A-Za-z_]+)/g, '{$1}')
      const { summary, tags, params, querystring, body, response, headers } = route.schema as Record<string, any>
      const parameters = [
        ...schemaParameters(params, 'path'),
        ...schemaParameters(querystring, 'query'),
        ...schemaParameters(headers, 'header')
      ]
      const responses: Record<string, unknown> = {}
      for (const [status, schema] of Object.entries((response ?? {}) as Record<string, unknown>)) {
        responses[status] = { description: `HTTP ${status}`, content: { 'application/json': { schema } } }
      }
      responses.default = { description: 'error', content: { 'application/json': { schema: errorSchema } } }
      paths[path] ??= {}
      paths[path][route.method] = {
        summary,
        tags,
        security: route.public ? [] : [{ bearer: [] }],
        parameters,
        ...(body != null ? { requestBody: { required: true, content: { 'application/json': { schema: body } } } } : {}),
        responses
      }
    }
    return {
      openapi: '3.1.0',
      info: { title: 'octet daemon API', version, description: 'Local HTTP API of an octet node. Every route but /v1/health needs `Authorization: Bearer <token>`; the token is in <data-dir>/api.token.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
      paths
    }
  }
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
