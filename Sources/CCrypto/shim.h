/* OpenSSL's libcrypto (libssl3 at run time, which libpq5 already loads into every process;
   headers from libssl-dev, which libpq-dev depends on): SHA-256, HMAC, PBKDF2 and base64. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <openssl/crypto.h>
