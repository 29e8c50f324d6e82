// The CLI's transport under the typed client, against a real HTTP server on 127.0.0.1 that
// misbehaves on demand: a deadline on the whole answer (body included), none on an event
// stream, a daemon that is not there, and an error answer as the CLI prints it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { urlFetch } from '../../../src/api-socket.js'
import { cliError, withDeadline } from '../../../src/cli/client.js'
import { openEventStream } from '../../../src/cli/sse.js'
import { createOctetClient, ok, type OctetClient } from '../../../src/client/index.js'
import { isOctetError } from '../../../src/errors.js'

const DEADLINE = 200
/** How long the event stream stays silent before its next event: well past the deadline. */
const STREAM_PAUSE = 3 * DEADLINE

describe('the CLI client transport', () => {
  let server: Server
  let baseUrl: string
  let client: OctetClient
  /** what the server does with the next request */
  let behave: (req: IncomingMessage, res: ServerResponse) => void = () => {}

  beforeAll(async () => {
    server = createServer((req, res) => { behave(req, res) })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    client = createOctetClient({ baseUrl, token: 't', transport: withDeadline(urlFetch(baseUrl), baseUrl, DEADLINE) })
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })

  const failure = async (request: Promise<unknown>): Promise<unknown> => await request.then(() => undefined, (err: unknown) => cliError(err))

  it('a daemon that never answers: TIMEOUT naming where', async () => {
    behave = () => {}
    const err = await failure(client.GET('/v1/peers').then(ok))
    expect(isOctetError(err, 'TIMEOUT')).toBe(true)
    expect((err as Error).message).toContain(baseUrl)
  })

  it('an answer whose body stalls: TIMEOUT too, the deadline covers the whole answer', async () => {
    behave = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"peers":')
    }
    expect(isOctetError(await failure(client.GET('/v1/peers').then(ok)), 'TIMEOUT')).toBe(true)
  })

  it('an event stream has no deadline: an event after a long silence arrives', async () => {
    let accept: string | undefined
    behave = (req, res) => {
      accept = req.headers.accept
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(': octet events\n\n')
      setTimeout(() => { res.end('data: {"late":true}\n\n') }, STREAM_PAUSE)
    }
    const abort = new AbortController()
    const body = await openEventStream(client, abort.signal)
    let text = ''
    for await (const chunk of body) text += new TextDecoder().decode(chunk)
    expect(accept).toBe('text/event-stream')
    expect(text).toContain('{"late":true}')
    abort.abort()
  })

  it('an error answer: the message and code the CLI prints', async () => {
    behave = (_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { code: 'PEER_NOT_FOUND', message: 'no such peer' } }))
    }
    const err = await failure(client.GET('/v1/peers').then(ok))
    expect(isOctetError(err, 'API_ERROR')).toBe(true)
    expect((err as Error).message).toBe('no such peer (PEER_NOT_FOUND)')
  })

  it('nobody listening: DAEMON_NOT_RUNNING with the system error and what to do', async () => {
    const gone = createServer()
    await new Promise<void>(resolve => gone.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(gone.address() as AddressInfo).port}`
    await new Promise(resolve => gone.close(resolve))
    const nobody = createOctetClient({ baseUrl: url, token: 't', transport: withDeadline(urlFetch(url), url, DEADLINE) })
    const err = await failure(nobody.GET('/v1/peers').then(ok))
    expect(isOctetError(err, 'DAEMON_NOT_RUNNING')).toBe(true)
    expect((err as Error).message).toMatch(/ECONNREFUSED.*octet daemon/)
  })
})
