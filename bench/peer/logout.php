<?php
// The benchmark's peer: the same logout as crocante-logout, written the usual PHP-FPM way.
// Answers the same bytes, then fastcgi_finish_request() and the backend call with curl, in
// the FPM worker: a slow or dead backend holds the worker for the call's whole duration.
//
// The cookie is opened exactly as crocante-logout opens it: the first crocante_session pair
// of the raw Cookie header, base64url of iv(16) || tag(16) || ciphertext, AES-256-GCM under
// SHA-256(SESSION_SECRET), plaintext {"token":...} or the raw token, token visible ASCII.
// SESSION_SECRET and BACKEND_URL come from the pool's env[] (bench/peer/php-fpm.conf.in).

header('Content-Type: application/json');
header('Content-Length: 16');
header('Cache-Control: no-store');
header('Set-Cookie: crocante_session=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Strict; Secure');
echo '{"success":true}';

/** The value of the first crocante_session pair in a raw Cookie header, or null. */
function session_cookie(string $header): ?string {
    foreach (explode(';', $header) as $pair) {
        $equals = strpos($pair, '=');
        if ($equals === false) continue;
        if (trim(substr($pair, 0, $equals), " \t") !== 'crocante_session') continue;
        $value = trim(substr($pair, $equals + 1), " \t");
        if (strlen($value) >= 2 && $value[0] === '"' && $value[strlen($value) - 1] === '"') {
            $value = substr($value, 1, -1);
        }
        return $value;
    }
    return null;
}

/** The access token sealed in a cookie value, or null. */
function open_session(string $value, string $secret): ?string {
    if (preg_match('/^[A-Za-z0-9_-]*$/', $value) !== 1) return null;
    $sealed = base64_decode(strtr($value, '-_', '+/'), true);
    if ($sealed === false || strlen($sealed) < 32) return null;
    $plaintext = openssl_decrypt(
        substr($sealed, 32), 'aes-256-gcm', hash('sha256', $secret, true), OPENSSL_RAW_DATA,
        substr($sealed, 0, 16), substr($sealed, 16, 16));
    if ($plaintext === false) return null;
    $token = $plaintext;
    if ((ltrim($plaintext, " \t\n\r")[0] ?? '') === '{') {
        $payload = json_decode($plaintext, true);
        if (is_array($payload)) {
            $token = $payload['token'] ?? null;
            if (!is_string($token)) return null;
        }
    }
    return preg_match('/^[\x21-\x7e]+$/', $token) === 1 ? $token : null;
}

$method = $_SERVER['REQUEST_METHOD'] ?? '';
$value = session_cookie($_SERVER['HTTP_COOKIE'] ?? '');
$token = $value === null ? null : open_session($value, getenv('SESSION_SECRET'));

fastcgi_finish_request();

if ($token !== null) {
    $curl = curl_init(getenv('BACKEND_URL'));
    curl_setopt_array($curl, [
        CURLOPT_POST => true,
        CURLOPT_POSTFIELDS => '',
        CURLOPT_HTTPHEADER => [
            'Authorization: Bearer ' . $token,
            'Content-Type: application/json',
            'Accept: application/json',
        ],
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_CONNECTTIMEOUT_MS => 1000,
        CURLOPT_TIMEOUT_MS => 5000,
    ]);
    $body = curl_exec($curl);
    $status = curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
    if ($body === false || $status < 200 || $status >= 300) {
        error_log('revocation failed: ' . ($body === false ? curl_error($curl) : "status $status"));
    }
    curl_close($curl);
}
