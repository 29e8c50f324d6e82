/**
 * Fills in the expected bytes of NEW known-answer vectors: every entry of
 * test/vectors/*.json whose `hex` (or `text`) is null gets what octet's
 * encoder gives for its input now ("" is a vector: the empty message). It
 * never changes an expected value that is there: that would be breaking
 * compatibility, and has to be a deliberate hand edit. Read what it wrote
 * before committing it. The tests never run this, and an entry left at null
 * fails them.
 *
 *   npx vitest run --config scripts/vectors/vitest.config.ts
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { it } from 'vitest'
import { codecs, revive, toHex } from '../../test/vectors/codecs.js'

const dir = new URL('../../test/vectors/', import.meta.url)
/** long hex as lines of this many digits, so that a diff shows where it changed */
const LINE = 128

it('fills in the expected bytes of new vectors', async () => {
  for (const name of readdirSync(dir).filter(n => n.endsWith('.json') && n !== 'keys.json')) {
    const file = JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as { vectors: Array<{ name: string, codec: string, input: unknown, hex?: unknown, text?: string | null }> }
    let filled = 0
    for (const v of file.vectors) {
      if (v.hex !== null && v.text !== null) continue
      const codec = codecs[v.codec]
      if (codec == null) throw new Error(`${name}: "${v.name}" names no codec ${v.codec}`)
      const output = await codec.encode(revive(v.input))
      if (typeof output === 'string') {
        v.text = output
      } else {
        const hex = toHex(output)
        v.hex = hex.length <= LINE ? hex : hex.match(new RegExp(`.{1,${LINE}}`, 'g'))
      }
      filled++
    }
    if (filled > 0) {
      writeFileSync(new URL(name, dir), JSON.stringify(file, null, 2) + '\n')
      console.log(`${name}: filled in ${filled}`)
    }
  }
})
