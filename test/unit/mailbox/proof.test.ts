import { randomBytes } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { PROOF_LABEL, proofPayload, signProof, verifyProof, type ProofInput } from '../../../src/mailbox/proof.js'

const bytes = (n: number): Uint8Array => new Uint8Array(randomBytes(n))

let recipientKey: PrivateKey
let otherKey: PrivateKey
let recipient: string
let other: string
let mailbox: string
let otherMailbox: string

beforeAll(async () => {
  recipientKey = await generateKeyPair('Ed25519')
  otherKey = await generateKeyPair('Ed25519')
  recipient = peerIdFromPrivateKey(recipientKey).toString()
  other = peerIdFromPrivateKey(otherKey).toString()
  mailbox = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  otherMailbox = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
})

describe('mailbox proofs', () => {
  it('verifies a FETCH and a DELETE proof made with the recipient key', async () => {
    const fetch: ProofInput = { mailbox, recipient, op: 'FETCH', nonce: bytes(32) }
    expect(await verifyProof(fetch, await signProof(recipientKey, fetch))).toBe(true)
    const del: ProofInput = { mailbox, recipient, op: 'DELETE', nonce: bytes(32), ids: [bytes(32), bytes(32)] }
    expect(await verifyProof(del, await signProof(recipientKey, del))).toBe(true)
  })

  it('starts with the domain label and differs in every bound field', () => {
    const base: ProofInput = { mailbox, recipient, op: 'DELETE', nonce: bytes(32), ids: [bytes(32)] }
    const payload = proofPayload(base)
    expect(new TextDecoder().decode(payload.subarray(0, PROOF_LABEL.length))).toBe('octet-mailbox-proof-v1')
    const variants: ProofInput[] = [
      { ...base, mailbox: otherMailbox },
      { ...base, recipient: other },
      { ...base, op: 'FETCH', ids: [] },
      { ...base, nonce: bytes(32) },
      { ...base, ids: [bytes(32)] },
      { ...base, ids: [...base.ids!, bytes(32)] }
    ]
    for (const variant of variants) expect(proofPayload(variant)).not.toEqual(payload)
  })

  it('fails with the wrong key, nonce, op, ids or mailbox', async () => {
    const ids = [bytes(32), bytes(32), bytes(32)]
    const signed: ProofInput = { mailbox, recipient, op: 'DELETE', nonce: bytes(32), ids }
    const signature = await signProof(recipientKey, signed)
    const cases: Array<[string, ProofInput, Uint8Array]> = [
      ['signed by another key', signed, await signProof(otherKey, signed)],
      ['another key, claiming to be its own recipient', { ...signed, recipient: other }, signature],
      ['another nonce (a replay)', { ...signed, nonce: bytes(32) }, signature],
      ['another op', { ...signed, op: 'FETCH', ids: [] }, signature],
      ['fewer ids', { ...signed, ids: ids.slice(1) }, signature],
      ['other ids', { ...signed, ids: [ids[0]!, ids[1]!, bytes(32)] }, signature],
      ['ids reordered', { ...signed, ids: [ids[1]!, ids[0]!, ids[2]!] }, signature],
      ['another mailbox (a relayed challenge)', { ...signed, mailbox: otherMailbox }, signature],
      ['a truncated signature', signed, signature.subarray(0, 63)],
      ['an empty signature', signed, new Uint8Array(0)],
      ['a flipped bit', signed, Uint8Array.from(signature, (b, i) => i === 10 ? b ^ 1 : b)]
    ]
    for (const [name, input, sig] of cases) {
      expect(await verifyProof(input, sig), name).toBe(false)
    }
    expect(await verifyProof(signed, signature)).toBe(true)
  })

  it('never throws on inputs no proof can be made for', async () => {
    const sig = bytes(64)
    const cases: ProofInput[] = [
      { mailbox, recipient: 'not-a-peer-id', op: 'FETCH', nonce: bytes(32) },
      { mailbox: '', recipient, op: 'FETCH', nonce: bytes(32) },
      { mailbox, recipient, op: 'FETCH', nonce: bytes(31) },
      { mailbox, recipient, op: 'FETCH', nonce: bytes(32), ids: [bytes(32)] },
      { mailbox, recipient, op: 'DELETE', nonce: bytes(32), ids: [bytes(31)] },
      { mailbox, recipient, op: 'NOPE' as 'FETCH', nonce: bytes(32) }
    ]
    for (const input of cases) expect(await verifyProof(input, sig)).toBe(false)
  })

  it('refuses to sign for inputs that are not a proof', async () => {
    await expect(signProof(recipientKey, { mailbox: 'x', recipient, op: 'FETCH', nonce: bytes(32) })).rejects.toMatchObject({ code: 'INVALID_PEER_ID' })
    await expect(signProof(recipientKey, { mailbox, recipient, op: 'FETCH', nonce: bytes(8) })).rejects.toMatchObject({ code: 'BAD_REQUEST' })
  })
})
