// The JSON parser behind parseJson: recursive descent over the bytes, strict about the grammar
// (no comments, no trailing commas, no duplicate keys) so a damaged plan.json fails loudly.
#include "json.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>

#include "error.h"

namespace nincc {

Json Json::boolean(bool b) {
  Json j;
  j.kind_ = Kind::Bool;
  j.bool_ = b;
  return j;
}

Json Json::number(double d) {
  Json j;
  j.kind_ = Kind::Number;
  j.number_ = d;
  return j;
}

Json Json::string(std::string s) {
  Json j;
  j.kind_ = Kind::String;
  j.string_ = std::move(s);
  return j;
}

Json Json::array(std::vector<Json> items) {
  Json j;
  j.kind_ = Kind::Array;
  j.items_ = std::move(items);
  return j;
}

Json Json::object(std::vector<Member> members) {
  Json j;
  j.kind_ = Kind::Object;
  j.members_ = std::move(members);
  return j;
}

const Json* Json::find(const std::string& key) const {
  for (const Member& m : members_)
    if (m.first == key) return &m.second;
  return nullptr;
}

const char* kindName(Json::Kind kind) {
  switch (kind) {
    case Json::Kind::Null: return "null";
    case Json::Kind::Bool: return "a boolean";
    case Json::Kind::Number: return "a number";
    case Json::Kind::String: return "a string";
    case Json::Kind::Array: return "an array";
    case Json::Kind::Object: return "an object";
  }
  return "?";
}

std::string formatNumber(double d) {
  char buf[40];
  if (std::isfinite(d) && std::fabs(d) < 1e15 && d == std::floor(d))
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(d));
  else
    std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

namespace {

// Deep enough for any plan; shallow enough that hostile input cannot overflow the stack.
constexpr int kMaxDepth = 200;

class Parser {
 public:
  Parser(const std::string& text, const std::string& sourceName) : s_(text), source_(sourceName) {}

  Json document() {
    skipSpace();
    Json value = parseValue(0);
    skipSpace();
    if (pos_ != s_.size()) fail("unexpected data after the JSON value");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(source_ + ": invalid JSON at byte " + std::to_string(pos_) + ": " + why);
  }

  bool atEnd() const { return pos_ >= s_.size(); }
  char peek() const { return atEnd() ? '\0' : s_[pos_]; }

  void skipSpace() {
    while (!atEnd() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }

  void expect(char c, const char* context) {
    if (atEnd()) fail(std::string("unexpected end of input, expected '") + c + "' " + context);
    if (s_[pos_] != c) fail(std::string("expected '") + c + "' " + context);
    ++pos_;
  }

  void expectWord(const char* word) {
    for (const char* p = word; *p; ++p, ++pos_)
      if (atEnd() || s_[pos_] != *p) fail(std::string("invalid literal, expected '") + word + "'");
  }

  Json parseValue(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
    if (atEnd()) fail("unexpected end of input, expected a value");
    switch (s_[pos_]) {
      case '{': return parseObject(depth);
      case '[': return parseArray(depth);
      case '"': return Json::string(parseString());
      case 't': expectWord("true"); return Json::boolean(true);
      case 'f': expectWord("false"); return Json::boolean(false);
      case 'n': expectWord("null"); return Json::null();
      default:
        if (s_[pos_] == '-' || (s_[pos_] >= '0' && s_[pos_] <= '9')) return parseNumber();
        fail(std::string("unexpected character '") + s_[pos_] + "', expected a value");
    }
  }

  Json parseObject(int depth) {
    ++pos_;  // '{'
    std::vector<Json::Member> members;
    skipSpace();
    if (peek() == '}') {
      ++pos_;
      return Json::object(std::move(members));
    }
    for (;;) {
      skipSpace();
      if (peek() != '"') fail(atEnd() ? "unexpected end of input, expected a key" : "expected a string key");
      size_t keyAt = pos_;
      std::string key = parseString();
      for (const Json::Member& m : members)
        if (m.first == key) {
          pos_ = keyAt;
          fail("duplicate key \"" + key + "\"");
        }
      skipSpace();
      expect(':', "after an object key");
      skipSpace();
      Json value = parseValue(depth + 1);
      members.emplace_back(std::move(key), std::move(value));
      skipSpace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect('}', "or ',' in an object");
      return Json::object(std::move(members));
    }
  }

  Json parseArray(int depth) {
    ++pos_;  // '['
    std::vector<Json> items;
    skipSpace();
    if (peek() == ']') {
      ++pos_;
      return Json::array(std::move(items));
    }
    for (;;) {
      skipSpace();
      items.push_back(parseValue(depth + 1));
      skipSpace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect(']', "or ',' in an array");
      return Json::array(std::move(items));
    }
  }

  // JSON's number grammar, checked by hand because from_chars also accepts forms JSON forbids.
  Json parseNumber() {
    size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9') ++pos_;
    } else {
      fail("invalid number: expected a digit");
    }
    if (peek() == '.') {
      ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) fail("invalid number: expected a digit after '.'");
      while (peek() >= '0' && peek() <= '9') ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) fail("invalid number: expected a digit in the exponent");
      while (peek() >= '0' && peek() <= '9') ++pos_;
    }
    double value = 0;
    // from_chars is locale-independent, unlike strtod (Node may run under any LC_NUMERIC).
    auto result = std::from_chars(s_.data() + start, s_.data() + pos_, value);
    if (result.ec == std::errc::result_out_of_range) {
      pos_ = start;
      fail("number out of range");
    }
    return Json::number(value);
  }

  unsigned parseHex4() {
    unsigned code = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      char c = peek();
      code <<= 4;
      if (c >= '0' && c <= '9') code |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') code |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') code |= unsigned(c - 'A' + 10);
      else fail("invalid \\u escape: expected 4 hex digits");
    }
    return code;
  }

  static void appendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  std::string parseString() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (atEnd()) fail("unexpected end of input inside a string");
      char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) fail("control character inside a string");
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (atEnd()) fail("unexpected end of input inside a string");
      char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': appendUtf8(out, parseEscapedCodePoint()); break;
        default:
          --pos_;
          fail(std::string("invalid escape '\\") + e + "'");
      }
    }
  }

  // After "\u": one code point, joining a UTF-16 surrogate pair when there is one.
  uint32_t parseEscapedCodePoint() {
    unsigned first = parseHex4();
    if (first >= 0xDC00 && first <= 0xDFFF) fail("invalid \\u escape: lone low surrogate");
    if (first < 0xD800 || first > 0xDBFF) return first;
    if (peek() != '\\' || pos_ + 1 >= s_.size() || s_[pos_ + 1] != 'u')
      fail("invalid \\u escape: high surrogate without a low surrogate");
    pos_ += 2;
    unsigned second = parseHex4();
    if (second < 0xDC00 || second > 0xDFFF) fail("invalid \\u escape: high surrogate without a low surrogate");
    return 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
  }

  const std::string& s_;
  const std::string& source_;
  size_t pos_ = 0;
};

}  // namespace

Json parseJson(const std::string& text, const std::string& sourceName) {
  return Parser(text, sourceName).document();
}

}  // namespace nincc
