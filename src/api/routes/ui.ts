import { readdir, readFile } from 'node:fs/promises'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { systemErrorCode } from '../../errors.js'
import { errorBody } from '../errors.js'
import { sessionCookieName, fromSameOrigin, type UiSessions } from '../ui-session.js'

/** Where `npm run build` puts the page (scripts/build-web.js); src/ and dist/ both sit one level below the package root. */
export const WEB_DIST = fileURLToPath(new URL('../../../dist/web/', import.meta.url))

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json; charset=utf-8'
}

/**
 * Scripts and styles from this origin only, no inline code, nothing from elsewhere, not
 * framed. Images from data:/blob: for the QR codes; media: the camera preview.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:",
  "media-src 'self' blob:", "connect-src 'self'", "manifest-src 'self'",
  "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"
].join('; ')

/** On every answer of this API: a page from elsewhere may not frame it, sniff types, or read it. */
export async function securityHeaders (_request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
  void reply.header('content-security-policy', CONTENT_SECURITY_POLICY)
  void reply.header('x-content-type-options', 'nosniff')
  void reply.header('referrer-policy', 'no-referrer')
  void reply.header('cross-origin-opener-policy', 'same-origin')
  void reply.header('cross-origin-resource-policy', 'same-origin')
  return payload
}

export interface Asset { body: Buffer, type: string }

/** The built page, read once at start: a handful of small files, served from memory. */
export async function loadAssets (dir: string): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>()
  let names: string[]
  try {
    names = await readdir(dir, { recursive: true })
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return assets
    throw err
  }
  for (const name of names) {
    const type = TYPES[extname(name)]
    if (type == null) continue
    assets.set(name.split('\\').join('/'), { body: await readFile(join(dir, name)), type })
  }
  return assets
}

/**
 * GET / (the page `index` of `assets`) and /assets/… . The page is always checked again (it
 * names the current assets); the assets carry a hash of their content in their names, so they
 * never change and are kept for a year.
 */
export function staticRoutes (app: FastifyInstance, assets: Map<string, Asset>, index: string): void {
  const send = async (reply: FastifyReply, name: string, cache: string): Promise<unknown> => {
    const asset = assets.get(name)
    if (asset == null) {
      void reply.code(404)
      return errorBody('NOT_FOUND', name === index ? 'the web page is not built: run npm run build' : `no asset ${name}`)
    }
    return await reply.type(asset.type).header('cache-control', cache).send(asset.body)
  }
  app.get('/', { config: { public: true, hidden: true } }, async (_request, reply) => await send(reply, index, 'no-cache'))
  app.get<{ Params: { '*': string } }>('/assets/*', { config: { public: true, hidden: true } }, async (request, reply) =>
    await send(reply, `assets/${request.params['*']}`, 'public, max-age=31536000, immutable'))
}

export interface UiRoutesInit {
  sessions: UiSessions
  /** the built page's folder; default dist/web */
  webDir?: string
}

/** The web page (GET /, /assets/…), its login (code → cookie) and logout. */
export async function uiRoutes (app: FastifyInstance, { sessions, webDir = WEB_DIST }: UiRoutesInit): Promise<void> {
  const assets = await loadAssets(webDir)

  staticRoutes(app, assets, 'index.html')

  app.post('/v1/ui/login-codes', {
    schema: {
      operationId: 'createUiLoginCode',
      summary: 'A one-time code that logs a browser into the web page (what `octet ui` prints, in the URL fragment); bearer token only',
      description: 'The page at / exchanges the code (POST /v1/ui/session) for an HttpOnly, SameSite=Strict session cookie. The code is valid once, for 2 minutes.',
      tags: ['ui'],
      response: { 201: { type: 'object', required: ['code', 'expiresAt'], properties: { code: { type: 'string' }, expiresAt: { type: 'number' } } } }
    },
    config: { bearerOnly: true }
  }, async (_request, reply) => {
    void reply.code(201)
    return sessions.issueCode()
  })

  app.post<{ Body: { code: string } }>('/v1/ui/session', {
    schema: {
      operationId: 'createUiSession', errors: [400, 401],
      summary: 'Exchange a one-time login code for the session cookie of the web page',
      description: 'Only from a page of this origin (Origin header). Answers with Set-Cookie: octet_session_<port>, HttpOnly, SameSite=Strict.',
      tags: ['ui'],
      body: { type: 'object', required: ['code'], additionalProperties: false, properties: { code: { type: 'string', minLength: 1, maxLength: 128 } } },
      response: { 201: { type: 'object', required: ['expiresAt'], additionalProperties: false, properties: { expiresAt: { type: 'integer', description: 'when the session ends, ms since the epoch' } }, description: 'logged in: a session was created' } }
    },
    config: { public: true }
  }, async (request, reply) => {
    // a page of another origin may not log the browser into this node (login CSRF)
    if (request.headers.origin == null || !fromSameOrigin(request)) {
      void reply.code(403)
      return errorBody('HOST_NOT_ALLOWED', 'log in from the page this API serves (the URL `octet ui` prints)')
    }
    const session = sessions.exchange(request.body.code)
    if (session == null) {
      void reply.code(401)
      return errorBody('UNAUTHORIZED', 'this login code is unknown, used or expired: run `octet ui` again for a new one')
    }
    const maxAge = Math.floor((session.expiresAt - Date.now()) / 1000)
    void reply.header('set-cookie', `${sessionCookieName(request)}=${session.cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}`)
    void reply.code(201)
    return { expiresAt: session.expiresAt }
  })

  app.delete('/v1/ui/session', {
    schema: { operationId: 'deleteUiSession', summary: 'Log the browser out (clears the session cookie)', tags: ['ui'], response: { 204: { type: 'null', description: 'logged out' } } }
  }, async (request, reply) => {
    void reply.header('set-cookie', `${sessionCookieName(request)}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`)
    return await reply.code(204).send()
  })
}
