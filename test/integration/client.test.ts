// The typed client (`octet/client`) against a real daemon process: over TCP and over the
// Unix socket, typed data back, error answers as OctetApiError with the API's code, and the
// package's own export resolving for a program outside src (as the IRC bridge imports it).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createOctetClient, ok, OctetApiError, socketFetch } from '../../src/client/index.js'
import { Cleanup, DaemonProcess, ROOT } from '../helpers/daemon.js'

describe('typed API client', () => {
  const cleanup = new Cleanup()
  let daemon: DaemonProcess

  beforeAll(async () => {
    daemon = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
  }, 60_000)
  afterAll(async () => { await cleanup.run() })

  it('reads typed answers over TCP', async () => {
    const client = createOctetClient({ baseUrl: daemon.info.apiUrl, token: daemon.token })
    const identity = ok(await client.GET('/v1/identity'))
    expect(identity.peerId).toBe(daemon.peerId)
    const contacts = ok(await client.GET('/v1/contacts'))
    expect(Array.isArray(contacts.contacts)).toBe(true)
  })

  it('reaches the daemon over its Unix socket alike', async () => {
    const socket = daemon.info.apiSocket
    if (socket == null) throw new Error('the daemon reported no api.sock')
    const client = createOctetClient({ baseUrl: `unix:${socket}`, token: daemon.token, transport: socketFetch(socket) })
    expect(ok(await client.GET('/v1/identity')).peerId).toBe(daemon.peerId)
    // a body and a path parameter go through the socket too
    const added = await client.POST('/v1/contacts', { body: { peerId: 'not-a-peer-id' } })
    expect(added.response.status).toBe(400)
  })

  it('throws OctetApiError with the status and code of an error answer', async () => {
    const wrongToken = createOctetClient({ baseUrl: daemon.info.apiUrl, token: 'wrong' })
    const refused = await wrongToken.GET('/v1/identity').then(ok).catch((err: unknown) => err)
    expect(refused).toBeInstanceOf(OctetApiError)
    expect(refused).toMatchObject({ status: 401, code: 'UNAUTHORIZED' })

    const client = createOctetClient({ baseUrl: daemon.info.apiUrl, token: daemon.token })
    const invalid = await client.POST('/v1/contacts', { body: { peerId: 'not-a-peer-id' } }).then(ok).catch((err: unknown) => err)
    expect(invalid).toMatchObject({ status: 400 })
    expect((invalid as OctetApiError).code).toMatch(/^[A-Z_]+$/)
  })

  it('is importable as octet/client by a program outside the package source', async () => {
    const script = `import { createOctetClient, ok } from 'octet/client'
const client = createOctetClient({ baseUrl: process.argv[1], token: process.argv[2] })
console.log(ok(await client.GET('/v1/identity')).peerId)`
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, daemon.info.apiUrl, daemon.token], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => { out += c.toString() })
    child.stderr.on('data', (c: Buffer) => { out += c.toString() })
    const [code] = await once(child, 'close') as [number]
    expect(out.trim()).toBe(daemon.peerId)
    expect(code).toBe(0)
  })
})
