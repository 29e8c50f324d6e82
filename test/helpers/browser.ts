import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import axe from 'axe-core'
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core'
import { expect } from 'vitest'
import { ROOT, runCli, type Cleanup, type DaemonProcess } from './daemon.js'

/** Debian's chromium (`.ci/run` installs it); OCTET_CHROMIUM names another. */
export const CHROMIUM = process.env.OCTET_CHROMIUM ?? '/usr/bin/chromium'
export const HAVE_CHROMIUM = existsSync(CHROMIUM)
/** Where the browser tests leave screenshots of the main views (a CI artifact; README says so). */
export const SCREENSHOTS = join(ROOT, 'test-results', 'screenshots')

/**
 * Debian's Chromium, headless. Its camera is a fake one: a test pattern, or with `camera` the
 * picture in that file (Motion JPEG: one JPEG is a one-frame video, shown over and over).
 */
export async function launchBrowser (cleanup: Cleanup, { camera }: { camera?: string } = {}): Promise<Browser> {
  // --no-sandbox: tests run as root, where Chromium's sandbox refuses to start; a fake camera
  // with no permission prompt for the QR scanner
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', ...(camera != null ? [`--use-file-for-fake-video-capture=${camera}`] : [])],
    timeout: 30_000
  })
  cleanup.add(async () => { await browser.close() })
  await mkdir(SCREENSHOTS, { recursive: true })
  return browser
}

/**
 * What a camera held up to `element` would see, as one JPEG for launchBrowser's `camera`: an
 * even-sized square of the page around it (Chromium's fake camera takes no odd sizes).
 */
export async function cameraPicture (element: Locator, size = 320): Promise<Buffer> {
  await element.scrollIntoViewIfNeeded()
  const box = await element.boundingBox()
  if (box == null) throw new Error('the element to photograph is not visible')
  const page = element.page()
  const viewport = page.viewportSize() ?? { width: size, height: size }
  const x = Math.max(0, Math.min(viewport.width - size, Math.round(box.x + box.width / 2 - size / 2)))
  const y = Math.max(0, Math.min(viewport.height - size, Math.round(box.y + box.height / 2 - size / 2)))
  return await page.screenshot({ type: 'jpeg', quality: 95, clip: { x, y, width: size, height: size } })
}

/** A port free now, for a daemon that must come back on the same address (its page's origin). */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>(resolve => server.close(() => { resolve() }))
  if (address == null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/** Logs a browser context into a daemon's page the way a person does: the URL `octet ui` prints. */
export async function openPage (browser: Browser | BrowserContext, daemon: DaemonProcess, options: { width?: number } = {}): Promise<Page> {
  const context = 'newContext' in browser ? await browser.newContext({ viewport: { width: options.width ?? 1100, height: 760 } }) : browser
  const ui = await runCli(['ui', '--data-dir', daemon.options.dataDir])
  expect(ui.code, ui.stderr).toBe(0)
  const page = await context.newPage()
  page.setDefaultTimeout(20_000)
  const errors: string[] = []
  page.on('pageerror', err => { errors.push(err.message) })
  page.on('console', m => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push(m.text()) })
  ;(page as Page & { errors: string[] }).errors = errors
  await page.goto(ui.stdout.trim())
  await page.locator('.shell[data-connection="live"]').waitFor()
  // the code left the address bar at once
  expect(page.url()).not.toContain('login=')
  return page
}

export async function screenshot (page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) })
}

/** Presses Tab until the element matching `selector` has the focus (keyboard only, no clicks). */
export async function tabTo (page: Page, selector: string, max = 40): Promise<void> {
  for (let i = 0; i < max; i++) {
    const focused = page.locator(`${selector}:focus`)
    if (await focused.count() > 0) return
    await page.keyboard.press('Tab')
  }
  throw new Error(`Tab never reached ${selector}`)
}

/**
 * The serious and critical accessibility violations axe-core finds in the page as it is now,
 * one line each (rule, impact, the elements). axe's source is evaluated in the page from the
 * installed package, nothing loaded from elsewhere; through DevTools, since the page's CSP
 * (rightly) refuses an inline script tag.
 */
export async function accessibilityViolations (page: Page): Promise<string[]> {
  if (!await page.evaluate(() => 'axe' in globalThis)) await page.evaluate(axe.source)
  const violations = await page.evaluate(async () => {
    const win = globalThis as unknown as { axe: typeof axe, document: axe.ElementContext }
    const result = await win.axe.run(win.document, { resultTypes: ['violations'] })
    return result.violations.map(v => ({ id: v.id, impact: v.impact ?? '', help: v.help, targets: v.nodes.map(n => n.target.join(' ')) }))
  })
  return violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.id} (${v.impact}): ${v.help} — ${v.targets.join(', ')}`)
}
