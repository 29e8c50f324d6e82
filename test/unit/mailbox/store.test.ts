import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ENTRY_OVERHEAD_BYTES } from '../../../src/mailbox/constants.js'
import { HOUR } from '../../../src/units.js'
import { MailboxStore, chargedBytes, envelopeId, type MailboxStoreOptions } from '../../../src/mailbox/store.js'
import { Store } from '../../../src/store/database.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A clock the test moves. */
function clock (start = 1_700_000_000_000): { now: () => number, advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms) => { t += ms } }
}

async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'octet-mailbox-store-'))
  cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

async function openStore (dir: string): Promise<Store> {
  const store = await Store.open(dir)
  let closed = false
  cleanups.push(async () => { if (!closed) await store.close() })
  const close = store.close.bind(store)
  store.close = async () => { closed = true; await close() }
  return store
}

async function open (options: Partial<MailboxStoreOptions> = {}): Promise<{ mailbox: MailboxStore, store: Store, dir: string }> {
  const dir = await tempDir()
  const store = await openStore(dir)
  return { mailbox: await MailboxStore.open(store, options), store, dir }
}

const sealed = (n = 200): Uint8Array => new Uint8Array(randomBytes(n))

let alice: string
let bob: string
let carol: string

beforeAll(async () => {
  ;[alice, bob, carol] = await Promise.all([0, 1, 2].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString())) as [string, string, string]
})

describe('the mailbox store', () => {
  it('keeps envelopes per recipient, oldest first, with storedAt and expiresAt = storedAt + ttl', async () => {
    const t = clock()
    const { mailbox } = await open({ ttl: 5 * HOUR, now: t.now })
    const items = [sealed(), sealed(), sealed()]
    for (const item of items) {
      expect(await mailbox.put(alice, item)).toMatchObject({ status: 'stored' })
      t.advance(1)
    }
    await mailbox.put(bob, sealed())
    const page = await mailbox.list(alice, { limit: 10 })
    expect(page.more).toBe(false)
    expect(page.envelopes.map(e => e.sealed)).toEqual(items)
    expect(page.envelopes.map(e => e.id)).toEqual(items.map(envelopeId))
    expect(page.envelopes[0]).toMatchObject({ storedAt: t.now() - 3, expiresAt: t.now() - 3 + 5 * HOUR })
    expect(mailbox.usageOf(alice)).toEqual({ count: 3, bytes: 3 * chargedBytes(200) })
    expect(mailbox.stats()).toEqual({ envelopes: 4, bytes: 4 * (200 + ENTRY_OVERHEAD_BYTES), recipients: 2 })
    expect(new Set(mailbox.recipients())).toEqual(new Set([alice, bob]))
  })

  it('pages by count and by bytes, always giving at least one', async () => {
    const { mailbox } = await open()
    const items = Array.from({ length: 5 }, () => sealed(1000))
    for (const item of items) await mailbox.put(alice, item)
    const seen: Uint8Array[] = []
    let after: string | undefined
    let pages = 0
    while (true) {
      const page = await mailbox.list(alice, { after, limit: 2 })
      pages++
      seen.push(...page.envelopes.map(e => e.sealed))
      if (!page.more) break
      after = page.cursor
    }
    expect(pages).toBe(3)
    expect(seen).toEqual(items)
    // a byte budget smaller than one envelope still gives one
    const tiny = await mailbox.list(alice, { limit: 10, maxBytes: 10 })
    expect(tiny.envelopes).toHaveLength(1)
    expect(tiny.more).toBe(true)
    const two = await mailbox.list(alice, { limit: 10, maxBytes: 2200 })
    expect(two.envelopes).toHaveLength(2)
  })

  it('keeps the same envelope once: it is content-addressed', async () => {
    const { mailbox } = await open()
    const item = sealed()
    const first = await mailbox.put(alice, item)
    const again = await mailbox.put(alice, Uint8Array.from(item))
    expect(first).toMatchObject({ status: 'stored', count: 1 })
    expect(again).toMatchObject({ status: 'duplicate', count: 1 })
    expect(mailbox.stats().envelopes).toBe(1)
    // for another recipient it is another entry
    expect(await mailbox.put(bob, item)).toMatchObject({ status: 'stored', count: 1 })
    expect(mailbox.stats().envelopes).toBe(2)
  })

  it('deletes exactly the named ids of that recipient', async () => {
    const { mailbox } = await open()
    const [a, b, c] = [sealed(), sealed(), sealed()]
    for (const item of [a, b, c]) await mailbox.put(alice, item)
    await mailbox.put(bob, a)
    expect(await mailbox.delete(alice, [envelopeId(a), envelopeId(c), envelopeId(sealed()), envelopeId(a)])).toBe(2)
    expect((await mailbox.list(alice, { limit: 10 })).envelopes.map(e => e.sealed)).toEqual([b])
    // bob's copy of the same bytes is untouched
    expect((await mailbox.list(bob, { limit: 10 })).envelopes.map(e => e.sealed)).toEqual([a])
    expect(mailbox.stats()).toMatchObject({ envelopes: 2, recipients: 2 })
    expect(await mailbox.delete(alice, [envelopeId(b)])).toBe(1)
    expect(mailbox.stats()).toMatchObject({ envelopes: 1, recipients: 1 })
  })

  it('refuses past the per-recipient count quota, naming it', async () => {
    const { mailbox } = await open({ maxEnvelopesPerRecipient: 3 })
    for (let i = 0; i < 3; i++) expect(await mailbox.put(alice, sealed())).toMatchObject({ status: 'stored', count: i + 1 })
    const refused = await mailbox.put(alice, sealed())
    expect(refused).toMatchObject({ status: 'quota', quota: 'recipient-count' })
    expect(refused.status === 'quota' && refused.reason).toMatch(/recipient envelope quota/)
    // a duplicate of something held is still fine, and other recipients are not affected
    expect((await mailbox.put(alice, (await mailbox.list(alice, { limit: 1 })).envelopes[0]!.sealed)).status).toBe('duplicate')
    expect(await mailbox.put(bob, sealed())).toMatchObject({ status: 'stored' })
    expect(mailbox.usageOf(alice).count).toBe(3)
  })

  it('refuses past the per-recipient byte quota, naming it', async () => {
    const { mailbox } = await open({ maxBytesPerRecipient: 2 * chargedBytes(1000) + 10 })
    expect((await mailbox.put(alice, sealed(1000))).status).toBe('stored')
    expect((await mailbox.put(alice, sealed(1000))).status).toBe('stored')
    const refused = await mailbox.put(alice, sealed(100))
    expect(refused).toMatchObject({ status: 'quota', quota: 'recipient-bytes' })
    expect(refused.status === 'quota' && refused.reason).toMatch(/recipient byte quota/)
    expect((await mailbox.put(bob, sealed(1000))).status).toBe('stored')
  })

  it('refuses past the disk budget for all recipients, naming it', async () => {
    const { mailbox } = await open({ maxTotalBytes: 3 * chargedBytes(1000) })
    expect((await mailbox.put(alice, sealed(1000))).status).toBe('stored')
    expect((await mailbox.put(bob, sealed(1000))).status).toBe('stored')
    expect((await mailbox.put(carol, sealed(1000))).status).toBe('stored')
    const refused = await mailbox.put(carol, sealed(1))
    expect(refused).toMatchObject({ status: 'quota', quota: 'disk' })
    expect(refused.status === 'quota' && refused.reason).toMatch(/disk budget/)
    // deleting frees the budget
    const [held] = (await mailbox.list(alice, { limit: 1 })).envelopes
    await mailbox.delete(alice, [held!.id])
    expect((await mailbox.put(carol, sealed(1000))).status).toBe('stored')
  })

  it('keeps quotas under concurrent stores', async () => {
    const { mailbox } = await open({ maxEnvelopesPerRecipient: 10 })
    const item = sealed()
    const results = await Promise.all([
      ...Array.from({ length: 30 }, async () => await mailbox.put(alice, sealed())),
      ...Array.from({ length: 5 }, async () => await mailbox.put(bob, item))
    ])
    expect(results.filter(r => r.status === 'stored')).toHaveLength(10 + 1)
    expect(mailbox.usageOf(alice).count).toBe(10)
    expect(mailbox.usageOf(bob).count).toBe(1)
  })

  it('never serves an expired envelope and sweeps it, with its index entries', async () => {
    const t = clock()
    const { mailbox, store } = await open({ ttl: 1 * HOUR, now: t.now })
    const old = sealed()
    await mailbox.put(alice, old)
    await mailbox.put(bob, sealed())
    t.advance(30 * 60_000)
    const fresh = sealed()
    await mailbox.put(alice, fresh)
    t.advance(30 * 60_000)
    // `old` and bob's are exactly at their expiry: gone from view before the sweep
    expect((await mailbox.list(alice, { limit: 10 })).envelopes.map(e => e.sealed)).toEqual([fresh])
    expect((await mailbox.list(bob, { limit: 10 })).envelopes).toEqual([])
    expect(mailbox.stats().envelopes).toBe(3)
    expect(await mailbox.sweep()).toBe(2)
    expect(mailbox.stats()).toMatchObject({ envelopes: 1, recipients: 1 })
    expect(await mailbox.sweep()).toBe(0)
    // nothing of the swept envelopes is left in any mailbox sublevel
    const remaining = await allKeys(store)
    expect(remaining.filter(k => k.includes(bob))).toEqual([])
    expect(remaining).toHaveLength(4)
    // the same bytes may be stored again once the old copy expired
    expect((await mailbox.put(alice, old)).status).toBe('stored')
    t.advance(1 * HOUR)
    // an expired copy not swept yet is replaced, not reported as a duplicate
    expect((await mailbox.put(alice, old)).status).toBe('stored')
    expect(mailbox.usageOf(alice).count).toBe(2)
    expect(await mailbox.sweep()).toBe(1)
    expect(mailbox.usageOf(alice).count).toBe(1)
  })

  it('sweeps more than one batch', async () => {
    const t = clock()
    const { mailbox } = await open({ ttl: 1000, now: t.now })
    for (let i = 0; i < 1_200; i++) await mailbox.put(i % 2 === 0 ? alice : bob, sealed(40))
    t.advance(1000)
    expect(await mailbox.sweep()).toBe(1_200)
    expect(mailbox.stats()).toEqual({ envelopes: 0, bytes: 0, recipients: 0 })
  })

  it('rebuilds its counters and its order from the database after reopening', async () => {
    const t = clock()
    const dir = await tempDir()
    let store = await openStore(dir)
    let mailbox = await MailboxStore.open(store, { now: t.now, maxEnvelopesPerRecipient: 4 })
    const items = [sealed(100), sealed(300), sealed(500)]
    for (const item of items) await mailbox.put(alice, item)
    await mailbox.put(bob, sealed(700))
    const before = mailbox.stats()
    await store.close()

    store = await openStore(dir)
    mailbox = await MailboxStore.open(store, { now: t.now, maxEnvelopesPerRecipient: 4 })
    expect(mailbox.stats()).toEqual(before)
    expect(mailbox.usageOf(alice)).toEqual({ count: 3, bytes: chargedBytes(100) + chargedBytes(300) + chargedBytes(500) })
    // new entries go after the old ones, and the quota counts the old ones
    const later = sealed(50)
    expect(await mailbox.put(alice, later)).toMatchObject({ status: 'stored', count: 4 })
    expect((await mailbox.put(alice, sealed())).status).toBe('quota')
    expect((await mailbox.list(alice, { limit: 10 })).envelopes.map(e => e.sealed)).toEqual([...items, later])
  })
})

async function allKeys (store: Store): Promise<string[]> {
  const keys: string[] = []
  for (const name of ['mailbox-env', 'mailbox-meta', 'mailbox-ids', 'mailbox-expiry']) {
    for await (const key of store.records<unknown>(name).keys()) keys.push(`${name}:${key}`)
  }
  return keys
}
