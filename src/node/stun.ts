/**
 * A STUN Binding responder (RFC 5389 / 8489: the Binding method only, no
 * authentication), run by public octet nodes so that peers behind NATs learn
 * their server-reflexive address for WebRTC's ICE without any third-party
 * STUN server. It answers a Binding request with a Binding success response
 * carrying XOR-MAPPED-ADDRESS — the source address and port the request came
 * from — and nothing else.
 *
 * A UDP responder is a reflector for anyone who spoofs a source address, so:
 * the response is barely larger than the smallest request (32 against 20
 * bytes for IPv4), anything that is not a well-formed Binding request is
 * dropped without an answer, and each source IP gets a token bucket of
 * answers (src/rate-limit.ts; per IP, not per port: a spoofer can pick any port).
 */
import { createSocket, type Socket } from 'node:dgram'
import { isIPv4, isIPv6 } from 'node:net'
import { OctetError, errorMessage } from '../errors.js'
import type { Logger } from '../logger.js'
import { RateLimiter } from '../rate-limit.js'
import { STUN_RATE_BURST, STUN_RATE_PER_SECOND, STUN_RATE_SOURCES_TRACKED } from './constants.js'

export const STUN_MAGIC_COOKIE = 0x2112a442
const HEADER_BYTES = 20
const BINDING_REQUEST = 0x0001
const BINDING_SUCCESS = 0x0101
const ATTR_XOR_MAPPED_ADDRESS = 0x0020
const FAMILY_IPV4 = 0x01
const FAMILY_IPV6 = 0x02
/** Requests are small; a datagram this large is no Binding request of any client we serve. */
const MAX_REQUEST_BYTES = 548

/** The parts of a Binding request the response needs. */
export interface BindingRequest {
  /** 12 bytes, echoed in the response */
  transactionId: Uint8Array
}

/**
 * Parses a datagram as a STUN Binding request; undefined for anything else
 * (other STUN methods, responses, indications, garbage). Attributes are not
 * interpreted: a Binding request needs none, and a responder without
 * authentication has no use for them.
 */
export function parseBindingRequest (datagram: Uint8Array): BindingRequest | undefined {
  if (datagram.byteLength < HEADER_BYTES || datagram.byteLength > MAX_REQUEST_BYTES) return undefined
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength)
  // the two top bits of every STUN message are zero (RFC 5389 §6): this is how STUN is told
  // apart from other protocols on one port
  const type = view.getUint16(0)
  if (type !== BINDING_REQUEST) return undefined
  const length = view.getUint16(2)
  // the length counts the attributes, which are padded to 4 bytes, and must match the datagram
  if (length % 4 !== 0 || HEADER_BYTES + length !== datagram.byteLength) return undefined
  if (view.getUint32(4) !== STUN_MAGIC_COOKIE) return undefined
  return { transactionId: datagram.slice(8, HEADER_BYTES) }
}

/**
 * The Binding success response to `request`, telling the client it was seen at
 * `ip`:`port`. Throws on an address that is neither IPv4 nor IPv6 text.
 */
export function encodeBindingSuccess (request: BindingRequest, ip: string, port: number): Uint8Array {
  const address = addressBytes(ip)
  if (address == null) throw new OctetError('INVALID_ADDRESS', `STUN: "${ip}" is not an IPv4 or IPv6 address`)
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new OctetError('INVALID_ADDRESS', `STUN: ${port} is not a UDP port`)
  const valueBytes = 4 + address.byteLength
  const out = new Uint8Array(HEADER_BYTES + 4 + valueBytes)
  const view = new DataView(out.buffer)
  view.setUint16(0, BINDING_SUCCESS)
  view.setUint16(2, 4 + valueBytes)
  view.setUint32(4, STUN_MAGIC_COOKIE)
  out.set(request.transactionId, 8)
  // XOR-MAPPED-ADDRESS (RFC 5389 §15.2): the port XORed with the cookie's top 16 bits, the
  // address with the cookie (IPv4) or the cookie and transaction id (IPv6), so that NATs that
  // rewrite addresses they find in payloads leave it alone
  let o = HEADER_BYTES
  view.setUint16(o, ATTR_XOR_MAPPED_ADDRESS)
  view.setUint16(o + 2, valueBytes)
  view.setUint8(o + 4, 0)
  view.setUint8(o + 5, address.byteLength === 4 ? FAMILY_IPV4 : FAMILY_IPV6)
  view.setUint16(o + 6, port ^ (STUN_MAGIC_COOKIE >>> 16))
  o += 8
  const mask = out.subarray(4, 4 + address.byteLength) // cookie, then transaction id
  for (let i = 0; i < address.byteLength; i++) out[o + i] = (address[i] ?? 0) ^ (mask[i] ?? 0)
  return out
}

/** The response to a datagram from `ip`:`port`, or undefined when it deserves none. */
export function respondTo (datagram: Uint8Array, ip: string, port: number): Uint8Array | undefined {
  const request = parseBindingRequest(datagram)
  if (request == null || addressBytes(ip) == null) return undefined
  return encodeBindingSuccess(request, ip, port)
}

function addressBytes (ip: string): Uint8Array | undefined {
  // an IPv4 peer on a dual-stack socket shows up as ::ffff:a.b.c.d; it is an IPv4 client
  const plain = ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip
  if (isIPv4(plain)) return Uint8Array.from(plain.split('.').map(Number))
  if (!isIPv6(plain)) return undefined
  const [head = '', tail = ''] = plain.split('%')[0]?.split('::') ?? []
  const groups = (text: string): number[] => text === '' ? [] : text.split(':').flatMap(g => {
    // an embedded IPv4 tail (::1.2.3.4) is two groups
    if (g.includes('.')) { const b = g.split('.').map(Number); return [((b[0] ?? 0) << 8) | (b[1] ?? 0), ((b[2] ?? 0) << 8) | (b[3] ?? 0)] }
    return [parseInt(g, 16)]
  })
  const left = groups(head)
  const right = plain.includes('::') ? groups(tail) : []
  const all = [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right]
  const out = new Uint8Array(16)
  all.forEach((g, i) => { out[2 * i] = g >> 8; out[2 * i + 1] = g & 0xff })
  return out
}

export interface StunServerStats {
  answered: number
  /** dropped: not a Binding request */
  ignored: number
  /** dropped: the source's rate limit was used up */
  limited: number
}

/**
 * The responder on one UDP port, IPv4 and (where the host has it) IPv6.
 * `start` resolves once bound; `stop` closes the sockets.
 */
export class StunServer {
  private sockets: Socket[] = []
  private readonly limiter = new RateLimiter(STUN_RATE_PER_SECOND, STUN_RATE_BURST, { maxKeys: STUN_RATE_SOURCES_TRACKED })
  readonly stats: StunServerStats = { answered: 0, ignored: 0, limited: 0 }

  /** `host`: an IPv4 address to bind, all interfaces (and IPv6 `::`) by default */
  constructor (private readonly port: number, private readonly log?: Logger, private readonly host?: string) {}

  get running (): boolean {
    return this.sockets.length > 0
  }

  /** The bound port (the configured one, or the one the system picked for 0). */
  get boundPort (): number | undefined {
    return this.sockets[0]?.address().port
  }

  async start (): Promise<void> {
    if (this.running) return
    const v4 = await this.bind('udp4', this.host ?? '0.0.0.0')
    if (v4 == null) throw new OctetError('ADDRESS_IN_USE', `STUN: cannot bind UDP port ${this.port}; choose another with --stun-port (0 turns STUN off)`)
    this.sockets.push(v4)
    // IPv6 is optional: a host (or network namespace) may have none
    const v6 = this.host == null ? await this.bind('udp6', '::', v4.address().port) : undefined
    if (v6 != null) this.sockets.push(v6)
    this.log?.info({ port: v4.address().port, ipv6: v6 != null }, 'STUN responder running')
  }

  async stop (): Promise<void> {
    const sockets = this.sockets
    this.sockets = []
    await Promise.all(sockets.map(async s => { await new Promise<void>(resolve => { s.close(() => { resolve() }) }) }))
  }

  private async bind (type: 'udp4' | 'udp6', host: string, port = this.port): Promise<Socket | undefined> {
    const socket = createSocket({ type, ipv6Only: type === 'udp6' })
    socket.on('message', (datagram, rinfo) => { this.onDatagram(socket, datagram, rinfo.address, rinfo.port) })
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject)
        socket.bind(port, host, () => { socket.off('error', reject); resolve() })
      })
    } catch (err) {
      this.log?.debug({ type, port, err: errorMessage(err) }, 'STUN: could not bind')
      socket.close()
      return undefined
    }
    // a send error (e.g. an unreachable source) is the client's problem, never a crash of ours
    socket.on('error', err => { this.log?.debug({ err: errorMessage(err) }, 'STUN socket error') })
    return socket
  }

  private onDatagram (socket: Socket, datagram: Buffer, ip: string, port: number): void {
    const response = respondTo(datagram, ip, port)
    if (response == null) { this.stats.ignored++; return }
    if (!this.limiter.tryTake(ip)) { this.stats.limited++; return }
    this.stats.answered++
    socket.send(response, port, ip)
  }
}
