import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'

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
    return isLoopbackName(host) || this.allowed.has(host)
  }
}

/** The hosts a request may name for an API listening on `listenHost`, plus the operator's own. */
export function apiHostCheck (listenHost: string, extra: readonly string[]): HostCheck {
  const listening = listenHost === '0.0.0.0' || listenHost === '::'
    ? Object.values(networkInterfaces()).flatMap(addresses => addresses?.map(a => a.address) ?? [])
    : [listenHost]
  return new HostCheck([...listening, ...extra])
}

function hostOf (header: string): string | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+))(?::\d{1,5})?$/.exec(header.trim())
  const host = match?.[1] ?? match?.[2]
  return host == null ? undefined : normalizeHost(host)
}

function normalizeHost (host: string): string {
  return host.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '')
}

function isLoopbackName (host: string): boolean {
  if (host === 'localhost' || host.endsWith('.localhost') || host === '::1') return true
  return isIP(host) === 4 && host.startsWith('127.')
}
