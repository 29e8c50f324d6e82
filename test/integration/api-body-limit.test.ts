import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { API_BODY_LIMIT, BODY_DISCARD_LIMIT, REFUSED_BODY_LINGER } from '../../src/api/body-limit.js'
import { Cleanup, DaemonProcess } from '../helpers/daemon.js'
import { readAnswer } from '../helpers/raw-http.js'

// A body over the API's limit, sent to a real daemon over TCP: the client reads the 413 in
// octet's error shape every time (while it is still sending, fast or slowly), and the daemon
// stays up. Before the fix the daemon answered without reading and closed at once, and the
// client still sending often got ECONNRESET instead of the answer.
const cleanup = new Cleanup()
let daemon: DaemonProcess
let port: number

beforeAll(async () => {
  daemon = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
  port = Number(new URL(daemon.info.apiUrl).port)
}, 60_000)
afterAll(async () => { await cleanup.run() })

interface Upload {
  /** bytes of body to send (Content-Length, or chunked when `chunked`) */
  size: number
  /** bytes per write and the pause between writes; no pause: everything at once */
  chunk?: number
  pauseMs?: number
  chunked?: boolean
  /** stop sending after this long even if not done (bodies larger than anyone reads) */
  sendForMs?: number
}

interface UploadResult {
  status: number
  body: any
  /** body bytes the client got to write before the connection ended */
  sent: number
  /** the socket error the client saw, if any (after or instead of the answer) */
  error?: string
}

/** POSTs a body of `size` bytes to /v1/messages on a raw socket, reading the answer while it sends. */
async function upload ({ size, chunk = size, pauseMs = 0, chunked = false, sendForMs = 30_000 }: Upload): Promise<UploadResult> {
  // half-open allowed: the client goes on sending after the daemon's answer and FIN, as a client
  // busy uploading does (Node's default would end this side at once on the FIN)
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  const head = [
    'POST /v1/messages HTTP/1.1',
    `host: 127.0.0.1:${port}`,
    `authorization: Bearer ${daemon.token}`,
    'content-type: application/json',
    chunked ? 'transfer-encoding: chunked' : `content-length: ${size}`
  ].join('\r\n') + '\r\n\r\n'
  const answer = readAnswer(socket)
  let sent = 0
  let ended = false
  socket.once('close', () => { ended = true })
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  socket.write(head)
  const piece = Buffer.alloc(Math.min(chunk, size), 'a')
  const started = Date.now()
  while (sent < size && !ended && !socket.destroyed && Date.now() - started < sendForMs) {
    const n = Math.min(piece.length, size - sent)
    const data = chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), piece.subarray(0, n), Buffer.from('\r\n')]) : piece.subarray(0, n)
    sent += n
    if (!socket.write(data)) await waitDrain(socket)
    if (pauseMs > 0) await new Promise(resolve => setTimeout(resolve, pauseMs))
  }
  if (chunked && sent >= size && !ended) socket.write('0\r\n\r\n')
  // the request is sent (or given up on): hang up, as the answer said Connection: close
  if (!socket.destroyed) socket.end()
  const { status, body, error } = await answer
  return { status, body, sent, ...(error != null ? { error } : {}) }
}

async function waitDrain (socket: Socket): Promise<void> {
  await new Promise<void>(resolve => {
    const done = (): void => { socket.off('drain', done); socket.off('close', done); resolve() }
    socket.once('drain', done)
    socket.once('close', done)
  })
}

async function healthy (): Promise<void> {
  expect(daemon.exited).toBe(false)
  const health = await daemon.api<{ status: string }>('GET', '/v1/health')
  expect(health.status).toBe(200)
}

function expectTooLarge (result: UploadResult): void {
  expect(result.status, `no 413 read (socket error: ${result.error ?? 'none'})`).toBe(413)
  expect(result.body).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } })
  expect(typeof result.body.error.message).toBe('string')
}

describe('a body over the limit gets its 413', () => {
  const sizes = [['2×', 2], ['10×', 10], ['100×', 100]] as const
  const paces = [
    ['fast (one write)', {}],
    ['slowly (16 KiB every 5 ms)', { chunk: 16 * 1024, pauseMs: 5 }]
  ] as const
  for (const [times, factor] of sizes) {
    for (const [pace, options] of paces) {
      it(`${times} the limit, sent ${pace}, three times in a row`, async () => {
        for (let i = 0; i < 3; i++) {
          expectTooLarge(await upload({ size: factor * API_BODY_LIMIT, ...options }))
          await healthy()
        }
      }, 60_000)
    }
  }

  it('a chunked body (no length given) that goes over the limit', async () => {
    for (let i = 0; i < 3; i++) {
      expectTooLarge(await upload({ size: 10 * API_BODY_LIMIT, chunk: 16 * 1024, chunked: true }))
      await healthy()
    }
  }, 60_000)

  it('a body far beyond what is discarded: 413, then the connection is closed, and little of it is read', async () => {
    // 1 GiB declared and sent as fast as loopback takes it for up to 10 s: the daemon stops
    // reading after BODY_DISCARD_LIMIT, so the client's sending stalls and the connection ends
    const before = await daemon.api<{ memory: { rss: number } }>('GET', '/v1/stats')
    const result = await upload({ size: 1024 * 1024 * 1024, chunk: 256 * 1024, sendForMs: 10_000 })
    expectTooLarge(result)
    // what was written is what was discarded plus the socket buffers of both ends (a few MiB),
    // not the gigabyte, nor what loopback carries in 10 s
    expect(result.sent).toBeLessThan(BODY_DISCARD_LIMIT + 32 * 1024 * 1024)
    await healthy()
    const after = await daemon.api<{ memory: { rss: number } }>('GET', '/v1/stats')
    expect(after.body.memory.rss - before.body.memory.rss).toBeLessThan(64 * 1024 * 1024)
  }, 60_000)
})

describe('Expect: 100-continue', () => {
  async function ask (size: number): Promise<string> {
    const socket = connect(port, '127.0.0.1')
    const head = [
      'POST /v1/contacts HTTP/1.1', `host: 127.0.0.1:${port}`, `authorization: Bearer ${daemon.token}`,
      'content-type: application/json', `content-length: ${size}`, 'expect: 100-continue', 'connection: close'
    ].join('\r\n') + '\r\n\r\n'
    let text = ''
    socket.on('data', (c: Buffer) => { text += c.toString() })
    socket.write(head)
    // the first thing the server says, before any body is sent
    await new Promise(resolve => setTimeout(resolve, 500))
    socket.destroy()
    return text
  }

  it('a body declared too large is refused before it is sent', async () => {
    const text = await ask(10 * API_BODY_LIMIT)
    expect(text).not.toContain('100 Continue')
    expect(text.split('\r\n')[0]).toBe('HTTP/1.1 413 Payload Too Large')
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } })
    await healthy()
  })

  it('a refused client that sends nothing more and keeps the connection open is cut off', async () => {
    // half-open allowed: the daemon's FIN after the answer does not end this side, so only the
    // daemon closing its socket ends the connection (a byte written then is answered with a reset)
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    const answer = readAnswer(socket)
    const ended = new Promise(resolve => socket.once('end', resolve))
    socket.write([
      'POST /v1/contacts HTTP/1.1', `host: 127.0.0.1:${port}`, `authorization: Bearer ${daemon.token}`,
      'content-type: application/json', `content-length: ${10 * API_BODY_LIMIT}`, 'expect: 100-continue'
    ].join('\r\n') + '\r\n\r\n')
    await ended
    // still read (and discarded) before the linger is over
    socket.write('x')
    await new Promise(resolve => setTimeout(resolve, REFUSED_BODY_LINGER + 1000))
    expect(socket.destroyed).toBe(false)
    // after EOF a socket is no longer read, so the reset shows at the next write after it
    for (let i = 0; i < 20 && !socket.destroyed; i++) {
      socket.write('y')
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    const result = await answer
    expectTooLarge({ ...result, sent: 0 })
    expect(result.error).toMatch(/ECONNRESET|EPIPE/)
    await healthy()
  })

  it('a body within the limit is asked for', async () => {
    expect(await ask(100)).toMatch(/^HTTP\/1\.1 100 Continue\r\n/)
    await healthy()
  })
})
