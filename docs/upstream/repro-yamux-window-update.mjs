// Minimal reproduction for docs/upstream/yamux-window-update.md, against the installed
// @chainsafe/libp2p-yamux and nothing of octet: `npx node docs/upstream/repro-yamux-window-update.mjs`.
// The receiving side of an established stream reads 1,000 data frames of 1 KiB (chat messages,
// a second apart on a fake clock) and we count the window update frames it sends back.
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import { Uint8ArrayList } from 'uint8arraylist'

let now = 1_000_000
Date.now = () => now
const log = Object.assign(() => {}, { enabled: false, trace: () => {}, error: () => {}, newScope: () => log })
let updates = 0
const stream = new YamuxStream({
  id: '1', streamId: 1, state: StreamState.Established, direction: 'inbound', log,
  getRTT: () => 10,
  sendFrame: header => { if (header.type === 1 && header.length > 0) updates++; return true }
})
stream.addEventListener('message', () => {})
for (let i = 0; i < 1000; i++) {
  now += 1000
  stream.handleData({ header: { type: 0, flag: 0, streamID: 1, length: 1024 }, data: new Uint8ArrayList(new Uint8Array(1024)) })
}
console.log(`1000 data frames of 1 KiB read: ${updates} window update frames sent back`)
