import { createHmac, randomBytes } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { tokensMatch } from '../datadir.js'
import { DAY, MINUTE } from '../units.js'

/** How long a login code from `octet ui` may wait before the browser exchanges it. */
export const LOGIN_CODE_TTL = 2 * MINUTE
/** How long the browser stays logged in; `octet ui` logs it in again. */
export const SESSION_TTL = 30 * DAY
/** Codes waiting at once: `octet ui` run in a loop cannot grow the daemon's memory. */
const MAX_PENDING_CODES = 64

/**
 * The web page's login. `octet ui` (holding the bearer token) asks for a one-time code and
 * prints a URL carrying it in the fragment, which browsers never send to a server nor log;
 * the page exchanges it for an HttpOnly, SameSite=Strict cookie. The token itself never
 * reaches the browser: not in a URL, not in the page's storage.
 *
 * The cookie is stateless: its expiry and a nonce signed with the API token (HMAC-SHA256).
 * So it survives a daemon restart (the page keeps working), and replacing api.token logs
 * every browser out. Codes live in memory only: a restart forgets the unused ones.
 */
export class UiSessions {
  private readonly codes = new Map<string, number>()

  constructor (private readonly token: string, private readonly now: () => number = Date.now) {}

  /** A fresh one-time code, valid for LOGIN_CODE_TTL. */
  issueCode (): { code: string, expiresAt: number } {
    this.prune()
    while (this.codes.size >= MAX_PENDING_CODES) {
      const oldest = this.codes.keys().next().value
      if (oldest == null) break
      this.codes.delete(oldest)
    }
    const code = randomBytes(32).toString('base64url')
    const expiresAt = this.now() + LOGIN_CODE_TTL
    this.codes.set(code, expiresAt)
    return { code, expiresAt }
  }

  /** Spends a code: the cookie value for a new session, or undefined when the code is unknown, used or expired. */
  exchange (code: string): { cookie: string, expiresAt: number } | undefined {
    this.prune()
    const expiresAt = this.codes.get(code)
    if (expiresAt == null) return undefined
    this.codes.delete(code)
    const sessionExpiresAt = this.now() + SESSION_TTL
    const payload = `${sessionExpiresAt}.${randomBytes(16).toString('base64url')}`
    return { cookie: `${payload}.${this.sign(payload)}`, expiresAt: sessionExpiresAt }
  }

  /** Whether a cookie value was signed by this daemon's token and has not expired. */
  valid (cookie: string): boolean {
    const match = /^(\d{1,15})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(cookie)
    if (match == null) return false
    const payload = `${match[1]}.${match[2]}`
    return tokensMatch(this.sign(payload), match[3] ?? '') && Number(match[1]) > this.now()
  }

  private sign (payload: string): string {
    return createHmac('sha256', this.token).update(`octet-ui-session\n${payload}`).digest('base64url')
  }

  private prune (): void {
    const now = this.now()
    for (const [code, expiresAt] of this.codes) if (expiresAt <= now) this.codes.delete(code)
  }
}

/**
 * The name `octet ui` gives the page when the API is on this machine's loopback: its own
 * host under `.localhost`, which browsers resolve to loopback themselves (RFC 6761) and
 * for which they keep cookies apart from `127.0.0.1` and `localhost`. A browser sends a
 * host's cookies to every port of it, so on 127.0.0.1 a web server of another user on the
 * same machine, visited in the same browser, would get the session cookie; under this name
 * it would have to be visited as this very name, which it cannot learn: derived from the
 * API token, the name is stable while the token is and says nothing about it.
 */
export function pageHostName (token: string): string {
  return `octet-${createHmac('sha256', token).update('octet-ui-host').digest('hex').slice(0, 20)}.localhost`
}

/**
 * The session cookie's name, per API port: cookies are shared by every port of a host, so
 * two daemons on one machine (127.0.0.1:4780 and :4781) must not overwrite each other's.
 */
export function sessionCookieName (request: FastifyRequest): string {
  const port = /:(\d{1,5})$/.exec(request.headers.host ?? '')?.[1] ?? '80'
  return `octet_session_${port}`
}

/** The value of one cookie of the request, if it has it. */
export function readCookie (request: FastifyRequest, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

/**
 * Whether a request comes from a page of this very origin, as far as the browser tells.
 * SameSite=Strict is not enough: it is about sites, and every port of 127.0.0.1 is one site,
 * so any local web server's page would send the cookie along. Browsers name the caller's
 * origin on every cross-origin request (Origin) and say how the request relates to the
 * target (Sec-Fetch-Site); a request that changes something must prove it is same-origin.
 */
export function fromSameOrigin (request: FastifyRequest): boolean {
  const origin = request.headers.origin
  if (origin != null) return origin === `http://${request.headers.host ?? ''}` || origin === `https://${request.headers.host ?? ''}`
  const site = request.headers['sec-fetch-site']
  const safe = request.method === 'GET' || request.method === 'HEAD'
  if (site != null) return site === 'same-origin' || (site === 'none' && safe)
  // no browser header at all: not a browser, or one too old to say; only reads, which a
  // cross-origin page could not see anyway
  return safe
}
