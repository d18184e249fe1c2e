// Base64 (RFC 4648) in the two forms sluice meets: standard with padding (SCRAM's
// salts, nonces and proofs) and base64url without padding (JWT parts, JWK members).
// Decoding is strict, as both are hostile input: only the variant's alphabet, padding
// only where the variant has it and only as the final one or two characters, no
// whitespace, and the unused bits of the last character zero, so that every byte
// string has exactly one accepted encoding.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice::core::base64 {

enum class Variant { standard_padded, url_unpadded };

std::string encode(std::string_view bytes, Variant variant);
std::optional<std::string> decode(std::string_view text, Variant variant);

}  // namespace sluice::core::base64
