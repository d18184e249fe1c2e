// Tests for core/toml: each supported construct, each error with its line, and
// hostile inputs (deep nesting, huge numbers, NUL bytes, bad UTF-8, the size cap).
#include "core/toml.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::core::toml {
namespace {

// Parses text that must be valid and returns the root table.
Value parse_ok(std::string_view text) {
  auto result = parse(text);
  for (const auto& e : result.errors) ADD_FAILURE() << "line " << e.line << ": " << e.message;
  return std::move(result.root);
}

// Parses text that must fail and returns its first error.
Error first_error(std::string_view text) {
  auto result = parse(text);
  if (result.errors.empty()) {
    ADD_FAILURE() << "expected an error for: " << text;
    return {};
  }
  return result.errors.front();
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

#define EXPECT_ERROR(text, expected_line, fragment)                           \
  do {                                                                        \
    Error e_ = first_error(text);                                             \
    EXPECT_EQ(e_.line, expected_line) << e_.message;                          \
    EXPECT_TRUE(contains(e_.message, fragment)) << "message: " << e_.message; \
  } while (0)

TEST(Toml, EmptyAndCommentOnlyDocuments) {
  EXPECT_TRUE(parse_ok("").entries.empty());
  EXPECT_TRUE(parse_ok("\n\n   \n\t\n").entries.empty());
  EXPECT_TRUE(parse_ok("# just a comment\n  # another\n").entries.empty());
  EXPECT_TRUE(parse_ok("\xef\xbb\xbf# after a byte order mark\n").entries.empty());
}

TEST(Toml, KeyValueTypesAndLines) {
  Value root = parse_ok(
      "# config\n"
      "s = \"text\"\n"
      "l = 'C:\\path\\n'  # literal: no escapes\n"
      "i = 42\n"
      "n = -17\n"
      "p = +5\n"
      "t = true\n"
      "f = false\n");
  ASSERT_EQ(root.entries.size(), 7u);
  EXPECT_EQ(root.entries[0].key, "s");  // document order is kept
  const Value* s = root.find("s");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->type, Type::string);
  EXPECT_EQ(s->string, "text");
  EXPECT_EQ(s->line, 2);
  EXPECT_EQ(root.find("l")->string, "C:\\path\\n");
  EXPECT_EQ(root.find("l")->line, 3);
  EXPECT_EQ(root.find("i")->type, Type::integer);
  EXPECT_EQ(root.find("i")->integer, 42);
  EXPECT_EQ(root.find("n")->integer, -17);
  EXPECT_EQ(root.find("p")->integer, 5);
  EXPECT_EQ(root.find("t")->type, Type::boolean);
  EXPECT_TRUE(root.find("t")->boolean);
  EXPECT_FALSE(root.find("f")->boolean);
  EXPECT_EQ(root.find("f")->line, 8);
  EXPECT_EQ(root.find("missing"), nullptr);
}

TEST(Toml, QuotedKeys) {
  Value root = parse_ok("\"with space\" = 1\n'lit.eral' = 2\n\"\" = 3\nbare-key_1 = 4\n\"\\u0041\" = 5\n");
  EXPECT_EQ(root.find("with space")->integer, 1);
  EXPECT_EQ(root.find("lit.eral")->integer, 2);
  EXPECT_EQ(root.find("")->integer, 3);
  EXPECT_EQ(root.find("bare-key_1")->integer, 4);
  EXPECT_EQ(root.find("A")->integer, 5);
}

TEST(Toml, BasicStringEscapes) {
  Value root = parse_ok(R"(a = "q\" b\\ n\n t\t r\r b\b f\f"
u = "\u00e9\u20AC"
U = "\U0001F600"
raw = "héllo €"
tab = "a	b"
)");
  EXPECT_EQ(root.find("a")->string, "q\" b\\ n\n t\t r\r b\b f\f");
  EXPECT_EQ(root.find("u")->string, "\xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(root.find("U")->string, "\xf0\x9f\x98\x80");
  EXPECT_EQ(root.find("raw")->string, "h\xc3\xa9llo \xe2\x82\xac");
  EXPECT_EQ(root.find("tab")->string, "a\tb");
}

TEST(Toml, IntegersWithUnderscoresAndLimits) {
  Value root = parse_ok(
      "a = 1_000_000\n"
      "b = 0\n"
      "c = -0\n"
      "max = 9223372036854775807\n"
      "min = -9223372036854775808\n"
      "u = 9_223_372_036_854_775_807\n");
  EXPECT_EQ(root.find("a")->integer, 1'000'000);
  EXPECT_EQ(root.find("b")->integer, 0);
  EXPECT_EQ(root.find("c")->integer, 0);
  EXPECT_EQ(root.find("max")->integer, INT64_MAX);
  EXPECT_EQ(root.find("min")->integer, INT64_MIN);
  EXPECT_EQ(root.find("u")->integer, INT64_MAX);
}

TEST(Toml, ArraysSpanLinesWithCommentsAndTrailingComma) {
  Value root = parse_ok(
      "a = [1, 2, 3]\n"
      "b = [\n"
      "  \"x\",  # first\n"
      "  'y',\n"
      "\n"
      "]\n"
      "c = []\n"
      "d = [[1, 2], [\"a\"], [], [[true]]]\n"
      "mixed = [1, \"two\", false]\n"
      "after = 1\n");
  const Value* a = root.find("a");
  ASSERT_EQ(a->type, Type::array);
  ASSERT_EQ(a->array.size(), 3u);
  EXPECT_EQ(a->array[2].integer, 3);
  EXPECT_FALSE(a->defined_by_header);
  const Value* b = root.find("b");
  ASSERT_EQ(b->array.size(), 2u);
  EXPECT_EQ(b->line, 2);
  EXPECT_EQ(b->array[0].string, "x");
  EXPECT_EQ(b->array[0].line, 3);
  EXPECT_EQ(b->array[1].line, 4);
  EXPECT_TRUE(root.find("c")->array.empty());
  const Value* d = root.find("d");
  ASSERT_EQ(d->array.size(), 4u);
  EXPECT_EQ(d->array[0].array[1].integer, 2);
  EXPECT_EQ(d->array[1].array[0].string, "a");
  EXPECT_TRUE(d->array[3].array[0].array[0].boolean);
  EXPECT_EQ(root.find("mixed")->array[1].type, Type::string);
  EXPECT_EQ(root.find("after")->line, 10);
}

TEST(Toml, TablesAndNestedHeaders) {
  Value root = parse_ok(
      "top = 1\n"
      "[server]\n"
      "port = 80\n"
      "[ server . \"tls\" ]  # spaces around dots\n"
      "on = true\n"
      "[a.b.c]\n"
      "x = 1\n"
      "[a]\n"  // a was created implicitly by [a.b.c]: defining it now is allowed
      "y = 2\n");
  EXPECT_EQ(root.find("top")->integer, 1);
  const Value* server = root.find("server");
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->type, Type::table);
  EXPECT_EQ(server->line, 2);
  EXPECT_EQ(server->find("port")->integer, 80);
  EXPECT_TRUE(server->find("tls")->find("on")->boolean);
  EXPECT_EQ(server->find("tls")->line, 4);
  const Value* a = root.find("a");
  EXPECT_EQ(a->find("y")->integer, 2);
  EXPECT_EQ(a->line, 8);
  EXPECT_EQ(a->find("b")->find("c")->find("x")->integer, 1);
}

TEST(Toml, ArraysOfTables) {
  Value root = parse_ok(
      "[[target]]\n"
      "name = \"a\"\n"
      "[target.extra]\n"  // belongs to the last [[target]]
      "k = 1\n"
      "\n"
      "[[target]]\n"
      "name = \"b\"\n"
      "[[target.sub]]\n"
      "v = 1\n"
      "[[target.sub]]\n"
      "v = 2\n");
  const Value* target = root.find("target");
  ASSERT_NE(target, nullptr);
  ASSERT_EQ(target->type, Type::array);
  EXPECT_TRUE(target->defined_by_header);
  ASSERT_EQ(target->array.size(), 2u);
  EXPECT_EQ(target->array[0].line, 1);
  EXPECT_EQ(target->array[0].find("name")->string, "a");
  EXPECT_EQ(target->array[0].find("extra")->find("k")->integer, 1);
  EXPECT_EQ(target->array[1].line, 6);
  EXPECT_EQ(target->array[1].find("name")->line, 7);
  const Value* sub = target->array[1].find("sub");
  ASSERT_EQ(sub->array.size(), 2u);
  EXPECT_EQ(sub->array[1].find("v")->integer, 2);
}

TEST(Toml, CrLfLineEndings) {
  Value root = parse_ok("a = 1\r\n# c\r\n[t]\r\nb = [\r\n 2,\r\n]\r\nc = 'x'\r\n");
  EXPECT_EQ(root.find("t")->find("b")->array[0].integer, 2);
  EXPECT_EQ(root.find("t")->find("c")->line, 7);
}

TEST(Toml, SyntaxErrorsCarryLineAndColumn) {
  EXPECT_ERROR("a = 1\nb 2\n", 2, "expected '=' after key b");
  EXPECT_ERROR("a = 1\n\nb =\n", 3, "missing value");
  EXPECT_ERROR("= 1\n", 1, "missing key");
  EXPECT_ERROR("a = 1 2\n", 1, "expected the end of the line after the value");
  EXPECT_ERROR("a = hello\n", 1, "strings must be quoted");
  EXPECT_ERROR("a = tru\n", 1, "expected a value");
  EXPECT_ERROR("a = truex\n", 1, "expected a value");
  EXPECT_ERROR("x = 1\n[t\n", 2, "expected ']'");
  EXPECT_ERROR("[]\n", 1, "empty table name");
  EXPECT_ERROR("[[t]\n", 1, "expected ']]'");
  EXPECT_ERROR("[t] x = 1\n", 1, "expected the end of the line after the table header");
  EXPECT_ERROR("a = 1\rb = 2\n", 1, "carriage return");
  EXPECT_ERROR("a@b = 1\n", 1, "expected '=' after key a");
  EXPECT_ERROR("@ = 1\n", 1, "invalid character in key");
  Error e = first_error("key = [1 2]\n");
  EXPECT_EQ(e.line, 1);
  EXPECT_EQ(e.column, 10);
  EXPECT_TRUE(contains(e.message, "expected ',' or ']'"));
}

TEST(Toml, UnterminatedConstructs) {
  EXPECT_ERROR("a = 1\nb = \"abc\n", 2, "unterminated string");
  EXPECT_ERROR("b = 'abc", 1, "unterminated string");
  EXPECT_ERROR("b = \"abc\\", 1, "unterminated string");
  EXPECT_ERROR("a = 0\nb = [1,\n2,\n", 2, "unterminated array");
  // An array left open swallows what follows, which is then reported where it is.
  EXPECT_ERROR("a = [1,\n[t]\n", 2, "expected a value");
}

TEST(Toml, UnsupportedFeaturesAreNamed) {
  EXPECT_ERROR("a.b = 1\n", 1, "dotted keys are not supported");
  EXPECT_ERROR("x = 1\na = { b = 1 }\n", 2, "inline tables are not supported");
  EXPECT_ERROR("a = \"\"\"\nmulti\n\"\"\"\n", 1, "multi-line strings");
  EXPECT_ERROR("a = '''x'''\n", 1, "multi-line strings");
  EXPECT_ERROR("a = 1.5\n", 1, "floating-point numbers are not supported");
  EXPECT_ERROR("a = 1e6\n", 1, "floating-point numbers are not supported");
  EXPECT_ERROR("a = inf\n", 1, "floating-point numbers are not supported");
  EXPECT_ERROR("a = info\n", 1, "strings must be quoted");
  EXPECT_ERROR("a = [nan]\n", 1, "floating-point numbers are not supported");
  EXPECT_ERROR("a = -nan\n", 1, "floating-point numbers are not supported");
  EXPECT_ERROR("a = 1979-05-27\n", 1, "dates and times are not supported");
  EXPECT_ERROR("a = 07:32:00\n", 1, "dates and times are not supported");
  EXPECT_ERROR("a = 0xff\n", 1, "hexadecimal, octal and binary integers are not supported");
  EXPECT_ERROR("a = 0b101\n", 1, "hexadecimal, octal and binary");
}

TEST(Toml, BadIntegers) {
  EXPECT_ERROR("a = 9223372036854775808\n", 1, "does not fit in 64 bits");
  EXPECT_ERROR("a = -9223372036854775809\n", 1, "does not fit in 64 bits");
  EXPECT_ERROR("a = 99999999999999999999999999999999999999999\n", 1, "does not fit in 64 bits");
  EXPECT_ERROR("a = 007\n", 1, "leading zeros");
  EXPECT_ERROR("a = 1__0\n", 1, "misplaced '_'");
  EXPECT_ERROR("a = 10_\n", 1, "misplaced '_'");
  EXPECT_ERROR("a = 1_x\n", 1, "invalid integer");
  EXPECT_ERROR("a = 12abc\n", 1, "invalid integer");
  EXPECT_ERROR("a = +\n", 1, "expected a value");
}

TEST(Toml, BadStrings) {
  EXPECT_ERROR("a = \"bad \\q escape\"\n", 1, "invalid escape sequence");
  EXPECT_ERROR("a = \"\\u12\"\n", 1, "expected 4 hex digits");
  EXPECT_ERROR("a = \"\\U0001F6\"\n", 1, "expected 8 hex digits");
  EXPECT_ERROR("a = \"\\uD800\"\n", 1, "not a Unicode scalar value");
  EXPECT_ERROR("a = \"\\U00110000\"\n", 1, "not a Unicode scalar value");
  EXPECT_ERROR("a = \"bell\x07\"\n", 1, "control character U+0007 in string");
  EXPECT_ERROR("a = 'del\x7f'\n", 1, "control character U+007F");
}

TEST(Toml, InvalidUtf8IsAnError) {
  EXPECT_ERROR("a = \"\xff\"\n", 1, "invalid UTF-8 in string");
  EXPECT_ERROR("a = '\xc3'\n", 1, "invalid UTF-8 in string");            // truncated sequence
  EXPECT_ERROR("a = \"\xc0\xaf\"\n", 1, "invalid UTF-8 in string");      // overlong '/'
  EXPECT_ERROR("a = \"\xed\xa0\x80\"\n", 1, "invalid UTF-8 in string");  // encoded surrogate
  EXPECT_ERROR("a = \"\xf4\x90\x80\x80\"\n", 1, "invalid UTF-8");        // above U+10FFFF
  EXPECT_ERROR("x = 1\n# comment \xfe\n", 2, "invalid UTF-8 in comment");
  EXPECT_ERROR("\"k\xff\" = 1\n", 1, "invalid UTF-8");
}

TEST(Toml, NulBytes) {
  using namespace std::string_literals;
  EXPECT_ERROR("a = 1\n\0 = 2\n"s, 2, "control character U+0000 where a key was expected");
  EXPECT_ERROR("a = \"x\0y\"\n"s, 1, "control character U+0000 in string");
  EXPECT_ERROR("a = 1 # \0\n"s, 1, "control character U+0000 in comment");
  EXPECT_ERROR("a = 1\0\n"s, 1, "invalid integer");
  // An escaped NUL is a legal string; rejecting it is the consumer's call.
  Value root = parse_ok("a = \"x\\u0000y\"\n");
  EXPECT_EQ(root.find("a")->string, "x\0y"s);
}

TEST(Toml, DuplicateKeysAndTables) {
  EXPECT_ERROR("a = 1\nb = 2\na = 3\n", 3, "duplicate key a (first defined on line 1)");
  EXPECT_ERROR("[t]\nk = 1\nk = 2\n", 3, "duplicate key k in [t]");
  EXPECT_ERROR("[t]\n[u]\n[t]\n", 3, "table [t] is defined twice (first on line 1)");
  EXPECT_ERROR("[a.b]\n[a.b]\n", 2, "table [a.b] is defined twice");
  EXPECT_ERROR("[[t]]\n[t]\n", 2, "[t] is already an array of tables (line 1)");
  EXPECT_ERROR("[t]\n[[t]]\n", 2, "[[t]] conflicts with table [t] (line 1)");
  EXPECT_ERROR("t = [1]\n[[t]]\n", 2, "[[t]] conflicts with key t, already an array (line 1)");
  EXPECT_ERROR("t = 1\n[t]\n", 2, "cannot define [t]: key t is already an integer (line 1)");
  EXPECT_ERROR("t = 1\n[t.u]\n", 2, "cannot define [t.u]: t is already an integer (line 1)");
  EXPECT_ERROR("[a.b]\n[a]\nb = 1\n", 3, "duplicate key b in [a]");
}

TEST(Toml, ErrorsOnSeveralLinesAreAllReported) {
  auto result = parse(
      "a = 1\n"
      "b = \n"  // 2: missing value
      "c = 'ok'\n"
      "a = 2\n"                     // 4: duplicate
      "d = \"\\x\"\n"               // 5: bad escape
      "[t\n"                        // 6: unclosed header
      "e = 99999999999999999999\n"  // 7: overflow
      "f = 1\n");
  ASSERT_EQ(result.errors.size(), 5u);
  EXPECT_EQ(result.errors[0].line, 2);
  EXPECT_EQ(result.errors[1].line, 4);
  EXPECT_EQ(result.errors[2].line, 5);
  EXPECT_EQ(result.errors[3].line, 6);
  EXPECT_EQ(result.errors[4].line, 7);
  // Good lines still made it into the tree; pairs after the bad header went nowhere.
  EXPECT_EQ(result.root.find("c")->string, "ok");
  EXPECT_EQ(result.root.find("a")->integer, 1);
  EXPECT_EQ(result.root.find("f"), nullptr);
  EXPECT_EQ(result.root.find("t"), nullptr);
}

TEST(Toml, ErrorCountIsCapped) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "a = \"\\q\"\n";
  auto result = parse(text);
  ASSERT_EQ(result.errors.size(), kMaxErrors + 1);
  EXPECT_TRUE(contains(result.errors.back().message, "too many errors"));
}

TEST(Toml, NestingDepthIsCapped) {
  auto nested = [](int depth) {
    return "a = " + std::string(static_cast<size_t>(depth), '[') + std::string(static_cast<size_t>(depth), ']') + "\n";
  };
  parse_ok(nested(kMaxDepth));
  EXPECT_ERROR(nested(kMaxDepth + 1), 1, "nesting deeper than 32 levels");
  // Very deep input fails at the cap, without recursing further.
  EXPECT_ERROR(nested(100000), 1, "nesting deeper than 32 levels");

  // Table header parts count too, and so do arrays inside a deep table.
  std::string header = "[t";
  for (int i = 1; i < kMaxDepth; ++i) header += ".t";
  parse_ok(header + "]\nk = 1\n");
  EXPECT_ERROR(header + ".t]\n", 1, "more than 32 parts");
  EXPECT_ERROR(header + "]\nk = [1]\n", 2, "nesting deeper than 32 levels");
}

TEST(Toml, InputSizeIsCapped) {
  std::string text = "a = \"" + std::string(kMaxInputBytes - 7, 'x') + "\"\n";
  ASSERT_EQ(text.size(), kMaxInputBytes);
  EXPECT_EQ(parse_ok(text).find("a")->string.size(), kMaxInputBytes - 7);
  text.insert(0, " ");
  auto result = parse(text);
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].line, 0);
  EXPECT_TRUE(contains(result.errors[0].message, "the limit is 1048576"));
  EXPECT_TRUE(result.root.entries.empty());
}

TEST(Toml, LargeValidInputsStayFast) {
  // Many keys in one table and many [[tables]]: lookups must not be quadratic.
  std::string text;
  for (int i = 0; i < 40000; ++i) text += "k" + std::to_string(i) + " = " + std::to_string(i) + "\n";
  for (int i = 0; i < 20000; ++i) text += "[[t]]\n";
  ASSERT_LT(text.size(), kMaxInputBytes);
  Value root = parse_ok(text);
  EXPECT_EQ(root.find("k39999")->integer, 39999);
  EXPECT_EQ(root.find("t")->array.size(), 20000u);
}

TEST(Toml, MessagesDoNotQuoteStringContents) {
  const std::string secret = "hunter2-secret";
  for (std::string text :
       {"p = \"" + secret + "\\q\"\n", "p = \"" + secret + "\xff\"\n", "p = \"" + secret + "\" trailing\n",
        "p = \"" + secret + "\x01\"\n", "p = " + secret + "\n", "p = \"" + secret + "\\u12\"\n"}) {
    auto result = parse(text);
    ASSERT_FALSE(result.errors.empty()) << text;
    for (const auto& e : result.errors) EXPECT_FALSE(contains(e.message, "hunter")) << e.message;
  }
}

TEST(Toml, FormatKeyAndPrintable) {
  EXPECT_EQ(format_key("listen"), "listen");
  EXPECT_EQ(format_key("with space"), "\"with space\"");
  EXPECT_EQ(format_key("q\"b\\"), "\"q\\\"b\\\\\"");
  EXPECT_EQ(format_key(""), "\"\"");
  EXPECT_EQ(printable("a\nb\x01"), "a\\u000Ab\\u0001");
  EXPECT_EQ(printable("\xff"), "\\xFF");
  EXPECT_EQ(printable(std::string(100, 'x')), std::string(64, 'x') + "...");
  EXPECT_EQ(type_name(Type::integer), std::string("an integer"));
}

}  // namespace
}  // namespace sluice::core::toml
