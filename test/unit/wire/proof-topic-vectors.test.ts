/**
 * Known-answer vectors for what nodes must agree on besides frames: the bytes a
 * mailbox proof signs and its Ed25519 signature (deterministic, so fixed), and a
 * group's gossipsub topic name. A change to either splits the network: mailboxes
 * would refuse every FETCH and DELETE, members would listen on different topics.
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { groupTopic } from '../../../src/groups/index.js'
import { proofPayload, signProof, verifyProof, type ProofInput } from '../../../src/mailbox/proof.js'

const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')
const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'))

/** Ed25519 keys from fixed seeds (1…32 and 100…131): the recipient signs, the mailbox is named. */
const recipientKey = async (): Promise<PrivateKey> =>
  await generateKeyPairFromSeed('Ed25519', Uint8Array.from({ length: 32 }, (_, i) => i + 1))
const RECIPIENT = '12D3KooWJ1TsijH7H5F74hfAD5XishQz3sxrmAtVY37GtNd9CqYf'
const MAILBOX = '12D3KooWAcB6uoHuAPyfsYcwnYTqGNt2biPmSmvbBam9cwmawgzK'
const NONCE = Uint8Array.from({ length: 32 }, (_, i) => i)
const ENVELOPE_ID = Uint8Array.from({ length: 32 }, (_, i) => i)

/** label, a zero byte, then each part as a 4-byte big-endian length and its bytes (the op as one byte) */
const LABEL_HEX = Buffer.from('octet-mailbox-proof-v1\0', 'ascii').toString('hex')
const MAILBOX_HEX = '00000026002408011220' + '0bbc346a57667c380120bd9c7fd7e51d2c5fdfea37cd2f5bf405b2c6bf6f2d78'
const RECIPIENT_HEX = '00000026002408011220' + '79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664'
const NONCE_HEX = '00000020' + '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'
/** sha-256 of the one envelope id 00 01 … 1f */
const IDS_DIGEST_HEX = '00000020' + '630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd'

const vectors: Array<{ name: string, input: ProofInput, payload: string, signature: string }> = [
  {
    name: 'FETCH (op 2, no ids: an empty digest)',
    input: { mailbox: MAILBOX, recipient: RECIPIENT, op: 'FETCH', nonce: NONCE },
    payload: LABEL_HEX + MAILBOX_HEX + RECIPIENT_HEX + '02' + NONCE_HEX + '00000000',
    signature: 'd2660c0f41d7d1ceaa13eb794f38538e875ff8f68969ad1e0f6c7976d5501777ebf52a84505186da94e0f6456d869d2abd6ed504d3124cebbfa022777463230a'
  },
  {
    name: 'DELETE (op 3, the digest of the ids)',
    input: { mailbox: MAILBOX, recipient: RECIPIENT, op: 'DELETE', nonce: NONCE, ids: [ENVELOPE_ID] },
    payload: LABEL_HEX + MAILBOX_HEX + RECIPIENT_HEX + '03' + NONCE_HEX + IDS_DIGEST_HEX,
    signature: '3561e2f305228217d8be831811825627bf37f0ed990f69cd0cc933d659ce361ae6d7c2b82a9880510bfeaaa1b4f9a31de8cf526596513f2857202f5db24d1c0f'
  }
]

describe('mailbox proof vectors', () => {
  it('the fixed seeds give the fixed PeerIds', async () => {
    expect(peerIdFromPrivateKey(await recipientKey()).toString()).toBe(RECIPIENT)
    expect(peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', Uint8Array.from({ length: 32 }, (_, i) => 100 + i))).toString()).toBe(MAILBOX)
  })

  for (const v of vectors) {
    it(`${v.name}: signs exactly these bytes, with this signature, which verifies`, async () => {
      expect(toHex(proofPayload(v.input))).toBe(v.payload)
      expect(toHex(await signProof(await recipientKey(), v.input))).toBe(v.signature)
      expect(await verifyProof(v.input, fromHex(v.signature))).toBe(true)
      // the same signature proves nothing for another mailbox
      expect(await verifyProof({ ...v.input, mailbox: RECIPIENT }, fromHex(v.signature))).toBe(false)
    })
  }
})

describe('group topic vector', () => {
  it("a group's topic is /octet/group/ and the sha-256 of its id's bytes, in hex", () => {
    expect(groupTopic('00112233445566778899aabbccddeeff')).toBe('/octet/group/a8faed6abbf35c12a4b26e40f6feb19d736d90045c83b9f9a31f638d323e6811')
  })
})
