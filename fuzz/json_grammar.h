// A JSON grammar check for the fuzz targets' oracles: RFC 8259 with no limits of its own (no
// number range, no depth cap), so it can judge what vigil's parsers accepted. simdjson's DOM
// refuses integers beyond 64 bits and Boost.JSON refuses huge exponents, both valid JSON.
// Strings must be valid UTF-8 (no overlong forms, no encoded surrogates); u-escapes are only
// checked for four hex digits, as the grammar says.
#pragma once

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace vigil::fuzz {

class JsonGrammar {
 public:
  static bool valid(std::string_view s) {
    JsonGrammar g(s);
    g.ws();
    if (!g.value()) return false;
    g.ws();
    return g.i_ == s.size();
  }

 private:
  explicit JsonGrammar(std::string_view s) : s_(s) {}
  bool at_end() const { return i_ >= s_.size(); }
  unsigned char peek() const { return at_end() ? 0 : static_cast<unsigned char>(s_[i_]); }
  bool eat(char c) {
    if (at_end() || s_[i_] != c) return false;
    ++i_;
    return true;
  }
  void ws() {
    while (!at_end() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }
  bool digits() {
    const size_t start = i_;
    while (peek() >= '0' && peek() <= '9') ++i_;
    return i_ > start;
  }
  bool number() {
    eat('-');
    if (eat('0')) {
    } else if (peek() >= '1' && peek() <= '9') {
      digits();
    } else {
      return false;
    }
    if (eat('.') && !digits()) return false;
    if (eat('e') || eat('E')) {
      if (!eat('+')) eat('-');
      if (!digits()) return false;
    }
    return true;
  }
  bool utf8_sequence() {  // one multi-byte character, lead byte at i_
    const unsigned char lead = peek();
    int extra;
    uint32_t cp;
    if (lead >= 0xC2 && lead <= 0xDF) {
      extra = 1, cp = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      extra = 2, cp = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      extra = 3, cp = lead & 0x07;
    } else {
      return false;
    }
    ++i_;
    for (int k = 0; k < extra; ++k) {
      if ((peek() & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (peek() & 0x3F);
      ++i_;
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000)) return false;  // overlong
    return cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
  }
  bool string() {
    if (!eat('"')) return false;
    while (!at_end()) {
      const unsigned char c = peek();
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        ++i_;
        const unsigned char e = peek();
        ++i_;
        if (e == 'u') {
          for (int k = 0; k < 4; ++k, ++i_) {
            if (!std::isxdigit(peek())) return false;
          }
        } else if (std::string_view("\"\\/bfnrt").find(static_cast<char>(e)) ==
                       std::string_view::npos ||
                   e == 0) {
          return false;
        }
      } else if (c < 0x80) {
        ++i_;
      } else if (!utf8_sequence()) {
        return false;
      }
    }
    return false;
  }
  bool value() {
    ws();
    switch (peek()) {
      case '{':
        ++i_;
        ws();
        if (eat('}')) return true;
        do {
          ws();
          if (!string()) return false;
          ws();
          if (!eat(':') || !value()) return false;
          ws();
        } while (eat(','));
        return eat('}');
      case '[':
        ++i_;
        ws();
        if (eat(']')) return true;
        do {
          if (!value()) return false;
          ws();
        } while (eat(','));
        return eat(']');
      case '"':
        return string();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace vigil::fuzz
