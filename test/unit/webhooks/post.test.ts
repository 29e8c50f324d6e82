import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getCACertificates, setDefaultCACertificates } from 'node:tls'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { Poster } from '../../../src/webhooks/post.js'

/** The webhook's HTTP client against real servers on 127.0.0.1: connections kept, answers that never end, TLS checked. */

type Handler = (req: IncomingMessage, res: ServerResponse) => void
const closers: Array<() => Promise<void> | void> = []
afterEach(async () => { for (const close of closers.splice(0).reverse()) await close() })

async function serve (server: Server, handler: Handler): Promise<{ url: URL, connections: () => number, bodies: string[] }> {
  let connections = 0
  const bodies: string[] = []
  server.on('connection', () => { connections++ })
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => { bodies.push(Buffer.concat(chunks).toString('utf8')); handler(req, res) })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  closers.push(async () => { server.closeAllConnections(); server.close(); await once(server, 'close') })
  const scheme = 'cert' in server ? 'https' : 'http'
  return { url: new URL(`${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}/hook`), connections: () => connections, bodies }
}

/** A certificate for 127.0.0.1 made now (trusted only where a test says so), or undefined without the openssl command. */
async function makeCertificate (): Promise<{ key: Buffer, cert: Buffer } | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'octet-poster-tls-'))
  try {
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'])
    return { key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) }
  } catch {
    return undefined
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
const tls = await makeCertificate()

/** A stop that never comes. */
const never = new AbortController().signal

function poster (): Poster {
  const p = new Poster()
  closers.push(() => { p.close() })
  return p
}

describe('Poster', () => {
  it('POSTs one body after another over one kept-alive connection, with its length', async () => {
    const server = await serve(createServer(), (_req, res) => res.writeHead(204).end())
    const p = poster()
    for (let i = 0; i < 20; i++) {
      expect(await p.post(server.url, { 'content-type': 'application/json' }, JSON.stringify({ id: i, text: 'é' }), { timeoutMs: 5000, stop: never })).toEqual({ status: 204 })
    }
    expect(server.bodies.map(b => (JSON.parse(b) as { id: number }).id)).toEqual(Array.from({ length: 20 }, (_, i) => i))
    expect(server.connections()).toBe(1)
  })

  it('tries a fresh connection when a kept one turns out closed by the receiver, once', async () => {
    // the receiver ends each connection as its second request comes (as when its keep-alive
    // timeout ends just as the POST goes out), without answering it
    const server = await serve(createServer(), (req, res) => {
      const socket = req.socket as typeof req.socket & { served?: number }
      socket.served = (socket.served ?? 0) + 1
      if (socket.served > 1) socket.destroy()
      else res.writeHead(204).end()
    })
    const p = poster()
    for (let i = 0; i < 3; i++) expect(await p.post(server.url, {}, `{"id":${i}}`, { timeoutMs: 5000, stop: never })).toEqual({ status: 204 })
    // each POST after the first: once on the kept connection (reset), once on a fresh one
    expect(server.bodies).toEqual(['{"id":0}', '{"id":1}', '{"id":1}', '{"id":2}'])

    const refusing = await serve(createServer(), (req, res) => { if (req.headers['x-first'] != null) res.writeHead(204).end(); else req.socket.destroy() })
    await p.post(refusing.url, { 'x-first': '1' }, '{}', { timeoutMs: 5000, stop: never })
    await expect(p.post(refusing.url, {}, '{}', { timeoutMs: 5000, stop: never })).rejects.toMatchObject({ code: 'ECONNRESET' })
    expect(refusing.bodies).toHaveLength(3)
  })

  it('gives the status and Location of a redirect without following it', async () => {
    let requests = 0
    const server = await serve(createServer(), (_req, res) => { requests++; res.writeHead(302, { location: 'http://192.0.2.1/elsewhere' }).end() })
    expect(await poster().post(server.url, {}, '{}', { timeoutMs: 5000, stop: never })).toEqual({ status: 302, location: 'http://192.0.2.1/elsewhere' })
    expect(requests).toBe(1)
  })

  it('answers at the headers: an answer whose body never ends holds up neither this POST nor the next', async () => {
    const server = await serve(createServer(), (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      if (req.headers['x-endless'] != null) res.write('still talking') // and never ends
      else res.end('ok')
    })
    const p = poster()
    expect(await p.post(server.url, { 'x-endless': '1' }, '{}', { timeoutMs: 60_000, stop: never })).toEqual({ status: 200 })
    expect(await p.post(server.url, {}, '{}', { timeoutMs: 5000, stop: never })).toEqual({ status: 200 })
    expect(server.connections()).toBe(2)
  })

  it('rejects with the system error code when nothing listens, and with the reason when aborted', async () => {
    const server = await serve(createServer(), () => {}) // takes the request, never answers
    const p = poster()
    const closed = new URL(server.url)
    const spare = createServer().listen(0, '127.0.0.1')
    await once(spare, 'listening')
    closed.port = String((spare.address() as AddressInfo).port)
    spare.close()
    await once(spare, 'close')
    await expect(p.post(closed, {}, '{}', { timeoutMs: 5000, stop: never })).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    const controller = new AbortController()
    const pending = p.post(server.url, {}, '{}', { timeoutMs: 5000, stop: controller.signal })
    while (server.bodies.length === 0) await new Promise(resolve => setImmediate(resolve))
    controller.abort()
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('ends an exchange at its deadline: no answer is a TimeoutError; an answer that never ends loses its connection', async () => {
    const closed: Array<Promise<unknown>> = []
    const server = await serve(createServer(), (req, res) => {
      closed.push(once(req.socket, 'close'))
      if (req.headers['x-endless'] != null) res.writeHead(200).write('and then')
      // else: never answers
    })
    const p = poster()
    await expect(p.post(server.url, {}, '{}', { timeoutMs: 200, stop: never })).rejects.toMatchObject({ name: 'TimeoutError' })
    expect(await p.post(server.url, { 'x-endless': '1' }, '{}', { timeoutMs: 200, stop: never })).toEqual({ status: 200 })
    // both connections are ended by this side's deadline, not left open to the server's
    await Promise.all(closed)
    expect(closed).toHaveLength(2)
  })

  describe('https', () => {
    it.skipIf(tls == null)('refuses a receiver whose certificate is not trusted, and delivers once it is (skipped without the openssl command)', async () => {
      if (tls == null) return
      const server = await serve(createTlsServer(tls), (_req, res) => res.writeHead(204).end())
      const p = poster()
      await expect(p.post(server.url, {}, '{}', { timeoutMs: 5000, stop: never })).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })
      expect(server.bodies).toEqual([])

      const defaults = getCACertificates('default')
      setDefaultCACertificates([...defaults, tls.cert.toString('utf8')])
      closers.push(() => { setDefaultCACertificates(defaults) })
      const trusting = poster() // a new agent: the first one's TLS context was made with the old trust
      expect(await trusting.post(server.url, {}, '{"id":1}', { timeoutMs: 5000, stop: never })).toEqual({ status: 204 })
      expect(server.bodies).toEqual(['{"id":1}'])
    })
  })
})
