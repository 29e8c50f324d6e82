import { readFile } from 'node:fs/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { dataDirPaths } from '../../src/datadir.js'
import type { MessageRecord } from '../../src/messaging/index.js'
import { Testnet } from '../../src/testnet/index.js'
import { Cleanup, waitFor } from '../helpers/daemon.js'

/**
 * Offline delivery through mailbox peers with every daemon a real process (a Testnet of 6,
 * ports picked by the OS): A (node-1) writes to C (node-2) while C is stopped, then A stops
 * too; C started again on its data directory collects from the mailbox peers among the
 * others. The same scenario as offline-delivery.test.ts, across process boundaries.
 */
describe('offline delivery through mailboxes, daemons as processes', () => {
  const cleanup = new Cleanup()
  afterEach(async () => { await cleanup.run() })

  const A = 'node-1'
  const C = 'node-2'

  async function network (): Promise<Network> {
    const dir = await cleanup.tempDir('octet-offline-testnet-')
    const testnet = new Testnet({ nodes: 6, dir, basePort: 0, logLevel: 'warn' })
    // registered after the directory, so it runs first
    cleanup.add(async () => { await testnet.stop() })
    const crashed: string[] = []
    testnet.onUnexpectedExit((name, code) => { crashed.push(`${name} (code ${code})`) })
    await testnet.start()
    const net = new Network(testnet, crashed)
    // a first message delivered directly: A holds a session with C (and C's identity key, which
    // mailbox envelopes are sealed to), so A needs no bundle of C's from the DHT later
    const hello = await net.send(A, C, 'hello')
    await waitFor(async () => (await net.message(A, hello)).status === 'delivered' ? true : undefined, { what: 'hello delivered directly', timeoutMs: 20_000 })
    return net
  }

  it('C gets 20 messages sent while it was off, once each and in order, after A went off too; A then sees them delivered', async () => {
    const net = await network()
    const a = net.peerId(A)
    await net.testnet.stopNode(C)

    const texts = Array.from({ length: 20 }, (_, i) => `while you were away ${i}`)
    const ids: string[] = []
    for (const text of texts) ids.push(await net.send(A, C, text))
    const stored = await waitFor(async () => {
      const messages = await Promise.all(ids.map(async id => await net.message(A, id)))
      return messages.every(m => m.status === 'stored') ? messages : undefined
    }, { what: 'all 20 stored in mailboxes', timeoutMs: 30_000, intervalMs: 250 })
    expect(Math.min(...stored.map(m => m.mailboxes ?? 0))).toBeGreaterThanOrEqual(1)

    await net.testnet.stopNode(A)
    await net.testnet.startNode(C)
    const history = await waitFor(async () => {
      const messages = await net.history(C, a)
      if (messages.length >= texts.length + 1) return messages
      await net.api(C, 'POST', '/v1/mailbox/collect')
      return undefined
    }, { what: 'C collects its mail', timeoutMs: 30_000, intervalMs: 500 })
    expect(history.map(m => m.text)).toEqual(['hello', ...texts])
    expect(history.slice(1).map(m => m.id)).toEqual(ids)
    // consecutive after the hello (seq 1): nothing lost, nothing twice
    expect(history.map(m => m.seq)).toEqual(history.map((_, i) => i + 1))

    await net.testnet.startNode(A)
    await waitFor(async () => {
      const messages = await Promise.all(ids.map(async id => await net.message(A, id)))
      if (messages.every(m => m.status === 'delivered')) return true
      await net.api(A, 'POST', '/v1/mailbox/collect')
      return undefined
    }, { what: 'A sees all 20 delivered', timeoutMs: 30_000, intervalMs: 500 })
    // A's outbox, resumed at its start, may have sent them again directly: still once each at C
    expect((await net.history(C, a)).map(m => m.id)).toEqual(history.map(m => m.id))
    expect(net.crashed).toEqual([])
  })

  it('C still gets everything when one of its mailbox peers is stopped before C returns', async () => {
    const net = await network()
    const a = net.peerId(A)
    await net.testnet.stopNode(C)
    const texts = Array.from({ length: 5 }, (_, i) => `one mailbox gone ${i}`)
    const ids: string[] = []
    for (const text of texts) ids.push(await net.send(A, C, text))
    await waitFor(async () => {
      const messages = await Promise.all(ids.map(async id => await net.message(A, id)))
      return messages.every(m => m.status === 'stored' && (m.mailboxes ?? 0) >= 2) ? true : undefined
    }, { what: 'all stored at ≥ 2 mailboxes', timeoutMs: 30_000, intervalMs: 250 })

    const holders: string[] = []
    for (const node of net.testnet.nodes) {
      if (!net.testnet.isRunning(node.name)) continue
      const { holding } = await net.api<{ holding: { envelopes: number } }>(node.name, 'GET', '/v1/mailbox')
      if (holding.envelopes > 0) holders.push(node.name)
    }
    expect(holders.length).toBeGreaterThanOrEqual(2)
    expect(holders).not.toContain(A)
    // A goes too, so that only the remaining mailboxes can deliver
    await net.testnet.stopNode(holders[0]!)
    await net.testnet.stopNode(A)

    await net.testnet.startNode(C)
    const history = await waitFor(async () => {
      const messages = await net.history(C, a)
      if (messages.length >= texts.length + 1) return messages
      await net.api(C, 'POST', '/v1/mailbox/collect')
      return undefined
    }, { what: 'C collects from the remaining mailboxes', timeoutMs: 30_000, intervalMs: 500 })
    expect(history.map(m => m.text)).toEqual(['hello', ...texts])
    expect(history.map(m => m.seq)).toEqual(history.map((_, i) => i + 1))
    expect(net.crashed).toEqual([])
  })
})

/** The HTTP API of a testnet's daemons, by node name (a restarted node has a new API URL). */
class Network {
  constructor (readonly testnet: Testnet, readonly crashed: string[]) {}

  private node (name: string): { apiUrl: string, dataDir: string, peerId: string } {
    const node = this.testnet.nodes.find(n => n.name === name)
    if (node == null) throw new Error(`${name} is not up`)
    return node
  }

  peerId (name: string): string {
    return this.node(name).peerId
  }

  async api<T = unknown> (name: string, method: string, path: string, body?: unknown): Promise<T> {
    const { apiUrl, dataDir } = this.node(name)
    const token = (await readFile(dataDirPaths(dataDir).token, 'utf8')).trim()
    const res = await fetch(apiUrl + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(30_000)
    })
    const text = await res.text()
    if (!res.ok) throw new Error(`${name}: ${method} ${path} answered ${res.status}: ${text}`)
    return JSON.parse(text) as T
  }

  async send (from: string, to: string, text: string): Promise<string> {
    return (await this.api<{ message: MessageRecord }>(from, 'POST', '/v1/messages', { to: this.peerId(to), text })).message.id
  }

  async message (name: string, id: string): Promise<MessageRecord> {
    return (await this.api<{ message: MessageRecord }>(name, 'GET', `/v1/messages/${id}`)).message
  }

  async history (name: string, peer: string): Promise<MessageRecord[]> {
    return (await this.api<{ messages: MessageRecord[] }>(name, 'GET', `/v1/conversations/${peer}/messages?limit=100`)).messages
  }
}
