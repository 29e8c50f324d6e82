// Test-only module hook: libp2p's isPrivate() (in @libp2p/utils) counts 203.0.113.0/24
// (TEST-NET-3) as private, and identify and DCUtR drop "private" observed addresses. The NAT
// topology uses 203.0.113.0/24 as its "internet" so that no real public address is ever used;
// this hook removes that one range from the list so the experiment sees it as the public
// internet. Loaded with: node --import ./scripts/nat/testnet-public.mjs …
import { register } from 'node:module'

const hooks = `
export async function load (url, context, next) {
  const r = await next(url, context)
  if (url.includes('@libp2p/utils/dist/src/private-ip.js')) {
    const src = String(r.source).replace("'203.0.113.0/24',", '')
    return { ...r, source: src }
  }
  return r
}`
register('data:text/javascript,' + encodeURIComponent(hooks), import.meta.url)
