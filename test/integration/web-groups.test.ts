import { rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MessageRecord } from '../../src/messaging/index.js'
import { databasePaths } from '../../src/store/database.js'
import { Cleanup, DaemonProcess, runCli, waitFor } from '../helpers/daemon.js'
import { HAVE_CHROMIUM, accessibilityViolations, cameraPicture, freePort, launchBrowser, openPage, screenshot, tabTo } from '../helpers/browser.js'

/**
 * Groups and identity changes through the web page: three real daemons, a page each, in
 * Debian's Chromium (skipped with a note in web-chat.test.ts when it is missing).
 */
describe.skipIf(!HAVE_CHROMIUM)('the web page: a group of three, and a contact whose identity changed', () => {
  const cleanup = new Cleanup()
  let browser: Browser
  let a: DaemonProcess
  let b: DaemonProcess
  let c: DaemonProcess
  const pages = new Map<DaemonProcess, Page>()
  const page = (node: DaemonProcess): Page => pages.get(node) as Page

  beforeAll(async () => {
    browser = await launchBrowser(cleanup)
    a = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
    b = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), bootstrap: [a.tcpAddress] }, cleanup)
    // C is reinstalled later: it comes back on the same addresses
    const [api, p2p] = [await freePort(), await freePort()]
    c = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), bootstrap: [a.tcpAddress], api: `127.0.0.1:${api}`, listen: [`/ip4/127.0.0.1/tcp/${p2p}`] }, cleanup)
    for (const node of [a, b, c]) pages.set(node, await openPage(browser, node))
  }, 90_000)
  afterAll(async () => { await cleanup.run() })

  it('A creates a group and invites B and C from its page; they accept from theirs; messages flow live', async () => {
    const pa = page(a)
    await pa.getByRole('link', { name: 'Groups' }).click()
    await pa.getByLabel('New group (name)').fill('Trio ✨')
    await pa.getByLabel('New group (name)').press('Enter')
    await pa.locator('[data-testid="group-state"]', { hasText: 'joined' }).waitFor()
    const groupId = /#\/groups\/([0-9a-f]{32})$/.exec(pa.url())?.[1] ?? ''
    expect(groupId).toMatch(/^[0-9a-f]{32}$/)
    await pa.locator('summary', { hasText: 'Members' }).click()
    for (const node of [b, c]) {
      await pa.getByLabel('Invite (PeerId)').fill(node.peerId)
      await pa.getByLabel('Invite (PeerId)').press('Enter')
    }

    for (const node of [b, c]) {
      const p = page(node)
      await p.getByRole('link', { name: /^Groups/ }).click()
      await p.locator(`a.item[data-group="${groupId}"]`).click()
      await p.getByRole('button', { name: 'Accept invite' }).click()
      await p.locator('[data-testid="group-state"]', { hasText: 'joined' }).waitFor({ timeout: 30_000 })
    }
    await expect.poll(async () => await pa.locator('li[data-member]').count(), { timeout: 30_000 }).toBe(3)

    // every member writes from its page; every page shows every message, live, once
    const texts = new Map([[a, 'hi all, from A'], [b, 'B here'], [c, 'C: مرحبا']])
    for (const [node, text] of texts) {
      const composer = page(node).locator('#composer-text')
      await composer.fill(text)
      await composer.press('Enter')
      for (const other of [a, b, c]) await page(other).locator('.msg', { hasText: text }).waitFor({ timeout: 30_000 })
    }
    for (const node of [a, b, c]) {
      expect((await page(node).locator('.messages .msg .text').allTextContents()).sort()).toEqual([...texts.values()].sort())
    }
    await screenshot(pa, 'group')

    // A removes C from its page; C's page says so
    await pa.locator(`li[data-member="${c.peerId}"]`).getByRole('button', { name: 'Remove' }).click()
    await page(c).locator('[data-testid="group-state"]', { hasText: 'removed' }).waitFor({ timeout: 30_000 })
    await expect.poll(async () => await pa.locator('li[data-member]').count()).toBe(2)
    // B leaves from its page
    await page(b).locator('summary', { hasText: 'Members' }).click()
    await page(b).getByRole('button', { name: 'Leave the group' }).click()
    await page(b).locator('[data-testid="group-state"]', { hasText: 'left' }).waitFor({ timeout: 30_000 })
  })

  it('with the keyboard only, A invites B to another group and B declines; axe finds nothing serious in either group view', async () => {
    const [pa, pb] = [page(a), page(b)]
    await pa.getByLabel('New group (name)').fill('Not for B')
    await pa.getByLabel('New group (name)').press('Enter')
    // the page was on the first group: wait for the new one to be shown before reading its id
    await pa.locator('#group-title', { hasText: 'Not for B' }).waitFor()
    const groupId = /#\/groups\/([0-9a-f]{32})$/.exec(pa.url())?.[1] ?? ''
    // from the name field on: Tab to the members, open them, Tab to the invite field
    await tabTo(pa, 'details.members > summary')
    await pa.keyboard.press('Enter')
    await tabTo(pa, 'input[id^="f-invite"]')
    await pa.keyboard.type(b.peerId)
    await pa.keyboard.press('Enter')
    await pa.locator('.members li', { hasText: 'invited' }).waitFor()
    expect(await accessibilityViolations(pa)).toEqual([])

    // B: Tab to the group in the list, Enter opens it, Tab to Decline, Enter
    await pb.getByRole('link', { name: /^Groups/ }).click()
    const item = pb.locator(`a.item[data-group="${groupId}"]`)
    await item.waitFor({ timeout: 30_000 })
    await tabTo(pb, `a.item[data-group="${groupId}"]`)
    await pb.keyboard.press('Enter')
    await pb.waitForURL(`**/#/groups/${groupId}`)
    await pb.getByRole('button', { name: 'Accept invite' }).waitFor()
    expect(await accessibilityViolations(pb)).toEqual([])
    await screenshot(pb, 'group-invite')
    await tabTo(pb, '.notice button.danger')
    await pb.keyboard.press('Enter')
    await pb.locator('[data-testid="group-state"]', { hasText: 'declined' }).waitFor()
    const { body } = await b.api<{ group: { state: string } }>('GET', `/v1/groups/${groupId}`)
    expect(body.group.state).toBe('declined')
    expect(await pb.getByRole('button', { name: 'Accept invite' }).count()).toBe(0)
  })

  it('a contact reinstalls: the page warns, shows the new safety number (and its QR code), and sends once it is trusted', async () => {
    const pa = page(a)
    // A and C talk first, so A trusts C's key
    const first = await a.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: c.peerId, text: 'before' })
    await waitFor(async () => (await a.api<{ message: MessageRecord }>('GET', `/v1/messages/${first.body.message.id}`)).body.message.status === 'delivered' ? true : undefined, { what: 'first message delivered' })

    // C reinstalls: same PeerId, new Signal identity
    const peerId = c.peerId
    await c.stop()
    await rm(databasePaths(c.options.dataDir).state, { recursive: true, force: true })
    expect((await runCli(['doctor', '--repair', '--data-dir', c.options.dataDir])).code).toBe(0)
    c = await c.restart(cleanup)
    expect(c.peerId).toBe(peerId)

    await pa.goto(`${new URL(pa.url()).origin}/#/chats/${c.peerId}`)
    const composer = pa.locator('#composer-text')
    await composer.fill('are you still you?')
    await composer.press('Enter')
    const warning = pa.locator('.identity-warning')
    await warning.waitFor({ timeout: 30_000 })
    const { body } = await a.api<{ pendingSafetyNumber?: string }>('GET', `/v1/contacts/${c.peerId}/safety-number`)
    expect(body.pendingSafetyNumber).toMatch(/^\d{60}$/)
    expect((await warning.locator('[data-testid="safety-number"]').textContent())?.replace(/\s/g, '')).toBe(body.pendingSafetyNumber)
    expect(await warning.getByRole('img', { name: /safety number as a QR code/ }).count()).toBe(1)
    await screenshot(pa, 'identity-changed')

    // C's side: writing to A fetches A's key, and C's page shows the same safety number, with its QR code
    const pc = await openPage(browser, c)
    await pc.goto(`${new URL(pc.url()).origin}/#/chats/${a.peerId}`)
    await pc.locator('#composer-text').fill('it is me, reinstalled')
    await pc.locator('#composer-text').press('Enter')
    await pc.locator('.msg.out:not([data-status="queued"])', { hasText: 'it is me, reinstalled' }).waitFor({ timeout: 30_000 })
    await pc.locator('summary', { hasText: 'Safety number' }).click()
    const theirs = pc.locator('.safety')
    await theirs.locator('[data-testid="safety-number"]').waitFor()
    expect((await theirs.locator('[data-testid="safety-number"]').textContent())?.replace(/\s/g, '')).toBe(body.pendingSafetyNumber)
    await screenshot(pc, 'safety-number')

    // A scans codes with a camera: Chromium's fake one, showing a picture of what C's page
    // drew (and first, by mistake, of A's own PeerId); the page decodes the frames itself
    // (Chromium on Linux has no BarcodeDetector)
    const camera = join(await cleanup.tempDir(), 'camera.mjpeg')
    await pa.getByRole('link', { name: 'Node' }).click()
    await writeFile(camera, await cameraPicture(pa.getByRole('img', { name: /PeerId as a QR code/ })))
    await writeFile(`${camera}.theirs`, await cameraPicture(theirs.getByRole('img', { name: /safety number as a QR code/ })))
    const withCamera = await launchBrowser(cleanup, { camera })
    const scanning = await openPage(withCamera, a)
    await scanning.goto(`${new URL(scanning.url()).origin}/#/chats/${c.peerId}`)
    const scan = scanning.locator('.identity-warning').getByRole('button', { name: 'Scan their code' })
    await scan.click()
    await scanning.getByText('The scanned code does NOT match.').waitFor({ timeout: 30_000 })
    await rename(`${camera}.theirs`, camera)
    await scan.click()
    await scanning.getByText('The scanned code matches.').waitFor({ timeout: 30_000 })
    await withCamera.close()
    await pa.goto(`${new URL(pa.url()).origin}/#/chats/${c.peerId}`)

    await warning.getByRole('button', { name: /trust the new key/ }).click()
    await warning.waitFor({ state: 'detached' })
    await pa.locator('.msg.out[data-status="delivered"]', { hasText: 'are you still you?' }).waitFor({ timeout: 30_000 })
    // what C wrote while A did not trust its key yet comes once it is trusted
    await pa.locator('.msg.in', { hasText: 'it is me, reinstalled' }).waitFor({ timeout: 30_000 })
  })

  it('shows this node: its PeerId (and as a QR code) and its peers', async () => {
    const pa = page(a)
    await pa.getByRole('link', { name: 'Node' }).click()
    expect(await pa.locator('[data-testid="my-peer-id"]').textContent()).toBe(a.peerId)
    expect(await pa.getByRole('img', { name: /PeerId as a QR code/ }).count()).toBe(1)
    await pa.locator('.rows li', { hasText: b.peerId.slice(-6) }).first().waitFor()
    await screenshot(pa, 'node')
  })
})
