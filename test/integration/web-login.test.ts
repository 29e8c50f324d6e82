import { request as httpRequest } from 'node:http'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pageHostName } from '../../src/api/ui-session.js'
import { Cleanup, DaemonProcess, runCli } from '../helpers/daemon.js'

/**
 * The web page's login and its fences, over HTTP against a real daemon: `octet ui` gives a
 * one-time code, the page trades it for an HttpOnly SameSite=Strict cookie, and the cookie
 * works only for requests of the page's own origin (a local page on another port is the
 * same site, so SameSite alone would let it through).
 */
interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string }

async function http (port: number, method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1', port, method, path,
      headers: { host: `127.0.0.1:${port}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      signal: AbortSignal.timeout(10_000)
    }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }) })
    })
    req.on('error', reject)
    req.end(body !== undefined ? JSON.stringify(body) : undefined)
  })
}

describe('web page login', () => {
  const cleanup = new Cleanup()
  let daemon: DaemonProcess
  let port: number
  let origin: string

  beforeAll(async () => {
    daemon = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
    origin = new URL(daemon.info.apiUrl).origin
    port = Number(new URL(daemon.info.apiUrl).port)
  }, 60_000)
  afterAll(async () => { await cleanup.run() })

  async function loginCode (): Promise<string> {
    const ui = await runCli(['ui', '--data-dir', daemon.options.dataDir])
    expect(ui.code, ui.stderr).toBe(0)
    expect(ui.stdout).not.toContain(daemon.token)
    const url = new URL(ui.stdout.trim())
    // the page's own name under .localhost, on the API's port
    expect(url.hostname).toMatch(/^octet-[0-9a-f]{20}\.localhost$/)
    expect(url.hostname).toBe(pageHostName(daemon.token))
    expect(url.port).toBe(String(port))
    const code = /^#login=([A-Za-z0-9_-]{43})$/.exec(url.hash)?.[1]
    expect(code).toBeDefined()
    return code ?? ''
  }

  async function session (): Promise<string> {
    const answer = await http(port, 'POST', '/v1/ui/session', { origin }, { code: await loginCode() })
    expect(answer.status).toBe(201)
    const cookie = String(answer.headers['set-cookie'])
    return cookie.slice(0, cookie.indexOf(';'))
  }

  it('serves the page with a strict CSP, no inline script, and cacheable hashed assets', async () => {
    const page = await http(port, 'GET', '/')
    expect(page.status).toBe(200)
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(page.headers['cache-control']).toBe('no-cache')
    const csp = String(page.headers['content-security-policy'])
    expect(csp).toContain("default-src 'none'")
    expect(csp).toContain("script-src 'self'")
    expect(csp).not.toContain('unsafe-inline')
    expect(csp).toContain("frame-ancestors 'none'")
    // every script comes from a file of this origin: none inline, none from elsewhere
    const scripts = [...page.body.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)]
    expect(scripts.length).toBeGreaterThan(0)
    for (const [, attrs, inline] of scripts) {
      expect(inline?.trim()).toBe('')
      expect(attrs).toMatch(/src="\/assets\/app-[A-Z0-9]+\.js"/)
    }
    // the stylesheet, the script and the chunk it preloads; then what the scripts import later (the QR decoder)
    const assets = [...page.body.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map(m => m[1] ?? '')
    expect(assets).toHaveLength(3)
    for (const asset of assets) {
      const answer = await http(port, 'GET', asset)
      if (asset.endsWith('.js')) for (const [, later] of answer.body.matchAll(/import\("\.\/([^"]+)"\)/g)) if (!assets.includes(`/assets/${later}`)) assets.push(`/assets/${later}`)
      expect(answer.status).toBe(200)
      expect(answer.headers['content-type']).toMatch(asset.endsWith('.js') ? /^text\/javascript/ : /^text\/css/)
      expect(answer.headers['cache-control']).toBe('public, max-age=31536000, immutable')
      expect(answer.body).not.toMatch(/https?:\/\/(?!127\.0\.0\.1|localhost|www\.w3\.org)[a-z]/i)
    }
    expect(assets).toHaveLength(4)
    expect((await http(port, 'GET', '/assets/nothing.js')).status).toBe(404)
  })

  it('names the page by its own host under .localhost, or by the API\'s address when asked (--address)', async () => {
    const named = new URL((await runCli(['ui', '--data-dir', daemon.options.dataDir])).stdout.trim())
    const again = new URL((await runCli(['ui', '--data-dir', daemon.options.dataDir])).stdout.trim())
    // stable: the page keeps its origin (and its cookie) from one `octet ui` to the next
    expect(again.origin).toBe(named.origin)
    expect(again.hash).not.toBe(named.hash)
    const plain = await runCli(['ui', '--address', '--data-dir', daemon.options.dataDir])
    expect(plain.code, plain.stderr).toBe(0)
    const url = new URL(plain.stdout.trim())
    expect(url.origin).toBe(origin)
    expect(url.hash).toMatch(/^#login=[A-Za-z0-9_-]{43}$/)
    // the page answers under its name (a loopback name passes the Host check)
    expect((await http(port, 'GET', '/', { host: named.host })).status).toBe(200)
  })

  it('trades a one-time code for an HttpOnly SameSite=Strict cookie, once, from its own origin only', async () => {
    const code = await loginCode()
    // a page of another origin cannot log the browser in (login CSRF), nor can a request that names none
    expect((await http(port, 'POST', '/v1/ui/session', { origin: 'http://127.0.0.1:1' }, { code })).status).toBe(403)
    expect((await http(port, 'POST', '/v1/ui/session', {}, { code })).status).toBe(403)
    const answer = await http(port, 'POST', '/v1/ui/session', { origin }, { code })
    expect(answer.status).toBe(201)
    const cookie = String(answer.headers['set-cookie'])
    expect(cookie).toMatch(new RegExp(`^octet_session_${port}=[^;]+; Path=/; HttpOnly; SameSite=Strict; Max-Age=\\d+$`))
    expect(cookie).not.toContain(daemon.token)
    // used: refused the second time
    expect((await http(port, 'POST', '/v1/ui/session', { origin }, { code })).status).toBe(401)
    expect((await http(port, 'POST', '/v1/ui/session', { origin }, { code: 'made-up' })).status).toBe(401)
  })

  it('takes the cookie from its own origin only; a rebound name is refused before anything', async () => {
    const cookie = await session()
    const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    // the page itself: a same-origin read and write
    expect((await http(port, 'GET', '/v1/conversations', { cookie, 'sec-fetch-site': 'same-origin' })).status).toBe(200)
    expect((await http(port, 'POST', '/v1/contacts', { cookie, origin, 'sec-fetch-site': 'same-origin' }, { peerId, name: 'me' })).status).toBe(201)
    // another local page (same site, other port): neither reads nor writes
    const other = { cookie, origin: 'http://127.0.0.1:8080', 'sec-fetch-site': 'same-site' }
    expect((await http(port, 'GET', '/v1/conversations', other)).status).toBe(401)
    expect((await http(port, 'POST', '/v1/contacts', other, { peerId, name: 'evil' })).status).toBe(401)
    expect((await http(port, 'GET', '/v1/events', { cookie, 'sec-fetch-site': 'cross-site' })).status).toBe(401)
    // a write that names no origin at all is not taken on a cookie
    expect((await http(port, 'POST', '/v1/contacts', { cookie }, { peerId, name: 'evil' })).status).toBe(401)
    // DNS rebinding: the browser sends the cookie to "evil.example", the Host check answers first
    const rebound = await http(port, 'GET', '/v1/conversations', { cookie, host: `evil.example:${port}`, 'sec-fetch-site': 'same-origin' })
    expect(rebound.status).toBe(403)
    expect(JSON.parse(rebound.body).error.code).toBe('HOST_NOT_ALLOWED')
    // a cookie does not mint login codes: only the token's holder does
    expect((await http(port, 'POST', '/v1/ui/login-codes', { cookie, origin, 'sec-fetch-site': 'same-origin' })).status).toBe(401)
    // a forged or tampered cookie is nothing
    const forged = cookie.replace(/=(\d+)\./, (_m, expiry: string) => `=${Number(expiry) + 1000}.`)
    expect((await http(port, 'GET', '/v1/conversations', { cookie: forged, 'sec-fetch-site': 'same-origin' })).status).toBe(401)
    const { body } = await daemon.api<{ contacts: Array<{ peerId: string, name?: string }> }>('GET', '/v1/contacts')
    expect(body.contacts.find(c => c.peerId === peerId)?.name).toBe('me')
  })

  it('logs out: the cookie is cleared', async () => {
    const cookie = await session()
    const answer = await http(port, 'DELETE', '/v1/ui/session', { cookie, origin, 'sec-fetch-site': 'same-origin' })
    expect(answer.status).toBe(204)
    expect(String(answer.headers['set-cookie'])).toMatch(new RegExp(`^octet_session_${port}=; .*Max-Age=0`))
  })
})
