import { Ajv } from 'ajv'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildDocumentedApi } from '../../../src/api/document.js'
import { errorSchema } from '../../../src/api/schemas.js'

const TOKEN = 'test-token-0123456789abcdefghijklmnopqrstuvwxyz'
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace']

let app: FastifyInstance
let url: string
let doc: any
beforeAll(async () => {
  // every route the daemon can register, served over HTTP as the daemon serves it
  app = await buildDocumentedApi('1.2.3', TOKEN)
  url = await app.listen({ host: '127.0.0.1', port: 0 })
  const res = await fetch(`${url}/v1/openapi.json`)
  expect(res.status).toBe(200)
  doc = await res.json()
})
afterAll(async () => { await app.close() })

function operations (): Array<{ where: string, op: any }> {
  return Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
    Object.entries(item).filter(([method]) => METHODS.includes(method)).map(([method, op]) => ({ where: `${method.toUpperCase()} ${path}`, op })))
}

/** A response, with a $ref into components.responses followed. */
function resolve (response: any): any {
  const ref: string | undefined = response?.$ref
  if (ref == null) return response
  expect(ref).toMatch(/^#\/components\/responses\//)
  return doc.components.responses[ref.split('/').pop() as string]
}

describe('OpenAPI document: what clients are generated from', () => {
  it('has servers, a licence and bearer security', () => {
    expect(doc.servers).toEqual([expect.objectContaining({ url: 'http://127.0.0.1:4780' })])
    expect(doc.info.license).toMatchObject({ identifier: 'AGPL-3.0-only' })
    expect(doc.security).toEqual([{ bearer: [] }])
    expect(doc.components.schemas.Error).toEqual(errorSchema)
  })

  it('names every operation with a unique operationId', () => {
    const ops = operations()
    expect(ops.length).toBeGreaterThan(30)
    for (const { where, op } of ops) expect(op.operationId, where).toMatch(/^[a-z][A-Za-z]+$/)
    const ids = ops.map(({ op }) => op.operationId)
    expect(new Set(ids).size, 'operationIds repeated').toBe(ids.length)
  })

  it('documents 401 on every operation that needs the token, and every error answer with the error schema', () => {
    for (const { where, op } of operations()) {
      if (op.security?.length !== 0) expect(Object.keys(op.responses), where).toContain('401')
      const errors = Object.entries(op.responses as Record<string, unknown>).filter(([status]) => Number(status) >= 400)
      expect(errors.length, where).toBeGreaterThan(0)
      for (const [status, response] of errors) {
        expect(resolve(response)?.content?.['application/json']?.schema, `${where} ${status}`).toEqual({ $ref: '#/components/schemas/Error' })
      }
    }
  })

  it('describes the error the daemon really answers', async () => {
    const res = await fetch(`${url}/v1/identity`)
    expect(res.status).toBe(401)
    const documented = resolve(doc.paths['/v1/identity'].get.responses['401'])
    expect(documented).toBeDefined()
    expect(new Ajv().validate(doc.components.schemas.Error, await res.json())).toBe(true)
  })

  it('describes what the event stream carries, with the gap and late marks of ordered events', () => {
    const stream = doc.paths['/v1/events'].get.responses['200'].content['text/event-stream'].schema
    // each data: line is an Event, a named schema so that generated clients get its type
    expect(stream).toMatchObject({ contentMediaType: 'application/json', contentSchema: { $ref: '#/components/schemas/Event' } })
    const ajv = new Ajv({ strict: false })
    const valid = (event: unknown): boolean => ajv.validate(doc.components.schemas.Event, event)
    const message = { id: 'ab', direction: 'in', peerId: 'p', author: 'p', seq: 164, text: 't', sentAt: 1, status: 'delivered', updatedAt: 1 }
    expect(valid({ id: 7, type: 'message.received', at: 1, data: { message, gap: { from: 162, to: 163 } } })).toBe(true)
    expect(valid({ id: 8, type: 'message.received', at: 1, data: { message, late: true } })).toBe(true)
    expect(valid({ id: 9, type: 'message.received', at: 1, data: { message, gap: { from: 162 } } })).toBe(false)
    expect(valid({ id: 10, type: 'message.received', at: 1, data: { message, late: false } })).toBe(false)
  })
})

/** Every property name in a JSON schema, at any depth (objects, arrays, oneOf, contentSchema …), with where it is. */
function propertyNames (schema: unknown, where: string, found: Array<[string, string]> = []): Array<[string, string]> {
  if (Array.isArray(schema)) {
    schema.forEach((item, i) => propertyNames(item, `${where}[${i}]`, found))
  } else if (schema != null && typeof schema === 'object') {
    for (const [key, value] of Object.entries(schema)) {
      if (key === 'properties' && value != null && typeof value === 'object') {
        for (const name of Object.keys(value)) found.push([name, `${where}.${name}`])
      }
      propertyNames(value, `${where}.${key}`, found)
    }
  }
  return found
}

describe('OpenAPI document: one vocabulary', () => {
  /** The schemas of every answer (success and error) and of every event. */
  const answerSchemas = (): Array<[string, unknown]> => operations().flatMap(({ where, op }) =>
    Object.entries(op.responses as Record<string, unknown>).flatMap(([status, response]) =>
      Object.entries((resolve(response)?.content ?? {}) as Record<string, { schema?: unknown }>).map(([type, media]) => [`${where} ${status} ${type}`, media.schema] as [string, unknown])))

  it('names a peer peerId and a writer author: no answer or event has a property peer, sender or inviter', () => {
    // answers, and the named schemas they point to (Event: what the stream and webhooks carry)
    const names = [...answerSchemas(), ['components.schemas', doc.components.schemas] as [string, unknown]].flatMap(([where, schema]) => propertyNames(schema, where))
    // the check sees what it must: message and event properties are among the names found
    expect(names.map(([name]) => name)).toEqual(expect.arrayContaining(['peerId', 'author', 'invitedBy']))
    expect(names.filter(([name]) => ['peer', 'sender', 'inviter'].includes(name)).map(([, where]) => where)).toEqual([])
  })

  it('describes every event type of the stream', () => {
    const event = doc.components.schemas.Event
    const types = (event.oneOf as any[]).map(event => event.properties.type.const)
    expect(types).toEqual(expect.arrayContaining(['message.received', 'message.sent', 'message.status', 'group.invite', 'group.message']))
    const invite = (event.oneOf as any[]).find(event => event.properties.type.const === 'group.invite')
    expect(invite.properties.data.required).toContain('invitedBy')
  })

  it('answers success by the one status rule: GET 200, DELETE 204 or 202, POST 200, 201 or 202', () => {
    const allowed: Record<string, string[]> = { GET: ['200'], DELETE: ['202', '204'], POST: ['200', '201', '202'] }
    for (const { where, op } of operations()) {
      const method = where.split(' ')[0] as string
      const success = Object.keys(op.responses as Record<string, unknown>).filter(status => Number(status) < 400)
      expect(success.length, where).toBeGreaterThan(0)
      for (const status of success) expect(allowed[method], `${where} answers ${status}`).toContain(status)
    }
    expect(doc.info.description).toContain('201 with a Location header')
  })

  it('pages group history like a conversation: the same before/after parameters', () => {
    const names = (path: string): string[] => (doc.paths[path].get.parameters as Array<{ name: string, in: string }>).filter(p => p.in === 'query').map(p => p.name).sort()
    expect(names('/v1/groups/{id}/messages')).toEqual(names('/v1/conversations/{peerId}/messages'))
    expect(names('/v1/groups/{id}/messages')).toEqual(['after', 'before', 'limit'])
  })
})
