// Interop peer for tests only: encode/decode Cashu tokens with @cashu/cashu-ts.
//   node cashu_token.mjs decode        token on stdin -> JSON on stdout
//   node cashu_token.mjs encode 3|4    JSON on stdin ({mint, unit, memo, proofs}) -> token
import { getDecodedToken, getEncodedToken } from '@cashu/cashu-ts';

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const input = Buffer.concat(chunks).toString('utf8').trim();
const [mode, version] = process.argv.slice(2);

try {
  if (mode === 'decode') {
    const t = getDecodedToken(input);
    const out = {
      mint: t.mint,
      unit: t.unit ?? null,
      memo: t.memo ?? null,
      proofs: t.proofs.map((p) => {
        const q = { amount: p.amount, id: p.id, secret: p.secret, C: p.C };
        if (p.dleq) q.dleq = p.dleq;
        return q;
      }),
    };
    process.stdout.write(JSON.stringify(out) + '\n');
  } else if (mode === 'encode') {
    const j = JSON.parse(input);
    const token = {
      mint: j.mint,
      proofs: j.proofs.map((p) => {
        const q = { amount: p.amount, id: p.id, secret: p.secret, C: p.C };
        if (p.dleq) q.dleq = p.dleq;
        return q;
      }),
    };
    if (j.unit !== undefined) token.unit = j.unit;
    if (j.memo !== undefined && j.memo !== null) token.memo = j.memo;
    process.stdout.write(getEncodedToken(token, { version: Number(version) }) + '\n');
  } else {
    throw new Error('usage: cashu_token.mjs decode | encode 3|4');
  }
} catch (e) {
  process.stderr.write(`cashu-ts: ${e.message}\n`);
  process.exit(1);
}
