import { execFileSync } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ContactView, MessageRecord } from '../../src/messaging/index.js'
import { Cleanup, DaemonProcess, waitFor } from '../helpers/daemon.js'
import { HAVE_CHROMIUM, CHROMIUM, accessibilityViolations, freePort, launchBrowser, openPage, screenshot, tabTo } from '../helpers/browser.js'

if (!HAVE_CHROMIUM) console.warn(`web page tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set OCTET_CHROMIUM)`)

/** Whether the machine has a colour emoji font (`.ci/run` installs Noto Color Emoji): without one, emoji show as boxes. */
const HAVE_EMOJI_FONT = ((): boolean => {
  try { return /emoji/i.test(execFileSync('fc-list', [':', 'family'], { encoding: 'utf8' })) } catch { return false }
})()

/** B's event stream heartbeat (ms): its page takes a stream silent for 3 of them as dropped. */
const HEARTBEAT = 300

/**
 * The web page in a real browser (Debian's Chromium driven by playwright-core) against two
 * real daemons, one page each, logged in the way a person is: the URL `octet ui` prints. A
 * third daemon, M, has no page: it is the mailbox that holds A's message while B is off, and
 * the stranger whose contact request A blocks.
 */
describe.skipIf(!HAVE_CHROMIUM)('the web page: chatting between two daemons', () => {
  const cleanup = new Cleanup()
  let browser: Browser
  let a: DaemonProcess
  let b: DaemonProcess
  let m: DaemonProcess
  let pageA: Page
  let pageB: Page

  const history = async (node: DaemonProcess, peer: DaemonProcess): Promise<MessageRecord[]> =>
    (await node.api<{ messages: MessageRecord[] }>('GET', `/v1/conversations/${peer.peerId}/messages?limit=1000`)).body.messages
  /** The messages a page shows, by id, in order: each id once. */
  const shown = async (page: Page): Promise<string[]> => await page.locator('.messages .msg').evaluateAll(els => els.map(e => e.getAttribute('data-id') ?? ''))

  beforeAll(async () => {
    browser = await launchBrowser(cleanup)
    a = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
    // B comes back on the same addresses after a restart: its page's origin, and where A finds it.
    // Its event stream's heartbeat is short, so that its page notices a frozen B in a second
    const [api, p2p] = [await freePort(), await freePort()]
    ;[b, m] = await Promise.all([
      DaemonProcess.start({ dataDir: await cleanup.tempDir(), bootstrap: [a.tcpAddress], api: `127.0.0.1:${api}`, listen: [`/ip4/127.0.0.1/tcp/${p2p}`], env: { OCTET_SSE_HEARTBEAT_MS: String(HEARTBEAT) } }, cleanup),
      DaemonProcess.start({ dataDir: await cleanup.tempDir(), bootstrap: [a.tcpAddress] }, cleanup)
    ])
    pageA = await openPage(browser, a)
    pageB = await openPage(browser, b)
  }, 90_000)
  afterAll(async () => { await cleanup.run() })

  it('A sends with the keyboard only; B sees it live and reads it; A sees `read`', async () => {
    // keyboard only: Tab to the field, type, Enter opens the chat; Tab to the message box, Enter sends
    await tabTo(pageA, 'input[id^="f-new-chat"]')
    await pageA.keyboard.type(b.peerId)
    await pageA.keyboard.press('Enter')
    await pageA.waitForURL(`**/#/chats/${b.peerId}`)
    await tabTo(pageA, '#composer-text')
    await pageA.keyboard.type('Hello B — مرحبا 👋')
    await pageA.keyboard.press('Enter')
    const sent = pageA.locator('.msg.out').last()
    await expect.poll(async () => await sent.textContent()).toContain('Hello B — مرحبا 👋')
    expect(await pageA.locator('#composer-text').inputValue()).toBe('')

    // B: the conversation appears live, as a contact request with one unread message
    const item = pageB.locator(`a.item[data-peer="${a.peerId}"]`)
    await item.waitFor()
    await expect.poll(async () => await item.locator('.unread').textContent()).toBe('1')
    expect(await item.locator('.last').textContent()).toContain('Hello B')
    await screenshot(pageB, 'conversations')
    await item.click()
    await pageB.locator('.msg.in', { hasText: 'Hello B' }).waitFor()

    // B's page marked it read; A's page shows `read`, live
    const id = await sent.getAttribute('data-id')
    await pageA.locator(`.msg[data-id="${id}"][data-status="read"]`).waitFor()
    expect(await pageA.locator(`.msg[data-id="${id}"] .status`).textContent()).toBe('read')
    await expect.poll(async () => await item.locator('.unread').count()).toBe(0)
    await screenshot(pageA, 'chat')
  })

  it('B accepts the contact request from its page', async () => {
    await pageB.getByRole('button', { name: 'Accept' }).first().click()
    await waitFor(async () => {
      const { body } = await b.api<{ contact: ContactView }>('GET', `/v1/contacts/${a.peerId}`)
      return body.contact.state === 'accepted' ? true : undefined
    }, { what: 'A accepted at B' })
    await expect.poll(async () => await pageB.locator('.chat-head .request').count()).toBe(0)
  })

  it('a reload and a restart of the daemon lose nothing and double nothing', async () => {
    const composer = pageA.locator('#composer-text')
    for (const text of ['one', 'two', 'three']) {
      await composer.fill(text)
      await composer.press('Enter')
      await pageB.locator('.msg.in', { hasText: new RegExp(`^${text}`) }).waitFor()
    }
    const check = async (page: Page, node: DaemonProcess, peer: DaemonProcess): Promise<void> => {
      const ids = (await history(node, peer)).map(m => m.id)
      await expect.poll(async () => await shown(page)).toEqual(ids)
    }
    await check(pageB, b, a)

    await pageB.reload()
    await pageB.locator('.shell[data-connection="live"]').waitFor()
    await check(pageB, b, a)

    // the daemon goes away under the page: it says so, then resumes the stream where it was
    await b.stop()
    await pageB.locator('.shell[data-connection="offline"]').waitFor()
    expect(await pageB.getByRole('status').textContent()).toContain('The daemon cannot be reached')
    await screenshot(pageB, 'offline')
    // written while B is off: A's page shows it stored at M's mailbox, live
    await composer.fill('while you were away')
    await composer.press('Enter')
    const away = pageA.locator('.msg.out', { hasText: 'while you were away' })
    await pageA.locator('.msg.out[data-status="stored"]', { hasText: 'while you were away' }).waitFor({ timeout: 30_000 })
    expect(await away.locator('.status').textContent()).toMatch(/^stored at [1-9]\d* mailbox(es)?$/)
    await screenshot(pageA, 'stored')
    b = await b.restart(cleanup)
    // written while B's page may not be connected yet: comes from the log (Last-Event-ID)
    await composer.fill('after the restart')
    await composer.press('Enter')
    await pageB.locator('.shell[data-connection="live"]').waitFor({ timeout: 30_000 })
    await pageB.locator('.msg.in', { hasText: 'after the restart' }).waitFor({ timeout: 30_000 })
    // B collected the stored one from the mailbox; B's page read it, A's page shows that, live
    await pageB.locator('.msg.in', { hasText: 'while you were away' }).waitFor({ timeout: 30_000 })
    await pageA.locator('.msg.out[data-status="read"]', { hasText: 'while you were away' }).waitFor({ timeout: 30_000 })
    await check(pageB, b, a)
    await check(pageA, a, b)
    // each once (the stored one and the one sent after the restart may arrive in either order)
    expect((await history(b, a)).map(m => m.text).sort()).toEqual(['Hello B — مرحبا 👋', 'one', 'two', 'three', 'while you were away', 'after the restart'].sort())
    expect((pageA as Page & { errors: string[] }).errors).toEqual([])
  })

  it('shows emoji (ZWJ sequences, flags) and right-to-left scripts as written, each line in its own direction', async () => {
    const mixed = ['Emoji 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷🇯🇵 👋🏽 — then a line in Arabic and one in Hebrew:', 'مرحبا بالعالم', 'שלום עולם'].join('\n')
    const rtl = 'שלום! מה שלומך? 🙂'
    const composer = pageA.locator('#composer-text')
    for (const text of [mixed, rtl]) {
      await composer.fill(text)
      await composer.press('Enter')
    }
    const texts = pageB.locator('.msg.in .text')
    await pageB.locator('.msg.in .text', { hasText: 'מה שלומך' }).waitFor()
    expect((await texts.allTextContents()).slice(-2)).toEqual([mixed, rtl])
    expect((await pageA.locator('.msg.out .text').allTextContents()).slice(-2)).toEqual([mixed, rtl])

    // a right-to-left message reads right to left (dir="auto"), and so does its line in the list
    const direction = async (l: ReturnType<Page['locator']>): Promise<string> => await l.evaluate(el => el.ownerDocument.defaultView?.getComputedStyle(el).direction ?? '')
    expect(await direction(texts.last())).toBe('rtl')
    expect(await direction(texts.nth(-2))).toBe('ltr')
    expect(await direction(pageB.locator(`a.item[data-peer="${a.peerId}"] .last`))).toBe('rtl')
    // in the mixed message, each line takes its own direction: the English one starts at the
    // left edge, the Arabic and Hebrew ones end at the right edge
    const edges = await texts.nth(-2).evaluate(el => {
      const node = el.firstChild as typeof el.firstChild & { data: string }
      const box = el.getBoundingClientRect()
      const of = (part: string): { left: number, right: number, width: number } => {
        const range = el.ownerDocument.createRange()
        const at = node.data.indexOf(part)
        range.setStart(node, at)
        range.setEnd(node, at + part.length)
        const r = range.getBoundingClientRect()
        return { left: r.left - box.left, right: box.right - r.right, width: r.width }
      }
      return { en: of('Emoji'), ar: of('مرحبا بالعالم'), he: of('שלום עולם'), family: of('👨‍👩‍👧‍👦'), flag: of('🇫🇷'), wave: of('👋🏽') }
    })
    expect(edges.en.left).toBeLessThan(2)
    for (const line of [edges.ar, edges.he]) {
      expect(line.right).toBeLessThan(2)
      expect(line.left).toBeGreaterThan(20)
    }
    // a ZWJ family, a flag and a toned hand are one glyph each, not their parts side by side
    if (HAVE_EMOJI_FONT) {
      for (const glyph of [edges.family, edges.flag]) expect(glyph.width).toBeLessThan(edges.wave.width * 1.5)
    } else console.warn('no colour emoji font (apt-get install fonts-noto-color-emoji): emoji glyphs not measured')
    await screenshot(pageB, 'emoji-rtl')
  })

  it('a frozen daemon (SIGSTOP, its connection still open) is shown offline within a few heartbeats, and live again after SIGCONT, missing nothing', async () => {
    await pageA.getByRole('link', { name: /^Chats/ }).click()
    await pageA.locator(`a.item[data-peer="${b.peerId}"]`).click()
    await pageB.getByRole('link', { name: /^Chats/ }).click()
    await pageB.locator(`a.item[data-peer="${a.peerId}"]`).click()
    await pageB.locator('.shell[data-connection="live"]').waitFor()
    // the stream announces its heartbeat, which the page's watchdog goes by
    const head = await fetch(`${b.info.apiUrl}/v1/events`, { headers: { authorization: `Bearer ${b.token}` }, signal: AbortSignal.timeout(5000) })
    expect(head.headers.get('x-octet-heartbeat-ms')).toBe(String(HEARTBEAT))
    await head.body?.cancel()

    const frozenAt = Date.now()
    b.child.kill('SIGSTOP')
    let thawed = false
    const thaw = (): void => { if (!thawed) b.child.kill('SIGCONT'); thawed = true }
    cleanup.add(async () => { thaw() })
    try {
      // nothing tells the page: the TCP connection stays open, only the heartbeats stop
      await pageB.locator('.shell[data-connection="offline"]').waitFor({ timeout: 10_000 })
      const noticed = Date.now() - frozenAt
      console.info(`B's page showed the frozen daemon offline after ${noticed} ms (heartbeat ${HEARTBEAT} ms)`)
      // the watchdog fires after 3 silent heartbeats; the rest is slack for a loaded machine
      expect(noticed).toBeLessThan(15 * HEARTBEAT)
      expect(await pageB.getByRole('status').textContent()).toContain('The daemon cannot be reached')
      // written while B is frozen
      const composer = pageA.locator('#composer-text')
      await composer.fill('while frozen')
      await composer.press('Enter')
      await pageA.locator('.msg.out', { hasText: 'while frozen' }).waitFor()
    } finally {
      thaw()
    }
    await pageB.locator('.shell[data-connection="live"]').waitFor({ timeout: 30_000 })
    await pageB.locator('.msg.in', { hasText: 'while frozen' }).waitFor({ timeout: 30_000 })
    await pageA.locator('#composer-text').fill('after the thaw')
    await pageA.locator('#composer-text').press('Enter')
    await pageB.locator('.msg.in', { hasText: 'after the thaw' }).waitFor({ timeout: 30_000 })
    // each once, in the daemon's order
    const ids = (await history(b, a)).map(m => m.id)
    await expect.poll(async () => await shown(pageB)).toEqual(ids)
    expect((await history(b, a)).filter(m => m.text === 'while frozen' || m.text === 'after the thaw')).toHaveLength(2)
    expect((pageB as Page & { errors: string[] }).errors).toEqual([])
  })

  it('a page of another origin can neither read nor drive the node, even with the cookie in the browser', async () => {
    // a local web server on another port (another user's, say), visited in the same browser
    const cookies: string[] = []
    const evil: Server = createServer((req, res) => {
      if (req.url === '/') cookies.push(req.headers.cookie ?? '') // not the browser's /favicon.ico
      res.setHeader('content-type', 'text/html')
      res.end('<!doctype html><title>evil</title>')
    })
    await new Promise<void>(resolve => evil.listen(0, '127.0.0.1', resolve))
    cleanup.add(async () => { await new Promise(resolve => evil.close(resolve)) })
    const evilPort = (evil.address() as { port: number }).port
    const page = await pageB.context().newPage()
    // the page lives under a name of its own: its cookie goes to no other name of this machine
    const api = new URL(pageB.url()).origin
    expect(new URL(api).hostname).toMatch(/^octet-[0-9a-f]{20}\.localhost$/)
    await page.goto(`http://localhost:${evilPort}/`)
    await page.goto(`http://127.0.0.1:${evilPort}/`)
    expect(cookies).toEqual(['', ''])
    // the worst case: a server that knew the page's name, and is visited under it; the browser
    // then sends it the cookie (cookies ignore ports) and takes its page for the same site
    await page.goto(`http://${new URL(api).hostname}:${evilPort}/`)
    expect(cookies[2]).toMatch(/octet_session_\d+=/)
    const before = (await history(b, a)).length
    const outcome = await page.evaluate(async ({ api, to }) => {
      const tries: Record<string, string> = {}
      const attempt = async (name: string, run: () => Promise<Response>): Promise<void> => {
        try { tries[name] = `answered ${(await run()).status}` } catch (err) { tries[name] = `failed: ${(err as Error).name}` }
      }
      await attempt('read', async () => await fetch(`${api}/v1/conversations`, { credentials: 'include' }))
      await attempt('send', async () => await fetch(`${api}/v1/messages`, { method: 'POST', credentials: 'include', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ to, text: 'forged' }) }))
      // a route that needs no body: a JSON-only API is no fence there, only the origin check is
      await attempt('block', async () => await fetch(`${api}/v1/contacts/${to}/block`, { method: 'POST', credentials: 'include', mode: 'no-cors' }))
      await attempt('send-json', async () => await fetch(`${api}/v1/messages`, { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ to, text: 'forged' }) }))
      return tries
    }, { api, to: a.peerId })
    // the read fails (no CORS answer), the no-cors send gets an opaque answer (status 0) and did nothing
    expect(outcome.read).toBe('failed: TypeError')
    expect(outcome['send-json']).toBe('failed: TypeError')
    // the no-cors send: its answer is withheld from the page (opaque, or refused by the API's
    // Cross-Origin-Resource-Policy); what matters is below, that it did nothing
    expect(outcome.send).toMatch(/^(answered 0|failed: TypeError)$/)
    expect(outcome.block).toMatch(/^(answered 0|failed: TypeError)$/)
    expect((await history(b, a)).length).toBe(before)
    expect((await b.api<{ contact: ContactView }>('GET', `/v1/contacts/${a.peerId}`)).body.contact.state).toBe('accepted')
    await page.close()
  })

  it('works at phone width, in dark mode', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 800 }, colorScheme: 'dark' })
    cleanup.add(async () => { await context.close() })
    const page = await openPage(context, a)
    await page.locator(`a.item[data-peer="${b.peerId}"]`).click()
    await page.locator('.msg.out', { hasText: 'three' }).waitFor()
    // a long unbroken text wraps inside its bubble
    await page.locator('#composer-text').fill(`${'x'.repeat(3000)} end`)
    await page.locator('#composer-text').press('Enter')
    await page.locator('.msg.out', { hasText: 'x end' }).waitFor()
    // one column: the list is gone, the conversation fills the width, no horizontal scroll
    expect(await page.locator('nav.list').isVisible()).toBe(false)
    expect(await page.locator('.messages').evaluate(el => el.scrollWidth <= el.clientWidth)).toBe(true)
    expect(await page.locator('html').evaluate(el => el.scrollWidth <= el.clientWidth)).toBe(true)
    await screenshot(page, 'chat-phone-dark')
    // the dark theme's colours pass axe's contrast check too
    expect(await accessibilityViolations(page)).toEqual([])
  })

  it('A blocks a contact request from its Contacts page', async () => {
    const sent = await m.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: a.peerId, text: 'cheap watches' })
    expect(sent.status).toBe(202)
    await pageA.getByRole('link', { name: /^Contacts/ }).click()
    const row = pageA.locator(`li[data-peer="${m.peerId}"]`)
    const block = row.getByRole('button', { name: 'Block' })
    await block.waitFor({ timeout: 30_000 })
    // the contacts view, with a request in it, for screen readers
    expect(await accessibilityViolations(pageA)).toEqual([])
    await screenshot(pageA, 'contacts')
    await block.click()
    await waitFor(async () => {
      const { body } = await a.api<{ contact: ContactView }>('GET', `/v1/contacts/${m.peerId}`)
      return body.contact.state === 'blocked' ? true : undefined
    }, { what: 'M blocked at A' })
    await row.locator('.badge', { hasText: 'blocked' }).waitFor()
    expect(await pageA.locator('h3 + .empty', { hasText: 'No requests.' }).count()).toBe(1)
  })

  it('keyboard and screen readers: Tab reaches the conversation list and the composer; axe finds nothing serious in the chat and node views', async () => {
    await pageA.getByRole('link', { name: /^Chats/ }).click()
    await tabTo(pageA, `a.item[data-peer="${b.peerId}"]`)
    await pageA.keyboard.press('Enter')
    await pageA.waitForURL(`**/#/chats/${b.peerId}`)
    await tabTo(pageA, '#composer-text')
    await pageA.keyboard.type('by keyboard again')
    await pageA.keyboard.press('Enter')
    await pageB.locator('.msg.in', { hasText: 'by keyboard again' }).waitFor()
    expect(await accessibilityViolations(pageA)).toEqual([])
    expect(await accessibilityViolations(pageB)).toEqual([])
    await pageA.getByRole('link', { name: 'Node' }).click()
    await pageA.locator('[data-testid="my-peer-id"]').waitFor()
    expect(await accessibilityViolations(pageA)).toEqual([])
  })
})
