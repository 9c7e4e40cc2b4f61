// Interop peer for tests only: @cashu/cashu-ts against a `dvm mint`.
// Driven step by step by tools/tests/test_interop_cashu.c, so the mint can
// be restarted between steps. The wallet's proofs live in a JSON state file.
//
//   node cashu_interop.mjs mint    MINT_URL STATE AMOUNT
//   node cashu_interop.mjs send    MINT_URL STATE AMOUNT 3|4
//   node cashu_interop.mjs receive MINT_URL STATE TOKEN
//   node cashu_interop.mjs check   MINT_URL STATE TOKEN
//   node cashu_interop.mjs balance MINT_URL STATE
//
// Every step prints one JSON object on stdout and exits 0, or prints
// {"error", "code"} and exits 1.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import {
  CashuMint, CashuWallet, getDecodedToken, getEncodedToken, getEncodedTokenV4, hasValidDleq,
} from '@cashu/cashu-ts';

const [step, mintUrl, statePath, arg, arg2] = process.argv.slice(2);

function load() {
  return existsSync(statePath) ? JSON.parse(readFileSync(statePath, 'utf8')) : { proofs: [] };
}
function save(s) {
  writeFileSync(statePath, JSON.stringify(s));
}
const sum = (ps) => ps.reduce((a, p) => a + p.amount, 0);

async function wallet() {
  const w = new CashuWallet(new CashuMint(mintUrl), { unit: 'sat' });
  await w.loadMint();
  return w;
}

// Every proof must carry a DLEQ that verifies against the mint's keys.
async function checkDleq(w, proofs) {
  for (const p of proofs) {
    const keys = await w.getKeys(p.id);
    if (!hasValidDleq(p, keys)) throw new Error(`DLEQ does not verify for a ${p.amount} sat proof`);
  }
}

async function main() {
  const s = load();
  const w = await wallet();
  switch (step) {
    case 'mint': {
      const amount = Number(arg);
      const q = await w.createMintQuote(amount);
      const quote = await w.checkMintQuote(q.quote);
      if (quote.state !== 'PAID') throw new Error(`quote state ${quote.state}, expected PAID`);
      const proofs = await w.mintProofs(amount, q.quote);
      await checkDleq(w, proofs);
      s.proofs.push(...proofs);
      save(s);
      const after = await w.checkMintQuote(q.quote);
      return { minted: sum(proofs), quote_state: after.state, dleq_ok: true, balance: sum(s.proofs) };
    }
    case 'send': {
      const amount = Number(arg);
      // send() swaps when the exact amount cannot be selected (NUT-03).
      const { keep, send } = await w.send(amount, s.proofs, { includeDleq: true });
      await checkDleq(w, [...keep, ...send]);
      s.proofs = keep;
      save(s);
      const t = { mint: mintUrl, proofs: send, unit: 'sat' };
      const token = arg2 === '3' ? getEncodedToken(t, { version: 3 }) : getEncodedTokenV4(t);
      return { token, amount: sum(send), balance: sum(s.proofs) };
    }
    case 'receive': {
      const decoded = getDecodedToken(arg);
      const proofs = await w.receive(arg, { requireDleq: decoded.proofs.every((p) => p.dleq) });
      await checkDleq(w, proofs);
      s.proofs.push(...proofs);
      save(s);
      return { received: sum(proofs), had_dleq: decoded.proofs.every((p) => p.dleq), balance: sum(s.proofs) };
    }
    case 'check': {
      const decoded = getDecodedToken(arg);
      const states = await w.checkProofsStates(decoded.proofs);
      return { states: states.map((x) => x.state) };
    }
    case 'balance':
      return { balance: sum(s.proofs) };
    default:
      throw new Error(`unknown step ${step}`);
  }
}

main().then(
  (out) => {
    process.stdout.write(JSON.stringify(out) + '\n');
    process.exit(0);
  },
  (err) => {
    process.stdout.write(JSON.stringify({ error: String(err && err.message), code: err && err.code !== undefined ? err.code : null }) + '\n');
    process.exit(1);
  },
);
