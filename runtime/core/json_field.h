// JsonField: a JSON value together with its path inside a file, so that every validation error
// reads "<file>: <path>: <why>", e.g. "build/x/plan.json: programs.infer.steps[3].kernel: ...".
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "json.h"

namespace nincc {

class JsonField {
 public:
  JsonField(const Json& value, std::string path, const std::string& file)
      : value_(&value), path_(std::move(path)), file_(&file) {}

  const Json& value() const { return *value_; }
  const std::string& path() const { return path_; }

  [[noreturn]] void fail(const std::string& why) const;

  // A required member of an object; fails when this is not an object or the key is absent.
  JsonField at(const std::string& key) const;
  // Whether an object member is present (and not null).
  bool has(const std::string& key) const;
  // Element i of an array (caller has checked the bounds through size()).
  JsonField item(size_t i) const;
  // Member i of an object, its path extended by the member's key.
  JsonField member(size_t i) const;
  const std::string& key(size_t i) const;
  // Fails, naming the member's path, on a member of this object whose key is not in `known`: a field
  // the reader would otherwise skip silently (docs/artifact.md: plan.json's unknown fields).
  void refuseUnknown(std::initializer_list<const char*> known, const std::string& why) const;

  size_t arraySize() const;   // fails unless an array
  size_t objectSize() const;  // fails unless an object
  const std::string& string() const;
  std::string nonEmptyString() const;
  double number() const;
  bool boolean() const;  // fails unless true or false
  // An integral number in [lo, hi].
  int64_t integer(int64_t lo, int64_t hi) const;

 private:
  void requireKind(Json::Kind kind) const;

  const Json* value_;
  std::string path_;
  const std::string* file_;
};

}  // namespace nincc
