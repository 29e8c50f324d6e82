import { BlockList, isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { errorBody } from './errors.js'

/**
 * Which names a request over TCP may give in its `Host` header. The check
 * stops DNS rebinding: a page from evil.example, whose name its owner then
 * points at 127.0.0.1, gets a browser to send requests to this API from the
 * user's own machine; the browser still says `Host: evil.example`. The bearer
 * token already keeps such a page from acting, and this keeps it from even
 * talking to the API (the public routes, the error answers, timing).
 *
 * Allowed: loopback names and addresses (`localhost`, `*.localhost`,
 * 127.0.0.0/8, `::1`), the address the API listens on (every address of this
 * machine's interfaces when it listens on 0.0.0.0 or ::), and the hosts the
 * operator adds (`--api-allowed-host`, env OCTET_API_ALLOWED_HOSTS). The port
 * is not compared: a rebinding page names the API's port too.
 */
export class HostCheck {
  private readonly allowed: Set<string>

  constructor (hosts: Iterable<string>) {
    this.allowed = new Set([...hosts].map(normalizeHost))
  }

  /** `header` is the raw Host header: `name`, `name:port`, `[v6]` or `[v6]:port`. */
  allows (header: string): boolean {
    const host = hostOf(header)
    if (host == null) return false
    return isLoopbackHost(host) || this.allowed.has(host)
  }
}

/** The hosts a request may name for an API listening on `listenHost`, plus the operator's own. */
export function apiHostCheck (listenHost: string, extra: readonly string[]): HostCheck {
  const listening = listenHost === '0.0.0.0' || listenHost === '::'
    ? Object.values(networkInterfaces()).flatMap(addresses => addresses?.map(a => a.address) ?? [])
    : [listenHost]
  return new HostCheck([...listening, ...extra])
}

/**
 * The onRequest hook that answers a request over TCP whose Host is missing (400) or not
 * allowed (403); requests over a Unix socket (no remote address) pass, no web page reaches those.
 */
export function hostCheckHook (hostCheck: HostCheck) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (request.raw.socket.remoteAddress == null) return
    const host = request.headers.host
    if (host == null || host === '') {
      void reply.code(400)
      return await reply.send(errorBody('BAD_REQUEST', 'a Host header is required'))
    }
    if (!hostCheck.allows(host)) {
      void reply.code(403)
      return await reply.send(errorBody('HOST_NOT_ALLOWED', `Host "${host}" is not an address this API listens on; if you reach it under that name, allow it with --api-allowed-host (env OCTET_API_ALLOWED_HOSTS)`))
    }
  }
}

function hostOf (header: string): string | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+))(?::\d{1,5})?$/.exec(header.trim())
  const host = match?.[1] ?? match?.[2]
  return host == null ? undefined : normalizeHost(host)
}

function normalizeHost (host: string): string {
  return host.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '')
}

const LOOPBACK = new BlockList()
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')
LOOPBACK.addAddress('::1', 'ipv6')

/**
 * True for a name or address only this machine can reach: `localhost` and `*.localhost`
 * (RFC 6761), 127.0.0.0/8 and `::1`, in any case, with or without brackets and a trailing dot.
 * The one rule for the Host check, the warnings about an API or metrics listening beyond this
 * machine, and the page name `octet ui` prints. `127.example.org` is a name like any other.
 */
export function isLoopbackHost (host: string): boolean {
  const name = normalizeHost(host)
  if (name === 'localhost' || name.endsWith('.localhost')) return true
  const family = isIP(name)
  return family !== 0 && LOOPBACK.check(name, family === 4 ? 'ipv4' : 'ipv6')
}
