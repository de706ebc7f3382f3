// Tests of the JSON parser: values, escapes, and the byte offsets its errors name.
#include <string>

#include "check.h"
#include "json.h"

using nincc::Json;
using nincc::parseJson;

namespace {

void parsesValues() {
  Json doc = parseJson(R"( {"a": [1, -0.5e2, 1E3, true, false, null], "b": {"c": "d"}, "e": 0} )", "t");
  CHECK(doc.isObject());
  CHECK_EQ(doc.members().size(), size_t(3));
  const Json* a = doc.find("a");
  CHECK(a && a->isArray() && a->items().size() == 6);
  if (a && a->items().size() == 6) {
    CHECK_EQ(a->items()[0].asNumber(), 1.0);
    CHECK_EQ(a->items()[1].asNumber(), -50.0);
    CHECK_EQ(a->items()[2].asNumber(), 1000.0);
    CHECK(a->items()[3].isBool() && a->items()[3].asBool());
    CHECK(a->items()[4].isBool() && !a->items()[4].asBool());
    CHECK(a->items()[5].isNull());
  }
  CHECK_STR_EQ(doc.find("b")->find("c")->asString(), "d");
  CHECK(doc.find("missing") == nullptr);
  // Key order is kept.
  CHECK_STR_EQ(doc.members()[0].first, "a");
  CHECK_STR_EQ(doc.members()[2].first, "e");
}

void decodesEscapes() {
  Json s = parseJson(R"("q\"b\\s\/n\nt\tu\u00e9p\ud83d\ude00")", "t");
  CHECK_STR_EQ(s.asString(), "q\"b\\s/n\nt\tu\xc3\xa9p\xf0\x9f\x98\x80");
}

void namesByteOffsets() {
  CHECK_THROWS_EXACTLY(parseJson("[1,]", "t.json"),
                       "t.json: invalid JSON at byte 3: unexpected character ']', expected a value");
  CHECK_THROWS_EXACTLY(parseJson("{\"a\": [1, 2", "t.json"),
                       "t.json: invalid JSON at byte 11: unexpected end of input, expected ']' or ',' in an array");
  CHECK_THROWS_EXACTLY(parseJson("{\"a\":1,\"a\":2}", "t.json"),
                       "t.json: invalid JSON at byte 7: duplicate key \"a\"");
  CHECK_THROWS_EXACTLY(parseJson("01", "t.json"),
                       "t.json: invalid JSON at byte 1: unexpected data after the JSON value");
  CHECK_THROWS_EXACTLY(parseJson("", "t.json"),
                       "t.json: invalid JSON at byte 0: unexpected end of input, expected a value");
  CHECK_THROWS_WITH(parseJson("\"a\nb\"", "t.json"), "at byte 2: control character");
  CHECK_THROWS_WITH(parseJson("\"\\ud800\"", "t.json"), "without a low surrogate");
  CHECK_THROWS_WITH(parseJson("[tru]", "t.json"), "at byte 4: invalid literal");
  CHECK_THROWS_WITH(parseJson("1.", "t.json"), "expected a digit after '.'");
  CHECK_THROWS_WITH(parseJson("{\"a\" 1}", "t.json"), "at byte 5: expected ':'");
  CHECK_THROWS_WITH(parseJson("1e999", "t.json"), "number out of range");
}

void refusesDeepNesting() {
  std::string deep(100000, '[');
  CHECK_THROWS_WITH(parseJson(deep, "t.json"), "nesting deeper than");
}

void formatsNumbers() {
  CHECK_STR_EQ(nincc::formatNumber(2), "2");
  CHECK_STR_EQ(nincc::formatNumber(-7), "-7");
  CHECK_STR_EQ(nincc::formatNumber(0.5), "0.5");
}

}  // namespace

void runJsonTests() {
  parsesValues();
  decodesEscapes();
  namesByteOffsets();
  refusesDeepNesting();
  formatsNumbers();
}
