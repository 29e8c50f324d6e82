import { spawn } from 'node:child_process'
import { once } from 'node:events'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, Cleanup, waitFor } from '../helpers/daemon.js'
import { HAVE_CHROMIUM, launchBrowser, screenshot } from '../helpers/browser.js'

/**
 * `octet testnet --ui`: a real testnet of three daemons, its page in Chromium showing every
 * node and their connections live; a node stopped and started from the page.
 */
describe.skipIf(!HAVE_CHROMIUM)('octet testnet --ui', () => {
  const cleanup = new Cleanup()
  let browser: Browser
  let url = ''

  beforeAll(async () => {
    browser = await launchBrowser(cleanup)
    const dir = await cleanup.tempDir('octet-web-testnet-')
    const child = spawn(process.execPath, [CLI, 'testnet', '--nodes', '3', '--base-port', '0', '--dir', dir, '--ui'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    cleanup.add(async () => {
      if (child.exitCode != null || child.signalCode != null) return
      const exited = once(child, 'exit')
      child.kill('SIGINT')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    })
    url = await waitFor(async () => /^testnet page: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(stdout)?.[1], { timeoutMs: 90_000, what: `the testnet page URL\n${stderr}` })
  }, 120_000)
  afterAll(async () => { await cleanup.run() })

  it('draws every node and their connections, live; a node stopped from the page shows stopped, then comes back', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 700 } })
    await page.goto(url)
    const nodes = page.locator('g.node')
    await expect.poll(async () => await nodes.count(), { timeout: 20_000 }).toBe(3)
    await expect.poll(async () => await page.locator('g.node[data-running="true"]').count()).toBe(3)
    await expect.poll(async () => await page.locator('line.edge').count(), { timeout: 20_000 }).toBeGreaterThanOrEqual(2)
    await screenshot(page, 'testnet')

    // keyboard: Tab to node-2, Enter picks it; its Stop button stops the daemon
    await page.locator('g.node[data-node="node-2"]').focus()
    await page.keyboard.press('Enter')
    await page.getByRole('button', { name: 'Stop node-2' }).click()
    await page.locator('g.node[data-node="node-2"][data-running="false"]').waitFor({ timeout: 30_000 })
    await expect.poll(async () => await page.locator('[data-testid="summary"]').textContent()).toMatch(/^2\/3 nodes up/)
    await screenshot(page, 'testnet-node-stopped')
    await page.getByRole('button', { name: 'Start node-2' }).click()
    await page.locator('g.node[data-node="node-2"][data-running="true"]').waitFor({ timeout: 60_000 })
  })

  it('asks the nodes nothing while the page is hidden, and catches up as soon as it is shown', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 700 } })
    const asked: number[] = []
    page.on('request', r => { if (r.url().endsWith('/testnet/state')) asked.push(Date.now()) })
    await page.goto(url)
    await expect.poll(() => asked.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2)
    // as a browser says it when the tab goes to the background
    const setVisibility = async (state: 'hidden' | 'visible'): Promise<void> => {
      await page.evaluate(`Object.defineProperty(document, 'visibilityState', { value: '${state}', configurable: true });
        document.dispatchEvent(new Event('visibilitychange'))`)
    }
    await setVisibility('hidden')
    const hiddenAt = Date.now()
    // a request already on its way may still land; none may start once hidden, over three intervals
    await page.waitForTimeout(3_500)
    expect(asked.filter(t => t > hiddenAt + 100)).toEqual([])
    const before = asked.length
    await setVisibility('visible')
    await expect.poll(() => asked.length, { timeout: 2_000 }).toBeGreaterThan(before)
    await page.close()
  })

  it('takes a stop only from its own page', async () => {
    const port = new URL(url).port
    const other = await fetch(`${url}testnet/nodes/node-1/stop`, { method: 'POST', headers: { origin: 'http://127.0.0.1:1' }, signal: AbortSignal.timeout(10_000) })
    expect(other.status).toBe(403)
    const none = await fetch(`${url}testnet/nodes/node-1/stop`, { method: 'POST', signal: AbortSignal.timeout(10_000) })
    expect(none.status).toBe(403)
    const state = await (await fetch(`http://127.0.0.1:${port}/testnet/state`, { signal: AbortSignal.timeout(10_000) })).json() as { nodes: Array<{ name: string, running: boolean }> }
    expect(state.nodes.find(n => n.name === 'node-1')?.running).toBe(true)
  })
})
