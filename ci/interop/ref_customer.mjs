// A customer written the way the reference customer (2020117-customer,
// seeds/streaming-guide-p2p-cashu.md) works, with the reference's own
// libraries: @hyperswarm/secret-stream over plain TCP (the "direct" peer of
// our agent) and @cashu/cashu-ts for the ecash. Driven by the C test
// tools/tests/test_interop_live.c. Test use only, never the product.
//
//   node ref_customer.mjs HOST PORT MINT_URL BUDGET PROMPT [dleq|nodleq]
//
// 1. mintTokens(budget) at MINT_URL (one quote, paid at once by our mint)
// 2. request {kind 5100, input, budget}; on offer: split into micro-tokens
//    of sats_per_chunk x chunks_per_payment (wallet.send per token)
// 3. send token[0]; on pay_required send the next one, or stop when none
//    is left; print chunks as they come; end on result or error.
// Tokens are cashuB (getEncodedTokenV4), with DLEQ only when asked ("dleq").
// Output: one JSON line {"event":"done","output","chunks","paid",
// "total_sats","error"} on stdout. Exits when done, when stdin closes (the
// test died), or after 60 s.
import { createRequire } from 'node:module'
import net from 'node:net'
import { CashuMint, CashuWallet, getEncodedTokenV4 } from '@cashu/cashu-ts'

const require = createRequire(import.meta.url)
const SecretStream = require('@hyperswarm/secret-stream')

const [host, portText, mintUrl, budgetText, prompt, dleqMode] = process.argv.slice(2)
const budget = Number(budgetText)
const includeDleq = dleqMode === 'dleq'
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n')
setTimeout(() => { emit({ event: 'timeout' }); process.exit(3) }, 60000).unref()
process.stdin.on('end', () => process.exit(4))
process.stdin.resume()

const wallet = new CashuWallet(new CashuMint(mintUrl), { unit: 'sat' })
await wallet.loadMint()
const quote = await wallet.createMintQuote(budget)
let proofs = await wallet.mintProofs(budget, quote.quote)

const id = 'ref-' + Math.random().toString(16).slice(2)
const socket = net.connect(Number(portText), host)
const s = new SecretStream(true, socket)
let buf = ''
let output = ''
let chunks = 0
let paid = 0
let tokens = []
const send = (m) => s.write(JSON.stringify(m) + '\n')
const finish = (o) => { emit({ event: 'done', output, chunks, paid, ...o }); s.end(); setTimeout(() => process.exit(0), 200) }

async function pay() {
  if (!tokens.length) { send({ type: 'stop', id }); return }
  const t = tokens.shift()
  paid += t.amount
  send({ type: 'payment', id, token: t.token })
}

s.on('connect', () => send({ type: 'request', id, kind: 5100, input: prompt, budget }))
s.on('data', async (d) => {
  buf += d.toString()
  let nl
  while ((nl = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, nl)
    buf = buf.slice(nl + 1)
    if (!line) continue
    const m = JSON.parse(line)
    if (m.id !== id) continue
    if (m.type === 'offer') {
      const per = m.sats_per_chunk * m.chunks_per_payment
      // splitTokens: as many micro-tokens of `per` sats as the budget holds
      for (let i = 0; i + 1 <= Math.floor(budget / per); i++) {
        const { keep, send: out } = await wallet.send(per, proofs, { includeDleq })
        proofs = keep
        tokens.push({ amount: per, token: getEncodedTokenV4({ mint: mintUrl, proofs: out, unit: 'sat' }) })
      }
      await pay()
    } else if (m.type === 'chunk') {
      chunks++
      output += m.data
    } else if (m.type === 'pay_required') {
      await pay()
    } else if (m.type === 'result') {
      finish({ total_sats: m.total_sats, result: m.output, error: null })
    } else if (m.type === 'error') {
      finish({ error: m.message })
    }
  }
})
s.on('error', (e) => finish({ error: 'stream: ' + e.message }))
