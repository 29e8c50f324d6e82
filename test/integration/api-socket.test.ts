import { existsSync } from 'node:fs'
import { mkdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { UNIX_SOCKET_PATH_MAX, socketFetch } from '../../src/api-socket.js'
import { daemonApi } from '../../src/cli/client.js'
import { openEventStream } from '../../src/cli/sse.js'
import { Cleanup, DaemonProcess, runCli, waitFor } from '../helpers/daemon.js'

const cleanup = new Cleanup()
afterEach(async () => { await cleanup.run() })

async function overSocket (path: string, route: string, token?: string): Promise<{ status: number, body: unknown }> {
  const res = await socketFetch(path)(route, {
    headers: token != null ? { authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(10_000)
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
}

describe('api.sock: the API on a Unix socket in the data directory', () => {
  it('serves the same API with mode 0600, needs the token, and is removed by a clean stop', async () => {
    const dataDir = await cleanup.tempDir()
    const daemon = await DaemonProcess.start({ dataDir }, cleanup)
    const sock = join(dataDir, 'api.sock')
    expect(daemon.info.apiSocket).toBe(sock)
    const info = await stat(sock)
    expect(info.isSocket()).toBe(true)
    expect((info.mode & 0o777).toString(8)).toBe('600')

    const identity = await overSocket(sock, '/v1/identity', daemon.token)
    expect(identity.status).toBe(200)
    expect((identity.body as { peerId: string }).peerId).toBe(daemon.info.peerId)
    const refused = await overSocket(sock, '/v1/identity')
    expect(refused.status).toBe(401)
    expect((refused.body as { error: { code: string } }).error.code).toBe('UNAUTHORIZED')
    expect((await overSocket(sock, '/v1/identity', 'x'.repeat(43))).status).toBe(401)
    expect((await overSocket(sock, '/v1/health')).status).toBe(200)
    // the TCP API is unchanged beside it
    expect((await daemon.api('GET', '/v1/identity')).status).toBe(200)

    expect(await daemon.stop()).toBe(0)
    expect(existsSync(sock)).toBe(false)
  })

  it('streams events over the socket, answers 204 without a body, and a daemon with a stream open still stops cleanly', async () => {
    const dataDir = await cleanup.tempDir()
    const daemon = await DaemonProcess.start({ dataDir }, cleanup)
    const { client, baseUrl } = await daemonApi(dataDir)
    expect(baseUrl).toBe(`unix:${join(dataDir, 'api.sock')}`)
    const abort = new AbortController()
    const reader = (await openEventStream(client, abort.signal)).getReader()
    const first = await reader.read()
    expect(new TextDecoder().decode(first.value)).toContain(': octet events')

    // 204, a status that has no body: hanging up on a connected peer
    const other = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), bootstrap: [daemon.tcpAddress] }, cleanup)
    await waitFor(async () => (await daemon.api<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')).body.peers.some(p => p.peerId === other.info.peerId) ? true : undefined,
      { what: 'the second daemon to connect' })
    const hangUp = await socketFetch(join(dataDir, 'api.sock'))(`/v1/peers/${other.info.peerId}`, { method: 'DELETE', headers: { authorization: `Bearer ${daemon.token}` } })
    expect(hangUp.status).toBe(204)
    expect(hangUp.body).toBeNull()

    // the open stream must not hold the daemon up
    const started = Date.now()
    expect(await daemon.stop()).toBe(0)
    expect(Date.now() - started).toBeLessThan(5_000)
    // and the stream is over for the client: it ends, or errors, once the daemon is gone
    let over = false
    while (!over) over = await reader.read().then(r => r.done, () => true)
    abort.abort()
  })

  it('the CLI goes through the socket when it answers: a daemon whose api.url is useless from here is still reached', async () => {
    const dataDir = await cleanup.tempDir()
    const daemon = await DaemonProcess.start({ dataDir }, cleanup)
    // what a daemon in a network namespace leaves: a 127.0.0.1 URL of another network stack
    await writeFile(join(dataDir, 'api.url'), 'http://127.0.0.1:1\n')
    const id = await runCli(['id', '--data-dir', dataDir])
    expect(id.code, id.stderr).toBe(0)
    expect(id.stdout.split('\n')[0]).toBe(daemon.info.peerId)
    expect((await daemonApi(dataDir)).baseUrl).toBe(`unix:${join(dataDir, 'api.sock')}`)
  })

  it('a socket left by a killed daemon: the CLI falls back to api.url, and the next daemon starts and serves on a fresh socket', async () => {
    const dataDir = await cleanup.tempDir()
    const crashed = await DaemonProcess.start({ dataDir }, cleanup)
    await crashed.kill()
    const sock = join(dataDir, 'api.sock')
    expect((await stat(sock)).isSocket()).toBe(true)
    // nobody answers on the stale socket: the client tries api.url and names it
    expect((await daemonApi(dataDir)).baseUrl).toBe(crashed.info.apiUrl)
    const status = await runCli(['id', '--data-dir', dataDir])
    expect(status.code).toBe(1)
    expect(status.stderr).toContain(crashed.info.apiUrl)

    const next = await DaemonProcess.start({ dataDir }, cleanup)
    expect((await overSocket(sock, '/v1/identity', next.token)).status).toBe(200)
    expect(((await stat(sock)).mode & 0o777).toString(8)).toBe('600')
  })

  it(`a data directory too long for a socket path (over ${UNIX_SOCKET_PATH_MAX} bytes): no socket, a warning, the TCP API and the CLI work`, async () => {
    const base = await cleanup.tempDir()
    const dataDir = join(base, 'd'.repeat(Math.max(1, UNIX_SOCKET_PATH_MAX - base.length)))
    await mkdir(dataDir)
    expect(Buffer.byteLength(join(dataDir, 'api.sock'))).toBeGreaterThan(UNIX_SOCKET_PATH_MAX)
    const daemon = await DaemonProcess.start({ dataDir }, cleanup)
    expect(daemon.info.apiSocket).toBeUndefined()
    expect(existsSync(join(dataDir, 'api.sock'))).toBe(false)
    expect(daemon.output.join('')).toContain('too long for a Unix socket')
    expect((await daemon.api('GET', '/v1/identity')).status).toBe(200)
    const id = await runCli(['id', '--data-dir', dataDir])
    expect(id.code, id.stderr).toBe(0)
    expect(id.stdout.split('\n')[0]).toBe(daemon.info.peerId)
  })
})
