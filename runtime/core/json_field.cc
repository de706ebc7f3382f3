// JsonField's checks: each failure names the file, the JSON path and what was found instead.
#include "json_field.h"

#include <cmath>

#include "error.h"

namespace nincc {

void JsonField::fail(const std::string& why) const {
  throw Error(*file_ + ": " + (path_.empty() ? "(top level)" : path_) + ": " + why);
}

void JsonField::requireKind(Json::Kind kind) const {
  if (value_->kind() != kind)
    fail(std::string("expected ") + kindName(kind) + ", found " + kindName(value_->kind()));
}

JsonField JsonField::at(const std::string& key) const {
  requireKind(Json::Kind::Object);
  const Json* child = value_->find(key);
  std::string childPath = path_.empty() ? key : path_ + "." + key;
  if (!child) JsonField(*value_, childPath, *file_).fail("missing required field");
  return JsonField(*child, childPath, *file_);
}

bool JsonField::has(const std::string& key) const {
  const Json* child = value_->find(key);
  return child && !child->isNull();
}

JsonField JsonField::item(size_t i) const {
  return JsonField(value_->items()[i], path_ + "[" + std::to_string(i) + "]", *file_);
}

JsonField JsonField::member(size_t i) const {
  const Json::Member& m = value_->members()[i];
  return JsonField(m.second, path_.empty() ? m.first : path_ + "." + m.first, *file_);
}

const std::string& JsonField::key(size_t i) const { return value_->members()[i].first; }

void JsonField::refuseUnknown(std::initializer_list<const char*> known, const std::string& why) const {
  size_t count = objectSize();
  for (size_t i = 0; i < count; ++i) {
    bool found = false;
    for (const char* k : known) found = found || key(i) == k;
    if (!found) member(i).fail("unknown field; " + why);
  }
}

size_t JsonField::arraySize() const {
  requireKind(Json::Kind::Array);
  return value_->items().size();
}

size_t JsonField::objectSize() const {
  requireKind(Json::Kind::Object);
  return value_->members().size();
}

const std::string& JsonField::string() const {
  requireKind(Json::Kind::String);
  return value_->asString();
}

std::string JsonField::nonEmptyString() const {
  const std::string& s = string();
  if (s.empty()) fail("must not be empty");
  return s;
}

double JsonField::number() const {
  requireKind(Json::Kind::Number);
  return value_->asNumber();
}

bool JsonField::boolean() const {
  requireKind(Json::Kind::Bool);
  return value_->asBool();
}

int64_t JsonField::integer(int64_t lo, int64_t hi) const {
  double d = number();
  if (d != std::floor(d)) fail("expected an integer, found " + formatNumber(d));
  if (d < double(lo) || d > double(hi))
    fail("expected an integer in " + std::to_string(lo) + ".." + std::to_string(hi) + ", found " +
         formatNumber(d));
  return static_cast<int64_t>(d);
}

}  // namespace nincc
