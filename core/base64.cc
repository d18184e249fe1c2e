#include "core/base64.h"

#include <cstdint>

namespace sluice::core::base64 {

namespace {

const char* alphabet(Variant variant) {
  return variant == Variant::standard_padded ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                                             : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
}

// Value of a character in the variant's alphabet, or -1.
int value_of(char c, Variant variant) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  const bool standard = variant == Variant::standard_padded;
  if (c == (standard ? '+' : '-')) return 62;
  if (c == (standard ? '/' : '_')) return 63;
  return -1;
}

}  // namespace

std::string encode(std::string_view bytes, Variant variant) {
  const char* digits = alphabet(variant);
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  auto byte = [&](size_t i) { return i < bytes.size() ? uint32_t{static_cast<uint8_t>(bytes[i])} : 0u; };
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t group = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    const size_t present = bytes.size() - i >= 3 ? 4 : bytes.size() - i + 1;  // digits carrying bits
    for (size_t d = 0; d < 4; ++d) {
      if (d < present) {
        out += digits[(group >> (18 - 6 * d)) & 63];
      } else if (variant == Variant::standard_padded) {
        out += '=';
      }
    }
  }
  return out;
}

std::optional<std::string> decode(std::string_view text, Variant variant) {
  if (variant == Variant::standard_padded) {
    if (text.size() % 4 != 0) return std::nullopt;
    size_t padding = 0;
    while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
    text.remove_suffix(padding);
  }
  if (text.size() % 4 == 1) return std::nullopt;  // no byte count encodes to that
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    const int v = value_of(c, variant);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    if (++count == 4) {
      out += static_cast<char>((bits >> 16) & 0xFF);
      out += static_cast<char>((bits >> 8) & 0xFF);
      out += static_cast<char>(bits & 0xFF);
      bits = 0;
      count = 0;
    }
  }
  if (count == 2) {
    if (bits & 0xF) return std::nullopt;  // bits of the last digit that belong to no byte
    out += static_cast<char>((bits >> 4) & 0xFF);
  } else if (count == 3) {
    if (bits & 0x3) return std::nullopt;
    out += static_cast<char>((bits >> 10) & 0xFF);
    out += static_cast<char>((bits >> 2) & 0xFF);
  }
  return out;
}

}  // namespace sluice::core::base64
