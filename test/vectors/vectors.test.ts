/**
 * Known-answer vectors of every octet wire format, both ways: the fixed input
 * of each entry encodes to exactly its bytes, and its bytes decode to exactly
 * its input. The vectors are the JSON files next to this one (one per area,
 * each saying at its top how it was made); the codecs they name are in
 * codecs.ts. A failure here means running nodes and this build no longer
 * agree on the wire, whatever the round-trip tests say.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { decodeMessage, encodeMessage, type Codec } from 'protons-runtime'
import { describe, expect, it } from 'vitest'
import { seal, unseal } from '../../src/crypto/seal.js'
import * as envelopePb from '../../src/wire/envelope.pb.js'
import * as groupsPb from '../../src/wire/groups.pb.js'
import * as mailboxPb from '../../src/wire/mailbox.pb.js'
import { SealedEnvelope } from '../../src/wire/mailbox.pb.js'
import { codecs, ed25519Key, fromHex, revive, signalKey, toHex, type Output } from './codecs.js'
import keys from './keys.json' with { type: 'json' }

interface Vector {
  name: string
  codec: string
  input: unknown
  /** the bytes on the wire */
  hex?: string | string[]
  /** or, for names, the text */
  text?: string
  /** what decoding gives, where it is not the input (a default filled in, a field dropped) */
  decoded?: unknown
}

interface VectorFile {
  about: string[]
  /** enum → value name → number on the wire */
  enums?: Record<string, Record<string, number>>
  vectors: Vector[]
}

const dir = new URL('.', import.meta.url)
const files: Array<[string, VectorFile]> = readdirSync(dir)
  .filter(name => name.endsWith('.json') && name !== 'keys.json')
  .sort()
  .map(name => [name, JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as VectorFile])

const enumCodecs: Record<string, unknown> = { ...envelopePb, ...groupsPb, ...mailboxPb }

function expectedOf (v: Vector): Output {
  if (v.hex != null && v.text == null) return fromHex(v.hex)
  if (v.text != null && v.hex == null) return v.text
  throw new Error(`vector "${v.name}" must have exactly one of hex and text`)
}

const show = (output: Output): string => typeof output === 'string' ? output : toHex(output)

describe('known-answer vectors', () => {
  it('are there, one file per area, each saying how it was made', () => {
    expect(files.map(([name]) => name)).toEqual(['dm.json', 'framing.json', 'groups.json', 'mailbox.json', 'names.json', 'prekeys.json', 'seal.json'])
    for (const [, file] of files) expect(file.about.join(' ')).toMatch(/breaking compatibility/)
  })

  it('use every codec of codecs.ts', () => {
    const used = new Set(files.flatMap(([, file]) => file.vectors.map(v => v.codec)))
    expect(Object.keys(codecs).filter(name => !used.has(name))).toEqual([])
  })

  for (const [name, file] of files) {
    describe(name, () => {
      for (const v of file.vectors) {
        it(v.name, async () => {
          const codec = codecs[v.codec]
          if (codec == null) throw new Error(`no codec ${v.codec}`)
          const input = revive(v.input)
          const expected = expectedOf(v)
          expect(show(await codec.encode(input))).toBe(show(expected))
          if (codec.decode == null) {
            expect(codec.oneWay, `codec ${v.codec} decodes nothing: say why in oneWay`).toBeTruthy()
            return
          }
          expect(await codec.decode(expected, input)).toEqual(revive(v.decoded ?? v.input))
        })
      }

      for (const [enumName, values] of Object.entries(file.enums ?? {})) {
        it(`enum ${enumName}: each value's number on the wire`, () => {
          const codec = (enumCodecs[enumName] as { codec?: () => Codec<string> } | undefined)?.codec?.()
          if (codec == null) throw new Error(`no enum ${enumName} in the generated codecs`)
          expect(Object.keys(enumCodecs[enumName] as object).filter(k => k !== 'codec')).toEqual(Object.keys(values))
          for (const [value, number] of Object.entries(values)) {
            expect(toHex(encodeMessage(value, codec)), `${enumName}.${value}`).toBe(toHex(Uint8Array.of(number)))
            expect(decodeMessage(Uint8Array.of(number), codec), `${enumName} ${number}`).toBe(value)
          }
        })
      }
    })
  }
})

describe('the fixed keys of the vectors (keys.json)', () => {
  it('each Ed25519 seed gives its PeerId', async () => {
    for (const { seed, peerId } of Object.values(keys.ed25519)) {
      expect(peerIdFromPrivateKey(await ed25519Key(seed)).toString()).toBe(peerId)
    }
  })

  it('each Signal private key gives its public key', () => {
    for (const [name, { public: publicKey }] of Object.entries(keys.signal)) {
      expect(toHex(signalKey(name).getPublicKey().serialize())).toBe(publicKey)
    }
  })
})

describe('a seal as seal() makes it, with a fresh random key', () => {
  const sealed = files.find(([name]) => name === 'seal.json')?.[1].vectors.find(v => v.codec === 'seal')
  const { envelope, recipient } = revive(sealed?.input) as { envelope: Uint8Array, recipient: string }
  const identity = signalKey('aliceIdentity')

  it('has the framing of the vector: version 1, a 33-byte Curve25519 key, the envelope plus a 16-byte tag; and opens', () => {
    const fresh = seal(envelope, recipient, identity.getPublicKey().serialize())
    const outer = SealedEnvelope.decode(fresh)
    expect(outer.version).toBe(1)
    expect(outer.ephemeralKey.byteLength).toBe(33)
    expect(outer.ephemeralKey[0]).toBe(0x05)
    // a fresh key indeed: the fixed one of the vector stood in for it only there
    expect(toHex(outer.ephemeralKey)).not.toBe(keys.signal.sealEphemeral.public)
    expect(outer.ciphertext.byteLength).toBe(envelope.byteLength + 16)
    // field 1 = 1, field 2 of 33 bytes, field 3 of the ciphertext's length (two varint bytes here)
    expect(toHex(fresh.subarray(0, 5))).toBe('0801122105')
    expect(fresh.byteLength).toBe(fromHex(sealed?.hex ?? '').byteLength)
    expect(toHex(unseal(fresh, recipient, identity))).toBe(toHex(envelope))
  })
})
