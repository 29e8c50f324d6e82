import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { StunServer, encodeBindingSuccess, parseBindingRequest, respondTo } from '../../../src/node/stun.js'

const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'))
const toHex = (bytes: Uint8Array | undefined): string | undefined => bytes == null ? undefined : Buffer.from(bytes).toString('hex')

// RFC 5769 (STUN test vectors) §2.2 and §2.3: transaction id b7e7a701 bc34d686 fa87dfae, the
// client seen at 192.0.2.1:32853 or [2001:db8:1234:5678:11:2233:4455:6677]:32853
const TRANSACTION = 'b7e7a701bc34d686fa87dfae'
const REQUEST = hex(`0001 0000 2112a442 ${TRANSACTION}`)

describe('STUN codec (known answers)', () => {
  it('answers a Binding request with XOR-MAPPED-ADDRESS for IPv4 (RFC 5769 §2.2 attribute)', () => {
    expect(toHex(respondTo(REQUEST, '192.0.2.1', 32853))).toBe(
      '0101000c2112a442' + TRANSACTION + '00200008' + '0001a147e112a643')
  })

  it('answers for IPv6 (RFC 5769 §2.3 attribute), and an IPv4-mapped source as IPv4', () => {
    expect(toHex(respondTo(REQUEST, '2001:db8:1234:5678:11:2233:4455:6677', 32853))).toBe(
      '010100182112a442' + TRANSACTION + '00200014' + '0002a147' + '0113a9faa5d3f179bc25f4b5bed2b9d9')
    expect(toHex(respondTo(REQUEST, '::ffff:192.0.2.1', 32853))).toBe(toHex(respondTo(REQUEST, '192.0.2.1', 32853)))
  })

  it('keeps the attributes of a real request out of the answer (RFC 5769 §2.1 layout, attributes ignored)', () => {
    // a request with one 8-byte attribute (PRIORITY 0x0024) still gets the 32-byte answer
    const withAttribute = hex(`0001 0008 2112a442 ${TRANSACTION} 0024 0004 6e0001ff`)
    expect(respondTo(withAttribute, '192.0.2.1', 32853)?.byteLength).toBe(32)
  })

  it('ignores what is not a Binding request', () => {
    expect(parseBindingRequest(REQUEST.subarray(0, 19))).toBeUndefined() // short
    expect(parseBindingRequest(hex(`0101 0000 2112a442 ${TRANSACTION}`))).toBeUndefined() // a response
    expect(parseBindingRequest(hex(`0011 0000 2112a442 ${TRANSACTION}`))).toBeUndefined() // an indication
    expect(parseBindingRequest(hex(`0001 0000 2112a443 ${TRANSACTION}`))).toBeUndefined() // no magic cookie (RFC 3489)
    expect(parseBindingRequest(hex(`0001 0004 2112a442 ${TRANSACTION}`))).toBeUndefined() // length beyond the datagram
    expect(parseBindingRequest(hex(`0001 0002 2112a442 ${TRANSACTION} 0000`))).toBeUndefined() // unpadded length
    expect(respondTo(REQUEST, 'not-an-ip', 1)).toBeUndefined()
    expect(() => encodeBindingSuccess({ transactionId: new Uint8Array(12) }, '192.0.2.1', 70000)).toThrow(/port/)
  })

  it('never throws on arbitrary datagrams and answers only well-formed requests, never larger than 44 bytes', () => {
    const sources = fc.oneof(fc.ipV4(), fc.ipV6(), fc.string())
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), sources, fc.integer({ min: 0, max: 65535 }), (datagram, ip, port) => {
      const response = respondTo(datagram, ip, port)
      if (response == null) return
      expect(parseBindingRequest(datagram)).toBeDefined()
      expect(response.byteLength === 32 || response.byteLength === 44).toBe(true)
    }), { numRuns: 5000 })
    // and garbage behind a valid header: every transaction id and attribute block
    fc.assert(fc.property(fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 16 }), fc.ipV4(), (tid, words, ip) => {
      const body = Buffer.alloc(4 * words.length)
      words.forEach((w, i) => body.writeUInt32BE(w, 4 * i))
      const datagram = Buffer.concat([hex(`0001 ${body.length.toString(16).padStart(4, '0')} 2112a442`), tid, body])
      const response = respondTo(datagram, ip, 4242)
      expect(toHex(response?.subarray(8, 20))).toBe(toHex(tid))
    }), { numRuns: 2000 })
  })
})

describe('STUN server on loopback', () => {
  it('answers a Binding request with the address it came from, and stops answering a flooding source', async () => {
    const server = new StunServer(0, undefined, '127.0.0.1')
    await server.start()
    const client = createSocket('udp4')
    try {
      await new Promise<void>(resolve => client.bind(0, '127.0.0.1', resolve))
      const replies: Buffer[] = []
      client.on('message', m => replies.push(m))
      client.send(REQUEST, server.boundPort, '127.0.0.1')
      const [reply] = await once(client, 'message', { signal: AbortSignal.timeout(2000) }) as [Buffer]
      expect(toHex(reply)).toBe(toHex(encodeBindingSuccess({ transactionId: REQUEST.slice(8) }, '127.0.0.1', client.address().port)))
      for (let i = 0; i < 200; i++) client.send(REQUEST, server.boundPort, '127.0.0.1')
      client.send(hex('deadbeef'), server.boundPort, '127.0.0.1')
      await new Promise(resolve => setTimeout(resolve, 300))
      expect(server.stats.limited).toBeGreaterThan(100)
      expect(server.stats.ignored).toBe(1)
      expect(replies.length).toBeLessThan(60)
    } finally {
      client.close()
      await server.stop()
    }
  })
})
