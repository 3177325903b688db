// Seals session cookies exactly as the origin BFF's login does (see shared/reference/origin-bff.md):
// key = SHA-256(secret), 16-byte random iv, AES-256-GCM, base64url(iv || tag || ciphertext), no padding.
// Usage: SESSION_SECRET=... node scripts/origin-seal.js < plaintexts.json
// stdin: a JSON array of plaintext strings; stdout: one cookie value per line, in the same order.
'use strict';
const crypto = require('crypto');

const secret = process.env.SESSION_SECRET;
if (!secret) {
  console.error('SESSION_SECRET is not set');
  process.exit(2);
}
const key = crypto.createHash('sha256').update(secret).digest();

function seal(plaintext) {
  const iv = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  const enc = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), enc]).toString('base64url');
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  for (const plaintext of JSON.parse(input)) process.stdout.write(seal(plaintext) + '\n');
});
