import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { verifyDelivery, type VerifyResult } from '../../src/webhooks/index.js'
import type { Cleanup } from './daemon.js'

export interface Delivery {
  id: number
  type: string
  data: Record<string, any>
  body: string
  headers: IncomingHttpHeaders
  /** the documented check, without dedupe (tests count duplicates themselves) */
  check: VerifyResult
}

/**
 * A webhook receiver on 127.0.0.1, as a bridge would run one: it records every delivery
 * (duplicates too), answers `status` (200 unless told otherwise) after `delayMs`, and can go
 * down (the port closed) and come back on the same port.
 */
export class WebhookReceiver {
  readonly deliveries: Delivery[] = []
  /** event ids of requests as they arrive, before they are answered */
  readonly arrived: number[] = []
  /** when each of those arrived (ms, performance.now()) */
  readonly arrivedAt: number[] = []
  /** event ids of requests whose connection closed before they were answered (the sender aborted) */
  readonly aborted: number[] = []
  status = 200
  delayMs = 0
  private server: Server
  private port = 0
  private readonly waiters = new Set<() => void>()

  private constructor (private readonly secret: string) {
    this.server = this.makeServer()
  }

  static async start (secret: string, cleanup: Cleanup): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver(secret)
    await receiver.up()
    cleanup.add(async () => { await receiver.down() })
    return receiver
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}/hook`
  }

  /** Distinct event ids received, in the order they first arrived. */
  get ids (): number[] {
    return [...new Set(this.deliveries.map(d => d.id))]
  }

  private makeServer (): Server {
    return createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        const parsed = JSON.parse(body) as { id: number, type: string, data: Record<string, any> }
        const check = verifyDelivery({ secret: this.secret, body, headers: req.headers as Record<string, string> })
        const status = this.status
        this.arrived.push(parsed.id)
        this.arrivedAt.push(performance.now())
        for (const wake of this.waiters) wake()
        let answered = false
        res.once('close', () => {
          if (answered) return
          clearTimeout(timer)
          this.aborted.push(parsed.id)
          for (const wake of this.waiters) wake()
        })
        const timer = setTimeout(() => {
          answered = true
          // recorded as answered: a delivery is taken once its 2xx is on its way
          this.deliveries.push({ id: parsed.id, type: parsed.type, data: parsed.data, body, headers: req.headers, check })
          for (const wake of this.waiters) wake()
          res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no')
        }, this.delayMs)
      })
    })
  }

  async up (): Promise<void> {
    this.server = this.makeServer()
    this.server.listen(this.port, '127.0.0.1')
    await once(this.server, 'listening')
    this.port = (this.server.address() as AddressInfo).port
  }

  /** Closes the port: deliveries meet ECONNREFUSED until up(). */
  async down (): Promise<void> {
    if (!this.server.listening) return
    const closed = once(this.server, 'close')
    this.server.close()
    this.server.closeAllConnections()
    await closed
  }

  /** Resolves once `check` holds after some delivery (or now). */
  async until (what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
    if (check()) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(wake)
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received ids ${JSON.stringify(this.deliveries.map(d => d.id))}`))
      }, timeoutMs)
      const wake = (): void => {
        if (!check()) return
        clearTimeout(timer)
        this.waiters.delete(wake)
        resolve()
      }
      this.waiters.add(wake)
    })
  }
}
