#ifndef CROCANTE_CLIBCRYPTO_SHIM_H
#define CROCANTE_CLIBCRYPTO_SHIM_H
// Only EVP's cipher contexts: AES-256-GCM keyed once (LogoutCore's GCMContext).
#include <openssl/evp.h>
#endif
