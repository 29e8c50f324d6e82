import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Topology } from '../../src/testnet/netns.js'
import { Cleanup, DaemonProcess, runCli, waitFor } from '../helpers/daemon.js'
import { skipUnlessNetns } from '../helpers/netns.js'

// Octet across real NATs: three homes, each behind its own masquerading router that drops
// unsolicited inbound connections, and three public hosts. pub0 is everyone's bootstrap
// peer; pub0–pub2 are public (declared: the lab's address ranges are private ones, which
// AutoNAT by design never tests) and relay for the homes. Nodes at home find out that they
// are behind a NAT themselves, reserve on two relays, and everything octet does runs
// through the relays: 1:1 messages both ways, live; lookups by PeerId alone; a group of
// three; and a relay that goes away is replaced.
const unavailable = skipUnlessNetns()

interface Identity { peerId: string, reachability: string, relayAddresses: string[], relayService: { offered: boolean, reservations?: number } }
interface Message { id: string, status: string, text: string, direction: string, mailboxes?: number }
interface Peer { peerId: string, addresses: string[] }

const relaysOf = (id: Identity): string[] =>
  [...new Set(id.relayAddresses.map(a => /\/p2p\/([^/]+)\/p2p-circuit/.exec(a)?.[1] ?? ''))].filter(p => p !== '').sort()

describe.skipIf(unavailable != null)(`octet across NATs${unavailable != null ? ` (skipped: ${unavailable})` : ''}`, () => {
  const cleanup = new Cleanup()
  let topology: Topology
  let pub: DaemonProcess[] = []
  let a: DaemonProcess
  let b: DaemonProcess
  let c: DaemonProcess

  const identity = async (d: DaemonProcess): Promise<Identity> => (await d.api<Identity>('GET', '/v1/identity')).body
  const send = async (from: DaemonProcess, to: DaemonProcess, text: string): Promise<Message> => {
    const res = await from.api<{ message: Message }>('POST', '/v1/messages', { to: to.info.peerId, text })
    expect(res.status).toBe(202)
    return res.body.message
  }
  /** Waits for `delivered`; the record says whether a sealed copy went to mailboxes on the way. */
  const delivered = async (from: DaemonProcess, id: string, timeoutMs = 20_000): Promise<Message> =>
    await waitFor(async () => {
      const { message } = (await from.api<{ message: Message }>('GET', `/v1/messages/${id}`)).body
      return message.status === 'delivered' ? message : undefined
    }, { what: `message ${id} delivered`, timeoutMs, intervalMs: 50 })

  beforeAll(async () => {
    topology = await Topology.create({ publicHosts: 3, homes: [{ hosts: 1 }, { hosts: 1 }, { hosts: 1 }] }, { signal: AbortSignal.timeout(10_000) })
    cleanup.add(async () => { await topology.destroy() })
    const publicArgs = ['--reachability', 'public']
    const pub0 = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), netns: { topology, host: 'pub0' }, extraArgs: publicArgs }, cleanup)
    const bootstrap = [pub0.tcpAddress]
    pub = [pub0, ...await Promise.all(['pub1', 'pub2'].map(async host =>
      await DaemonProcess.start({ dataDir: await cleanup.tempDir(), netns: { topology, host }, bootstrap, extraArgs: publicArgs }, cleanup)))]
    // relays only (WebRTC is off by default; said here so a default change keeps this test's
    // meaning): the upgrade to direct WebRTC connections has its own tests (nat-direct.test.ts)
    ;[a, b, c] = await Promise.all(['home0-0', 'home1-0', 'home2-0'].map(async host =>
      await DaemonProcess.start({ dataDir: await cleanup.tempDir(), netns: { topology, host }, bootstrap, extraArgs: ['--no-webrtc'] }, cleanup))) as [DaemonProcess, DaemonProcess, DaemonProcess]
  })
  afterAll(async () => { await cleanup.run() })

  it('a node at home finds itself behind a NAT and holds reservations on two relays; public nodes relay', async () => {
    for (const home of [a, b, c]) {
      const id = await waitFor(async () => {
        const id = await identity(home)
        return id.reachability === 'private' && relaysOf(id).length >= 2 ? id : undefined
      }, { what: 'a private node with two relays', timeoutMs: 30_000 })
      expect(relaysOf(id).every(r => pub.some(p => p.info.peerId === r))).toBe(true)
      expect(id.relayService.offered).toBe(false)
    }
    for (const p of pub) expect((await identity(p)).relayService.offered).toBe(true)
    // what a person sees: the CLI on the host reaches the daemon in its namespace through api.sock
    const status = await runCli(['--data-dir', a.options.dataDir, 'status'])
    expect(status.code).toBe(0)
    expect(status.stdout).toMatch(/reachability\s+private \(behind a NAT\), reachable via \d relay address/)
    const id = await runCli(['--data-dir', pub[0]!.options.dataDir, 'id'])
    expect(id.stdout).toContain('reachability: public (declared)')
  })

  it('A reaches B by PeerId alone: a DHT lookup returns B\'s relayed addresses', async () => {
    const found = await waitFor(async () => {
      const res = await a.api<Peer>('GET', `/v1/dht/peers/${b.info.peerId}`)
      return res.status === 200 && res.body.addresses.some(x => x.includes('/p2p-circuit')) ? res.body : undefined
    }, { what: 'a lookup of B with a relayed address', timeoutMs: 30_000 })
    expect(found.peerId).toBe(b.info.peerId)
    // B's LAN address is of no use outside its home: it is not handed out
    expect(found.addresses.filter(x => !x.includes('/p2p-circuit')).some(x => x.includes(topology.host('home1-0').address))).toBe(false)
  })

  it('A and B chat live in both directions through a relay, never through a mailbox', async () => {
    // B listens on its event stream, as a bridge or the web page would
    const controller = new AbortController()
    cleanup.add(async () => { controller.abort() })
    const stream = await b.apiFetch('/v1/events', { headers: { authorization: `Bearer ${b.token}` }, signal: controller.signal })
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader()
    let buffered = ''
    const nextReceived = async (): Promise<{ text: string }> => {
      for (;;) {
        const line = buffered.split('\n').find(l => l.startsWith('data:') && l.includes('"message.received"'))
        if (line != null) {
          buffered = buffered.slice(buffered.indexOf(line) + line.length)
          return (JSON.parse(line.slice(5)) as { data: { message: { text: string } } }).data.message
        }
        const { value, done } = await reader.read()
        if (done) throw new Error('event stream ended')
        buffered += value
      }
    }

    const first = await send(a, b, 'hello B, from behind my NAT')
    const event = await nextReceived()
    expect(event.text).toBe('hello B, from behind my NAT')
    expect((await delivered(a, first.id)).mailboxes).toBeUndefined()
    // the connection A used is relayed (TCP hole punching cannot work from Node; WebRTC is off here)
    const peers = (await a.api<{ peers: Peer[] }>('GET', '/v1/peers')).body.peers
    expect(peers.find(p => p.peerId === b.info.peerId)?.addresses.some(x => x.includes('/p2p-circuit'))).toBe(true)

    for (let i = 0; i < 20; i++) {
      const message = await send(a, b, `live ${i}`)
      expect((await nextReceived()).text).toBe(`live ${i}`)
      expect((await delivered(a, message.id)).mailboxes).toBeUndefined()
    }
    const back = await send(b, a, 'hello A, B here')
    expect((await delivered(b, back.id)).mailboxes).toBeUndefined()
    const history = (await a.api<{ messages: Message[] }>('GET', `/v1/conversations/${b.info.peerId}/messages`)).body.messages
    expect(history.filter(m => m.direction === 'in').map(m => m.text)).toEqual(['hello A, B here'])
    controller.abort()
  })

  it('three members behind three NATs form a group in which every member gets every message', async () => {
    const created = await a.api<{ group: { id: string } }>('POST', '/v1/groups', { name: 'behind NATs' })
    expect(created.status).toBe(201)
    const groupId = created.body.group.id
    const group = async (d: DaemonProcess): Promise<{ state: string, version: number } | undefined> => {
      const res = await d.api<{ group: { state: string, version: number } }>('GET', `/v1/groups/${groupId}`)
      return res.status === 200 ? res.body.group : undefined
    }
    for (const invitee of [b, c]) {
      expect((await a.api('POST', `/v1/groups/${groupId}/invites`, { peerId: invitee.info.peerId })).status).toBe(202)
      await waitFor(async () => (await group(invitee))?.state === 'invited' ? true : undefined, { what: 'the invite', timeoutMs: 30_000 })
      expect((await invitee.api('POST', `/v1/groups/${groupId}/accept`)).status).toBe(202)
    }
    for (const member of [a, b, c]) await waitFor(async () => (await group(member))?.version === 3 ? true : undefined, { what: 'all three members everywhere', timeoutMs: 30_000 })

    const members = [a, b, c]
    for (const [i, member] of members.entries()) {
      expect((await member.api('POST', `/v1/groups/${groupId}/messages`, { text: `from member ${i}` })).status).toBe(202)
    }
    for (const [i, member] of members.entries()) {
      const expected = members.map((_, j) => `from member ${j}`).filter((_, j) => j !== i).sort()
      await waitFor(async () => {
        const messages = (await member.api<{ messages: Message[] }>('GET', `/v1/groups/${groupId}/messages?limit=100`)).body.messages
        const got = messages.filter(m => m.direction === 'in').map(m => m.text).sort()
        return JSON.stringify(got) === JSON.stringify(expected) ? true : undefined
      }, { what: `member ${i} has every other member's message`, timeoutMs: 30_000 })
    }
  })

  it('a relay that goes away is replaced, and delivery resumes', async () => {
    const before = relaysOf(await identity(b))
    const gone = pub.find(p => p.info.peerId === before[0] && p !== pub[0]) ?? pub.find(p => p.info.peerId === before[1])!
    await gone.stop()
    const after = await waitFor(async () => {
      const relays = relaysOf(await identity(b))
      return relays.length >= 2 && !relays.includes(gone.info.peerId) ? relays : undefined
    }, { what: 'B back at two relays without the one that went away', timeoutMs: 45_000 })
    expect(after.every(r => pub.some(p => p.info.peerId === r))).toBe(true)
    // two relays before, one of them gone, two again: the third public node took its place
    expect(after.filter(r => !before.includes(r))).toHaveLength(1)
    const message = await send(a, b, 'after the relay went away')
    await delivered(a, message.id, 30_000)
  })
})
