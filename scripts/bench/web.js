// Issue #14 benchmark: the web page. Its assets' total size (raw and gzip), the first load
// of the page in Debian's Chromium (a fresh browser context: nothing cached) until its event
// stream is live, and a conversation of 1,000 messages until all are rendered; each beside a
// baseline of the same run: the same browser navigating to a small JSON answer of the same
// daemon (what loading anything from it costs at least).
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { apiRequest, inProcessDaemon, median, ROOT, tempDir } from './lib.js'

export const name = 'web'
export const description = 'web page: asset size, first load, a conversation of 1,000 messages rendered (Chromium)'

const RUN = { messages: 1000, loads: 5, renders: 5, concurrency: 32 }
const CHROMIUM = process.env.OCTET_CHROMIUM ?? '/usr/bin/chromium'
const WEB = join(ROOT, 'dist', 'web')

/** The chat page's first load: index.html and what it names (the testnet page's script is apart); and what its script imports only when needed. */
async function assetSizes () {
  const html = await readFile(join(WEB, 'index.html'))
  const files = [...html.toString().matchAll(/(?:src|href)="\/(assets\/[^"]+)"/g)].map(m => m[1])
  let raw = html.length
  let gzip = gzipSync(html).length
  const later = new Set()
  for (const file of files) {
    const body = await readFile(join(WEB, file))
    raw += body.length
    gzip += gzipSync(body).length
    for (const m of body.toString().matchAll(/import\("\.\/([^"]+)"\)/g)) later.add(`assets/${m[1]}`)
  }
  let lazyRaw = 0
  let lazyGzip = 0
  for (const file of later) {
    const body = await readFile(join(WEB, file))
    lazyRaw += body.length
    lazyGzip += gzipSync(body).length
  }
  return { raw, gzip, files: files.length + 1, lazyRaw, lazyGzip }
}

export async function run ({ log }) {
  const sizes = await assetSizes()
  const rows = [
    { metric: 'assets of the first load', value: (sizes.raw / 1024).toFixed(1), unit: 'KiB', note: `dist/web: ${sizes.files} files (index.html, the stylesheet, the script and the chunk it imports)` },
    { metric: 'assets of the first load, gzip', value: (sizes.gzip / 1024).toFixed(1), unit: 'KiB', note: 'what a compressing proxy would send' },
    { metric: 'loaded when a camera scan starts', value: (sizes.lazyRaw / 1024).toFixed(1), unit: 'KiB', note: `the QR decoder (${(sizes.lazyGzip / 1024).toFixed(1)} KiB gzip), only where the browser has no BarcodeDetector for QR codes` }
  ]
  if (!existsSync(CHROMIUM)) {
    rows.push({ metric: 'skipped', value: '-', unit: '', note: `no Chromium at ${CHROMIUM} (apt-get install chromium)` })
    return { rows }
  }
  const { chromium } = await import('playwright-core')
  const dirs = [await tempDir('octet-bench-web-'), await tempDir('octet-bench-web-')]
  const a = await inProcessDaemon(dirs[0].dir, [])
  const b = await inProcessDaemon(dirs[1].dir, [a.info().listenAddresses[0]])
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  try {
    const { apiUrl } = a.info()
    const token = (await readFile(join(dirs[0].dir, 'api.token'), 'utf8')).trim()
    const peer = b.node.peerId
    log(`A writes ${RUN.messages} messages to B`)
    let next = 0
    await Promise.all(Array.from({ length: RUN.concurrency }, async () => {
      while (next < RUN.messages) {
        next++
        await a.messenger.send({ to: peer, text: `message ${next}: ${'lorem ipsum '.repeat(4)}` })
      }
    }))

    /** A fresh context (no cache, no cookie), logged in with a one-time code as `octet ui` does. */
    const freshPage = async () => {
      const context = await browser.newContext()
      const { body } = await apiRequest(apiUrl, token, 'POST', '/v1/ui/login-codes')
      return { context, page: await context.newPage(), url: `${apiUrl}/#login=${body.code}` }
    }
    const timed = async (fn) => { const t0 = performance.now(); await fn(); return performance.now() - t0 }

    const baseline = []
    const loads = []
    const renders = []
    for (let i = 0; i < RUN.loads; i++) {
      const { context, page, url } = await freshPage()
      baseline.push(await timed(async () => { await page.goto(`${apiUrl}/v1/health`) }))
      loads.push(await timed(async () => {
        await page.goto(url)
        await page.locator('.shell[data-connection="live"]').waitFor({ timeout: 30_000 })
      }))
      await context.close()
    }
    for (let i = 0; i < RUN.renders; i++) {
      const { context, page, url } = await freshPage()
      await page.goto(url)
      await page.locator('.shell[data-connection="live"]').waitFor({ timeout: 30_000 })
      renders.push(await timed(async () => {
        await page.evaluate(p => { location.hash = `#/chats/${p}` }, peer)
        await page.locator('.messages .msg').nth(RUN.messages - 1).waitFor({ timeout: 30_000 })
      }))
      await context.close()
    }
    log(`loads ${loads.map(t => t.toFixed(0)).join(', ')} ms; renders ${renders.map(t => t.toFixed(0)).join(', ')} ms`)
    const firstLoad = median(loads)
    const render = median(renders)
    rows.push(
      { metric: 'baseline: navigate to GET /v1/health', value: median(baseline).toFixed(0), unit: 'ms', note: `median of ${RUN.loads}, fresh browser context` },
      { metric: 'first load until the stream is live', value: firstLoad.toFixed(0), unit: 'ms', note: `median of ${RUN.loads}: page, login, lists, event stream; nothing cached` },
      { metric: `open a conversation of ${RUN.messages} messages`, value: render.toFixed(0), unit: 'ms', note: `median of ${RUN.renders}: fetched and all rendered` }
    )
    return {
      rows,
      targets: [
        { target: 'first load < 1 s', value: `${firstLoad.toFixed(0)} ms`, pass: firstLoad < 1000 },
        { target: `${RUN.messages} messages rendered < 1 s`, value: `${render.toFixed(0)} ms`, pass: render < 1000 }
      ]
    }
  } finally {
    await browser.close()
    await b.stop()
    await a.stop()
    for (const d of dirs) await d.remove()
  }
}
