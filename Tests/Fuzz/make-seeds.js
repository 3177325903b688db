// Writes the CookieFuzz seed corpus: one raw Cookie header per file, one file per case the
// end-to-end tests send (Tests/EndToEndTests/BadCookieThroughNginxTests.swift), sealed the way
// the origin seals (origin-bff.md) with CookieFuzz's fixed test secrets. The fuzzer also reads
// each input as a session plaintext, so a few plaintext-shaped seeds are included.
// Usage: node Tests/Fuzz/make-seeds.js Tests/Fuzz/corpus
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const out = process.argv[2];
if (!out) { console.error('usage: make-seeds.js DIR'); process.exit(64); }
// Must match CookieFuzz.secret and CookieFuzz.previousSecret (Sources/CookieFuzz/CookieFuzz.swift).
const secret = 'cookie-fuzz-secret-0123456789abcdef';
const previous = 'cookie-fuzz-previous-0123456789abcd';
const foreign = 'cookie-fuzz-foreign-secret-0123456789';

function seal(plaintext, withSecret = secret) {
  const key = crypto.createHash('sha256').update(withSecret).digest();
  const iv = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  const enc = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), enc]).toString('base64url');
}
const json = (token) => JSON.stringify({ token, issuedAt: 1700000000000 });
const tamper = (value, offset) => {
  const bytes = Buffer.from(value, 'base64url');
  bytes[offset] ^= 1;
  return bytes.toString('base64url');
};
const s = (value) => `crocante_session=${value}`;
const valid = seal(json('fuzz-valid-token'));
const jwt = ['{"alg":"HS256","typ":"JWT"}', '{"sub":"u1","exp":1}'].map((p) => Buffer.from(p).toString('base64url')).join('.') + '.c2ln';

const seeds = {
  'valid-json': s(valid),
  'valid-legacy': s(seal('fuzz-legacy-token')),
  'valid-jwt': s(seal(json(jwt))),
  'valid-previous-secret': s(seal(json('fuzz-previous-token'), previous)),
  'other-secret': s(seal(json('fuzz-foreign-token'), foreign)),
  'empty-value': s(''),
  'no-equals': 'crocante_session',
  'no-equals-then-valid': `crocante_session; ${s(valid)}`,
  'not-base64url': s('!!not*base64url~~'),
  'standard-base64': s(Buffer.from(valid, 'base64url').toString('base64')),
  '31-bytes': s(crypto.randomBytes(31).toString('base64url')),
  '32-bytes': s(crypto.randomBytes(32).toString('base64url')),
  '32-bytes-empty-plaintext': s(seal('')),
  'tampered-iv': s(tamper(valid, 3)),
  'tampered-tag': s(tamper(valid, 20)),
  'tampered-ciphertext': s(tamper(valid, 40)),
  'json-token-number': s(seal('{"token":12345,"issuedAt":1}')),
  'json-token-null': s(seal('{"token":null}')),
  'json-token-empty': s(seal(json(''))),
  'json-token-crlf': s(seal(json('tok\r\nX-Injected: 1'))),
  'json-token-space': s(seal(json('tok en'))),
  'json-malformed': s(seal('{"token":"half-json-token"')),
  'json-invalid-utf8': s(seal(Buffer.concat([Buffer.from('{"token":"ab'), Buffer.from([0xff]), Buffer.from('cd"}')]))),
  'legacy-crlf': s(seal('legacy-token\r\nX-Injected: yes')),
  'legacy-spaces': s(seal('legacy token with spaces')),
  'legacy-invalid-utf8': s(seal(Buffer.from([0xff, 0xfe, 0x41, 0x42, 0xc3, 0x28]))),
  'header-invalid-utf8': Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('; crocante_session='), Buffer.from([0xc3, 0x28, 0x80])]),
  '4k': s(crypto.randomBytes(3072).toString('base64url')),
  '7k': s(crypto.randomBytes(5376).toString('base64url')),
  'many-cookies': [...Array(150).keys()].map((i) => `c${i}=v${i}`).concat([s(valid)]).join('; '),
  'twice-first-bad': `crocante_session=not-a-session; ${s(valid)}`,
  'twice-first-empty': `crocante_session=; ${s(valid)}`,
  'two-headers-joined': `theme=dark; lang=en; ${s(valid)}`,
  'quoted': `crocante_session="${valid}"`,
  'quoted-garbage': 'crocante_session="not-a-session"',
  'name-case': `Crocante_Session=${valid}; CROCANTE_SESSION=${valid}`,
  'name-prefix-suffix': `xcrocante_session=${valid}; crocante_session2=${valid}`,
  'whitespace': `a=1;\t crocante_session = ${valid} \t; b=2`,
  // Plaintext-shaped: the fuzzer also seals each input and opens it.
  'plaintext-json': json('fuzz-plaintext-token'),
  'plaintext-json-extra-keys': '{"issuedAt":1,"token":"abc","x":[1,{"y":null}],"z":"\\u0041"}',
  'plaintext-json-duplicate-token': '{"token":"first","token":"second"}',
  'plaintext-json-escapes': '{"token":"a\\u0000b\\ud800c\\"d"}',
  'plaintext-json-nested': '{"token":' + '['.repeat(600) + ']'.repeat(600) + '}',
  'plaintext-json-whitespace': ' \t\r\n{ "token" : "spaced" }',
  'plaintext-legacy-braces': '{notjson',
  // The origin's exact JSON.stringify shape, and near misses of it.
  'plaintext-canonical': '{"token":"canonical-token","issuedAt":1700000000000}',
  'plaintext-canonical-zero': '{"token":"t","issuedAt":0}',
  'plaintext-canonical-leading-zero': '{"token":"t","issuedAt":01}',
  'plaintext-canonical-negative': '{"token":"t","issuedAt":-1}',
  'plaintext-canonical-trailing-brace': '{"token":"t","issuedAt":1}}',
  'plaintext-canonical-escape': '{"token":"a\\/b","issuedAt":1}',
  'plaintext-canonical-control': '{"token":"a\u0001b","issuedAt":1}',
  'plaintext-canonical-del': '{"token":"a\u007fb","issuedAt":1}',
  'plaintext-canonical-utf8': '{"token":"tökén","issuedAt":1}',
  'plaintext-canonical-empty': '{"token":"","issuedAt":1}',
  // Found by the fuzzer (against its own reference reading): JSONDecoder parses lazily, so an
  // invalid escape in a key fails at container(keyedBy:), an invalid one in an unread value not at all.
  'plaintext-invalid-escape-in-key': '{"tok800c\\;den":"firstUwwwwwid"}',
  'plaintext-invalid-escape-in-value': '{"x":"\\;","token":"after-bad-escape"}',
};

fs.mkdirSync(out, { recursive: true });
for (const [name, value] of Object.entries(seeds)) fs.writeFileSync(path.join(out, name), value);
console.log(`wrote ${Object.keys(seeds).length} seeds to ${out}`);
