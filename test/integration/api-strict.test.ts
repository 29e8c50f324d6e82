import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Cleanup, DaemonProcess } from '../helpers/daemon.js'
import { rawHttp, request } from '../helpers/raw-http.js'

// A real daemon process, reached over raw HTTP on TCP and on api.sock: what it accepts,
// what it refuses, and that every refusal (fastify's and Node's own) is { error: { code, message } }.
const cleanup = new Cleanup()
let daemon: DaemonProcess
let port: number
let sock: string
let peer: string
const auth = (): Record<string, string> => ({ authorization: `Bearer ${daemon.token}` })

beforeAll(async () => {
  const dataDir = await cleanup.tempDir()
  daemon = await DaemonProcess.start({
    dataDir,
    extraArgs: ['--api-allowed-host', 'octet.example'],
    env: { OCTET_API_ALLOWED_HOSTS: 'ignored-because-the-flag-wins.example' }
  }, cleanup)
  port = Number(new URL(daemon.info.apiUrl).port)
  sock = join(dataDir, 'api.sock')
  // any valid PeerId other than ours to write to (it is never reached)
  const other = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
  peer = other.info.peerId
  await other.stop()
}, 60_000)
afterAll(async () => { await cleanup.run() })

async function post (path: string, body: string, host = `127.0.0.1:${port}`): Promise<{ status: number, body: any }> {
  return await rawHttp({ port }, request('POST', path, { host, ...auth(), 'content-type': 'application/json' }, body))
}

describe('request bodies are taken as sent: no conversion, no dropped fields', () => {
  it.each([
    ['a number for a string', (to: string) => `{"to":"${to}","text":1}`],
    ['1e400 (Infinity once parsed) for a string', (to: string) => `{"to":"${to}","text":1e400}`],
    ['true for a string', (to: string) => `{"to":"${to}","text":true}`],
    ['an array for a string', (to: string) => `{"to":"${to}","text":["hi"]}`],
    ['an unknown field', (to: string) => `{"to":"${to}","text":"hi","cc":"${to}"}`]
  ])('refuses %s with 400 BAD_REQUEST, and sends nothing', async (_, body) => {
    const answer = await post('/v1/messages', body(peer))
    expect(answer.status).toBe(400)
    expect(answer.body.error.code).toBe('BAD_REQUEST')
    expect(typeof answer.body.error.message).toBe('string')
    const conversation = await daemon.api<{ messages: unknown[] }>('GET', `/v1/conversations/${peer}/messages`)
    expect(conversation.body.messages).toEqual([])
  })

  it('accepts a well-formed body', async () => {
    const answer = await post('/v1/contacts', `{"peerId":"${peer}","name":"bob"}`)
    expect(answer.status).toBe(201)
    expect(answer.body.contact).toMatchObject({ peerId: peer, name: 'bob' })
  })

  it('still reads numbers from a querystring, and refuses what is no number there', async () => {
    const ok = await rawHttp({ port }, request('GET', `/v1/conversations/${peer}/messages?limit=2`, { host: 'localhost', ...auth() }))
    expect(ok.status).toBe(200)
    for (const limit of ['1e400', 'Infinity', '0x10', '2.5', 'two']) {
      const refused = await rawHttp({ port }, request('GET', `/v1/conversations/${peer}/messages?limit=${limit}`, { host: 'localhost', ...auth() }))
      expect(refused.status).toBe(400)
      expect(refused.body.error.code).toBe('BAD_REQUEST')
    }
    const unknown = await rawHttp({ port }, request('GET', `/v1/conversations/${peer}/messages?limit=2&colour=red`, { host: 'localhost', ...auth() }))
    expect(unknown.status).toBe(400)
  })
})

describe('the Host header (DNS rebinding)', () => {
  it.each([
    ['localhost', 'localhost:PORT'],
    ['the listen address', '127.0.0.1:PORT'],
    ['another loopback address', '127.0.0.2'],
    ['IPv6 loopback', '[::1]:PORT'],
    ['a *.localhost name', 'app.localhost'],
    ['a host allowed with --api-allowed-host', 'OCTET.example:443']
  ])('serves %s', async (_, host) => {
    const answer = await rawHttp({ port }, request('GET', '/v1/identity', { host: host.replace('PORT', String(port)), ...auth() }))
    expect(answer.status).toBe(200)
    expect(answer.body.peerId).toBe(daemon.info.peerId)
  })

  it('refuses any other name with 403 HOST_NOT_ALLOWED, before the token is even looked at', async () => {
    for (const host of ['evil.example', `evil.example:${port}`, 'ignored-because-the-flag-wins.example', '192.0.2.1']) {
      const withToken = await rawHttp({ port }, request('GET', '/v1/identity', { host, ...auth() }))
      expect(withToken.status).toBe(403)
      expect(withToken.body.error.code).toBe('HOST_NOT_ALLOWED')
      const publicRoute = await rawHttp({ port }, request('GET', '/v1/health', { host }))
      expect(publicRoute.status).toBe(403)
    }
  })

  it('answers a request without Host with 400 in the error shape', async () => {
    const answer = await rawHttp({ port }, `GET /v1/health HTTP/1.1\r\nconnection: close\r\n\r\n`)
    expect(answer.status).toBe(400)
    expect(answer.body.error.code).toBe('BAD_REQUEST')
  })

  it('does not check Host on api.sock, which no web page can reach', async () => {
    const answer = await rawHttp({ path: sock }, request('GET', '/v1/identity', { host: 'evil.example', ...auth() }))
    expect(answer.status).toBe(200)
    const none = await rawHttp({ path: sock }, `GET /v1/health HTTP/1.1\r\nconnection: close\r\n\r\n`)
    expect(none.status).toBe(200)
  })
})

describe("Node's own refusals in the error shape", () => {
  for (const where of ['tcp', 'api.sock'] as const) {
    const to = (): { port: number } | { path: string } => where === 'tcp' ? { port } : { path: sock }

    it(`${where}: headers over the limit → 431 HEADERS_TOO_LARGE`, async () => {
      const answer = await rawHttp(to(), request('GET', '/v1/health', { host: 'localhost', 'x-padding': 'a'.repeat(20_000) }))
      expect(answer.status).toBe(431)
      expect(answer.headers['content-type']).toMatch(/^application\/json/)
      expect(answer.body.error).toMatchObject({ code: 'HEADERS_TOO_LARGE' })
      expect(typeof answer.body.error.message).toBe('string')
    })

    it(`${where}: a malformed request → 400 BAD_REQUEST`, async () => {
      for (const bad of ['GET /v1/health HTTP/9.9\r\nhost: localhost\r\n\r\n', 'HELLO\r\n\r\n', 'GET /v1/health HTTP/1.1\r\nhost: localhost\r\nbad header line\r\n\r\n']) {
        const answer = await rawHttp(to(), bad)
        expect(answer.status).toBe(400)
        expect(answer.body.error.code).toBe('BAD_REQUEST')
      }
    })

    it(`${where}: a body over the limit → 413 PAYLOAD_TOO_LARGE`, async () => {
      const answer = await rawHttp(to(), request('POST', '/v1/contacts', { host: 'localhost', ...auth(), 'content-type': 'application/json' }, `{"peerId":"${'x'.repeat(70_000)}"}`))
      expect(answer.status).toBe(413)
      expect(answer.body.error.code).toBe('PAYLOAD_TOO_LARGE')
    })
  }
})
