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
    expect(stream).toMatchObject({ contentMediaType: 'application/json', contentSchema: { $ref: '#/components/schemas/Event' } })
    const ajv = new Ajv({ strict: false })
    const valid = (event: unknown): boolean => ajv.validate(doc.components.schemas.Event, event)
    const message = { id: 'ab', direction: 'in', peer: 'p', seq: 164, text: 't', sentAt: 1, status: 'delivered', updatedAt: 1 }
    expect(valid({ id: 7, type: 'message.received', at: 1, data: { message, gap: { from: 162, to: 163 } } })).toBe(true)
    expect(valid({ id: 8, type: 'message.received', at: 1, data: { message, late: true } })).toBe(true)
    expect(valid({ id: 9, type: 'message.received', at: 1, data: { message, gap: { from: 162 } } })).toBe(false)
    expect(valid({ id: 10, type: 'message.received', at: 1, data: { message, late: false } })).toBe(false)
  })
})
