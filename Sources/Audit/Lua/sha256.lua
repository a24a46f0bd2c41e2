-- The chain's SHA-256 on its own (tests compare it with swift-crypto's).
-- ARGV: 1 message
--#include _audit
return rg_sha256(ARGV[1])
