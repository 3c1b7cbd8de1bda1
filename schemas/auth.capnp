# Authentication Service messages of the quicnproto node: connection-bound challenge/response
# login with an Ed25519 identity key, and the KeyPackage directory (RFC 9420 §10, §16.8).
@0x8593c716dc86aa6e;

struct AuthenticateRequest {
  # Proves possession of an Ed25519 identity key for the rest of this QUIC connection.
  identityKey @0 :Data;   # raw 32-byte Ed25519 public key
  signature @1 :Data;     # Ed25519 signature over "quicnproto auth v2\0" ||
                          # SHA-256(node's DER certificate, as pinned) || nonce
}

struct ChallengeResponse {
  nonce @0 :Data;         # fresh random nonce, valid once, only on the connection that asked
}

struct AuthenticateResponse {
  identityKey @0 :Data;   # the identity now authenticated on this connection
}

struct UploadKeyPackageRequest {
  identityKey @0 :Data;   # must be authenticated and equal the KeyPackage's signature_key
  package @1 :Data;       # MLSMessage(mls_key_package) or bare KeyPackage, RFC 9420 §6 / §10
  lastResort @2 :Bool;    # kept and re-served instead of being consumed (RFC 9420 §16.8)
}

struct UploadKeyPackageResponse {
  fingerprint @0 :Data;   # KeyPackageRef, RFC 9420 §5.2
}

struct FetchKeyPackageRequest {
  identityKey @0 :Data;   # whose KeyPackage to claim (single use)
}

struct FetchKeyPackageResponse {
  package @0 :Data;
  lastResort @1 :Bool;
}

struct CountKeyPackagesRequest {
  identityKey @0 :Data;   # must be authenticated on this connection
}

struct CountKeyPackagesResponse {
  count @0 :UInt32;       # unexpired single-use KeyPackages left (last resort not counted)
}
