// A small JSON reader for plan.json: a tree of Json values and a strict RFC 8259 parser whose
// errors name the byte offset. Objects keep their key order (programs and steps are ordered data).
#pragma once
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace nincc {

class Json {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };
  using Member = std::pair<std::string, Json>;

  Json() = default;
  static Json null() { return Json(); }
  static Json boolean(bool b);
  static Json number(double d);
  static Json string(std::string s);
  static Json array(std::vector<Json> items);
  static Json object(std::vector<Member> members);

  Kind kind() const { return kind_; }
  bool isNull() const { return kind_ == Kind::Null; }
  bool isBool() const { return kind_ == Kind::Bool; }
  bool isNumber() const { return kind_ == Kind::Number; }
  bool isString() const { return kind_ == Kind::String; }
  bool isArray() const { return kind_ == Kind::Array; }
  bool isObject() const { return kind_ == Kind::Object; }

  // Accessors assume the kind was checked; they return a neutral value otherwise.
  bool asBool() const { return bool_; }
  double asNumber() const { return number_; }
  const std::string& asString() const { return string_; }
  const std::vector<Json>& items() const { return items_; }
  const std::vector<Member>& members() const { return members_; }

  // The member named `key`, or nullptr when absent (or when this is not an object).
  const Json* find(const std::string& key) const;

 private:
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<Json> items_;
  std::vector<Member> members_;
};

// "null", "true", "number", ... for error messages.
const char* kindName(Json::Kind kind);

// A number as a person would write it: "2", "0.5", "1e+300" (for error messages).
std::string formatNumber(double d);

// Parses a whole document. Throws nincc::Error "<sourceName>: invalid JSON at byte N: <why>".
Json parseJson(const std::string& text, const std::string& sourceName);

}  // namespace nincc
